"""Daily participation bands of open rounds (identity.db): bands and days, never counts."""

from __future__ import annotations

from sqlite_utils import Database

from appliance.storage.connection import fetch_all, fetch_one, write


def record_band(db: Database, round_id: str, day: str, band: str, at: int) -> None:
    """The band of this day, seen at `at` (Unix seconds), unless one is already recorded for it."""
    with write(db):
        db.conn.execute("INSERT OR IGNORE INTO participation_snapshots (round_id, day, band, recorded_at)"
                        " VALUES (?, ?, ?, ?)", (round_id, day, band, at))


def has_day(db: Database, round_id: str, day: str) -> bool:
    return fetch_one(db, "SELECT 1 FROM participation_snapshots WHERE round_id = ? AND day = ?",
                     (round_id, day)) is not None


def bands_before(db: Database, round_id: str, day: str, recorded_by: int) -> list[tuple[str, str]]:
    """(day, band) of the days before `day` whose band was recorded at `recorded_by` or earlier, oldest first."""
    return fetch_all(db, "SELECT day, band FROM participation_snapshots WHERE round_id = ? AND day < ?"
                     " AND recorded_at <= ? ORDER BY day", (round_id, day, recorded_by))
