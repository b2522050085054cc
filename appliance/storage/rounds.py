"""Rounds, their frozen coarsening map and audience headcounts, in ballots.db."""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from sqlite_utils import Database

from appliance.domain.rounds import Round
from appliance.storage.connection import fetch_all, fetch_one, write

COLUMNS = (
    "id, title, question, description, audience_groups, dimensions, k, opens_at, closes_at,"
    " proposals_close_at, moderation, status, proposal_min_chars, proposal_max_chars,"
    " proposal_quota, release_interval_seconds"
)


def _date(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _names(names: tuple[str, ...]) -> str:
    """A round's list of groups or dimensions as stored; the opening compares the stored text with it."""
    return json.dumps(list(names))


def _round_from_row(row: tuple) -> Round:
    values = list(row)
    values[4] = tuple(json.loads(values[4]))
    values[5] = tuple(json.loads(values[5]))
    values[7:10] = [_date(v) for v in values[7:10]]
    return Round(*values)


def insert_round(db: Database, round_: Round) -> None:
    """Store a new round."""
    values = list(round_.__dict__.values())
    values[4] = _names(round_.audience_groups)
    values[5] = _names(round_.dimensions)
    values[7:10] = [d.isoformat() if d else None for d in values[7:10]]
    with write(db):
        db.conn.execute(f"INSERT INTO rounds ({COLUMNS}) VALUES ({', '.join('?' * 16)})", values)


def update_settings(db: Database, before: Round, after: Round) -> bool:
    """Write a round's edited settings; False when its status changed since `before` was read."""
    dates = [d.isoformat() if d else None for d in (after.opens_at, after.closes_at, after.proposals_close_at)]
    with write(db):
        cursor = db.conn.execute(
            "UPDATE rounds SET title = ?, question = ?, description = ?, audience_groups = ?, dimensions = ?,"
            " k = ?, moderation = ?, proposal_quota = ?, opens_at = ?, closes_at = ?, proposals_close_at = ?"
            " WHERE id = ? AND status = ?",
            (after.title, after.question, after.description, _names(after.audience_groups),
             _names(after.dimensions), after.k, after.moderation, after.proposal_quota, *dates,
             before.id, before.status))
    return cursor.rowcount == 1


def delete_draft(db: Database, round_id: str) -> bool:
    """Delete a round still in draft; False when it is not (or no longer) one."""
    with write(db):
        cursor = db.conn.execute("DELETE FROM rounds WHERE id = ? AND status = 'draft'", (round_id,))
    return cursor.rowcount == 1


def get_round(db: Database, round_id: str) -> Round | None:
    """One round, or None."""
    row = fetch_one(db, f"SELECT {COLUMNS} FROM rounds WHERE id = ?", (round_id,))
    return None if row is None else _round_from_row(row)


def list_rounds(db: Database) -> list[Round]:
    """Every round, by title."""
    return [_round_from_row(r) for r in fetch_all(db, f"SELECT {COLUMNS} FROM rounds ORDER BY title, id")]


def change_status(db: Database, round_id: str, current: str, new: str) -> bool:
    """Move a round from `current` to `new`; False if it was no longer `current`."""
    with write(db):
        cursor = db.conn.execute("UPDATE rounds SET status = ? WHERE id = ? AND status = ?", (new, round_id, current))
    return cursor.rowcount == 1


def open_round(db: Database, read: Round, coarsening: dict[str, str], headcounts: dict[str, int],
               scheduled: datetime | None = None) -> bool:
    """Freeze the coarsening map and headcounts and open the round, in one transaction.

    False when it is no longer a draft, when the settings they were built from (`read`: audience, dimensions,
    k) changed meanwhile, or, for a scheduled opening, when its opens_at is no longer `scheduled`.
    """
    round_id = read.id
    with write(db):
        if scheduled is not None and not date_is(db, round_id, "opens_at", scheduled):
            return False
        cursor = db.conn.execute(
            "UPDATE rounds SET status = 'open' WHERE id = ? AND status = 'draft' AND audience_groups = ?"
            " AND dimensions = ? AND k = ?",
            (round_id, _names(read.audience_groups), _names(read.dimensions), read.k))
        if cursor.rowcount != 1:
            return False
        db.conn.executemany("INSERT INTO coarsening (round_id, raw, combo) VALUES (?, ?, ?)",
                            [(round_id, raw, combo) for raw, combo in coarsening.items()])
        db.conn.executemany("INSERT INTO headcounts (round_id, combo, members) VALUES (?, ?, ?)",
                            [(round_id, combo, n) for combo, n in headcounts.items()])
    return True


def date_is(db: Database, round_id: str, column: str, expected: datetime) -> bool:
    """Within a write: is the round's opens_at or closes_at still `expected`? (An admin may have moved it.)"""
    if column not in ("opens_at", "closes_at"):
        raise ValueError(f"not a round date: {column}")
    row = fetch_one(db, f"SELECT {column} FROM rounds WHERE id = ?", (round_id,))
    return row is not None and _date(row[0]) == expected


def replace_headcounts(db: Database, round_id: str, headcounts: dict[str, int]) -> bool:
    """New headcounts for a round that is still open; False when it is not."""
    with write(db):
        row = fetch_one(db, "SELECT status FROM rounds WHERE id = ?", (round_id,))
        if row is None or row[0] != "open":
            return False
        db.conn.execute("DELETE FROM headcounts WHERE round_id = ?", (round_id,))
        db.conn.executemany("INSERT INTO headcounts (round_id, combo, members) VALUES (?, ?, ?)",
                            [(round_id, combo, n) for combo, n in headcounts.items()])
    return True


def get_headcounts(db: Database, round_id: str) -> dict[str, int]:
    """Audience members per stored combination, as frozen at open."""
    return dict(fetch_all(db, "SELECT combo, members FROM headcounts WHERE round_id = ?", (round_id,)))


def noise_seed(db: Database, round_id: str) -> bytes:
    """The round's perturbation key, made on first use."""
    row = fetch_one(db, "SELECT seed FROM noise_seeds WHERE round_id = ?", (round_id,))
    if row is not None:
        return row[0]
    with write(db):
        db.conn.execute("INSERT OR IGNORE INTO noise_seeds (round_id, seed) VALUES (?, ?)",
                        (round_id, secrets.token_bytes(32)))
    return fetch_one(db, "SELECT seed FROM noise_seeds WHERE round_id = ?", (round_id,))[0]
