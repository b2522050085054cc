"""The publishable view of a round's results: the one thing every output renders.

Built from the counts that remain after close. This version applies the round-
and proposal-level k rules; segment breakdowns join it with the disclosure engine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from appliance.domain.scoring import Scores, score_proposal

NOT_ENOUGH = "not enough responses"


@dataclass(frozen=True)
class CountRow:
    """Ballots of one proposal, segment combination, vote and qualification ('' for none)."""

    proposal_id: str
    combo: str
    vote: str
    qualification: str
    n: int


@dataclass(frozen=True)
class ProposalResult:
    """One accepted proposal; `scores` and `rank` are None when hidden."""

    id: str
    text: str
    voters: int | None
    scores: Scores | None
    rank: int | None


@dataclass(frozen=True)
class ResultsView:
    """What may be published about a round."""

    k: int
    shown: bool
    voters: int | None
    proposals: list[ProposalResult]


def publishable_results(k: int, proposals: Iterable[tuple[str, str]], counts: Iterable[CountRow],
                        combo_voters: Mapping[str, int]) -> ResultsView:
    """Apply the k rules and score what passes; hidden and empty look the same."""
    round_voters = sum(combo_voters.values())
    proposals = list(proposals)
    if round_voters < k:
        return ResultsView(k, False, None, [ProposalResult(pid, text, None, None, None) for pid, text in proposals])
    votes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    qualifications: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in counts:
        votes[row.proposal_id][row.vote] += row.n
        if row.qualification:
            qualifications[row.proposal_id][row.qualification] += row.n
    scored = {
        pid: score_proposal(votes[pid], qualifications[pid])
        for pid, _ in proposals
        if sum(votes[pid].values()) >= k  # one ballot per voter and proposal: votes = distinct voters
    }
    order = sorted(scored, key=lambda pid: (-scored[pid].top.low, pid))
    ranks = {pid: rank for rank, pid in enumerate(order, start=1)}
    results = [
        ProposalResult(pid, text, scored[pid].votes if pid in scored else None, scored.get(pid), ranks.get(pid))
        for pid, text in proposals
    ]
    results.sort(key=lambda r: (r.rank is None, r.rank or 0, r.text))
    return ResultsView(k, True, round_voters, results)
