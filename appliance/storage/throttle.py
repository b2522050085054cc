"""Counts of failed sign-ins (identity.db), kept under HMAC keys."""

from __future__ import annotations

from sqlite_utils import Database

from appliance.storage.connection import fetch_all, write


def failures(db: Database, keys: list[str], since: int) -> dict[str, tuple[int, int]]:
    """(failures, last_failure_at) of each key whose last failure is after `since`."""
    marks = ", ".join("?" * len(keys))
    rows = fetch_all(db, f"SELECT key, failures, last_failure_at FROM sign_in_failures"
                         f" WHERE key IN ({marks}) AND last_failure_at > ?", (*keys, since))
    return {key: (n, at) for key, n, at in rows}


def record_failure(db: Database, keys: list[str], now: int, since: int) -> None:
    """One more failure for each key; a count whose last failure is before `since` starts again."""
    with write(db):
        db.conn.execute("DELETE FROM sign_in_failures WHERE last_failure_at <= ?", (since,))
        db.conn.executemany(
            "INSERT INTO sign_in_failures (key, failures, last_failure_at) VALUES (?, 1, ?)"
            " ON CONFLICT (key) DO UPDATE SET failures = failures + 1, last_failure_at = excluded.last_failure_at",
            [(key, now) for key in keys],
        )


def forget(db: Database, keys: list[str]) -> None:
    """Clear these counts (after a successful sign-in)."""
    with write(db):
        db.conn.executemany("DELETE FROM sign_in_failures WHERE key = ?", [(key,) for key in keys])
