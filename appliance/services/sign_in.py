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
  expires, `WINDOW_SECONDS` after its last failure; a known device is not held
  back by others' failures from its address (a shared NAT or proxy).

Usernames are counted in the form directories compare them (NFKC, spaces
trimmed, case folded), so spelling variants share one count. Each attempt is
counted before the directory is asked, in the transaction that checks the
limits, and taken back after a success or a directory failure: parallel
guesses cannot all slip through one check.

Throttled attempts are refused before the directory is asked and are not
counted. Counts are stored under HMAC keys: identity.db holds neither the
usernames tried (a password typed in the name field) nor client addresses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from appliance.directory import DirectoryUnavailable, Person, normal_username
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
    Every attempt is counted before the directory is asked (and taken back
    after a success), so parallel guesses count as much as sequential ones.
    """
    limits = app.settings.security
    now = int(app.clock().timestamp())
    name = normal_username(username)
    known = _known_device(app, device_token, name)
    name_key = _key(app, "device", device_token) if known else _key(app, "user", name)
    address_key = _key(app, "address", address)

    def wait(counts: throttle.Counts) -> int:
        waits = [0]
        if name_key in counts:
            failures, last = counts[name_key]
            if failures >= limits.failed_sign_ins_per_user:
                delay = min(limits.sign_in_max_delay_seconds,
                            FIRST_DELAY_SECONDS * 2 ** (failures - limits.failed_sign_ins_per_user))
                waits.append(last + delay - now)
        # A browser the person signed in with before is not held back by others' guessing
        # from the same address (a shared NAT or proxy): its own count is enough.
        if address_key in counts and not known:
            failures, last = counts[address_key]
            if failures >= limits.failed_sign_ins_per_address:
                waits.append(last + WINDOW_SECONDS - now)
        return max(waits)

    retry_after = throttle.reserve(app.dbs.identity, [name_key, address_key], now, now - WINDOW_SECONDS, wait)
    if retry_after:
        raise Throttled("too many failed sign-ins: try again later", retry_after=retry_after)
    usable = password and _encodable(username) and _encodable(password)
    try:
        person = app.directory.authenticate(username, password) if usable else None
    except DirectoryUnavailable:
        throttle.settle(app.dbs.identity, forget=[], take_back=[name_key, address_key])  # not a wrong password
        raise
    if person is None:
        raise Unauthorized(WRONG_CREDENTIALS)
    throttle.settle(app.dbs.identity, forget=[name_key], take_back=[address_key])
    return SignedIn(person, new_device_token(app, person.username))


def still_signed_in(app: Appliance, person: Person) -> bool:
    """Whether the directory still has this person, enabled, with the roles they signed in with.

    True when the directory cannot answer now: a directory down must not sign everyone out.
    """
    try:
        current = app.directory.find(person.username)
    except DirectoryUnavailable:
        return True
    if current is None or current.id != person.id:
        return False
    before, after = app.viewer(person), app.viewer(current)
    return (before.is_admin, before.is_moderator) == (after.is_admin, after.is_moderator)


def new_device_token(app: Appliance, username: str) -> str:
    """A token that marks this browser as one `username` signed in with."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_device_mac(app, nonce, username)}"


def _known_device(app: Appliance, token: str, username: str) -> bool:
    nonce, _, mac = token.partition(".")
    if not (nonce and mac and token.isascii()):
        return False
    return hmac.compare_digest(mac.encode(), _device_mac(app, nonce, username).encode())


def _device_mac(app: Appliance, nonce: str, username: str) -> str:
    message = f"known device\0{nonce}\0{normal_username(username)}".encode("utf-8", "surrogatepass")
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
