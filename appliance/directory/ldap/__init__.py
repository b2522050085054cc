"""LDAP, Active Directory and FreeIPA through ldap3 (this package is the only one that imports it).

Sign-in searches the person with the service account (every value escaped),
then binds as the found DN with the given password. Two small pools of open
connections serve all requests: one bound as the service account for
searches, one only for checking passwords. Every network wait is bounded by
the configured timeouts; whatever goes wrong on the way becomes
DirectoryUnavailable (503 "directory unreachable"), never a hung worker.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import uuid
from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

import ldap3
from ldap3 import ANONYMOUS, BASE, FIRST, NONE, SIMPLE, SUBTREE, Connection, Server, ServerPool, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from appliance.directory import MAX_SURNAMES, DirectoryMisconfigured, DirectoryUnavailable, Person
from appliance.settings import LdapSettings

log = logging.getLogger("appliance.directory")

# ldap3 pauses 10 s between two rounds of trying the servers of a pool; we try
# each server once and answer 503 at once when none is reachable.
ldap3.set_config_parameter("POOLING_LOOP_TIMEOUT", 0)

AD_NESTED_RULE = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN
AD_ACCOUNT_DISABLED = 0x2  # userAccountControl ACCOUNTDISABLE
PAGE_SIZE = 500
NAMES_LIMIT = 500  # people returned for the surnames of names_for
INVALID_CREDENTIALS = 49
NO_SUCH_OBJECT = 32
SIZE_LIMIT_EXCEEDED = 4
# Results that say the server cannot work now, rather than that the password is wrong.
SERVER_TROUBLE = {51: "busy", 52: "unavailable", 80: "other"}

T = TypeVar("T")


def server_pool(settings: LdapSettings) -> ServerPool:
    """The configured servers, tried in order; an unreachable one is skipped for a while."""
    servers = [make_server(settings, url) for url in settings.servers]
    # A lone server is always tried: skipping it would refuse sign-ins after it is back.
    skip = settings.retry_offline_server_seconds if len(servers) > 1 else 0
    return ServerPool(servers, FIRST, active=1, exhaust=skip)


def make_server(settings: LdapSettings, url: str) -> Server:
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    tls = Tls(
        validate=ssl.CERT_NONE if settings.insecure_skip_certificate_verification else ssl.CERT_REQUIRED,
        ca_certs_file=str(settings.ca_file) if settings.ca_file else None,
        sni=host,
    )
    return Server(url, get_info=NONE, tls=tls, connect_timeout=settings.connect_timeout_seconds)


def open_connection(settings: LdapSettings, server: Server | ServerPool,
                    user: str | None = None, password: str | None = None) -> Connection:
    """An open connection (TLS as configured), bound as `user` when given; closed again on any failure."""
    connection = Connection(
        server, user=user, password=password, authentication=SIMPLE if user else ANONYMOUS,
        receive_timeout=settings.timeout_seconds, raise_exceptions=False, read_only=True,
        auto_referrals=False, return_empty_attributes=False,
    )
    try:
        connection.open(read_server_info=False)
        if settings.start_tls and not connection.start_tls(read_server_info=False):
            raise DirectoryUnavailable(f"StartTLS refused by {connection.server.host}: {_result(connection)}")
        if user and not connection.bind(read_server_info=False):
            code = connection.result.get("result")
            if code == INVALID_CREDENTIALS:
                raise DirectoryMisconfigured(f"the service account {user} was refused: invalid credentials (49)")
            raise DirectoryUnavailable(f"the service account could not bind: {_result(connection)}")
    except BaseException:
        close_connection(connection)
        raise
    return connection


class _Pool:
    """A few open connections, each used by one thread at a time."""

    def __init__(self, connect: Callable[[], Connection], size: int, wait_seconds: float) -> None:
        self._connect = connect
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._wait = wait_seconds

    def run(self, operation: Callable[[Connection], T]) -> T:
        """`operation` on a pooled connection.

        A reused connection that turns out closed (server restarted, idle
        timeout) is replaced once; a timeout is not retried, so the caller
        waits at most about one timeout.
        """
        if not self._slots.acquire(timeout=self._wait):
            raise DirectoryUnavailable("every directory connection is busy")
        try:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is not None and connection.closed:
                # Reopening it (ldap3 does so on bind) would skip StartTLS: never reuse a closed one.
                close_connection(connection)
                connection = None
            retry = connection is not None
            while True:
                try:
                    if connection is None:
                        connection = self._connect()
                    result = operation(connection)
                except (LDAPException, OSError) as error:
                    close_connection(connection)
                    connection = None
                    if retry and not _timed_out(error):
                        retry = False
                        continue
                    raise DirectoryUnavailable(describe_error(error)) from None
                except DirectoryUnavailable:
                    close_connection(connection)
                    raise
                except Exception as error:
                    if not garbled(error):
                        raise
                    close_connection(connection)
                    raise DirectoryUnavailable(NOT_LDAP) from None
                with self._lock:
                    self._idle.append(connection)
                return result
        finally:
            self._slots.release()

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            close_connection(connection)


def close_connection(connection: Connection | None) -> None:
    """Close it, and drop it from the server pool's bookkeeping (ldap3 keeps every connection there)."""
    if connection is None:
        return
    try:
        connection.unbind()
    except (LDAPException, OSError):
        pass
    pool = connection.server_pool
    if pool is not None:
        pool.pool_states.pop(connection, None)


def _timed_out(error: BaseException) -> bool:
    """A wait ran out (ldap3 re-wraps timeouts, for instance in LDAPBindError): not worth a retry."""
    return isinstance(error, TimeoutError) or "timed out" in str(error)


class LdapDirectory:
    """People, groups and segment attributes from an LDAP server."""

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        self.pool = server_pool(settings)
        password = settings.bind_password.get_secret_value() if settings.bind_password else None
        wait = settings.connect_timeout_seconds + settings.timeout_seconds
        self._search_pool = _Pool(lambda: open_connection(settings, self.pool, settings.bind_dn or None, password),
                                  settings.pool_size, wait)
        self._bind_pool = _Pool(lambda: open_connection(settings, self.pool), settings.pool_size, wait)

    # Directory protocol

    def authenticate(self, username: str, password: str) -> Person | None:
        """Search the person with the service account, then bind as them with `password`."""
        if not password:  # an empty password would be an unauthenticated bind: a "success" for anyone
            return None
        entries = self._search(self.settings.user_search_base, self._user_filter(escape_filter_chars(username)),
                               self._person_attributes(), size_limit=2)
        if len(entries) != 1:
            if len(entries) > 1:
                log.warning("several directory entries match one username: sign-in refused (check ldap.user_filter)")
            return None
        entry = entries[0]
        if self._disabled(entry) or not self._binds(entry["dn"], password):
            return None
        person = self.person_from_entry(entry, self.groups_of(entry))
        if person is None:
            log.error("directory entry %s has no %s (ldap.id_attribute): sign-in refused",
                      entry["dn"], self.settings.id_attribute)
        return person

    def find(self, username: str) -> Person | None:
        """The person matched by user_filter for this username, with their groups; None if not one, or disabled."""
        entries = self._search(self.settings.user_search_base, self._user_filter(escape_filter_chars(username)),
                               self._person_attributes(), size_limit=2)
        if len(entries) != 1 or self._disabled(entries[0]):
            return None
        return self.person_from_entry(entries[0], self.groups_of(entries[0]))

    def audience(self, groups: Iterable[str]) -> list[Person]:
        """Everyone in any of these groups (everyone matched by user_filter when none are given).

        The people returned carry their segment attributes, not their groups.
        """
        wanted = sorted(set(groups))
        everyone = self._user_filter("*")
        if not wanted:
            return self._people(everyone)
        mode = self.settings.group_membership
        if mode in ("member_of", "ad_nested"):
            dns = [entry["dn"] for entry in self._groups_named(wanted, [])]
            if not dns:
                return []
            rule = f":{AD_NESTED_RULE}:" if mode == "ad_nested" else ""
            clauses = "".join(f"(memberOf{rule}={escape_filter_chars(dn)})" for dn in dns)
            return self._people(f"(&{everyone}(|{clauses}))")
        if mode == "member":
            found = self._groups_named(wanted, ["member", "uniqueMember"])
            member_dns = {dn_key(dn) for entry in found for dn in _texts(entry, "member") + _texts(entry, "uniqueMember")}
            return [p for dn, p in self._people_with_dns(everyone) if dn_key(dn) in member_dns]
        found = self._groups_named(wanted, ["memberUid"])
        uids = {uid.casefold() for entry in found for uid in _texts(entry, "memberUid")}
        return [p for _, p in self._people_with_dns(everyone) if p.username.casefold() in uids]

    def group_names(self) -> list[str]:
        """Names of every group under group_search_base."""
        name = self.settings.group_name_attribute
        entries = self._search(self.settings.group_search_base, self.settings.group_filter, [name], paged=True)
        return sorted({value for entry in entries for value in _texts(entry, name)})

    def dimensions(self) -> list[str]:
        """The segment dimensions configured in ldap.segment_attributes."""
        return list(self.settings.segment_attributes)

    def check(self) -> None:
        """Raise DirectoryUnavailable unless the service account can read both search bases."""
        for base in (self.settings.user_search_base, self.settings.group_search_base):
            self._search(base, "(objectClass=*)", ["1.1"], scope=BASE)

    def close(self) -> None:
        self._search_pool.clear()
        self._bind_pool.clear()

    # Reading entries

    def person_from_entry(self, entry: dict[str, Any], groups: Iterable[str] = ()) -> Person | None:
        """A Person from a search result entry; None without a stable id."""
        s = self.settings
        raw_id = _first_raw(entry, s.id_attribute)
        if raw_id is None:
            return None
        username = _first(entry, s.username_attribute) or ""
        attributes = {dimension: value for dimension, attribute in s.segment_attributes.items()
                      if (value := _first(entry, attribute))}
        return Person(
            id="ldap:" + stable_id(s.id_attribute, raw_id),
            username=username,
            display_name=_first(entry, s.display_name_attribute) or username,
            email=_first(entry, s.email_attribute) or "",
            groups=frozenset(groups),
            attributes=attributes,
        )

    def groups_of(self, entry: dict[str, Any]) -> list[str]:
        """Names of the groups (under group_search_base) the person of this entry belongs to."""
        s = self.settings
        dn = escape_filter_chars(entry["dn"])
        if s.group_membership == "member_of":
            base = dn_key(s.group_search_base)
            return sorted({_rdn_value(group) for group in _texts(entry, "memberOf")
                           if not base or dn_key(group)[-len(base):] == base})
        membership = {
            "member": f"(|(member={dn})(uniqueMember={dn}))",
            "member_uid": f"(memberUid={escape_filter_chars(_first(entry, s.username_attribute) or '')})",
            "ad_nested": f"(member:{AD_NESTED_RULE}:={dn})",
        }[s.group_membership]
        name = s.group_name_attribute
        found = self._search(s.group_search_base, f"(&{s.group_filter}{membership})", [name], paged=True)
        return sorted({value for group in found for value in _texts(group, name)})

    def names_for(self, surnames: Collection[str]) -> list[str]:
        """Display names of people whose surname attribute equals one of `surnames` (at most NAMES_LIMIT)."""
        wanted = sorted({name for name in surnames if name.strip()})[:MAX_SURNAMES]
        if not wanted:
            return []
        s = self.settings
        clauses = "".join(f"({s.surname_attribute}={escape_filter_chars(name)})" for name in wanted)
        entries = self._search(s.user_search_base, f"(|{clauses})", [s.display_name_attribute], size_limit=NAMES_LIMIT)
        return [name for entry in entries if (name := _first(entry, s.display_name_attribute))]

    def find_entries(self, username: str, size_limit: int = 2) -> list[dict[str, Any]]:
        """Entries matching user_filter for this username (for `appliance ldap check`)."""
        return self._search(self.settings.user_search_base, self._user_filter(escape_filter_chars(username)),
                            self._person_attributes(), size_limit=size_limit)

    def _user_filter(self, value: str) -> str:
        return self.settings.user_filter.replace("{username}", value)

    def _person_attributes(self) -> list[str]:
        s = self.settings
        names = [s.id_attribute, s.username_attribute, s.display_name_attribute, s.email_attribute,
                 *s.segment_attributes.values()]
        if s.group_membership == "member_of":
            names.append("memberOf")
        if s.refuse_disabled_accounts:
            names.append("userAccountControl")
        return list(dict.fromkeys(names))

    def _disabled(self, entry: dict[str, Any]) -> bool:
        if not self.settings.refuse_disabled_accounts:
            return False
        flags = _first(entry, "userAccountControl")
        return flags is not None and flags.lstrip("-").isdigit() and bool(int(flags) & AD_ACCOUNT_DISABLED)

    def _people(self, search_filter: str) -> list[Person]:
        return [person for _, person in self._people_with_dns(search_filter)]

    def _people_with_dns(self, search_filter: str) -> list[tuple[str, Person]]:
        entries = self._search(self.settings.user_search_base, search_filter, self._person_attributes(), paged=True)
        people = []
        for entry in entries:
            person = None if self._disabled(entry) else self.person_from_entry(entry)
            if person is not None:
                people.append((entry["dn"], person))
        return people

    def _groups_named(self, names: list[str], attributes: list[str]) -> list[dict[str, Any]]:
        name = self.settings.group_name_attribute
        clauses = "".join(f"({name}={escape_filter_chars(n)})" for n in names)
        return self._search(self.settings.group_search_base, f"(&{self.settings.group_filter}(|{clauses}))",
                            attributes or ["1.1"], paged=True)

    def _binds(self, dn: str, password: str) -> bool:
        def bind(connection: Connection) -> bool:
            try:
                bound = connection.rebind(user=dn, password=password, read_server_info=False)
            finally:
                connection.password = None  # an idle connection keeps no one's password
            if bound:
                return True
            code = connection.result.get("result")
            if code in SERVER_TROUBLE:
                raise DirectoryUnavailable(f"the directory could not check a password: {_result(connection)}")
            if code != INVALID_CREDENTIALS:
                log.info("the directory refused a bind: %s", _result(connection))
            return False

        return self._bind_pool.run(bind)

    def _search(self, base: str, search_filter: str, attributes: list[str], *, size_limit: int = 0,
                paged: bool = False, scope: str = SUBTREE) -> list[dict[str, Any]]:
        def search(connection: Connection) -> list[dict[str, Any]]:
            if paged:
                responses = connection.extend.standard.paged_search(
                    base, search_filter, scope, attributes=attributes, paged_size=PAGE_SIZE, generator=False)
            else:
                connection.search(base, search_filter, scope, attributes=attributes, size_limit=size_limit)
                responses = connection.response or []
            code = connection.result.get("result") if connection.result else 0
            if code == NO_SUCH_OBJECT:
                raise DirectoryMisconfigured(f"the search base {base!r} does not exist (LDAP result 32)")
            if code == SIZE_LIMIT_EXCEEDED and not size_limit:
                raise DirectoryMisconfigured(
                    f"the server stopped a search under {base!r} at its size limit (LDAP result 4): raise the"
                    " service account's size limit (OpenLDAP: limits ... size=unlimited; Active Directory:"
                    " MaxPageSize)")
            if code not in (0, SIZE_LIMIT_EXCEEDED):
                raise DirectoryUnavailable(f"search under {base!r} failed: {_result(connection)}")
            return [r for r in responses or [] if r.get("type") == "searchResEntry"]

        return self._search_pool.run(search)


NOT_LDAP = "the server answered, but not in LDAP: check the port (389 for ldap://, 636 for ldaps://)"


# ldap3's functions that read and decode what the server sent
_RECEIVING = frozenset({"receiving", "get_response", "_get_response", "decode_response", "decode_response_fast",
                        "compute_ldap_message_size"})


def garbled(error: BaseException) -> bool:
    """Whether ldap3 failed while reading what the server sent (a KeyError deep in its BER decoder, for one):
    the port answers, but in another protocol. An error on the way out (a bad argument of ours that ldap3 or
    pyasn1 could not encode) is not one: it stays an error, with its traceback."""
    frame, receiving, last = error.__traceback__, False, ""
    while frame is not None:
        code = frame.tb_frame.f_code
        module = frame.tb_frame.f_globals.get("__name__", "")
        receiving = receiving or (module.startswith("ldap3.") and code.co_name in _RECEIVING)
        last = module
        frame = frame.tb_next
    return receiving and last.startswith(("ldap3.", "pyasn1."))


def describe_error(error: BaseException) -> str:
    """What went wrong on the network, in a line for the operator's log."""
    cause = error.__cause__ or error.__context__
    text = str(error) or type(error).__name__
    return f"{text} ({cause})" if cause and str(cause) not in text else text


def stable_id(attribute: str, raw: bytes) -> str:
    """A person's id as text: Active Directory's objectGUID as a UUID, other ids as they are."""
    if attribute.lower() == "objectguid" and len(raw) == 16:
        return str(uuid.UUID(bytes_le=raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
    return text if text.isprintable() else raw.hex()


def dn_key(dn: str) -> tuple[tuple[str, str], ...]:
    """A DN in a form that compares equal however it is spelled (case, spaces, escapes)."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPException:
        return ((dn.casefold(), ""),)
    return tuple((attr.casefold(), _unescape(value).casefold()) for attr, value, _ in parts)


def _rdn_value(dn: str) -> str:
    """The value of a DN's first component: a group's name from its DN."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPException:
        return dn
    return _unescape(parts[0][1]) if parts else dn


def _unescape(value: str) -> str:
    """DN value escapes (RFC 4514): \\, and \\2C both mean a comma."""
    def byte(match: re.Match[str]) -> str:
        text = match.group(1)
        return bytes.fromhex(text).decode("latin-1") if len(text) == 2 else text

    raw = re.sub(r"\\([0-9A-Fa-f]{2}|.)", byte, value)
    try:  # hex escapes are UTF-8 bytes
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _raw_values(entry: dict[str, Any], attribute: str) -> list[bytes]:
    wanted = attribute.casefold()
    for name, values in (entry.get("raw_attributes") or {}).items():
        if name.casefold() == wanted:
            return list(values) if isinstance(values, list) else [values]
    return []


def _first_raw(entry: dict[str, Any], attribute: str) -> bytes | None:
    values = _raw_values(entry, attribute)
    return values[0] if values else None


def _texts(entry: dict[str, Any], attribute: str) -> list[str]:
    return [value.decode("utf-8", "replace") for value in _raw_values(entry, attribute)]


def _first(entry: dict[str, Any], attribute: str) -> str | None:
    values = _texts(entry, attribute)
    return values[0].strip() if values and values[0].strip() else None


def _result(connection: Connection) -> str:
    result = connection.result or {}
    return f"{result.get('description', 'error')} ({result.get('result', '?')}) {result.get('message', '')}".strip()
