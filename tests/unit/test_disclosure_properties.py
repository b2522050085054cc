"""Properties of the disclosure engine over random organisations (ARCHITECTURE.md, Disclosure control).

An organisation is drawn as groups of people sharing segment values along 1 to
3 dimensions; each group has its own turnout and way of voting on each
proposal. The closed round is stored exactly as close leaves it (coarsening
map of the audience, counts per proposal x stored combination x vote x
qualification, distinct voters and headcounts per stored combination). Every
check recomputes who is behind a published figure from the people themselves,
never from the engine's internals: a shown segment covers the people whose
stored value is that segment; the pool ("other") covers everyone whose value
is not shown.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, replace
from itertools import combinations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appliance.domain.disclosure import ResultsView, RoundCounts, Segment, publishable_view
from appliance.domain.results import CountRow
from appliance.domain.segments import OTHER, build_coarsening, combo_key, raw_combo
from appliance.domain.votes import QUALIFICATIONS

POOL = "other"
VALUES = {
    "department": ("Finance", "IT", "Sales", "Legal", ""),
    "site": ("Lyon", "Paris", "Nantes", ""),
    "grade": ("A", "B", ""),
}
STYLES = ("mixed", "mixed", "agree", "disagree", "neutral", "mostly_agree", "none")
SEED = b"property-noise-seed"
PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Voter:
    stored: tuple[str, ...]           # stored combination (after coarsening)
    votes: dict[str, str]             # proposal -> vote (the qualification is only in the counts)


@dataclass(frozen=True)
class Organisation:
    k: int
    dims: tuple[str, ...]
    proposals: tuple[str, ...]
    people: tuple[Voter, ...]
    data: RoundCounts

    # -- true memberships, from the people ----------------------------------------------------
    def voters(self, pid: str | None = None) -> frozenset[int]:
        """Everyone who voted in the round (pid None), or on one proposal."""
        return frozenset(i for i, p in enumerate(self.people) if (p.votes if pid is None else pid in p.votes))

    def members(self, dim: int, values: set[str]) -> frozenset[int]:
        """The audience whose stored value along `dim` is one of `values`."""
        return frozenset(i for i, p in enumerate(self.people) if p.stored[dim] in values)

    def values(self, dim: int) -> set[str]:
        return {p.stored[dim] for p in self.people}


Ballot = dict[str, tuple[str, str]]  # proposal -> (vote, qualification ('' for none))


def organisation(k: int, dims: tuple[str, ...], proposals: tuple[str, ...], raws: list[tuple[str, ...]],
                 ballots: list[Ballot]) -> Organisation:
    """The closed round of these people (raw combinations, ballots), stored as close stores it."""
    mapping = build_coarsening(raws, k)
    people = tuple(Voter(mapping[raw], {pid: vote for pid, (vote, _) in mine.items()})
                   for raw, mine in zip(raws, ballots))
    counts: Counter[tuple[str, str, str, str]] = Counter()
    combo_voters: Counter[str] = Counter()
    headcounts: Counter[str] = Counter()
    for raw, mine in zip(raws, ballots):
        key = combo_key(mapping[raw])
        headcounts[key] += 1
        if mine:
            combo_voters[key] += 1  # once, however many proposals
        for pid, (vote, qualification) in mine.items():
            counts[pid, key, vote, qualification] += 1
    data = RoundCounts(k, dims, [(pid, f"Proposal {pid}") for pid in proposals],
                       [CountRow(pid, combo, vote, qualification, n)
                        for (pid, combo, vote, qualification), n in counts.items()],
                       dict(combo_voters), dict(headcounts))
    return Organisation(k, dims, proposals, people, data)


@st.composite
def organisations(draw: st.DrawFn) -> Organisation:
    k = draw(st.integers(min_value=5, max_value=7))
    dims = tuple(draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=3, unique=True)))
    proposals = tuple(f"p{i}" for i in range(1, draw(st.integers(min_value=1, max_value=4)) + 1))
    group = st.tuples(
        st.fixed_dictionaries({d: st.sampled_from(VALUES[d]) for d in dims}),
        st.integers(min_value=1, max_value=30),                     # people
        st.sampled_from([0, 10, 30, 60, 90, 100]),                   # percent of them who take part
        st.lists(st.sampled_from(STYLES), min_size=len(proposals), max_size=len(proposals)),
        st.sampled_from([50, 80, 100]),                              # percent of participants on each proposal
        st.booleans(),                                               # all give the same qualification
    )
    groups = draw(st.lists(group, min_size=1, max_size=12))
    rng = random.Random(draw(st.integers(min_value=0, max_value=2 ** 16)))

    raws, ballots = [], []
    for attributes, n, turnout, styles, coverage, same_qualification in groups:
        takers = round(n * turnout / 100)
        for i in range(n):
            raws.append(raw_combo(attributes, dims))
            mine = {}
            if i < takers:
                for pid, style in zip(proposals, styles):
                    if style == "none" or rng.random() * 100 >= coverage:
                        continue
                    vote = {"agree": "agree", "disagree": "disagree", "neutral": "neutral",
                            "mostly_agree": "agree" if rng.random() < 0.8 else rng.choice(["disagree", "neutral"]),
                            "mixed": rng.choice(["agree", "disagree", "neutral"])}[style]
                    choices = QUALIFICATIONS[vote][:1] if same_qualification else ("",) + QUALIFICATIONS[vote]
                    mine[pid] = (vote, rng.choice(choices))
            ballots.append(mine)
    return organisation(k, dims, proposals, raws, ballots)


def views(org: Organisation, data: RoundCounts | None = None, seed: bytes = SEED) -> dict[str | None, ResultsView]:
    data = data or org.data
    return {dimension: publishable_view(data, dimension, seed) for dimension in (None, *org.dims)}


# -- What a view shows, as true voter sets ----------------------------------------------------------

def shown_names(view: ResultsView, pid: str | None) -> tuple[set[str], bool]:
    """The shown segments of the view's dimension (round-wide, or on one proposal), and whether the pool is."""
    if pid is None:
        named = {s.name for s in view.segments if s.shown and not s.pooled}
        pool = any(s.shown and s.pooled for s in view.segments)
    else:
        cells = next(p for p in view.proposals if p.id == pid).cells
        named = {c.segment for c in cells if c.rates is not None and not c.pooled}
        pool = any(c.rates is not None and c.pooled for c in cells)
    return named, pool


def shown_groups(org: Organisation, view: ResultsView, dim: int,
                 pid: str | None) -> list[tuple[str, set[str], frozenset[int]]]:
    """(label, segment values covered, true voters) of each group the view shows."""
    named, pool = shown_names(view, pid)
    voters = org.voters(pid)
    groups = [(name, {name}, org.members(dim, {name}) & voters) for name in sorted(named)]
    if pool:
        rest = org.values(dim) - named
        groups.append((POOL, rest, org.members(dim, rest) & voters))
    return groups


def shown_proposals(view: ResultsView) -> list[str]:
    return [p.id for p in view.proposals if p.scores is not None]


def on_step(value: float) -> bool:
    return 0.0 <= value <= 1.0 and math.isclose(value * 20, round(value * 20), abs_tol=1e-6)


# -- 1. No published figure rests on fewer than k distinct voters ------------------------------------

@PROPERTY
@given(organisations())
def test_no_published_figure_rests_on_fewer_than_k_voters(org: Organisation) -> None:
    k, everyone = org.k, org.voters()
    for dimension, view in views(org).items():
        if len(everyone) < k:
            assert not view.shown and view.voters is None and view.segments == []
            assert all(p.scores is None and p.cells == [] and p.representative is None for p in view.proposals)
            continue
        assert view.shown and view.voters == len(everyone)
        for p in view.proposals:
            on_it = org.voters(p.id)
            if p.scores is None:
                assert len(on_it) < k, (p.id, len(on_it))
                assert (p.voters, p.rank, p.representative, p.cross_segment_consensus, p.cells) == \
                    (None, None, None, None, [])
                continue
            assert len(on_it) >= k and p.voters == len(on_it)
        if dimension is None:
            continue
        dim = org.dims.index(dimension)
        for label, _, group in shown_groups(org, view, dim, None):
            assert len(group) >= k, (dimension, "round", label, len(group))
        for pid in shown_proposals(view):
            for label, _, group in shown_groups(org, view, dim, pid):
                assert len(group) >= k, (dimension, pid, label, len(group))


# -- 2. No subtraction attack, within a dimension or across two --------------------------------------

@PROPERTY
@given(organisations())
def test_no_figure_can_be_recovered_by_subtraction(org: Organisation) -> None:
    k = org.k
    if len(org.voters()) < k:
        return
    by_dimension = views(org)
    scopes = [None, *shown_proposals(by_dimension[None])]
    for pid in scopes:
        total = org.voters(pid)
        groups = {}
        for dim, dimension in enumerate(org.dims):
            shown = shown_groups(org, by_dimension[dimension], dim, pid)
            groups[dim] = [voters for _, _, voters in shown]
            named = [voters for label, _, voters in shown if label != POOL]
            remainder = len(total) - sum(len(voters) for voters in named)  # = the pool, known to anyone
            assert remainder == 0 or remainder >= k, (dimension, pid, remainder)
            pooled = [voters for label, _, voters in shown if label == POOL]
            if named and remainder:
                assert pooled and len(pooled[0]) == remainder  # what is left is shown as "other"
        for d, e in combinations(range(len(org.dims)), 2):
            for first in groups[d]:
                for second in groups[e]:
                    difference = len(first ^ second)
                    assert difference == 0 or difference >= k, (org.dims[d], org.dims[e], pid, difference)


# -- 3. Homogeneity ----------------------------------------------------------------------------------

def unanimous_cells_are_covered(org: Organisation, data: RoundCounts, known_audience: bool) -> None:
    k = org.k
    if len(org.voters()) < k:
        return
    for dimension, view in views(org, data).items():
        if dimension is None:
            continue
        dim = org.dims.index(dimension)
        for pid in shown_proposals(view):
            for label, values, voters in shown_groups(org, view, dim, pid):
                if len({org.people[i].votes[pid] for i in voters}) > 1:
                    continue
                assert known_audience, (dimension, pid, label, "unanimous cell shown without headcounts")
                non_voters = len(org.members(dim, values)) - len(voters)
                assert non_voters >= k, (dimension, pid, label, len(voters), non_voters)


@PROPERTY
@given(organisations())
def test_a_shown_unanimous_cell_has_at_least_k_non_voters_in_its_audience(org: Organisation) -> None:
    unanimous_cells_are_covered(org, org.data, known_audience=True)


@PROPERTY
@given(organisations())
def test_without_headcounts_no_unanimous_cell_is_shown_and_there_is_no_representative(org: Organisation) -> None:
    data = replace(org.data, headcounts={})
    unanimous_cells_are_covered(org, data, known_audience=False)
    for view in views(org, data).values():
        assert all(p.representative is None for p in view.proposals)


# -- 4. Determinism and consistency ------------------------------------------------------------------

def summary(view: ResultsView) -> list[tuple]:
    """What must not depend on the dimension asked for: overall figures, ranks, representative, consensus."""
    return [(p.id, p.voters, p.scores, p.rank, p.representative, p.cross_segment_consensus) for p in view.proposals]


def shown_pattern(view: ResultsView) -> tuple:
    return (tuple((s.name, s.shown) for s in view.segments),
            tuple((p.id, tuple((c.segment, c.rates is not None) for c in p.cells)) for p in view.proposals))


@PROPERTY
@given(organisations())
def test_views_are_deterministic_and_do_not_depend_on_the_dimension_asked_for(org: Organisation) -> None:
    first = views(org)
    for dimension in reversed((None, *org.dims)):  # asked again, in another order
        assert publishable_view(org.data, dimension, SEED) == first[dimension]
    reference = summary(first[None])
    for view in first.values():
        assert summary(view) == reference
    other_seed = views(org, seed=b"another seed")
    for dimension, view in other_seed.items():
        # Noise moves segment rates, never what is shown, nor the overall (exact) figures.
        assert shown_pattern(view) == shown_pattern(first[dimension])
        assert [(p.id, p.voters, p.scores, p.rank) for p in view.proposals] == \
            [(p.id, p.voters, p.scores, p.rank) for p in first[dimension].proposals]


@PROPERTY
@given(organisations())
def test_ranks_follow_the_lower_bound_of_the_top_score(org: Organisation) -> None:
    view = publishable_view(org.data, None, SEED)
    ranked = [p for p in view.proposals if p.rank is not None]
    assert [p.rank for p in ranked] == list(range(1, len(ranked) + 1))
    assert [p.rank for p in view.proposals] == [p.rank for p in ranked] + [None] * (len(view.proposals) - len(ranked))
    lows = [p.scores.top.low for p in ranked]
    assert lows == sorted(lows, reverse=True)


# -- 5. Published rates ------------------------------------------------------------------------------

def qualification_overshoot() -> Organisation:
    """Finance on p1: 3 neutral/do_not_understand, 2 agree. Under seed-170 independent noise would give
    neutral 3 -> 2, agree 2 -> 1, do_not_understand 3 -> 5: 5 "do not understand" out of 3 votes."""
    people = ([(("Finance",), {"p1": ("neutral", "do_not_understand")})] * 3
              + [(("Finance",), {"p1": ("agree", "")})] * 2 + [(("Finance",), {})] * 5
              + [(("IT",), {"p1": (vote, "")}) for vote in ("agree", "disagree", "neutral", "agree", "disagree") * 2]
              + [(("",), {"p1": (vote, "")}) for vote in ("agree", "disagree", "neutral") * 2])
    raws = [raw_combo({"department": values[0]}, ("department",)) for values, _ in people]
    return organisation(5, ("department",), ("p1",), raws, [ballot for _, ballot in people])


@PROPERTY
@example(org=qualification_overshoot(), seed=b"seed-170")
@given(org=organisations(), seed=st.sampled_from([SEED, b"seed-170", b"another seed"]))
def test_segment_rates_are_multiples_of_5_points_inside_their_intervals(org: Organisation, seed: bytes) -> None:
    for view in views(org, seed=seed).values():
        for p in view.proposals:
            for cell in p.cells:
                rates = cell.rates or {}
                for option, figure in rates.items():
                    assert on_step(figure.value) and on_step(figure.low) and on_step(figure.high), (option, figure)
                    assert figure.low <= figure.value <= figure.high, (cell.segment, option, figure)
                for vote, names in QUALIFICATIONS.items():
                    for name in names:  # a qualification never outweighs its vote
                        assert not rates or rates[name].value <= rates[vote].value + 1e-9, (cell.segment, name)
            for figure in (p.representative or {}).values():
                assert 0.0 <= figure.low <= figure.value <= figure.high <= 1.0, figure
            if p.cross_segment_consensus is not None:
                assert on_step(p.cross_segment_consensus)
        for segment in view.segments:
            if segment.participation is not None:
                assert on_step(segment.participation), segment


# -- Hidden and empty, participation top-coding --------------------------------------------------------

@PROPERTY
@given(organisations())
def test_hidden_and_empty_segments_look_the_same_and_participation_is_top_coded(org: Organisation) -> None:
    k, everyone = org.k, org.voters()
    if len(everyone) < k:
        return
    for dim, dimension in enumerate(org.dims):
        view = publishable_view(org.data, dimension, SEED)
        fixed = sorted(org.values(dim) - {OTHER})
        named, pool = shown_names(view, None)
        assert [s.name for s in view.segments] == fixed + ([POOL] if pool else [])
        for segment in view.segments:
            if not segment.shown:
                assert segment == Segment(segment.name, False, False, None, False, None)
                continue
            values = {segment.name} if not segment.pooled else org.values(dim) - named
            audience = org.members(dim, values)
            non_voters = len(audience) - len(audience & everyone)
            assert segment.participation_at_least == (non_voters < k), (segment, non_voters)
            # top-coded or not, the figure never says fewer than k people of the segment stayed away
            assert segment.participation <= 1 - k / len(audience) + 1e-9, (segment, len(audience))
        for p in view.proposals:
            if p.scores is None:
                continue
            cell_names = [c.segment for c in p.cells]
            assert cell_names[:len(fixed)] == fixed  # every segment, hidden and empty alike
            for cell in p.cells[:len(fixed)]:
                assert cell.pooled is False
            assert cell_names[len(fixed):] in ([], [POOL])
