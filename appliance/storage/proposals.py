"""Proposals in ballots.db: no author id, no date; an HMAC author label until close."""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from appliance.storage import similar
from appliance.storage.connection import fetch_all, fetch_one, forget_order, write


class RoundNotOpen(Exception):
    """The round closed between the check and the write."""


@dataclass(frozen=True)
class StoredProposal:
    id: str
    round_id: str
    text: str
    status: str
    refusal_reason: str | None
    refusal_note: str | None
    duplicate_of: str | None = None


COLUMNS = "id, round_id, text, status, refusal_reason, refusal_note, duplicate_of"


@dataclass(frozen=True)
class Release:
    """The current release period, and the status released proposals take."""

    period: int
    status: str


def insert_if_under_quota(db: Database, proposal: StoredProposal, author_label: bytes, quota: int,
                          release: Release) -> StoredProposal | None:
    """Release due batches, then store the proposal unless its author reached the quota (refused proposals do
    not count): one transaction.

    The stored proposal; or, when its author already has one with the same text in the round (a double
    submit), that one, and nothing is written; None when the author has reached the quota.
    """
    with write(db):
        if fetch_one(db, "SELECT 1 FROM rounds WHERE id = ? AND status = 'open'", (proposal.round_id,)) is None:
            raise RoundNotOpen(proposal.round_id)
        _release_in_transaction(db, proposal.round_id, release)
        same = fetch_one(db, f"SELECT {COLUMNS} FROM proposals WHERE round_id = ? AND author_label = ? AND text = ?"
                             " AND status != 'refused'", (proposal.round_id, author_label, proposal.text))
        if same is not None:
            return StoredProposal(*same)
        (written,) = fetch_one(db, "SELECT count(*) FROM proposals WHERE round_id = ? AND author_label = ?"
                                   " AND status != 'refused'", (proposal.round_id, author_label))
        if written >= quota:
            return None
        db.conn.execute(
            "INSERT INTO proposals (id, round_id, text, status, author_label) VALUES (?, ?, ?, ?, ?)",
            (proposal.id, proposal.round_id, proposal.text, proposal.status, author_label),
        )
        if proposal.status == "accepted":  # released at once (no batch interval) in post-moderation
            similar.index_accepted(db, proposal.round_id, [(proposal.id, proposal.text)])
    forget_order(db)
    return proposal


def release_due(db: Database, round_id: str, release: Release) -> None:
    """At the first touch of a new period, release every queued proposal as one shuffled batch.

    Every path that queues a proposal releases first, in the same transaction, so
    whatever is queued was submitted in the current period: no proposal needs a date.
    """
    row = fetch_one(db, "SELECT released_period FROM rounds WHERE id = ?", (round_id,))
    if row is None or row[0] >= release.period:
        return
    with write(db):
        _release_in_transaction(db, round_id, release)


def _release_in_transaction(db: Database, round_id: str, release: Release) -> None:
    cursor = db.conn.execute("UPDATE rounds SET released_period = ? WHERE id = ? AND released_period < ?",
                             (release.period, round_id, release.period))
    if cursor.rowcount:
        batch = fetch_all(db, "SELECT id, text FROM proposals WHERE round_id = ? AND status = 'queued'", (round_id,))
        db.conn.execute("UPDATE proposals SET status = ? WHERE round_id = ? AND status = 'queued'",
                        (release.status, round_id))
        if release.status == "accepted" and batch:  # post-moderation: published at once, hinted at once
            similar.index_accepted(db, round_id, batch)


def list_by_status(db: Database, round_id: str, status: str) -> list[StoredProposal]:
    """Proposals of a round in one status, in random order (no order may hint at submission time)."""
    rows = fetch_all(db, f"SELECT {COLUMNS} FROM proposals WHERE round_id = ? AND status = ? ORDER BY random()",
                     (round_id, status))
    return [StoredProposal(*row) for row in rows]


def list_by_author(db: Database, round_id: str, author_label: bytes) -> list[StoredProposal]:
    """One author's proposals in a round, by text."""
    rows = fetch_all(db, f"SELECT {COLUMNS} FROM proposals WHERE round_id = ? AND author_label = ? ORDER BY text",
                     (round_id, author_label))
    return [StoredProposal(*row) for row in rows]


def get_proposal(db: Database, round_id: str, proposal_id: str) -> StoredProposal | None:
    """One proposal of a round, or None."""
    row = fetch_one(db, f"SELECT {COLUMNS} FROM proposals WHERE id = ? AND round_id = ?", (proposal_id, round_id))
    return None if row is None else StoredProposal(*row)


def moderate(db: Database, round_id: str, proposal_id: str, current: str, new: str,
             reason: str | None = None, note: str | None = None) -> bool:
    """Move a proposal from `current` to `new` with a refusal reason; False if it was no longer `current`."""
    with write(db):
        cursor = db.conn.execute(
            "UPDATE proposals SET status = ?, refusal_reason = ?, refusal_note = ?"
            " WHERE id = ? AND round_id = ? AND status = ?"
            " AND EXISTS (SELECT 1 FROM rounds WHERE id = ? AND status = 'open')",
            (new, reason, note, proposal_id, round_id, current, round_id),
        )
        if cursor.rowcount == 1 and new == "accepted":
            similar.index_accepted(db, round_id, fetch_all(db, "SELECT id, text FROM proposals WHERE id = ?",
                                                           (proposal_id,)))
        elif cursor.rowcount == 1 and current == "accepted":
            similar.remove(db, round_id, proposal_id)
            _reroot(db, round_id, proposal_id)
    return cursor.rowcount == 1


def _reroot(db: Database, round_id: str, gone: str) -> None:
    """The proposals marked duplicates of one no longer published stay one group, under the first of them."""
    members = [row[0] for row in fetch_all(db, "SELECT id FROM proposals WHERE round_id = ? AND duplicate_of = ?"
                                               " AND status = 'accepted' ORDER BY id", (round_id, gone))]
    if members:
        db.conn.execute("UPDATE proposals SET duplicate_of = NULL WHERE id = ?", (members[0],))
        db.conn.execute("UPDATE proposals SET duplicate_of = ? WHERE round_id = ? AND duplicate_of = ?",
                        (members[0], round_id, gone))


def correct(db: Database, round_id: str, proposal_id: str, before: str, text: str) -> bool:
    """Replace the text of a pending or accepted proposal of an open round; False if it changed meanwhile."""
    with write(db):
        cursor = db.conn.execute(
            "UPDATE proposals SET text = ? WHERE id = ? AND round_id = ? AND text = ? AND status IN ('pending', 'accepted')"
            " AND EXISTS (SELECT 1 FROM rounds WHERE id = ? AND status = 'open')",
            (text, proposal_id, round_id, before, round_id),
        )
        if cursor.rowcount == 1 and fetch_one(db, "SELECT status FROM proposals WHERE id = ?",
                                              (proposal_id,)) == ("accepted",):
            similar.index_accepted(db, round_id, [(proposal_id, text)])
    return cursor.rowcount == 1


def mark_duplicate(db: Database, round_id: str, proposal_id: str, original: str | None) -> bool:
    """Mark an accepted proposal a duplicate of another accepted one (None: not a duplicate any more).

    Proposals marked duplicates of this one follow it to `original`, so every group has one root.
    """
    with write(db):
        # The original is checked again here, where no other write can come in between: still published,
        # the root of its group, and not the proposal itself (two moderators marking each other's at once).
        cursor = db.conn.execute(
            "UPDATE proposals SET duplicate_of = ? WHERE id = ? AND round_id = ? AND status = 'accepted'"
            " AND EXISTS (SELECT 1 FROM rounds WHERE id = ? AND status = 'open')"
            " AND (? IS NULL OR EXISTS (SELECT 1 FROM proposals AS o WHERE o.id = ? AND o.round_id = ?"
            " AND o.status = 'accepted' AND o.duplicate_of IS NULL AND o.id != ?))",
            (original, proposal_id, round_id, round_id, original, original, round_id, proposal_id),
        )
        if cursor.rowcount == 1 and original is not None:
            db.conn.execute("UPDATE proposals SET duplicate_of = ? WHERE round_id = ? AND duplicate_of = ?",
                            (original, round_id, proposal_id))
    return cursor.rowcount == 1
