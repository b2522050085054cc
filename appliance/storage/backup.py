"""Copies of the databases made with VACUUM INTO, and the checks an operator runs on them.

VACUUM INTO reads one consistent snapshot while the appliance keeps serving,
and writes a compact file: no free pages, no write-ahead log, rows in key
order, so a copy keeps no more of the order in which people voted than the
database itself (storage rule 5).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from appliance.storage.connection import BUSY_TIMEOUT_MS, fetch_all, fetch_one

SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
RESTORE_MARKER = "restore-unfinished"  # in the data directory while a restore may have replaced some files only


class UnfinishedRestore(sqlite3.DatabaseError):
    """The data directory holds part of a backup: a restore is running, or stopped half-way."""


def refuse_unfinished_restore(data_dir: Path) -> None:
    """Raise UnfinishedRestore while the data directory's restore marker is there."""
    marker = data_dir / RESTORE_MARKER
    if marker.exists():
        raise UnfinishedRestore(f"a restore into {data_dir} is running or did not finish ({marker} says so): the"
                                " appliance does not open part of a backup; wait for the restore, or run"
                                " `appliance restore --force PATH` again")


def open_read_only(path: Path) -> Database:
    """An existing SQLite file opened for reading only (FileNotFoundError when it is not there)."""
    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                           check_same_thread=False)
    conn.execute("PRAGMA temp_store=MEMORY")
    return Database(conn, execute_plugins=False)


def vacuum_into(source: Path, target: Path) -> None:
    """Write a consistent, compacted copy of the database at source into target (which must not exist)."""
    db = open_read_only(source)
    try:
        db.conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        db.close()
    target.chmod(0o600)


def integrity_problems(path: Path, limit: int = 10) -> list[str]:
    """What PRAGMA integrity_check finds wrong with a database file; empty when it is sound."""
    db = open_read_only(path)
    try:
        rows = fetch_all(db, f"PRAGMA integrity_check({int(limit)})")
    finally:
        db.close()
    problems = [row[0] for row in rows]
    return [] if problems == ["ok"] else problems


def applied_migrations(path: Path) -> list[str]:
    """The names of the migrations a database file has had, oldest first."""
    db = open_read_only(path)
    try:
        if fetch_one(db, "SELECT 1 FROM sqlite_master WHERE name = '_sqlite_migrations'") is None:
            return []
        return [row[0] for row in fetch_all(db, "SELECT name FROM _sqlite_migrations ORDER BY rowid")]
    finally:
        db.close()


def pending_migrations(path: Path, known: Migrations) -> list[str]:
    """The names of the migrations of a set that a database file has not had yet."""
    db = open_read_only(path)
    try:
        return [migration.name for migration in known.pending(db)]
    finally:
        db.close()


def open_round_ids(ballots_path: Path) -> list[str]:
    """The rounds a ballots database holds as open (those that need a key file to take votes)."""
    db = open_read_only(ballots_path)
    try:
        return [row[0] for row in fetch_all(db, "SELECT id FROM rounds WHERE status = 'open' ORDER BY id")]
    finally:
        db.close()


def remove_database(path: Path) -> None:
    """Delete a database file with its write-ahead log and shared-memory files."""
    for suffix in ("", *SQLITE_SIDECARS):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
