"""Scores of a proposal from its vote and qualification counts (ARCHITECTURE.md, Scoring).

The method is Make.org's published one: smoothed rates, Agresti-Coull intervals,
top / controversy / rejection / engagement scores, zones, ranking by the lower
bound of the top score's interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from appliance.domain.votes import QUALIFICATIONS

VOTE_PRIOR = 0.33
QUALIFICATION_PRIOR = 0.01
PUBLISHED_DECIMALS = 4  # a rate as the API and exports publish it: 0.8250
ZONE_EDGES = (15, 40, 60)  # whole percents at which zone() changes its answer


@dataclass(frozen=True)
class Estimate:
    """A rate or score with the half-width of its ~95% interval."""

    value: float
    half_width: float

    @property
    def low(self) -> float:
        return self.value - self.half_width

    @property
    def high(self) -> float:
        return self.value + self.half_width


def smoothed_rate(count: int, total: int, prior: float) -> float:
    """rate(x) = (n_x + prior) / (1 + N); prior 0.33 for votes, 0.01 for qualifications."""
    return (count + prior) / (1 + total)


def agresti_coull(rate: float, total: int) -> Estimate:
    """p' = (N p + 2) / (N + 4); half-width 2 sqrt(p'(1 - p') / (N + 4)) (Agresti & Coull, 1998)."""
    adjusted = (total * rate + 2) / (total + 4)
    return Estimate(adjusted, 2 * math.sqrt(adjusted * (1 - adjusted) / (total + 4)))


def half_width(rate: np.ndarray, total: np.ndarray) -> np.ndarray:
    """agresti_coull's half-width, element by element over arrays of rates and totals."""
    adjusted = (total * rate + 2) / (total + 4)
    return 2 * np.sqrt(adjusted * (1 - adjusted) / (total + 4))


def combine(terms: Mapping[str, int], rates: Mapping[str, Estimate]) -> Estimate:
    """Signed sum of rates; half-widths add in quadrature."""
    value = sum(sign * rates[name].value for name, sign in terms.items())
    half_width = math.sqrt(sum(rates[name].half_width ** 2 for name in terms))
    return Estimate(value, half_width)


TOP = {"agree": 1, "like_it": 1, "doable": 1, "no_way": -1, "impossible": -1,
       "platitude_agree": -1, "platitude_disagree": -1}
REJECTION = {"disagree": 1, "no_way": 1, "impossible": 1, "like_it": -1, "doable": -1,
             "platitude_agree": -1, "platitude_disagree": -1}
ENGAGEMENT = {"like_it": 1, "no_way": -1, "doable": 1, "impossible": -1,
              "platitude_agree": -1, "platitude_disagree": -1}


@dataclass(frozen=True)
class Scores:
    """Everything the results show about one proposal."""

    votes: int
    rates: dict[str, Estimate]
    top: Estimate
    controversy: Estimate
    rejection: Estimate
    engagement: Estimate
    zone: str


def score_proposal(votes: Mapping[str, int], qualifications: Mapping[str, int]) -> Scores:
    """Rates, intervals, scores and zone from counts of votes and qualifications."""
    total = sum(votes.values())
    rates: dict[str, Estimate] = {}
    for vote, names in QUALIFICATIONS.items():
        rates[vote] = _estimate(votes.get(vote, 0), total, VOTE_PRIOR)
        for name in names:
            rates[name] = _estimate(qualifications.get(name, 0), total, QUALIFICATION_PRIOR)
    lesser_vote = min(rates["agree"], rates["disagree"], key=lambda e: e.value)
    lesser_feeling = min(rates["like_it"], rates["no_way"], key=lambda e: e.value)
    controversy = Estimate(lesser_vote.value + lesser_feeling.value,
                           math.hypot(lesser_vote.half_width, lesser_feeling.half_width))
    return Scores(
        votes=total,
        rates=rates,
        top=combine(TOP, rates),
        controversy=controversy,
        rejection=combine(REJECTION, rates),
        engagement=combine(ENGAGEMENT, rates),
        zone=zone(*(round(rates[name].value, PUBLISHED_DECIMALS) for name in ("agree", "disagree", "neutral"))),
    )


def _estimate(count: int, total: int, prior: float) -> Estimate:
    rate = smoothed_rate(count, total, prior)
    return Estimate(rate, agresti_coull(rate, total).half_width)


def shown_percent(rate: float) -> int:
    """A proposal's rate (0 to 1) as the whole percentage every page and message shows.

    The published figure (PUBLISHED_DECIMALS, as the API and the exports give
    it) rounded to the nearest, halves up, so that a reader who rounds the
    export's 0.8250 finds the page's 83%. A rate below one of the zones' edges
    is never shown at it: 59.7% agree is shown 59%, since "60%" beside
    "controversy" would contradict the rule that makes 60% a consensus. Zones
    are decided on the published figures too (score_proposal), so that the
    export's 0.6000 is a consensus however its fifth decimal fell.
    """
    published = Decimal(repr(round(min(max(rate, 0.0), 1.0), PUBLISHED_DECIMALS))) * 100
    shown = int(published.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return next((edge - 1 for edge in ZONE_EDGES if published < edge <= shown), shown)


def shown_points(score: float) -> int:
    """A score (a sum and difference of rates, -3 to 3) in whole points per 100 voters, halves away from
    zero as a spreadsheet rounds the export's figure: 0.8250 is 83 points, -0.1250 is -13."""
    published = Decimal(repr(round(score, PUBLISHED_DECIMALS))) * 100
    return int(published.quantize(Decimal(1), rounding=ROUND_HALF_UP))


ZONE_MOST, ZONE_NEUTRAL, ZONE_FEW = 0.6, 0.4, 0.15  # the zones' bounds, as the results page explains them


def zone(agree: float, disagree: float, neutral: float) -> str:
    """consensus, rejection, limbo or controversy, tested in that order."""
    if agree >= ZONE_MOST or (neutral < ZONE_NEUTRAL and disagree < ZONE_FEW):
        return "consensus"
    if disagree >= ZONE_MOST or (neutral < ZONE_NEUTRAL and agree < ZONE_FEW):
        return "rejection"
    if neutral >= ZONE_NEUTRAL:
        return "limbo"
    return "controversy"
