"""The running appliance: settings, databases, directory and secrets, opened once."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
import hmac
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from appliance.directory import Directory, Person
from appliance.directory.break_glass import WithLocalAccounts
from appliance.directory.local import LocalDirectory
from appliance.domain.rounds import Viewer
from appliance.services.limits import RateLimiter
from appliance.settings import Settings
from appliance.storage import keys
from appliance.storage.backup import refuse_unfinished_restore
from appliance.storage.ballot_writer import BallotWriter
from appliance.storage.connection import Databases
from appliance.storage.migrations import apply_migrations

log = logging.getLogger("appliance")
TALLY_SNAPSHOT_SECONDS = 3600  # the sequence engine reads vote counts from an hourly snapshot (storage rule 8)
HINTS_PER_MINUTE = 60  # near-duplicate look-ups per person (POST .../proposals/similar)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ViewCache:
    """The last few publishable views computed, by (round, dimension): closed rounds never change."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._views: OrderedDict[tuple[str, str | None], object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str | None]) -> Any:
        with self._lock:
            if key in self._views:
                self._views.move_to_end(key)
            return self._views.get(key)

    def put(self, key: tuple[str, str | None], view: object) -> None:
        with self._lock:
            self._views[key] = view
            while len(self._views) > self.size:
                self._views.popitem(last=False)


class Snapshots:
    """Values computed once per period of `seconds` per key (periods on the clock: every hour, on the hour):
    the sequence engine's hourly vote counts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._values: dict[str, tuple[int, Any]] = {}
        self._lock = threading.Lock()

    def period(self, now: float) -> int:
        return int(now // self.seconds)

    def get(self, key: str, now: float, compute: Callable[[], Any]) -> Any:
        with self._lock:
            taken = self._values.get(key)
            if taken is not None and taken[0] == self.period(now):
                return taken[1]
        value = compute()
        with self._lock:
            self._values[key] = (self.period(now), value)
        return value

    def forget(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)


class DirectoryProbe:
    """The directory's check for /readyz, one at a time, in the background.

    A hung directory makes a check last the LDAP timeout (10 s by default),
    longer than a load balancer waits for its probe: /readyz waits a moment
    for the check and says "not answering" past it, while the check goes on;
    the next probe waits for that same check instead of starting another.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: Future[None] | None = None

    def start(self, check: Callable[[], None]) -> Future[None]:
        """The check in flight, or a new one when none is."""
        with self._lock:
            if self._running is None or self._running.done():
                self._running = Future()
                threading.Thread(target=_settle, args=(self._running, check), daemon=True,
                                 name="directory-check").start()
            return self._running


def _settle(future: Future[None], check: Callable[[], None]) -> None:
    try:
        check()
    except BaseException as error:  # the probe's reader raises it again
        future.set_exception(error)
    else:
        future.set_result(None)


@dataclass
class Appliance:
    """Everything a use case needs, built from the settings."""

    settings: Settings
    dbs: Databases
    directory: Directory
    instance_secret: bytes
    clock: Callable[[], datetime] = utc_now
    ballot_writer: BallotWriter = field(init=False)
    results_cache: ViewCache = field(default_factory=ViewCache)
    tally_snapshots: Snapshots = field(default_factory=lambda: Snapshots(TALLY_SNAPSHOT_SECONDS))
    vote_limiter: RateLimiter = field(init=False)
    proposal_limiter: RateLimiter = field(init=False)
    hint_limiter: RateLimiter = field(init=False)
    session_checks: dict[str, int] = field(default_factory=dict)  # session -> when its person was last found
    directory_probe: DirectoryProbe = field(default_factory=DirectoryProbe)

    def __post_init__(self) -> None:
        self.ballot_writer = BallotWriter(self.settings.storage.ballots_db)
        security = self.settings.security
        self.vote_limiter = RateLimiter(security.votes_per_minute, 60, self.instance_secret)
        self.proposal_limiter = RateLimiter(security.proposals_per_hour, 3600, self.instance_secret)
        # Hints while typing: the page asks at most once per pause in typing (400 ms).
        self.hint_limiter = RateLimiter(HINTS_PER_MINUTE, 60, self.instance_secret)

    @property
    def keys_dir(self) -> Path:
        return self.settings.storage.round_keys_dir

    def round_key(self, round_id: str) -> bytes | None:
        """The round secret, read from its key file at each use: no copy outlives the file."""
        return keys.read_round_key(self.keys_dir, round_id)

    def viewer(self, person: Person) -> Viewer:
        """The person with the roles their groups give."""
        directory = self.settings.directory
        groups = {g.casefold() for g in person.groups}  # directories compare group names without case
        return Viewer(
            person_id=person.id,
            groups=person.groups,
            is_admin=any(g.casefold() in groups for g in directory.admin_groups),
            is_moderator=any(g.casefold() in groups for g in directory.moderator_groups),
        )

    def close(self) -> None:
        self.directory.close()
        self.ballot_writer.close()
        self.dbs.close()


def build_appliance(settings: Settings, migrate: bool = True) -> Appliance:
    """Open the data directory: databases (migrated), directory and instance secret."""
    data_dir = settings.storage.data_dir
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    refuse_unfinished_restore(data_dir)
    dbs = Databases(settings.storage.identity_db, settings.storage.ballots_db)
    if migrate:
        apply_migrations(dbs.identity, dbs.ballots)
    configured = settings.security.instance_secret
    secret = (configured.get_secret_value().encode() if configured
              else keys.load_or_create_instance_secret(data_dir))
    return Appliance(settings, dbs, make_directory(settings, LocalDirectory(dbs.identity)), secret)


def make_directory(settings: Settings, local: LocalDirectory) -> Directory:
    """The configured directory; with LDAP, local accounts stay available beside it."""
    if settings.directory.kind == "local":
        return local
    from appliance.directory.ldap import LdapDirectory  # ldap3 is loaded only when used

    if settings.ldap.insecure_skip_certificate_verification:
        log.warning("ldap.insecure_skip_certificate_verification is on: the directory's certificate is not"
                    " checked, so anyone on the network path can read the passwords people sign in with")
    if not settings.ldap.start_tls and any(url.lower().startswith("ldap://") for url in settings.ldap.servers):
        log.warning("ldap.servers has an ldap:// URL without ldap.start_tls: passwords cross the network"
                    " unencrypted; use ldaps:// or start_tls = true")
    return WithLocalAccounts(LdapDirectory(settings.ldap), local)


def secret_fingerprint(secret: bytes) -> str:
    """Identifies the instance secret without revealing it."""
    return hmac.new(secret, b"instance secret fingerprint", hashlib.sha256).hexdigest()
