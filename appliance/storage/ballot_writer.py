"""Group commit for votes: one writer thread per process, one transaction and one fsync per batch.

A vote is answered only once the transaction holding it has committed, so every
recorded vote is durable; under load, many votes share a commit instead of each
waiting for the write lock and an fsync of its own.

SQLite keeps arrival order in two places, both of which this thread erases: the
WAL (its frames are in commit order: truncated after every batch) and the pages
themselves (new cells are placed in arrival order: a compaction rewrites them in
key order at most `compact_after` seconds after a vote or proposal was written).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from sqlite_utils import Database

from appliance.storage.ballots import Ballot, compact, record_ballot
from appliance.storage.connection import connect, forget_order, write

MAX_BATCH = 256
ANSWER_TIMEOUT_SECONDS = 30
COMPACT_AFTER_SECONDS = 60.0
_STOP = None
_WRITTEN = "written"  # queued by other writers of ballot-side rows: compact soon


class VoteTimeout(Exception):
    """A vote waited too long for its commit."""


class BallotWriter:
    """Takes ballots from any thread and writes them in batches from its own thread."""

    def __init__(self, path: Path, compact_after: float = COMPACT_AFTER_SECONDS) -> None:
        self.path = path
        self.compact_after = compact_after
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def cast(self, ballot: Ballot) -> str:
        """Record a ballot and wait until it is committed; returns record_ballot's outcome."""
        answer: Future[str] = Future()
        self._start()
        self._queue.put((ballot, answer))
        try:
            return answer.result(timeout=ANSWER_TIMEOUT_SECONDS)
        except TimeoutError:
            raise VoteTimeout(f"no commit within {ANSWER_TIMEOUT_SECONDS} s") from None

    def note_written(self) -> None:
        """Another writer added ballot-side rows (a proposal): compact them in time too."""
        self._start()
        self._queue.put(_WRITTEN)

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(_STOP)
                self._thread.join(timeout=ANSWER_TIMEOUT_SECONDS)
                self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ballot-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        db = connect(self.path)
        written_at: float | None = None  # when rows were first written since the last compaction
        try:
            while (items := self._next_items(written_at)) is not None:
                ballots = [item for item in items if item is not _WRITTEN]
                if ballots:
                    _write_batch(db, ballots)
                if items and written_at is None:
                    written_at = time.monotonic()
                if written_at is not None and time.monotonic() - written_at >= self.compact_after:
                    compact(db)
                    written_at = None
            if written_at is not None:
                compact(db)
        finally:
            db.close()

    def _next_items(self, written_at: float | None) -> list | None:
        """Wait for one item (or until compaction is due), then take what else is queued; None to stop."""
        timeout = None if written_at is None else max(0.0, written_at + self.compact_after - time.monotonic())
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        if first is _STOP:
            return None
        items = [first]
        while len(items) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)  # stop after this batch
                break
            items.append(item)
        return items


def _write_batch(db: Database, batch: list[tuple[Ballot, Future]]) -> None:
    try:
        with write(db):
            outcomes = [record_ballot(db, ballot) for ballot, _ in batch]
    except Exception as error:  # noqa: BLE001 - every waiting request must get an answer
        for _, answer in batch:
            answer.set_exception(error)
        return
    for (_, answer), outcome in zip(batch, outcomes):
        answer.set_result(outcome)
    forget_order(db)
