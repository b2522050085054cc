"""Sessions (HttpOnly cookie), the signed-in viewer, and the `requires_*` guards."""

from __future__ import annotations

import hashlib
import secrets

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from appliance.services.context import Appliance
from appliance.storage import sessions

SESSION_COOKIE = "session"


def hash_token(token: str) -> str:
    """Sessions are stored by the hash of their token: a copy of identity.db cannot sign anyone in."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class SessionAuthentication(AbstractAuthenticationMiddleware):
    """Resolves the session cookie to the signed-in person; 401 without one."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        token = connection.cookies.get(SESSION_COOKIE)
        if not token:
            raise NotAuthorizedException("sign in first")
        app: Appliance = connection.app.state.appliance
        person = sessions.find_session(app.dbs.identity, hash_token(token), int(app.clock().timestamp()))
        if person is None:
            raise NotAuthorizedException("your session has expired; sign in again")
        return AuthenticationResult(user=person, auth=app.viewer(person))


def requires_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: only members of an admin group."""
    if not connection.auth.is_admin:
        raise PermissionDeniedException("this needs the admin role")


def requires_moderator(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: only members of a moderator group."""
    if not connection.auth.is_moderator:
        raise PermissionDeniedException("this needs the moderator role")
