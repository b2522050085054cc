"""Signing in and out: cookies, expiry, roles, password hashes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher

from appliance.directory.local import HASHER
from appliance.storage import people
from appliance.storage import sessions as sessions_storage
from tests.conftest import PASSWORD, add_person


def test_sign_in_sets_an_httponly_samesite_session_cookie(api):
    browser = api(None)
    response = browser.sign_in("u01")
    assert response.status_code == 200
    assert response.json() == {"username": "u01", "display_name": "U01", "roles": []}
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie


def test_cookie_secure_setting_marks_the_session_cookie_secure(make_settings):
    from litestar.testing import TestClient

    from appliance.app import create_app
    from appliance.services.context import build_appliance

    app = build_appliance(make_settings(security={"cookie_secure": True}))
    add_person(app, "eve", {"staff"})
    client = TestClient(create_app(app.settings, app), base_url="https://testserver.local")
    client.get("/healthz")
    response = client.post("/api/v1/session", json={"username": "eve", "password": PASSWORD},
                           headers={"x-csrftoken": client.cookies.get("csrftoken", "")})
    assert response.status_code == 200
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("session="))
    assert "Secure" in cookie
    app.close()


def test_me_lists_the_roles_given_by_groups(api):
    assert api("admin").get("/api/v1/me").json()["roles"] == ["admin"]
    assert api("mod").get("/api/v1/me").json()["roles"] == ["moderator"]


def test_sign_out_ends_the_session(api):
    browser = api("u02")
    assert browser.delete("/api/v1/session").status_code == 204
    response = browser.get("/api/v1/me")
    assert response.status_code == 401


def test_an_expired_session_is_refused(api, appliance):
    browser = api("u03")
    lifetime = appliance.settings.security.session_lifetime_hours
    real_clock = appliance.clock
    appliance.clock = lambda: real_clock() + timedelta(hours=lifetime + 1, seconds=1)  # expiry is rounded up to the hour
    try:
        response = browser.get("/api/v1/me")
    finally:
        appliance.clock = real_clock
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_stolen_identity_database_holds_no_usable_session_token(api, appliance):
    browser = api("u04")
    token = browser.cookies.get("session")
    stored = [row[0] for row in appliance.dbs.identity.conn.execute("SELECT token_hash FROM sessions")]
    assert token and token not in stored and len(stored) == 1


def test_a_copy_of_identity_db_does_not_say_who_signed_in(api, appliance):
    browser = api("u04")
    assert browser.get("/api/v1/me").json()["username"] == "u04"
    person, _ = people.find_by_username(appliance.dbs.identity, "u04")
    appliance.dbs.identity.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sessions = appliance.dbs.identity.conn.execute("SELECT * FROM sessions").fetchall()
    assert len(sessions) == 1 and len(sessions[0]) == 3  # the token's hash, the sealed person, the expiry
    data = Path(appliance.settings.storage.data_dir)
    copied = b"".join(p.read_bytes() for p in data.glob("identity.db*"))
    assert person.id.encode() in copied  # in the people table, as it must be...
    sealed = sessions[0][1]
    for trace in (person.id, "u04", person.display_name, "department"):
        assert trace.encode() not in sealed  # ...but nothing in the session says whose it is
    add_person(appliance, "a-much-longer-username", {"staff", "admins", "pilots", "finance"},
               {"department": "Research and development", "site": "Saint-Quentin-en-Yvelines"})
    api("a-much-longer-username")
    lengths = {len(row[0]) for row in appliance.dbs.identity.conn.execute("SELECT sealed FROM sessions")}
    assert len(lengths) == 1  # nor does its length: every sealed person fills one block


def test_a_removed_local_account_or_a_new_password_ends_its_sessions_at_once(api, appliance):
    from appliance.directory.local import LocalDirectory

    removed, renewed, other = api("u07"), api("u08"), api("u09")
    assert LocalDirectory(appliance.dbs.identity).set_password("u08", "a-brand-new-password-2030")
    assert people.delete_person(appliance.dbs.identity, "u07")
    assert removed.get("/api/v1/me").status_code == 401 and renewed.get("/api/v1/me").status_code == 401
    assert other.get("/api/v1/me").status_code == 200
    assert api(None).sign_in("u08", "a-brand-new-password-2030").status_code == 200
    # The ended sessions' rows stay until they expire: a copy of identity.db does not learn who was signed out.
    assert appliance.dbs.identity.conn.execute("SELECT count(*) FROM sessions").fetchone() == (4,)


def test_a_session_cookie_for_another_sessions_row_does_not_open_it(api, appliance):
    browser = api("u05")
    token = browser.cookies.get("session")
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    row = appliance.dbs.identity.conn.execute("SELECT sealed, expires_at FROM sessions").fetchone()
    appliance.dbs.identity.conn.execute("INSERT INTO sessions VALUES (?, ?, ?)",
                                        (sessions_storage.token_hash(forged), *row))  # a row copied under a new key
    browser.cookies.set("session", forged)
    assert browser.get("/api/v1/me").status_code == 401


def test_a_password_hash_with_old_parameters_is_rehashed_at_sign_in(api, appliance):
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    people.set_password_hash(appliance.dbs.identity, "u05", weak)
    assert api(None).sign_in("u05").status_code == 200
    _, stored = people.find_by_username(appliance.dbs.identity, "u05")
    assert stored != weak and not HASHER.check_needs_rehash(stored)


def test_the_openapi_schema_documents_the_api(api):
    schema = api(None).get("/schema/openapi.json").json()
    assert "/api/v1/rounds/{round_id}/ballots" in schema["paths"]
    assert schema["components"]["securitySchemes"]["csrf"] == {
        "type": "apiKey", "name": "X-CSRFToken", "in": "header",
        "description": "the value of the csrftoken cookie (set by any GET), on POST, PUT, PATCH and DELETE"}
    for path in ("ballots", "proposals", "proposals/similar"):  # the limits a client must expect
        assert {"429", "503"} <= set(schema["paths"][f"/api/v1/rounds/{{round_id}}/{path}"]["post"]["responses"])
    assert schema["info"]["title"] == "Consultation appliance"


def test_health_and_readiness_answer_without_signing_in(api):
    client = api(None)
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    # The test client runs no lifespan: no scheduler started in this process, nor anywhere else.
    assert ready["scheduler"] == "stopped" and ready["outbox"] == "0 waiting, 0 failed"


def test_a_stored_session_tells_the_sign_in_time_only_to_the_hour(api, appliance):
    now = appliance.clock()
    appliance.clock = lambda: now  # one instant for the sign-in and the check, even across an hour's turn
    api("u06")
    (expires_at,) = appliance.dbs.identity.conn.execute("SELECT expires_at FROM sessions").fetchone()
    assert expires_at % 3600 == 0
    lifetime = appliance.settings.security.session_lifetime_hours * 3600
    assert 0 <= expires_at - (appliance.clock().timestamp() + lifetime) < 3600


def test_a_local_username_is_found_whatever_its_case_or_width(api, appliance):
    for typed in ("U06", " u06 ", "\uff55\uff10\uff16"):  # "ｕ０６": full-width, as some keyboards type it
        response = api(None).sign_in(typed)
        assert response.status_code == 200, typed
        assert response.json()["username"] == "u06"
    assert api(None).sign_in("u066").status_code == 401


def test_two_usernames_alike_but_for_case_keep_their_own_accounts(api, appliance):
    # user add refuses such a pair; data from before that check may hold one
    add_person(appliance, "Dana", {"staff"})
    add_person(appliance, "dana", {"admins"})
    assert api(None).sign_in("dana").json()["roles"] == ["admin"]
    assert api(None).sign_in("Dana").json()["roles"] == []
    assert api(None).sign_in("DANA").status_code == 401  # which one? neither
