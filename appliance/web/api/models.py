"""Request and response bodies of the API (pydantic, documented in /schema)."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


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
    title: str = Field(min_length=1, max_length=200)
    question: str = Field(min_length=1, max_length=500)
    description: str = Field("", max_length=5000)
    audience_groups: list[str] = Field(default_factory=list, max_length=100)
    dimensions: list[str] = Field(default_factory=list, max_length=5)
    k: int | None = Field(None, ge=5, le=1000)
    opens_at: AwareDatetime | None = None
    closes_at: AwareDatetime | None = None
    proposals_close_at: AwareDatetime | None = None
    moderation: str = Field("pre", pattern="^(pre|post)$")
    proposal_quota: int | None = Field(None, ge=1, le=100)


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


class BallotIn(Body):
    proposal: str = Field(min_length=1, max_length=64)
    vote: str = Field(max_length=32)
    qualification: str | None = Field(None, max_length=32)


class BallotOut(BaseModel):
    """The same answer, of the same size, whatever the vote."""

    recorded: bool = True


class RefusalIn(Body):
    reason: str = Field(max_length=64)
    note: str | None = Field(None, max_length=2000)


class Figure(BaseModel):
    value: float
    low: float
    high: float


class ProposalResultOut(BaseModel):
    """One proposal's published figures; all null when it had fewer than k voters."""

    id: str
    text: str
    rank: int | None
    voters: int | None
    zone: str | None
    rates: dict[str, Figure] | None
    scores: dict[str, Figure] | None
    note: str | None = None


class ResultsOut(BaseModel):
    round_id: str
    status: str
    k: int
    shown: bool
    voters: int | None
    note: str | None
    proposals: list[ProposalResultOut]


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
PROBLEMS = {
    code: ResponseSpec(Problem, description=text, media_type="application/problem+json", generate_examples=False)
    for code, text in PROBLEM_CODES.items()
}
SIGN_IN_PROBLEMS = PROBLEMS | {
    code: ResponseSpec(Problem, description=text, media_type="application/problem+json", generate_examples=False)
    for code, text in {401: "wrong username or password",
                       429: "too many failed sign-ins; the Retry-After header says when to try again",
                       503: "the directory cannot be reached"}.items()
}
