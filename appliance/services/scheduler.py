"""Periodic jobs, run by exactly one process of the deployment: the one holding the lock file.

Every web worker starts a Scheduler. The one that takes the exclusive lock on
`<data_dir>/scheduler.lock` runs the jobs; the others try again every
LOCK_RETRY_SECONDS, so when the holder dies (the kernel drops its lock) another
takes over within that time.

Jobs are plain functions `job(app, now)` that may run twice without harm. Round
openings and closings are not stored as schedules of their own: they are read
from the rounds table (opens_at, closes_at) at every check, so a round that
fell due while the appliance was down is opened or closed at the first check
after start. Daily jobs remember their next run in identity.db (`settings`
table): one missed while the appliance was down runs once when it is back, and
a process taking over does not run it again before it is due.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from appliance.directory import DirectoryUnavailable
from appliance.domain.errors import Conflict, NotFound
from appliance.domain.schedules import due_step, missed_window
from appliance.services.context import Appliance
from appliance.services.notifications import send_round_mail
from appliance.services.outbox import forget_old_mail, send_mail
from appliance.services.rounds import close_round, open_round, sync_headcounts
from appliance.settings import Settings
from appliance.storage import instance
from appliance.storage import rounds as stored_rounds

log = logging.getLogger("appliance.scheduler")
# APScheduler logs every run at INFO: two lines every 30 s for the mail sender alone.
logging.getLogger("apscheduler").setLevel(logging.WARNING)

Job = Callable[[Appliance, datetime], None]
ACTOR = "scheduler"
LOCK_FILE = "scheduler.lock"
LOCK_JOB = "take-lock"
LOCK_RETRY_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 5.0
RUNNING_HERE, RUNNING_ELSEWHERE, STOPPED = "running here", "running elsewhere", "stopped"
# One run for all the runs missed (coalesce), however late (no grace limit), never two at once.
JOB_DEFAULTS = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}

_STOP: ContextVar[threading.Event | None] = ContextVar("scheduler_stop", default=None)
_STARTED: dict[int, Scheduler] = {}  # by id of the appliance: what scheduler_status asks
_warned: set[tuple[str, str]] = set()


def stop_requested() -> bool:
    """Whether the scheduler running the current job is stopping: long jobs check it between steps."""
    event = _STOP.get()
    return event is not None and event.is_set()


def _always(app: Appliance) -> bool:
    return True


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: Job
    enabled: Callable[[Appliance], bool] = _always
    remember: bool = False  # keep the next run in identity.db: missed while down, it runs once at start


@dataclass
class JobStats:
    """Runs (failed ones included) and failures since this process took the lock, for /metrics."""

    runs: int = 0
    failures: int = 0
    last_error: str = ""


JOBS: dict[str, PeriodicJob] = {}


def register(job: PeriodicJob) -> None:
    """Add a periodic job (digests, reminders); schedulers started afterwards run it."""
    JOBS[job.name] = job


def _warn_once(round_id: str, problem: str) -> None:
    if (round_id, problem) not in _warned:  # checked every minute: say it once per process
        _warned.add((round_id, problem))
        log.warning("round %s: %s", round_id, problem)


def step_rounds(app: Appliance, now: datetime) -> None:
    """Open draft rounds whose opens_at has come, close open rounds whose closes_at has passed."""
    failed = 0
    for round_ in stored_rounds.list_rounds(app.dbs.ballots):
        step = due_step(round_, now)
        if step is None:
            if missed_window(round_, now):
                _warn_once(round_.id, "not opened: its opens_at and closes_at have both passed; give it new dates")
            continue
        try:
            if step == "open":
                open_round(app, ACTOR, round_.id, scheduled=round_.opens_at)
            else:
                close_round(app, ACTOR, round_.id, scheduled=round_.closes_at)
            log.info("round %s: %s as scheduled", round_.id, "opened" if step == "open" else "closed")
        except NotFound:  # a draft deleted meanwhile
            continue
        except Conflict as error:
            current = stored_rounds.get_round(app.dbs.ballots, round_.id)
            if current is not None and due_step(current, now) == step:  # not done nor rescheduled meanwhile
                _warn_once(round_.id, f"could not {step}: {error}")
        except DirectoryUnavailable as error:
            log.warning("round %s: could not %s, the directory is unreachable: %s", round_.id, step, error)
            failed += 1
        except Exception:
            log.exception("round %s: could not %s", round_.id, step)
            failed += 1
    if failed:
        raise RuntimeError(f"{failed} round(s) could not be opened or closed as scheduled")


def sync_directory(app: Appliance, now: datetime) -> None:
    """Count the audiences in the directory again (open rounds' headcounts)."""
    sync_headcounts(app)


def send_queued_mail(app: Appliance, now: datetime) -> None:
    send_mail(app, now, should_stop=stop_requested)


def _mail_enabled(app: Appliance) -> bool:
    return app.settings.mail.enabled


register(PeriodicJob("rounds", 60, step_rounds))
register(PeriodicJob("directory-sync", 86400, sync_directory, remember=True))
register(PeriodicJob("mail", 30, send_queued_mail, enabled=_mail_enabled))
register(PeriodicJob("mail-retention", 86400, forget_old_mail, remember=True))
register(PeriodicJob("round-mail", 300, send_round_mail, enabled=_mail_enabled))


def lock_path(settings: Settings) -> Path:
    return settings.storage.data_dir / LOCK_FILE


class SchedulerLock:
    """An exclusive flock on a file: one holder on the machine; the kernel releases it when the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # which process runs the jobs, for whoever looks
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def held_elsewhere(path: Path) -> bool:
    """Whether another open file holds the lock now (checked by trying it, and letting go at once)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if the probe took it
    return False


def _every(seconds: float) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds, timezone=timezone.utc)


class Scheduler:
    """A BackgroundScheduler in this process, that runs the jobs only while this process holds the lock."""

    def __init__(self, app: Appliance, jobs: Iterable[PeriodicJob] | None = None) -> None:
        self.app = app
        self.jobs = list(JOBS.values() if jobs is None else jobs)
        self.stats = {job.name: JobStats() for job in self.jobs}
        self._lock = SchedulerLock(lock_path(app.settings))
        self._aps: BackgroundScheduler | None = None
        self._guard = threading.Lock()  # start, taking the lock and stop, one at a time
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._running = 0

    @property
    def active(self) -> bool:
        """Running the jobs here."""
        return self._lock.held and self._aps is not None

    def scheduled(self) -> list[str]:
        """The jobs this process runs (none while another process holds the lock)."""
        aps = self._aps
        return [] if aps is None or not self._lock.held else [job.id for job in aps.get_jobs()]

    def status(self) -> str:
        """RUNNING_HERE, RUNNING_ELSEWHERE or STOPPED."""
        with self._guard:  # not while this process takes the lock: it would look held by someone else
            return RUNNING_HERE if self.active else _status_from_lock(self._lock.path)

    def start(self) -> None:
        """Start; run the jobs now if the lock is free, else try again every LOCK_RETRY_SECONDS."""
        with self._guard:
            if self._aps is not None:
                return
            self._stopping.clear()
            self._aps = aps = BackgroundScheduler(timezone=timezone.utc, job_defaults=JOB_DEFAULTS)
            aps.start()
            _STARTED[id(self.app)] = self
        if not self._take_lock():
            aps.add_job(self._take_lock, _every(LOCK_RETRY_SECONDS), id=LOCK_JOB, name=LOCK_JOB)

    def _take_lock(self) -> bool:
        with self._guard:
            if self._aps is None or not self._lock.acquire():
                return False
            log.info("the scheduler runs in this process (pid %d)", os.getpid())
            if self._aps.get_job(LOCK_JOB) is not None:
                self._aps.remove_job(LOCK_JOB)
            self._add_jobs(self._aps)
        return True

    def _add_jobs(self, aps: BackgroundScheduler) -> None:
        now = self.app.clock()
        for job in self.jobs:
            if not job.enabled(self.app):
                log.info("scheduled job %s is off (see its settings)", job.name)
                continue
            first = max(now, self._remembered(job) or now) if job.remember else now
            aps.add_job(self._run, _every(job.every_seconds), args=(job,), id=job.name,
                        name=job.name, next_run_time=first)

    def _remembered(self, job: PeriodicJob) -> datetime | None:
        value = instance.get_value(self.app.dbs.identity, f"scheduler.{job.name}.next_run_at")
        return datetime.fromisoformat(value) if value else None

    def _run(self, job: PeriodicJob) -> None:
        with self._idle:
            if self._stopping.is_set():
                return
            self._running += 1
        token = _STOP.set(self._stopping)
        try:
            self._run_once(job, self.app.clock())
        finally:
            _STOP.reset(token)
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def _run_once(self, job: PeriodicJob, now: datetime) -> None:
        """Run, count, log any failure (the scheduler goes on), and remember the next run if asked."""
        stats = self.stats[job.name]
        stats.runs += 1
        try:
            job.run(self.app, now)
            if job.remember:
                next_run = now + timedelta(seconds=job.every_seconds)
                instance.set_value(self.app.dbs.identity, f"scheduler.{job.name}.next_run_at", next_run.isoformat())
        except Exception as error:
            stats.failures += 1
            stats.last_error = f"{type(error).__name__}: {error}"
            log.exception("scheduled job %s failed", job.name)

    def stop(self) -> None:
        """Start no more runs, ask running jobs to stop, wait for them a few seconds, then let the lock go."""
        with self._guard:
            self._stopping.set()
            aps, self._aps = self._aps, None
            if _STARTED.get(id(self.app)) is self:
                del _STARTED[id(self.app)]
        if aps is not None and aps.running:
            aps.shutdown(wait=False)
        with self._idle:
            if not self._idle.wait_for(lambda: self._running == 0, timeout=STOP_TIMEOUT_SECONDS):
                log.warning("scheduled jobs still running after %g s: stopping without waiting for them",
                            STOP_TIMEOUT_SECONDS)
        self._lock.release()


def scheduler_status(app: Appliance) -> str:
    """For readiness: "running here", "running elsewhere" (another process holds the lock) or "stopped"."""
    own = _STARTED.get(id(app))
    return own.status() if own is not None else _status_from_lock(lock_path(app.settings))


def _status_from_lock(path: Path) -> str:
    return RUNNING_ELSEWHERE if held_elsewhere(path) else STOPPED
