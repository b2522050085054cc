"""GET .../sequence through HTTP: what a voter is shown next, and from which counts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from appliance.storage import ballots
from tests.conftest import create_open_round

TOPICS = ["bike racks", "standing desks", "quiet rooms", "late lunches", "team days", "plants", "coffee",
          "showers", "lockers", "parking", "library", "wifi"]


@pytest.fixture
def voting_round(api):
    """A post-moderated round with 24 accepted proposals, written by 12 colleagues."""
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"], moderation="post")
    for i, topic in enumerate(TOPICS):
        author = api(f"u{i:02d}")
        for where in ("on every floor", "at the head office"):
            response = author.post(f"/api/v1/rounds/{round_id}/proposals", json={"text": f"More {topic} {where}"})
            assert response.status_code == 201 and response.json()["status"] == "accepted", response.text
    return admin, round_id


def sequence(client, round_id: str) -> dict:
    response = client.get(f"/api/v1/rounds/{round_id}/sequence")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_voter_gets_12_proposals_never_one_already_voted_on_until_none_is_left(api, voting_round):
    _, round_id = voting_round
    voter = api("u05")
    accepted = {p["id"] for p in voter.get(f"/api/v1/rounds/{round_id}/proposals").json()}
    assert len(accepted) == 24
    seen: set[str] = set()
    for turn in range(2):
        shown = sequence(voter, round_id)
        ids = [p["id"] for p in shown["proposals"]]
        assert len(ids) == 12 and len(set(ids)) == 12 and set(ids) <= accepted
        assert not set(ids) & seen
        assert (shown["voted"], shown["remaining"]) == (12 * turn, 24 - 12 * turn)
        for pid in ids:
            response = voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": pid, "vote": "agree"})
            assert response.status_code == 200
        seen |= set(ids)
    assert sequence(voter, round_id) == {"proposals": [], "voted": 24, "remaining": 0}
    assert len(sequence(api("u06"), round_id)["proposals"]) == 12  # another voter starts afresh


def test_a_sequence_shows_one_proposal_of_each_group_of_duplicates(api, voting_round):
    _, round_id = voting_round
    mod = api("mod")
    texts = {p["text"]: p["id"] for p in mod.get(f"/api/v1/rounds/{round_id}/proposals").json()}
    for topic in TOPICS:
        response = mod.post(f"/api/v1/rounds/{round_id}/proposals/{texts[f'More {topic} at the head office']}/duplicate",
                            json={"of": texts[f"More {topic} on every floor"]})
        assert response.status_code == 200
    for _ in range(5):
        shown = [p["text"] for p in sequence(api("u07"), round_id)["proposals"]]
        assert len(shown) == 12
        assert len({text.split(" on every floor")[0].split(" at the head office")[0] for text in shown}) == 12
    voter = api("u08")  # progress counts groups, as sequences show them: 12 to go, not 24
    first = sequence(voter, round_id)
    assert (first["voted"], first["remaining"]) == (0, 12)
    for proposal in first["proposals"]:
        voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal["id"], "vote": "agree"})
    assert sequence(voter, round_id) == {"proposals": [], "voted": 12, "remaining": 0}


def test_sequences_read_vote_counts_from_an_hourly_snapshot(api, appliance, voting_round):
    _, round_id = voting_round
    voter = api("u08")
    sequence(voter, round_id)  # takes the snapshot: nobody has voted yet
    ids = [p["id"] for p in sequence(voter, round_id)["proposals"]]
    for pid in ids[:5]:
        assert voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": pid, "vote": "agree"}).status_code == 200
    now = appliance.clock()

    def taken_again() -> tuple[dict, dict]:
        return ballots.tallies(appliance.dbs.ballots, round_id), {}

    counts, _ = appliance.tally_snapshots.get(round_id, now.timestamp(), taken_again)
    assert counts == {}  # still the snapshot taken before anyone voted
    later = now + timedelta(seconds=3601)
    counts, _ = appliance.tally_snapshots.get(round_id, later.timestamp(), taken_again)
    assert counts == {pid: (1, 0, 0) for pid in ids[:5]}
    # The voter's own votes are always current, whatever the snapshot.
    assert not {p["id"] for p in sequence(voter, round_id)["proposals"]} & set(ids[:5])


def test_asking_again_gives_the_same_sequence_so_the_draws_cannot_be_sampled(api, appliance, voting_round):
    _, round_id = voting_round
    now = appliance.clock()
    appliance.clock = lambda: now  # within one snapshot period (the hour)
    for i, voter in enumerate(("u00", "u01", "u02")):  # votes in the snapshot, that the engine's draws depend on
        client = api(voter)
        for proposal in sequence(client, round_id)["proposals"][:8]:
            client.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal["id"], "vote": "agree"})
    appliance.tally_snapshots.forget(round_id)
    voter = api("u09")
    asked = {tuple(p["id"] for p in sequence(voter, round_id)["proposals"]) for _ in range(30)}
    assert len(asked) == 1  # each draw at random: 30 askings would show how often each proposal comes up
    [first] = asked
    other = {tuple(p["id"] for p in sequence(api("u10"), round_id)["proposals"]) for _ in range(3)}
    assert len(other) == 1 and other != asked  # another voter, other draws
    appliance.clock = lambda: now + timedelta(hours=1)  # the next period: new draws, though no count moved
    assert tuple(p["id"] for p in sequence(voter, round_id)["proposals"]) != first
    voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": first[0], "vote": "neutral"})
    after = [p["id"] for p in sequence(voter, round_id)["proposals"]]
    assert first[0] not in after and sequence(voter, round_id)["proposals"] == sequence(voter, round_id)["proposals"]


def test_outsiders_and_closed_rounds_get_no_sequence(api, voting_round):
    admin, round_id = voting_round
    response = api("outsider").get(f"/api/v1/rounds/{round_id}/sequence")
    assert response.status_code in (403, 404)
    assert admin.post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    response = api("u05").get(f"/api/v1/rounds/{round_id}/sequence")
    assert response.status_code == 409 and response.json()["detail"] == "the round is closed, not open"
