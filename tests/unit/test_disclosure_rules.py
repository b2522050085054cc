"""The disclosure engine, rule by rule, on small readable rounds (ARCHITECTURE.md, Disclosure control).

Each scenario is an organisation written out as crowds of people sharing
segment values and votes. It is stored exactly as a closed round stores it:
the coarsening map of the frozen audience, counts per (proposal, stored
combination, vote, qualification), distinct voters per stored combination and
audience headcounts per stored combination.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest

from appliance.domain.disclosure import (
    Cell,
    Figure,
    ResultsView,
    RoundCounts,
    Noise,
    Segment,
    band_said,
    participation_band,
    participation_rate,
    publishable_view,
)
from appliance.domain.results import CountRow
from appliance.domain.scoring import score_proposal
from appliance.domain.segments import OTHER, build_coarsening, combo_key
from appliance.i18n import Speaker

SEED = b"round-noise-seed"
POOL = "other"


# --- Building a closed round from people ------------------------------------------------------

@dataclass(frozen=True)
class Person:
    combo: tuple[str, ...]
    votes: tuple[tuple[str, str, str], ...]  # (proposal, vote, qualification)


def crowd(n: int, *values: str, **votes: str | Sequence[str]) -> list[Person]:
    """`n` people with these segment values; p1="agree" makes each vote agree on p1.

    A vote may carry a qualification ("agree/like_it"); a list of votes is dealt
    out in turn (person i gets votes[i % len(votes)]).
    """
    people = []
    for i in range(n):
        ballots = []
        for proposal, spec in votes.items():
            choice = spec if isinstance(spec, str) else spec[i % len(spec)]
            vote, _, qualification = choice.partition("/")
            ballots.append((proposal, vote, qualification))
        people.append(Person(tuple(values), tuple(ballots)))
    return people


MIXED = ("agree", "disagree", "neutral", "agree/like_it", "disagree/no_way", "agree/doable")


def round_of(people: list[Person], dims: tuple[str, ...] = ("department",), k: int = 5,
             proposals: Sequence[str] | None = None) -> RoundCounts:
    """What a closed round keeps about these people (everyone is in the audience)."""
    raws = [p.combo for p in people]
    mapping = build_coarsening(raws, k)
    counts: Counter[tuple[str, str, str, str]] = Counter()
    voters: Counter[str] = Counter()
    audience: Counter[str] = Counter()
    for person in people:
        stored = combo_key(mapping[person.combo])
        audience[stored] += 1
        if person.votes:
            voters[stored] += 1
        for proposal, vote, qualification in person.votes:
            counts[proposal, stored, vote, qualification] += 1
    if proposals is None:
        proposals = sorted({proposal for person in people for proposal, _, _ in person.votes})
    return RoundCounts(
        k=k, dimensions=dims, proposals=[(pid, f"Proposal {pid}") for pid in proposals],
        counts=[CountRow(pid, combo, vote, qualification, n)
                for (pid, combo, vote, qualification), n in counts.items()],
        combo_voters=dict(voters), headcounts=dict(audience),
    )


def proposal(view: ResultsView, pid: str):
    return next(p for p in view.proposals if p.id == pid)


def cells(view: ResultsView, pid: str) -> dict[str, Cell]:
    return {cell.segment: cell for cell in proposal(view, pid).cells}


def shown_cells(view: ResultsView, pid: str) -> set[str]:
    return {cell.segment for cell in proposal(view, pid).cells if cell.rates is not None}


def segments(view: ResultsView) -> dict[str, Segment]:
    return {segment.name: segment for segment in view.segments}


def shown_segments(view: ResultsView) -> set[str]:
    return {segment.name for segment in view.segments if segment.shown}


def on_step(value: float) -> bool:
    return math.isclose(value * 20, round(value * 20), abs_tol=1e-9) and 0.0 <= value <= 1.0


def hidden_segment(name: str) -> Segment:
    """How a hidden segment and an empty one both look: a name and nothing else."""
    return Segment(name, pooled=False, shown=False, participation=None, participation_at_least=False,
                   over_represented=None)


# --- Round and proposal thresholds ------------------------------------------------------------

def test_a_round_with_fewer_than_k_voters_shows_nothing() -> None:
    people = crowd(2, "Finance", p1="agree", p2="disagree") + crowd(2, "IT", p1="neutral") + crowd(8, "Sales")
    data = round_of(people)
    assert sum(data.combo_voters.values()) == 4
    for dimension in (None, "department"):
        view = publishable_view(data, dimension, SEED)
        assert view.shown is False
        assert view.voters is None
        assert view.segments == []
        assert [(p.id, p.voters, p.scores, p.rank, p.representative, p.cross_segment_consensus, p.cells)
                for p in view.proposals] == [("p1", None, None, None, None, None, []),
                                             ("p2", None, None, None, None, None, [])]


def test_a_round_with_exactly_k_voters_is_shown() -> None:
    data = round_of(crowd(5, OTHER, p1=MIXED))
    view = publishable_view(data, None, SEED)
    assert view.shown is True
    assert view.voters == 5
    assert proposal(view, "p1").voters == 5


def test_a_proposal_with_fewer_than_k_voters_is_hidden_and_the_others_are_ranked_by_the_top_score_lower_bound(
) -> None:
    people = (
        crowd(4, OTHER, p1="agree", p2=["agree", "disagree"], p3="agree/like_it")  # 4 voters on p1
        + crowd(2, OTHER, p2=["agree", "disagree"], p3="agree/like_it")
        + crowd(2, OTHER, p2=["agree", "disagree"])  # p2: 8 voters, half against; p3: 6, all for
    )
    data = round_of(people)
    view = publishable_view(data, None, SEED)
    assert view.shown is True
    assert view.voters == 8

    hidden = proposal(view, "p1")
    assert (hidden.voters, hidden.scores, hidden.rank, hidden.representative, hidden.cells) == (None, None, None,
                                                                                               None, [])
    split, liked = proposal(view, "p2"), proposal(view, "p3")
    assert (split.voters, liked.voters) == (8, 6)
    assert liked.scores == score_proposal({"agree": 6}, {"like_it": 6})
    assert split.scores == score_proposal({"agree": 4, "disagree": 4}, {})
    assert liked.scores.top.low > split.scores.top.low  # fewer voters, but a much better lower bound
    assert [(p.id, p.rank) for p in view.proposals] == [("p3", 1), ("p2", 2), ("p1", None)]


def test_a_proposal_with_exactly_k_voters_is_shown() -> None:
    data = round_of(crowd(5, OTHER, p1=MIXED) + crowd(3, OTHER, p2="agree"))
    view = publishable_view(data, None, SEED)
    assert proposal(view, "p1").voters == 5
    assert proposal(view, "p1").rank == 1
    assert proposal(view, "p2").scores is None


# --- Segments: k rule and complement rule ------------------------------------------------------

def test_a_segment_with_fewer_than_k_voters_is_pooled_into_other_and_looks_like_an_empty_one() -> None:
    people = (crowd(10, "Finance", p1=MIXED) + crowd(8, "IT", p1=MIXED) + crowd(7, "Sales", p1=MIXED)
              + crowd(3, "Legal", p1=MIXED) + crowd(3, "Legal")    # Legal: 6 in the audience, 3 voters
              + crowd(5, "HR")                                       # HR: nobody voted
              + crowd(2, OTHER, p1=["agree", "disagree"]) + crowd(3, OTHER))
    data = round_of(people)
    assert data.headcounts == {'["Finance"]': 10, '["IT"]': 8, '["Sales"]': 7, '["Legal"]': 6, '["HR"]': 5,
                               '["other"]': 5}
    view = publishable_view(data, "department", SEED)

    assert shown_segments(view) == {"Finance", "IT", "Sales", POOL}  # the pool: Legal 3 + other 2 = 5 voters
    listed = segments(view)
    assert listed["Legal"] == hidden_segment("Legal")
    assert listed["HR"] == hidden_segment("HR")  # empty and hidden: the same fields, nothing else
    assert listed[POOL].pooled is True
    assert [s.name for s in view.segments] == ["Finance", "HR", "IT", "Legal", "Sales", POOL]

    by_segment = cells(view, "p1")
    assert list(by_segment) == ["Finance", "HR", "IT", "Legal", "Sales", POOL]
    assert by_segment["Legal"] == Cell("Legal", False, None)
    assert by_segment["HR"] == Cell("HR", False, None)
    assert by_segment[POOL].pooled is True and by_segment[POOL].rates is not None
    assert shown_cells(view, "p1") == {"Finance", "IT", "Sales", POOL}


def test_a_pool_of_1_to_k_minus_1_voters_pulls_in_the_smallest_shown_segment() -> None:
    people = (crowd(10, "Finance", p1=MIXED) + crowd(8, "IT", p1=MIXED) + crowd(7, "Sales", p1=MIXED)
              + crowd(3, "Legal", p1=MIXED) + crowd(3, "Legal") + crowd(5, OTHER))
    data = round_of(people)
    view = publishable_view(data, "department", SEED)
    # Legal alone (3 voters) would be recovered as total - shown: Sales (7), the smallest, joins the pool.
    assert shown_segments(view) == {"Finance", "IT", POOL}
    assert segments(view)["Sales"] == hidden_segment("Sales")
    assert shown_cells(view, "p1") == {"Finance", "IT", POOL}
    assert cells(view, "p1")["Sales"] == Cell("Sales", False, None)


def test_with_a_single_segment_of_k_voters_or_more_there_is_no_breakdown_at_all() -> None:
    # Finance 12 voters, the rest 3: the pool pulls in Finance and nothing is left to show.
    people = crowd(12, "Finance", p1=MIXED) + crowd(3, "IT", p1=MIXED) + crowd(3, "IT") + crowd(5, OTHER)
    view = publishable_view(round_of(people), "department", SEED)
    assert view.shown is True and view.voters == 15
    assert shown_segments(view) == set()
    assert segments(view) == {"Finance": hidden_segment("Finance"), "IT": hidden_segment("IT")}
    assert shown_cells(view, "p1") == set()
    assert proposal(view, "p1").voters == 15  # the overall figures stay


def test_a_segment_shown_round_wide_with_fewer_than_k_voters_on_one_proposal_joins_that_proposals_other() -> None:
    people = (crowd(3, "Finance", p1=MIXED, p2=["agree", "disagree", "neutral"]) + crowd(7, "Finance", p1=MIXED)
              + crowd(10, "IT", p1=MIXED, p2=MIXED) + crowd(10, "Sales", p1=MIXED, p2=MIXED)
              + crowd(6, OTHER, p1=MIXED, p2=MIXED))
    view = publishable_view(round_of(people), "department", SEED)

    assert shown_segments(view) == {"Finance", "IT", "Sales", POOL}
    assert shown_cells(view, "p1") == {"Finance", "IT", "Sales", POOL}
    # On p2 Finance has 3 voters: hidden there only; they join p2's pool (6 other + 3 = 9 voters).
    assert shown_cells(view, "p2") == {"IT", "Sales", POOL}
    assert cells(view, "p2")["Finance"] == Cell("Finance", False, None)
    assert proposal(view, "p2").voters == 29


def test_a_segment_pooled_round_wide_stays_pooled_on_every_proposal() -> None:
    # Legal has 4 voters in the round, all of them on p1: 4 of Legal on p1 < k, and the round already pools Legal.
    people = (crowd(10, "Finance", p1=MIXED) + crowd(10, "IT", p1=MIXED) + crowd(4, "Legal", p1=MIXED)
              + crowd(2, "Legal") + crowd(6, OTHER, p1=MIXED))
    view = publishable_view(round_of(people), "department", SEED)
    assert "Legal" not in shown_segments(view)
    assert shown_cells(view, "p1") == {"Finance", "IT", POOL}


# --- Overlap rule -------------------------------------------------------------------------------

def overlap_round(it_elsewhere: tuple[str, str], site_of_others: str | None) -> RoundCounts:
    people = (
        crowd(8, "IT", "Nantes", p1=MIXED) + crowd(2, "IT", "Nantes")    # IT at Nantes: 10, 8 voters
        + crowd(2, *it_elsewhere, p1=["agree", "disagree"]) + crowd(4, *it_elsewhere)  # 2 voters more
        + crowd(10, "Finance", "Lyon", p1=MIXED) + crowd(8, "Finance", "Paris", p1=MIXED)
        + crowd(8, "Sales", "Paris", p1=MIXED)
        + crowd(5, OTHER, OTHER)
    )
    if site_of_others is not None:
        people += crowd(6, OTHER, site_of_others, p1=MIXED)
    else:
        people += crowd(6, "Finance", OTHER, p1=MIXED)
    return round_of(people, dims=("department", "site"))


def test_overlap_a_site_that_is_a_department_but_for_2_people_is_hidden_whichever_dimension_is_asked() -> None:
    # IT = the 8 voters at Nantes + 2 at Lyon; Nantes = those 8: showing both would single out 2 people.
    data = overlap_round(("IT", "Lyon"), site_of_others=None)
    by_department = publishable_view(data, "department", SEED)
    by_site = publishable_view(data, "site", SEED)

    assert shown_segments(by_department) == {"Finance", "IT", "Sales"}
    assert shown_segments(by_site) == {"Lyon", "Paris", POOL}  # Nantes (the smaller) is pooled with no-site
    assert segments(by_site)["Nantes"] == hidden_segment("Nantes")
    assert shown_cells(by_department, "p1") == {"Finance", "IT", "Sales"}
    assert shown_cells(by_site, "p1") == {"Lyon", "Paris", POOL}
    assert cells(by_site, "p1")["Nantes"] == Cell("Nantes", False, None)


def test_overlap_a_department_that_is_a_site_but_for_2_people_is_hidden_whichever_dimension_is_asked() -> None:
    # Nantes = the 8 IT voters at Nantes + 2 Finance voters there; IT = those 8: IT, the smaller, goes.
    data = overlap_round(("Finance", "Nantes"), site_of_others="Lyon")
    by_department = publishable_view(data, "department", SEED)
    by_site = publishable_view(data, "site", SEED)

    assert shown_segments(by_department) == {"Finance", "Sales", POOL}
    assert segments(by_department)["IT"] == hidden_segment("IT")
    assert shown_segments(by_site) == {"Lyon", "Nantes", "Paris"}
    assert shown_cells(by_department, "p1") == {"Finance", "Sales", POOL}
    assert shown_cells(by_site, "p1") == {"Lyon", "Nantes", "Paris"}


def test_overlap_segments_of_two_dimensions_that_differ_by_k_people_are_both_shown() -> None:
    people = (crowd(8, "IT", "Nantes", p1=MIXED) + crowd(5, "IT", "Lyon", p1=MIXED)  # IT = Nantes + 5
              + crowd(10, "Finance", "Lyon", p1=MIXED) + crowd(8, "Finance", "Paris", p1=MIXED)
              + crowd(8, "Sales", "Paris", p1=MIXED) + crowd(5, OTHER, OTHER))
    data = round_of(people, dims=("department", "site"))
    assert shown_segments(publishable_view(data, "department", SEED)) == {"Finance", "IT", "Sales"}
    assert shown_segments(publishable_view(data, "site", SEED)) == {"Lyon", "Nantes", "Paris"}


def test_overlap_on_one_proposal_only_hides_the_smaller_cell_for_that_proposal() -> None:
    # Round-wide IT (13) and Nantes (8) differ by 5; on p2 only 2 of IT are outside Nantes.
    people = (crowd(8, "IT", "Nantes", p1=MIXED, p2=MIXED) + crowd(2, "IT", "Lyon", p1=MIXED, p2=MIXED)
              + crowd(3, "IT", "Lyon", p1=MIXED)
              + crowd(10, "Finance", "Lyon", p1=MIXED, p2=MIXED) + crowd(8, "Finance", "Paris", p1=MIXED, p2=MIXED)
              + crowd(8, "Sales", "Paris", p1=MIXED, p2=MIXED) + crowd(6, "Finance", OTHER, p1=MIXED, p2=MIXED)
              + crowd(5, OTHER, OTHER))
    data = round_of(people, dims=("department", "site"))
    by_department = publishable_view(data, "department", SEED)
    by_site = publishable_view(data, "site", SEED)
    assert shown_segments(by_site) == {"Lyon", "Nantes", "Paris", POOL}
    assert shown_cells(by_site, "p1") == {"Lyon", "Nantes", "Paris", POOL}
    assert shown_cells(by_department, "p2") == {"Finance", "IT", "Sales"}
    assert shown_cells(by_site, "p2") == {"Lyon", "Paris", POOL}  # Nantes on p2 = IT on p2 minus 2


# --- Homogeneity rule ---------------------------------------------------------------------------

def homogeneity_people() -> list[Person]:
    return (
        crowd(8, "Finance", p1="agree") + crowd(5, "Finance")   # all 8 agree; 5 of Finance did not vote on p1
        + crowd(8, "IT", p1="agree") + crowd(4, "IT")           # all 8 agree; only 4 did not vote
        + crowd(10, "Sales", p1=MIXED)
        + crowd(6, OTHER, p1=MIXED)
    )


def test_homogeneity_a_unanimous_cell_is_shown_only_with_at_least_k_non_voters_in_its_audience() -> None:
    view = publishable_view(round_of(homogeneity_people()), "department", SEED)
    assert shown_segments(view) == {"Finance", "IT", "Sales", POOL}  # round-wide, all have 8 voters or more
    assert shown_cells(view, "p1") == {"Finance", "Sales", POOL}
    assert cells(view, "p1")["IT"] == Cell("IT", False, None)
    assert cells(view, "p1")["Finance"].rates["agree"].value >= 0.85


def test_homogeneity_applies_to_the_vote_whatever_the_qualifications() -> None:
    people = (crowd(8, "Finance", p1=["agree/like_it", "agree/doable", "agree"]) + crowd(2, "Finance")
              + crowd(10, "Sales", p1=MIXED) + crowd(6, OTHER, p1=MIXED))
    view = publishable_view(round_of(people), "department", SEED)
    assert shown_cells(view, "p1") == {"Sales", POOL}


def test_homogeneity_a_unanimous_pool_pulls_in_the_smallest_shown_segment() -> None:
    people = (crowd(8, "IT", p1="disagree") + crowd(10, "Finance", p1=MIXED) + crowd(12, "Sales", p1=MIXED)
              + crowd(5, OTHER, p1="disagree"))
    view = publishable_view(round_of(people), "department", SEED)
    assert shown_segments(view) == {"Finance", "IT", "Sales", POOL}
    # On p1 IT (8 unanimous voters, nobody else in its audience) is hidden; the pool it joins (IT and
    # the 5 "other", 13 voters all against, 13 in the audience) is unanimous too: Finance, the smallest, joins.
    assert shown_cells(view, "p1") == {"Sales", POOL}


# --- Perturbation -------------------------------------------------------------------------------

def perturbation_people() -> list[Person]:
    return (crowd(20, "Finance", "Lyon", p1=MIXED, p2=MIXED[1:]) + crowd(13, "IT", "Paris", p1=MIXED[2:], p2=MIXED)
            + crowd(11, "Sales", "Lyon", p1=MIXED[::-1], p2=MIXED) + crowd(9, "Sales", "Paris", p1=MIXED)
            + crowd(7, OTHER, OTHER, p1=MIXED, p2=MIXED))


def all_figures(view: ResultsView) -> list[Figure]:
    return [figure for p in view.proposals for cell in p.cells if cell.rates for figure in cell.rates.values()]


def test_perturbation_segment_rates_are_multiples_of_5_points_within_their_interval() -> None:
    data = round_of(perturbation_people(), dims=("department", "site"))
    for dimension in data.dimensions:
        figures = all_figures(publishable_view(data, dimension, SEED))
        assert figures
        for figure in figures:
            assert on_step(figure.value) and on_step(figure.low) and on_step(figure.high), figure
            assert figure.low <= figure.value <= figure.high


def test_perturbation_asking_twice_or_after_another_dimension_gives_the_same_figures() -> None:
    data = round_of(perturbation_people(), dims=("department", "site"))
    first = publishable_view(data, "department", SEED)
    publishable_view(data, "site", SEED)
    publishable_view(data, None, SEED)
    assert publishable_view(data, "department", SEED) == first
    assert publishable_view(round_of(perturbation_people(), dims=("department", "site")), "department", SEED) == first


def test_perturbation_another_seed_moves_rates_but_never_what_is_shown() -> None:
    people = perturbation_people()
    data = round_of(people, dims=("department", "site"))
    reference = publishable_view(data, "department", SEED)
    views = [publishable_view(data, "department", f"seed-{i}".encode()) for i in range(20)]
    assert any(all_figures(view) != all_figures(reference) for view in views)
    voters_on = {pid: Counter(p.combo[0] for p in people if any(b[0] == pid for b in p.votes)) for pid in ("p1", "p2")}
    for view in views:
        for pid in ("p1", "p2"):
            assert shown_cells(view, pid) == shown_cells(reference, pid)
            for name in shown_cells(view, pid) - {POOL}:
                assert voters_on[pid][name] >= 5
        assert shown_segments(view) == shown_segments(reference)
        assert [p.scores for p in view.proposals] == [p.scores for p in reference.proposals]  # overall: exact


def test_cell_noise_is_deterministic_small_and_mostly_zero() -> None:
    noise = Noise(SEED)
    cell = np.full(4000, noise.key("proposal", "p1") ^ int(noise.combo_keys([("Finance",)])[0]), dtype=np.uint64)
    counts = np.arange(4000)
    draws = Noise.draw(cell, 0, counts).tolist()
    assert draws == Noise.draw(cell, 0, counts).tolist()
    assert set(draws) <= {-2, -1, 0, 1, 2}
    share = Counter(draws)
    assert 0.45 < share[0] / 4000 < 0.55
    assert 0.02 < (share[-2] + share[2]) / 4000 < 0.18
    assert Noise.draw(cell, 1, counts).tolist() != draws  # another option of the same cell
    other = Noise(b"another seed")
    assert other.key("proposal", "p1") != noise.key("proposal", "p1")
    assert other.combo_keys([("Finance",)]).tolist() != noise.combo_keys([("Finance",)]).tolist()


def test_perturbation_never_gives_a_qualification_more_than_its_vote() -> None:
    # Finance on p1: 3 "neutral, do not understand" and 2 "agree". Under seed-170 the independent noise
    # would be neutral 3 -> 2, agree 2 -> 1, do_not_understand 3 -> 5 (5 of 3 votes, a rate of 125%).
    people = (crowd(3, "Finance", p1="neutral/do_not_understand") + crowd(2, "Finance", p1="agree")
              + crowd(5, "Finance") + crowd(10, "IT", p1=MIXED) + crowd(6, OTHER, p1=MIXED))
    data = round_of(people)
    for seed in (b"seed-170", *(f"seed-{i}".encode() for i in range(300))):
        finance = cells(publishable_view(data, "department", seed), "p1")["Finance"].rates
        assert finance is not None
        for option, figure in finance.items():
            assert on_step(figure.value) and figure.low <= figure.value <= figure.high <= 1.0, (seed, option, figure)
        assert finance["do_not_understand"].value <= finance["neutral"].value, seed


def test_perturbation_of_a_small_cell_with_one_dominant_qualification_does_not_crash() -> None:
    # Under seed-4237 independent noise would give do_not_understand 7 of 3 votes: sqrt of a negative
    # number in the Agresti-Coull interval (ValueError: math domain error).
    people = (crowd(5, "Finance", p1="neutral/do_not_understand") + crowd(1, "Finance", p1="agree")
              + crowd(5, "Finance") + crowd(10, "IT", p1=MIXED) + crowd(6, OTHER, p1=MIXED))
    data = round_of(people)
    for seed in (b"seed-4237", *(f"seed-{i}".encode() for i in range(300))):
        rates = cells(publishable_view(data, "department", seed), "p1")["Finance"].rates
        assert rates is not None and rates["do_not_understand"].value <= 1.0


# --- Participation ------------------------------------------------------------------------------

def test_participation_is_top_coded_when_fewer_than_k_of_the_audience_did_not_vote() -> None:
    people = (crowd(18, "Finance", p1=MIXED) + crowd(2, "Finance")    # 2 of 20 did not vote
              + crowd(10, "IT", p1=MIXED) + crowd(5, "IT")            # exactly k did not vote
              + crowd(6, "Sales", p1=MIXED) + crowd(24, "Sales")
              + crowd(5, OTHER))
    view = publishable_view(round_of(people), "department", SEED)
    finance, it, sales = (segments(view)[name] for name in ("Finance", "IT", "Sales"))

    assert finance.participation_at_least is True
    assert finance.participation == 0.75      # "at least 75%": 1 - k / 20, never 18 / 20
    assert it.participation_at_least is False
    assert it.participation in {0.55, 0.6, 0.65, 0.7, 0.75, 0.8}  # 10 / 15, perturbed by at most 2
    assert sales.participation_at_least is False
    assert sales.participation in {0.1, 0.15, 0.2, 0.25, 0.3}  # 6 / 30
    for segment in (finance, it, sales):
        assert on_step(segment.participation)


@pytest.mark.parametrize(("audience", "k", "expected"), [(20, 6, 0.7), (15, 6, 0.6)])
def test_participation_top_coding_is_the_largest_5_point_step_below_1_minus_k_over_audience(
        audience: int, k: int, expected: float) -> None:
    people = (crowd(audience - 1, "Finance", p1=MIXED) + crowd(1, "Finance")
              + crowd(20, "IT", p1=MIXED) + crowd(20, "IT") + crowd(k, OTHER))
    view = publishable_view(round_of(people, k=k), "department", SEED)
    finance = segments(view)["Finance"]
    assert finance.participation_at_least is True
    assert finance.participation == expected


@pytest.mark.parametrize("seed", [b"s1", b"s2", b"s3", b"s4", SEED])
def test_participation_with_k_non_voters_is_never_rounded_up_to_everyone(seed: bytes) -> None:
    people = (crowd(195, "Finance", p1=MIXED) + crowd(5, "Finance")    # exactly k of 200 did not vote: 97.5%
              + crowd(199, "IT", p1=MIXED) + crowd(1, "IT")            # 1 of 200: top-coded
              + crowd(100, "Sales", p1=MIXED) + crowd(100, "Sales") + crowd(5, OTHER))
    view = publishable_view(round_of(people), "department", seed)
    finance, it = segments(view)["Finance"], segments(view)["IT"]
    assert (it.participation, it.participation_at_least) == (0.95, True)
    assert finance.participation_at_least is False
    assert finance.participation <= 0.95  # never "100%" while 5 people did not vote, never above IT's figure


@pytest.mark.parametrize(("voters", "k", "band"), [
    (0, 5, "fewer than 5"), (4, 5, "fewer than 5"), (5, 5, "5 to 9"), (9, 5, "5 to 9"),
    (10, 5, "10 to 24"), (24, 5, "10 to 24"), (25, 5, "25 to 49"), (50, 5, "50 to 99"), (99, 5, "50 to 99"),
    (100, 5, "100 to 249"), (999, 5, "500 to 999"), (1000, 5, "1000 to 2499"),
    (99999, 5, "50000 to 99999"), (100000, 5, "100000 or more"), (10**7, 5, "100000 or more"),
    (11, 12, "fewer than 12"), (12, 12, "12 to 24"), (24, 12, "12 to 24"), (25, 12, "25 to 49"),
    (7, 8, "fewer than 8"), (8, 8, "8 to 9"), (10, 8, "10 to 24"),
    (9, 9, "9 to 24"), (24, 9, "9 to 24"), (25, 9, "25 to 49"), (24, 24, "24 to 49"),
])
def test_participation_band_edges(voters: int, k: int, band: str) -> None:
    assert participation_band(voters, k) == band


@pytest.mark.parametrize("k", [5, 8, 9, 10, 12, 23, 24, 25, 48, 49, 99, 100])
def test_participation_band_holds_the_count_and_is_never_a_single_number(k: int) -> None:
    assert participation_band(k - 1, k) == f"fewer than {k}"
    for voters in range(k, k + 300):
        band = participation_band(voters, k)
        low, separator, high = band.partition(" to ")
        if not separator:
            assert band.endswith(" or more") and voters >= int(band.split()[0])
            continue
        assert int(low) <= voters <= int(high), (voters, band)
        assert int(low) < int(high), band  # a one-number band would be an exact count
        assert int(low) >= k


@pytest.mark.parametrize(("band", "english", "french"), [
    ("fewer than 5", "fewer than 5", "moins de 5"), ("50 to 99", "50 to 99", "50 à 99"),
    ("1000 to 2499", "1,000 to 2,499", "1\u202f000 à 2\u202f499"), ("100000 or more", "100,000 or more", "au moins 100\u202f000"),
    ("something else", "something else", "something else"),
])
def test_a_band_is_said_in_the_reader_s_language_and_numbers(band: str, english: str, french: str) -> None:
    assert band_said(Speaker("en"), band) == english and band_said(Speaker("fr"), band) == french


# --- Over-representation -----------------------------------------------------------------------

def test_a_department_voting_en_masse_is_flagged_over_represented_and_the_others_are_not() -> None:
    people = (crowd(10, "Legal", p1=MIXED)                                 # 5% of the audience, 100% voted
              + crowd(9, "Finance", p1=MIXED) + crowd(51, "Finance")        # 15%
              + crowd(9, "IT", p1=MIXED) + crowd(51, "IT")
              + crowd(10, "Sales", p1=MIXED) + crowd(55, "Sales")
              + crowd(5, OTHER))
    data = round_of(people)
    assert sum(data.headcounts.values()) == 200
    view = publishable_view(data, "department", SEED)
    flags = {s.name: s.over_represented for s in view.segments}
    assert flags == {"Finance": False, "IT": False, "Legal": True, "Sales": False}
    assert segments(view)["Legal"].participation_at_least is True
    assert segments(view)["Legal"].participation == 0.5  # at least 1 - 5/10


# --- Representative estimate and cross-segment consensus ----------------------------------------

def test_the_representative_estimate_weights_segments_by_headcount_not_by_voters() -> None:
    people = (crowd(360, "Finance", p1="agree") + crowd(40, "Finance", p1="disagree")   # 400 of 400, 90% agree
              + crowd(2, "IT", p1="agree") + crowd(18, "IT", p1="disagree") + crowd(380, "IT")  # 20 of 400, 10%
              + crowd(5, OTHER))
    data = round_of(people)
    for dimension in (None, "department"):
        view = publishable_view(data, dimension, SEED)
        p1 = proposal(view, "p1")
        raw = p1.scores.rates["agree"].value
        representative = p1.representative["agree"]
        assert raw > 0.85
        assert 0.4 <= representative.value <= 0.6
        assert representative.low <= representative.value <= representative.high
        assert set(p1.representative) == {"agree", "disagree", "neutral"}
    by_department = publishable_view(data, "department", SEED)
    assert proposal(by_department, "p1").representative == proposal(publishable_view(data, None, SEED),
                                                                     "p1").representative


def test_the_representative_estimate_is_computed_from_the_published_5_point_figures_alone() -> None:
    # Finer rates would let the estimate's two decimals give back the perturbed counts the grid withholds.
    people = (crowd(6, "Finance", p1="agree") + crowd(2, "Finance", p1="disagree") + crowd(1, "Finance", p1="neutral")
              + crowd(11, "Finance") + crowd(3, "IT", p1="agree") + crowd(4, "IT", p1="disagree")
              + crowd(2, "IT", p1="neutral") + crowd(21, "IT") + crowd(5, OTHER))
    p1 = proposal(publishable_view(round_of(people), "department", SEED), "p1")
    shown = {cell.segment: cell.rates for cell in p1.cells if cell.rates}
    assert set(shown) == {"Finance", "IT"}
    weights = {"Finance": 20 / 50, "IT": 30 / 50}  # audience shares
    for vote in ("agree", "disagree", "neutral"):
        value = sum(w * shown[name][vote].value for name, w in weights.items())
        half = math.sqrt(sum((w * (shown[name][vote].high - shown[name][vote].low) / 2) ** 2
                             for name, w in weights.items()))
        expected = (round(value, 2), round(max(0.0, value - half), 2), round(min(1.0, value + half), 2))
        figure = p1.representative[vote]
        assert (figure.value, figure.low, figure.high) == expected, vote


def test_cross_segment_consensus_is_the_lowest_agree_rate_over_shown_segments() -> None:
    people = (crowd(20, "Finance", p1=["agree"] * 9 + ["disagree"]) + crowd(10, "IT", p1=["agree", "disagree"])
              + crowd(10, "Sales", p1=["agree"] * 4 + ["neutral"]) + crowd(5, OTHER))
    view = publishable_view(round_of(people), "department", SEED)
    p1 = proposal(view, "p1")
    shown = {cell.segment: cell.rates["agree"].value for cell in p1.cells if cell.rates and not cell.pooled}
    assert set(shown) == {"Finance", "IT", "Sales"}
    assert p1.cross_segment_consensus == min(shown.values()) == shown["IT"]
    assert proposal(publishable_view(round_of(people), None, SEED), "p1").cross_segment_consensus == \
        p1.cross_segment_consensus


def test_cross_segment_consensus_counts_the_shown_pool_as_a_group() -> None:
    # The pool agrees less than Finance: the lowest agreement in any group cannot be Finance's.
    people = (crowd(10, "Finance", p1=["agree"] * 9 + ["disagree"]) + crowd(3, "IT", p1=["disagree"] * 3)
              + crowd(3, "IT") + crowd(3, OTHER, p1=["agree", "disagree", "disagree"]) + crowd(2, OTHER))
    view = publishable_view(round_of(people), "department", SEED)
    assert shown_cells(view, "p1") == {"Finance", POOL}
    p1 = proposal(view, "p1")
    pool = next(cell for cell in p1.cells if cell.pooled)
    assert p1.cross_segment_consensus == pool.rates["agree"].value < 0.5


def test_cross_segment_consensus_needs_two_shown_groups() -> None:
    people = crowd(10, "Finance", p1=MIXED) + crowd(6, "IT") + crowd(2, OTHER)  # nobody else voted on p1
    view = publishable_view(round_of(people), "department", SEED)
    assert shown_cells(view, "p1") == {"Finance"}
    assert proposal(view, "p1").cross_segment_consensus is None


# --- A round without headcounts (imported) ------------------------------------------------------

def test_without_headcounts_there_is_no_representative_estimate_and_unanimous_cells_are_hidden() -> None:
    data = replace(round_of(homogeneity_people()), headcounts={})
    view = publishable_view(data, "department", SEED)
    p1 = proposal(view, "p1")
    assert p1.representative is None
    assert p1.scores is not None and p1.rank == 1
    # Finance was shown with its 5 known non-voters; without headcounts nobody can tell: hidden.
    assert shown_cells(view, "p1") == {"Sales", POOL}
    for segment in view.segments:
        if segment.shown:
            assert (segment.participation, segment.participation_at_least, segment.over_represented) == \
                (None, False, None)


def test_two_groups_with_the_same_voters_get_the_same_noise() -> None:
    """IT and the Nantes site are the same people: independent noise on each could be averaged away."""
    from appliance.domain.disclosure import RoundCounts
    from appliance.domain.results import CountRow

    counts = [CountRow("p1", '["IT", "Nantes"]', "agree", "", 7), CountRow("p1", '["IT", "Nantes"]', "disagree", "", 4),
              CountRow("p1", '["Finance", "Lyon"]', "agree", "", 9), CountRow("p1", '["Finance", "Lyon"]', "neutral", "", 6)]
    data = RoundCounts(5, ("department", "site"), [("p1", "Flexible hours")], counts,
                       {'["IT", "Nantes"]': 11, '["Finance", "Lyon"]': 15},
                       {'["IT", "Nantes"]': 30, '["Finance", "Lyon"]': 30})
    for seed in (b"a", b"b", b"c", b"d"):
        by_department = publishable_view(data, "department", seed).proposals[0].cells
        by_site = publishable_view(data, "site", seed).proposals[0].cells
        it = next(c for c in by_department if c.segment == "IT")
        nantes = next(c for c in by_site if c.segment == "Nantes")
        assert it.rates is not None and it.rates == nantes.rates


@pytest.mark.parametrize(("voters", "audience", "expected"), [
    (28, 46, (0.6, False)),   # 18 did not vote: the rate, rounded down to 5 points
    (8, 10, (0.5, True)),     # 2 did not vote, fewer than k: at least 1 - 5/10
    (48, 48, (0.85, True)),   # everyone voted: never said, at least 1 - 5/48 rounded down
    (5, 400, (0.0, False)),
])
def test_the_round_s_participation_is_published_as_a_group_s_is(voters, audience, expected) -> None:
    assert participation_rate(voters, voters, audience, 5) == expected
