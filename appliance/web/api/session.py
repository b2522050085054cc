"""Signing in and out, and who am I."""

from __future__ import annotations

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.datastructures import Cookie

from appliance.services.context import Appliance
from appliance.services.sign_in import sign_in
from appliance.storage import sessions
from appliance.web.api.models import PROBLEMS, SIGN_IN_PROBLEMS, Me, SignIn
from appliance.web.auth import DEVICE_COOKIE, SESSION_COOKIE, session_cookies


class SessionController(Controller):
    path = "/api/v1"
    tags = ["session"]

    @post("/session", opt={"exclude_from_auth": True}, sync_to_thread=True, status_code=200,
          responses=SIGN_IN_PROBLEMS)
    def sign_in(self, app: NamedDependency[Appliance], request: Request, data: JSONBody[SignIn]) -> Response[Me]:
        """Sign in with a directory username and password; sets the session cookie.

        401 wrong username or password; 429 too many failed attempts (see Retry-After);
        503 the directory cannot be reached.
        """
        address = request.client.host if request.client else ""
        signed_in = sign_in(app, data.username, data.password, address, request.cookies.get(DEVICE_COOKIE, ""))
        return Response(_me(app, signed_in.person), cookies=session_cookies(app, signed_in, "/api/v1/session"))

    @delete("/session", sync_to_thread=True, status_code=204, responses=PROBLEMS)
    def sign_out(self, app: NamedDependency[Appliance], request: Request) -> Response[None]:
        """Sign out: the session is deleted and its cookie cleared."""
        sessions.delete_session(app.dbs.identity, sessions.token_hash(request.cookies[SESSION_COOKIE]))
        return Response(None, status_code=204, cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])

    @get("/me", sync_to_thread=False, responses=PROBLEMS)
    def me(self, app: NamedDependency[Appliance], request: Request) -> Me:
        """The signed-in person and their roles."""
        return _me(app, request.user)


def _me(app: NamedDependency[Appliance], person) -> Me:
    viewer = app.viewer(person)
    roles = [role for role, has in (("admin", viewer.is_admin), ("moderator", viewer.is_moderator)) if has]
    return Me(username=person.username, display_name=person.display_name, roles=roles)
