"""Which proposals a voter is shown next (ARCHITECTURE.md, Sequences).

A sequence holds 12 accepted proposals the voter has not voted on:

- about 30% new proposals (fewer than 10 votes), fewest votes first, ties at
  random: every proposal gets its first votes quickly;
- the rest among proposals still being tested (fewer than 1,500 votes), by
  Thompson sampling (Thompson, 1933; Chapelle & Li, 2011): each proposal's
  agree rate is drawn from its Beta(agree + 1, disagree + neutral + 1)
  posterior and the highest draws are shown, so likely consensus gets votes
  where they decide the ranking; about 10% are likely controversies, drawn the
  same way on min(agree, disagree) rates;
- at most one proposal per group of near-duplicates, none from a group the
  voter already voted in;
- when a pool runs short the others fill in, then proposals with 1,500 votes
  or more; the sequence is shuffled.

Counts come from the hourly snapshot (the caller's business); the randomness
from the `rng` given, so a seeded generator gives the same sequence.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SEQUENCE_SIZE = 12
NEW_SHARE = 0.3
NEW_BELOW = 10  # fewer votes than this: a new proposal
TESTED_BELOW = 1500  # fewer votes than this: still being tested
CONTROVERSY_SHARE = 0.1


@dataclass(frozen=True)
class Tally:
    """A proposal's vote counts, as read from the hourly snapshot."""

    proposal_id: str
    agree: int
    disagree: int
    neutral: int

    @property
    def votes(self) -> int:
        return self.agree + self.disagree + self.neutral


def next_sequence(tallies: Sequence[Tally], voted: Collection[str], rng: np.random.Generator,
                  groups: Mapping[str, str] | None = None, size: int = SEQUENCE_SIZE) -> list[str]:
    """Up to `size` proposal ids for the voter, shuffled (see the module docstring for the rules)."""
    if not tallies or size <= 0:
        return []
    ids = [t.proposal_id for t in tallies]
    counts = np.array([(t.agree, t.disagree, t.neutral) for t in tallies], dtype=np.int64).reshape(-1, 3)
    agree, disagree, neutral = counts.T
    votes = counts.sum(axis=1)
    names = [groups.get(pid, pid) for pid in ids] if groups else ids
    codes: dict[str, int] = {}
    group = np.array([codes.setdefault(name, len(codes)) for name in names], dtype=np.int64)
    used = np.zeros(len(codes), dtype=bool)
    seen = set(voted)
    used[[group[i] for i, pid in enumerate(ids) if pid in seen]] = True  # groups the voter already voted in
    allowed = ~used[group]

    new = np.flatnonzero(allowed & (votes < NEW_BELOW))
    tested = np.flatnonzero(allowed & (votes >= NEW_BELOW) & (votes < TESTED_BELOW))
    mature = np.flatnonzero(allowed & (votes >= TESTED_BELOW))
    new_first = new[np.lexsort((rng.random(new.size), votes[new]))]  # fewest votes first, ties at random
    consensus = rng.beta(agree[tested] + 1.0, disagree[tested] + neutral[tested] + 1.0)
    against = rng.beta(disagree[tested] + 1.0, agree[tested] + neutral[tested] + 1.0)
    likely_consensus = tested[np.argsort(-consensus, kind="stable")]
    likely_controversy = tested[np.argsort(-np.minimum(consensus, against), kind="stable")]

    quota_new = _share(size * NEW_SHARE, rng)
    quota_controversy = _share(size * CONTROVERSY_SHARE, rng)
    chosen: list[int] = []
    for order, quota in ((new_first, quota_new), (likely_controversy, quota_controversy),
                         (likely_consensus, size), (new_first, size), (mature[rng.permutation(mature.size)], size)):
        _take(order, quota, size, chosen, used, group)
    picked = np.array(chosen, dtype=np.int64)
    rng.shuffle(picked)
    return [ids[i] for i in picked.tolist()]


def _take(order: np.ndarray, quota: int, size: int, chosen: list[int], used: np.ndarray, group: np.ndarray) -> None:
    """Add up to `quota` proposals of `order`, one per group, until the sequence holds `size`."""
    taken = 0
    for i in order.tolist():
        if taken >= quota or len(chosen) >= size:
            return
        if not used[group[i]]:
            used[group[i]] = True
            chosen.append(i)
            taken += 1


def _share(expected: float, rng: np.random.Generator) -> int:
    """A whole number of places whose mean is `expected` (3.6 new places: 3 or 4)."""
    whole = int(expected)
    return whole + int(rng.random() < expected - whole)
