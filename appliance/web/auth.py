"""Sessions (HttpOnly cookie), the signed-in viewer, and the `requires_*` guards."""

from __future__ import annotations

import secrets

from litestar.concurrency import sync_to_thread
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from appliance.services.context import Appliance
from appliance.services.sign_in import SignedIn, still_signed_in
from appliance.storage import sessions

SESSION_COOKIE = "session"
DEVICE_COOKIE = "known_device"  # a device that signed in before: others' failures do not lock it out
DEVICE_COOKIE_DAYS = 180
RECHECK_SECONDS = 600  # a session's person is looked up in the directory again after this long


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def session_cookies(app: Appliance, signed_in: SignedIn, device_path: str) -> list[Cookie]:
    """A new session for the person: its HttpOnly cookie, and the known-device cookie sent back to `device_path`."""
    lifetime = app.settings.security.session_lifetime_hours * 3600
    token = new_session_token()
    now = int(app.clock().timestamp())
    sessions.create_session(app.dbs.identity, token, signed_in.person, sessions.expiry(now, lifetime), now)
    _checked(app, sessions.token_hash(token), now)
    secure = app.settings.security.cookie_secure
    return [
        Cookie(key=SESSION_COOKIE, value=token, max_age=lifetime, httponly=True, samesite="lax", secure=secure,
               path="/"),
        Cookie(key=DEVICE_COOKIE, value=signed_in.device_token, max_age=DEVICE_COOKIE_DAYS * 86400, httponly=True,
               samesite="strict", secure=secure, path=device_path),
    ]


class SessionAuthentication(AbstractAuthenticationMiddleware):
    """Resolves the session cookie to the signed-in person; 401 without one."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        token = connection.cookies.get(SESSION_COOKIE)
        if not token:
            raise NotAuthorizedException("sign in first")
        app: Appliance = connection.app.state.appliance
        token_hash, now = sessions.token_hash(token), int(app.clock().timestamp())
        person = sessions.find_session(app.dbs.identity, token, now)
        if person is None:
            raise NotAuthorizedException("your session has expired; sign in again")
        if now - app.session_checks.get(token_hash, 0) >= RECHECK_SECONDS:
            # Someone removed from the directory, disabled, or who lost or gained a role, is signed out.
            # What was checked when is kept in memory only: identity.db never learns when someone was active.
            if not await sync_to_thread(still_signed_in, app, person):
                sessions.delete_session(app.dbs.identity, token_hash)
                app.session_checks.pop(token_hash, None)
                raise NotAuthorizedException("your account changed in the directory; sign in again")
            _checked(app, token_hash, now)
        return AuthenticationResult(user=person, auth=app.viewer(person))


def _checked(app: Appliance, token_hash: str, now: int) -> None:
    """Remember that this session's person was found unchanged now; forget checks too old to matter."""
    checks = app.session_checks
    if len(checks) > 10_000:
        for stale in [key for key, when in checks.items() if now - when >= RECHECK_SECONDS]:
            del checks[stale]
    checks[token_hash] = now


NEEDS_ADMIN, NEEDS_MODERATOR = "this needs the admin role", "this needs the moderator role"  # guards' refusals


def requires_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: only members of an admin group."""
    if not connection.auth.is_admin:
        raise PermissionDeniedException(NEEDS_ADMIN)


def requires_moderator(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: only members of a moderator group."""
    if not connection.auth.is_moderator:
        raise PermissionDeniedException(NEEDS_MODERATOR)
