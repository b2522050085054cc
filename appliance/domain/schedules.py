"""Schedule arithmetic: when to retry a message, what a round's dates call for now."""

from __future__ import annotations

from datetime import datetime, timezone

from appliance.domain.rounds import Round


def retry_delay(attempts: int, first: int, cap: int) -> int:
    """Seconds to wait after the `attempts`-th failed attempt: first, 2 x first, 4 x first... at most cap."""
    return min(first * 2 ** max(attempts - 1, 0), cap)


def as_utc(moment: datetime) -> datetime:
    """An aware datetime; a naive one is taken as UTC (how rounds imported from elsewhere may store dates)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _passed(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and as_utc(moment) <= now


def due_step(round_: Round, now: datetime) -> str | None:
    """"open" for a draft whose opens_at has come, "close" for an open round whose closes_at has passed.

    A draft whose closes_at has passed as well is left alone (see missed_window):
    opening it only to close it at once would publish an empty consultation.
    """
    if round_.status == "draft" and _passed(round_.opens_at, now) and not _passed(round_.closes_at, now):
        return "open"
    if round_.status == "open" and _passed(round_.closes_at, now):
        return "close"
    return None


def missed_window(round_: Round, now: datetime) -> bool:
    """A draft whose whole scheduled window passed before anyone opened it: an admin has to give new dates."""
    return round_.status == "draft" and _passed(round_.opens_at, now) and _passed(round_.closes_at, now)
