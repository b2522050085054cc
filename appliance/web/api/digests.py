"""Digest settings of a round and the outgoing mail's state (admins); the one-click opt-out of reminders."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from pydantic import BaseModel, ConfigDict, Field

from appliance.services import notifications as service
from appliance.services import outbox
from appliance.services.context import Appliance
from appliance.storage.digests import DigestSchedule
from appliance.web.api.models import PROBLEMS
from appliance.web.auth import requires_admin
from appliance.web.pages.labels import N_

PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body><main><p>{message}</p></main></body></html>
"""
# Mail gateways open the links of every message they scan: the link only asks, the button does it.
OPT_OUT_WORDS = {
    "title": N_("Reminders"),
    "confirm": N_("Stop the reminders of consultations? Invitations and results still come."),
    "button": N_("Stop reminders"),
    "done": N_("You will get no more reminders. Invitations and results still come."),
    "bad": N_("This link is not valid: copy the whole link from the message."),
}


def opt_out_page(app: Appliance, what: str, status: int = 200) -> Response[str]:
    """The page of the reminder's opt-out link, in the reminder's language (mail.language)."""
    say = service.mail_speaker(app)
    message = say.gettext(OPT_OUT_WORDS[what])
    if what == "confirm":  # the form posts to the page's own address, token included
        button = say.gettext(OPT_OUT_WORDS["button"])
        message += f'</p>\n<form method="post"><button type="submit">{button}</button></form><p>'
    return Response(PAGE.format(lang=say.language, title=say.gettext(OPT_OUT_WORDS["title"]), message=message),
                    status_code=status, media_type=MediaType.HTML)


class DigestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipients: list[str] = Field(min_length=1, max_length=50,
                                  description='"admins", "audience" or directory group names')
    weekday: int = Field(0, ge=0, le=6, description="0 is Monday, 6 Sunday")
    local_time: str = Field("09:00", description="HH:MM in time_zone")
    time_zone: str = Field(service.DEFAULT_ZONE, max_length=64, description="an IANA time zone")
    enabled: bool = True
    final_at_publication: bool = True


class DigestOut(BaseModel):
    round_id: str
    recipients: list[str]
    weekday: int
    local_time: str
    time_zone: str
    enabled: bool
    final_at_publication: bool
    reachable: int = Field(description="people the recipients stand for now, with an email")
    without_email: int = Field(description="people the recipients stand for now, skipped for want of an email")


class FailedMailOut(BaseModel):
    recipient: str
    subject: str
    last_error: str
    attempts: int
    created_at: int = Field(description="when it was queued, Unix seconds")


class OutboxOut(BaseModel):
    enabled: bool = Field(description="mail.enabled: whether anything is sent at all")
    waiting: int = Field(description="messages queued, due now or retrying later")
    failed: int = Field(description="messages given up on after every retry")
    latest_failures: list[FailedMailOut] = Field(description="the 50 latest given up on, with the relay's answer")


def digest_out(app: Appliance, schedule: DigestSchedule) -> DigestOut:
    round_ = service.get_round(app, schedule.round_id)
    reachable, without_email = service.resolve_recipients(app, round_, schedule.recipients)
    return DigestOut(round_id=schedule.round_id, recipients=list(schedule.recipients), weekday=schedule.weekday,
                     local_time=schedule.local_time, time_zone=schedule.time_zone, enabled=schedule.enabled,
                     final_at_publication=schedule.final_at_publication, reachable=len(reachable),
                     without_email=without_email)


class DigestController(Controller):
    path = "/api/v1"
    tags = ["digests"]

    @get("/rounds/{round_id:str}/digest", guards=[requires_admin], sync_to_thread=True, responses=PROBLEMS)
    def read(self, app: NamedDependency[Appliance], round_id: FromPath[str]) -> DigestOut:
        """A round's digest settings, and how many people they reach now."""
        return digest_out(app, service.digest_schedule(app, round_id))

    @put("/rounds/{round_id:str}/digest", guards=[requires_admin], sync_to_thread=True, responses=PROBLEMS)
    def write(self, app: NamedDependency[Appliance], actor: NamedDependency[str], round_id: FromPath[str],
              data: JSONBody[DigestIn]) -> DigestOut:
        """Set who gets the round's weekly digest, when (local time), and whether a final one goes at publication."""
        schedule = DigestSchedule(round_id, tuple(data.recipients), data.weekday, data.local_time, data.time_zone,
                                  data.enabled, data.final_at_publication, 0)
        return digest_out(app, service.set_digest_schedule(app, actor, schedule))

    @get("/mail/outbox", guards=[requires_admin], sync_to_thread=True, responses=PROBLEMS)
    def outbox(self, app: NamedDependency[Appliance]) -> OutboxOut:
        """What the outgoing mail is doing: how many wait, how many failed, and why the latest failed."""
        state = outbox.outbox_state(app.dbs.identity)
        latest = [FailedMailOut(recipient=f.recipient, subject=f.subject, last_error=f.last_error,
                                attempts=f.attempts, created_at=f.created_at) for f in state.latest_failures]
        return OutboxOut(enabled=app.settings.mail.enabled, waiting=state.waiting, failed=state.failed,
                         latest_failures=latest)

    @get("/unsubscribe", sync_to_thread=True, media_type=MediaType.HTML, opt={"exclude_from_auth": True})
    def confirm_unsubscribe(self, app: NamedDependency[Appliance], token: FromQuery[str] = "") -> Response[str]:
        """The opt-out link of a reminder: a page whose button stops the reminders. Opening it changes nothing."""
        if service.person_of_token(app.instance_secret, token) is None:
            return opt_out_page(app, "bad", 400)
        return opt_out_page(app, "confirm")

    @post("/unsubscribe", sync_to_thread=True, media_type=MediaType.HTML, status_code=200,
          opt={"exclude_from_auth": True, "exclude_from_csrf": True})
    def unsubscribe(self, app: NamedDependency[Appliance], token: FromQuery[str] = "") -> Response[str]:
        """No more reminders for the person the signed token names (the token stands for the CSRF check)."""
        if not service.opt_out_of_reminders(app, token):
            return opt_out_page(app, "bad", 400)
        return opt_out_page(app, "done")
