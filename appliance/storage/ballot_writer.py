"""Group commit for votes: one writer thread per process, one transaction and one fsync per batch.

A vote is answered only once the transaction holding it has committed, so every
recorded vote is durable; under load, many votes share a commit instead of each
waiting for the write lock and an fsync of its own.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from pathlib import Path

from sqlite_utils import Database

from appliance.storage.ballots import Ballot, record_ballot
from appliance.storage.connection import connect, forget_order, write

MAX_BATCH = 256
ANSWER_TIMEOUT_SECONDS = 30
_STOP = None


class BallotWriter:
    """Takes ballots from any thread and writes them in batches from its own thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def cast(self, ballot: Ballot) -> str:
        """Record a ballot and wait until it is committed; returns record_ballot's outcome."""
        answer: Future[str] = Future()
        self._start()
        self._queue.put((ballot, answer))
        return answer.result(timeout=ANSWER_TIMEOUT_SECONDS)

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
        try:
            while (batch := self._next_batch()) is not None:
                if batch:
                    _write_batch(db, batch)
        finally:
            db.close()

    def _next_batch(self) -> list[tuple[Ballot, Future]] | None:
        """Wait for one ballot, then take whatever else is already queued; None to stop."""
        first = self._queue.get()
        if first is _STOP:
            return None
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)  # stop after this batch
                break
            batch.append(item)
        return batch


def _write_batch(db: Database, batch: list[tuple[Ballot, Future]]) -> None:
    try:
        with write(db):
            outcomes = [record_ballot(db, ballot) for ballot, _ in batch]
    except Exception as error:  # noqa: BLE001 - every waiting request must get an answer
        for _, answer in batch:
            answer.set_exception(error)
        return
    forget_order(db)
    for (_, answer), outcome in zip(batch, outcomes):
        answer.set_result(outcome)
