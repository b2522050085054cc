"""Signing in, roles, audiences and headcounts from a real OpenLDAP server (slapd)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.domain import segments
from appliance.services import rounds
from appliance.services.context import build_appliance
from appliance.storage import rounds as stored_rounds
from tests.conftest import PASSWORD, add_person, create_open_round, ldap_sections
from tests.services.slapd import GROUPS_DN, USER_PASSWORD, directory_people, member_groups

PEOPLE = {p.uid: p for p in directory_people()}


@pytest.fixture
def membership() -> str:
    return "member"


@pytest.fixture
def appliance(make_settings, slapd, ldap_ca, membership):
    """The appliance on slapd, with one local break-glass admin beside it."""
    app = build_appliance(make_settings(**ldap_sections(slapd, ldap_ca, group_membership=membership)))
    add_person(app, "breakglass", {"admins"})
    yield app
    app.close()


@pytest.fixture
def person(api):
    """person("u12") -> a browser signed in as u12 from LDAP."""
    def sign_in(username: str):
        browser = api(None)
        response = browser.sign_in(username, USER_PASSWORD)
        assert response.status_code == 200, response.text
        return browser

    return sign_in


def test_a_person_signs_in_with_their_directory_password(api, appliance) -> None:
    browser = api(None)
    response = browser.sign_in("u12", USER_PASSWORD)
    assert response.status_code == 200, response.text
    assert response.json() == {"username": "u12", "display_name": "User 12", "roles": []}
    me = browser.get("/api/v1/me").json()
    assert me["username"] == "u12"


def test_the_person_is_known_by_their_entry_uuid_with_segments_and_groups(appliance) -> None:
    person = appliance.directory.authenticate("U12", USER_PASSWORD)  # usernames are case-insensitive
    assert person is not None
    assert person.id.startswith("ldap:") and len(person.id) == len("ldap:") + 36
    assert person.username == "u12"  # as the directory spells it
    assert person.email == "u12@example.org"
    assert person.attributes == {"department": PEOPLE["u12"].department, "site": PEOPLE["u12"].site}
    assert person.groups == {"staff", "finance"} if PEOPLE["u12"].department == "Finance" else {"staff"}


@pytest.mark.parametrize("username, password", [
    ("u12", "wrong-password"),
    ("u12", ""),
    ("nobody", USER_PASSWORD),
])
def test_a_wrong_password_or_an_unknown_name_is_a_401(api, username, password) -> None:
    response = api(None).sign_in(username, password)
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong username or password"


def test_an_empty_password_never_reaches_a_bind(appliance, monkeypatch) -> None:
    """An empty password is an unauthenticated bind, which servers answer with success."""
    directory = appliance.directory.primary
    monkeypatch.setattr(directory, "_binds", lambda dn, password: pytest.fail("a bind was attempted"))
    assert directory.authenticate("u12", "") is None


# Every one of these uses the real shared password: a filter injection that matched
# anyone would sign in and fail the test.
HOSTILE_USERNAMES = [
    "*",
    "u1*",
    "*)(uid=*",
    "admin)(uid=*",
    "u12)(|(uid=*",
    "*)(|(objectClass=*)",
    "\\",
    "u12\\",
    "u12\0",
    "\0",
    "x" * 256,
    "uid=u12,ou=people,dc=example,dc=org",
    "cn=Smith\\, John,ou=people,dc=example,dc=org",
    "Smith, John",
    "ü12",
]


def test_spaces_around_a_username_are_the_directorys_business(appliance) -> None:
    """LDAP matching ignores them: the same person, with their own password."""
    assert appliance.directory.authenticate(" u12 ", USER_PASSWORD).username == "u12"


@pytest.mark.parametrize("username", HOSTILE_USERNAMES)
def test_hostile_usernames_sign_no_one_in(api, username) -> None:
    response = api(None).sign_in(username, USER_PASSWORD)
    assert response.status_code in (400, 401), response.text


@pytest.mark.parametrize("username", HOSTILE_USERNAMES)
def test_hostile_usernames_find_no_entry_at_all(appliance, username) -> None:
    assert appliance.directory.primary.find_entries(username) == []


def test_a_dn_with_an_escaped_comma_and_a_non_ascii_name_sign_in(person, appliance) -> None:
    smith = appliance.directory.authenticate("jsmith", USER_PASSWORD)
    assert smith is not None and smith.display_name == "Smith, John"
    assert "staff" in smith.groups  # found through a member DN holding an escaped comma
    assert person("élodie").get("/api/v1/me").json()["display_name"] == "Élodie Durand"


def test_a_longer_username_is_refused_before_the_directory(api) -> None:
    response = api(None).sign_in("x" * 257, USER_PASSWORD)
    assert response.status_code == 400


def test_attributes_are_refreshed_at_each_sign_in(appliance, slapd) -> None:
    dn = PEOPLE["u13"].dn
    try:
        slapd.modify(dn, {"l": ["Nantes"], "cn": ["User Thirteen"]})
        person = appliance.directory.authenticate("u13", USER_PASSWORD)
        assert (person.attributes["site"], person.display_name) == ("Nantes", "User Thirteen")
    finally:
        slapd.modify(dn, {"l": [PEOPLE["u13"].site], "cn": [PEOPLE["u13"].cn]})


# roles

@pytest.mark.parametrize("membership", ["member", "member_of"])
def test_roles_come_from_groups(person, membership) -> None:
    assert person("alice").get("/api/v1/me").json()["roles"] == ["admin"]
    assert person("bob").get("/api/v1/me").json()["roles"] == ["moderator"]
    assert person("u12").get("/api/v1/me").json()["roles"] == []


@pytest.mark.parametrize("membership", ["member_uid"])
def test_roles_from_posix_groups(appliance, membership) -> None:
    appliance.settings.directory.admin_groups.append("posix-admins")
    try:
        alice = appliance.directory.authenticate("alice", USER_PASSWORD)
        assert alice.groups == {"posix-admins"}
        assert appliance.viewer(alice).is_admin
        assert appliance.directory.authenticate("u12", USER_PASSWORD).groups == {"posix-staff"}
    finally:
        appliance.settings.directory.admin_groups.remove("posix-admins")


@pytest.mark.parametrize("membership", ["member", "member_of"])
def test_an_audience_is_every_member_of_its_groups(appliance, membership) -> None:
    pilot = appliance.directory.audience(["pilot"])
    assert sorted(p.username for p in pilot) == [f"u{i:02d}" for i in range(8)]
    both = appliance.directory.audience(["pilot", "finance"])
    expected = {f"u{i:02d}" for i in range(8)} | {p.uid for p in PEOPLE.values() if p.uid.startswith("u")
                                                 and p.department == "Finance"}
    assert {p.username for p in both} == expected
    everyone = appliance.directory.audience([])
    assert {p.username for p in everyone} == set(PEOPLE) | set()
    assert appliance.directory.audience(["no-such-group"]) == []


@pytest.mark.parametrize("membership", ["member_uid"])
def test_an_audience_from_posix_groups(appliance, membership) -> None:
    assert {p.username for p in appliance.directory.audience(["posix-admins"])} == {"alice"}
    assert len(appliance.directory.audience(["posix-staff"])) == 24


def test_group_names_and_dimensions_come_from_the_directory(appliance) -> None:
    names = appliance.directory.group_names()
    assert {"staff", "pilot", "finance", "appliance-admins", "posix-staff"} <= set(names)
    assert appliance.directory.dimensions() == ["department", "site"]


def test_a_round_for_an_unknown_group_or_dimension_is_refused(person) -> None:
    alice = person("alice")
    body = {"title": "Canteen", "question": "What should the canteen serve?"}
    response = alice.post("/api/v1/rounds", json=body | {"audience_groups": ["pilots"]})
    assert (response.status_code, response.json()["detail"]) == (
        400, "audience group 'pilots' does not exist in the directory")
    response = alice.post("/api/v1/rounds", json=body | {"dimensions": ["grade"]})
    assert (response.status_code, response.json()["detail"]) == (
        400, "unknown dimension 'grade': the directory offers department, site")


# the whole story, restricted to one LDAP group

def test_a_round_restricted_to_one_ldap_group_runs_end_to_end(person, appliance, slapd) -> None:
    alice, bob = person("alice"), person("bob")
    round_id = create_open_round(alice, audience_groups=["pilot"], dimensions=["department"])
    pilot = [person(f"u{i:02d}") for i in range(8)]
    outsider = person("u12")
    assert outsider.get(f"/api/v1/rounds/{round_id}").status_code == 403
    proposal = pilot[0].post(f"/api/v1/rounds/{round_id}/proposals",
                             json={"text": "Meet on Tuesdays rather than Mondays"})
    assert proposal.status_code == 201, proposal.text
    queue = bob.get(f"/api/v1/rounds/{round_id}/moderation").json()
    assert [item["text"] for item in queue] == ["Meet on Tuesdays rather than Mondays"]
    assert bob.post(f"/api/v1/rounds/{round_id}/proposals/{queue[0]['id']}/accept").status_code == 200
    proposal_id = queue[0]["id"]
    for voter in pilot:
        answer = voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal_id, "vote": "agree"})
        assert answer.status_code == 200, answer.text
    answer = outsider.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal_id, "vote": "agree"})
    assert answer.status_code == 403
    assert alice.post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    assert alice.post(f"/api/v1/rounds/{round_id}/publish").status_code == 200
    results = pilot[3].get(f"/api/v1/rounds/{round_id}/results")
    assert results.status_code == 200, results.text
    assert results.json()["voters"] == 8
    assert results.json()["proposals"][0]["voters"] == 8


# headcounts

def test_opening_counts_the_audience_per_coarsened_combination(person, appliance) -> None:
    alice = person("alice")
    round_id = create_open_round(alice, audience_groups=["staff"], dimensions=["department"])
    headcounts = stored_rounds.get_headcounts(appliance.dbs.ballots, round_id)
    staff = [PEOPLE[uid] for uid in PEOPLE if uid.startswith("u") or uid in
             ("jsmith", "élodie", "nodept", "enabled", "disabled")]
    raws = [(p.department or "other",) for p in staff]
    mapping = segments.build_coarsening(raws, 5)
    assert headcounts == segments.headcounts(mapping, raws)
    assert sum(headcounts.values()) == len(staff) == 29
    assert min(headcounts.values()) >= 5


def test_directory_sync_counts_people_who_joined_the_group_after_open(
        person, appliance, slapd, capsys, monkeypatch) -> None:
    alice = person("alice")
    round_id = create_open_round(alice, audience_groups=["pilot"], dimensions=["department"])
    before = stored_rounds.get_headcounts(appliance.dbs.ballots, round_id)
    assert before == {'["other"]': 8}
    pilot = member_groups()["pilot"]
    try:
        slapd.modify(f"cn=pilot,{GROUPS_DN}", {"member": pilot + [PEOPLE["u20"].dn, PEOPLE["u21"].dn]})
        report = rounds.sync_headcounts(appliance)
    finally:
        slapd.modify(f"cn=pilot,{GROUPS_DN}", {"member": pilot})
    assert [(r.round_id, r.status, r.members) for r in report] == [(round_id, "open", 10)]
    assert stored_rounds.get_headcounts(appliance.dbs.ballots, round_id) == {'["other"]': 10}


def test_the_sync_command_prints_each_rounds_audience(person, appliance, capsys, monkeypatch, slapd, ldap_ca) -> None:
    alice = person("alice")
    round_id = create_open_round(alice, audience_groups=["pilot"])
    draft = alice.post("/api/v1/rounds", json={"title": "Later", "question": "What next?",
                                               "audience_groups": ["finance"]}).json()["id"]
    settings = appliance.settings
    monkeypatch.setenv("APPLIANCE_STORAGE__DATA_DIR", str(settings.storage.data_dir))
    for section, values in ldap_sections(slapd, ldap_ca).items():
        for key, value in values.items():
            monkeypatch.setenv(f"APPLIANCE_{section.upper()}__{key.upper()}",
                               value if isinstance(value, str) else json.dumps(value))
    assert main(["directory", "sync"]) == 0
    out = capsys.readouterr().out
    assert f"open  {round_id}  Day-to-day work: 8 people in the audience (headcounts stored)" in out
    assert f"draft {draft}  Later: 8 people in the audience (would be invited at open)" in out


# break-glass and anonymity

def test_a_local_account_signs_in_beside_ldap_and_shadows_nobody_else(api, appliance) -> None:
    browser = api(None)
    assert browser.sign_in("breakglass", PASSWORD).status_code == 200
    assert browser.get("/api/v1/me").json()["roles"] == ["admin"]
    assert api(None).sign_in("breakglass", USER_PASSWORD).status_code == 401


def test_ldap_sign_in_keeps_no_copy_of_people_beyond_the_session(person, appliance) -> None:
    person("u12")
    person("u14")
    identity = appliance.dbs.identity
    assert [row[0] for row in identity.execute("SELECT username FROM people")] == ["breakglass"]
    assert identity.execute("SELECT count(*) FROM sessions").fetchone() == (2,)
    data = Path(appliance.settings.storage.data_dir)
    stored = b"".join(p.read_bytes() for p in data.glob("*.db*"))
    assert USER_PASSWORD.encode() not in stored
    assert b"u12@example.org" not in stored
    assert b"u12" not in stored and b"u14" not in stored  # the sessions are sealed: whose they are does not show


@pytest.mark.parametrize("flag, allowed", [(True, False), (False, True)])
def test_disabled_active_directory_accounts_are_refused_when_configured(
        make_settings, slapd, ldap_ca, flag, allowed) -> None:
    app = build_appliance(make_settings(**ldap_sections(slapd, ldap_ca, refuse_disabled_accounts=flag)))
    try:
        assert (app.directory.authenticate("disabled", USER_PASSWORD) is not None) is allowed
        assert app.directory.authenticate("enabled", USER_PASSWORD) is not None
        audience = {p.username for p in app.directory.audience(["staff"])}
        assert ("disabled" in audience) is allowed and "enabled" in audience
    finally:
        app.close()


def test_active_directory_nested_groups_use_the_in_chain_matching_rule(make_settings, slapd, ldap_ca) -> None:
    """OpenLDAP lacks AD's LDAP_MATCHING_RULE_IN_CHAIN, so the filters sent are checked instead."""
    from appliance.directory.ldap import LdapDirectory

    settings = make_settings(**ldap_sections(slapd, ldap_ca, group_membership="ad_nested"))
    directory = LdapDirectory(settings.ldap)
    sent: list[str] = []

    def search(base, search_filter, attributes, **options):
        sent.append(search_filter)
        return [{"dn": "CN=Staff,OU=Groups,DC=corp", "raw_attributes": {"cn": [b"Staff"]}}]

    directory._search = search
    entry = {"dn": "CN=Smith\\, John,OU=Staff,DC=corp", "raw_attributes": {}}
    assert directory.groups_of(entry) == ["Staff"]
    assert sent[-1].endswith("(member:1.2.840.113556.1.4.1941:=CN=Smith\\5c, John,OU=Staff,DC=corp))")
    directory.audience(["Staff"])
    assert sent[-1].endswith("(|(memberOf:1.2.840.113556.1.4.1941:=CN=Staff,OU=Groups,DC=corp)))")
    directory.close()


def test_colleagues_named_in_a_proposal_are_found_by_surname_in_the_directory(appliance) -> None:
    ldap = appliance.directory.primary  # local break-glass accounts beside it add their own names
    names = ldap.names_for(["Durand", "Smith", "Nobody", "*", "Durand)(uid=*"])
    assert sorted(names) == ["Smith, John", "Élodie Durand"]
    assert ldap.names_for([]) == []


def test_moderators_see_flags_on_a_colleague_named_in_a_proposal(person, appliance) -> None:
    from appliance.services.participation import personal_data_flags

    [flags] = personal_data_flags(appliance, ["Ask elodie durand or John Smith, or Mr Durand, not Durand alone"])
    assert [(f.kind, f.text) for f in flags] == [("name", "elodie durand"), ("name", "John Smith"),
                                                 ("name", "Mr Durand")]


def test_a_colleague_named_in_a_long_queue_is_still_flagged(person, appliance) -> None:
    from appliance.services.participation import personal_data_flags

    # 300 proposals full of capitalised words that sort before "Smith": the directory is asked 80 words at a time.
    crowd = [f"Aaron{n} Abbott{n} Adams{n} and Allen{n} Archer{n} suggest Baker{n} Barnes{n} Bell{n}" for n in range(300)]
    flags = personal_data_flags(appliance, crowd + ["Ask John Smith about the new canteen menu"])
    assert [(f.kind, f.text) for f in flags[-1]] == [("name", "John Smith")]
    assert not any(flags[:-1])


def test_a_session_ends_when_the_directory_takes_its_role_away(person, appliance, slapd) -> None:
    from datetime import timedelta

    bob = person("bob")
    assert bob.get("/api/v1/me").json()["roles"] == ["moderator"]
    moderators = member_groups()["appliance-moderators"]
    started = appliance.clock()
    try:
        slapd.modify(f"cn=appliance-moderators,{GROUPS_DN}", {"member": [PEOPLE["u00"].dn]})
        assert bob.get("/api/v1/me").status_code == 200  # looked up again only after ten minutes
        appliance.clock = lambda: started + timedelta(minutes=11)
        gone = bob.get("/api/v1/me")
        assert gone.status_code == 401 and "sign in again" in gone.json()["detail"]
        assert bob.get("/api/v1/me").status_code == 401  # the session itself is gone
        assert person("bob").get("/api/v1/me").json()["roles"] == []  # signing in again gives the roles of now
    finally:
        slapd.modify(f"cn=appliance-moderators,{GROUPS_DN}", {"member": moderators})


def test_a_session_outlives_ten_minutes_when_nothing_changed(person, appliance) -> None:
    from datetime import timedelta

    u12 = person("u12")
    started = appliance.clock()
    appliance.clock = lambda: started + timedelta(minutes=25)
    assert u12.get("/api/v1/me").status_code == 200


def test_a_local_account_name_costs_a_password_check_like_a_directory_one(appliance, monkeypatch) -> None:
    checks = []
    local = appliance.directory.local
    monkeypatch.setattr(local, "spend_a_check", lambda password: checks.append(password))
    assert appliance.directory.authenticate("u12", "wrong password") is None
    assert checks == ["wrong password"]  # an argon2 check, as for the local break-glass account
