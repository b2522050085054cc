"""HTML pages: a thin layer over the services, rendered on the server, enhanced by a little script."""

from __future__ import annotations

from litestar import Router
from litestar.static_files import create_static_files_router

from appliance.web.pages.admin import AdminPages
from appliance.web.pages.errors import PAGE_EXCEPTION_HANDLERS, unrouted_error
from appliance.web.pages.moderation import ModerationPages
from appliance.web.pages.render import STATIC_DIR, template_config
from appliance.web.pages.results import ResultsPages
from appliance.web.pages.rounds import RoundPages
from appliance.web.pages.session import SignInPages


def page_routers() -> list[Router]:
    """The pages (errors shown as pages, signed-out visitors sent to sign in) and their static assets."""
    pages = Router(path="/", route_handlers=[SignInPages, RoundPages, ResultsPages, ModerationPages, AdminPages],
                   exception_handlers=PAGE_EXCEPTION_HANDLERS, include_in_schema=False)
    static = create_static_files_router(path="/static", directories=[STATIC_DIR], opt={"exclude_from_auth": True})
    return [pages, static]


__all__ = ["page_routers", "template_config", "unrouted_error"]
