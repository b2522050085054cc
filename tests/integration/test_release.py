"""New proposals reach moderation in shuffled batches at fixed times, and carry no date."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import create_open_round

HOUR = 3600


@pytest.fixture
def settings_overrides() -> dict[str, dict]:
    return {"rounds": {"release_interval_seconds": HOUR}}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 10, 20, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(appliance) -> Clock:
    appliance.clock = Clock()
    return appliance.clock


def propose(browser, round_id: str, text: str) -> dict:
    response = browser.post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()


def queue_texts(mod, round_id: str) -> set[str]:
    return {p["text"] for p in mod.get(f"/api/v1/rounds/{round_id}/moderation").json()}


def test_a_proposal_waits_for_the_next_release_time(api, clock):
    admin, mod = api("admin"), api("mod")
    round_id = create_open_round(admin)
    assert propose(api("u00"), round_id, "Quieter open spaces please")["status"] == "pending"
    propose(api("u01"), round_id, "A shuttle from the station")
    assert queue_texts(mod, round_id) == set()
    clock.advance(HOUR)
    propose(api("u02"), round_id, "Shared calendar of leave")  # written after the release time
    assert queue_texts(mod, round_id) == {"Quieter open spaces please", "A shuttle from the station"}
    clock.advance(HOUR)
    assert "Shared calendar of leave" in queue_texts(mod, round_id)


def test_post_moderation_publishes_at_the_next_release_time(api, clock):
    admin = api("admin")
    round_id = create_open_round(admin, moderation="post")
    voter = api("u03")
    assert propose(api("u04"), round_id, "Breakfast between departments")["status"] == "accepted"
    assert voter.get(f"/api/v1/rounds/{round_id}/proposals").json() == []
    clock.advance(HOUR)
    assert [p["text"] for p in voter.get(f"/api/v1/rounds/{round_id}/proposals").json()] == [
        "Breakfast between departments"]


def test_a_queued_proposal_stores_no_time_of_any_kind(api, appliance, clock):
    round_id = create_open_round(api("admin"))
    propose(api("u05"), round_id, "Menus published a week ahead")
    db = appliance.dbs.ballots.conn
    columns = [row[1] for row in db.execute("PRAGMA table_info(proposals)")]
    assert columns == ["id", "round_id", "text", "status", "author_label", "refusal_reason", "refusal_note",
                       "duplicate_of"]
    (row,) = db.execute("SELECT id, round_id, text, status, refusal_reason, refusal_note FROM proposals")
    assert row[2:] == ("Menus published a week ahead", "queued", None, None)
    period = int(clock.now.timestamp()) // HOUR
    assert str(period) not in " ".join(str(v) for v in row)


def test_an_author_sees_a_queued_proposal_as_pending_in_my_proposals(api, clock):
    round_id = create_open_round(api("admin"))
    author = api("u06")
    propose(author, round_id, "Fewer emails to the whole department")
    mine = author.get(f"/api/v1/rounds/{round_id}/proposals/mine").json()
    assert [(p["text"], p["status"]) for p in mine] == [("Fewer emails to the whole department", "pending")]
