"""Moderation locks (identity.db): who handles a proposal now, until when."""

from __future__ import annotations

from collections.abc import Iterable

from sqlite_utils import Database

from appliance.storage.connection import fetch_all, write


def take(db: Database, round_id: str, proposal_id: str, holder: str, now: int, seconds: int) -> tuple[str, int]:
    """Hold the proposal for `seconds` unless someone else holds it: the holder and expiry after the attempt."""
    with write(db):
        db.conn.execute(
            "INSERT INTO moderation_locks (round_id, proposal_id, holder, expires_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (round_id, proposal_id) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at WHERE moderation_locks.holder = excluded.holder"
            " OR moderation_locks.expires_at <= ?",
            (round_id, proposal_id, holder, now + seconds, now),
        )
        row = db.conn.execute("SELECT holder, expires_at FROM moderation_locks WHERE round_id = ? AND proposal_id = ?",
                              (round_id, proposal_id)).fetchone()
    return row[0], row[1]


def held_by_others(db: Database, round_id: str, holder: str, now: int) -> dict[str, int]:
    """Proposals of the round someone else holds now, with the expiry of each hold."""
    return dict(fetch_all(db, "SELECT proposal_id, expires_at FROM moderation_locks"
                              " WHERE round_id = ? AND holder != ? AND expires_at > ?", (round_id, holder, now)))


def held_by(db: Database, round_id: str, holder: str, now: int) -> dict[str, int]:
    """Proposals of the round this holder holds now, with the expiry of each hold."""
    return dict(fetch_all(db, "SELECT proposal_id, expires_at FROM moderation_locks"
                              " WHERE round_id = ? AND holder = ? AND expires_at > ?", (round_id, holder, now)))


def renew(db: Database, round_id: str, proposal_ids: Iterable[str], holder: str, now: int, seconds: int) -> int:
    """Extend this holder's holds on these proposals (not those that ran out) to `seconds` from now; how many."""
    with write(db):
        return db.conn.executemany("UPDATE moderation_locks SET expires_at = ? WHERE round_id = ? AND proposal_id = ?"
                                   " AND holder = ? AND expires_at > ?",
                                   [(now + seconds, round_id, pid, holder, now) for pid in proposal_ids]).rowcount


def release(db: Database, round_id: str, proposal_id: str, holder: str) -> None:
    with write(db):
        db.conn.execute("DELETE FROM moderation_locks WHERE round_id = ? AND proposal_id = ? AND holder = ?",
                        (round_id, proposal_id, holder))


def forget_round(db: Database, round_id: str) -> None:
    """At close: no lock outlives moderation."""
    with write(db):
        db.conn.execute("DELETE FROM moderation_locks WHERE round_id = ?", (round_id,))
