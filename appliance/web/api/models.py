"""Request and response bodies of the API (pydantic, documented in /schema)."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from appliance.domain.rounds import (DESCRIPTION_MAX_CHARS, MAX_K, MIN_K, QUESTION_MAX_CHARS, QUOTA_RANGE,
                                     TITLE_MAX_CHARS)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignIn(Body):
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(max_length=1024)


class Me(BaseModel):
    username: str
    display_name: str
    roles: list[str]


class RoundIn(Body):
    title: str = Field(min_length=1, max_length=TITLE_MAX_CHARS)
    question: str = Field(min_length=1, max_length=QUESTION_MAX_CHARS)
    description: str = Field("", max_length=DESCRIPTION_MAX_CHARS)
    audience_groups: list[str] = Field(default_factory=list, max_length=100)
    dimensions: list[str] = Field(default_factory=list, max_length=5)
    k: int | None = Field(None, ge=MIN_K, le=MAX_K)
    opens_at: AwareDatetime | None = None
    closes_at: AwareDatetime | None = None
    proposals_close_at: AwareDatetime | None = None
    moderation: str = Field("pre", pattern="^(pre|post)$")
    proposal_quota: int | None = Field(None, ge=QUOTA_RANGE[0], le=QUOTA_RANGE[1])


class RoundChange(Body):
    """What an admin changes in a round; fields left out stay. A draft: any of them (null clears a date or a
    list, and gives k and proposal_quota their default).

    An open round: only a later closes_at, and proposals_close_at with it if wanted.
    """

    title: str = Field(None, min_length=1, max_length=TITLE_MAX_CHARS)
    question: str = Field(None, min_length=1, max_length=QUESTION_MAX_CHARS)
    description: str = Field(None, max_length=DESCRIPTION_MAX_CHARS)
    audience_groups: list[str] | None = Field(None, max_length=100)
    dimensions: list[str] | None = Field(None, max_length=5)
    k: int | None = Field(None, ge=MIN_K, le=MAX_K)
    moderation: str = Field(None, pattern="^(pre|post)$")
    proposal_quota: int | None = Field(None, ge=QUOTA_RANGE[0], le=QUOTA_RANGE[1])
    opens_at: AwareDatetime | None = None
    closes_at: AwareDatetime | None = None
    proposals_close_at: AwareDatetime | None = None


class RoundOut(BaseModel):
    id: str
    title: str
    question: str
    description: str
    status: str
    audience_groups: list[str]
    dimensions: list[str]
    k: int
    moderation: str
    opens_at: AwareDatetime | None
    closes_at: AwareDatetime | None
    proposals_close_at: AwareDatetime | None
    proposal_min_chars: int
    proposal_max_chars: int
    proposal_quota: int


class ProposalIn(Body):
    text: str = Field(max_length=10_000)


class ProposalOut(BaseModel):
    """A proposal: never an author, never a time."""

    id: str
    text: str
    status: str


class MyProposalOut(ProposalOut):
    refusal_reason: str | None = None
    refusal_note: str | None = None
    published: bool = Field(False, description="the audience sees it now; an accepted proposal in post-moderation"
                                               " is not published before its release batch")


class BallotIn(Body):
    proposal: str = Field(min_length=1, max_length=64)
    vote: str = Field(max_length=32)
    qualification: str | None = Field(None, max_length=32)
    padding: str = Field("", max_length=256, description="ignored: spaces that make every vote's request body as"
                                                         " long, so that its size on the network does not tell"
                                                         " the vote (the voting page sends bodies of 160 bytes)")


class BallotOut(BaseModel):
    """The same answer, of the same size, whatever the vote."""

    recorded: bool = True


class DraftIn(Body):
    text: str = Field(max_length=10_000)


class HintOut(ProposalOut):
    """An accepted proposal close to the draft; `score` 0..1, higher is closer."""

    score: float


class SimilarOut(HintOut):
    """A hint for a person writing a proposal: `voted` when they have voted on it already."""

    voted: bool


class SequenceOut(BaseModel):
    """The next proposals to vote on (up to 12, in random order) and the voter's progress through the round."""

    proposals: list[ProposalOut]
    voted: int
    remaining: int


class FlagOut(BaseModel):
    """Personal data in a proposal's text: `kind` is email, phone or name; `text` is text[start:end]."""

    kind: str
    start: int
    end: int
    text: str


class QueueItemOut(ProposalOut):
    """A proposal waiting for moderation; `held_until` (Unix time) when another moderator is handling it."""

    held_until: int | None = None
    flags: list[FlagOut] = []
    similar: list[HintOut] = Field([], description="published proposals it resembles, closest first: a likely"
                                                   " duplicate (refuse it with the reason duplicate)")


class ClaimOut(BaseModel):
    """This moderator holds the proposal until then (Unix time): nobody else may decide on it meanwhile."""

    held_until: int


class CorrectionIn(Body):
    text: str = Field(max_length=10_000)


class DuplicateIn(Body):
    of: str | None = Field(max_length=64, description="the accepted proposal it repeats; null: not a duplicate")


class ModeratedOut(ProposalOut):
    duplicate_of: str | None = None


class RefusalIn(Body):
    reason: str = Field(max_length=64)
    note: str | None = Field(None, max_length=2000)


class Figure(BaseModel):
    value: float
    low: float
    high: float


class CellOut(BaseModel):
    """One proposal in one segment of the chosen dimension: rates rounded to 5 points, or hidden."""

    segment: str
    pooled: bool = Field(description="the \"other\" group: hidden segments pooled together")
    rates: dict[str, Figure] | None
    note: str | None = None


class SegmentOut(BaseModel):
    """One segment of the chosen dimension, round-wide."""

    name: str
    pooled: bool
    shown: bool
    participation: float | None = Field(description="voters / audience, rounded to 5 points (perturbed)")
    participation_at_least: bool = Field(description="top-coded: the true rate is at least this")
    over_represented: bool | None = Field(description="share of voters above 1.5 x share of the audience")
    note: str | None = None


class ProposalResultOut(BaseModel):
    """One proposal's published figures; all null when it had fewer than k voters."""

    id: str
    text: str
    rank: int | None
    voters: int | None
    zone: str | None
    rates: dict[str, Figure] | None
    scores: dict[str, Figure] | None
    representative: dict[str, Figure] | None = Field(
        None, description="agree / disagree / neutral with each segment of the main dimension weighted by its"
                          " share of the audience (post-stratified); null without headcounts")
    cross_segment_consensus: float | None = Field(
        None, description="the lowest agree rate over the shown segments of the main dimension, the pool included")
    cells: list[CellOut] = Field(default_factory=list, description="by segment of the chosen dimension")
    note: str | None = None


_FIGURE = {"value": 0.62, "low": 0.55, "high": 0.69}
RESULTS_EXAMPLE = {
    "round_id": "3f2a9c1d8e7b6a50", "status": "published", "k": 5, "shown": True, "voters": 212, "note": None,
    "dimensions": ["department", "site"], "dimension": "department", "main_dimension": "department",
    "segments": [
        {"name": "Finance", "pooled": False, "shown": True, "participation": 0.45,
         "participation_at_least": False, "over_represented": False, "note": None},
        {"name": "Legal", "pooled": False, "shown": False, "participation": None,
         "participation_at_least": False, "over_represented": None, "note": "not enough responses"},
        {"name": "other", "pooled": True, "shown": True, "participation": 0.3,
         "participation_at_least": False, "over_represented": False, "note": None},
    ],
    "proposals": [{
        "id": "a41c0e9b77d2f318", "text": "Publish the meeting notes within a day", "rank": 1, "voters": 154,
        "zone": "consensus", "rates": {"agree": _FIGURE, "disagree": {"value": 0.12, "low": 0.07, "high": 0.17},
                                       "neutral": {"value": 0.26, "low": 0.19, "high": 0.33}},
        "scores": {"top": {"value": 0.71, "low": 0.58, "high": 0.84}},
        "representative": {"agree": {"value": 0.6, "low": 0.52, "high": 0.68}},
        "cross_segment_consensus": 0.55,
        "cells": [
            {"segment": "Finance", "pooled": False, "rates": {"agree": {"value": 0.65, "low": 0.5, "high": 0.8}},
             "note": None},
            {"segment": "Legal", "pooled": False, "rates": None, "note": "not enough responses"},
            {"segment": "other", "pooled": True, "rates": {"agree": {"value": 0.55, "low": 0.4, "high": 0.7}},
             "note": None},
        ],
        "note": None,
    }],
    "audience_known": True, "participation": 0.45, "participation_at_least": False,
}


class ResultsOut(BaseModel):
    """The publishable view of a closed round (every rule of the disclosure control applied)."""

    round_id: str
    status: str
    k: int
    shown: bool
    voters: int | None
    note: str | None
    dimensions: list[str] = Field(default_factory=list)
    dimension: str | None = None
    main_dimension: str | None = None
    segments: list[SegmentOut] = Field(default_factory=list)
    proposals: list[ProposalResultOut]
    audience_known: bool = Field(
        True, description="whether each group's audience is known (not for an imported round): without it, no"
                          " participation rate and no representative estimate")
    participation: float | None = Field(
        None, description="voters / audience, in 5-point steps; null when the audience is not known")
    participation_at_least: bool = Field(
        False, description="fewer than k of the audience did not vote: participation is a floor, not a rate")


class ParticipationOut(BaseModel):
    """Participation within the rules: while open, a band seen once a day and shown a day late."""

    round_id: str
    status: str
    band: str | None = Field(description="for example \"50 to 99\"; null on a round's first day")
    as_of: str | None = Field(description="the day the band was seen, in server.time_zone")
    voters: int | None = Field(description="after close: distinct voters, when at least k")
    history: list[dict[str, str]] = Field(description="earlier days: {day, band}")


class Problem(BaseModel):
    """Every error: application/problem+json (RFC 9457)."""

    status: int
    title: str
    detail: str


PROBLEM_CODES = {
    400: "invalid input (the detail names the field)",
    401: "not signed in, or the session expired",
    403: "not allowed: role, audience, or a missing CSRF token",
    404: "no such round or proposal",
    409: "not possible in the round's current state",
}


def problem_specs(descriptions: dict[int, str]) -> dict[int, ResponseSpec]:
    """The OpenAPI answers of these statuses, each a problem+json with its description."""
    return {code: ResponseSpec(Problem, description=text, media_type="application/problem+json",
                               generate_examples=False) for code, text in descriptions.items()}


PROBLEMS = problem_specs(PROBLEM_CODES)
THROTTLED_PROBLEMS = PROBLEMS | problem_specs({  # what votes, proposals and look-ups may also answer
    429: "past the per-person limit; the Retry-After header says when to try again",
    503: "the appliance is busy or the directory cannot be reached; try again"})
SIGN_IN_PROBLEMS = PROBLEMS | problem_specs({
    401: "wrong username or password",
    429: "too many failed sign-ins; the Retry-After header says when to try again",
    503: "the directory cannot be reached"})
