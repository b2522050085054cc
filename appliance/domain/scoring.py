"""Scores of a proposal from its vote and qualification counts (ARCHITECTURE.md, Scoring).

The method is Make.org's published one: smoothed rates, Agresti-Coull intervals,
top / controversy / rejection / engagement scores, zones, ranking by the lower
bound of the top score's interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from appliance.domain.votes import QUALIFICATIONS

VOTE_PRIOR = 0.33
QUALIFICATION_PRIOR = 0.01


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
        zone=zone(rates["agree"].value, rates["disagree"].value, rates["neutral"].value),
    )


def _estimate(count: int, total: int, prior: float) -> Estimate:
    rate = smoothed_rate(count, total, prior)
    return Estimate(rate, agresti_coull(rate, total).half_width)


def zone(agree: float, disagree: float, neutral: float) -> str:
    """consensus, rejection, limbo or controversy, tested in that order."""
    if agree >= 0.6 or (neutral < 0.4 and disagree < 0.15):
        return "consensus"
    if disagree >= 0.6 or (neutral < 0.4 and agree < 0.15):
        return "rejection"
    if neutral >= 0.4:
        return "limbo"
    return "controversy"
