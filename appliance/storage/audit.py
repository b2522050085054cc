"""The audit log of admin, moderator and local-directory actions (identity.db).

Never records a vote or who wrote a proposal: only who did an admin act.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlite_utils import Database

from appliance.storage.connection import fetch_all, write


def record(db: Database, actor: str, action: str, target: str = "", detail: str = "") -> None:
    """Append one entry, stamped with the current UTC time."""
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with write(db):
        db.conn.execute("INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                        (at, actor, action, target, detail))


def recent(db: Database, limit: int = 100) -> list[tuple[str, str, str, str, str]]:
    """The latest entries, newest first."""
    return fetch_all(db, "SELECT at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))


ROUND_STEPS = ("round.open", "round.close", "round.publish")


def round_steps(db: Database, round_id: str) -> dict[str, datetime]:
    """When a round was opened, closed and published (those steps it went through): action -> first time."""
    rows = fetch_all(db, "SELECT action, min(at) FROM audit_log WHERE target = ? AND action IN (?, ?, ?)"
                         " GROUP BY action", (round_id, *ROUND_STEPS))
    return {action: datetime.fromisoformat(at) for action, at in rows}
