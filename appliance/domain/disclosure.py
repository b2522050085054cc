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
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from appliance.domain.results import NOT_ENOUGH, CountArrays, CountRow
from appliance.domain.scoring import (QUALIFICATION_PRIOR, VOTE_PRIOR, Scores, half_width, score_proposal,
                                      shown_percent, smoothed_rate)
from appliance.domain.segments import OTHER
from appliance.domain.votes import OPTION_INDEX, OPTIONS, QUALIFICATIONS, VOTES

if TYPE_CHECKING:  # the language is given by the caller, with its catalogue
    from appliance.i18n import Speaker

Combo = tuple[str, ...]
POOL = "other"
STEP = 0.05  # segment rates are published rounded to 5 points
OVER_REPRESENTED = 1.5  # share of voters above 1.5 x share of audience
# Cell-key perturbation: noise -2..2 with these probabilities (most cells unchanged).
NOISE = ((-2, 0.05), (-1, 0.20), (0, 0.50), (1, 0.20), (2, 0.05))

__all__ = ["NOT_ENOUGH", "CountArrays", "RoundCounts", "publishable_view", "ResultsView"]


@dataclass(frozen=True)
class RoundCounts:
    """What a closed round keeps: counts by stored combination, voters and headcounts per combination."""

    k: int
    dimensions: tuple[str, ...]
    proposals: list[tuple[str, str]]  # accepted (id, text)
    counts: CountArrays | Sequence[CountRow]
    combo_voters: Mapping[str, int]
    headcounts: Mapping[str, int] = field(default_factory=dict)


class Figure(NamedTuple):
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
    audience_known: bool = True  # headcounts per group (not for an imported round): participation rates
    participation: float | None = None  # the round's voters / audience, as a segment's is published
    participation_at_least: bool = False


# --- The segment space: stored combinations, segment values, audience ----------------

class _Space:
    """The round's stored combinations, decoded, and each dimension's fixed list of segments."""

    def __init__(self, width: int, keys: Iterable[str]) -> None:
        self.index: dict[str, int] = {}  # stored key -> combination
        combos: dict[Combo, int] = {}
        for key in keys:
            if key not in self.index:
                self.index[key] = combos.setdefault(_combo(key, width), len(combos))
        self.combos = list(combos)
        # Each dimension's segments: every stored value, "other" last.
        self.values = []
        for dim in range(width):
            seen = {combo[dim] for combo in self.combos}
            self.values.append(sorted(seen - {OTHER}) + ([OTHER] if OTHER in seen else []))
        positions = [{value: i for i, value in enumerate(values)} for values in self.values]
        self.value_of = np.array([[positions[dim][combo[dim]] for combo in self.combos] for dim in range(width)],
                                 dtype=np.int64).reshape(width, len(self.combos))

    def vector(self, per_key: Mapping[str, int]) -> np.ndarray:
        """A count per stored key, as a count per combination."""
        out = np.zeros(len(self.combos), dtype=np.int64)
        for key, n in per_key.items():
            out[self.index[key]] += n
        return out

    def is_other(self, dim: int) -> np.ndarray:
        return np.array([value == OTHER for value in self.values[dim]])


def _combo(key: str, width: int) -> Combo:
    combo = tuple(json.loads(key)) if key else ()
    return combo if len(combo) == width else (OTHER,) * width


def _sum_by(index: np.ndarray, size: int, weights: np.ndarray) -> np.ndarray:
    """Sums of `weights` (one value or one row per entry) by `index`, for indexes 0..size-1."""
    if weights.ndim == 1:
        return np.bincount(index, weights=weights, minlength=size).astype(np.int64)
    return np.stack([_sum_by(index, size, weights[:, column]) for column in range(weights.shape[1])], axis=1)


# --- Groups: which segments of each dimension are shown, and the pool -------------

@dataclass
class _Tables:
    """Voters of many tables at once (the round, or each proposal), for the k, complement and overlap rules.

    sizes[d][t, v]: voters of table t in segment v of dimension d; joint[i, j][t, a, b]:
    voters in segment a of dimension i and b of dimension j.
    """

    sizes: list[np.ndarray]
    joint: dict[tuple[int, int], np.ndarray]

    @classmethod
    def of(cls, table: np.ndarray, combo: np.ndarray, voters: np.ndarray, tables: int, space: _Space) -> _Tables:
        width = len(space.values)
        widths = [len(values) for values in space.values]
        sizes = [_sum_by(table * widths[d] + space.value_of[d][combo], tables * widths[d], voters)
                 .reshape(tables, widths[d]) for d in range(width)]
        joint = {}
        for i in range(width):
            for j in range(i + 1, width):
                cell = (table * widths[i] + space.value_of[i][combo]) * widths[j] + space.value_of[j][combo]
                joint[i, j] = _sum_by(cell, tables * widths[i] * widths[j], voters).reshape(tables, widths[i], widths[j])
        return cls(sizes, joint)


Fails = Callable[[int, np.ndarray, np.ndarray], np.ndarray]  # (dim, tables, member masks) -> failing


def decide_groups(tables: _Tables, other: list[np.ndarray], k: int, allowed: list[np.ndarray] | None = None,
                  fails: Fails | None = None) -> list[np.ndarray]:
    """Apply the k, complement and overlap rules to every table and dimension: the shown masks.

    shown[d][t, v] is True when segment v of dimension d is shown in table t; the
    others form its pool. `allowed` limits the segments that may be shown (a
    proposal shows only what the round shows); `fails(dim, tables, masks)` may
    hide more (the homogeneity rule), and is asked of shown segments and of pools.
    Tables are independent: each follows the rules on its own.
    """
    count = tables.sizes[0].shape[0] if tables.sizes else 0
    shown = []
    for dim, sizes in enumerate(tables.sizes):
        mask = (sizes >= k) & ~other[dim]
        if allowed is not None:
            mask &= allowed[dim]
        if fails is not None:
            for v in np.flatnonzero(mask.any(axis=0)):
                single = np.zeros(sizes.shape, dtype=bool)
                single[:, v] = True
                rows = np.flatnonzero(mask[:, v])
                mask[rows, v] &= ~fails(dim, rows, single[rows])
        shown.append(mask)
    active = np.arange(count)
    while active.size:
        changed = np.zeros(active.size, dtype=bool)
        for dim in range(len(shown)):
            changed |= _complement(tables.sizes[dim], shown[dim], dim, active, k, fails)
        changed |= _overlap(tables, shown, active, k)
        active = active[changed]
    return shown


def _complement(sizes: np.ndarray, shown: np.ndarray, dim: int, active: np.ndarray, k: int,
                fails: Fails | None) -> np.ndarray:
    """Pools of 1..k-1 voters (or failing): their smallest shown segment joins them, repeatedly."""
    changed = np.zeros(active.size, dtype=bool)
    todo = np.arange(active.size)
    while todo.size:
        rows = active[todo]
        mask = shown[rows]
        pooled = (sizes[rows] * ~mask).sum(axis=1)
        bad = mask.any(axis=1) & (pooled > 0)
        small = pooled < k
        if fails is not None and (bad & ~small).any():
            check = np.flatnonzero(bad & ~small)
            small[check] = fails(dim, rows[check], ~mask[check])
        bad &= small
        todo = todo[bad]
        if todo.size:
            rows = active[todo]
            smallest = np.where(shown[rows], sizes[rows], np.iinfo(np.int64).max).argmin(axis=1)
            shown[rows, smallest] = False
            changed[todo] = True
    return changed


def _overlap(tables: _Tables, shown: list[np.ndarray], active: np.ndarray, k: int) -> np.ndarray:
    """Groups of two dimensions whose voters differ by 1..k-1 people: hide the smaller (one per table)."""
    changed = np.zeros(active.size, dtype=bool)
    if len(shown) < 2:
        return changed
    masks = [s[active] for s in shown]
    # Each dimension's groups: its segments (shown ones visible), then the pool (visible when some
    # segment is shown and the pool has voters); sizes, and each segment's group (a matrix).
    group_sizes, visible, membership = [], [], []
    for dim, mask in enumerate(masks):
        sizes = tables.sizes[dim][active]
        pooled = (sizes * ~mask).sum(axis=1)
        group_sizes.append(np.concatenate([np.where(mask, sizes, 0), pooled[:, None]], axis=1))
        visible.append(np.concatenate([mask, (mask.any(axis=1) & (pooled > 0))[:, None]], axis=1))
        member = np.zeros(mask.shape + (mask.shape[1] + 1,))
        rows, values = np.nonzero(mask)
        member[rows, values, values] = 1.0
        rows, values = np.nonzero(~mask)
        member[rows, values, mask.shape[1]] = 1.0
        membership.append(member)
    found = np.zeros(active.size, dtype=bool)
    for (i, j), joint in tables.joint.items():  # in the order (0, 1), (0, 2), (1, 2)...
        both = membership[i].transpose(0, 2, 1) @ joint[active] @ membership[j]
        difference = group_sizes[i][:, :, None] + group_sizes[j][:, None, :] - 2 * both
        violation = visible[i][:, :, None] & visible[j][:, None, :] & (difference > 0) & (difference < k)
        flat = violation.reshape(active.size, -1)
        rows = np.flatnonzero(flat.any(axis=1) & ~found)
        found[rows] = True
        for row, first in zip(rows.tolist(), flat[rows].argmax(axis=1).tolist()):
            a, b = divmod(first, violation.shape[2])
            dim, group = (i, a) if group_sizes[i][row, a] <= group_sizes[j][row, b] else (j, b)
            _hide(shown[dim], tables.sizes[dim], active[row], group)
    changed[found] = True
    return changed


def _hide(shown: np.ndarray, sizes: np.ndarray, table: int, group: int) -> None:
    """Hide a shown segment (into the pool); to hide the pool, its smallest shown segment joins it."""
    if group >= shown.shape[1] or not shown[table, group]:
        group = int(np.where(shown[table], sizes[table], np.iinfo(np.int64).max).argmin())
    shown[table, group] = False


# --- Perturbation and rounding ------------------------------------------------------

class Noise:
    """Cell-key perturbation: a small deterministic noise per cell, option and true count.

    Each stored combination has a secret 64-bit key derived from the round's
    noise seed (HMAC-SHA256); a cell's key is the sum of the keys of its
    stored combinations with voters (the cell-key method of national
    statistics offices), so two groups with the same voters get the same
    noise, which cannot then be averaged away by asking for both. Each
    proposal (and the round's participation) has a key of its own.
    """

    def __init__(self, seed: bytes) -> None:
        self.seed = seed

    def key(self, *label: object) -> int:
        message = "\0".join(str(part) for part in label).encode()
        return int.from_bytes(hmac.digest(self.seed, message, hashlib.sha256)[:8], "big")

    def combo_keys(self, combos: Sequence[Combo]) -> np.ndarray:
        return np.array([self.key("combination", json.dumps(list(combo))) for combo in combos], dtype=np.uint64)

    @staticmethod
    def draw(cells: np.ndarray, option: int, counts: np.ndarray) -> np.ndarray:
        """The noise (-2..2) of each cell's count of one option."""
        mixed = _mix(_mix(cells) ^ (np.uint64(option) << np.uint64(40)) ^ counts.astype(np.uint64))
        uniform = (mixed >> np.uint64(11)).astype(np.float64) / 2.0 ** 53
        edges = np.cumsum([p for _, p in NOISE])[:-1]
        return np.array([n for n, _ in NOISE], dtype=np.int64)[np.searchsorted(edges, uniform, side="right")]


_GOLDEN, _MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: every input bit moves every output bit."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def _perturb(cells: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Counts (one row per cell, OPTIONS columns) with cell-key noise, still consistent:
    a vote's qualifications never add up to more than the vote."""
    out = np.zeros_like(counts)
    for option, vote in enumerate(VOTES):
        n = counts[:, option]
        out[:, option] = np.where(n > 0, np.maximum(0, n + Noise.draw(cells, option, n)), 0)
        room = out[:, option].copy()
        for name in QUALIFICATIONS[vote]:
            column = OPTION_INDEX[name]
            n = counts[:, column]
            noisy = np.where(n > 0, np.minimum(room, np.maximum(0, n + Noise.draw(cells, column, n))), 0)
            out[:, column] = noisy
            room -= noisy
    return out


def to_step(value: float) -> float:
    """Rounded to the nearest 5 points."""
    return round(round(value / STEP) * STEP, 2)


STEPS = round(1 / STEP)  # 20 steps of 5 points from 0 to 1
# Every published segment figure is on the 5-point grid: one shared object per (value, low, high).
_FIGURES = [Figure(round(value * STEP, 2), round(low * STEP, 2), round(high * STEP, 2))
            for value in range(STEPS + 1) for low in range(STEPS + 1) for high in range(STEPS + 1)]


def _steps(counts: np.ndarray) -> np.ndarray:
    """Published rates of (perturbed) counts, one row per cell and a column per option, as figure codes.

    Rates are rounded to 5 points, their intervals outwards; a code indexes _FIGURES.
    """
    total = counts[:, :len(VOTES)].sum(axis=1)[:, None]
    priors = np.array([VOTE_PRIOR if o < len(VOTES) else QUALIFICATION_PRIOR for o in range(len(OPTIONS))])
    rate = smoothed_rate(counts, total, priors)
    half = half_width(rate, total)
    value = np.round(rate / STEP).astype(np.int64)
    low = np.maximum(0, np.floor((rate - half) / STEP + 1e-9)).astype(np.int64)
    high = np.minimum(STEPS, np.ceil((rate + half) / STEP - 1e-9)).astype(np.int64)
    return (value * (STEPS + 1) + low) * (STEPS + 1) + high


# --- The view -------------------------------------------------------------------

def publishable_view(data: RoundCounts, dimension: str | None, seed: bytes) -> ResultsView:
    """Everything that may be published about the round, broken down by `dimension` (or not)."""
    k, dims = data.k, data.dimensions
    chosen = dims.index(dimension) if dimension is not None else None
    main = dims[0] if dims else None
    counts = data.counts if isinstance(data.counts, CountArrays) else CountArrays.from_rows(data.counts)
    space = _Space(len(dims), [*data.combo_voters, *data.headcounts, *counts.combos])
    round_voters = space.vector(data.combo_voters)
    total = int(round_voters.sum())
    if total < k:
        hidden = [ProposalView(pid, text, None, None, None, None, None, []) for pid, text in data.proposals]
        return ResultsView(k, False, None, dims, dimension, main, [], hidden, bool(data.headcounts))

    # Each (proposal, combination) pair's counts of every option, and its voters.
    position = {pid: i for i, (pid, _) in enumerate(data.proposals)}
    proposal_of = np.array([position.get(pid, -1) for pid in counts.proposal_ids] or [0], dtype=np.int64)
    combo_of = np.array([space.index[key] for key in counts.combos] or [0], dtype=np.int64)
    entry_proposal = proposal_of[counts.proposal] if counts.n.size else np.zeros(0, dtype=np.int64)
    keep = entry_proposal >= 0
    pair_key = entry_proposal[keep] * len(space.combos) + combo_of[counts.combo[keep]]
    pairs, entry_pair = np.unique(pair_key, return_inverse=True)
    pair_counts = _sum_by(entry_pair * len(OPTIONS) + counts.option[keep], pairs.size * len(OPTIONS),
                          counts.n[keep]).reshape(pairs.size, len(OPTIONS))
    pair_proposal, pair_combo = np.divmod(pairs, len(space.combos))
    pair_voters = pair_counts[:, :len(VOTES)].sum(axis=1)

    # Overall figures, scores and ranks: proposals with at least k voters.
    totals = _sum_by(pair_proposal, len(data.proposals), pair_counts)
    overall: dict[int, Scores] = {}
    for i, row in enumerate(totals.tolist()):
        if sum(row[:len(VOTES)]) >= k:
            overall[i] = score_proposal(dict(zip(VOTES, row)), dict(zip(OPTIONS[len(VOTES):], row[len(VOTES):])))
    order = sorted(overall, key=lambda i: (-overall[i].top.low, data.proposals[i][0]))
    ranks = {i: rank for rank, i in enumerate(order, start=1)}

    breakdown = _Breakdown(space, data, round_voters, Noise(seed), pair_proposal, pair_combo, pair_counts,
                           pair_voters, np.array(sorted(overall), dtype=np.int64), chosen) if dims else None
    proposals = []
    for i, (pid, text) in enumerate(data.proposals):
        scores = overall.get(i)
        if scores is None:
            proposals.append(ProposalView(pid, text, None, None, None, None, None, []))
            continue
        proposals.append(ProposalView(
            pid, text, scores.votes, scores, ranks[i],
            breakdown.representative(i, scores) if breakdown else None,
            breakdown.consensus(i) if breakdown else None,
            breakdown.cells(i, chosen) if breakdown and chosen is not None else [],
        ))
    proposals.sort(key=lambda p: (p.rank is None, p.rank or 0, p.text))
    segments = breakdown.segments(chosen) if breakdown and chosen is not None else []
    audience = sum(data.headcounts.values())
    rate, at_least = participation_rate(total, total, audience, k) if audience > 0 else (None, False)
    return ResultsView(k, True, total, dims, dimension, main, segments, proposals, bool(data.headcounts),
                       None if rate is None else round(rate, 2), at_least)


@dataclass
class _Groups:
    """One dimension's groups for each scored proposal (one row each): its segments, then the pool (last slot)."""

    visible: np.ndarray  # [row, slot]: shown, with voters
    counts: np.ndarray  # [row, slot, option]: perturbed counts
    audience: np.ndarray  # [row, slot]


class _Breakdown:
    """What the segments of the main and the chosen dimension say about each scored proposal, and the round."""

    def __init__(self, space: _Space, data: RoundCounts, round_voters: np.ndarray, noise: Noise,
                 pair_proposal: np.ndarray, pair_combo: np.ndarray, pair_counts: np.ndarray,
                 pair_voters: np.ndarray, scored: np.ndarray, chosen: int | None) -> None:
        k, width = data.k, len(space.values)
        self.space, self.k, self.noise = space, k, noise
        other = [space.is_other(dim) for dim in range(width)]
        self.round_voters = round_voters
        self.headcounts = space.vector(data.headcounts)
        self.audience = [_sum_by(space.value_of[dim], len(space.values[dim]), self.headcounts)
                         for dim in range(width)]
        self.has_audience = bool(data.headcounts)

        # The round's groups, decided once for every dimension (what is hidden never depends on
        # the dimension asked for).
        combos = np.arange(len(space.combos))
        self.round_tables = _Tables.of(np.zeros_like(combos), combos, round_voters, 1, space)
        self.round_shown = decide_groups(self.round_tables, other, k)

        # Each scored proposal's groups, on its own voters: what the round pools stays pooled.
        self.row = {proposal: row for row, proposal in enumerate(scored.tolist())}
        row_of = np.full(len(data.proposals), -1, dtype=np.int64)
        row_of[scored] = np.arange(scored.size)
        mine = row_of[pair_proposal] >= 0
        table, combo, voters = row_of[pair_proposal[mine]], pair_combo[mine], pair_voters[mine]
        rows = scored.size
        tables = _Tables.of(table, combo, voters, rows, space)
        # Counts per segment: every option for the dimensions shown (main and chosen), votes for the others.
        shown_dims = {0, chosen} - {None}
        mine_counts = pair_counts[mine]
        by_segment = []
        for dim in range(width):
            options = mine_counts if dim in shown_dims else mine_counts[:, :len(VOTES)]
            by_segment.append(_sum_by(table * len(space.values[dim]) + space.value_of[dim][combo],
                                      rows * len(space.values[dim]), options)
                              .reshape(rows, len(space.values[dim]), options.shape[1]))
        audience, has_audience = self.audience, self.has_audience

        def homogeneous(dim: int, rows: np.ndarray, members: np.ndarray) -> np.ndarray:
            """Every voter of the group chose the same vote, and fewer than k of its audience did not vote."""
            votes = (by_segment[dim][rows, :, :len(VOTES)] * members[:, :, None]).sum(axis=1)
            voted = votes.sum(axis=1)
            unanimous = (voted > 0) & (votes.max(axis=1) >= voted)
            if has_audience:
                unanimous &= (members @ audience[dim]) - voted < k
            return unanimous

        allowed = [shown[0] for shown in self.round_shown]
        shown = decide_groups(tables, other, k, allowed, homogeneous)
        self.combo_keys = noise.combo_keys(space.combos)
        proposal_keys = np.array([noise.key("proposal", data.proposals[p][0]) for p in scored.tolist()],
                                 dtype=np.uint64)
        self.groups = {dim: self._groups(dim, shown[dim], tables.sizes[dim], by_segment[dim], table, combo, voters,
                                         proposal_keys) for dim in shown_dims}
        self.chosen_figures: dict[tuple[int, int], list[int]] = {}
        if chosen is not None:  # every option's published rate, in every shown group of the chosen dimension
            groups = self.groups[chosen]
            rows, slots = np.nonzero(groups.visible)
            codes = _steps(groups.counts[rows, slots]).tolist()
            self.chosen_figures = dict(zip(zip(rows.tolist(), slots.tolist()), codes))
        self._representative = self._representatives() if self.has_audience else None
        self._consensus = self._consensus_rates()

    def _groups(self, dim: int, shown: np.ndarray, sizes: np.ndarray, by_segment: np.ndarray, table: np.ndarray,
                combo: np.ndarray, voters: np.ndarray, proposal_keys: np.ndarray) -> _Groups:
        width = shown.shape[1]
        hidden = ~shown
        pooled = (sizes * hidden).sum(axis=1)
        # with no segment shown the pool is the whole proposal: nothing to break down
        visible = np.concatenate([shown, (shown.any(axis=1) & (pooled > 0))[:, None]], axis=1)
        counts = np.concatenate([by_segment * shown[:, :, None], (by_segment * hidden[:, :, None]).sum(axis=1)[:, None]],
                                axis=1)
        audience = np.concatenate([np.where(shown, self.audience[dim][None, :], 0),
                                   (hidden @ self.audience[dim])[:, None]], axis=1)
        # Cell keys: the keys of the stored combinations with voters in the group, summed.
        value = self.space.value_of[dim][combo]
        slot = np.where(shown[table, value], value, width)
        keys = np.zeros(visible.shape, dtype=np.uint64)
        voted = voters > 0
        np.add.at(keys, (table[voted], slot[voted]), self.combo_keys[combo[voted]])
        cells = keys ^ proposal_keys[:, None]
        perturbed = np.zeros_like(counts)
        perturbed[visible] = _perturb(cells[visible], counts[visible])
        return _Groups(visible, perturbed, audience)

    def _representatives(self) -> list[dict[str, Figure] | None]:
        """Post-stratified agree / disagree / neutral of every row: each shown group weighted by its audience share.

        estimate = sum_g W_g r_g with W_g = audience_g / audience; half-width =
        sqrt(sum_g (W_g h_g)^2), h_g half the width of the group's interval (the groups
        are independent samples). r_g and its interval are the group's published figures,
        on the 5-point grid: an estimate computed from finer rates would let its
        decimals give back the perturbed counts that the grid withholds. Needs groups
        that cover some of the audience.
        """
        if self.headcounts.sum() <= 0:
            return [None] * len(self.row)
        groups = self.groups[0]
        audience = np.where(groups.visible, groups.audience, 0)
        covered = audience.sum(axis=1)
        weight = audience / np.maximum(covered, 1)[:, None]
        rows, slots = np.nonzero(groups.visible)
        codes = np.zeros(groups.visible.shape + (len(OPTIONS),), dtype=np.int64)
        codes[rows, slots] = _steps(groups.counts[rows, slots])
        codes = codes[:, :, :len(VOTES)]
        side = STEPS + 1
        rate = codes // side ** 2 * STEP
        spread = (codes % side - codes // side % side) * STEP / 2  # (high - low) / 2
        figures = []
        for option in range(len(VOTES)):
            value = (weight * rate[:, :, option]).sum(axis=1)
            half = np.sqrt(((weight * spread[:, :, option]) ** 2).sum(axis=1))
            figures.append(zip(value.tolist(), (value - half).tolist(), (value + half).tolist()))
        out: list[dict[str, Figure] | None] = []
        for row, per_vote in enumerate(zip(*figures)):
            if covered[row] <= 0:
                out.append(None)
                continue
            out.append({vote: Figure(round(value, 2), round(max(0.0, low), 2), round(min(1.0, high), 2))
                        for vote, (value, low, high) in zip(VOTES, per_vote)})
        return out

    def representative(self, proposal: int, overall: Scores) -> dict[str, Figure] | None:
        """The post-stratified estimate; without a shown breakdown, one stratum: the proposal's own rates."""
        if self._representative is None:
            return None
        row = self.row[proposal]
        if not self.groups[0].visible[row].any():
            return {vote: Figure(round(overall.rates[vote].value, 2), round(max(0.0, overall.rates[vote].low), 2),
                                 round(min(1.0, overall.rates[vote].high), 2)) for vote in VOTES}
        return self._representative[row]

    def _consensus_rates(self) -> list[float | None]:
        """The lowest agree rate over the shown groups of the main dimension; None with fewer than two.

        The pooled "other groups together" counts as one: it is shown beside the segments, and when it
        agrees less than any of them, so does at least one of the groups it pools.
        """
        groups = self.groups[0]
        segments = groups.visible
        counts = groups.counts
        rate = smoothed_rate(counts[:, :, OPTION_INDEX["agree"]], counts[:, :, :len(VOTES)].sum(axis=2), VOTE_PRIOR)
        lowest = np.where(segments, np.round(rate / STEP), STEPS + 1).min(axis=1)
        return [_FIGURES[int(steps) * (STEPS + 1) ** 2].value if shown >= 2 else None
                for steps, shown in zip(lowest.tolist(), segments.sum(axis=1).tolist())]

    def consensus(self, proposal: int) -> float | None:
        return self._consensus[self.row[proposal]]

    def cells(self, proposal: int, chosen: int) -> list[Cell]:
        """A cell for every segment of the chosen dimension (hidden and empty alike), then the pool."""
        row, names = self.row[proposal], self.space.values[chosen]
        figures = self.chosen_figures
        cells = []
        for slot, name in enumerate(names):
            codes = figures.get((row, slot))
            if codes is None and name == OTHER:
                continue
            cells.append(Cell(name, False, None if codes is None else dict(zip(OPTIONS, map(_FIGURES.__getitem__,
                                                                                              codes)))))
        codes = figures.get((row, len(names)))
        if codes is not None:
            cells.append(Cell(POOL, True, dict(zip(OPTIONS, map(_FIGURES.__getitem__, codes)))))
        return cells

    def segments(self, dim: int) -> list[Segment]:
        """Round-wide figures of each segment of the chosen dimension: participation, over-representation."""
        k, names = self.k, self.space.values[dim]
        shown = self.round_shown[dim][0]
        sizes = self.round_tables.sizes[dim][0]
        total = int(self.round_voters.sum())
        audience_total = int(self.headcounts.sum())
        pooled = int(sizes[~shown].sum())
        visible = [(v, False) for v, name in enumerate(names) if shown[v]]
        if shown.any() and pooled > 0:
            visible.append((None, True))
        out = [Segment(name, False, False, None, False, None) for v, name in enumerate(names)
               if not shown[v] and name != OTHER]
        participation = self.noise.key("participation")
        for v, pooled_group in visible:
            members = ~shown if pooled_group else np.arange(len(names)) == v
            in_group = members[self.space.value_of[dim]]
            voters = int(self.round_voters[in_group].sum())
            cell = np.array([int(self.combo_keys[in_group & (self.round_voters > 0)].sum(dtype=np.uint64))
                             ^ participation], dtype=np.uint64)
            perturbed = max(1, voters + int(Noise.draw(cell, len(OPTIONS), np.array([voters]))[0]))
            audience = int(self.audience[dim][members].sum()) if self.has_audience else 0
            name = POOL if pooled_group else names[v]
            if audience <= 0:
                out.append(Segment(name, pooled_group, True, None, False, None))
                continue
            rate, at_least = participation_rate(voters, perturbed, audience, k)
            over = (perturbed / total) > OVER_REPRESENTED * (audience / audience_total)
            out.append(Segment(name, pooled_group, True, round(rate, 2), at_least, over))
        order = {name: i for i, name in enumerate(names + [POOL])}
        out.sort(key=lambda s: (s.pooled, order.get(s.name, 0)))
        return out


def participation_rate(voters: int, shown_voters: int, audience: int, k: int) -> tuple[float, bool]:
    """Voters / audience as published: a 5-point step, "at least" a ceiling when fewer than k did not vote.

    `shown_voters` is the count the rate is computed from (a segment's perturbed count; the round's own).
    """
    # the largest 5-point step at or below 1 - k / audience, in integers (no float rounding down a step)
    ceiling = max(0, (audience - k) * STEPS // audience) / STEPS
    if audience - voters < k:  # fewer than k did not vote: never say how many
        return ceiling, True
    # at least k did not vote: never rounded up to "everyone" or past what the ceiling says
    return min(to_step(shown_voters / audience), ceiling), False


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


_BAND = re.compile(r"^(?:fewer than (\d+)|(\d+) to (\d+)|(\d+) or more)$")


def percent_said(say: Speaker, rate: float) -> str:
    """A proposal's rate as every page and message shows it (scoring.shown_percent), the language's way."""
    return say.percent(shown_percent(rate) / 100)


def band_said(say: Speaker, band: str) -> str:
    """A band as participation_band writes it (the API's words), in the speaker's language and numbers."""
    match = _BAND.match(band)
    if match is None:
        return band
    fewer, low, high, more = (None if group is None else say.number(int(group)) for group in match.groups())
    if fewer is not None:
        return say.gettext("fewer than %(k)s", k=fewer)
    if low is not None:
        return say.gettext("%(low)s to %(high)s", low=low, high=high)
    return say.gettext("%(low)s or more", low=more)
