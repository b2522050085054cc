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
from appliance.web.auth import SESSION_COOKIE, hash_token, new_session_token


DEVICE_COOKIE = "known_device"
DEVICE_COOKIE_DAYS = 180


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
        person = signed_in.person
        lifetime = app.settings.security.session_lifetime_hours * 3600
        token = new_session_token()
        now = int(app.clock().timestamp())
        sessions.create_session(app.dbs.identity, hash_token(token), person, sessions.expiry(now, lifetime), now)
        secure = app.settings.security.cookie_secure
        cookie = Cookie(key=SESSION_COOKIE, value=token, max_age=lifetime, httponly=True,
                        samesite="lax", secure=secure, path="/")
        device = Cookie(key=DEVICE_COOKIE, value=signed_in.device_token, max_age=DEVICE_COOKIE_DAYS * 86400,
                        httponly=True, samesite="strict", secure=secure, path="/api/v1/session")
        return Response(_me(app, person), cookies=[cookie, device])

    @delete("/session", sync_to_thread=True, status_code=204, responses=PROBLEMS)
    def sign_out(self, app: NamedDependency[Appliance], request: Request) -> Response[None]:
        """Sign out: the session is deleted and its cookie cleared."""
        sessions.delete_session(app.dbs.identity, hash_token(request.cookies[SESSION_COOKIE]))
        return Response(None, status_code=204, cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])

    @get("/me", sync_to_thread=False, responses=PROBLEMS)
    def me(self, app: NamedDependency[Appliance], request: Request) -> Me:
        """The signed-in person and their roles."""
        return _me(app, request.user)


def _me(app: NamedDependency[Appliance], person) -> Me:
    viewer = app.viewer(person)
    roles = [role for role, has in (("admin", viewer.is_admin), ("moderator", viewer.is_moderator)) if has]
    return Me(username=person.username, display_name=person.display_name, roles=roles)
