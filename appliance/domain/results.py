"""What a closed round keeps, as the disclosure engine (domain/disclosure.py) reads it."""

from __future__ import annotations

from dataclasses import dataclass

NOT_ENOUGH = "not enough responses"


@dataclass(frozen=True)
class CountRow:
    """Ballots of one proposal, segment combination, vote and qualification ('' for none)."""

    proposal_id: str
    combo: str
    vote: str
    qualification: str
    n: int
