"""Shared fixtures: real SQLite files in a temporary data directory, a real app over HTTP."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

import appliance.directory.local as local_directory
from argon2 import PasswordHasher

# Argon2 is slow on purpose; the tests sign in hundreds of times, so they use the
# cheapest parameters. Production hashes keep argon2-cffi's defaults.
local_directory.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
local_directory._DUMMY_HASH = local_directory.HASHER.hash("not a password")

from appliance.app import create_app  # noqa: E402
from appliance.directory import Person  # noqa: E402
from appliance.directory.local import HASHER  # noqa: E402
from appliance.services.context import Appliance, build_appliance  # noqa: E402
from appliance.settings import Settings, load_settings  # noqa: E402
from appliance.storage import people  # noqa: E402

PASSWORD = "correct-horse-battery"
PASSWORD_HASH = HASHER.hash(PASSWORD)
DEPARTMENTS = ("Finance", "IT", "Sales")
SITES = ("Lyon", "Paris")


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No configuration file or APPLIANCE_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("APPLIANCE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


class _Errors(logging.Handler):
    """Collects ERROR records of one logger, whatever happens to the root logger's handlers."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_server_errors() -> Iterator[None]:
    """Any 500 (an unexpected exception in a handler) fails the test that caused it."""
    logger = logging.getLogger("appliance.web")
    errors = _Errors()
    logger.addHandler(errors)
    try:
        yield
    finally:
        logger.removeHandler(errors)
    messages = [r.getMessage() for r in errors.records]
    assert not messages, f"the server failed unexpectedly: {messages}"


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on a fresh data directory; proposals released at once unless overridden."""

    def make(**sections: dict) -> Settings:
        sections.setdefault("storage", {"data_dir": str(tmp_path / "data")})
        sections.setdefault("rounds", {"release_interval_seconds": 0})
        return load_settings(**sections)

    return make


def add_person(app: Appliance, username: str, groups: set[str], attributes: dict[str, str] | None = None) -> Person:
    """A local-directory person whose password is PASSWORD."""
    person = Person(f"local:{username}", username, username.title(), f"{username}@example.org",
                    frozenset(groups), attributes or {})
    people.insert_person(app.dbs.identity, person, PASSWORD_HASH)
    return person


def seed_people(app: Appliance, staff: int = 12) -> list[Person]:
    """An admin, a moderator, an outsider and `staff` employees u00.. across departments and sites."""
    add_person(app, "admin", {"admins"})
    add_person(app, "mod", {"moderators"})
    add_person(app, "outsider", {"contractors"})
    return [
        add_person(app, f"u{i:02d}", {"staff"},
                   {"department": DEPARTMENTS[i % len(DEPARTMENTS)], "site": SITES[i % len(SITES)]})
        for i in range(staff)
    ]


@pytest.fixture
def settings_overrides() -> dict[str, dict]:
    """Settings sections a test module wants changed; override this fixture to change them."""
    return {}


@pytest.fixture
def appliance(make_settings: Callable[..., Settings], settings_overrides: dict[str, dict]) -> Iterator[Appliance]:
    """An opened appliance with seeded people (see seed_people)."""
    app = build_appliance(make_settings(**settings_overrides))
    seed_people(app)
    yield app
    app.close()


class Api:
    """One signed-in browser: its own cookies and CSRF header."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def sign_in(self, username: str, password: str = PASSWORD):
        self.client.get("/healthz")  # any GET hands out the csrftoken cookie
        self.client.headers["x-csrftoken"] = self.client.cookies.get("csrftoken", "")
        return self.client.post("/api/v1/session", json={"username": username, "password": password})

    def __getattr__(self, name: str):
        return getattr(self.client, name)


@pytest.fixture
def api(appliance: Appliance) -> Iterator[Callable[[str | None], Api]]:
    """api("u01") -> a client signed in as u01; api(None) -> an anonymous client with a CSRF token."""
    app = create_app(appliance.settings, appliance)

    def make(username: str | None) -> Api:
        # Not entered as a context manager: the app's lifespan belongs to no single browser.
        client = TestClient(app)
        browser = Api(client)
        if username is None:
            client.get("/healthz")
            client.headers["x-csrftoken"] = client.cookies.get("csrftoken", "")
        else:
            response = browser.sign_in(username)
            assert response.status_code == 200, response.text
        return browser

    yield make


def create_open_round(admin: Api, **fields) -> str:
    """A round created and opened by this admin client; its id."""
    body = {"title": "Day-to-day work", "question": "How could we make our day-to-day work easier?"} | fields
    response = admin.post("/api/v1/rounds", json=body)
    assert response.status_code == 201, response.text
    round_id = response.json()["id"]
    assert admin.post(f"/api/v1/rounds/{round_id}/open").status_code == 200
    return round_id


# A real OpenLDAP server (tests/services/slapd.py), shared by the tests that only read it.

@pytest.fixture(scope="session")
def ldap_ca(tmp_path_factory: pytest.TempPathFactory):
    from tests.services.slapd import TestCA

    return TestCA(tmp_path_factory.mktemp("ldap-ca"))


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory, ldap_ca) -> Iterator:
    """A running slapd that tests must not stop or change (use own_slapd for that)."""
    from tests.services.slapd import Slapd

    with Slapd(tmp_path_factory.mktemp("slapd"), ldap_ca) as server:
        yield server


@pytest.fixture
def own_slapd(tmp_path: Path, ldap_ca) -> Iterator:
    """A slapd of this test alone: it may stop, pause or change it."""
    from tests.services.slapd import Slapd

    with Slapd(tmp_path / "own-slapd", ldap_ca) as server:
        yield server


def ldap_sections(server, ca, **ldap: object) -> dict[str, dict]:
    """Settings sections for signing in against this slapd over StartTLS, roles from its groups."""
    from tests.services.slapd import GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD

    return {
        "directory": {"kind": "ldap", "admin_groups": ["appliance-admins", "admins"],
                      "moderator_groups": ["appliance-moderators"]},
        "ldap": {
            "servers": [server.url], "start_tls": True, "ca_file": str(ca.ca_file),
            "connect_timeout_seconds": 2, "timeout_seconds": 2, "retry_offline_server_seconds": 0,
            "bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD,
            "user_search_base": PEOPLE_DN, "group_search_base": GROUPS_DN,
            "segment_attributes": {"department": "departmentNumber", "site": "l"},
        } | ldap,
    }


# Pages: a browser without scripts, posting forms with the CSRF token of the page it read.

class PageBrowser:
    """A client that reads pages and posts their forms, as a browser without JavaScript does."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def token(self) -> str:
        if "csrftoken" not in self.client.cookies:
            self.client.get("/sign-in")
        return self.client.cookies.get("csrftoken", "")

    def submit(self, path: str, fields: dict[str, str] | None = None, **headers: str):
        """POST a form as the page would (with its hidden CSRF field); redirects are not followed."""
        return self.client.post(path, data={"_csrf_token": self.token()} | (fields or {}), headers=headers,
                                follow_redirects=False)

    def sign_in(self, username: str, password: str = PASSWORD):
        return self.submit("/sign-in", {"username": username, "password": password, "next": "/rounds"})

    def __getattr__(self, name: str):
        return getattr(self.client, name)


@pytest.fixture
def pages(appliance: Appliance) -> Iterator[Callable[[str | None], PageBrowser]]:
    """pages("u01") -> a browser signed in through the sign-in form; pages(None) -> signed out."""
    app = create_app(appliance.settings, appliance)

    def make(username: str | None) -> PageBrowser:
        browser = PageBrowser(TestClient(app))
        if username is not None:
            response = browser.sign_in(username)
            assert response.status_code == 303, response.text
        return browser

    yield make


@pytest.fixture
def not_ldap():
    """A port that answers every connection in another protocol (an HTTP server put where LDAP was expected)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def reply(client: socket.socket) -> None:
        with client:
            client.settimeout(5)
            try:
                if client.recv(4096):
                    client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                                   b"Content-Length: 200\r\n\r\n" + b"x" * 200)
            except OSError:
                pass

    def answer() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=reply, args=(client,), daemon=True).start()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"ldap://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()
