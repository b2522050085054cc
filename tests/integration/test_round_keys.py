"""Round keys: created once at open, never cached, destroyed at close; start-up reconciles them."""

from __future__ import annotations

import pytest

from appliance.cli import main
from appliance.domain.errors import Conflict
from appliance.services import participation, rounds
from appliance.services.rounds import StartupRefused, RoundDraft, reconcile_keys
from appliance.storage import keys, proposals, snapshots
from appliance.storage.proposals import Release, RoundNotOpen, StoredProposal
from appliance.storage.rounds import get_round
from tests.conftest import add_person


@pytest.fixture
def draft(appliance) -> str:
    add_person(appliance, "chief", {"admins"})
    return rounds.create_round(appliance, "chief", RoundDraft("Keys", "What should change?")).id


def test_opening_refuses_when_another_request_is_creating_the_key(appliance, draft):
    keys.create_round_key(appliance.keys_dir, draft)  # the other request's key
    theirs = keys.read_round_key(appliance.keys_dir, draft)
    with pytest.raises(Conflict, match="being opened"):
        rounds.open_round(appliance, "chief", draft)
    assert keys.read_round_key(appliance.keys_dir, draft) == theirs
    assert get_round(appliance.dbs.ballots, draft).status == "draft"


def test_a_closed_round_key_is_gone_for_every_worker(appliance, draft, make_settings):
    from appliance.services.context import build_appliance

    rounds.open_round(appliance, "chief", draft)
    other_worker = build_appliance(make_settings())
    assert other_worker.round_key(draft) is not None
    rounds.close_round(appliance, "chief", draft)
    assert other_worker.round_key(draft) is None  # no copy kept in any worker's memory
    assert not keys.key_path(appliance.keys_dir, draft).exists()
    other_worker.close()


def test_a_proposal_written_as_the_round_closes_is_refused(appliance, draft):
    rounds.open_round(appliance, "chief", draft)
    rounds.close_round(appliance, "chief", draft)
    late = StoredProposal("0123456789abcdef", draft, "Written too late to count", "pending", None, None)
    with pytest.raises(RoundNotOpen):
        proposals.insert_if_under_quota(appliance.dbs.ballots, late, b"\x01" * 32, 5, Release(0, "pending"))
    assert proposals.get_proposal(appliance.dbs.ballots, draft, late.id) is None


def test_a_second_insert_of_the_same_text_by_the_same_author_returns_the_first(appliance, draft):
    rounds.open_round(appliance, "chief", draft)
    first = StoredProposal("0123456789abcdef", draft, "Sent twice by a double tap", "pending", None, None)
    twice = StoredProposal("fedcba9876543210", draft, "Sent twice by a double tap", "pending", None, None)
    other = StoredProposal("00112233445566ff", draft, "Sent twice by a double tap", "pending", None, None)
    db, author = appliance.dbs.ballots, b"\x01" * 32
    assert proposals.insert_if_under_quota(db, first, author, 1, Release(0, "pending")) == first
    assert proposals.insert_if_under_quota(db, twice, author, 1, Release(0, "pending")) == first
    assert proposals.get_proposal(db, draft, twice.id) is None
    assert proposals.insert_if_under_quota(db, other, b"\x02" * 32, 1, Release(0, "pending")) == other


def test_start_up_refuses_a_missing_keys_directory_while_rounds_are_open(appliance, draft):
    rounds.open_round(appliance, "chief", draft)
    key = keys.read_round_key(appliance.keys_dir, draft)
    keys.key_path(appliance.keys_dir, draft).unlink()
    appliance.keys_dir.rmdir()  # as if its volume were not mounted
    with pytest.raises(StartupRefused, match="storage.keys_dir"):
        reconcile_keys(appliance)
    assert get_round(appliance.dbs.ballots, draft).status == "open"
    appliance.keys_dir.mkdir()
    keys.key_path(appliance.keys_dir, draft).write_bytes(key)
    reconcile_keys(appliance)
    assert get_round(appliance.dbs.ballots, draft).status == "open"


def test_serve_stops_with_one_line_when_the_keys_directory_is_missing(appliance, draft, monkeypatch, capsys):
    rounds.open_round(appliance, "chief", draft)
    monkeypatch.setenv("APPLIANCE_STORAGE__DATA_DIR", str(appliance.settings.storage.data_dir))
    monkeypatch.setenv("APPLIANCE_STORAGE__KEYS_DIR", str(appliance.keys_dir / "not-mounted"))
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "storage.keys_dir" in err and err.count("\n") == 1


def test_start_up_closes_an_open_round_whose_key_is_lost(appliance, draft):
    other = rounds.create_round(appliance, "chief", RoundDraft("Other", "And this?")).id
    rounds.open_round(appliance, "chief", draft)
    rounds.open_round(appliance, "chief", other)
    keys.key_path(appliance.keys_dir, draft).unlink()
    reconcile_keys(appliance)
    assert get_round(appliance.dbs.ballots, draft).status == "closed"
    assert get_round(appliance.dbs.ballots, other).status == "open"


def test_start_up_refuses_when_no_open_round_finds_its_key(appliance, draft):
    rounds.open_round(appliance, "chief", draft)
    keys.key_path(appliance.keys_dir, draft).unlink()  # an empty mount point looks like this
    with pytest.raises(StartupRefused, match="appliance close-keyless-rounds"):
        reconcile_keys(appliance)
    assert get_round(appliance.dbs.ballots, draft).status == "open"
    reconcile_keys(appliance, close_keyless=True)
    assert get_round(appliance.dbs.ballots, draft).status == "closed"


def test_start_up_finishes_a_close_interrupted_after_counting(appliance, draft):
    member = add_person(appliance, "member", set())
    rounds.open_round(appliance, "chief", draft)
    participation.submit_proposal(appliance, draft, appliance.viewer(member), "A proposal to count later")
    from appliance.storage.ballots import close_and_count

    close_and_count(appliance.dbs.ballots, draft)  # the process died right after this step
    assert keys.key_path(appliance.keys_dir, draft).exists()
    reconcile_keys(appliance)
    assert not keys.key_path(appliance.keys_dir, draft).exists()
    assert snapshots.member_combo(appliance.dbs.identity, draft, member.id) is None


def test_start_up_refuses_a_changed_instance_secret_while_a_round_is_open(appliance, draft, make_settings):
    from appliance.services.context import build_appliance

    reconcile_keys(appliance)
    rounds.open_round(appliance, "chief", draft)
    other = build_appliance(make_settings(security={"instance_secret": "x" * 40}))
    with pytest.raises(StartupRefused, match="security.instance_secret changed"):
        reconcile_keys(other)
    rounds.close_round(appliance, "chief", draft)
    reconcile_keys(other)  # with no round open, the new secret is adopted
    other.close()


def test_a_member_frozen_into_the_audience_keeps_voting_after_leaving_its_group(appliance):
    add_person(appliance, "chief", {"admins"})
    member = add_person(appliance, "mover", {"crowd"})
    for i in range(4):  # an audience of k people at least
        add_person(appliance, f"stayer{i}", {"crowd"})
    round_id = rounds.create_round(appliance, "chief", RoundDraft("Frozen", "What now?", audience_groups=("crowd",))).id
    rounds.open_round(appliance, "chief", round_id)
    moved = appliance.viewer(member.__class__(member.id, member.username, member.display_name, groups=frozenset()))
    proposal = participation.submit_proposal(appliance, round_id, moved, "Still in the frozen audience")
    assert proposal.status == "pending"
    chief = appliance.viewer(add_person(appliance, "checker", {"moderators"}))
    participation.moderate(appliance, "checker", round_id, chief, proposal.id, "accept")
    participation.cast_vote(appliance, round_id, moved, proposal.id, "agree", "doable")
    assert [r.id for r in rounds.visible_rounds(appliance, moved)] == [round_id]
