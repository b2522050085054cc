"""Scoring of proposals (ARCHITECTURE.md, Scoring) and the k rules of the publishable view."""

from __future__ import annotations

import math

import pytest

from appliance.domain.disclosure import RoundCounts, publishable_view
from appliance.domain.results import CountRow
from appliance.domain.scoring import (
    Estimate,
    agresti_coull,
    combine,
    score_proposal,
    shown_percent,
    shown_points,
    smoothed_rate,
    zone,
)

EXACT = 1e-12
COMBO = '["other"]'

# Worked example: 10 votes (6 agree, 3 disagree, 1 neutral);
# qualifications: like_it 2, doable 1, no_way 1, nothing else.
VOTES = {"agree": 6, "disagree": 3, "neutral": 1}
QUALIFICATIONS = {"like_it": 2, "doable": 1, "no_way": 1}


def ac_half_width(rate: float, total: int) -> float:
    """The textbook formula, written out independently of the module."""
    adjusted = (total * rate + 2) / (total + 4)
    return 2 * math.sqrt(adjusted * (1 - adjusted) / (total + 4))


def test_it_smooths_a_vote_rate_with_a_prior_of_0_33() -> None:
    assert smoothed_rate(6, 10, 0.33) == pytest.approx(6.33 / 11, abs=EXACT)
    assert smoothed_rate(0, 0, 0.33) == pytest.approx(0.33, abs=EXACT)


def test_it_smooths_a_qualification_rate_with_a_prior_of_0_01() -> None:
    assert smoothed_rate(2, 10, 0.01) == pytest.approx(2.01 / 11, abs=EXACT)


def test_it_uses_0_33_for_votes_and_0_01_for_qualifications_when_scoring() -> None:
    rates = score_proposal(VOTES, QUALIFICATIONS).rates
    assert rates["agree"].value == pytest.approx(6.33 / 11, abs=EXACT)
    assert rates["neutral"].value == pytest.approx(1.33 / 11, abs=EXACT)
    assert rates["like_it"].value == pytest.approx(2.01 / 11, abs=EXACT)
    assert rates["platitude_agree"].value == pytest.approx(0.01 / 11, abs=EXACT)
    assert rates["do_not_care"].value == pytest.approx(0.01 / 11, abs=EXACT)
    assert set(rates) == {"agree", "disagree", "neutral", "like_it", "doable", "platitude_agree",
                          "no_way", "impossible", "platitude_disagree",
                          "do_not_understand", "no_opinion", "do_not_care"}


@pytest.mark.parametrize(
    ("rate", "total", "adjusted", "half_width"),
    [
        (0.5, 12, 0.5, 0.25),        # p' = (6 + 2) / 16; 2 sqrt(0.25 / 16)
        (0.5, 96, 0.5, 0.1),         # p' = 50 / 100; 2 sqrt(0.25 / 100)
        (3 / 21, 21, 0.2, 0.16),     # p' = (3 + 2) / 25; 2 sqrt(0.16 / 25)
        (0.0, 0, 0.5, 0.5),          # no votes: p' = 2 / 4; 2 sqrt(0.25 / 4)
    ],
)
def test_it_computes_the_agresti_coull_interval_by_the_textbook_formula(
        rate: float, total: int, adjusted: float, half_width: float) -> None:
    estimate = agresti_coull(rate, total)
    assert estimate.value == pytest.approx(adjusted, abs=EXACT)
    assert estimate.half_width == pytest.approx(half_width, abs=EXACT)


def test_it_gives_each_rate_the_agresti_coull_half_width_of_that_rate() -> None:
    agree = score_proposal(VOTES, QUALIFICATIONS).rates["agree"]
    # p' = (10 * 0.575454... + 2) / 14 = 0.553896...; 2 sqrt(p'(1 - p') / 14)
    assert agree.half_width == pytest.approx(0.2657040297478275, abs=1e-12)
    assert agree.low == pytest.approx(0.5754545454545454 - 0.2657040297478275, abs=1e-12)
    assert agree.high == pytest.approx(0.5754545454545454 + 0.2657040297478275, abs=1e-12)


def test_it_adds_half_widths_in_quadrature_for_sums_and_differences() -> None:
    rates = {"a": Estimate(0.5, 0.03), "b": Estimate(0.2, 0.04), "c": Estimate(0.1, 0.12)}
    difference = combine({"a": 1, "b": -1}, rates)
    assert difference.value == pytest.approx(0.3, abs=EXACT)
    assert difference.half_width == pytest.approx(0.05, abs=EXACT)  # 3-4-5
    total = combine({"a": 1, "b": 1, "c": -1}, rates)
    assert total.value == pytest.approx(0.6, abs=EXACT)
    assert total.half_width == pytest.approx(0.13, abs=EXACT)  # sqrt(0.0009 + 0.0016 + 0.0144)


def test_it_scores_the_worked_example_as_computed_by_hand() -> None:
    scores = score_proposal(VOTES, QUALIFICATIONS)
    assert scores.votes == 10
    # top = agree + like_it + doable - no_way - impossible - platitudes
    #     = (6.33 + 2.01 + 1.01 - 1.01 - 0.01 - 0.01 - 0.01) / 11 = 8.31 / 11
    assert scores.top.value == pytest.approx(8.31 / 11, abs=EXACT)
    # controversy = min(agree, disagree) + min(like_it, no_way) = (3.33 + 1.01) / 11
    assert scores.controversy.value == pytest.approx(4.34 / 11, abs=EXACT)
    # rejection = disagree + no_way + impossible - like_it - doable - platitudes
    #           = (3.33 + 1.01 + 0.01 - 2.01 - 1.01 - 0.02) / 11 = 1.31 / 11
    assert scores.rejection.value == pytest.approx(1.31 / 11, abs=EXACT)
    # engagement = (like_it - no_way) + (doable - impossible) - platitudes
    #            = (2.01 - 1.01 + 1.01 - 0.01 - 0.02) / 11 = 1.98 / 11
    assert scores.engagement.value == pytest.approx(0.18, abs=EXACT)
    # agree 0.575 < 0.6, disagree 0.303 >= 0.15, agree >= 0.15, neutral 0.121 < 0.4
    assert scores.zone == "controversy"


def test_it_combines_the_half_widths_of_the_worked_example_in_quadrature() -> None:
    scores = score_proposal(VOTES, QUALIFICATIONS)
    h = {name: ac_half_width(rate, 10) for name, rate in {
        "agree": 6.33 / 11, "disagree": 3.33 / 11, "like_it": 2.01 / 11,
        "doable": 1.01 / 11, "no_way": 1.01 / 11, "nothing": 0.01 / 11}.items()}
    assert h["agree"] == pytest.approx(0.2657040297478275, abs=1e-12)
    top = math.sqrt(h["agree"] ** 2 + h["like_it"] ** 2 + h["doable"] ** 2 + h["no_way"] ** 2
                    + 3 * h["nothing"] ** 2)
    assert top == pytest.approx(0.571829531278724, abs=1e-12)
    assert scores.top.half_width == pytest.approx(0.571829531278724, abs=1e-12)
    # controversy: the lesser vote (disagree) and the lesser feeling (no_way)
    assert scores.controversy.half_width == pytest.approx(0.33600097927373723, abs=1e-12)
    assert scores.rejection.half_width == pytest.approx(0.5675790600846248, abs=1e-12)
    assert scores.engagement.half_width == pytest.approx(0.5063500581793299, abs=1e-12)


def test_it_does_not_put_exactly_60_percent_agree_in_consensus_once_smoothed() -> None:
    # 6.33 / 11 = 0.575 < 0.6, and disagree 4.33 / 11 = 0.394 >= 0.15
    assert score_proposal({"agree": 6, "disagree": 4}, {}).zone == "controversy"


def test_it_puts_a_proposal_with_9_agree_out_of_10_in_consensus() -> None:
    assert score_proposal({"agree": 9, "disagree": 1}, {}).zone == "consensus"  # 9.33 / 11 = 0.848


@pytest.mark.parametrize(
    ("agree", "disagree", "neutral", "expected"),
    [
        (0.6, 0.35, 0.05, "consensus"),      # agree reaches 0.6 exactly
        (0.59, 0.36, 0.05, "controversy"),   # just below 0.6, disagree too high for the second rule
        (0.6, 0.0, 0.4, "consensus"),        # agree >= 0.6 comes before limbo
        (0.5, 0.14, 0.36, "consensus"),      # neutral < 0.4 and disagree < 0.15
        (0.45, 0.15, 0.39, "controversy"),   # disagree exactly 0.15 is not < 0.15
        (0.5, 0.1, 0.39, "consensus"),       # neutral just under 0.4
        (0.5, 0.1, 0.4, "limbo"),            # neutral exactly 0.4 is not < 0.4
        (0.1, 0.1, 0.3, "consensus"),        # consensus is tested before rejection
        (0.3, 0.6, 0.1, "rejection"),        # disagree reaches 0.6 exactly
        (0.0, 0.6, 0.4, "rejection"),        # disagree >= 0.6 comes before limbo
        (0.14, 0.5, 0.36, "rejection"),      # neutral < 0.4 and agree < 0.15
        (0.15, 0.5, 0.35, "controversy"),    # agree exactly 0.15 is not < 0.15
        (0.3, 0.3, 0.4, "limbo"),            # neutral reaches 0.4 exactly
        (0.1, 0.1, 0.8, "limbo"),
        (0.35, 0.35, 0.3, "controversy"),    # nothing else applies
    ],
)
def test_it_places_a_proposal_in_the_first_zone_whose_rule_holds(
        agree: float, disagree: float, neutral: float, expected: str) -> None:
    assert zone(agree, disagree, neutral) == expected


def publishable_results(k: int, proposals, counts, combo_voters):
    """The publishable view with no breakdown, as every output renders it."""
    return publishable_view(RoundCounts(k, ("department",), proposals, counts, combo_voters), None, b"seed")


def rows(proposal_id: str, **votes: int) -> list[CountRow]:
    return [CountRow(proposal_id, COMBO, vote, "", n) for vote, n in votes.items()]


def test_it_ranks_a_proposal_with_fewer_votes_but_the_same_top_score_lower() -> None:
    counts = rows("few", agree=5, disagree=3) + rows("many", agree=64, disagree=44)
    view = publishable_results(5, [("few", "Few votes"), ("many", "Many votes")], counts, {COMBO: 108})
    by_id = {p.id: p for p in view.proposals}
    # (5 + 0.31) / 9 = (64 + 0.31) / 109 = 0.59: same score, narrower interval with more votes
    assert by_id["few"].scores.top.value == pytest.approx(0.59, abs=1e-12)
    assert by_id["many"].scores.top.value == pytest.approx(0.59, abs=1e-12)
    assert by_id["few"].scores.top.low < by_id["many"].scores.top.low
    assert [(p.id, p.rank, p.voters) for p in view.proposals] == [("many", 1, 108), ("few", 2, 8)]


def test_it_ranks_by_the_lower_bound_even_over_a_higher_score() -> None:
    counts = rows("small", agree=8) + rows("large", agree=90, disagree=10)
    view = publishable_results(5, [("small", "S"), ("large", "L")], counts, {COMBO: 100})
    small, large = (next(p for p in view.proposals if p.id == pid) for pid in ("small", "large"))
    assert small.scores.top.value > large.scores.top.value
    assert [p.id for p in view.proposals] == ["large", "small"]
    assert (large.rank, small.rank) == (1, 2)


def test_it_shows_nothing_when_the_round_has_fewer_than_k_voters() -> None:
    counts = rows("p1", agree=4)
    view = publishable_results(5, [("p1", "Only proposal")], counts, {COMBO: 3, '["IT"]': 1})
    assert view.shown is False
    assert view.voters is None
    assert [(p.id, p.voters, p.scores, p.rank) for p in view.proposals] == [("p1", None, None, None)]


def test_it_shows_a_round_with_exactly_k_voters() -> None:
    view = publishable_results(5, [("p1", "Only proposal")], rows("p1", agree=5), {COMBO: 3, '["IT"]': 2})
    assert view.shown is True
    assert view.voters == 5
    assert view.k == 5
    assert view.proposals[0].rank == 1
    assert view.proposals[0].voters == 5


def test_it_hides_a_proposal_with_fewer_than_k_voters() -> None:
    counts = rows("shown", agree=3, disagree=2) + rows("hidden", agree=4) + [
        CountRow("shown", '["IT"]', "agree", "like_it", 1)]
    proposals = [("hidden", "Beta"), ("empty", "Alpha"), ("shown", "Gamma")]
    view = publishable_results(5, proposals, counts, {COMBO: 20, '["IT"]': 6})
    assert view.shown is True
    assert view.voters == 26
    result = {p.id: (p.voters, p.scores is None, p.rank) for p in view.proposals}
    assert result == {"shown": (6, False, 1), "hidden": (None, True, None), "empty": (None, True, None)}
    # ranked first; hidden and empty look the same and follow in text order
    assert [p.id for p in view.proposals] == ["shown", "empty", "hidden"]


def test_it_counts_qualified_ballots_as_votes_of_their_vote() -> None:
    counts = rows("p1", agree=2) + [CountRow("p1", COMBO, "agree", "like_it", 3)]
    scores = publishable_results(5, [("p1", "P")], counts, {COMBO: 5}).proposals[0].scores
    assert scores.votes == 5
    assert scores.rates["agree"].value == pytest.approx(5.33 / 6, abs=EXACT)
    assert scores.rates["like_it"].value == pytest.approx(3.01 / 6, abs=EXACT)


@pytest.mark.parametrize(("rate", "shown"), [
    (0.825049504950495, 83),  # 83 agree of 100 (+0.33 over 101): 0.8250 published, 82.5 rounds up
    (20.33 / 38, 54),         # 0.5350
    (0.124, 12), (0.9951, 100), (0.0, 0), (1.0, 100), (-0.01, 0),
    (0.5967, 59),             # 119 agree of 199: below 60%, so never shown at the consensus edge
    (0.6, 60), (0.6049, 60),
    (0.395, 39), (0.4, 40),   # neutral: limbo from 40%
    (0.1467, 14), (0.15, 15), # disagree or agree: consensus and rejection edges at 15%
])
def test_a_rate_is_shown_as_its_published_figure_rounded_without_crossing_a_zone_edge(rate: float,
                                                                                       shown: int) -> None:
    assert shown_percent(rate) == shown


def test_a_shown_percentage_never_contradicts_the_zone() -> None:
    for total in range(1, 400):
        for agree in range(total + 1):
            for disagree in (0, (total - agree) // 2, total - agree):
                neutral = total - agree - disagree
                scores = score_proposal({"agree": agree, "disagree": disagree, "neutral": neutral}, {})
                agree_shown, disagree_shown, neutral_shown = (shown_percent(scores.rates[name].value)
                                                              for name in ("agree", "disagree", "neutral"))
                if scores.zone == "consensus":
                    assert agree_shown >= 60 or (neutral_shown < 40 and disagree_shown < 15)
                else:
                    assert agree_shown < 60 and not (neutral_shown < 40 and disagree_shown < 15), scores


@pytest.mark.parametrize(("score", "points"), [(0.825, 83), (0.8249, 82), (-0.125, -13), (2.5, 250), (-0.0049, 0)])
def test_a_score_is_shown_in_whole_points_halves_away_from_zero_like_a_spreadsheet(score: float, points: int) -> None:
    assert shown_points(score) == points
