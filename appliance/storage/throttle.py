"""Counts of failed sign-ins (identity.db), kept under HMAC keys.

Every attempt is counted before the password is checked, so a successful
sign-in writes its username's key too, then deletes it. The deleted row is
wiped from the pages (secure_delete) but would stay in the WAL's frames, and
whoever holds the data directory can compute the key of every username from
the instance secret: who signed in, and when, which is close to who took part.
`settle` therefore truncates the WAL after taking an attempt back.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database

from appliance.storage.connection import fetch_all, forget_order, write

Counts = dict[str, tuple[int, int]]


def reserve(db: Database, keys: list[str], now: int, since: int, wait: Callable[[Counts], int]) -> int:
    """Count one more attempt under each key, unless `wait(counts)` says to wait first.

    The check and the count are one transaction, so parallel attempts cannot
    all pass a check that each of them alone would fail. A count whose last
    attempt is before `since` starts again. Returns the seconds to wait (0: go).
    """
    marks = ", ".join("?" * len(keys))
    with write(db):
        db.conn.execute("DELETE FROM sign_in_failures WHERE last_failure_at <= ?", (since,))
        rows = fetch_all(db, f"SELECT key, failures, last_failure_at FROM sign_in_failures WHERE key IN ({marks})",
                         tuple(keys))
        seconds = wait({key: (n, at) for key, n, at in rows})
        if seconds <= 0:
            db.conn.executemany(
                "INSERT INTO sign_in_failures (key, failures, last_failure_at) VALUES (?, 1, ?) ON CONFLICT (key)"
                " DO UPDATE SET failures = failures + 1, last_failure_at = excluded.last_failure_at",
                [(key, now) for key in keys],
            )
    return max(seconds, 0)


def settle(db: Database, forget: list[str], take_back: list[str]) -> None:
    """After an attempt that was not a wrong password: forget some counts, take the attempt back from others."""
    with write(db):
        db.conn.executemany("DELETE FROM sign_in_failures WHERE key = ?", [(key,) for key in forget])
        for key in take_back:
            db.conn.execute("UPDATE sign_in_failures SET failures = failures - 1 WHERE key = ?", (key,))
            db.conn.execute("DELETE FROM sign_in_failures WHERE key = ? AND failures <= 0", (key,))
    forget_order(db, attempts=3)  # a reader in the way for 0.1 s: the next sign-in tries again
