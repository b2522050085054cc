"""A real, private OpenLDAP server (slapd) for the test suite.

Each `Slapd` owns a working directory (configuration, certificate, database,
log) and two free ports on 127.0.0.1: one for ldap:// (with StartTLS) and one for
ldaps://. The directory content is the same in every instance, so two instances
can stand for the two servers of a pool.

People, organizational units and posix groups are loaded with slapadd before the
first start. The groupOfNames groups are added over LDAP once the server runs,
so that the memberof overlay maintains `memberOf` on their members, as it would
on a production directory. `memberOf` is operational: ask for it by name.

Entries loaded with slapadd carry an entryUUID derived from their DN, so every
instance (like the replicas of a real pool) gives a person the same entryUUID.

`TestCA` makes the certificates with openssl: a CA that signs the servers'
certificates, and an unrelated CA for "wrong CA" tests.

Typical fixtures::

    @pytest.fixture(scope="session")
    def ca(tmp_path_factory):
        return TestCA(tmp_path_factory.mktemp("ca"))

    @pytest.fixture(scope="session")
    def slapd(tmp_path_factory, ca):
        with Slapd(tmp_path_factory.mktemp("slapd"), ca) as server:
            yield server

`stop()` is idempotent and every running instance is also stopped when the
interpreter exits, so no slapd outlives the test session.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType

from ldap3 import MODIFY_REPLACE, Connection, Server

BASE_DN = "dc=example,dc=org"
PEOPLE_DN = "ou=people,dc=example,dc=org"
GROUPS_DN = "ou=groups,dc=example,dc=org"
SERVICES_DN = "ou=services,dc=example,dc=org"
SERVICE_DN = "cn=appliance,ou=services,dc=example,dc=org"
SERVICE_PASSWORD = "service-secret-1"
USER_PASSWORD = "User-pass-2024"
ROOT_DN, ROOT_PASSWORD = "cn=admin,dc=example,dc=org", "adminpw"

DEPARTMENTS = ("Finance", "IT", "Sales")
SITES = ("Lyon", "Paris")
ACCOUNT_ENABLED, ACCOUNT_DISABLED = 512, 514  # userAccountControl: 0x2 is ACCOUNTDISABLE

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
AD_SCHEMA = Path(__file__).resolve().parent / "ad.schema"
UUID_NAMESPACE = uuid.UUID("5f1e0c52-6a8e-4b7e-9d0c-2f6b1a3c4d5e")


# --- Directory content -------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A person of the test directory."""

    uid: str
    cn: str
    sn: str
    department: str | None
    site: str
    mail: str = ""
    rdn: str = ""
    account_control: int | None = None

    @property
    def dn(self) -> str:
        """The entry's DN (`uid=<uid>` under ou=people unless `rdn` says otherwise)."""
        return f"{self.rdn or 'uid=' + self.uid},{PEOPLE_DN}"


def staff_member(n: int) -> Person:
    """`uNN`: department and site cycle with different periods, so combinations vary."""
    return Person(
        uid=f"u{n:02d}",
        cn=f"User {n:02d}",
        sn=f"{n:02d}",
        department=DEPARTMENTS[n % 3],
        site=SITES[n // 12 % 2],
    )


def special_people() -> list[Person]:
    """The people that exercise particular cases (roles, odd names, AD flags)."""
    return [
        Person("alice", "Alice Admin", "Admin", "HR", "Paris"),
        Person("bob", "Bob Moderator", "Moderator", "IT", "Lyon"),
        Person("jsmith", "Smith, John", "Smith", "Sales", "Lyon", rdn="cn=Smith\\, John"),
        Person("élodie", "Élodie Durand", "Durand", "Finance", "Paris", mail="elodie.durand@example.org"),
        Person("nodept", "No Department", "Department", None, "Lyon"),
        Person("disabled", "Disabled Account", "Account", "IT", "Lyon", account_control=ACCOUNT_DISABLED),
        Person("enabled", "Enabled Account", "Account", "Sales", "Paris", account_control=ACCOUNT_ENABLED),
    ]


def directory_people(count: int = 24) -> list[Person]:
    """Everyone in a directory made with `people=count`: u00.. first, then the special cases."""
    return [staff_member(n) for n in range(count)] + special_people()


def group_dn(name: str) -> str:
    """The DN of a group (groupOfNames or posixGroup) under ou=groups."""
    return f"cn={name},{GROUPS_DN}"


def member_groups(count: int = 24) -> dict[str, list[str]]:
    """groupOfNames name -> member DNs. Groups that would be empty are left out."""
    staff = [staff_member(n) for n in range(count)]
    by_uid = {p.uid: p for p in special_people()}
    extra = [by_uid[uid] for uid in ("jsmith", "élodie", "nodept", "enabled", "disabled")]
    groups = {
        "staff": [p.dn for p in staff + extra],
        "appliance-admins": [by_uid["alice"].dn],
        "appliance-moderators": [by_uid["bob"].dn],
        "finance": [p.dn for p in staff if p.department == "Finance"],
        "pilot": [p.dn for p in staff[:8]],
    }
    return {name: members for name, members in groups.items() if members}


def posix_groups(count: int = 24) -> dict[str, tuple[int, list[str]]]:
    """posixGroup name -> (gidNumber, memberUid usernames)."""
    return {
        "posix-staff": (5000, [staff_member(n).uid for n in range(count)]),
        "posix-admins": (5001, ["alice"]),
    }


Attributes = list[tuple[str, str]]


def _entries(count: int) -> Iterator[tuple[str, Attributes]]:
    """Every entry that slapadd loads, parents first."""
    password_hash = _password_hash(USER_PASSWORD)
    yield BASE_DN, [("objectClass", "dcObject"), ("objectClass", "organization"), ("dc", "example"), ("o", "Example")]
    for ou in ("people", "groups", "services"):
        yield f"ou={ou},{BASE_DN}", [("objectClass", "organizationalUnit"), ("ou", ou)]
    yield SERVICE_DN, [
        ("objectClass", "organizationalRole"),
        ("objectClass", "simpleSecurityObject"),
        ("cn", "appliance"),
        ("userPassword", _password_hash(SERVICE_PASSWORD)),
    ]
    for person in directory_people(count):
        attributes = [("objectClass", "inetOrgPerson")]
        if person.account_control is not None:
            attributes.append(("objectClass", "adAccount"))
        attributes += [
            ("uid", person.uid),
            ("cn", person.cn),
            ("sn", person.sn),
            ("mail", person.mail or f"{person.uid}@example.org"),
            ("l", person.site),
            ("userPassword", password_hash),
        ]
        if person.department is not None:
            attributes.append(("departmentNumber", person.department))
        if person.account_control is not None:
            attributes.append(("userAccountControl", str(person.account_control)))
        yield person.dn, attributes
    for name, (gid, uids) in posix_groups(count).items():
        yield group_dn(name), [("objectClass", "posixGroup"), ("cn", name), ("gidNumber", str(gid))] + [
            ("memberUid", uid) for uid in uids
        ]


def directory_ldif(count: int = 24) -> str:
    """The LDIF that slapadd loads (everything but the groupOfNames groups)."""
    records = []
    for dn, attributes in _entries(count):
        entry_uuid = str(uuid.uuid5(UUID_NAMESPACE, dn.lower()))
        lines = [_ldif_line("dn", dn)] + [_ldif_line(name, value) for name, value in attributes]
        records.append("\n".join([*lines, f"entryUUID: {entry_uuid}"]) + "\n")
    return "\n".join(records)


def _ldif_line(name: str, value: str) -> str:
    """One LDIF line; values that are not plain ASCII are base64-encoded (`name:: ...`)."""
    safe = value.isascii() and value == value.strip() and not value.startswith((":", "<"))
    if safe and value.isprintable():
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


@cache
def _password_hash(password: str) -> str:
    """An {SSHA} hash made by slappasswd (once per password: it is a process spawn)."""
    return _run("slappasswd", "-s", password).strip()


# --- Processes and ports -----------------------------------------------------


def _run(*command: str | Path) -> str:
    """Run a command; its output, or a RuntimeError with everything it printed."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


_PORTS_HANDED_OUT: set[int] = set()


def _free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on, never the same one twice."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _PORTS_HANDED_OUT:
            _PORTS_HANDED_OUT.add(port)
            return port


def _port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _quoted(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- Certificates ------------------------------------------------------------

_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
_DAYS = ("-days", "30")


class TestCA:
    """A throw-away certificate authority, and an unrelated one for "wrong CA" tests."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca_file, self._key = self._authority(workdir, "ca", "Appliance Test CA")
        self.wrong_ca_file, _ = self._authority(workdir, "wrong-ca", "Unrelated Test CA")

    @staticmethod
    def _authority(workdir: Path, name: str, common_name: str) -> tuple[Path, Path]:
        cert, key = workdir / f"{name}.pem", workdir / f"{name}.key"
        _run(
            "openssl", "req", "-x509", *_EC_KEY, *_DAYS, "-keyout", key, "-out", cert,
            "-subj", f"/CN={common_name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        return cert, key

    def server_cert(self, workdir: Path) -> tuple[Path, Path]:
        """A new (certificate, key) for localhost and 127.0.0.1, signed by this CA, in workdir."""
        workdir.mkdir(parents=True, exist_ok=True)
        cert, key = workdir / "server.pem", workdir / "server.key"
        _run(
            "openssl", "req", "-x509", *_EC_KEY, *_DAYS, "-keyout", key, "-out", cert,
            "-subj", "/CN=localhost", "-CA", self.ca_file, "-CAkey", self._key,
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "keyUsage=critical,digitalSignature",
            "-addext", "extendedKeyUsage=serverAuth",
        )  # fmt: skip
        return cert, key


# --- The server --------------------------------------------------------------

_RUNNING: set[Slapd] = set()


class Slapd:
    """A private slapd with the test directory. Construction loads the data; `start()` runs it."""

    def __init__(self, workdir: Path, ca: TestCA, people: int = 24) -> None:
        self.workdir = workdir
        self.people = people
        self.port, self.tls_port = _free_port(), _free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_url = f"ldaps://localhost:{self.tls_port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._seeded = False
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "db").mkdir()
        self._config = workdir / "slapd.conf"
        self._log = workdir / "slapd.log"
        self._config.write_text(self._configuration(ca.ca_file, *ca.server_cert(workdir)))
        data = workdir / "directory.ldif"
        data.write_text(directory_ldif(people), encoding="utf-8")
        _run("slapadd", "-q", "-f", self._config, "-l", data)

    def _configuration(self, ca_file: Path, cert: Path, key: Path) -> str:
        includes = [f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS]
        return "\n".join([
            *includes,
            f"include {_quoted(AD_SCHEMA)}",
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            "moduleload memberof",
            f"pidfile {_quoted(self.workdir / 'slapd.pid')}",
            f"TLSCACertificateFile {_quoted(ca_file)}",
            f"TLSCertificateFile {_quoted(cert)}",
            f"TLSCertificateKeyFile {_quoted(key)}",
            "access to attrs=userPassword by self write by anonymous auth by * none",
            "access to * by * read",
            "database mdb",
            f'suffix "{BASE_DN}"',
            f'rootdn "{ROOT_DN}"',
            f"rootpw {_password_hash(ROOT_PASSWORD)}",
            f"directory {_quoted(self.workdir / 'db')}",
            "index objectClass,uid,mail,member,memberUid eq",
            "overlay memberof",
            "",
        ])  # fmt: skip

    # Lifecycle

    def start(self) -> None:
        """Start slapd (again) on this instance's ports and wait until it answers.

        slapd runs in the foreground as our child (`-d none`: only its own
        messages, written to slapd.log), so it is reaped and its errors can be shown.
        """
        if self.running():
            return
        listeners = f"{self.url}/ ldaps://127.0.0.1:{self.tls_port}/"
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                ["slapd", "-d", "none", "-f", str(self._config), "-h", listeners],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _RUNNING.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                returncode = self._process.poll()
                self.stop()
                state = f"exited ({returncode})" if returncode is not None else "did not answer in time"
                raise RuntimeError(f"slapd on port {self.port} {state}:\n{self.output()}")
            time.sleep(0.02)
        if not self._seeded:
            self._add_groups()
            self._seeded = True

    def stop(self) -> None:
        """Stop slapd and wait until its ports refuse connections. Does nothing if it is not running."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            process.send_signal(signal.SIGCONT)  # a paused slapd handles SIGTERM once continued
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        deadline = time.monotonic() + STOP_TIMEOUT
        while _port_open(self.port) or _port_open(self.tls_port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} or {self.tls_port} still open after slapd stopped")
            time.sleep(0.02)

    def pause(self) -> None:
        """Freeze slapd (SIGSTOP): its ports still accept TCP connections but nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused slapd go on (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def running(self) -> bool:
        """Whether the slapd process is alive (a paused one included)."""
        return self._process is not None and self._process.poll() is None

    def output(self) -> str:
        """What slapd printed since it was last started."""
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def __enter__(self) -> Slapd:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _signal(self, signum: signal.Signals) -> None:
        if not self.running():
            raise RuntimeError("slapd is not running")
        assert self._process is not None
        os.kill(self._process.pid, signum)

    def _answers(self) -> bool:
        """Whether slapd accepts the root bind on ldap://."""
        if not _port_open(self.port):  # ldap3 would leave the refused socket unclosed
            return False
        try:
            with self._admin(timeout=1):
                return True
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False

    # Changes made by the tests, as the rootdn

    def modify(self, dn: str, changes: dict[str, object]) -> None:
        """Replace attributes of an entry: {name: value or list of values}; None or [] removes it."""
        replacements = {name: (MODIFY_REPLACE, _values(value)) for name, value in changes.items()}
        with self._admin() as connection:
            connection.modify(dn, replacements)

    def add(self, dn: str, object_class: list[str], attributes: dict[str, object]) -> None:
        """Add an entry."""
        with self._admin() as connection:
            connection.add(dn, object_class, {name: _values(value) for name, value in attributes.items()})

    def delete(self, dn: str) -> None:
        """Delete an entry (a leaf)."""
        with self._admin() as connection:
            connection.delete(dn)

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> None:
        """Rename or move an entry (modify DN); its entryUUID stays the same."""
        with self._admin() as connection:
            connection.modify_dn(dn, new_rdn, delete_old_dn=True, new_superior=new_superior)

    @contextlib.contextmanager
    def _admin(self, timeout: float = 5) -> Iterator[Connection]:
        """A connection bound as the rootdn over ldap://; failed operations raise."""
        server = Server(self.url, connect_timeout=timeout)
        connection = Connection(
            server, ROOT_DN, ROOT_PASSWORD, receive_timeout=timeout, raise_exceptions=True, auto_bind=True
        )
        try:
            yield connection
        finally:
            connection.unbind()

    def _add_groups(self) -> None:
        """Add the groupOfNames groups over LDAP, so that the memberof overlay sets memberOf."""
        with self._admin() as connection:
            for name, members in member_groups(self.people).items():
                connection.add(group_dn(name), ["groupOfNames"], {"cn": name, "member": members})


def _values(value: object) -> list[object]:
    """An attribute value or values as the list ldap3 expects."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


@atexit.register
def _stop_everything() -> None:
    """Stop any slapd still running when the interpreter exits."""
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop()


__all__ = [
    "BASE_DN", "PEOPLE_DN", "GROUPS_DN", "SERVICES_DN", "SERVICE_DN", "SERVICE_PASSWORD", "USER_PASSWORD",
    "ROOT_DN", "ROOT_PASSWORD", "ACCOUNT_ENABLED", "ACCOUNT_DISABLED", "Person", "Slapd", "TestCA",
    "directory_people", "group_dn", "member_groups", "posix_groups", "directory_ldif",
]  # fmt: skip
