"""Signing in and out, and who am I."""

from __future__ import annotations

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException

from appliance.services.context import Appliance
from appliance.storage import sessions
from appliance.web.api.models import PROBLEMS, Me, SignIn
from appliance.web.auth import SESSION_COOKIE, hash_token, new_session_token


class SessionController(Controller):
    path = "/api/v1"
    tags = ["session"]

    @post("/session", opt={"exclude_from_auth": True}, sync_to_thread=True, status_code=200, responses=PROBLEMS)
    def sign_in(self, app: NamedDependency[Appliance], data: JSONBody[SignIn]) -> Response[Me]:
        """Sign in with a directory username and password; sets the session cookie."""
        person = app.directory.authenticate(data.username, data.password)
        if person is None:
            raise NotAuthorizedException("wrong username or password")
        lifetime = app.settings.security.session_lifetime_hours * 3600
        token = new_session_token()
        now = int(app.clock().timestamp())
        sessions.delete_expired(app.dbs.identity, now)
        sessions.create_session(app.dbs.identity, hash_token(token), person, sessions.expiry(now, lifetime))
        cookie = Cookie(key=SESSION_COOKIE, value=token, max_age=lifetime, httponly=True,
                        samesite="lax", secure=app.settings.security.cookie_secure, path="/")
        return Response(_me(app, person), cookies=[cookie])

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
