"""Which proposals a voter is shown next: the sequence engine (ARCHITECTURE.md, Sequences).

`next_sequence` picks up to 12 accepted proposals the voter has not voted on,
from each proposal's vote counts in the hourly snapshot (storage rule 8), and
returns them shuffled. Its places, per sequence of 12:

- New proposals, fewer than 10 votes: about 30% of the places, fewest votes
  first, ties at random, so that every proposal soon gets its first votes.
- Likely controversies: about 10%, by Thompson sampling on the vote shares.
  Each tested proposal's (agree, disagree, neutral) shares are drawn from their
  Dirichlet(agree + 1, disagree + 1, neutral + 1) posterior (stick-breaking:
  agree ~ Beta(agree + 1, disagree + neutral + 2), then disagree =
  (1 - agree) Beta(disagree + 1, neutral + 1)), and the proposals with the
  highest min(agree, disagree) are taken: that draw is high only when both
  sides are large, and it is the vote part of the results' controversy score.
- Likely consensus: the rest, where a vote most changes the results' top 10
  (the proposals ranked first by the lower bound of their agree rate, as the
  results rank them). This is LUCB for identifying a top m (Kalyanakrishnan
  et al., 2012) with Thompson draws for its bounds (Thompson, 1933): each
  tested proposal's agree rate is drawn from its Beta(agree + a, disagree +
  neutral + b) posterior; places then go alternately to the challenger
  outside the top with the highest draw (it may belong in the top) and to
  the member of the top with the lowest draw (it may not). A winner beyond
  doubt, or a proposal that clearly cannot reach the top, is drawn where it
  gets no place; while 10 proposals or fewer have been tested, places go to
  the highest draws, plain multiple-play Thompson sampling (Komiyama, Honda
  & Nakagawa, 2015). The prior Beta(a, b) is fitted to the agree rates of
  the proposals with 10 votes or more (empirical Bayes, method of moments
  for the beta-binomial: the spread of their rates minus the binomial
  noise), worth between 2 and 20 votes, and Beta(1, 1) while fewer than 5
  proposals have 10 votes: a proposal that drew 10 agrees out of 10 is then
  not taken for a sure consensus. Among proposals still being tested (fewer
  than 1,500 votes). Replayed on real consultations (bench/sequences.py),
  a top 10 that holds needs 30% to 50% of the votes uniform presentation
  needs, against 40% to 55% for plain multiple-play Thompson sampling.

Shares hold on average: 12 x 30% = 3.6 new places are 3 or 4 (4 with
probability 0.6), and likewise 1.2 controversy places. When a pool runs short
the next one fills in (consensus draws, then new proposals fewest votes first),
then proposals with 1,500 votes or more, in random order: their rates are
known, a vote there teaches little.

Near-duplicates (`groups`: proposal id -> group id; a proposal absent from it
is a group of its own): at most one proposal per group in a sequence, and none
from a group the voter already voted in, since that would ask them the same
question twice. The proposals list still lets them vote on it.

Pure and deterministic: the randomness comes from the `rng` given, so a
seeded generator gives the same sequence for the same input. Draws are
vectorised (numpy), a few milliseconds for 5,000 proposals.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from appliance.domain.scoring import VOTE_PRIOR, half_width, smoothed_rate

SEQUENCE_SIZE = 12
NEW_SHARE = 0.3
NEW_BELOW = 10  # fewer votes than this: a new proposal
TESTED_BELOW = 1500  # fewer votes than this: still being tested
CONTROVERSY_SHARE = 0.1
TOP_PLACES = 10  # the results' top that consensus places try to settle
PRIOR_FIT_MIN = 5  # proposals with NEW_BELOW votes or more needed to fit the prior
PRIOR_WEIGHT = (2.0, 20.0)  # the fitted prior is worth this many votes, at least and at most


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
    """Up to `size` ids of proposals for the voter to vote on next, shuffled (rules in the module docstring)."""
    if not tallies or size <= 0:
        return []
    ids = [t.proposal_id for t in tallies]
    agree, disagree, neutral = (_column(tallies, name) for name in ("agree", "disagree", "neutral"))
    votes = agree + disagree + neutral
    group, used = _groups(ids, voted, groups)
    allowed = ~used[group]
    new = np.flatnonzero(allowed & (votes < NEW_BELOW))
    tested = np.flatnonzero(allowed & (votes >= NEW_BELOW) & (votes < TESTED_BELOW))
    mature = np.flatnonzero(allowed & (votes >= TESTED_BELOW))

    fewest_first = new[np.lexsort((rng.random(new.size), votes[new]))]
    likely_consensus = consensus_order(agree, votes, tested, rng)
    controversy = controversy_draws(agree[tested], disagree[tested], neutral[tested], rng)
    likely_controversy = tested[np.argsort(-controversy, kind="stable")]

    places_new = _places(size * NEW_SHARE, rng)
    places_controversy = _places(size * CONTROVERSY_SHARE, rng)
    chosen: list[int] = []
    for order, places in ((fewest_first, places_new), (likely_controversy, places_controversy),
                          (likely_consensus, size), (fewest_first, size),
                          (mature[rng.permutation(mature.size)], size)):
        _take(order, places, size, chosen, used, group)
    return [ids[i] for i in rng.permutation(np.array(chosen, dtype=np.int64)).tolist()]


def consensus_order(agree: np.ndarray, votes: np.ndarray, tested: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """The proposals of `tested` whose votes would most change the results' top, first.

    LUCB for the top m (Kalyanakrishnan et al., 2012) with Thompson draws for
    its bounds: the results' top TOP_PLACES (by the lower bound of the agree
    rate, as the results rank) are members, the rest challengers; challengers
    come by highest draw, members by lowest draw, alternately.
    """
    draws = consensus_draws(agree, votes, tested, rng)
    known = np.flatnonzero(votes >= NEW_BELOW)
    if known.size <= TOP_PLACES:
        return tested[np.argsort(-draws, kind="stable")]
    rate = smoothed_rate(agree[known], votes[known], VOTE_PRIOR)
    top = known[np.argpartition(-(rate - half_width(rate, votes[known])), TOP_PLACES - 1)[:TOP_PLACES]]
    member = np.isin(tested, top)
    challengers = np.flatnonzero(~member)[np.argsort(-draws[~member], kind="stable")]
    members = np.flatnonzero(member)[np.argsort(draws[member], kind="stable")]
    rank = np.empty(tested.size, dtype=np.int64)
    rank[challengers] = 2 * np.arange(challengers.size)
    rank[members] = 2 * np.arange(members.size) + 1
    return tested[np.argsort(rank, kind="stable")]


def consensus_draws(agree: np.ndarray, votes: np.ndarray, among: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """One Thompson draw of the agree rate of each proposal of `among`, under the fitted prior."""
    a, b = agree_prior(agree, votes)
    return rng.beta(agree[among] + a, votes[among] - agree[among] + b)


def agree_prior(agree: np.ndarray, votes: np.ndarray) -> tuple[float, float]:
    """Beta(a, b) fitted to the agree rates of proposals with NEW_BELOW votes or more (method of moments)."""
    known = votes >= NEW_BELOW
    if np.count_nonzero(known) < PRIOR_FIT_MIN:
        return 1.0, 1.0
    rate = agree[known] / votes[known]
    mean = min(max(float(rate.mean()), 0.02), 0.98)
    # The rates' spread is the proposals' spread plus binomial noise, which is taken off.
    spread = float(rate.var()) - float(np.mean(rate * (1 - rate) / votes[known]))
    weight = mean * (1 - mean) / max(spread, 1e-6) - 1
    weight = min(max(weight, PRIOR_WEIGHT[0]), PRIOR_WEIGHT[1])
    return mean * weight, (1 - mean) * weight


def controversy_draws(agree: np.ndarray, disagree: np.ndarray, neutral: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """min(agree, disagree) of one draw of the shares from their Dirichlet(counts + 1) posterior."""
    agree_share = rng.beta(agree + 1.0, disagree + neutral + 2.0)
    disagree_share = (1 - agree_share) * rng.beta(disagree + 1.0, neutral + 1.0)
    return np.minimum(agree_share, disagree_share)


def _column(tallies: Sequence[Tally], name: str) -> np.ndarray:
    return np.fromiter(map(attrgetter(name), tallies), dtype=np.int64, count=len(tallies))


def _groups(ids: list[str], voted: Collection[str], groups: Mapping[str, str] | None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Each proposal's group number, and which groups are out: those the voter voted in."""
    named = [groups.get(pid, pid) for pid in ids] if groups else ids
    codes: dict[str, int] = {}
    group = np.fromiter((codes.setdefault(name, len(codes)) for name in named), dtype=np.int64, count=len(ids))
    used = np.zeros(len(codes), dtype=bool)
    for pid in voted:
        code = codes.get(groups.get(pid, pid) if groups else pid)
        if code is not None:
            used[code] = True
    return group, used


def _take(order: np.ndarray, places: int, size: int, chosen: list[int], used: np.ndarray,
          group: np.ndarray) -> None:
    """Add up to `places` proposals of `order`, one per group, while the sequence holds fewer than `size`."""
    taken = 0
    for i in order.tolist():
        if taken >= places or len(chosen) >= size:
            return
        if not used[group[i]]:
            used[group[i]] = True
            chosen.append(i)
            taken += 1


def _places(expected: float, rng: np.random.Generator) -> int:
    """A whole number of places whose mean is `expected`: 3.6 gives 3 or 4."""
    whole = int(expected)
    return whole + int(rng.random() < expected - whole)
