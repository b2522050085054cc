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
