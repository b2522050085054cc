"""Round lifecycle, schedule, dimensions and who may see a round or its results."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from appliance.domain.errors import Conflict, Invalid
from appliance.domain.schedules import zone_named
from appliance.domain.rounds import (
    STATUSES,
    TRANSITIONS,
    Round,
    Viewer,
    can_read_results,
    can_see,
    check_ahead,
    check_can_open,
    check_dimensions,
    check_extension,
    check_schedule,
    in_audience,
    next_status,
)

MONDAY = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)

ROUND = Round(
    id="r1", title="Day-to-day work", question="How could we make our day-to-day work easier?",
    description="", audience_groups=("staff",), dimensions=("department", "site"), k=5,
    opens_at=None, closes_at=None, proposals_close_at=None, moderation="pre", status="draft",
    proposal_min_chars=12, proposal_max_chars=280, proposal_quota=5, release_interval_seconds=3600,
)
VIEWERS = {
    "admin": Viewer("local:admin", frozenset({"admins"}), is_admin=True, is_moderator=False),
    "moderator": Viewer("local:mod", frozenset({"moderators"}), is_admin=False, is_moderator=True),
    "member": Viewer("local:u01", frozenset({"staff", "lyon"}), is_admin=False, is_moderator=False),
    "outsider": Viewer("local:ext", frozenset({"contractors"}), is_admin=False, is_moderator=False),
}


# Lifecycle

@pytest.mark.parametrize(
    ("current", "action", "reached"),
    [("draft", "open", "open"), ("open", "close", "closed"), ("closed", "publish", "published")],
)
def test_it_moves_a_round_forward_one_step(current: str, action: str, reached: str) -> None:
    assert next_status(current, action) == reached


def test_the_lifecycle_is_draft_open_closed_published() -> None:
    assert STATUSES == ("draft", "open", "closed", "published")
    assert TRANSITIONS == {"open": ("draft", "open"), "close": ("open", "closed"),
                           "publish": ("closed", "published")}


REFUSED = [(status, action) for action, (required, _) in TRANSITIONS.items()
           for status in STATUSES if status != required]


@pytest.mark.parametrize(("current", "action"), REFUSED)
def test_it_refuses_a_transition_from_the_wrong_status_naming_both_statuses(current: str, action: str) -> None:
    required = TRANSITIONS[action][0]
    with pytest.raises(Conflict) as raised:
        next_status(current, action)
    assert str(raised.value) == f"cannot {action} a round that is {current} (it must be {required})"


def test_it_never_reopens_a_closed_round() -> None:
    with pytest.raises(Conflict, match=r"^cannot open a round that is closed \(it must be draft\)$"):
        next_status("closed", "open")
    with pytest.raises(Conflict, match=r"^cannot open a round that is published \(it must be draft\)$"):
        next_status("published", "open")


def test_a_refused_transition_is_a_409() -> None:
    with pytest.raises(Conflict) as raised:
        next_status("draft", "publish")
    assert raised.value.status == 409


# Schedule

def test_it_accepts_dates_in_order() -> None:
    check_schedule(MONDAY, MONDAY + 14 * DAY, MONDAY + 7 * DAY)
    check_schedule(MONDAY, MONDAY + 14 * DAY, MONDAY + 14 * DAY)  # proposals may close with the round


@pytest.mark.parametrize(
    ("opens_at", "closes_at", "proposals_close_at"),
    [(None, None, None), (MONDAY, None, None), (None, MONDAY, None), (None, None, MONDAY),
     (None, MONDAY + DAY, MONDAY), (MONDAY, None, MONDAY + DAY)],
)
def test_it_accepts_a_schedule_with_dates_left_out(opens_at, closes_at, proposals_close_at) -> None:
    check_schedule(opens_at, closes_at, proposals_close_at)


@pytest.mark.parametrize(
    ("opens_at", "closes_at", "proposals_close_at", "message"),
    [
        (MONDAY, MONDAY, None, "closes_at must be after opens_at"),
        (MONDAY, MONDAY - DAY, None, "closes_at must be after opens_at"),
        (MONDAY, MONDAY + DAY, MONDAY + 2 * DAY, "proposals_close_at must not be after closes_at"),
        (None, MONDAY + DAY, MONDAY + 2 * DAY, "proposals_close_at must not be after closes_at"),
        (MONDAY, MONDAY + DAY, MONDAY, "proposals_close_at must be after opens_at"),
        (MONDAY, None, MONDAY - DAY, "proposals_close_at must be after opens_at"),
    ],
)
def test_it_refuses_dates_out_of_order(opens_at, closes_at, proposals_close_at, message: str) -> None:
    with pytest.raises(Invalid) as raised:
        check_schedule(opens_at, closes_at, proposals_close_at)
    assert str(raised.value) == message
    assert raised.value.status == 400


@pytest.mark.parametrize("name", ["opens_at", "closes_at", "proposals_close_at"])
@pytest.mark.parametrize("moment", [
    datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
    datetime(3000, 1, 1, tzinfo=timezone.utc),
    datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5))),
    datetime(1999, 12, 31, 23, 59, tzinfo=timezone.utc),
])
def test_it_refuses_a_date_outside_the_years_it_can_show_naming_the_field(name: str, moment: datetime) -> None:
    dates = {"opens_at": None, "closes_at": None, "proposals_close_at": None} | {name: moment}
    with pytest.raises(Invalid) as raised:
        check_schedule(**dates)
    assert str(raised.value) == f"{name} must be in the years 2000 to 2999"


def test_it_accepts_the_first_and_last_years_it_can_show() -> None:
    check_schedule(datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2999, 12, 31, 23, 0,
                   tzinfo=timezone(timedelta(hours=-5))), None)


@pytest.mark.parametrize(("closes_at", "proposals_close_at", "name"), [
    (MONDAY, None, "closes_at"), (MONDAY - DAY, None, "closes_at"), (MONDAY + DAY, MONDAY, "proposals_close_at"),
    (MONDAY.replace(tzinfo=None), None, "closes_at"),  # a naive date is UTC
])
def test_it_refuses_a_closing_date_already_past(closes_at, proposals_close_at, name: str) -> None:
    with pytest.raises(Invalid) as raised:
        check_ahead(MONDAY, closes_at, proposals_close_at)
    assert str(raised.value) == f"{name} is already past: give a later date"


def test_it_accepts_closing_dates_to_come_or_none() -> None:
    check_ahead(MONDAY, MONDAY + DAY, MONDAY + DAY / 2)
    check_ahead(MONDAY, None, None)


@pytest.mark.parametrize(("closes_at", "proposals_close_at", "name"), [
    (MONDAY - DAY, None, "closes_at"), (MONDAY + DAY, MONDAY - DAY, "proposals_close_at"),
])
def test_it_refuses_to_open_a_round_whose_closing_dates_passed(closes_at, proposals_close_at, name: str) -> None:
    late = replace(ROUND, closes_at=closes_at, proposals_close_at=proposals_close_at)
    with pytest.raises(Conflict) as raised:
        check_can_open(late, MONDAY)
    assert str(raised.value) == f"cannot open a round whose {name} has passed: give it new dates first"
    assert raised.value.status == 409
    check_can_open(replace(late, closes_at=None, proposals_close_at=None), MONDAY)


@pytest.mark.parametrize(("current", "closes_at", "message"), [
    (MONDAY + DAY, None, "closes_at: an open round keeps its closing date, which can only be moved later: give a later one"),
    (MONDAY + DAY, MONDAY - DAY, "closes_at is already past: give a later date"),
    (MONDAY + 2 * DAY, MONDAY + DAY, "closes_at must be later than the current one"),
    (MONDAY + DAY, MONDAY + DAY, "closes_at must be later than the current one"),
])
def test_it_extends_an_open_round_only_to_a_later_closing_date(current, closes_at, message: str) -> None:
    with pytest.raises(Invalid) as raised:
        check_extension(current, closes_at, MONDAY)
    assert str(raised.value).startswith(message)
    check_extension(current, current + DAY, MONDAY)
    check_extension(None, MONDAY + DAY, MONDAY)


@pytest.mark.parametrize("name", ["Europe", "Etc", "America/", "", "../etc/passwd", "Nowhere/City"])
def test_a_folder_or_an_unknown_name_is_an_invalid_time_zone_naming_it(name: str) -> None:
    with pytest.raises(Invalid) as raised:
        zone_named(name)
    assert repr(name) in str(raised.value) and raised.value.status == 400


# Dimensions

@pytest.mark.parametrize("dimensions", [(), ("department",), ("department", "site", "grade")])
def test_it_accepts_distinct_named_dimensions(dimensions: tuple[str, ...]) -> None:
    check_dimensions(dimensions)


@pytest.mark.parametrize("dimensions", [("",), ("department", "  "), ("\t",)])
def test_it_refuses_an_empty_dimension_name(dimensions: tuple[str, ...]) -> None:
    with pytest.raises(Invalid, match="^dimensions must be non-empty attribute names$"):
        check_dimensions(dimensions)


def test_it_refuses_a_dimension_named_twice() -> None:
    with pytest.raises(Invalid, match="^dimensions must not repeat$"):
        check_dimensions(["department", "site", "department"])


# Audience

def test_it_counts_a_member_of_any_audience_group_in_the_audience() -> None:
    assert in_audience(("staff", "interns"), {"interns"}) is True
    assert in_audience(("staff",), {"staff", "lyon"}) is True


def test_it_leaves_someone_in_no_audience_group_out() -> None:
    assert in_audience(("staff", "interns"), {"contractors"}) is False
    assert in_audience(("staff",), set()) is False


def test_an_empty_audience_is_everyone() -> None:
    assert in_audience((), {"contractors"}) is True
    assert in_audience((), set()) is True


# Who sees a round and its results

SEES = {
    # status: admin, moderator, audience member, outsider
    "draft": (True, False, False, False),
    "open": (True, True, True, False),
    "closed": (True, True, True, False),
    "published": (True, True, True, False),
}
READS_RESULTS = {
    "draft": (False, False, False, False),
    "open": (False, False, False, False),
    "closed": (True, False, False, False),
    "published": (True, False, True, False),
}
WHO = ("admin", "moderator", "member", "outsider")


@pytest.mark.parametrize("status", STATUSES)
def test_it_shows_a_round_to_admins_always_and_to_others_once_launched(status: str) -> None:
    round_ = replace(ROUND, status=status)
    assert tuple(can_see(round_, VIEWERS[who]) for who in WHO) == SEES[status]


@pytest.mark.parametrize("status", STATUSES)
def test_it_shows_results_to_nobody_while_open_to_admins_after_close_and_to_the_audience_after_publish(
        status: str) -> None:
    round_ = replace(ROUND, status=status)
    assert tuple(can_read_results(round_, VIEWERS[who]) for who in WHO) == READS_RESULTS[status]


def test_it_shows_a_launched_round_with_an_empty_audience_to_everyone() -> None:
    round_ = replace(ROUND, audience_groups=(), status="open")
    assert all(can_see(round_, viewer) for viewer in VIEWERS.values())
    assert not can_see(replace(round_, status="draft"), VIEWERS["outsider"])


def test_it_shows_published_results_of_an_everyone_round_to_everyone() -> None:
    round_ = replace(ROUND, audience_groups=(), status="published")
    assert all(can_read_results(round_, viewer) for viewer in VIEWERS.values())
    assert not can_read_results(replace(round_, status="closed"), VIEWERS["member"])


def test_it_shows_published_results_to_a_moderator_who_is_in_the_audience() -> None:
    moderator = replace(VIEWERS["moderator"], groups=frozenset({"moderators", "staff"}))
    assert can_read_results(replace(ROUND, status="published"), moderator) is True
    assert can_read_results(replace(ROUND, status="closed"), moderator) is False


def test_a_date_at_the_edge_of_the_calendar_is_still_written_somehow() -> None:
    from datetime import datetime, timedelta, timezone

    from appliance.i18n import Speaker

    edge = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(-timedelta(hours=5)))  # stored by an older version
    assert Speaker("fr", "Europe/Paris").datetime(edge) == edge.isoformat()  # no OverflowError, no 500
