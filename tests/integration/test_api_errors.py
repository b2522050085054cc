"""Every error path of the JSON API, through HTTP against real SQLite files.

Each refusal is checked for its status, its problem+json body and its message,
and, where something could have been stored anyway, for what was stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from appliance.directory import local
from appliance.services import rounds
from appliance.storage import audit, digests, keys, people
from tests.conftest import PASSWORD, add_person, create_open_round

ROUNDS = "/api/v1/rounds"
DRAFT = {"title": "Day-to-day work", "question": "How could we make our day-to-day work easier?"}
TEXT = "Hold fewer and shorter meetings"


def url(round_id: str, *parts: str) -> str:
    return "/".join([ROUNDS, round_id, *parts])


def assert_problem(response, status: int, detail: str) -> dict:
    """problem+json with exactly status, title and detail; `detail` is part of the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "application/problem+json"
    body = response.json()
    assert set(body) == {"status", "title", "detail"}
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"].strip()
    assert isinstance(body["detail"], str) and body["detail"].strip()
    assert detail.lower() in body["detail"].lower(), body["detail"]
    return body


def propose(client, round_id: str, text: str = TEXT):
    return client.post(url(round_id, "proposals"), json={"text": text})


def pending(author, round_id: str, text: str = TEXT) -> str:
    response = propose(author, round_id, text)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def accepted(mod, author, round_id: str, text: str = TEXT) -> str:
    proposal_id = pending(author, round_id, text)
    assert mod.post(url(round_id, "proposals", proposal_id, "accept")).status_code == 200
    return proposal_id


def vote(client, round_id: str, proposal_id: str, choice: str = "agree", qualification: str | None = None):
    body = {"proposal": proposal_id, "vote": choice} | ({"qualification": qualification} if qualification else {})
    return client.post(url(round_id, "ballots"), json=body)


def round_in(admin, status: str, **fields) -> str:
    """A round of the staff audience brought to `status` by this admin."""
    response = admin.post(ROUNDS, json=DRAFT | {"audience_groups": ["staff"]} | fields)
    assert response.status_code == 201, response.text
    round_id = response.json()["id"]
    for action in ("open", "close", "publish")[: ("draft", "open", "closed", "published").index(status)]:
        assert admin.post(url(round_id, action)).status_code == 200
    return round_id


def status_of(admin, round_id: str) -> str:
    return admin.get(url(round_id)).json()["status"]


def queue_texts(mod, round_id: str) -> list[str]:
    return sorted(p["text"] for p in mod.get(url(round_id, "moderation")).json())


@pytest.fixture
def admin(api):
    return api("admin")


@pytest.fixture
def mod(api):
    return api("mod")


@pytest.fixture
def u00(api):
    return api("u00")


@pytest.fixture
def staff_round(admin) -> str:
    return create_open_round(admin, audience_groups=["staff"])


# unknown ids

@pytest.mark.parametrize("who, method, parts", [
    ("admin", "get", ()), ("admin", "post", ("open",)), ("admin", "post", ("close",)),
    ("admin", "post", ("publish",)), ("admin", "get", ("results",)), ("mod", "get", ("moderation",)),
    ("u00", "get", ("proposals",)), ("u00", "post", ("proposals",)), ("u00", "post", ("ballots",)),
])
def test_it_answers_404_for_an_unknown_round(api, who, method, parts):
    bodies = {"proposals": {"text": TEXT}, "ballots": {"proposal": "0" * 16, "vote": "agree"}}
    kwargs = {"json": bodies[parts[-1]]} if method == "post" and parts[-1] in bodies else {}
    assert_problem(getattr(api(who), method)(url("no-such-round", *parts), **kwargs), 404, "no round 'no-such-round'")


def test_an_unknown_round_is_a_404_even_for_a_vote_that_is_not_one(u00):
    response = u00.post(url("no-such-round", "ballots"), json={"proposal": "0" * 16, "vote": "bogus"})
    assert_problem(response, 404, "no round 'no-such-round'")


def test_a_digest_time_with_a_final_newline_is_refused(admin):
    round_id = round_in(admin, "draft")
    response = admin.put(url(round_id, "digest"), json={"recipients": ["admins"], "local_time": "09:00\n"})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("action", ["ballots", "accept", "refuse"])
@pytest.mark.parametrize("elsewhere", [False, True], ids=["unknown", "of-another-round"])
def test_it_answers_404_for_an_unknown_proposal(api, admin, mod, staff_round, action, elsewhere):
    proposal_id = accepted(mod, api("u05"), create_open_round(admin)) if elsewhere else "feedfacefeedface"
    if action == "ballots":
        response = vote(api("u00"), staff_round, proposal_id)
    else:
        response = mod.post(url(staff_round, "proposals", proposal_id, action), json={"reason": "off_topic"}
                            if action == "refuse" else None)
    assert_problem(response, 404, f"{proposal_id!r}")


def test_it_refuses_a_vote_on_a_pending_or_refused_proposal(api, mod, staff_round, u00):
    author = api("u05")
    waiting = pending(author, staff_round, "Publish the cafeteria menu a week ahead")
    refused = pending(author, staff_round, "Let teams choose their own tools")
    assert mod.post(url(staff_round, "proposals", refused, "refuse"), json={"reason": "off_topic"}).status_code == 200
    for proposal_id in (waiting, refused):
        assert_problem(vote(u00, staff_round, proposal_id), 404, f"no accepted proposal {proposal_id!r}")


# wrong role

@pytest.mark.parametrize("action, status", [("open", "draft"), ("close", "open"), ("publish", "closed")])
def test_it_forbids_an_employee_to_move_a_round_through_its_lifecycle(admin, u00, action, status):
    round_id = round_in(admin, status)
    assert_problem(u00.post(url(round_id, action)), 403, "admin role")
    assert status_of(admin, round_id) == status


def test_it_forbids_an_employee_or_a_moderator_to_create_a_round(admin, mod, u00):
    for client in (u00, mod):
        assert_problem(client.post(ROUNDS, json=DRAFT), 403, "admin role")
    assert admin.get(ROUNDS).json() == []


def test_it_forbids_an_employee_the_moderation_queue_and_decisions(api, mod, staff_round, u00):
    proposal_id = pending(api("u05"), staff_round)
    assert_problem(u00.get(url(staff_round, "moderation")), 403, "moderator role")
    assert_problem(u00.post(url(staff_round, "proposals", proposal_id, "accept")), 403, "moderator role")
    assert_problem(u00.post(url(staff_round, "proposals", proposal_id, "refuse"), json={"reason": "off_topic"}),
                   403, "moderator role")
    assert [p["status"] for p in mod.get(url(staff_round, "moderation")).json()] == ["pending"]


def test_it_forbids_a_moderator_to_publish(admin, mod):
    round_id = round_in(admin, "closed")
    assert_problem(mod.post(url(round_id, "publish")), 403, "admin role")
    assert status_of(admin, round_id) == "closed"


# not signed in

@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/me"), ("delete", "/api/v1/session"), ("get", ROUNDS), ("post", ROUNDS),
    ("get", "{r}"), ("post", "{r}/open"), ("post", "{r}/close"), ("post", "{r}/publish"),
    ("get", "{r}/proposals"), ("post", "{r}/proposals"), ("get", "{r}/proposals/mine"), ("post", "{r}/ballots"),
    ("get", "{r}/moderation"), ("post", "{r}/proposals/{p}/accept"), ("post", "{r}/proposals/{p}/refuse"),
    ("get", "{r}/results"), ("get", "{r}/results.csv"),
])
def test_it_answers_401_to_a_visitor_who_is_not_signed_in(api, mod, staff_round, method, path):
    proposal_id = pending(api("u05"), staff_round)
    target = path.format(r=url(staff_round), p=proposal_id)
    kwargs = {"json": {"text": TEXT, "proposal": proposal_id, "vote": "agree"}} if method == "post" else {}
    assert_problem(getattr(api(None), method)(target, **kwargs), 401, "sign in first")
    assert queue_texts(mod, staff_round) == [TEXT]


def test_it_answers_401_to_the_cookie_of_a_signed_out_session(u00):
    token = u00.cookies["session"]
    assert u00.delete("/api/v1/session").status_code == 204
    assert_problem(u00.get("/api/v1/me", headers={"cookie": f"session={token}"}), 401, "sign in again")


def test_it_gives_one_answer_to_a_wrong_password_an_unknown_user_and_an_empty_password(api):
    bodies = []
    for username, password in [("u00", "wrong-horse"), ("nobody", PASSWORD), ("u00", ""), ("nobody", "")]:
        visitor = api(None)
        response = visitor.sign_in(username, password)
        bodies.append(assert_problem(response, 401, "wrong username or password"))
        assert "session" not in visitor.cookies
        assert visitor.get("/api/v1/me").status_code == 401
    assert all(body == bodies[0] for body in bodies)


def test_it_refuses_an_empty_password_before_asking_the_directory_whatever_the_username(api, monkeypatch):
    """No unauthenticated bind, and a known name answers no faster than an unknown one."""
    verified: list[str] = []
    real_verify = local._verify
    monkeypatch.setattr(local, "_verify", lambda h, p: verified.append(p) or real_verify(h, p))
    for username in ("u00", "nobody"):
        verified.clear()
        assert api(None).sign_in(username, "").status_code == 401
        assert verified == [], f"password hashes verified for {username!r}: {len(verified)}"


# audience

def test_it_forbids_an_outsider_to_propose_or_vote_on_a_launched_round(api, mod, staff_round):
    proposal_id = accepted(mod, api("u05"), staff_round)
    outsider = api("outsider")
    assert_problem(propose(outsider, staff_round, "Outsiders should have a say too"), 403, "not in this round's audience")
    assert_problem(vote(outsider, staff_round, proposal_id), 403, "not in this round's audience")
    assert queue_texts(mod, staff_round) == []


@pytest.mark.parametrize("who", ["u00", "mod", "outsider"])
def test_it_hides_a_draft_round_from_everyone_but_admins(api, admin, who):
    round_id = round_in(admin, "draft")
    client = api(who)
    assert_problem(client.get(url(round_id)), 404, "no round")
    assert_problem(propose(client, round_id), 404, "no round")
    assert client.get(ROUNDS).json() == []
    assert admin.get(url(round_id)).status_code == 200


# lifecycle

@pytest.mark.parametrize("status, action", [
    ("open", "open"), ("draft", "close"), ("open", "publish"), ("closed", "open"), ("draft", "publish"),
    ("published", "close"),
])
def test_it_refuses_a_lifecycle_step_out_of_order(admin, status, action):
    round_id = round_in(admin, status)
    assert_problem(admin.post(url(round_id, action)), 409, f"cannot {action} a round that is {status}")
    assert status_of(admin, round_id) == status


def test_it_refuses_a_vote_and_a_proposal_on_a_closed_round(api, admin, mod, staff_round, u00):
    proposal_id = accepted(mod, api("u05"), staff_round)
    assert admin.post(url(staff_round, "close")).status_code == 200
    assert_problem(vote(u00, staff_round, proposal_id), 409, "closed, not open")
    assert_problem(propose(u00, staff_round, "Another idea for the closed round"), 409, "closed, not open")
    assert_problem(mod.post(url(staff_round, "proposals", proposal_id, "refuse"), json={"reason": "off_topic"}),
                   409, "moderation has ended")
    assert [p["text"] for p in admin.get(url(staff_round, "proposals")).json()] == [TEXT]


@pytest.mark.parametrize("who", ["admin", "u00"])
@pytest.mark.parametrize("view", ["results", "results.csv"])
def test_it_refuses_results_while_the_round_is_open(api, staff_round, who, view):
    assert_problem(api(who).get(url(staff_round, view)), 409, "only once the round is closed")


def test_it_shows_results_to_admins_after_close_and_to_the_audience_after_publish(api, admin, u00):
    round_id = round_in(admin, "closed")
    assert admin.get(url(round_id, "results")).status_code == 200
    assert_problem(u00.get(url(round_id, "results")), 403, "once the round is published")
    assert_problem(u00.get(url(round_id, "results.csv")), 403, "once the round is published")
    assert admin.post(url(round_id, "publish")).status_code == 200
    response = u00.get(url(round_id, "results"))
    assert response.status_code == 200 and response.json()["status"] == "published"
    assert_problem(api("outsider").get(url(round_id, "results")), 403, "not in this round's audience")


# votes

def test_it_replaces_a_vote_cast_twice_on_the_same_proposal(api, admin, mod, staff_round):
    proposal_id = accepted(mod, api("u05"), staff_round)
    voters = [api(f"u{i:02d}") for i in range(5)]
    for voter in voters:
        assert vote(voter, staff_round, proposal_id).status_code == 200
    assert vote(voters[0], staff_round, proposal_id, "disagree", "no_way").status_code == 200
    assert admin.post(url(staff_round, "close")).status_code == 200
    results = admin.get(url(staff_round, "results")).json()
    assert results["voters"] == 5
    (result,) = results["proposals"]
    assert result["voters"] == 5
    rates = {name: figure["value"] for name, figure in result["rates"].items()}
    assert rates["agree"] == round((4 + 0.33) / 6, 4)
    assert rates["disagree"] == round((1 + 0.33) / 6, 4)
    assert rates["no_way"] == round((1 + 0.01) / 6, 4)


@pytest.mark.parametrize("choice, qualification, detail", [
    ("agree", "no_way", "qualification 'no_way' does not match vote 'agree'"),
    ("neutral", "like_it", "qualification 'like_it' does not match vote 'neutral'"),
    ("maybe", None, "vote must be one of agree, disagree, neutral"),
    ("AGREE", None, "vote must be one of"),
    ("disagree", "hate_it", "qualification 'hate_it' does not match vote 'disagree'"),
])
def test_it_refuses_an_invalid_vote(api, mod, staff_round, u00, choice, qualification, detail):
    proposal_id = accepted(mod, api("u05"), staff_round)
    assert_problem(vote(u00, staff_round, proposal_id, choice, qualification), 400, detail)


def test_it_answers_every_ballot_with_the_same_bytes(api, mod, staff_round, u00):
    proposal_id = accepted(mod, api("u05"), staff_round)
    answers = set()
    for choice, qualification in [("agree", None), ("agree", "like_it"), ("disagree", None),
                                  ("disagree", "impossible"), ("neutral", None), ("neutral", "do_not_care")]:
        response = vote(u00, staff_round, proposal_id, choice, qualification)
        assert response.status_code == 200
        answers.add((response.content, response.headers["content-length"], response.headers["content-type"]))
    assert len(answers) == 1
    assert answers.pop()[0] == b'{"recorded":true}'



def test_a_ballot_may_carry_padding_and_too_much_of_it_is_refused(api, mod, staff_round, u00):
    proposal_id = accepted(mod, api("u05"), staff_round)
    body = {"proposal": proposal_id, "vote": "agree", "qualification": None}
    assert u00.post(f"/api/v1/rounds/{staff_round}/ballots", json=body | {"padding": " " * 90}).status_code == 200
    refused = u00.post(f"/api/v1/rounds/{staff_round}/ballots", json=body | {"padding": " " * 257})
    assert refused.status_code == 400 and "padding" in refused.text


# proposals

@pytest.mark.parametrize("text, detail", [
    ("   abcdefghijk \x00\x00  ", "too short: 11 characters, at least 12 needed"),
    ("\t\n\x07abc\u202edefghijk\r\n", "too short: 11 characters"),
    (" \x00 \x1f ", "too short: 0 characters"),
    ("x" * 281, "too long: 281 characters, at most 280 allowed"),
    ("  " + "y" * 281 + "\x00  ", "too long: 281 characters"),
])
def test_it_refuses_a_proposal_too_short_or_too_long_once_cleaned(mod, staff_round, u00, text, detail):
    assert_problem(propose(u00, staff_round, text), 400, detail)
    assert u00.get(url(staff_round, "proposals", "mine")).json() == []
    assert queue_texts(mod, staff_round) == []


def test_it_accepts_a_proposal_at_the_length_limits_once_cleaned(mod, staff_round, u00):
    shortest, longest = "  abcdefghijkl\x00 ", "\x00 " + "z" * 280 + "   "
    for text in (shortest, longest):
        assert propose(u00, staff_round, text).status_code == 201
    assert queue_texts(mod, staff_round) == sorted(["abcdefghijkl", "z" * 280])


@pytest.mark.parametrize("text, detail", [
    ("\u200b" * 12, "too short: 0 characters"),
    ("\ufeff\u2060\u00ad\u200e" * 4, "too short: 0 characters"),
    ("?!?!?!?!?!?!?!", "a proposal needs words"),
])
def test_it_refuses_a_proposal_of_invisible_characters_or_without_words(mod, staff_round, u00, text, detail):
    assert_problem(propose(u00, staff_round, text), 400, detail)
    assert queue_texts(mod, staff_round) == []


def test_a_double_submit_returns_the_proposal_already_stored_and_uses_one_slot(mod, staff_round, u00):
    first = propose(u00, staff_round, TEXT)
    again = propose(u00, staff_round, "  Hold fewer and\u00a0 shorter meetings\u200b ")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert [p["id"] for p in u00.get(url(staff_round, "proposals", "mine")).json()] == [first.json()["id"]]
    assert queue_texts(mod, staff_round) == [TEXT]


def test_a_refused_text_sent_again_is_a_new_proposal_not_the_refused_one(mod, staff_round, u00):
    first = propose(u00, staff_round, TEXT).json()
    assert mod.post(url(staff_round, "proposals", first["id"], "refuse"), json={"reason": "off_topic"}).status_code == 200
    again = propose(u00, staff_round, TEXT)
    assert again.status_code == 201 and again.json()["id"] != first["id"] and again.json()["status"] == "pending"
    assert queue_texts(mod, staff_round) == [TEXT]  # waiting for a moderator again


def test_a_double_submit_of_the_last_proposal_the_quota_allows_is_not_refused(mod, staff_round, u00):
    texts = [f"Proposal number {n} about meetings" for n in range(5)]
    ids = [pending(u00, staff_round, text) for text in texts]
    again = propose(u00, staff_round, texts[4])
    assert again.status_code == 201 and again.json()["id"] == ids[4]
    assert_problem(propose(u00, staff_round, "Yet another proposal about meetings"), 409, "quota of 5 proposals")


def test_it_refuses_a_sixth_proposal_over_the_default_quota(mod, staff_round, u00):
    texts = [f"Proposal number {n} about meetings" for n in range(6)]
    for text in texts[:5]:
        assert propose(u00, staff_round, text).status_code == 201
    assert_problem(propose(u00, staff_round, texts[5]), 409, "quota of 5 proposals")
    assert sorted(p["text"] for p in u00.get(url(staff_round, "proposals", "mine")).json()) == texts[:5]
    assert queue_texts(mod, staff_round) == texts[:5]


def test_a_refused_proposal_gives_its_place_in_the_quota_back(admin, mod, u00):
    round_id = round_in(admin, "open", proposal_quota=1)
    first = pending(u00, round_id, "Fewer meetings and a canteen open later")
    refused = mod.post(url(round_id, "proposals", first, "refuse"),
                       json={"reason": "several_ideas", "note": "One idea per proposal, please"})
    assert refused.status_code == 200, refused.text
    again = propose(u00, round_id, "Fewer meetings on Fridays")  # the first of the two ideas, alone
    assert again.status_code == 201, again.text
    assert_problem(propose(u00, round_id, "A canteen open until 3 pm"), 409, "quota of 1 proposals")


# request shape

@pytest.mark.parametrize("header", [None, "forged-token"], ids=["missing", "wrong"])
def test_it_refuses_a_post_without_the_right_csrf_header(mod, staff_round, u00, header):
    if header is None:
        del u00.client.headers["x-csrftoken"]
    else:
        u00.client.headers["x-csrftoken"] = header
    assert_problem(propose(u00, staff_round), 403, "CSRF")
    assert queue_texts(mod, staff_round) == []


@pytest.mark.parametrize("target, kwargs, detail", [
    ("proposals", {"content": b"{text: 'not json'"}, "JSON"),
    ("proposals", {"content": b"text=Hold+fewer+meetings"}, "JSON"),
    ("proposals", {"json": {"text": TEXT, "author": "u00"}}, "author"),
    ("proposals", {"json": {"text": 42}}, "text"),
    ("proposals", {"json": [TEXT]}, "body"),
    ("ballots", {"json": {"proposal": "feedfacefeedface", "vote": 1}}, "vote"),
    ("ballots", {"json": {"proposal": "feedfacefeedface", "vote": "agree", "voter": "u01"}}, "voter"),
    ("ballots", {"json": {"proposal": ["feedfacefeedface"], "vote": "agree"}}, "proposal"),
])
def test_it_refuses_a_body_that_is_not_the_expected_json(mod, staff_round, u00, target, kwargs, detail):
    headers = {"content-type": "application/json"}
    assert_problem(u00.post(url(staff_round, target), headers=headers, **kwargs), 400, detail)
    assert queue_texts(mod, staff_round) == []


@pytest.mark.parametrize("fields, detail", [
    ({"k": 4}, "k"),
    ({"k": "five"}, "k"),
    ({"moderation": "none"}, "moderation"),
    ({"opens_at": "2030-01-02T09:00:00Z", "closes_at": "2030-01-01T09:00:00Z"}, "closes_at must be after opens_at"),
    ({"dimensions": ["department", "department"]}, "dimensions must not repeat"),
    ({"audience": ["staff"]}, "audience"),
])
def test_it_refuses_a_round_with_invalid_settings(admin, fields, detail):
    assert_problem(admin.post(ROUNDS, json=DRAFT | fields), 400, detail)
    assert admin.get(ROUNDS).json() == []


@pytest.mark.parametrize("fields, detail", [
    ({"closes_at": "9999-12-31T23:00:00-05:00"}, "closes_at must be in the years 2000 to 2999"),
    ({"opens_at": "0001-01-01T01:00:00+05:00"}, "opens_at must be in the years 2000 to 2999"),
    ({"proposals_close_at": "3000-01-01T00:00:00Z"}, "proposals_close_at must be in the years 2000 to 2999"),
    ({"closes_at": "2020-01-01T09:00:00Z"}, "closes_at is already past: give a later date"),
    ({"proposals_close_at": "2020-01-01T09:00:00Z", "closes_at": "2099-01-01T09:00:00Z"},
     "proposals_close_at is already past"),
])
def test_it_refuses_a_round_dated_out_of_reach_or_closing_in_the_past(admin, fields, detail):
    assert_problem(admin.post(ROUNDS, json=DRAFT | fields), 400, detail)
    assert admin.get(ROUNDS).json() == []


@pytest.mark.parametrize("time_zone", ["Europe", "Etc", "Nowhere/City"])
def test_it_refuses_a_digest_time_zone_that_is_a_folder_or_unknown(admin, time_zone):
    round_id = round_in(admin, "draft")
    response = admin.put(url(round_id, "digest"), json={"recipients": ["admins"], "time_zone": time_zone})
    assert_problem(response, 400, f"unknown time zone {time_zone!r}")


def test_group_names_in_another_case_are_stored_as_the_directory_writes_them(admin):
    body = DRAFT | {"audience_groups": ["STAFF", "staff", "Staff"],
                    "description": "First paragraph\x00 here.\r\n\r\n\r\n\u200bSecond\tone."}
    created = admin.post(ROUNDS, json=body).json()
    assert created["audience_groups"] == ["staff"]
    assert created["description"] == "First paragraph here.\n\nSecond one."
    assert admin.post(url(created["id"], "open")).json()["status"] == "open"  # the audience is found
    lower = admin.put(url(created["id"], "digest"), json={"recipients": ["admins", "staff"]}).json()
    upper = admin.put(url(created["id"], "digest"), json={"recipients": ["ADMINS", "admins", "STAFF", "staff"]})
    assert upper.status_code == 200, upper.text
    assert upper.json()["recipients"] == ["admins", "staff"] and upper.json()["reachable"] == lower["reachable"] > 12


# changing a round's dates

def created_a_month_ago(appliance, **dates: datetime) -> str:
    """A staff draft created when its dates, now past, were still to come."""
    real = appliance.clock
    appliance.clock = lambda: real() - timedelta(days=30)
    try:
        draft = rounds.RoundDraft(DRAFT["title"], DRAFT["question"], audience_groups=("staff",), **dates)
        return rounds.create_round(appliance, "admin", draft).id
    finally:
        appliance.clock = real


def edits(appliance) -> list[tuple[str, str, str]]:
    return [(actor, target, detail) for _, actor, done, target, detail in audit.recent(appliance.dbs.identity)
            if done == "round.edit"]


NOW = datetime.now(timezone.utc).replace(microsecond=0)  # one moment for the module: a test compares two soon()s


def soon(days: int) -> str:
    return (NOW + timedelta(days=days)).isoformat()


@pytest.mark.parametrize("field", ["closes_at", "proposals_close_at"])
def test_it_refuses_to_open_a_draft_whose_closing_date_passed_until_it_gets_new_dates(appliance, admin, field):
    past = {"closes_at": datetime.fromisoformat(soon(-2))}
    if field == "proposals_close_at":
        past = {"closes_at": datetime.fromisoformat(soon(2)), field: datetime.fromisoformat(soon(-1))}
    round_id = created_a_month_ago(appliance, **past)
    assert_problem(admin.post(url(round_id, "open")), 409, f"{field} has passed: give it new dates")
    assert status_of(admin, round_id) == "draft"
    new = {"closes_at": soon(10), "proposals_close_at": soon(8)}
    changed = admin.patch(url(round_id), json=new)
    assert changed.status_code == 200, changed.text
    assert admin.post(url(round_id, "open")).status_code == 200


def test_an_admin_edits_a_draft_and_the_audit_log_says_what_changed(appliance, admin, u00):
    round_id = round_in(admin, "draft", opens_at=soon(1), closes_at=soon(5))
    closes_at = soon(20)
    response = admin.patch(url(round_id), json={"title": "  Canteen ", "description": "Lunch", "opens_at": None,
                                                "closes_at": closes_at})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["title"], body["description"], body["opens_at"], body["status"]) == ("Canteen", "Lunch", None,
                                                                                     "draft")
    assert body["question"] == DRAFT["question"] and datetime.fromisoformat(body["closes_at"]) == \
        datetime.fromisoformat(closes_at)
    assert admin.get(url(round_id)).json() == body
    assert edits(appliance) == [("admin", round_id, f"title, description, opens_at, closes_at={closes_at}")]
    assert_problem(u00.patch(url(round_id), json={"title": "Mine"}), 403, "admin role")


def test_an_admin_changes_a_drafts_audience_breakdowns_and_anonymity_settings(appliance, admin):
    round_id = round_in(admin, "draft")
    response = admin.patch(url(round_id), json={"audience_groups": ["STAFF", "moderators"], "k": 7,
                                                "dimensions": ["site"], "moderation": "post", "proposal_quota": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["audience_groups"], body["dimensions"], body["k"], body["moderation"]) == (
        ["staff", "moderators"], ["site"], 7, "post")  # groups as the directory spells them
    assert edits(appliance) == [("admin", round_id, "audience_groups, dimensions, k, moderation, proposal_quota")]
    cleared = admin.patch(url(round_id), json={"audience_groups": None, "dimensions": [], "k": None}).json()
    assert (cleared["audience_groups"], cleared["dimensions"], cleared["k"]) == (
        [], [], appliance.settings.rounds.default_k)
    opened = admin.post(url(round_id, "open")).json()
    assert (opened["k"], opened["moderation"]) == (appliance.settings.rounds.default_k, "post")


def test_an_open_rounds_audience_and_anonymity_settings_are_frozen(admin):
    round_id = round_in(admin, "open")
    for change in ({"k": 9}, {"audience_groups": []}, {"dimensions": ["site"]}, {"moderation": "post"}):
        name = next(iter(change))
        assert_problem(admin.patch(url(round_id), json=change), 409, f"{name} cannot change once the round is open")
    assert admin.get(url(round_id)).json()["k"] == 5


def test_an_admin_deletes_a_draft_and_nothing_else(appliance, admin, u00):
    round_id = round_in(admin, "draft")
    assert admin.put(url(round_id, "digest"), json={"recipients": ["admins"]}).status_code == 200
    assert_problem(u00.delete(url(round_id)), 403, "admin role")
    assert admin.delete(url(round_id)).status_code == 204
    assert_problem(admin.get(url(round_id)), 404, f"no round '{round_id}'")
    assert digests.get_schedule(appliance.dbs.identity, round_id) is None
    assert [(actor, target, detail) for _, actor, done, target, detail in audit.recent(appliance.dbs.identity)
            if done == "round.delete"] == [("admin", round_id, DRAFT["title"])]
    assert_problem(admin.delete(url(round_id)), 404, f"no round '{round_id}'")
    for status in ("open", "closed", "published"):
        kept = round_in(admin, status)
        assert_problem(admin.delete(url(kept)), 409, f"only a draft can be deleted: this round is {status}")
        assert status_of(admin, kept) == status


def snapshot_rows(appliance, round_id: str) -> int:
    return appliance.dbs.identity.execute("SELECT count(*) FROM audience_snapshots WHERE round_id = ?",
                                          [round_id]).fetchone()[0]


@pytest.mark.parametrize("meanwhile", [
    {"k": 9}, {"dimensions": ("department",)}, {"audience_groups": ()},
])
def test_a_draft_changed_while_it_opens_is_not_opened_on_settings_it_was_not_frozen_with(
        appliance, admin, monkeypatch, meanwhile):
    round_id = round_in(admin, "draft", dimensions=["site"])
    read = appliance.directory.audience

    def audience(groups):  # the slow directory lookup of an opening, with LDAP: an admin saves the draft then
        members = read(groups)
        rounds.edit_round(appliance, "admin2", round_id, meanwhile)
        return members

    monkeypatch.setattr(appliance.directory, "audience", audience)
    assert_problem(admin.post(url(round_id, "open")), 409, "the round was opened or changed meanwhile")
    monkeypatch.undo()
    assert status_of(admin, round_id) == "draft" and snapshot_rows(appliance, round_id) == 0
    assert admin.post(url(round_id, "open")).status_code == 200  # on its new settings
    assert snapshot_rows(appliance, round_id) > 0


def test_a_draft_deleted_while_it_opens_leaves_no_audience_behind(appliance, admin, monkeypatch):
    round_id = round_in(admin, "draft")
    read = appliance.directory.audience

    def audience(groups):
        members = read(groups)
        rounds.delete_draft(appliance, "admin2", round_id)
        return members

    monkeypatch.setattr(appliance.directory, "audience", audience)
    assert_problem(admin.post(url(round_id, "open")), 409, "the round was opened or changed meanwhile")
    assert snapshot_rows(appliance, round_id) == 0
    assert keys.read_round_key(appliance.keys_dir, round_id) is None


def test_a_drafts_texts_and_dates_change_without_asking_the_directory_again(appliance, admin):
    add_person(appliance, "sam", {"sales"})
    round_id = round_in(admin, "draft", audience_groups=["sales"])
    people.delete_person(appliance.dbs.identity, "sam")  # the group is gone from the directory
    response = admin.patch(url(round_id), json={"title": "Sales team", "closes_at": soon(9)})
    assert response.status_code == 200, response.text
    assert response.json()["audience_groups"] == ["sales"]
    assert_problem(admin.patch(url(round_id), json={"audience_groups": ["sales"]}), 400,
                   "audience group 'sales' does not exist in the directory")  # given again, it is checked


@pytest.mark.parametrize("change, detail", [
    ({"closes_at": "2020-01-01T00:00:00Z"}, "closes_at is already past"),
    ({"closes_at": "9999-12-31T23:00:00-05:00"}, "closes_at must be in the years 2000 to 2999"),
    ({"opens_at": "2099-02-01T00:00:00Z", "closes_at": "2099-01-01T00:00:00Z"}, "closes_at must be after opens_at"),
    ({"title": " "}, "title and question must not be empty"),
    ({"title": None}, "title"),
    ({"status": "open"}, "status"),
    ({"k": 4}, "k"),
    ({"proposal_quota": 0}, "proposal_quota"),
    ({"moderation": "later"}, "moderation"),
    ({"audience_groups": ["nobody-here"]}, "audience group 'nobody-here' does not exist in the directory"),
    ({"dimensions": ["grade"]}, "unknown dimension 'grade'"),
    ({}, "nothing to change: give at least one of title, question, description, audience_groups"),
])
def test_it_refuses_a_draft_edit_as_it_refuses_a_new_round(appliance, admin, change, detail):
    round_id = round_in(admin, "draft", closes_at="2099-01-10T00:00:00Z")
    before = admin.get(url(round_id)).json()
    assert_problem(admin.patch(url(round_id), json=change), 400, detail)
    assert admin.get(url(round_id)).json() == before and edits(appliance) == []


def test_an_open_round_can_only_be_extended(appliance, admin):
    round_id = round_in(admin, "open", closes_at=soon(5), proposals_close_at=soon(3))
    assert_problem(admin.patch(url(round_id), json={"closes_at": soon(4)}), 400,
                   "closes_at must be later than the current one")
    assert_problem(admin.patch(url(round_id), json={"proposals_close_at": soon(4)}), 400,
                   "closes_at: an open round keeps its closing date, which can only be moved later")
    assert_problem(admin.patch(url(round_id), json={"closes_at": soon(9), "question": "Other?"}), 409,
                   "question cannot change once the round is open")
    assert_problem(admin.patch(url(round_id), json={"closes_at": soon(9), "proposals_close_at": soon(10)}), 400,
                   "proposals_close_at must not be after closes_at")
    response = admin.patch(url(round_id), json={"closes_at": soon(9)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "open"
    assert datetime.fromisoformat(body["closes_at"]) == datetime.fromisoformat(soon(9))
    assert datetime.fromisoformat(body["proposals_close_at"]) == datetime.fromisoformat(soon(3))  # unchanged
    assert [detail for _, _, detail in edits(appliance)] == [f"closes_at={soon(9)}"]


@pytest.mark.parametrize("status", ["closed", "published"])
def test_it_refuses_to_edit_a_round_after_it_closed(admin, status):
    round_id = round_in(admin, status)
    assert_problem(admin.patch(url(round_id), json={"closes_at": soon(9)}), 409,
                   f"cannot edit a round that is {status}")
    assert_problem(admin.patch(url("no-such-round"), json={"title": "Any"}), 404, "no round 'no-such-round'")


# moderation

@pytest.mark.parametrize("body, detail", [
    ({"reason": "boring"}, "reason must be one of"),
    ({"reason": "OFF_TOPIC"}, "reason must be one of"),
    ({"reason": "off_topic", "note": "n" * 501}, "note is too long"),
])
def test_it_refuses_a_refusal_outside_the_charter(api, mod, staff_round, body, detail):
    proposal_id = pending(api("u05"), staff_round)
    assert_problem(mod.post(url(staff_round, "proposals", proposal_id, "refuse"), json=body), 400, detail)
    assert [p["status"] for p in mod.get(url(staff_round, "moderation")).json()] == ["pending"]


def test_it_refuses_to_accept_an_already_accepted_proposal(api, mod, staff_round):
    proposal_id = accepted(mod, api("u05"), staff_round)
    assert_problem(mod.post(url(staff_round, "proposals", proposal_id, "accept")), 409, "already accepted")
    assert [p["id"] for p in mod.get(url(staff_round, "proposals")).json()] == [proposal_id]


# routes

@pytest.mark.parametrize("method, path, status", [("get", "/api/v1/nowhere", 404), ("put", ROUNDS, 405)])
def test_it_answers_an_unknown_route_with_problem_json(u00, method, path, status):
    assert_problem(getattr(u00, method)(path), status, "not")


def test_it_refuses_to_open_a_round_whose_audience_is_smaller_than_k(admin):
    def create(k: int) -> str:
        created = admin.post("/api/v1/rounds", json={"title": "Staff", "question": "What should change?",
                                                     "audience_groups": ["staff"], "k": k})
        assert created.status_code == 201, created.text
        return created.json()["id"]

    round_id = create(13)
    assert_problem(admin.post(url(round_id, "open")), 409, "the audience counts 12 people, fewer than the anonymity"
                   " threshold k = 13: no result could ever be published; create the round again with a lower k or"
                   " a wider audience")
    assert status_of(admin, round_id) == "draft"
    assert admin.post(url(create(12), "open")).status_code == 200
