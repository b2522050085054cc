"""The moderation desk through HTTP: holds, spelling corrections, duplicates; and the rate limits on voters."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from appliance.directory import Person
from appliance.storage import people
from tests.conftest import PASSWORD_HASH, add_person, create_open_round


@pytest.fixture
def settings_overrides() -> dict[str, dict]:
    return {"security": {"votes_per_minute": 3, "proposals_per_hour": 2}}


@pytest.fixture
def desk(api, appliance):
    """A round with two pending proposals, two moderators signed in."""
    add_person(appliance, "mod2", {"moderators"})
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    for username, text in (("u01", "Flexible hours for evryone"), ("u02", "A quiet room on every floor")):
        assert api(username).post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).status_code == 201
    queue = {p["text"]: p["id"] for p in api("mod").get(f"/api/v1/rounds/{round_id}/moderation").json()}
    return admin, round_id, queue


def url(round_id: str, path: str) -> str:
    return f"/api/v1/rounds/{round_id}/{path}"


def test_a_proposal_held_by_one_moderator_cannot_be_decided_by_another_until_the_hold_ends(api, appliance, desk):
    _, round_id, queue = desk
    first, second = api("mod"), api("mod2")
    pid = queue["A quiet room on every floor"]
    claimed = first.post(url(round_id, f"proposals/{pid}/claim"))
    assert claimed.status_code == 200
    now = appliance.clock()
    assert claimed.json()["held_until"] == int(now.timestamp()) + 120

    refused = second.post(url(round_id, f"proposals/{pid}/accept"))
    assert refused.status_code == 409
    assert "another moderator is handling this proposal" in refused.json()["detail"]
    assert second.post(url(round_id, f"proposals/{pid}/claim")).status_code == 409
    held = {p["id"]: p["held_until"] for p in second.get(url(round_id, "moderation")).json()}
    assert held[pid] == int(now.timestamp()) + 120 and held[queue["Flexible hours for evryone"]] is None
    assert {p["id"]: p["held_until"] for p in first.get(url(round_id, "moderation")).json()}[pid] is None  # mine

    appliance.clock = lambda: now + timedelta(seconds=121)  # the hold ran out
    assert second.post(url(round_id, f"proposals/{pid}/claim")).status_code == 200
    assert first.post(url(round_id, f"proposals/{pid}/accept")).status_code == 409
    accepted = second.post(url(round_id, f"proposals/{pid}/accept"))
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"


def test_a_decision_releases_the_hold_and_close_forgets_every_hold(api, appliance, desk):
    admin, round_id, queue = desk
    pid = queue["A quiet room on every floor"]
    assert api("mod").post(url(round_id, f"proposals/{pid}/accept")).status_code == 200  # held, decided, released
    other = queue["Flexible hours for evryone"]
    assert api("mod2").post(url(round_id, f"proposals/{other}/claim")).status_code == 200
    held = appliance.dbs.identity.execute("SELECT proposal_id, holder FROM moderation_locks").fetchall()
    assert held == [(other, "mod2")]
    assert admin.post(url(round_id, "close")).status_code == 200
    assert appliance.dbs.identity.execute("SELECT count(*) FROM moderation_locks").fetchone()[0] == 0


def test_a_moderator_corrects_spelling_the_corrected_text_is_published_and_the_audit_log_keeps_both(api, appliance,
                                                                                                   desk):
    _, round_id, queue = desk
    mod = api("mod")
    pid = queue["Flexible hours for evryone"]
    corrected = mod.post(url(round_id, f"proposals/{pid}/correct"), json={"text": "Flexible hours for everyone"})
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["text"] == "Flexible hours for everyone"
    assert mod.post(url(round_id, f"proposals/{pid}/accept")).status_code == 200
    published = api("u03").get(url(round_id, "proposals")).json()
    assert [p["text"] for p in published] == ["Flexible hours for everyone"]
    [(actor, detail)] = appliance.dbs.identity.execute(
        "SELECT actor, detail FROM audit_log WHERE action = 'proposal.correct' AND target = ?", [pid]).fetchall()
    assert actor == "mod"
    assert json.loads(detail) == {"before": "Flexible hours for evryone", "after": "Flexible hours for everyone"}


@pytest.mark.parametrize(("text", "message"), [
    ("Free pizza on Fridays for all", "a correction may fix spelling, not rewrite the proposal"),
    ("Flexible hours for evryone", "the corrected text is the same as the proposal"),
    ("No flexible hours for everyone", "a correction may fix spelling, not add or remove a negation"),
    ("Flexible hours for everybody", "a correction may fix spelling, not change words"),
    ("Flex", "at least"),
])
def test_a_correction_that_rewrites_or_changes_nothing_is_refused(api, desk, text, message):
    _, round_id, queue = desk
    response = api("mod").post(url(round_id, f"proposals/{queue['Flexible hours for evryone']}/correct"),
                               json={"text": text})
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_a_refused_proposal_is_not_corrected_and_employees_cannot_correct(api, desk):
    _, round_id, queue = desk
    pid = queue["Flexible hours for evryone"]
    assert api("u01").post(url(round_id, f"proposals/{pid}/correct"),
                           json={"text": "Flexible hours for everyone"}).status_code == 403
    assert api("mod").post(url(round_id, f"proposals/{pid}/refuse"), json={"reason": "off_topic"}).status_code == 200
    response = api("mod").post(url(round_id, f"proposals/{pid}/correct"), json={"text": "Flexible hours for everyone"})
    assert response.status_code == 409


def test_duplicates_keep_their_votes_and_groups_keep_one_root(api, appliance, desk):
    admin, round_id, queue = desk
    mod = api("mod")
    texts = {"Flexible hours for everyone, please": "u03", "Let us choose our own working hours": "u04"}
    for text, author in texts.items():
        assert api(author).post(url(round_id, "proposals"), json={"text": text}).status_code == 201
    ids = {p["text"]: p["id"] for p in mod.get(url(round_id, "moderation")).json()}
    for pid in ids.values():
        assert mod.post(url(round_id, f"proposals/{pid}/accept")).status_code == 200
    flexible, please, choose = (ids["Flexible hours for evryone"], ids["Flexible hours for everyone, please"],
                                ids["Let us choose our own working hours"])

    marked = mod.post(url(round_id, f"proposals/{please}/duplicate"), json={"of": flexible})
    assert marked.status_code == 200 and marked.json()["duplicate_of"] == flexible
    # The root joins another group: its duplicates follow it.
    assert mod.post(url(round_id, f"proposals/{flexible}/duplicate"), json={"of": choose}).status_code == 200
    duplicate_of = dict(appliance.dbs.ballots.execute("SELECT id, duplicate_of FROM proposals").fetchall())
    assert duplicate_of[please] == duplicate_of[flexible] == choose and duplicate_of[choose] is None
    # Marking the root a duplicate of one of its group's members would point at itself: said as it is.
    response = mod.post(url(round_id, f"proposals/{choose}/duplicate"), json={"of": please})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("the proposal it repeats is already marked as repeating this one")
    response = mod.post(url(round_id, f"proposals/{choose}/duplicate"), json={"of": choose})
    assert response.status_code == 400 and response.json()["detail"] == "a proposal cannot be a duplicate of itself"
    assert mod.post(url(round_id, f"proposals/{please}/duplicate"), json={"of": "0000000000000000"}).status_code == 404
    undone = mod.post(url(round_id, f"proposals/{please}/duplicate"), json={"of": None})
    assert undone.status_code == 200 and undone.json()["duplicate_of"] is None

    # A duplicate keeps its votes: it is in the results like any accepted proposal.
    for voter in ("u00", "u01", "u02", "u03", "u04"):
        assert api(voter).post(url(round_id, "ballots"), json={"proposal": flexible, "vote": "agree"}).status_code == 200
    assert admin.post(url(round_id, "close")).status_code == 200
    results = {p["id"]: p for p in admin.get(url(round_id, "results")).json()["proposals"]}
    assert results[flexible]["voters"] == 5


def test_only_accepted_proposals_are_marked_duplicates(api, desk):
    _, round_id, queue = desk
    response = api("mod").post(url(round_id, f"proposals/{queue['Flexible hours for evryone']}/duplicate"),
                               json={"of": queue["A quiet room on every floor"]})
    assert response.status_code == 409
    assert "only accepted proposals" in response.json()["detail"]


def test_votes_and_proposals_beyond_the_rate_limits_get_429_with_retry_after(api, appliance, desk):
    _, round_id, queue = desk
    mod = api("mod")
    for pid in queue.values():
        assert mod.post(url(round_id, f"proposals/{pid}/accept")).status_code == 200
    voter = api("u05")
    pid = queue["A quiet room on every floor"]
    for vote in ("agree", "disagree", "neutral"):  # a changed vote is a vote too
        assert voter.post(url(round_id, "ballots"), json={"proposal": pid, "vote": vote}).status_code == 200
    limited = voter.post(url(round_id, "ballots"), json={"proposal": pid, "vote": "agree"})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["detail"].startswith("too many votes: at most 3 in a minute; try again in")
    assert api("u06").post(url(round_id, "ballots"), json={"proposal": pid, "vote": "agree"}).status_code == 200

    now = appliance.clock()
    appliance.clock = lambda: now + timedelta(seconds=61)
    assert voter.post(url(round_id, "ballots"), json={"proposal": pid, "vote": "agree"}).status_code == 200

    author = api("u07")
    for text in ("Bike racks by the door", "Standing desks on request"):
        assert author.post(url(round_id, "proposals"), json={"text": text}).status_code == 201
    limited = author.post(url(round_id, "proposals"), json={"text": "Lunch vouchers for interns"})
    assert limited.status_code == 429 and "too many proposals: at most 2 in an hour" in limited.json()["detail"]
    assert int(limited.headers["retry-after"]) > 60


def test_refused_attempts_do_not_use_up_the_hourly_proposal_limit(api, appliance, desk):
    admin, round_id, _ = desk
    author = api("u08")
    for text in ["too short"] * 5 + ["!!!!!!!!!!!!!!", "\u200b" * 12, "x" * 281]:
        assert author.post(url(round_id, "proposals"), json={"text": text}).status_code == 400
    for text in ("Bike racks by the door", "Bike racks by the door", "Standing desks on request"):
        assert author.post(url(round_id, "proposals"), json={"text": text}).status_code == 201  # a double tap is free
    limited = author.post(url(round_id, "proposals"), json={"text": "Lunch vouchers for interns"})
    assert limited.status_code == 429


def test_attempts_over_the_quota_do_not_use_up_the_limit(api, appliance, desk):
    admin, _, _ = desk
    small = create_open_round(admin, audience_groups=["staff"], proposal_quota=1)
    author = api("u08")
    assert author.post(url(small, "proposals"), json={"text": "Bike racks by the door"}).status_code == 201
    for _ in range(3):
        assert author.post(url(small, "proposals"), json={"text": "Standing desks on request"}).status_code == 409
    other = create_open_round(admin, audience_groups=["staff"])
    assert author.post(url(other, "proposals"), json={"text": "Standing desks on request"}).status_code == 201
    assert author.post(url(other, "proposals"), json={"text": "Lunch vouchers for interns"}).status_code == 429


def test_the_queue_flags_e_mail_addresses_phone_numbers_and_colleagues_names(api, appliance, desk):
    _, round_id, _ = desk
    people.insert_person(appliance.dbs.identity, Person("local:mh", "mh", "Marie-Hélène Dupont", "", frozenset(),
                                                        {}), PASSWORD_HASH)
    text = "Marie Helene Dupont takes calls at 06 12 34 56 78 and mh.dupont@example.org, ask her"
    assert api("u09").post(url(round_id, "proposals"), json={"text": text}).status_code == 201
    queue = {p["text"]: p for p in api("mod").get(url(round_id, "moderation")).json()}
    assert queue[text]["flags"] == [
        {"kind": kind, "start": text.index(span), "end": text.index(span) + len(span), "text": span}
        for kind, span in (("name", "Marie Helene Dupont"), ("phone", "06 12 34 56 78"),
                           ("email", "mh.dupont@example.org"))]
    assert queue["A quiet room on every floor"]["flags"] == []


def test_a_pending_proposal_shows_the_published_ones_it_resembles_and_moderators_can_search(api, desk):
    _, round_id, queue = desk
    mod = api("mod")
    assert mod.post(url(round_id, f"proposals/{queue['A quiet room on every floor']}/accept")).status_code == 200
    assert api("u03").post(url(round_id, "proposals"), json={"text": "A quiet room on each floor, please"}
                           ).status_code == 201
    pending = {p["text"]: p for p in mod.get(url(round_id, "moderation")).json()}
    repeat = pending["A quiet room on each floor, please"]
    assert [h["text"] for h in repeat["similar"]] == ["A quiet room on every floor"]
    assert 0 < repeat["similar"][0]["score"] <= 1
    assert pending["Flexible hours for evryone"]["similar"] == []
    found = mod.post(url(round_id, "moderation/similar"), json={"text": "calm rooms, one per floor"})
    assert found.status_code == 200 and [h["text"] for h in found.json()] == ["A quiet room on every floor"]
    assert api("u01").post(url(round_id, "moderation/similar"), json={"text": "room"}).status_code == 403
    assert mod.post(url(round_id, "moderation/similar"), json={}).status_code == 400


def test_refusing_the_original_of_duplicates_keeps_them_one_group(api, appliance):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    texts = ("Flexible hours for everyone", "Flexible hours for all of us", "Flexible working hours, please",
             "A quiet room on every floor")
    for author, text in zip(("u01", "u02", "u03", "u04"), texts):
        assert api(author).post(url(round_id, "proposals"), json={"text": text}).status_code == 201
    mod = api("mod")
    ids = {p["text"]: p["id"] for p in mod.get(url(round_id, "proposals")).json()}
    original, *copies = (ids[text] for text in texts[:3])
    for copy in copies:
        assert mod.post(url(round_id, f"proposals/{copy}/duplicate"), json={"of": original}).status_code == 200
    voter = api("u05")
    assert len(voter.get(url(round_id, "sequence")).json()["proposals"]) == 2

    assert mod.post(url(round_id, f"proposals/{original}/refuse"), json={"reason": "insulting"}).status_code == 200
    duplicate_of = dict(appliance.dbs.ballots.execute("SELECT id, duplicate_of FROM proposals").fetchall())
    root = min(copies)
    assert duplicate_of[root] is None and duplicate_of[max(copies)] == root  # a published root, not the refused one
    sequence = voter.get(url(round_id, "sequence")).json()
    assert len(sequence["proposals"]) == 2 and sequence["remaining"] == 2  # one of the pair, and the other


def test_two_moderators_marking_each_other_s_proposal_leave_no_loop(api, appliance):
    from appliance.storage import proposals

    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    for author, text in (("u01", "Flexible hours for everyone"), ("u02", "Flexible hours for all of us")):
        assert api(author).post(url(round_id, "proposals"), json={"text": text}).status_code == 201
    x, y = (p["id"] for p in api("mod").get(url(round_id, "proposals")).json())
    # Each moderator found the other proposal a root before either wrote: the second write must not land.
    assert proposals.mark_duplicate(appliance.dbs.ballots, round_id, x, y) is True
    assert proposals.mark_duplicate(appliance.dbs.ballots, round_id, y, x) is False
    assert proposals.mark_duplicate(appliance.dbs.ballots, round_id, x, x) is False
    duplicate_of = dict(appliance.dbs.ballots.execute("SELECT id, duplicate_of FROM proposals").fetchall())
    assert duplicate_of == {x: y, y: None}


def test_a_proposal_accepted_by_mistake_in_pre_moderation_can_still_be_refused_and_is_hidden(api, desk):
    _, round_id, queue = desk
    mod, pid = api("mod"), queue["A quiet room on every floor"]
    assert mod.post(url(round_id, f"proposals/{pid}/accept")).status_code == 200
    assert [p["id"] for p in api("u05").get(url(round_id, "proposals")).json()] == [pid]
    refused = mod.post(url(round_id, f"proposals/{pid}/refuse"), json={"reason": "targets_a_person"})
    assert refused.status_code == 200 and refused.json()["status"] == "refused"
    assert api("u05").get(url(round_id, "proposals")).json() == []
    assert api("u05").get(url(round_id, "sequence")).json()["proposals"] == []
    [mine] = api("u02").get(url(round_id, "proposals/mine")).json()
    assert (mine["status"], mine["refusal_reason"]) == ("refused", "targets_a_person")
    again = mod.post(url(round_id, f"proposals/{pid}/refuse"), json={"reason": "insulting"})
    assert again.status_code == 409 and "already refused" in again.json()["detail"]
