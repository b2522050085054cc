"""Admins' pages: the rounds, a new round, a round's dashboard and its lifecycle buttons."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import partial
from typing import Annotated
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import BaseModel, Field, field_validator

from appliance.domain.errors import Conflict, DomainError, Invalid
from appliance.domain.proposals import clean_paragraphs, clean_text
from appliance.domain.rounds import (DESCRIPTION_MAX_CHARS, MAX_K, MIN_K, QUESTION_MAX_CHARS, QUOTA_RANGE,
                                     TITLE_MAX_CHARS, Round, Viewer)
from appliance.services import notifications, outbox, participation
from appliance.services import rounds as service
from appliance.services.context import Appliance
from appliance.storage import audit, proposals
from appliance.storage.digests import DigestSchedule
from appliance.web.auth import requires_admin
from appliance.web.pages.errors import said
from appliance.web.pages.labels import NOTICES
from appliance.web.pages.render import page, see_other, speaker_for
from appliance.web.pages.session import FORM

MAIL_FAILURES_SHOWN = 5


LIFECYCLE = {"open": ("opened", service.open_round), "close": ("closed", service.close_round),
             "publish": ("published", service.publish_round)}


class RoundForm(BaseModel):
    title: str = Field("", max_length=TITLE_MAX_CHARS)
    question: str = Field("", max_length=QUESTION_MAX_CHARS)
    description: str = Field("", max_length=DESCRIPTION_MAX_CHARS)
    audience_groups: list[str] | str = Field(default_factory=list)
    dimensions: list[str] | str = Field(default_factory=list)
    k: str = Field("", max_length=6)
    opens_at: str = Field("", max_length=32)
    closes_at: str = Field("", max_length=32)
    proposals_close_at: str = Field("", max_length=32)
    proposal_quota: str = Field("", max_length=6)
    moderation: str = Field("pre", max_length=8)

    @field_validator("description", mode="before")
    @classmethod
    def one_character_per_line_end(cls, value: object) -> object:
        """A browser sends a text area's lines ended with \r\n: counted as one character, as stored."""
        return value.replace("\r\n", "\n") if isinstance(value, str) else value


CONFIRMED = ("close", "publish")  # steps that cannot be undone: the form's box must be ticked


class LifecycleForm(BaseModel):
    confirm: str = Field("", max_length=8)


def check_confirmed(form: LifecycleForm) -> None:
    """Invalid unless the form's box saying what cannot be undone was ticked."""
    if form.confirm != "1":
        raise Invalid("tick the box that says what this does, to confirm it: it cannot be undone")


class DatesForm(BaseModel):
    opens_at: str | None = Field(None, max_length=32)  # absent: not on the form (an open round's)
    closes_at: str = Field("", max_length=32)
    proposals_close_at: str | None = Field(None, max_length=32)


DATE_FIELDS = ("opens_at", "closes_at", "proposals_close_at")


def local_input(moment: datetime | None, zone: str) -> str:
    """A stored date as a datetime-local field shows it, in the organisation's time zone; "" for none."""
    try:
        return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M") if moment else ""
    except OverflowError:  # near year 9999, stored before dates were kept within reach: the admin gives a new one
        return ""


class DigestForm(BaseModel):
    recipients: list[str] | str = Field(default_factory=list)
    weekday: str = Field("0", max_length=2)
    local_time: str = Field("09:00", max_length=8)
    time_zone: str = Field(notifications.DEFAULT_ZONE, max_length=64)
    enabled: str = Field("", max_length=2)  # a checkbox: "1" when ticked, absent otherwise
    final_at_publication: str = Field("", max_length=2)


def as_list(value: list[str] | str) -> tuple[str, ...]:
    """A form field sent once is a string, sent several times a list."""
    return (value,) if isinstance(value, str) else tuple(value)


def parse_local_moment(value: str, name: str, zone: str) -> datetime | None:
    """A datetime-local field, read in the organisation's time zone (server.time_zone); empty is no date."""
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        local = moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))  # an offset given is kept
        return local.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise Invalid("%(name)s: not a date and time within reach", name=name) from None


def parse_count(value: str, name: str) -> int | None:
    """A whole number field; empty takes the default."""
    if not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise Invalid("%(name)s: not a whole number", name=name) from None


def draft_from(form: RoundForm, zone: str) -> service.RoundDraft:
    """The round draft the form describes; Invalid for an unreadable number or date."""
    moment = partial(parse_local_moment, zone=zone)
    return service.RoundDraft(
        title=form.title, question=form.question, description=form.description,
        audience_groups=as_list(form.audience_groups), dimensions=as_list(form.dimensions),
        k=parse_count(form.k, "k"), proposal_quota=parse_count(form.proposal_quota, "proposal_quota"),
        opens_at=moment(form.opens_at, "opens_at"), closes_at=moment(form.closes_at, "closes_at"),
        proposals_close_at=moment(form.proposals_close_at, "proposals_close_at"), moderation=form.moderation)


def form_of(round_: Round, zone: str) -> RoundForm:
    """A draft's settings as the round form shows them."""
    return RoundForm(
        title=round_.title, question=round_.question, description=round_.description,
        audience_groups=list(round_.audience_groups), dimensions=list(round_.dimensions), k=str(round_.k),
        proposal_quota=str(round_.proposal_quota), moderation=round_.moderation,
        **{name: local_input(getattr(round_, name), zone) for name in DATE_FIELDS})


def changed_settings(round_: Round, form: RoundForm, zone: str, default: dict[str, int]) -> dict[str, object]:
    """The settings the form changes in the draft: a date shown to the minute and sent back as it was is
    unchanged, and so are the same groups or dimensions in another order, and an emptied k or quota that
    was the default (`default`: service.defaulted)."""
    draft = draft_from(form, zone)
    shown = form_of(round_, zone)
    changes = {}
    for name in service.EDITABLE:
        value, current = getattr(draft, name), getattr(round_, name)
        if value is None and name in default:
            value = default[name]
        if name in DATE_FIELDS:
            same = getattr(form, name).strip() == getattr(shown, name)
        elif name in ("audience_groups", "dimensions"):
            same = set(value) == set(current)
        elif name in ("title", "question", "description"):  # as stored: a browser sends a text area's lines
            same = (clean_paragraphs if name == "description" else clean_text)(value) == current  # with \r\n
        else:
            same = value == current
        if not same:
            changes[name] = value
    return changes


class AdminPages(Controller):
    path = "/admin/rounds"
    include_in_schema = False
    guards = [requires_admin]

    @get("/", sync_to_thread=True)
    def list_rounds(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer],
                    request: Request, done: FromQuery[str | None] = None) -> Template:
        """Every round, with its status; with mail on, what the outgoing mail is doing."""
        mail = outbox.outbox_state(app.dbs.identity, MAIL_FAILURES_SHOWN) if app.settings.mail.enabled else None
        notice = speaker_for(request).gettext(NOTICES["deleted"]) if done == "deleted" else None
        return page(request, "admin_rounds.html", rounds=service.visible_rounds(app, viewer), mail=mail,
                    notice=notice)

    @get("/new", sync_to_thread=True)
    def new(self, app: NamedDependency[Appliance], request: Request) -> Template:
        """The form for a new round."""
        defaults = app.settings.rounds
        form = RoundForm(k=str(defaults.default_k), proposal_quota=str(defaults.proposal_quota))
        return self._form(app, request, form)

    @staticmethod
    def _form(app: Appliance, request: Request, form: RoundForm, status: int = 200, error: str | None = None,
              editing: Round | None = None):
        """The round form: empty for a new round, or a draft's settings (`editing`) to change them."""
        chosen_groups, chosen_dimensions = as_list(form.audience_groups), as_list(form.dimensions)
        dimensions = app.directory.dimensions()
        return page(request, "admin_new.html", status=status, error=error, form=form, editing=editing,
                    min_k=MIN_K, max_k=MAX_K,
                    quota_range=QUOTA_RANGE,
                    chosen_groups=chosen_groups, chosen_dimensions=chosen_dimensions,
                    # a draft's group or dimension the directory no longer has stays on its form, ticked: saving
                    # the title does not widen the audience to everyone
                    groups=sorted(set(app.directory.group_names()) | set(chosen_groups)),
                    dimensions=[*dimensions, *(d for d in chosen_dimensions if d not in dimensions)])

    @post("/new", sync_to_thread=True, status_code=303)
    def create(self, app: NamedDependency[Appliance], actor: NamedDependency[str], request: Request,
               data: Annotated[RoundForm, FORM]) -> Redirect | Template:
        """Create the draft round; a refused form comes back with its values and the reason."""
        try:
            round_ = service.create_round(app, actor, draft_from(data, app.settings.server.time_zone))
        except DomainError as error:
            return self._form(app, request, data, error.status, said(request, error))
        return see_other(f"/admin/rounds/{round_.id}?done=created")

    @get("/{round_id:str}/edit", sync_to_thread=True)
    def edit(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], request: Request,
             round_id: FromPath[str]) -> Redirect | Template:
        """The form of a draft's settings; a round no longer in draft goes back to its dashboard."""
        round_ = service.find_round(app, round_id, viewer)
        if round_.status != "draft":
            return see_other(f"/admin/rounds/{round_id}")
        return self._form(app, request, form_of(round_, app.settings.server.time_zone), editing=round_)

    @post("/{round_id:str}/edit", sync_to_thread=True, status_code=303)
    def save_draft(self, app: NamedDependency[Appliance], actor: NamedDependency[str],
                   viewer: NamedDependency[Viewer], request: Request, round_id: FromPath[str],
                   data: Annotated[RoundForm, FORM]) -> Redirect | Template:
        """Save what changed in the draft (the API's PATCH); a refused form comes back with its values."""
        round_ = service.find_round(app, round_id, viewer)
        zone = app.settings.server.time_zone
        try:
            if round_.status != "draft":  # a form opened before the round was
                raise Conflict("the round was opened meanwhile: its settings cannot change any more")
            changes = changed_settings(round_, data, zone, service.defaulted(app))
            if changes:
                service.edit_round(app, actor, round_id, changes)
        except DomainError as error:
            return self._form(app, request, data, error.status, said(request, error), editing=round_)
        return see_other(f"/admin/rounds/{round_id}?done={'edited' if changes else 'unchanged'}")

    @post("/{round_id:str}/delete", sync_to_thread=True, status_code=303)
    def delete(self, app: NamedDependency[Appliance], actor: NamedDependency[str], viewer: NamedDependency[Viewer],
               request: Request, round_id: FromPath[str], data: Annotated[LifecycleForm, FORM]) -> Redirect | Template:
        """Delete a draft, once confirmed; a refusal comes back on the dashboard."""
        try:
            check_confirmed(data)
            service.delete_draft(app, actor, round_id)
        except DomainError as error:
            return self._dashboard(app, viewer, request, round_id, refused=error)
        return see_other("/admin/rounds?done=deleted")

    @get("/{round_id:str}", sync_to_thread=True)
    def dashboard(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], request: Request,
                  round_id: FromPath[str], done: FromQuery[str | None] = None) -> Template:
        """A round's settings, participation within the disclosure rules, moderation backlog, next step."""
        notice = speaker_for(request).gettext(NOTICES[done]) if done in NOTICES else None
        return self._dashboard(app, viewer, request, round_id, notice=notice)

    @staticmethod
    def _dashboard(app: Appliance, viewer: Viewer, request: Request, round_id: str, *, notice: str | None = None,
                   refused: DomainError | None = None, typed_dates: DatesForm | None = None,
                   typed_digest: DigestSchedule | None = None) -> Template:
        """The dashboard; after a refused form, with the reason and the values the admin typed, to correct them."""
        round_ = service.find_round(app, round_id, viewer)
        if round_.status == "open":
            participation.release(app, round_)  # the batch due now reaches the backlog, as on the desk
        backlog = len(proposals.list_by_status(app.dbs.ballots, round_id, "pending"))
        digest = typed_digest or notifications.digest_schedule(app, round_id)
        reachable, without_email = notifications.resolve_recipients(app, round_, digest.recipients)
        unusable = [r for r in reachable if not notifications.has_address(r.person)]  # skipped when mail goes out
        reachable, without_email = len(reachable) - len(unusable), without_email + len(unusable)
        zone = app.settings.server.time_zone
        dates = {name: local_input(getattr(round_, name), zone) for name in DATE_FIELDS}
        if typed_dates is not None:
            dates |= {name: value for name in DATE_FIELDS if (value := getattr(typed_dates, name)) is not None}
        return page(request, "admin_round.html", status=refused.status if refused else 200,
                    error=said(request, refused) if refused else None, round=round_, notice=notice,
                    backlog=backlog, next_batch=participation.next_batch(app, round_),
                    steps=audit.round_steps(app.dbs.identity, round_id), dates=dates,
                    dates_refused=typed_dates is not None,
                    participation=service.participation(app, round_id), digest=digest,
                    digest_reach=(reachable, without_email), mail_enabled=app.settings.mail.enabled,
                    groups=sorted(g for g in app.directory.group_names()
                                  if g not in (notifications.ADMINS, notifications.AUDIENCE)))

    @post("/{round_id:str}/digest", sync_to_thread=True, status_code=303)
    def digest(self, app: NamedDependency[Appliance], actor: NamedDependency[str], viewer: NamedDependency[Viewer],
               request: Request, round_id: FromPath[str], data: Annotated[DigestForm, FORM]) -> Redirect | Template:
        """Save who gets the round's weekly digest and when; a refused value comes back on the dashboard."""
        weekday = data.weekday.strip() or "0"  # empty: Monday; not a number: -1, refused as out of range
        schedule = DigestSchedule(round_id, as_list(data.recipients), int(weekday) if weekday.isdecimal() else -1,
                                  data.local_time, data.time_zone.strip(), data.enabled == "1",
                                  data.final_at_publication == "1", 0)
        try:
            notifications.set_digest_schedule(app, actor, schedule)
        except DomainError as error:
            return self._dashboard(app, viewer, request, round_id, refused=error, typed_digest=schedule)
        return see_other(f"/admin/rounds/{round_id}?done=digest#digest")

    @post("/{round_id:str}/dates", sync_to_thread=True, status_code=303)
    def dates(self, app: NamedDependency[Appliance], actor: NamedDependency[str], viewer: NamedDependency[Viewer],
              request: Request, round_id: FromPath[str], data: Annotated[DatesForm, FORM]) -> Redirect | Template:
        """New dates for a draft, or a later close for an open round (the API's PATCH); a refusal comes back."""
        zone = app.settings.server.time_zone
        try:
            changes = {name: parse_local_moment(value, name, zone) for name in DATE_FIELDS
                       if (value := getattr(data, name)) is not None}
            service.edit_round(app, actor, round_id, changes)
        except DomainError as error:
            return self._dashboard(app, viewer, request, round_id, refused=error, typed_dates=data)
        return see_other(f"/admin/rounds/{round_id}?done=dated")

    @post("/{round_id:str}/{action:str}", sync_to_thread=True, status_code=303)
    def lifecycle(self, app: NamedDependency[Appliance], actor: NamedDependency[str], viewer: NamedDependency[Viewer],
                  request: Request, round_id: FromPath[str], action: FromPath[str],
                  data: Annotated[LifecycleForm, FORM]) -> Redirect | Template:
        """Open, close or publish the round; closing and publishing, which cannot be undone, once confirmed."""
        if action not in LIFECYCLE:
            raise Invalid("unknown action %(action)s", action=repr(action))
        done, step = LIFECYCLE[action]
        try:
            if action in CONFIRMED:
                check_confirmed(data)
            step(app, actor, round_id)
        except DomainError as error:
            return self._dashboard(app, viewer, request, round_id, refused=error)
        return see_other(f"/admin/rounds/{round_id}?done={done}")
