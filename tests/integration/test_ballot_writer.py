"""Group commit of votes: every vote answered after its commit, none lost, none doubled."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest

from appliance.services import participation, rounds
from appliance.services.rounds import RoundDraft
from appliance.storage.ballots import CAST, ROUND_NOT_OPEN, Ballot
from tests.conftest import add_person


@pytest.fixture
def open_round(appliance):
    """An open round with 3 accepted proposals and 40 voters."""
    voters = [add_person(appliance, f"v{i:02d}", {"crowd"}) for i in range(40)]
    admin = appliance.viewer(add_person(appliance, "boss", {"admins"}))
    moderator = appliance.viewer(add_person(appliance, "checker", {"moderators"}))
    round_id = rounds.create_round(appliance, "boss", RoundDraft("Crowd", "What now?", audience_groups=("crowd",))).id
    rounds.open_round(appliance, "boss", round_id)
    for i in range(3):
        participation.submit_proposal(appliance, round_id, appliance.viewer(voters[i]), f"Proposal number {i} here")
    proposal_ids = [item.proposal.id for item in participation.moderation_queue(appliance, "checker", round_id, moderator)]
    for pid in proposal_ids:
        participation.moderate(appliance, "checker", round_id, moderator, pid, "accept")
    return round_id, proposal_ids, [appliance.viewer(v) for v in voters], admin


def stored_ballots(appliance, round_id: str) -> list[tuple]:
    db = sqlite3.connect(appliance.settings.storage.ballots_db)
    rows = db.execute("SELECT proposal_id, vote FROM ballots WHERE round_id = ?", (round_id,)).fetchall()
    db.close()
    return rows


def test_concurrent_votes_are_all_recorded_once(appliance, open_round):
    round_id, proposal_ids, voters, _ = open_round

    def vote(args):
        voter, pid, vote_ = args
        participation.cast_vote(appliance, round_id, voter, pid, vote_, None)

    work = [(v, pid, "agree") for v in voters for pid in proposal_ids]
    work += [(v, proposal_ids[0], "disagree") for v in voters[:10]]  # changed votes
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(vote, work))
    rows = stored_ballots(appliance, round_id)
    assert len(rows) == len(voters) * len(proposal_ids)
    assert sorted(v for pid, v in rows if pid == proposal_ids[0]).count("disagree") == 10


def test_a_vote_after_close_is_refused_by_the_writer(appliance, open_round):
    round_id, proposal_ids, voters, admin = open_round
    participation.cast_vote(appliance, round_id, voters[0], proposal_ids[0], "agree", None)
    rounds.close_round(appliance, "boss", round_id)
    late = Ballot(round_id, b"\x01" * 32, "[]", proposal_ids[0], "agree", "")
    assert appliance.ballot_writer.cast(late) == ROUND_NOT_OPEN
    assert stored_ballots(appliance, round_id) == []


def test_a_failed_batch_answers_every_waiting_vote_with_the_error(appliance, open_round, monkeypatch):
    round_id, proposal_ids, _, _ = open_round
    ballot = Ballot(round_id, b"\x02" * 32, "[]", proposal_ids[0], "agree", "")
    assert appliance.ballot_writer.cast(ballot) == CAST

    def broken(db, ballot):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr("appliance.storage.ballot_writer.record_ballot", broken)
    with pytest.raises(sqlite3.OperationalError):
        appliance.ballot_writer.cast(ballot)
    monkeypatch.undo()
    assert appliance.ballot_writer.cast(ballot) == CAST  # the writer survives a failed batch
