"""The scheduler: round openings and closings, job failures and stops, one active scheduler per deployment."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from litestar.testing import TestClient

from appliance.app import create_app
from appliance.services import scheduler as scheduling
from appliance.services.context import Appliance, build_appliance, utc_now
from appliance.services.outbox import compose, enqueue
from appliance.services.rounds import RoundDraft, create_round, delete_draft, edit_round, open_round
from appliance.services.scheduler import (JOBS, RUNNING_ELSEWHERE, RUNNING_HERE, STOPPED, PeriodicJob, Scheduler,
                                          scheduler_status, step_rounds, stop_requested)
from appliance.storage import audit, instance
from appliance.storage import rounds as stored_rounds
from tests.services.smtp import SmtpServer

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], bool], seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def schedulers() -> Iterator[Callable[..., Scheduler]]:
    """Starts Schedulers for one test and stops them after it."""
    started: list[Scheduler] = []

    def start(app: Appliance, jobs: list[PeriodicJob] | None = None) -> Scheduler:
        scheduler = Scheduler(app, jobs)
        started.append(scheduler)
        scheduler.start()
        return scheduler

    yield start
    for scheduler in started:
        scheduler.stop()


def draft(app: Appliance, title: str, opens_at: datetime | None, closes_at: datetime | None) -> str:
    return create_round(app, "admin", RoundDraft(title=title, question="How could we make our work easier?",
                                                 audience_groups=("staff",), opens_at=opens_at,
                                                 closes_at=closes_at)).id


def status(app: Appliance, round_id: str) -> str:
    return stored_rounds.get_round(app.dbs.ballots, round_id).status


def actions(app: Appliance, action: str) -> list[tuple[str, str]]:
    return [(actor, target) for _, actor, done, target, _ in audit.recent(app.dbs.identity) if done == action]


# --- Round openings and closings -----------------------------------------------------


def test_due_rounds_are_opened_then_closed_once_even_when_the_job_runs_twice(appliance):
    round_id = draft(appliance, "Due", T0 - timedelta(hours=1), T0 + timedelta(days=1))
    later = draft(appliance, "Later", T0 + timedelta(hours=1), T0 + timedelta(days=1))
    step_rounds(appliance, T0)
    step_rounds(appliance, T0)
    assert (status(appliance, round_id), status(appliance, later)) == ("open", "draft")
    assert actions(appliance, "round.open") == [("scheduler", round_id)]
    step_rounds(appliance, T0 + timedelta(hours=2))
    assert status(appliance, later) == "open"
    step_rounds(appliance, T0 + timedelta(days=1))
    step_rounds(appliance, T0 + timedelta(days=1))
    assert (status(appliance, round_id), status(appliance, later)) == ("closed", "closed")
    assert sorted(actions(appliance, "round.close")) == sorted([("scheduler", round_id), ("scheduler", later)])


def test_a_round_due_long_ago_is_opened_at_the_first_check(appliance):
    round_id = draft(appliance, "Overdue", T0 - timedelta(days=30), T0 + timedelta(days=1))
    step_rounds(appliance, T0)
    assert status(appliance, round_id) == "open"


def test_a_round_opened_by_hand_is_closed_on_time_and_drafts_without_dates_stay_drafts(appliance):
    by_hand = draft(appliance, "By hand", None, T0 + timedelta(hours=1))
    undated = draft(appliance, "Undated", None, None)
    open_round(appliance, "admin", by_hand)
    step_rounds(appliance, T0)
    assert (status(appliance, by_hand), status(appliance, undated)) == ("open", "draft")
    step_rounds(appliance, T0 + timedelta(hours=1))
    assert (status(appliance, by_hand), status(appliance, undated)) == ("closed", "draft")


def test_a_draft_whose_whole_window_passed_stays_a_draft_with_one_warning(appliance, caplog):
    round_id = draft(appliance, "Missed", T0 - timedelta(days=2), T0 - timedelta(days=1))
    step_rounds(appliance, T0)
    step_rounds(appliance, T0)
    assert status(appliance, round_id) == "draft"
    assert [r.getMessage() for r in caplog.records if round_id in r.getMessage()] == [
        f"round {round_id}: not opened: its opens_at and closes_at have both passed; give it new dates"]


def test_a_round_that_cannot_open_does_not_stop_the_others(appliance, caplog):
    nobody = create_round(appliance, "admin", RoundDraft(title="Empty", question="Anyone there at all?",
                                                         audience_groups=("admins",), opens_at=T0)).id
    appliance.directory.audience = lambda groups, real=appliance.directory.audience: (
        [] if "admins" in groups else real(groups))
    due = draft(appliance, "Due", T0, None)
    step_rounds(appliance, T0)
    assert (status(appliance, nobody), status(appliance, due)) == ("draft", "open")
    assert any("nobody is in this round's audience" in r.getMessage() for r in caplog.records)


def admin_moves_dates_while_the_scheduler_steps(appliance: Appliance, monkeypatch, round_id: str,
                                                changes: dict[str, datetime]) -> None:
    """The admin's change lands between the scheduler's reading of the rounds and its step (a race, forced)."""
    listed = stored_rounds.list_rounds

    def list_then_change(db):
        rounds = listed(db)
        edit_round(appliance, "admin", round_id, changes)
        return rounds
    monkeypatch.setattr(scheduling.stored_rounds, "list_rounds", list_then_change)


def test_a_close_extended_while_the_scheduler_closes_the_round_keeps_it_open(appliance, monkeypatch, caplog):
    round_id = draft(appliance, "Extended", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    step_rounds(appliance, T0)
    admin_moves_dates_while_the_scheduler_steps(appliance, monkeypatch, round_id,
                                                {"closes_at": T0 + timedelta(days=3)})
    step_rounds(appliance, T0 + timedelta(hours=2))
    monkeypatch.undo()
    assert status(appliance, round_id) == "open"
    assert not [r for r in caplog.records if round_id in r.getMessage() and "could not" in r.getMessage()]
    step_rounds(appliance, T0 + timedelta(days=3))
    assert status(appliance, round_id) == "closed"


def test_an_opening_moved_later_while_the_scheduler_opens_the_round_keeps_it_a_draft(appliance, monkeypatch):
    round_id = draft(appliance, "Postponed", T0 - timedelta(hours=1), T0 + timedelta(days=5))
    admin_moves_dates_while_the_scheduler_steps(appliance, monkeypatch, round_id,
                                                {"opens_at": T0 + timedelta(days=1)})
    step_rounds(appliance, T0)
    monkeypatch.undo()
    assert status(appliance, round_id) == "draft"
    step_rounds(appliance, T0 + timedelta(days=1))
    assert status(appliance, round_id) == "open"


def test_a_draft_deleted_while_the_scheduler_opens_it_is_skipped_quietly(appliance, monkeypatch, caplog):
    round_id = draft(appliance, "Deleted", T0 - timedelta(hours=1), T0 + timedelta(days=5))
    listed = stored_rounds.list_rounds

    def list_then_delete(db):  # the admin's deletion lands between the reading and the step (a race, forced)
        rounds = listed(db)
        delete_draft(appliance, "admin", round_id)
        return rounds

    monkeypatch.setattr(scheduling.stored_rounds, "list_rounds", list_then_delete)
    step_rounds(appliance, T0)  # no "could not open", no job failure
    monkeypatch.undo()
    assert stored_rounds.get_round(appliance.dbs.ballots, round_id) is None
    assert not [r for r in caplog.records if round_id in r.getMessage()]


# --- Running jobs --------------------------------------------------------------------


def test_a_failing_job_is_logged_and_counted_and_the_scheduler_goes_on(appliance, schedulers, caplog):
    ticks = []

    def boom(app: Appliance, now: datetime) -> None:
        raise ValueError("the directory said no")

    scheduler = schedulers(appliance, [PeriodicJob("boom", 0.05, boom),
                                       PeriodicJob("tick", 0.05, lambda app, now: ticks.append(now))])
    assert wait_until(lambda: scheduler.stats["boom"].failures >= 3 and len(ticks) >= 3)
    assert scheduler.stats["boom"].runs >= 3 and scheduler.stats["tick"].failures == 0
    assert scheduler.stats["boom"].last_error == "ValueError: the directory said no"
    assert any(r.getMessage() == "scheduled job boom failed" and r.exc_info for r in caplog.records)


def test_stop_returns_within_seconds_and_running_jobs_see_it(appliance, schedulers):
    seen = threading.Event()
    running = threading.Event()

    def long_job(app: Appliance, now: datetime) -> None:
        running.set()
        while not stop_requested():
            time.sleep(0.01)
        seen.set()

    scheduler = schedulers(appliance, [PeriodicJob("long", 3600, long_job)])
    assert running.wait(5)
    started = time.monotonic()
    scheduler.stop()
    assert time.monotonic() - started < 2 and seen.is_set()
    assert scheduler_status(appliance) == STOPPED


def test_a_daily_job_missed_while_down_runs_once_at_start_and_not_again_before_it_is_due(appliance, schedulers):
    runs = []
    daily = PeriodicJob("daily", 86400, lambda app, now: runs.append(now), remember=True)
    key = "scheduler.daily.next_run_at"
    instance.set_value(appliance.dbs.identity, key, (utc_now() - timedelta(days=3)).isoformat())
    first = schedulers(appliance, [daily])
    assert wait_until(lambda: len(runs) == 1)
    time.sleep(0.2)
    first.stop()
    assert len(runs) == 1  # three days missed, one run
    assert datetime.fromisoformat(instance.get_value(appliance.dbs.identity, key)) == runs[0] + timedelta(days=1)
    schedulers(appliance, [daily])  # a restart, or another process taking over
    time.sleep(0.3)
    assert len(runs) == 1


def test_the_mail_job_sends_the_queue_while_mail_is_on(make_settings, schedulers):
    with SmtpServer() as server:
        app = build_appliance(make_settings(mail=server.mail_settings("hr@example.org")))
        enqueue(app.dbs.identity, [compose(app.settings.mail, f"invite:{i}", f"p{i}@example.org", "Invitation",
                                           "Have your say.") for i in range(3)], app.clock())
        scheduler = schedulers(app, [JOBS["mail"]])
        assert scheduler.scheduled() == ["mail"]
        assert wait_until(lambda: len(server.messages) == 3)
        scheduler.stop()
        app.close()


def test_the_mail_job_is_not_scheduled_while_mail_is_off(appliance, schedulers):
    assert not appliance.settings.mail.enabled
    assert schedulers(appliance, [JOBS["mail"], JOBS["rounds"]]).scheduled() == ["rounds"]


def test_the_web_app_starts_the_scheduler_and_stops_it_on_shutdown(appliance):
    app = create_app(appliance.settings, appliance)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert scheduler_status(appliance) == RUNNING_HERE
        assert set(app.state.scheduler.scheduled()) == {"rounds", "directory-sync", "mail-retention"}
    assert scheduler_status(appliance) == STOPPED


# --- One active scheduler per deployment ---------------------------------------------


def test_a_second_scheduler_in_the_same_data_directory_waits_and_takes_over(appliance, schedulers, monkeypatch):
    monkeypatch.setattr(scheduling, "LOCK_RETRY_SECONDS", 0.1)
    other = build_appliance(appliance.settings)  # another worker's view of the same data directory
    try:
        first = schedulers(appliance, [])
        second = schedulers(other, [])
        assert (scheduler_status(appliance), scheduler_status(other)) == (RUNNING_HERE, RUNNING_ELSEWHERE)
        first.stop()
        assert wait_until(lambda: scheduler_status(other) == RUNNING_HERE)
        assert scheduler_status(appliance) == RUNNING_ELSEWHERE
        second.stop()
        assert scheduler_status(other) == STOPPED
    finally:
        other.close()


WORKER = """
import sys, time
from appliance.services import scheduler
from appliance.services.context import build_appliance
from appliance.settings import load_settings

scheduler.LOCK_RETRY_SECONDS = 0.1
app = build_appliance(load_settings())
scheduler.Scheduler(app, jobs=[]).start()
said = None
while True:
    status = scheduler.scheduler_status(app)
    if status != said:
        print(status, flush=True)
        said = status
    time.sleep(0.02)
"""


class Worker:
    """A process that starts a Scheduler on the data directory and prints each change of its status."""

    def __init__(self, data_dir: Path) -> None:
        env = os.environ | {"APPLIANCE_STORAGE__DATA_DIR": str(data_dir),
                            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen([sys.executable, "-c", WORKER], stdout=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def next_status(self, timeout: float = 15) -> str:
        return self.lines.get(timeout=timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def test_one_scheduler_runs_across_processes_and_another_takes_over_when_it_dies(appliance):
    data_dir = appliance.settings.storage.data_dir
    first = Worker(data_dir)
    second = None
    try:
        assert first.next_status() == RUNNING_HERE
        second = Worker(data_dir)
        assert second.next_status() == RUNNING_ELSEWHERE
        assert scheduler_status(appliance) == RUNNING_ELSEWHERE  # seen from a process without a scheduler
        first.kill()  # dies without a word: the kernel drops its lock
        seen = second.next_status()
        if seen == STOPPED:  # nobody holds the lock until the second's next try (LOCK_RETRY_SECONDS)
            seen = second.next_status()
        assert seen == RUNNING_HERE
        second.kill()
        assert scheduler_status(appliance) == STOPPED
    finally:
        for worker in (first, second):
            if worker is not None and worker.process.poll() is None:
                worker.kill()
