"""create_app(settings) -> Litestar: routes, auth, CSRF, errors, OpenAPI."""

from __future__ import annotations

import hashlib
import hmac
import logging

from litestar import Litestar, MediaType, get
from litestar.config.csrf import CSRFConfig
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from appliance import __version__
from appliance.services.context import Appliance, build_appliance, log
from appliance.services.scheduler import Scheduler
from appliance.settings import Settings, load_settings
from appliance.web.api.deps import DEPENDENCIES
from appliance.web.api.digests import DigestController
from appliance.web.api.health import healthz, readyz
from appliance.web.api.participation import ModerationController, ProposalController
from appliance.web.api.results import ResultsController
from appliance.web.api.rounds import RoundController
from appliance.web.api.session import SessionController
from appliance.web.auth import SessionAuthentication
from appliance.web.errors import EXCEPTION_HANDLERS, SafeRequest

PUBLIC_PATHS = ["^/healthz$", "^/readyz$", "^/schema", "^/$"]

LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Consultation appliance</title></head>
<body><main><h1>Consultation appliance</h1>
<p>The appliance is running. The JSON API is described at <a href="/schema">/schema</a>.</p></main></body></html>
"""


@get("/", media_type=MediaType.HTML, include_in_schema=False, opt={"exclude_from_auth": True})
async def landing() -> str:
    return LANDING


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
        route_handlers=[landing, healthz, readyz, SessionController, RoundController, ProposalController,
                        ModerationController, ResultsController, DigestController],
        dependencies=DEPENDENCIES,
        middleware=[auth],
        csrf_config=csrf,
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=SafeRequest,
        openapi_config=OpenAPIConfig(title="Consultation appliance", version=__version__, path="/schema",
                                     render_plugins=[JsonRenderPlugin()]),
        on_startup=[scheduler.start],
        on_shutdown=[scheduler.stop, lambda: appliance.close()],
        debug=False,
    )
    app.state.appliance = appliance
    app.state.scheduler = scheduler
    return app


def app_from_environment() -> Litestar:
    """Factory for the ASGI server: settings from the configuration file and environment."""
    settings = load_settings()
    logging.basicConfig(level=settings.logging.level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(settings)
