"""Signing in through a real slapd that fails: stopped, hung, unreachable, distrusted or misconfigured.

Whatever goes wrong with the directory, a sign-in answers 503 "directory
unreachable" within about the configured timeout (never a 500, never a 401,
never a hung worker), sessions already open keep working, the break-glass
local admin can still sign in, and the appliance recovers by itself once the
directory is back.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
from litestar.testing import TestClient

from appliance.app import create_app
from appliance.directory import DirectoryUnavailable
from appliance.services.context import Appliance, build_appliance
from appliance.services.notifications import send_round_mail
from appliance.services.rounds import RoundDraft, create_round
from appliance.settings import Settings
from tests.conftest import PASSWORD, Api, ldap_sections, seed_people
from tests.services.slapd import SERVICE_PASSWORD, USER_PASSWORD, Slapd

UNREACHABLE = "directory unreachable: try again in a moment"


@pytest.fixture
def settings_overrides(request, own_slapd, ldap_ca) -> dict[str, dict]:
    """Sign-in through this test's own slapd over StartTLS (timeouts of 2 s).

    A test parametrized indirectly with {"timeout_seconds": 1} (say) changes those ldap settings.
    """
    return ldap_sections(own_slapd, ldap_ca, **getattr(request, "param", {}))


class Records(logging.Handler):
    """Every record of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self, name: str) -> list[str]:
        return [r.getMessage() for r in self.records if r.name == name and r.levelno == logging.WARNING]

    def text(self) -> str:
        return "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in self.records)


@pytest.fixture
def appliance_log() -> Iterator[Records]:
    """What the appliance (and ldap3) log during the test, DEBUG and up.

    Not caplog: building a Litestar app during the test reconfigures the root
    logger, which drops caplog's handler, so the warnings logged while handling
    requests would go unseen.
    """
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("appliance", "ldap3")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels):
        logger.removeHandler(handler)
        logger.setLevel(level)


def browser(app: Appliance) -> Api:
    """An anonymous browser of this appliance, with its CSRF token."""
    client = TestClient(create_app(app.settings, app))
    client.get("/healthz")
    client.headers["x-csrftoken"] = client.cookies.get("csrftoken", "")
    return Api(client)


@contextmanager
def ldap_appliance(make_settings: Callable[..., Settings], sections: dict[str, dict]) -> Iterator[Appliance]:
    """An appliance built from these sections, with the local accounts of seed_people, closed afterwards."""
    app = build_appliance(make_settings(**sections))
    seed_people(app)
    try:
        yield app
    finally:
        app.close()


def timed_sign_in(api: Callable[[str | None], Api], username: str, password: str = USER_PASSWORD):
    """(response, seconds) of a new browser signing in."""
    anonymous = api(None)
    started = time.monotonic()
    response = anonymous.sign_in(username, password)
    return response, time.monotonic() - started


def assert_unreachable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == UNREACHABLE
    assert int(response.headers["retry-after"]) > 0


def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (the kernel refuses connections at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def signs_in(app: Appliance, username: str, password: str = USER_PASSWORD) -> int:
    """The status of a new browser's sign-in."""
    return browser(app).sign_in(username, password).status_code


# --- The server goes away --------------------------------------------------------


def test_a_stopped_server_answers_503_at_once_and_sign_in_recovers_without_restart(api, own_slapd):
    signed_in = api(None)
    assert signed_in.sign_in("u12", USER_PASSWORD).status_code == 200

    own_slapd.stop()
    for _ in range(6):  # more than failed_sign_ins_per_user: an unreachable directory is not a wrong password
        response, elapsed = timed_sign_in(api, "u13")
        assert_unreachable(response)
        assert elapsed < 3

    me = signed_in.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["username"] == "u12"

    ready = api(None).get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["directory"].startswith("unreachable")
    assert ready.json()["identity"] == ready.json()["ballots"] == "ok"

    admin = api(None).sign_in("admin", PASSWORD)
    assert admin.status_code == 200 and admin.json()["roles"] == ["admin"]
    assert api(None).sign_in("admin", "not-the-password").status_code == 401  # checked locally
    assert api(None).sign_in("u13", "not-the-password").status_code == 503  # cannot be checked

    own_slapd.start()
    response, _ = timed_sign_in(api, "u13")
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "u13"
    ready = api(None).get("/readyz").json()
    assert ready["status"] == "ready" and ready["directory"] == "ok"


def test_a_sign_in_through_a_stale_pooled_connection_works_after_a_server_restart(api, own_slapd):
    assert api(None).sign_in("u12", USER_PASSWORD).status_code == 200
    own_slapd.stop()
    own_slapd.start()  # the pooled connections are now closed by the server
    response, elapsed = timed_sign_in(api, "u14")
    assert response.status_code == 200, response.text
    assert elapsed < 3


@pytest.mark.parametrize("settings_overrides", [{"timeout_seconds": 1}], indirect=True)
def test_a_hung_server_answers_503_within_about_the_timeout_then_recovers(api, own_slapd):
    assert api(None).sign_in("u12", USER_PASSWORD).status_code == 200  # a pooled connection exists
    own_slapd.pause()
    try:
        response, elapsed = timed_sign_in(api, "u13")
        assert_unreachable(response)
        assert elapsed < 4

        fresh, elapsed = timed_sign_in(api, "u14")  # no pooled connection left: a new one hangs too
        assert_unreachable(fresh)
        assert elapsed < 4
    finally:
        own_slapd.resume()
    response, elapsed = timed_sign_in(api, "u13")
    assert response.status_code == 200, response.text
    assert elapsed < 3


@pytest.mark.parametrize("settings_overrides", [{"timeout_seconds": 10}], indirect=True)
def test_readyz_answers_within_its_wait_when_the_server_hangs_and_sees_it_come_back(api, own_slapd):
    assert api(None).get("/readyz").json()["directory"] == "ok"
    before = [t for t in threading.enumerate() if t.name == "directory-check"]  # other tests' may still end
    own_slapd.pause()
    try:
        for _ in range(3):  # a load balancer's probes, closer together than the LDAP timeout
            started = time.monotonic()
            ready = api(None).get("/readyz")
            assert time.monotonic() - started < 4  # not the 10 s of the LDAP timeout
            assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.text
            assert ready.json()["directory"].startswith("not answering: no answer within 2 s")
            checks = [t for t in threading.enumerate() if t.name == "directory-check" and t not in before]
            assert len(checks) == 1  # each probe waits for the check in flight instead of starting another
    finally:
        own_slapd.resume()
    deadline = time.monotonic() + 15
    while (ready := api(None).get("/readyz").json())["status"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ready["status"] == "ready" and ready["directory"] == "ok"


@pytest.mark.parametrize("settings_overrides", [{"timeout_seconds": 1}], indirect=True)
def test_concurrent_sign_ins_on_a_hung_server_all_answer_503_and_none_hangs(api, own_slapd):
    browsers = [api(None) for _ in range(6)]
    results: dict[int, tuple[int, float]] = {}

    def sign_in(i: int) -> None:
        started = time.monotonic()
        response = browsers[i].sign_in(f"u{12 + i}", USER_PASSWORD)
        results[i] = (response.status_code, time.monotonic() - started)

    own_slapd.pause()
    try:
        threads = [threading.Thread(target=sign_in, args=(i,), daemon=True) for i in range(len(browsers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert not any(thread.is_alive() for thread in threads), "a sign-in hung on the paused directory"
    finally:
        own_slapd.resume()
    assert sorted(results) == list(range(len(browsers)))
    assert [status for status, _ in results.values()] == [503] * len(browsers)
    assert max(seconds for _, seconds in results.values()) < 4
    assert api(None).sign_in("u20", USER_PASSWORD).status_code == 200


# --- Two servers -----------------------------------------------------------------


def test_a_pool_fails_over_to_whichever_server_answers(make_settings, own_slapd, ldap_ca, tmp_path):
    with Slapd(tmp_path / "second", ldap_ca) as second:
        own_slapd.stop()
        sections = ldap_sections(own_slapd, ldap_ca, servers=[own_slapd.url, second.url])
        with ldap_appliance(make_settings, sections) as app:
            response = browser(app).sign_in("u12", USER_PASSWORD)
            assert response.status_code == 200, response.text
            first_id = app.directory.authenticate("u12", USER_PASSWORD).id

            second.stop()
            own_slapd.start()
            started = time.monotonic()
            response = browser(app).sign_in("u13", USER_PASSWORD)
            assert response.status_code == 200, response.text
            assert time.monotonic() - started < 3
            assert app.directory.authenticate("u12", USER_PASSWORD).id == first_id  # same entryUUID on both


def test_a_closed_port_first_in_the_pool_is_skipped(make_settings, slapd, ldap_ca):
    sections = ldap_sections(slapd, ldap_ca, servers=[f"ldap://127.0.0.1:{closed_port()}", slapd.url])
    with ldap_appliance(make_settings, sections) as app:
        for username in ("u15", "u16"):
            started = time.monotonic()
            assert signs_in(app, username) == 200
            assert time.monotonic() - started < 3


def test_a_port_that_answers_in_another_protocol_is_a_directory_problem_not_a_500(make_settings, slapd, ldap_ca,
                                                                                   not_ldap):
    sections = ldap_sections(slapd, ldap_ca, servers=[not_ldap], start_tls=False)
    with ldap_appliance(make_settings, sections) as app:
        response = browser(app).sign_in("u12", USER_PASSWORD)
        assert response.status_code == 503, response.text
        ready = browser(app).get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.text
        assert ready.json()["directory"].startswith("unreachable")


# --- TLS -------------------------------------------------------------------------


def test_ldaps_with_the_right_ca_signs_in(make_settings, slapd, ldap_ca):
    sections = ldap_sections(slapd, ldap_ca, servers=[slapd.ldaps_url], start_tls=False)
    with ldap_appliance(make_settings, sections) as app:
        response = browser(app).sign_in("alice", USER_PASSWORD)
        assert response.status_code == 200, response.text
        assert response.json()["roles"] == ["admin"]


@pytest.mark.parametrize("scheme", ["starttls", "ldaps"])
def test_a_certificate_from_an_unknown_ca_is_refused_with_503(make_settings, slapd, ldap_ca, scheme, appliance_log):
    url = slapd.url if scheme == "starttls" else slapd.ldaps_url
    sections = ldap_sections(slapd, ldap_ca, servers=[url], start_tls=scheme == "starttls",
                             ca_file=str(ldap_ca.wrong_ca_file))
    with ldap_appliance(make_settings, sections) as app:
        response = browser(app).sign_in("u12", USER_PASSWORD)
        assert_unreachable(response)
        assert signs_in(app, "admin", PASSWORD) == 200  # break-glass
    warnings = appliance_log.warnings("appliance.web")
    assert any("CERTIFICATE_VERIFY_FAILED" in w for w in warnings), warnings


@pytest.mark.parametrize("scheme", ["starttls", "ldaps"])
def test_skipping_certificate_verification_signs_in_but_warns(make_settings, slapd, ldap_ca, scheme, caplog):
    url = slapd.url if scheme == "starttls" else slapd.ldaps_url
    sections = ldap_sections(slapd, ldap_ca, servers=[url], start_tls=scheme == "starttls",
                             ca_file=str(ldap_ca.wrong_ca_file), insecure_skip_certificate_verification=True)
    with caplog.at_level(logging.WARNING, logger="appliance"):
        with ldap_appliance(make_settings, sections) as app:
            warnings = [r.getMessage() for r in caplog.records
                        if r.name == "appliance" and r.levelno == logging.WARNING]
            assert any("insecure_skip_certificate_verification" in w for w in warnings), warnings
            assert signs_in(app, "u12") == 200


def test_a_plain_ldap_url_without_start_tls_warns_that_passwords_cross_unencrypted(make_settings, slapd, ldap_ca,
                                                                                    caplog):
    sections = ldap_sections(slapd, ldap_ca, start_tls=False)
    with caplog.at_level(logging.WARNING, logger="appliance"):
        with ldap_appliance(make_settings, sections) as app:
            warnings = [r.getMessage() for r in caplog.records
                        if r.name == "appliance" and r.levelno == logging.WARNING]
            assert any("unencrypted" in w and "ldap://" in w for w in warnings), warnings
            assert signs_in(app, "u12") == 200


@pytest.mark.parametrize("scheme", ["starttls", "ldaps"])
def test_verified_tls_does_not_warn(make_settings, slapd, ldap_ca, scheme, caplog):
    url = slapd.url if scheme == "starttls" else slapd.ldaps_url
    sections = ldap_sections(slapd, ldap_ca, servers=[url], start_tls=scheme == "starttls")
    with caplog.at_level(logging.WARNING, logger="appliance"):
        with ldap_appliance(make_settings, sections):
            pass
    assert not [r for r in caplog.records if r.name == "appliance" and r.levelno >= logging.WARNING]


# --- Misconfiguration ------------------------------------------------------------


def test_a_refused_service_account_is_named_by_readyz_and_round_mail_waits_without_a_traceback(
        make_settings, slapd, ldap_ca, appliance_log):
    sections = ldap_sections(slapd, ldap_ca, bind_password="not-the-service-secret")
    with ldap_appliance(make_settings, sections) as app:
        ready = browser(app).get("/readyz").json()
        assert ready["status"] == "degraded"
        assert ready["directory"].startswith("misconfigured: it refuses the service account or a search base")
        assert "cn=" not in ready["directory"] and "dc=" not in ready["directory"]  # /readyz is public
        round_ = create_round(app, "admin", RoundDraft(title="Canteen", question="Why?"))
        app.dbs.ballots.execute("UPDATE rounds SET status = 'open' WHERE id = ?", [round_.id])  # its invitation
        app.dbs.ballots.conn.commit()
        send_round_mail(app, datetime.now(timezone.utc))  # no job failure: the next run tries again
    said = [r for r in appliance_log.records if round_.id in r.getMessage()]
    assert said and all(r.levelno == logging.WARNING and not r.exc_info for r in said), appliance_log.text()
    assert "its mail waits for the directory: the service account" in said[0].getMessage()


def test_a_refused_service_account_answers_503_and_logs_why_but_no_password(make_settings, slapd, ldap_ca,
                                                                            appliance_log):
    wrong = "not-the-service-secret"
    sections = ldap_sections(slapd, ldap_ca, bind_password=wrong)
    with ldap_appliance(make_settings, sections) as app:
        for _ in range(6):  # more than failed_sign_ins_per_user: a refused service account is not a wrong password
            assert_unreachable(browser(app).sign_in("u12", USER_PASSWORD))
        assert signs_in(app, "admin", PASSWORD) == 200
    warnings = appliance_log.warnings("appliance.web")
    assert any("invalid credentials" in w for w in warnings), warnings
    assert appliance_log.records
    for secret in (USER_PASSWORD, PASSWORD, wrong, SERVICE_PASSWORD):
        assert secret not in appliance_log.text()


@pytest.mark.parametrize("key", ["user_search_base", "group_search_base"])
def test_a_wrong_search_base_answers_503_not_401(make_settings, slapd, ldap_ca, key, appliance_log):
    sections = ldap_sections(slapd, ldap_ca, **{key: "ou=nobody,dc=example,dc=org"})
    with ldap_appliance(make_settings, sections) as app:
        for _ in range(3):
            assert_unreachable(browser(app).sign_in("u12", USER_PASSWORD))
        if key == "user_search_base":  # what readiness checks (a wrong group base only shows at sign-in)
            ready = browser(app).get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    warnings = appliance_log.warnings("appliance.web")
    assert any("ou=nobody" in w and "does not exist" in w for w in warnings), warnings


def test_a_wrong_password_is_still_401_with_a_working_directory(make_settings, slapd, ldap_ca):
    with ldap_appliance(make_settings, ldap_sections(slapd, ldap_ca)) as app:
        response = browser(app).sign_in("u12", "not-the-password")
        assert response.status_code == 401
        assert browser(app).sign_in("nobody-at-all", USER_PASSWORD).status_code == 401


# --- More pressure ---------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"timeout_seconds": 1, "pool_size": 2}], indirect=True)
def test_more_sign_ins_than_pooled_connections_on_a_hung_server_all_answer_503(api, own_slapd):
    browsers = [api(None) for _ in range(4)]  # twice pool_size: half of them wait for a pooled connection
    results: dict[int, int] = {}
    started = time.monotonic()

    def sign_in(i: int) -> None:
        results[i] = browsers[i].sign_in(f"u{12 + i}", USER_PASSWORD).status_code

    own_slapd.pause()
    try:
        threads = [threading.Thread(target=sign_in, args=(i,), daemon=True) for i in range(len(browsers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)
        assert not any(thread.is_alive() for thread in threads), "a sign-in hung waiting for a pooled connection"
    finally:
        own_slapd.resume()
    # each waits at most connect_timeout + timeout (3 s) for a slot, then at most a timeout
    assert time.monotonic() - started < 5
    assert results == dict.fromkeys(range(len(browsers)), 503)
    assert api(None).sign_in("u20", USER_PASSWORD).status_code == 200


def test_in_a_pool_an_offline_server_is_skipped_for_retry_offline_server_seconds(
        make_settings, own_slapd, ldap_ca, tmp_path):
    with Slapd(tmp_path / "second", ldap_ca) as second:
        sections = ldap_sections(own_slapd, ldap_ca, servers=[own_slapd.url, second.url],
                                 retry_offline_server_seconds=2)
        with ldap_appliance(make_settings, sections) as app:
            own_slapd.stop()
            # The first server is marked offline during this sign-in, at `started` or later: a loaded machine
            # may take a while to finish it through the second server, so times count from its start.
            started = time.monotonic()
            assert signs_in(app, "u12") == 200  # through the second server; the first is marked offline
            own_slapd.start()
            second.stop()
            if time.monotonic() - started < 1.5:
                assert_unreachable(browser(app).sign_in("u12", USER_PASSWORD))  # the first is back, still skipped
            while (status := signs_in(app, "u12")) == 503:
                assert time.monotonic() - started < 6, "the first server was not tried again"
                time.sleep(0.1)
            assert status == 200
            assert time.monotonic() - started >= 1.9


@pytest.mark.parametrize("settings_overrides", [{"retry_offline_server_seconds": 30}], indirect=True)
def test_a_lone_server_is_tried_again_as_soon_as_it_is_back(api, own_slapd):
    own_slapd.stop()
    assert_unreachable(api(None).sign_in("u12", USER_PASSWORD))
    own_slapd.start()
    assert api(None).sign_in("u12", USER_PASSWORD).status_code == 200


def test_a_refused_service_account_leaks_no_connection(make_settings, slapd, ldap_ca):
    sections = ldap_sections(slapd, ldap_ca, bind_password="not-the-service-secret")
    with ldap_appliance(make_settings, sections) as app:
        def open_files() -> int:
            return len(os.listdir("/proc/self/fd"))

        visitor = browser(app)
        assert visitor.sign_in("u12", USER_PASSWORD).status_code == 503
        before = open_files()
        for _ in range(30):
            assert visitor.sign_in("u12", USER_PASSWORD).status_code == 503
        assert open_files() - before < 5
        assert len(app.directory.primary.pool.pool_states) < 5


def test_a_server_size_limit_is_an_error_not_a_smaller_audience(make_settings, ldap_ca, tmp_path):
    """OpenLDAP stops a non-root search at 500 entries by default: a truncated audience would be wrong."""
    with Slapd(tmp_path / "big", ldap_ca, people=520) as big:
        with ldap_appliance(make_settings, ldap_sections(big, ldap_ca)) as app:
            with pytest.raises(DirectoryUnavailable, match="size limit"):
                app.directory.audience([])
            assert signs_in(app, "u510") == 200  # signing in is one entry: unaffected
