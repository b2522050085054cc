"""Rounds: their lifecycle and who may see or act on them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone

from appliance.domain.errors import Conflict, Invalid

STATUSES = ("draft", "open", "closed", "published")
# action -> (status it requires, status it leads to)
TRANSITIONS = {
    "open": ("draft", "open"),
    "close": ("open", "closed"),
    "publish": ("closed", "published"),
}
MODERATION_MODES = ("pre", "post")
MIN_K = 5
MAX_K = 1000
QUOTA_RANGE = (1, 100)  # proposals per person and round
TITLE_MAX_CHARS, QUESTION_MAX_CHARS, DESCRIPTION_MAX_CHARS = 200, 500, 5000  # a round's texts
YEARS = (2000, 2999)  # dates outside cannot be shown in every time zone


@dataclass(frozen=True)
class Round:
    """One consultation, as stored."""

    id: str
    title: str
    question: str
    description: str
    audience_groups: tuple[str, ...]
    dimensions: tuple[str, ...]
    k: int
    opens_at: datetime | None
    closes_at: datetime | None
    proposals_close_at: datetime | None
    moderation: str
    status: str
    proposal_min_chars: int
    proposal_max_chars: int
    proposal_quota: int
    release_interval_seconds: int


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a signed-in person and their roles."""

    person_id: str
    groups: frozenset[str]
    is_admin: bool
    is_moderator: bool


def next_status(current: str, action: str) -> str:
    """The status after `action`, or Conflict when the round is not in the state it needs."""
    required, reached = TRANSITIONS[action]
    if current != required:
        raise Conflict("cannot %(action)s a round that is %(current)s (it must be %(required)s)",
                       action=action, current=current, required=required)
    return reached


def check_schedule(opens_at: datetime | None, closes_at: datetime | None,
                   proposals_close_at: datetime | None) -> None:
    """Invalid unless the round's dates are within YEARS and come in order."""
    for name, moment in (("opens_at", opens_at), ("closes_at", closes_at), ("proposals_close_at", proposals_close_at)):
        if moment is not None and not YEARS[0] <= moment.year <= YEARS[1]:  # as written: any zone can show it
            raise Invalid("%(name)s must be in the years %(first)s to %(last)s",
                          name=name, first=YEARS[0], last=YEARS[1])
    if opens_at and closes_at and closes_at <= opens_at:
        raise Invalid("closes_at must be after opens_at")
    if proposals_close_at and closes_at and proposals_close_at > closes_at:
        raise Invalid("proposals_close_at must not be after closes_at")
    if proposals_close_at and opens_at and proposals_close_at <= opens_at:
        raise Invalid("proposals_close_at must be after opens_at")


def as_utc(moment: datetime) -> datetime:
    """An aware datetime; a naive one is taken as UTC (how rounds imported from elsewhere may store dates)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def passed_date(now: datetime, closes_at: datetime | None, proposals_close_at: datetime | None) -> str | None:
    """The name of the first of these dates that has passed, or None."""
    for name, moment in (("closes_at", closes_at), ("proposals_close_at", proposals_close_at)):
        if moment is not None and as_utc(moment) <= now:
            return name
    return None


def check_ahead(now: datetime, closes_at: datetime | None, proposals_close_at: datetime | None) -> None:
    """Invalid when a round is given a closing date already past."""
    name = passed_date(now, closes_at, proposals_close_at)
    if name is not None:
        raise Invalid("%(name)s is already past: give a later date", name=name)


def check_can_open(round_: Round, now: datetime) -> None:
    """Conflict when the round would open with a closing date past (the scheduler would close it at once)."""
    name = passed_date(now, round_.closes_at, round_.proposals_close_at)
    if name is not None:
        raise Conflict("cannot open a round whose %(name)s has passed: give it new dates first", name=name)


def check_extension(current: datetime | None, closes_at: datetime | None, now: datetime) -> None:
    """Invalid unless an open round's new closes_at is later than now and than the current one."""
    if closes_at is None:
        raise Invalid("closes_at: an open round keeps its closing date, which can only be moved later: give a later one")
    check_ahead(now, closes_at, None)
    if current is not None and as_utc(closes_at) <= as_utc(current):
        raise Invalid("closes_at must be later than the current one: an open round can only be extended")


def check_dimensions(dimensions: Collection[str]) -> None:
    """Invalid when a dimension is empty or named twice."""
    if any(not d.strip() for d in dimensions):
        raise Invalid("dimensions must be non-empty attribute names")
    if len(set(dimensions)) != len(dimensions):
        raise Invalid("dimensions must not repeat")


def in_audience(audience_groups: Collection[str], groups: Collection[str]) -> bool:
    """Whether someone with these groups belongs to the audience (empty = everyone); case does not matter."""
    return not audience_groups or bool({g.casefold() for g in audience_groups} & {g.casefold() for g in groups})


def can_see(round_: Round, viewer: Viewer) -> bool:
    """Admins see every round, moderators every launched one, the audience its own launched rounds."""
    if viewer.is_admin:
        return True
    if round_.status == "draft":
        return False
    return viewer.is_moderator or in_audience(round_.audience_groups, viewer.groups)


def can_read_results(round_: Round, viewer: Viewer) -> bool:
    """Nobody while open; admins after close; the audience after publish."""
    if round_.status == "closed":
        return viewer.is_admin
    if round_.status == "published":
        return viewer.is_admin or in_audience(round_.audience_groups, viewer.groups)
    return False
