"""Opening the two SQLite files, and the one wrapper every write goes through."""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

BUSY_TIMEOUT_MS = 5000

# secure_delete overwrites deleted content, so a deleted ballot leaves no trace
# in free pages; temp_store keeps sort and temp tables out of files on disk.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA secure_delete=ON",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA synchronous=FULL",
)


# One lock per database file and process, taken around every write transaction.
# Threads of a process then queue for it, woken as soon as it is free, instead
# of polling SQLite's lock with the busy handler's growing sleeps (up to 100 ms
# each), which gave sign-ins a long latency tail. Processes still meet at
# SQLite's own lock.
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def connect(path: Path) -> sqlite_utils.Database:
    """Open one SQLite file with the appliance's pragmas."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)  # the WAL and shared-memory files take the database file's mode
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    for pragma in PRAGMAS:
        conn.execute(pragma).fetchall()
    db = sqlite_utils.Database(conn, execute_plugins=False)
    with _WRITE_LOCKS_GUARD:
        db.write_lock = _WRITE_LOCKS.setdefault(str(path.resolve()), threading.Lock())  # type: ignore[attr-defined]
    return db


@contextmanager
def write(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction, taken at once (BEGIN IMMEDIATE) so it never upgrades mid-way.

    Writers of one process wait for each other on the file's lock (as long as
    SQLite's busy timeout); past that, the usual "database is locked" error.
    """
    lock = getattr(db, "write_lock", None) or threading.Lock()
    if not lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
        busy = sqlite3.OperationalError("database is locked")
        busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
        raise busy
    try:
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.conn.rollback()
            raise
        db.conn.commit()
    finally:
        lock.release()


def fetch_one(db: sqlite_utils.Database, sql: str, params: tuple = ()) -> tuple | None:
    """First row of a query as a tuple, or None."""
    cursor = db.conn.execute(sql, params)
    try:
        return cursor.fetchone()
    finally:
        # An unfinished statement would keep a read snapshot open, which stops the
        # WAL from being truncated when a round closes.
        cursor.close()


def forget_order(db: sqlite_utils.Database, attempts: int = 1) -> bool:
    """Truncate the WAL if no reader holds it: its frames are in commit order, which must not be kept.

    Tried `attempts` times with a short wait each; False if a reader stayed in the way (the next
    write tries again). Deleted rows are wiped from the pages (secure_delete) but stay in the
    frames of the WAL until it is truncated.
    """
    try:
        db.conn.execute("PRAGMA busy_timeout=20")
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.05)
            busy, _, _ = fetch_one(db, "PRAGMA wal_checkpoint(TRUNCATE)")
            if not busy:
                return True
    except sqlite3.Error:
        pass  # best effort: the next write tries again, and compaction retries longer
    finally:
        db.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return False


def checkpoint(db: sqlite_utils.Database, attempts: int = 50) -> bool:
    """Copy the WAL into the database and truncate it; retry while readers hold it."""
    for _ in range(attempts):
        busy, _, _ = fetch_one(db, "PRAGMA wal_checkpoint(TRUNCATE)")
        if not busy:
            return True
        time.sleep(0.1)
    return False


def fetch_all(db: sqlite_utils.Database, sql: str, params: tuple = ()) -> list[tuple]:
    """All rows of a query as tuples."""
    return db.conn.execute(sql, params).fetchall()


class Databases:
    """The identity and ballot databases, one connection of each per thread.

    When a thread ends (web servers retire idle worker threads), its
    connections go back to a free list for the next new thread, so that
    connections are neither leaked nor opened anew for every thread.
    """

    def __init__(self, identity_path: Path, ballots_path: Path) -> None:
        self.identity_path = identity_path
        self.ballots_path = ballots_path
        self._local = threading.local()
        self._opened: list[sqlite_utils.Database] = []
        self._free: dict[str, list[sqlite_utils.Database]] = {"identity": [], "ballots": []}
        self._lock = threading.Lock()

    def _get(self, name: str, path: Path) -> sqlite_utils.Database:
        db = getattr(self._local, name, None)
        if db is None:
            with self._lock:
                db = self._free[name].pop() if self._free[name] else None
            if db is None:
                db = connect(path)
                with self._lock:
                    self._opened.append(db)
            setattr(self._local, name, db)
            weakref.finalize(threading.current_thread(), self._release, name, db)
        return db

    def _release(self, name: str, db: sqlite_utils.Database) -> None:
        """A thread ended: its connection serves the next thread (unless the databases were closed)."""
        with self._lock:
            if any(db is opened for opened in self._opened):
                self._free[name].append(db)

    @property
    def identity(self) -> sqlite_utils.Database:
        return self._get("identity", self.identity_path)

    @property
    def ballots(self) -> sqlite_utils.Database:
        return self._get("ballots", self.ballots_path)

    def close(self) -> None:
        """Close every connection opened by any thread."""
        with self._lock:
            for db in self._opened:
                db.close()
            self._opened.clear()
            self._free = {"identity": [], "ballots": []}
        self._local = threading.local()
