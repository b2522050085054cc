"""Signing in: the directory checks the password; failures are throttled.

Failed sign-ins are counted per username and per client address over a
sliding window (`WINDOW_SECONDS` after the last failure). Past the limit:

- a username waits `FIRST_DELAY_SECONDS`, doubling with each further failure, up
  to `security.sign_in_max_delay_seconds`. An attacker can therefore slow a
  colleague's account down, never lock it for long; and a browser the colleague
  signed in with before carries a "known device" cookie whose attempts are
  counted apart, so that it is not slowed down by someone else's guessing
  (OWASP, "Slow down online guessing attacks with device cookies").
- an address (password spraying across many names) waits until its count
  expires, `WINDOW_SECONDS` after its last failure.

Throttled attempts are refused before the directory is asked and are not
counted. Counts are stored under HMAC keys: identity.db holds neither the
usernames tried (a password typed in the name field) nor client addresses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from appliance.directory import Person
from appliance.domain.errors import Throttled, Unauthorized
from appliance.services.context import Appliance
from appliance.storage import throttle

WINDOW_SECONDS = 15 * 60
FIRST_DELAY_SECONDS = 15
WRONG_CREDENTIALS = "wrong username or password"


@dataclass(frozen=True)
class SignedIn:
    person: Person
    device_token: str


def sign_in(app: Appliance, username: str, password: str, address: str, device_token: str = "") -> SignedIn:
    """The person, if the directory accepts the password and no limit is reached.

    Raises Throttled (429), Unauthorized (401), or DirectoryUnavailable (503).
    """
    limits = app.settings.security
    now = int(app.clock().timestamp())
    name_key = _key(app, "device", device_token) if _known_device(app, device_token, username) \
        else _key(app, "user", username.casefold())
    address_key = _key(app, "address", address)
    counts = throttle.failures(app.dbs.identity, [name_key, address_key], now - WINDOW_SECONDS)
    waits = [0]
    if name_key in counts:
        failures, last = counts[name_key]
        if failures >= limits.failed_sign_ins_per_user:
            delay = min(limits.sign_in_max_delay_seconds,
                        FIRST_DELAY_SECONDS * 2 ** (failures - limits.failed_sign_ins_per_user))
            waits.append(last + delay - now)
    if address_key in counts:
        failures, last = counts[address_key]
        if failures >= limits.failed_sign_ins_per_address:
            waits.append(last + WINDOW_SECONDS - now)
    if max(waits) > 0:
        raise Throttled("too many failed sign-ins: try again later", retry_after=max(waits))
    usable = password and _encodable(username) and _encodable(password)
    person = app.directory.authenticate(username, password) if usable else None
    if person is None:
        throttle.record_failure(app.dbs.identity, [name_key, address_key], now, now - WINDOW_SECONDS)
        raise Unauthorized(WRONG_CREDENTIALS)
    if name_key in counts:
        throttle.forget(app.dbs.identity, [name_key])
    return SignedIn(person, new_device_token(app, person.username))


def new_device_token(app: Appliance, username: str) -> str:
    """A token that marks this browser as one `username` signed in with."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_device_mac(app, nonce, username)}"


def _known_device(app: Appliance, token: str, username: str) -> bool:
    nonce, _, mac = token.partition(".")
    return bool(nonce and mac) and hmac.compare_digest(mac, _device_mac(app, nonce, username))


def _device_mac(app: Appliance, nonce: str, username: str) -> str:
    message = f"known device\0{nonce}\0{username.casefold()}".encode("utf-8", "surrogatepass")
    return hmac.new(app.instance_secret, message, hashlib.sha256).hexdigest()[:32]


def _key(app: Appliance, kind: str, value: str) -> str:
    message = f"sign-in {kind}\0{value}".encode("utf-8", "surrogatepass")
    return hmac.new(app.instance_secret, message, hashlib.sha256).hexdigest()[:32]


def _encodable(text: str) -> bool:
    """No lone surrogate (JSON allows "\\ud800") and no NUL: no directory holds such a name or password."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\0" not in text
