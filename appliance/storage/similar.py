"""A full-text index of each open round's accepted proposals, to find near-duplicates (SQLite FTS5).

One FTS5 table per round, `similar_<round id>`, created by the first write to it
and dropped whole at close (with its shadow tables), so nothing of it outlives
the round. It holds one column, the proposal's terms (normalised text, see
domain/similarity.py), of accepted proposals only, which the audience already
sees; no author, no date. Tokenizer: unicode61 with remove_diacritics 2, which
folds case and accents again as a safeguard; plurals and inflections are dealt
with by the normalisation, in both French and English (FTS5's porter stemmer
knows only English). The trigram tokenizer was tried and left: on reworded
duplicates and on different proposals sharing long words it separates them
worse than stemmed terms, it keeps stop words, and before SQLite 3.45 it cannot
remove diacritics.

Anonymity: a row's rowid is its proposal's random id read as a number, minus
2^63 to fit SQLite's signed rowids (one-to-one, so the id needs no column of its
own; never an autoincrement): row order is id order, not insertion order. FTS5 writes
each transaction's rows into a new index segment, which would record which
proposals arrived together and in what order: every write merges the index
back into one segment ('optimize'), which also purges the terms of removed
proposals (with secure_delete, their bytes are overwritten).

Writers join the caller's write transaction when one is open (say, the
moderation decision that accepts a proposal, or the close), and the caller
truncates the WAL after it as usual; otherwise they open their own and do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlite_utils import Database

from appliance.domain.similarity import (HINT_MIN_SCORE, NEAR_DUPLICATE_THRESHOLD, draft_score, draft_terms,
                                         group_terms, partial_terms, terms)
from appliance.storage.connection import fetch_all, fetch_one, forget_order, write

_ROUND_ID = re.compile(r"[0-9a-zA-Z]{1,64}")
_PROPOSAL_ID = re.compile(r"[0-9a-f]{16}")
_OFFSET = 1 << 63  # 64-bit ids onto SQLite's signed 64-bit rowids, in the same order
# Drafts: how many of the draft's terms are searched, and how many matches are rescored.
MAX_QUERY_TERMS = 32
CANDIDATES = 50


def index_accepted(db: Database, round_id: str, proposals: Iterable[tuple[str, str]]) -> None:
    """Index accepted proposals (id, text) of a round; an id indexed before gets its new text."""
    rows = [(_rowid(pid), " ".join(terms(text))) for pid, text in proposals]
    table = _table(round_id)
    with _writing(db):
        db.conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS [{table}] USING fts5("
                        "terms, tokenize = 'unicode61 remove_diacritics 2')")
        db.conn.executemany(f"INSERT OR REPLACE INTO [{table}] (rowid, terms) VALUES (?, ?)", rows)
        _merge(db, table)


def remove(db: Database, round_id: str, proposal_id: str) -> None:
    """Take a proposal out of the index (refused after acceptance); nothing of it is kept."""
    table = _table(round_id)
    with _writing(db):
        if _exists(db, table):
            db.conn.execute(f"DELETE FROM [{table}] WHERE rowid = ?", (_rowid(proposal_id),))
            _merge(db, table)


def optimize(db: Database, round_id: str) -> None:
    """Merge the round's index into one segment (after each release batch; writes here already do)."""
    table = _table(round_id)
    with _writing(db):
        if _exists(db, table):
            _merge(db, table)


def drop(db: Database, round_id: str) -> None:
    """Drop the round's index and its shadow tables (at close; the close's VACUUM then clears the file)."""
    table = _table(round_id)
    with _writing(db):
        db.conn.execute(f"DROP TABLE IF EXISTS [{table}]")


def similar(db: Database, round_id: str, draft: str, limit: int = 5, min_score: float = HINT_MIN_SCORE,
            typing: bool = True) -> list[tuple[str, float]]:
    """Accepted proposals like a draft: (id, score in 0..1), best first.

    While `typing`, a last word with no space after it may be unfinished (see draft_terms); a complete text
    (a proposal in the moderation queue) has none. The query is built from the draft's terms, each quoted, so
    no text the user types is ever read as FTS5 query syntax.
    """
    table = _table(round_id)
    found, partial = draft_terms(draft)
    partial = partial if typing else None
    query_terms = list(dict.fromkeys(found))[-MAX_QUERY_TERMS:]
    if not query_terms or limit <= 0 or not _exists(db, table):
        return []
    last = found[-1] if partial is not None else None
    query = " OR ".join([_quoted(term) + (" *" if term == last else "") for term in query_terms]
                        + [_quoted(term) for term in (partial_terms(partial) if partial else [])])
    rows = fetch_all(db, f"SELECT rowid, terms FROM [{table}] WHERE [{table}] MATCH ? ORDER BY rank LIMIT ?",
                     (query, max(CANDIDATES, limit)))
    # Rows come best first by bm25; the stable sort keeps that order between equal scores.
    scored = [(_proposal_id(rowid), draft_score(query_terms, frozenset(text.split()), partial))
              for rowid, text in rows]
    scored.sort(key=lambda item: item[1], reverse=True)
    return [(pid, round(score, 4)) for pid, score in scored if score >= min_score][:limit]


def groups(db: Database, round_id: str, threshold: float = NEAR_DUPLICATE_THRESHOLD) -> dict[str, str]:
    """Each indexed proposal id -> its group of near-duplicates' id (the group's smallest id)."""
    table = _table(round_id)
    if not _exists(db, table):
        return {}
    rows = fetch_all(db, f"SELECT rowid, terms FROM [{table}]")
    return group_terms({_proposal_id(rowid): frozenset(text.split()) for rowid, text in rows}, threshold)


def _merge(db: Database, table: str) -> None:
    db.conn.execute(f"INSERT INTO [{table}] ([{table}]) VALUES ('optimize')")


@contextmanager
def _writing(db: Database) -> Iterator[None]:
    """Within the caller's write transaction if one is open, else in one of our own."""
    if db.conn.in_transaction:
        yield
        return
    with write(db):
        yield
    forget_order(db)


def _exists(db: Database, table: str) -> bool:
    return fetch_one(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)) is not None


def _table(round_id: str) -> str:
    if not _ROUND_ID.fullmatch(round_id):
        raise ValueError(f"not a round id: {round_id!r}")
    return f"similar_{round_id}"


def _rowid(proposal_id: str) -> int:
    if not _PROPOSAL_ID.fullmatch(proposal_id):
        raise ValueError(f"not a proposal id (16 lower-case hex digits): {proposal_id!r}")
    return int(proposal_id, 16) - _OFFSET


def _proposal_id(rowid: int) -> str:
    return f"{rowid + _OFFSET:016x}"


def _quoted(term: str) -> str:
    """An FTS5 string: whatever it holds, it is matched as text, never as an operator."""
    return '"' + term.replace('"', '""') + '"'
