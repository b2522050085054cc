"""create_app(settings) -> Litestar: routes, auth, CSRF, errors, OpenAPI."""

from __future__ import annotations

import hashlib
import hmac

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import HTTPException
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from appliance import __version__
from appliance.services.context import Appliance, build_appliance, log
from appliance.services.scheduler import Scheduler
from appliance.settings import Settings, load_settings
from appliance.web.api.audit import AuditController
from appliance.web.api.deps import DEPENDENCIES
from appliance.web.api.digests import DigestController
from appliance.web.api.health import healthz, readyz
from appliance.web.api.metrics import RequestMetrics, metrics, metrics_middleware
from appliance.web.api.participation import ModerationController, ProposalController
from appliance.web.api.results import ResultsController
from appliance.web.api.rounds import RoundController
from appliance.web.api.session import SessionController
from appliance.web.auth import SessionAuthentication
from appliance.web.errors import EXCEPTION_HANDLERS, SafeRequest
from appliance.web.head import head_as_get
from appliance.web.pages import page_routers, template_config, unrouted_error

PUBLIC_PATHS = ["^/healthz$", "^/readyz$", "^/metrics$", "^/schema", "^/sign-in$", "^/language$", "^/static/"]
# How a client authenticates, for clients generated from /schema: the session cookie that POST
# /api/v1/session sets, and on every state-changing request the csrftoken cookie's value in a header.
SECURITY_SCHEMES = Components(security_schemes={
    "session": SecurityScheme(type="apiKey", name="session", security_scheme_in="cookie",
                              description="set by POST /api/v1/session (HttpOnly)"),
    "csrf": SecurityScheme(type="apiKey", name="X-CSRFToken", security_scheme_in="header",
                           description="the value of the csrftoken cookie (set by any GET), on POST, PUT, PATCH"
                                       " and DELETE"),
})


def _csrf_secret(instance_secret: bytes) -> str:
    return hmac.new(instance_secret, b"csrf", hashlib.sha256).hexdigest()


def create_app(settings: Settings, appliance: Appliance | None = None) -> Litestar:
    """The web application over an opened appliance (built from settings when not given)."""
    appliance = appliance or build_appliance(settings)
    if settings.rounds.release_interval_seconds == 0:
        log.warning("rounds.release_interval_seconds is 0: proposals are released one by one as submitted,"
                    " which lets an observer link a proposal to the moment it was written; use it for tests only")
    csrf = CSRFConfig(
        secret=_csrf_secret(appliance.instance_secret),
        cookie_secure=settings.security.cookie_secure,
    )
    auth = DefineMiddleware(SessionAuthentication, exclude=PUBLIC_PATHS)
    scheduler = Scheduler(appliance)  # runs jobs only in the one worker that holds data_dir/scheduler.lock
    app = Litestar(
        route_handlers=[*page_routers(), healthz, readyz, SessionController, RoundController, ProposalController,
                        ModerationController, ResultsController, DigestController, AuditController, metrics],
        dependencies=DEPENDENCIES,
        middleware=[metrics_middleware, auth],
        csrf_config=csrf,
        exception_handlers=EXCEPTION_HANDLERS | {HTTPException: unrouted_error},
        template_config=template_config(),
        request_class=SafeRequest,
        openapi_config=OpenAPIConfig(title="Consultation appliance", version=__version__, path="/schema",
                                     render_plugins=[JsonRenderPlugin()], components=SECURITY_SCHEMES,
                                     security=[{"session": [], "csrf": []}]),
        on_startup=[scheduler.start],
        on_shutdown=[scheduler.stop, lambda: appliance.close()],
        debug=False,
    )
    app.asgi_handler = head_as_get(app.asgi_handler)
    app.state.appliance = appliance
    app.state.scheduler = scheduler
    app.state.metrics = RequestMetrics()
    return app


def app_from_environment() -> Litestar:
    """Factory for the ASGI server: settings from the configuration file and environment."""
    from appliance.logs import configure_logging

    settings = load_settings()
    app = create_app(settings)
    configure_logging(settings.logging, force=True)  # after Litestar's own set-up: stdout, text or JSON
    return app
