"""The disclosure engine: the publishable view of a closed round (ARCHITECTURE.md, Disclosure control).

One function, `publishable_view`, turns the counts a closed round keeps
(storage rule 5) into everything that may be shown: the results page, the
API, the CSV export and the digests all render its result and nothing else.
The rules, in the order they are applied:

1. Distinct voters are counted, not votes. The round is shown only with at
   least k voters; a proposal's overall figures only with at least k voters.
2. Segments, for every dimension at once (so that what is hidden does not
   depend on the dimension asked for): a segment is shown with at least k
   voters. Hidden segments, and the stored "other" values of the coarsening,
   are pooled into one "other" group that must hold at least k voters, or
   else the smallest shown segment joins it, repeatedly (complement rule).
3. Overlap rule: two shown groups of different dimensions whose voter sets
   differ by 1 to k-1 people: the smaller is hidden (a pool grows instead).
4. The same rules per proposal, on the voters of that proposal (a
   proposal-by-segment cell needs k voters of that segment on that proposal),
   plus the homogeneity rule: a cell where every voter chose the same option is
   shown only if at least k members of its audience did not vote on it
   (without headcounts that cannot be known, so such cells are hidden).
5. Shown cells get cell-key perturbation: each non-zero count moves by a small
   deterministic amount (-2..2, most often 0) keyed on the round's noise seed,
   the cell and its true count, so that asking twice gives the same figure; a
   vote's qualifications never add up to more than the vote.
   Segment figures are rates rounded to 5 points, never counts.
6. Hidden and empty look the same: "not enough responses".

Everything published is derived from cells that passed: overall figures from
proposals with k voters, segment rates and participation from shown groups,
representative estimates from the shown groups of the main dimension
(the pool included), cross-segment consensus from shown segments.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from appliance.domain.results import NOT_ENOUGH, CountRow
from appliance.domain.scoring import (
    QUALIFICATION_PRIOR,
    VOTE_PRIOR,
    Estimate,
    Scores,
    agresti_coull,
    score_proposal,
    smoothed_rate,
)
from appliance.domain.segments import OTHER
from appliance.domain.votes import QUALIFICATIONS

Combo = tuple[str, ...]
VOTES = tuple(QUALIFICATIONS)
OPTIONS = VOTES + tuple(q for names in QUALIFICATIONS.values() for q in names)
POOL = "other"
STEP = 0.05  # segment rates are published rounded to 5 points
OVER_REPRESENTED = 1.5  # share of voters above 1.5 x share of audience
# Cell-key perturbation: noise -2..2 with these probabilities (most cells unchanged).
NOISE = ((-2, 0.05), (-1, 0.20), (0, 0.50), (1, 0.20), (2, 0.05))

__all__ = ["NOT_ENOUGH", "RoundCounts", "publishable_view", "ResultsView"]


@dataclass(frozen=True)
class RoundCounts:
    """What a closed round keeps: counts by stored combination, voters and headcounts per combination."""

    k: int
    dimensions: tuple[str, ...]
    proposals: list[tuple[str, str]]  # accepted (id, text)
    counts: list[CountRow]
    combo_voters: Mapping[str, int]
    headcounts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Figure:
    """A published rate and its ~95% interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Cell:
    """One proposal in one group of the chosen dimension; `rates` is None when hidden."""

    segment: str
    pooled: bool
    rates: dict[str, Figure] | None


@dataclass(frozen=True)
class Segment:
    """One group of the chosen dimension, round-wide."""

    name: str
    pooled: bool  # the "other" group: hidden segments together
    shown: bool
    participation: float | None  # voters / audience, rounded to 5 points
    participation_at_least: bool  # top-coded: fewer than k of its audience did not vote
    over_represented: bool | None


@dataclass(frozen=True)
class ProposalView:
    id: str
    text: str
    voters: int | None
    scores: Scores | None
    rank: int | None
    representative: dict[str, Figure] | None  # agree / disagree / neutral, weighted by audience
    cross_segment_consensus: float | None  # lowest agree rate over shown segments of the main dimension
    cells: list[Cell]


@dataclass(frozen=True)
class ResultsView:
    k: int
    shown: bool
    voters: int | None
    dimensions: tuple[str, ...]
    dimension: str | None
    main_dimension: str | None
    segments: list[Segment]
    proposals: list[ProposalView]


# --- Groups: which segments of each dimension are shown, and the pool -----------

@dataclass
class Groups:
    """One dimension's shown segments and its pool ("other"), as sets of segment values."""

    shown: list[str]
    pool: set[str]


class Table:
    """Voters per stored combination, with the sums the rules need computed once."""

    def __init__(self, voters: Mapping[Combo, int]) -> None:
        self.voters = voters
        self.sizes: dict[tuple[int, str], int] = defaultdict(int)
        for combo, n in voters.items():
            for dim, value in enumerate(combo):
                self.sizes[dim, value] += n
        self._joint: dict[tuple[int, int], dict[tuple[str, str], int]] = {}

    def size(self, dim: int, values: Collection[str]) -> int:
        if len(values) == 1:
            return self.sizes.get((dim, next(iter(values))), 0)
        return sum(self.sizes.get((dim, v), 0) for v in values)

    def both(self, i: int, first: set[str], j: int, second: set[str]) -> int:
        """Voters in `first` of dimension i and in `second` of dimension j."""
        joint = self._joint.get((i, j))
        if joint is None:
            joint = self._joint[i, j] = defaultdict(int)
            for combo, n in self.voters.items():
                joint[combo[i], combo[j]] += n
        return sum(joint.get((a, b), 0) for a in first for b in second)


def decide_groups(table: Table, values: list[list[str]], k: int, fails: Callable[[int, set[str]], bool] | None = None,
                  allowed: list[set[str]] | None = None) -> list[Groups]:
    """Apply the k, complement and overlap rules to every dimension of `table`.

    `allowed` limits the segments that may be shown (a proposal shows only what
    the round shows); `fails(dim, values)` may hide more (the homogeneity rule),
    and is asked of shown segments and of the pool.
    """
    fails = fails or (lambda dim, group: False)
    groups = []
    for dim, names in enumerate(values):
        shown = [v for v in names if v != OTHER and (allowed is None or v in allowed[dim])
                 and table.size(dim, [v]) >= k and not fails(dim, {v})]
        groups.append(Groups(shown, {v for v in names if v not in shown}))
    changed = True
    while changed:
        changed = False
        for dim, group in enumerate(groups):
            changed |= _complement(table, dim, group, k, fails)
        changed |= _overlap(table, groups, k)
    return groups


def _complement(table: Table, dim: int, group: Groups, k: int, fails: Callable[[int, set[str]], bool]) -> bool:
    """Pool too small (1..k-1 voters) or failing: the smallest shown segment joins it. True if it changed."""
    changed = False
    while group.shown:
        pooled = table.size(dim, group.pool)
        if pooled == 0 or (pooled >= k and not fails(dim, group.pool)):
            break
        smallest = min(group.shown, key=lambda v: (table.size(dim, [v]), v))
        group.shown.remove(smallest)
        group.pool.add(smallest)
        changed = True
    return changed


def _overlap(table: Table, groups: list[Groups], k: int) -> bool:
    """Groups of two dimensions whose voters differ by 1..k-1 people: hide the smaller. True if it changed."""
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            for first in _visible(table, i, groups[i]):
                size_first = table.size(i, first)
                for second in _visible(table, j, groups[j]):
                    size_second = table.size(j, second)
                    if abs(size_first - size_second) >= k:
                        continue  # they differ by at least that many
                    difference = size_first + size_second - 2 * table.both(i, first, j, second)
                    if 0 < difference < k:
                        dim, values = (i, first) if (size_first, i) <= (size_second, j) else (j, second)
                        _hide(table, dim, groups[dim], values)
                        return True
    return False


def _visible(table: Table, dim: int, group: Groups) -> list[set[str]]:
    """The groups of a dimension that show figures: each shown segment, and the pool when it has voters."""
    visible = [{v} for v in group.shown]
    if group.shown and table.size(dim, group.pool) > 0:
        visible.append(set(group.pool))
    return visible


def _hide(table: Table, dim: int, group: Groups, values: set[str]) -> None:
    """Hide a shown segment (into the pool); to hide the pool, its smallest shown segment joins it."""
    if values == group.pool or not values <= set(group.shown):
        values = {min(group.shown, key=lambda v: (table.size(dim, [v]), v))}
    for value in values:
        group.shown.remove(value)
        group.pool.add(value)


# --- Perturbation and rounding ------------------------------------------------------

def cell_noise(seed: bytes, *cell: object) -> int:
    """A small deterministic noise for one cell count: the same cell and count always get the same noise."""
    digest = hmac.digest(seed, "\0".join(str(part) for part in cell).encode(), hashlib.sha256)
    draw = int.from_bytes(digest[:8], "big") / 2 ** 64
    for noise, probability in NOISE:
        if draw < probability:
            return noise
        draw -= probability
    return 0


def to_step(value: float) -> float:
    """Rounded to the nearest 5 points."""
    return round(round(value / STEP) * STEP, 2)


def _outward(low: float, high: float) -> tuple[float, float]:
    return (max(0.0, math.floor(low / STEP + 1e-9) * STEP), min(1.0, math.ceil(high / STEP - 1e-9) * STEP))


def _published_rates(counts: Mapping[str, int]) -> dict[str, Figure]:
    """Rates of (perturbed) counts, rounded to 5 points, intervals rounded outwards."""
    total = sum(counts.get(v, 0) for v in VOTES)
    figures = {}
    for option in OPTIONS:
        prior = VOTE_PRIOR if option in VOTES else QUALIFICATION_PRIOR
        rate = smoothed_rate(counts.get(option, 0), total, prior)
        half = agresti_coull(rate, total).half_width
        low, high = _outward(rate - half, rate + half)
        figures[option] = Figure(to_step(rate), round(low, 2), round(high, 2))
    return figures


# --- The view -------------------------------------------------------------------

def publishable_view(data: RoundCounts, dimension: str | None, seed: bytes) -> ResultsView:
    """Everything that may be published about the round, broken down by `dimension` (or not)."""
    k, dims = data.k, data.dimensions
    chosen = dims.index(dimension) if dimension is not None else None
    main = dims[0] if dims else None
    combo_voters = {_combo(c, len(dims)): n for c, n in data.combo_voters.items()}
    headcounts = {_combo(c, len(dims)): n for c, n in data.headcounts.items()}
    total = sum(combo_voters.values())
    if total < k:
        hidden = [ProposalView(pid, text, None, None, None, None, None, []) for pid, text in data.proposals]
        return ResultsView(k, False, None, dims, dimension, main, [], hidden)

    votes: dict[str, dict[Combo, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    decoded: dict[str, Combo] = {}
    for row in data.counts:
        combo = decoded.get(row.combo)
        if combo is None:
            combo = decoded[row.combo] = _combo(row.combo, len(dims))
        cell = votes[row.proposal_id][combo]
        cell[row.vote] += row.n
        if row.qualification:
            cell[row.qualification] += row.n
    values = _segment_values(dims, combo_voters, headcounts)
    round_table = Table(combo_voters)
    round_groups = decide_groups(round_table, values, k)

    overall = {}
    for pid, _ in data.proposals:
        by_combo = votes.get(pid, {})
        totals: dict[str, int] = defaultdict(int)
        for counts in by_combo.values():
            for option, n in counts.items():
                totals[option] += n
        if sum(totals[v] for v in VOTES) >= k:
            overall[pid] = score_proposal({v: totals[v] for v in VOTES},
                                          {q: n for q, n in totals.items() if q not in VOTES})
    order = sorted(overall, key=lambda pid: (-overall[pid].top.low, pid))
    ranks = {pid: rank for rank, pid in enumerate(order, start=1)}

    proposals = []
    audience = Table(headcounts) if headcounts else None
    needed = {0, chosen} - {None} if dims else set()  # the main dimension (representativeness) and the chosen one
    for pid, text in data.proposals:
        scores = overall.get(pid)
        if scores is None:
            proposals.append(ProposalView(pid, text, None, None, None, None, None, []))
            continue
        by_value = _ByValue(votes.get(pid, {}), len(dims))
        groups = _proposal_groups(by_value, round_groups, values, audience, k)
        cells_by_dim = {dim: _cells(seed, pid, dim, by_value, groups[dim]) for dim in needed}
        proposals.append(ProposalView(
            pid, text, scores.votes, scores, ranks[pid],
            _representative(cells_by_dim[0], headcounts, scores) if dims else None,
            _consensus(cells_by_dim[0]) if dims else None,
            _cells_out(values[chosen], cells_by_dim[chosen]) if chosen is not None else [],
        ))
    proposals.sort(key=lambda p: (p.rank is None, p.rank or 0, p.text))
    segments = (_segments_out(seed, chosen, values[chosen], round_groups[chosen], round_table, audience, k)
                if chosen is not None else [])
    return ResultsView(k, True, total, dims, dimension, main, segments, proposals)


def _combo(key: str, width: int) -> Combo:
    combo = tuple(json.loads(key)) if key else ()
    return combo if len(combo) == width else (OTHER,) * width


def _segment_values(dims: tuple[str, ...], *tables: Mapping[Combo, int]) -> list[list[str]]:
    """Each dimension's fixed list of segments: every stored value, "other" last."""
    result = []
    for dim in range(len(dims)):
        seen = {combo[dim] for table in tables for combo in table}
        result.append(sorted(seen - {OTHER}) + ([OTHER] if OTHER in seen else []))
    return result


@dataclass(frozen=True)
class _Group:
    values: frozenset[str]
    pooled: bool
    counts: dict[str, int]  # true counts of votes and qualifications
    voters: int
    audience: int | None


class _ByValue:
    """One proposal's counts per dimension and segment value, summed once."""

    def __init__(self, by_combo: Mapping[Combo, Mapping[str, int]], width: int) -> None:
        self.voters = {combo: sum(counts.get(v, 0) for v in VOTES) for combo, counts in by_combo.items()}
        self.counts: list[dict[str, dict[str, int]]] = [defaultdict(lambda: defaultdict(int)) for _ in range(width)]
        self.members: list[dict[str, list[Combo]]] = [defaultdict(list) for _ in range(width)]
        for combo, counts in by_combo.items():
            voted = self.voters[combo] > 0
            for dim, value in enumerate(combo):
                totals = self.counts[dim][value]
                for option, n in counts.items():
                    totals[option] += n
                if voted:
                    self.members[dim][value].append(combo)

    def sum(self, dim: int, group: Iterable[str]) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for value in group:
            for option, n in self.counts[dim].get(value, {}).items():
                totals[option] += n
        return totals

    def cell_key(self, dim: int, group: Iterable[str]) -> str:
        """Who is in a cell: its stored combinations with voters."""
        return json.dumps(sorted(c for value in group for c in self.members[dim].get(value, ())))


def _proposal_groups(by_value: _ByValue, round_groups: list[Groups], values: list[list[str]],
                     audience: Table | None, k: int) -> list[list[_Group]]:
    """Per dimension, the proposal's shown groups (segments and pool), after every rule."""
    table = Table(by_value.voters)

    def homogeneous(dim: int, group: set[str]) -> bool:
        counts = by_value.sum(dim, group)
        voters = sum(counts.get(v, 0) for v in VOTES)
        if voters == 0 or max(counts.get(v, 0) for v in VOTES) < voters:
            return False
        return audience is None or audience.size(dim, group) - voters < k

    # What the round pools stays pooled; what it shows is decided again on this proposal's voters.
    groups = decide_groups(table, values, k, homogeneous, [set(g.shown) for g in round_groups])
    result = []
    for dim, group in enumerate(groups):
        members = [frozenset({v}) for v in group.shown]
        if group.shown:  # with no segment shown the pool is the whole proposal: nothing to break down
            members.append(frozenset(group.pool))
        result.append([
            _Group(values_, bool(group.shown) and values_ == frozenset(group.pool),
                   by_value.sum(dim, values_), table.size(dim, values_),
                   audience.size(dim, values_) if audience else None)
            for values_ in members if table.size(dim, values_) > 0
        ])
    return result


@dataclass(frozen=True)
class _Shown:
    group: _Group
    perturbed: dict[str, int]
    rates: dict[str, Figure]


def _cells(seed: bytes, pid: str, dim: int, by_value: _ByValue, groups: list[_Group]) -> list[_Shown]:
    shown = []
    for group in groups:
        # Keyed on who is in the cell (its stored combinations with voters), not on its name: two
        # groups of different dimensions with the same voters get the same noise, which cannot
        # then be averaged away by asking for both.
        perturbed = _perturb(seed, (pid, by_value.cell_key(dim, group.values)), group.counts)
        shown.append(_Shown(group, perturbed, _published_rates(perturbed)))
    return shown


def _perturb(seed: bytes, cell: tuple, counts: Mapping[str, int]) -> dict[str, int]:
    """Counts with cell-key noise, still consistent: a vote's qualifications never exceed the vote."""
    perturbed = {vote: max(0, n + cell_noise(seed, *cell, vote, n)) if (n := counts.get(vote, 0)) else 0
                 for vote in VOTES}
    for vote, names in QUALIFICATIONS.items():
        room = perturbed[vote]
        for name in names:
            n = counts.get(name, 0)
            noisy = min(room, max(0, n + cell_noise(seed, *cell, name, n))) if n else 0
            perturbed[name] = noisy
            room -= noisy
    return perturbed


def _cells_out(names: list[str], shown: list[_Shown]) -> list[Cell]:
    """A cell for every segment of the dimension (hidden and empty alike), then the pool."""
    by_name = {next(iter(s.group.values)): s for s in shown if not s.group.pooled}
    cells = [Cell(name, False, by_name[name].rates if name in by_name else None)
             for name in names if name != OTHER or name in by_name]
    cells += [Cell(POOL, True, s.rates) for s in shown if s.group.pooled]
    return cells


def _representative(shown: list[_Shown], headcounts: Mapping[Combo, int], overall: Scores) -> dict[str, Figure] | None:
    """Post-stratified agree / disagree / neutral: each shown group weighted by its share of the audience.

    estimate = sum_g W_g r_g with W_g = audience_g / audience; half-width =
    sqrt(sum_g (W_g h_g)^2), h_g the group's Agresti-Coull half-width (the groups
    are independent samples). Needs headcounts, and groups that cover the audience.
    """
    audience = sum(headcounts.values())
    if not headcounts or audience <= 0:
        return None
    if not shown:  # no breakdown passed the rules: one stratum, the whole audience
        return {vote: Figure(round(overall.rates[vote].value, 2), round(max(0.0, overall.rates[vote].low), 2),
                             round(min(1.0, overall.rates[vote].high), 2)) for vote in VOTES}
    covered = sum(s.group.audience or 0 for s in shown)
    if covered <= 0:
        return None
    estimates = {}
    for vote in VOTES:
        value, variance = 0.0, 0.0
        for s in shown:
            weight = (s.group.audience or 0) / covered
            n = sum(s.perturbed.get(v, 0) for v in VOTES)
            rate = smoothed_rate(s.perturbed.get(vote, 0), n, VOTE_PRIOR)
            value += weight * rate
            variance += (weight * agresti_coull(rate, n).half_width) ** 2
        half = math.sqrt(variance)
        estimates[vote] = Figure(round(value, 2), round(max(0.0, value - half), 2), round(min(1.0, value + half), 2))
    return estimates


def _consensus(shown: list[_Shown]) -> float | None:
    """The lowest agree rate over the shown segments (not the pool); None with fewer than two."""
    rates = [s.rates["agree"].value for s in shown if not s.group.pooled]
    return min(rates) if len(rates) >= 2 else None


def _segments_out(seed: bytes, dim: int, names: list[str], groups: Groups, table: Table,
                  audience_table: Table | None, k: int) -> list[Segment]:
    """Round-wide figures of each segment of the chosen dimension: participation, over-representation."""
    total = sum(table.voters.values())
    audience_total = sum(audience_table.voters.values()) if audience_table else 0
    out = []
    visible = [(v, False) for v in names if v in groups.shown]
    if groups.shown and table.size(dim, groups.pool) > 0:
        visible.append((POOL, True))
    shown_names = {name for name, _ in visible}
    for name in names:
        if name not in shown_names and name != OTHER:
            out.append(Segment(name, False, False, None, False, None))
    for name, pooled in visible:
        values = groups.pool if pooled else {name}
        voters = table.size(dim, values)
        members = sorted(combo for combo, n in table.voters.items() if combo[dim] in values and n)
        perturbed = max(1, voters + cell_noise(seed, "segment", json.dumps(members), voters))
        audience = audience_table.size(dim, values) if audience_table else 0
        if audience <= 0:
            out.append(Segment(name, pooled, True, None, False, None))
            continue
        rate, at_least = perturbed / audience, False
        if audience - voters < k:  # fewer than k did not vote: never say how many
            # the largest 5-point step below 1 - k / audience, in integers (no float rounding down a step)
            rate, at_least = max(0, (audience - k) * 20 // audience) / 20, True
        over = (perturbed / total) > OVER_REPRESENTED * (audience / audience_total)
        out.append(Segment(name, pooled, True, round(min(1.0, to_step(rate) if not at_least else rate), 2),
                           at_least, over))
    order = {name: i for i, name in enumerate(names + [POOL])}
    out.sort(key=lambda s: (s.pooled, order.get(s.name, 0)))
    return out


BAND_EDGES = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000)


def participation_band(voters: int, k: int) -> str:
    """How many took part, as a band ("50 to 99"); fewer than k is one band, and no band is a single number."""
    if voters < k:
        return f"fewer than {k}"
    low = k
    for edge in BAND_EDGES:
        if edge <= low + 1:  # k at or just below this edge: the band would hold one number or none
            continue
        if voters < edge:
            return f"{low} to {edge - 1}"
        low = edge
    return f"{low} or more"
