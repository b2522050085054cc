"""Digest schedules, one-off round notices and reminder opt-outs (identity.db)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlite_utils import Database

from appliance.storage.connection import fetch_all, fetch_one, write


@dataclass(frozen=True)
class DigestSchedule:
    """When and to whom a round's digests go; active_since and times in Unix seconds."""

    round_id: str
    recipients: tuple[str, ...]
    weekday: int
    local_time: str
    time_zone: str
    enabled: bool
    final_at_publication: bool
    active_since: int
    last_period: str = ""


_COLUMNS = ("round_id, recipients, weekday, local_time, time_zone, enabled, final_at_publication,"
            " active_since, last_period")


def _schedule(row: tuple) -> DigestSchedule:
    round_id, recipients, weekday, local_time, zone, enabled, final, since, last = row
    return DigestSchedule(round_id, tuple(json.loads(recipients)), weekday, local_time, zone, bool(enabled),
                          bool(final), since, last)


def save_schedule(db: Database, schedule: DigestSchedule) -> None:
    """Insert or replace a round's schedule (the last period queued is kept)."""
    with write(db):
        db.conn.execute(
            f"INSERT INTO digest_schedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (round_id) DO UPDATE SET recipients = excluded.recipients, weekday = excluded.weekday,"
            " local_time = excluded.local_time, time_zone = excluded.time_zone, enabled = excluded.enabled,"
            " final_at_publication = excluded.final_at_publication, active_since = excluded.active_since",
            (schedule.round_id, json.dumps(list(schedule.recipients)), schedule.weekday, schedule.local_time,
             schedule.time_zone, int(schedule.enabled), int(schedule.final_at_publication),
             schedule.active_since, schedule.last_period))


def get_schedule(db: Database, round_id: str) -> DigestSchedule | None:
    row = fetch_one(db, f"SELECT {_COLUMNS} FROM digest_schedules WHERE round_id = ?", (round_id,))
    return _schedule(row) if row else None


def claim_period(db: Database, round_id: str, period: str) -> bool:
    """Mark `period` as the last one queued; False when it already was (another run did it)."""
    with write(db):
        cursor = db.conn.execute("UPDATE digest_schedules SET last_period = ? WHERE round_id = ? AND last_period <> ?",
                                 (period, round_id, period))
    return cursor.rowcount == 1


def notice_queued_at(db: Database, round_id: str, kind: str) -> int | None:
    """When this one-off message of a round was queued, if it was."""
    row = fetch_one(db, "SELECT queued_at FROM round_notices WHERE round_id = ? AND kind = ?", (round_id, kind))
    return row[0] if row else None


def record_notice(db: Database, round_id: str, kind: str, now: int, again: bool = False) -> None:
    """Record that a one-off message was queued; `again` records a repeat (a reminder for a new closing date)."""
    verb = "INSERT OR REPLACE" if again else "INSERT OR IGNORE"
    with write(db):
        db.conn.execute(f"{verb} INTO round_notices (round_id, kind, queued_at) VALUES (?, ?, ?)",
                        (round_id, kind, now))


def forget_round(db: Database, round_id: str) -> None:
    """A deleted draft's digest schedule and queued notices."""
    with write(db):
        db.conn.execute("DELETE FROM digest_schedules WHERE round_id = ?", (round_id,))
        db.conn.execute("DELETE FROM round_notices WHERE round_id = ?", (round_id,))


def opt_out(db: Database, person_id: str, kind: str) -> None:
    with write(db):
        db.conn.execute("INSERT OR IGNORE INTO mail_opt_outs (person_id, kind) VALUES (?, ?)", (person_id, kind))


def opted_out(db: Database, kind: str) -> set[str]:
    """Ids of the people who want no more messages of this kind."""
    return {row[0] for row in fetch_all(db, "SELECT person_id FROM mail_opt_outs WHERE kind = ?", (kind,))}
