"""Failed sign-ins are throttled per username and per address (429 + Retry-After), without a long lockout."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import PASSWORD

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(appliance) -> Clock:
    appliance.clock = Clock()
    return appliance.clock


@pytest.fixture
def settings_overrides() -> dict[str, dict]:
    return {"security": {"failed_sign_ins_per_user": 5, "failed_sign_ins_per_address": 12,
                         "sign_in_max_delay_seconds": 100}}


def fail(browser, username: str, times: int = 1) -> None:
    for _ in range(times):
        assert browser.sign_in(username, "wrong-password-1").status_code == 401


def assert_throttled(response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "too many failed sign-ins: try again later"
    assert int(response.headers["retry-after"]) == retry_after


def test_five_failures_slow_a_username_down_then_the_right_password_works_again(api, clock) -> None:
    browser = api(None)
    fail(browser, "u00", 5)
    assert_throttled(browser.sign_in("u00", PASSWORD), 15)  # even the right password waits
    clock.advance(10)
    assert_throttled(browser.sign_in("u00", PASSWORD), 5)
    clock.advance(5)
    assert browser.sign_in("u00", PASSWORD).status_code == 200
    fail(browser, "u00", 4)  # the count started again after the success
    assert browser.sign_in("u00", PASSWORD).status_code == 200


def test_the_delay_doubles_with_each_failure_up_to_the_maximum(api, clock) -> None:
    browser = api(None)
    fail(browser, "u00", 5)
    for expected in (15, 30, 60, 100, 100):
        assert_throttled(browser.sign_in("u00", "wrong-password-1"), expected)
        clock.advance(expected)
        fail(browser, "u00")


def test_counts_expire_fifteen_minutes_after_the_last_failure(api, clock) -> None:
    browser = api(None)
    fail(browser, "u00", 4)
    clock.advance(15 * 60 + 1)
    fail(browser, "u00", 4)  # a fresh count: 4 more failures, still not throttled
    assert browser.sign_in("u00", PASSWORD).status_code == 200


def test_throttled_attempts_never_reach_the_directory_and_do_not_count(api, appliance, clock, monkeypatch) -> None:
    browser = api(None)
    fail(browser, "u00", 5)
    asked: list[str] = []
    real = appliance.directory.authenticate
    monkeypatch.setattr(appliance.directory, "authenticate", lambda u, p: asked.append(u) or real(u, p))
    for _ in range(20):
        assert browser.sign_in("u00", "guess-number-n").status_code == 429
    assert asked == []
    clock.advance(15)
    assert browser.sign_in("u00", PASSWORD).status_code == 200  # 20 refused attempts added no delay


def test_someone_guessing_a_colleagues_password_does_not_lock_out_the_colleagues_own_browser(api, clock) -> None:
    colleague = api("u01")  # signed in before: this browser is known for u01
    assert colleague.delete("/api/v1/session").status_code == 204
    attacker = api(None)
    fail(attacker, "u01", 5)
    assert attacker.sign_in("u01", PASSWORD).status_code == 429
    assert colleague.sign_in("u01", PASSWORD).status_code == 200


def test_a_known_device_cookie_counts_only_for_its_own_person(api, clock) -> None:
    browser = api("u01")  # known for u01, not for u02
    assert browser.delete("/api/v1/session").status_code == 204
    fail(api(None), "u02", 5)
    assert browser.sign_in("u02", PASSWORD).status_code == 429


def test_a_forged_known_device_cookie_is_ignored(api, clock) -> None:
    browser = api(None)
    fail(browser, "u01", 5)
    browser.cookies.set("known_device", "made-up.0123456789abcdef0123456789abcdef", path="/api/v1/session")
    assert browser.sign_in("u01", PASSWORD).status_code == 429


def test_one_address_trying_many_usernames_waits_fifteen_minutes(api, clock) -> None:
    browser = api(None)
    for i in range(12):
        fail(browser, f"u{i:02d}")  # one failure each: no username reaches its limit
    assert_throttled(browser.sign_in("u11", PASSWORD), 15 * 60)
    clock.advance(15 * 60)
    assert browser.sign_in("u11", PASSWORD).status_code == 200


def test_a_username_throttled_for_one_person_leaves_others_alone(api, clock) -> None:
    fail(api(None), "u00", 5)
    assert api(None).sign_in("u01", PASSWORD).status_code == 200


def test_an_empty_password_or_a_nul_counts_as_a_failure(api, clock) -> None:
    browser = api(None)
    for password, status in (("", 401), ("with\\u0000nul-character", 401), ("\\ud800lone-surrogate", 400)):
        body = '{"username": "u00", "password": "%s"}' % password  # JSON escapes, sent as they are
        response = browser.post("/api/v1/session", content=body, headers={"content-type": "application/json"})
        assert response.status_code == status, response.text
    fail(browser, "u00", 3)
    assert browser.sign_in("u00", PASSWORD).status_code == 429


def test_identity_db_holds_neither_the_names_tried_nor_the_client_address(api, appliance, clock) -> None:
    typed = "Tr0ub4dor&3-typed-as-a-name"
    browser = api(None)
    fail(browser, typed, 3)
    fail(browser, "u00", 2)
    data_dir = Path(appliance.settings.storage.data_dir)
    stored = b"".join(p.read_bytes() for p in data_dir.glob("identity.db*"))
    assert stored.count(b"sign_in_failures") >= 1  # the table is there
    for secret in (typed, "testclient"):
        assert secret.encode() not in stored


def test_spelling_variants_of_a_username_share_one_count(api, clock) -> None:
    browser = api(None)
    for variant in ("u00", " u00", "u00 ", "U00", "ｕ００", "u00\t"):
        assert browser.sign_in(variant, "wrong-password-1").status_code in (401, 429)
    assert browser.sign_in("u00", PASSWORD).status_code == 429


def test_parallel_guesses_count_as_much_as_sequential_ones(api, appliance, clock) -> None:
    from concurrent.futures import ThreadPoolExecutor

    asked: list[str] = []
    real = appliance.directory.authenticate

    def slow_authenticate(username: str, password: str):
        asked.append(username)
        return real(username, password)

    appliance.directory.authenticate = slow_authenticate
    browsers = [api(None) for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda b: b.sign_in("u00", "wrong-password-1").status_code, browsers))
    assert sorted(set(statuses)) == [401, 429]
    assert len(asked) == statuses.count(401) <= 5


def test_a_known_device_is_not_held_back_by_others_failing_from_its_address(api, clock) -> None:
    colleague = api("u01")
    assert colleague.delete("/api/v1/session").status_code == 204
    neighbour = api(None)  # same address: an office behind one NAT
    for i in range(12):
        fail(neighbour, f"u{i + 2:02d}" if i < 10 else "nobody")
    assert neighbour.sign_in("u02", PASSWORD).status_code == 429
    assert colleague.sign_in("u01", PASSWORD).status_code == 200


@pytest.mark.parametrize("cookie", ["a.%C3%A9", "%C3%A9.%C3%A9", ".", "x", "a." + "0" * 32])
def test_a_malformed_known_device_cookie_is_ignored(api, cookie) -> None:
    browser = api(None)
    browser.cookies.set("known_device", cookie, path="/api/v1/session")
    assert browser.sign_in("u00", PASSWORD).status_code == 200
