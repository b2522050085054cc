"""Rounds imported from elsewhere, stored at once as a closed round is (ballots.db).

An imported round never had ballots or voter rows: it arrives as what close
leaves behind, proposals without author labels, counts and voters per
combination, so no per-voter row is ever written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sqlite_utils import Database

from appliance.domain.results import CountRow
from appliance.domain.rounds import Round
from appliance.storage.ballots import store_packs
from appliance.storage.connection import forget_order, write
from appliance.storage.proposals import StoredProposal


def insert_closed_round(db: Database, round_: Round, proposals: Sequence[StoredProposal],
                        counts: Sequence[CountRow], combo_voters: Mapping[str, int]) -> None:
    """Store a closed round, its proposals and counts in one transaction: a failure leaves nothing."""
    if round_.status != "closed":
        raise ValueError(f"an imported round is stored closed, not {round_.status}")
    with write(db):
        _insert_round(db, round_)
        db.conn.executemany(
            "INSERT INTO proposals (id, round_id, text, status, refusal_reason, refusal_note)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(p.id, round_.id, p.text, p.status, p.refusal_reason, p.refusal_note) for p in proposals],
        )
        db.conn.executemany(
            "INSERT INTO counts (round_id, proposal_id, combo, vote, qualification, n) VALUES (?, ?, ?, ?, ?, ?)",
            [(round_.id, c.proposal_id, c.combo, c.vote, c.qualification, c.n) for c in counts],
        )
        db.conn.executemany("INSERT INTO combo_voters (round_id, combo, voters) VALUES (?, ?, ?)",
                            [(round_.id, combo, n) for combo, n in combo_voters.items()])
        store_packs(db, round_.id)
    forget_order(db)


def _insert_round(db: Database, round_: Round) -> None:
    # No dates: an imported round was never opened or closed here.
    db.conn.execute(
        "INSERT INTO rounds (id, title, question, description, audience_groups, dimensions, k, moderation, status,"
        " proposal_min_chars, proposal_max_chars, proposal_quota, release_interval_seconds)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (round_.id, round_.title, round_.question, round_.description, json.dumps(list(round_.audience_groups)),
         json.dumps(list(round_.dimensions)), round_.k, round_.moderation, round_.status,
         round_.proposal_min_chars, round_.proposal_max_chars, round_.proposal_quota,
         round_.release_interval_seconds),
    )
