"""`appliance ldap check`: walk the way to the directory step by step, and say plainly what fails.

Each step yields a Finding; the first failure on a server stops that server's
steps, since the later ones could only fail for the same reason.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ldap3 import BASE, Connection
from ldap3.core.exceptions import LDAPCertificateError, LDAPException

from appliance.directory import DirectoryUnavailable
from appliance.directory.ldap import (
    INVALID_CREDENTIALS,
    NOT_LDAP,
    DirectoryMisconfigured,
    NO_SUCH_OBJECT,
    LdapDirectory,
    describe_error,
    garbled,
    make_server,
    open_connection,
)
from appliance.settings import LdapSettings, Settings

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Finding:
    level: str  # OK, WARN or FAIL
    subject: str
    detail: str


def check(settings: Settings, username: str | None = None) -> Iterator[Finding]:
    """Every server, the service account, the search bases, the role groups, then one person."""
    ldap = settings.ldap
    reachable = False
    for url in ldap.servers:
        findings = list(_check_server(ldap, url))
        yield from findings
        reachable = reachable or all(f.level != FAIL for f in findings)
    if not reachable:
        return
    directory = LdapDirectory(ldap)
    try:
        yield from _check_directory(settings, directory, username)
    except DirectoryUnavailable as error:
        yield Finding(FAIL, "directory", f"stopped answering: {error}")
    finally:
        directory.close()


def _check_server(ldap: LdapSettings, url: str) -> Iterator[Finding]:
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "ldaps"
    host = parts.hostname or ""
    try:
        port = parts.port or (636 if secure else 389)
    except ValueError:
        yield Finding(FAIL, url, "the port is not a number")
        return
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        yield Finding(FAIL, url, f"cannot resolve the host name {host!r} ({error.strerror}):"
                                 " check the name, or this machine's DNS")
        return
    try:
        socket.create_connection((host, port), timeout=ldap.connect_timeout_seconds).close()
    except ConnectionRefusedError:
        yield Finding(FAIL, url, f"connection refused by {host}:{port}: is the LDAP server running there,"
                                 " and is the port right (389 for ldap://, 636 for ldaps://)?")
        return
    except TimeoutError:
        yield Finding(FAIL, url, f"no answer from {host}:{port} within {ldap.connect_timeout_seconds:g} s:"
                                 " a firewall may drop the traffic")
        return
    except OSError as error:
        yield Finding(FAIL, url, f"cannot connect to {host}:{port}: {error.strerror or error}")
        return
    try:
        connection = open_connection(ldap, make_server(ldap, url))
    except (LDAPException, OSError, DirectoryUnavailable) as error:
        yield Finding(FAIL, url, _tls_diagnosis(error, host, ldap))
        return
    except Exception as error:
        if not garbled(error):
            raise
        yield Finding(FAIL, url, NOT_LDAP)
        return
    try:
        yield _transport(ldap, connection, secure)
        yield _service_bind(ldap, connection, url)
    except (LDAPException, OSError) as error:  # it stopped answering, or hung up, after the connection
        yield Finding(FAIL, url, f"cannot talk LDAP to {host}: {describe_error(error)}")
    except Exception as error:
        if not garbled(error):
            raise
        yield Finding(FAIL, url, NOT_LDAP)
    finally:
        try:
            connection.unbind()
        except (LDAPException, OSError):
            pass


def _transport(ldap: LdapSettings, connection: Connection, secure: bool) -> Finding:
    sock = connection.socket
    subject = connection.server.host
    if not isinstance(sock, ssl.SSLSocket):
        return Finding(WARN, subject, "connected WITHOUT encryption: passwords would cross the network in clear;"
                                      " use ldaps:// or ldap.start_tls = true")
    how = "LDAPS" if secure else "StartTLS"
    if ldap.insecure_skip_certificate_verification:
        return Finding(WARN, subject, f"{how} {sock.version()}, but the certificate is NOT verified"
                                      " (ldap.insecure_skip_certificate_verification)")
    cert = sock.getpeercert() or {}
    until = cert.get("notAfter", "")
    if until:
        until = datetime.fromtimestamp(ssl.cert_time_to_seconds(until), timezone.utc).strftime("%Y-%m-%d")
    return Finding(OK, subject, f"{how} {sock.version()} {sock.cipher()[0]}; certificate {_name(cert, 'subject')}"
                                f" issued by {_name(cert, 'issuer')}, valid until {until}, verified")


def _service_bind(ldap: LdapSettings, connection: Connection, url: str) -> Finding:
    if not ldap.bind_dn:
        return Finding(WARN, url, "no ldap.bind_dn: searching anonymously")
    password = ldap.bind_password.get_secret_value() if ldap.bind_password else ""
    if connection.rebind(user=ldap.bind_dn, password=password, read_server_info=False):
        return Finding(OK, url, f"service account {ldap.bind_dn} bound")
    result = connection.result or {}
    if result.get("result") == INVALID_CREDENTIALS:
        return Finding(FAIL, url, f"the service account {ldap.bind_dn} was refused: invalid credentials"
                                  " (LDAP result 49); check ldap.bind_dn and ldap.bind_password")
    return Finding(FAIL, url, f"the service account could not bind: {result.get('description')}"
                              f" ({result.get('result')}) {result.get('message', '')}".strip())


def _check_directory(settings: Settings, directory: LdapDirectory, username: str | None) -> Iterator[Finding]:
    ldap = settings.ldap
    for key in ("user_search_base", "group_search_base"):
        base = getattr(ldap, key)
        try:
            directory._search(base, "(objectClass=*)", ["1.1"], scope=BASE)
        except DirectoryMisconfigured:
            yield Finding(FAIL, f"ldap.{key}", f"{base!r} does not exist (LDAP result {NO_SUCH_OBJECT},"
                                               " noSuchObject); check its spelling, for example"
                                               " ou=people,dc=example,dc=org")
            return
        except DirectoryUnavailable as error:
            yield Finding(FAIL, f"ldap.{key}", f"{base!r} cannot be read: {error}")
            return
        yield Finding(OK, f"ldap.{key}", f"{base} exists")
    names = set(directory.group_names())
    yield Finding(OK if names else WARN, "groups", f"{len(names)} groups match ldap.group_filter under"
                                                   f" {ldap.group_search_base}")
    for role, groups in (("admin", settings.directory.admin_groups),
                         ("moderator", settings.directory.moderator_groups)):
        missing = [g for g in groups if g not in names]
        if missing:
            yield Finding(WARN, f"{role} groups", f"not found: {', '.join(missing)}; nobody signing in from"
                                                  f" LDAP gets the {role} role through them")
        else:
            yield Finding(OK, f"{role} groups", ", ".join(groups))
    if username is not None:
        yield from _check_person(settings, directory, username)


def _check_person(settings: Settings, directory: LdapDirectory, username: str) -> Iterator[Finding]:
    ldap = settings.ldap
    entries = directory.find_entries(username)
    if not entries:
        yield Finding(FAIL, username, f"no entry matches ldap.user_filter {ldap.user_filter} under"
                                      f" {ldap.user_search_base}; check the filter and the username")
        return
    if len(entries) > 1:
        yield Finding(FAIL, username, "several entries match: sign-in would be refused; narrow ldap.user_filter")
        return
    entry = entries[0]
    yield Finding(OK, username, f"found {entry['dn']}")
    person = directory.person_from_entry(entry, directory.groups_of(entry))
    if person is None:
        yield Finding(FAIL, "id", f"attribute {ldap.id_attribute} (ldap.id_attribute) is missing: this person"
                                  " cannot sign in; use an attribute that never changes, such as entryUUID,"
                                  " objectGUID or ipaUniqueID")
        return
    yield Finding(OK, "id", person.id)
    for label, attribute, value in (("username", ldap.username_attribute, person.username),
                                    ("display name", ldap.display_name_attribute, person.display_name),
                                    ("email", ldap.email_attribute, person.email)):
        yield (Finding(OK, label, f"{value} ({attribute})") if value else
               Finding(WARN, label, f"attribute {attribute} is missing"))
    for dimension, attribute in ldap.segment_attributes.items():
        value = person.attributes.get(dimension)
        yield (Finding(OK, f"segment {dimension}", f"{value} ({attribute})") if value else
               Finding(WARN, f"segment {dimension}", f"attribute {attribute} is missing: counted as \"other\""))
    yield Finding(OK if person.groups else WARN, "groups", ", ".join(sorted(person.groups)) or "none found")
    roles = [role for role, groups in (("admin", settings.directory.admin_groups),
                                       ("moderator", settings.directory.moderator_groups))
             if person.groups & set(groups)]
    yield Finding(OK, "roles", ", ".join(roles) or "none (takes part in rounds of their audience groups)")
    if directory._disabled(entry):
        yield Finding(FAIL, "account", "disabled in userAccountControl: sign-in is refused")


def _tls_diagnosis(error: BaseException, host: str, ldap: LdapSettings) -> str:
    causes = []
    seen: BaseException | None = error
    while seen is not None and len(causes) < 5:
        causes.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = getattr(cause, "verify_message", None) or "certificate verify failed"
            where = f"ldap.ca_file {ldap.ca_file}" if ldap.ca_file else "the system's CA certificates"
            return (f"TLS: the certificate of {host} is not trusted ({reason}) by {where};"
                    " set ldap.ca_file to the PEM of the CA that signed it")
        if isinstance(cause, LDAPCertificateError):
            return f"TLS: the certificate does not name {host}; use a server name the certificate lists"
    text = describe_error(error)
    if "certificate verify failed" in text:
        return f"TLS: the certificate of {host} is not trusted ({text}); set ldap.ca_file to the CA that signed it"
    if "doesn't match" in text:
        return f"TLS: the certificate does not name {host}; use a server name the certificate lists ({text})"
    return f"cannot talk LDAP to {host}: {text}"


def _name(cert: dict, key: str) -> str:
    parts = [f"{k}={v}" for rdn in cert.get(key, ()) for k, v in rdn if k == "commonName"]
    return ", ".join(parts).replace("commonName", "CN") or "?"
