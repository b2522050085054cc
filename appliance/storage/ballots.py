"""Votes while a round is open, and the close step that turns them into counts."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from appliance.domain.results import CountArrays, CountRow
from appliance.storage import similar
from appliance.storage.connection import checkpoint, fetch_all, fetch_one, forget_order, write
from appliance.storage.rounds import date_is

CAST = "cast"
ROUND_NOT_OPEN = "round_not_open"
PROPOSAL_UNAVAILABLE = "proposal_unavailable"


@dataclass(frozen=True)
class Ballot:
    """One vote as stored: under a pseudonym, with the voter's stored segment combination."""

    round_id: str
    pseudonym: bytes
    combo: str
    proposal_id: str
    vote: str
    qualification: str


def record_ballot(db: Database, ballot: Ballot) -> str:
    """Record or change one vote inside the caller's write transaction; returns CAST or why not."""
    status = fetch_one(db, "SELECT status FROM rounds WHERE id = ?", (ballot.round_id,))
    if status is None or status[0] != "open":
        return ROUND_NOT_OPEN
    if fetch_one(db, "SELECT 1 FROM proposals WHERE id = ? AND round_id = ? AND status = 'accepted'",
                 (ballot.proposal_id, ballot.round_id)) is None:
        return PROPOSAL_UNAVAILABLE
    db.conn.execute("INSERT OR IGNORE INTO voters (round_id, pseudonym, combo) VALUES (?, ?, ?)",
                    (ballot.round_id, ballot.pseudonym, ballot.combo))
    db.conn.execute(
        "INSERT INTO ballots (round_id, pseudonym, proposal_id, vote, qualification) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (round_id, pseudonym, proposal_id) DO UPDATE"
        " SET vote = excluded.vote, qualification = excluded.qualification",
        (ballot.round_id, ballot.pseudonym, ballot.proposal_id, ballot.vote, ballot.qualification),
    )
    return CAST


def close_and_count(db: Database, round_id: str, scheduled: datetime | None = None) -> bool:
    """Close an open round: ballots become counts; voters and author labels are deleted.

    False when the round was not open, or, for a scheduled close, when its closes_at is no longer `scheduled`
    (extended meanwhile). Call `scrub` afterwards to purge free pages and the WAL.
    """
    with write(db):
        if scheduled is not None and not date_is(db, round_id, "closes_at", scheduled):
            return False
        cursor = db.conn.execute("UPDATE rounds SET status = 'closed' WHERE id = ? AND status = 'open'", (round_id,))
        if cursor.rowcount != 1:
            return False
        db.conn.execute(
            "INSERT INTO counts (round_id, proposal_id, combo, vote, qualification, n)"
            " SELECT b.round_id, b.proposal_id, v.combo, b.vote, b.qualification, count(*)"
            " FROM ballots b JOIN voters v ON v.round_id = b.round_id AND v.pseudonym = b.pseudonym"
            " WHERE b.round_id = ? GROUP BY b.proposal_id, v.combo, b.vote, b.qualification",
            (round_id,),
        )
        db.conn.execute(
            "INSERT INTO combo_voters (round_id, combo, voters)"
            " SELECT round_id, combo, count(*) FROM voters WHERE round_id = ? GROUP BY combo",
            (round_id,),
        )
        store_packs(db, round_id)
        db.conn.execute("DELETE FROM ballots WHERE round_id = ?", (round_id,))
        db.conn.execute("DELETE FROM voters WHERE round_id = ?", (round_id,))
        db.conn.execute("UPDATE proposals SET author_label = NULL WHERE round_id = ?", (round_id,))
        db.conn.execute("DELETE FROM coarsening WHERE round_id = ?", (round_id,))
        similar.drop(db, round_id)  # near-duplicate hints end with the round
        db.conn.execute("UPDATE rounds SET released_period = 0 WHERE id = ?", (round_id,))
    return True


def scrub(db: Database) -> bool:
    """VACUUM, then checkpoint and truncate the WAL, so no deleted row survives on disk.

    False when the database stayed busy: deleted rows are already overwritten
    (secure_delete), and the next compaction rewrites the file.
    """
    vacuumed = compact(db)
    return checkpoint(db) and vacuumed


def compact(db: Database) -> bool:
    """Rewrite the file in key order (VACUUM) and truncate the WAL: no arrival order survives."""
    try:
        db.conn.execute("VACUUM")
    except sqlite3.Error:
        return False
    finally:
        forget_order(db)
    return True


def store_packs(db: Database, round_id: str) -> None:
    """Store a closed round's counts a second time, packed per proposal, in the caller's write transaction.

    The `counts` table stays the readable record; the packs hold the same
    numbers in the form the results are computed from, read in milliseconds
    where the table's millions of rows take seconds.
    """
    arrays = CountArrays.from_rows(_count_rows(db, round_id))
    db.conn.execute("INSERT INTO pack_combos (round_id, combos) VALUES (?, ?)", (round_id, json.dumps(arrays.combos)))
    db.conn.executemany("INSERT INTO count_packs (round_id, proposal_id, pack) VALUES (?, ?, ?)",
                        [(round_id, pid, pack) for pid, pack in arrays.packs()])


def load_counts(db: Database, round_id: str) -> tuple[CountArrays, dict[str, int]]:
    """The counts kept after close, and the voters per stored combination."""
    voters = combo_voters(db, round_id)
    combos = fetch_one(db, "SELECT combos FROM pack_combos WHERE round_id = ?", (round_id,))
    if combos is None:  # not packed (a round closed by a version older than the packs, mid-upgrade)
        return CountArrays.from_rows(_count_rows(db, round_id)), voters
    packs = fetch_all(db, "SELECT proposal_id, pack FROM count_packs WHERE round_id = ?", (round_id,))
    return CountArrays.from_packs(json.loads(combos[0]), packs), voters


def combo_voters(db: Database, round_id: str) -> dict[str, int]:
    """A closed round's distinct voters per stored combination."""
    return dict(fetch_all(db, "SELECT combo, voters FROM combo_voters WHERE round_id = ?", (round_id,)))


def _count_rows(db: Database, round_id: str) -> list[CountRow]:
    rows = fetch_all(db, "SELECT proposal_id, combo, vote, qualification, n FROM counts WHERE round_id = ?", (round_id,))
    return [CountRow(*row) for row in rows]


def tallies(db: Database, round_id: str) -> dict[str, tuple[int, int, int]]:
    """Agree, disagree and neutral votes so far on each proposal of an open round that has any."""
    rows = fetch_all(db, "SELECT proposal_id, sum(vote = 'agree'), sum(vote = 'disagree'), sum(vote = 'neutral')"
                         " FROM ballots WHERE round_id = ? GROUP BY proposal_id", (round_id,))
    return {pid: (agree, disagree, neutral) for pid, agree, disagree, neutral in rows}


def voted_by(db: Database, round_id: str, pseudonym: bytes) -> set[str]:
    """The proposals one voter (by pseudonym) has voted on in an open round."""
    return {row[0] for row in fetch_all(db, "SELECT proposal_id FROM ballots WHERE round_id = ? AND pseudonym = ?",
                                        (round_id, pseudonym))}


def count_voters(db: Database, round_id: str) -> int:
    """Distinct voters of an open round so far."""
    return fetch_one(db, "SELECT count(*) FROM voters WHERE round_id = ?", (round_id,))[0]
