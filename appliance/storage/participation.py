"""Daily participation bands of open rounds (identity.db): bands and days, never counts."""

from __future__ import annotations

from sqlite_utils import Database

from appliance.storage.connection import fetch_all, fetch_one, write


def record_band(db: Database, round_id: str, day: str, band: str) -> None:
    """The band of this day, unless one is already recorded for it."""
    with write(db):
        db.conn.execute("INSERT OR IGNORE INTO participation_snapshots (round_id, day, band) VALUES (?, ?, ?)",
                        (round_id, day, band))


def has_day(db: Database, round_id: str, day: str) -> bool:
    return fetch_one(db, "SELECT 1 FROM participation_snapshots WHERE round_id = ? AND day = ?",
                     (round_id, day)) is not None


def bands_before(db: Database, round_id: str, day: str) -> list[tuple[str, str]]:
    """(day, band) recorded before this day, oldest first."""
    return fetch_all(db, "SELECT day, band FROM participation_snapshots WHERE round_id = ? AND day < ? ORDER BY day",
                     (round_id, day))
