"""Schedule arithmetic: time zones, weekly local times, when to retry a message, what a round's dates call for now."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.domain.errors import Invalid
from appliance.domain.rounds import Round, as_utc

_LOCAL_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def retry_delay(attempts: int, first: int, cap: int) -> int:
    """Seconds to wait after the `attempts`-th failed attempt: first, 2 x first, 4 x first... at most cap."""
    return min(first * 2 ** max(attempts - 1, 0), cap)


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


@lru_cache(maxsize=64)
def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone, or Invalid naming it (a folder of the database such as "Europe" is no zone)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid("unknown time zone %(name)s: give an IANA name such as 'Europe/Paris'", name=repr(name)) from None


def parse_local_time(text: str) -> time:
    """"HH:MM" (24-hour clock), or Invalid."""
    match = _LOCAL_TIME.fullmatch(text)  # "$" would let a final newline through
    if match is None:
        raise Invalid("bad time %(text)s: give the local time as HH:MM, from 00:00 to 23:59", text=repr(text))
    return time(int(match[1]), int(match[2]))


def latest_occurrence(weekday: int, local_time: str, zone_name: str, now: datetime) -> datetime:
    """The last weekday-at-local-time at or before `now`, as an aware time in that zone (wall clock, DST-aware)."""
    zone, at = zone_named(zone_name), parse_local_time(local_time)
    local_now = now.astimezone(zone)
    day = local_now.date() - timedelta(days=(local_now.weekday() - weekday) % 7)
    occurrence = datetime.combine(day, at, tzinfo=zone)
    if occurrence > now:
        occurrence = datetime.combine(day - timedelta(days=7), at, tzinfo=zone)
    return occurrence
