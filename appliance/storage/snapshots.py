"""Who was in a round's audience at open, and their stored combination (identity.db).

Written once at open and deleted at close; never touched by voting.
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.storage.connection import fetch_all, fetch_one, write


def write_snapshot(db: Database, round_id: str, members: list[tuple[str, str]]) -> None:
    """Replace the round's snapshot with (person_id, combo) pairs."""
    with write(db):
        db.conn.execute("DELETE FROM audience_snapshots WHERE round_id = ?", (round_id,))
        db.conn.executemany("INSERT INTO audience_snapshots (round_id, person_id, combo) VALUES (?, ?, ?)",
                            [(round_id, pid, combo) for pid, combo in members])


def member_combo(db: Database, round_id: str, person_id: str) -> str | None:
    """The person's stored combination if they were in the audience at open."""
    row = fetch_one(db, "SELECT combo FROM audience_snapshots WHERE round_id = ? AND person_id = ?",
                    (round_id, person_id))
    return row[0] if row else None


def members(db: Database, round_id: str) -> dict[str, str]:
    """Everyone frozen into the round's audience, with their stored combination."""
    return dict(fetch_all(db, "SELECT person_id, combo FROM audience_snapshots WHERE round_id = ?", (round_id,)))


def round_ids(db: Database) -> list[str]:
    """Rounds that still have an audience snapshot."""
    return [row[0] for row in fetch_all(db, "SELECT DISTINCT round_id FROM audience_snapshots")]


def delete_snapshot(db: Database, round_id: str) -> None:
    """Forget the round's audience (at close)."""
    with write(db):
        db.conn.execute("DELETE FROM audience_snapshots WHERE round_id = ?", (round_id,))
