"""Round mail: digest settings, weekly and final digests, invitations, reminders, results notices, opt-outs.

Everything goes through the outbox under a key naming the message, so a job
run twice (a restart, another process) queues nothing twice. Reminders go to
the round's whole audience (storage rule 9): nothing here knows, or may know,
who took part. Every figure comes from the participation band or the
publishable view.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from appliance.directory import DirectoryUnavailable, Person
from appliance.domain import digests as content
from appliance.domain import schedules
from appliance.domain.errors import Invalid, NotFound
from appliance.domain.rounds import Round, Viewer
from appliance.i18n import Speaker
from appliance.mail.message import parse_address
from appliance.services.context import Appliance
from appliance.services.outbox import Outgoing, compose, enqueue
from appliance.services.rounds import as_in_directory, participation, round_results, withdraw_open_mail
from appliance.storage import audit
from appliance.storage import digests as stored
from appliance.storage import proposals
from appliance.storage import rounds as stored_rounds
from appliance.storage.digests import DigestSchedule

log = logging.getLogger("appliance.mail")
T = TypeVar("T")

REMINDER_DAYS = 2  # the reminder goes this many days before the round closes
INVITED_FOR = timedelta(days=1)  # a reminder never goes sooner than this after the invitation
FINAL_GRACE = timedelta(days=1)  # without stored settings, a final digest follows a results notice this recent
ROUND_PATH = "/rounds/{round_id}"  # the round's web page
RESULTS_PATH = "/rounds/{round_id}/results"
UNSUBSCRIBE_PATH = "/api/v1/unsubscribe?token={token}"
ADMINS, AUDIENCE = "admins", "audience"
REMINDERS = "reminders"
DEFAULT_ZONE = "Europe/Paris"
JOB_VIEWER = Viewer(person_id="scheduler", groups=frozenset(), is_admin=True, is_moderator=False)


def default_schedule(round_id: str, time_zone: str = DEFAULT_ZONE) -> DigestSchedule:
    return DigestSchedule(round_id, (ADMINS,), 0, "09:00", time_zone, False, True, 0)


def get_round(app: Appliance, round_id: str) -> Round:
    round_ = stored_rounds.get_round(app.dbs.ballots, round_id)
    if round_ is None:
        raise NotFound("no round %(round_id)s", round_id=repr(round_id))
    return round_


def digest_schedule(app: Appliance, round_id: str) -> DigestSchedule:
    """The round's digest settings (off, to admins, Monday 09:00 in server.time_zone, when never set)."""
    get_round(app, round_id)
    return stored.get_schedule(app.dbs.identity, round_id) or default_schedule(round_id, app.settings.server.time_zone)


def set_digest_schedule(app: Appliance, actor: str, schedule: DigestSchedule) -> DigestSchedule:
    """Check and store a round's digest settings; digests fall due only from now on."""
    get_round(app, schedule.round_id)
    schedules.zone_named(schedule.time_zone)
    schedules.parse_local_time(schedule.local_time)
    if not 0 <= schedule.weekday <= 6:
        raise Invalid("weekday must be 0 (Monday) to 6 (Sunday)")
    recipients = tuple(dict.fromkeys(r.strip() for r in schedule.recipients if r.strip()))
    if not recipients:
        raise Invalid("recipients must name at least one of 'admins', 'audience' or a directory group")
    spelled = as_in_directory(app, [r for r in recipients if r not in (ADMINS, AUDIENCE)])
    unknown = [given for given, name in spelled.items() if name is None]
    if unknown:
        raise Invalid("unknown group %(group)s: recipients are 'admins', 'audience' or directory groups",
                      group=repr(unknown[0]))
    recipients = tuple(dict.fromkeys(spelled.get(r, r) for r in recipients))  # 'admins', 'audience' as they are
    schedule = replace(schedule, recipients=recipients, active_since=int(app.clock().timestamp()))
    stored.save_schedule(app.dbs.identity, schedule)
    audit.record(app.dbs.identity, actor, "round.digest", schedule.round_id,
                 f"{'on' if schedule.enabled else 'off'} {','.join(recipients)}")
    return schedule


@dataclass(frozen=True)
class Recipient:
    person: Person
    is_admin: bool


def _is_admin(app: Appliance, person: Person) -> bool:
    admin_groups = {g.casefold() for g in app.settings.directory.admin_groups}
    return any(g.casefold() in admin_groups for g in person.groups)


def has_address(person: Person) -> bool:
    """Whether the person's email parses as an address a message can go to."""
    try:
        parse_address(person.email)
    except ValueError:
        return False
    return True


def addressable(round_: Round, what: str, people: list[T], person: Callable[[T], Person]) -> list[T]:
    """Those whose address parses; the others skipped (one bad entry must not stop the mailing), with one log
    line that names nobody: logs never name people."""
    kept = [p for p in people if has_address(person(p))]
    if len(kept) < len(people):
        log.warning("round %s: %d recipient(s) of the %s skipped, their email address does not parse;"
                    " run `appliance doctor` or check the directory", round_.id, len(people) - len(kept), what)
    return kept


def _person(recipient: Recipient) -> Person:
    return recipient.person


def _itself(person: Person) -> Person:
    return person


def resolve_recipients(app: Appliance, round_: Round, names: tuple[str, ...]) -> tuple[list[Recipient], int]:
    """The people these recipient names stand for, each once, with an email; and how many had none."""
    people: dict[str, Person] = {}
    for name in names:
        groups = (app.settings.directory.admin_groups if name == ADMINS
                  else round_.audience_groups if name == AUDIENCE else [name])
        if name == ADMINS and not groups:
            continue
        for person in app.directory.audience(groups):
            people.setdefault(person.id, person)
    with_email = [Recipient(p, _is_admin(app, p)) for p in people.values() if p.email]
    return with_email, len(people) - len(with_email)


def whole_audience(app: Appliance, round_: Round) -> tuple[list[Person], int]:
    """Everyone in the round's audience who has an email, and how many have none."""
    members = app.directory.audience(round_.audience_groups)
    reachable = [p for p in members if p.email]
    return reachable, len(members) - len(reachable)


def public_url(app: Appliance) -> str:
    """server.public_url, without a trailing slash; empty when not set (mail then carries no links)."""
    return app.settings.server.public_url


def round_link(app: Appliance, round_id: str, results: bool = False) -> str | None:
    """The round's web page, or its results page; None without server.public_url."""
    base = public_url(app)
    return base + (RESULTS_PATH if results else ROUND_PATH).format(round_id=round_id) if base else None


def opt_out_token(secret: bytes, person_id: str) -> str:
    """A token naming the person, signed with the instance secret: opening it stops their reminders."""
    name = base64.urlsafe_b64encode(person_id.encode()).decode().rstrip("=")
    return f"{name}.{_signature(secret, person_id)}"


def _signature(secret: bytes, person_id: str) -> str:
    return hmac.new(secret, f"{person_id}\0{REMINDERS}".encode(), hashlib.sha256).hexdigest()


def person_of_token(secret: bytes, token: str) -> str | None:
    """The person id a token names, when its signature holds."""
    name, _, signature = token.partition(".")
    try:
        person_id = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    expected = _signature(secret, person_id).encode()
    return person_id if hmac.compare_digest(signature.encode(), expected) else None


def opt_out_of_reminders(app: Appliance, token: str) -> bool:
    """Record the opt-out a token asks for; False when the token is not one of ours."""
    person_id = person_of_token(app.instance_secret, token)
    if person_id is None:
        return False
    stored.opt_out(app.dbs.identity, person_id, REMINDERS)
    return True


def opt_out_path(app: Appliance, person_id: str) -> str:
    """The one-click opt-out link: absolute when a public URL is configured, else the path on the appliance."""
    return public_url(app) + UNSUBSCRIBE_PATH.format(token=opt_out_token(app.instance_secret, person_id))


def mail_speaker(app: Appliance) -> Speaker:
    """Round mail speaks mail.language, its dates in server.time_zone."""
    return Speaker(app.settings.mail.language, app.settings.server.time_zone)


def _mail(app: Appliance, key: str, person: Person, message: content.Content,
          headers: Mapping[str, str] | None = None) -> Outgoing:
    return compose(app.settings.mail, key, person.email, message.subject, message.text, message.html,
                   to_name=person.display_name, headers=headers)


def unsubscribe_headers(link: str) -> dict[str, str]:
    """RFC 2369 and RFC 8058: mail clients offer their own "unsubscribe" button, which posts to the link.

    Only for a link with a public URL: a bare path means nothing to a mail client; one-click needs HTTPS.
    """
    if not link.startswith(("https://", "http://")):
        return {}
    headers = {"List-Unsubscribe": f"<{link}>"}
    if link.startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def queue_weekly_digest(app: Appliance, round_: Round, schedule: DigestSchedule, now: datetime) -> int:
    """Queue the latest due weekly digest, if not queued yet: one per week and recipient, none of missed weeks."""
    occurrence = schedules.latest_occurrence(schedule.weekday, schedule.local_time, schedule.time_zone, now)
    seen_open = stored.notice_queued_at(app.dbs.identity, round_.id, "invitation") or 0
    period = occurrence.date().isoformat()
    if occurrence.timestamp() < max(schedule.active_since, seen_open) or period == schedule.last_period:
        return 0
    seen = participation(app, round_.id)
    accepted = len(proposals.list_by_status(app.dbs.ballots, round_.id, "accepted"))
    pending = len(proposals.list_by_status(app.dbs.ballots, round_.id, "pending"))
    recipients = addressable(round_, "weekly digest", resolve_recipients(app, round_, schedule.recipients)[0], _person)
    link, say = round_link(app, round_.id), mail_speaker(app)
    messages = (  # a generator: composed as they are written, a chunk at a time
        _mail(app, f"digest:{round_.id}:{period}:{r.person.email}", r.person,
              content.weekly_digest(round_.title, seen.band, seen.as_of, accepted,
                                    pending if r.is_admin else None, link, say))
        for r in recipients
    )
    queued = enqueue(app.dbs.identity, messages, now)
    stored.claim_period(app.dbs.identity, round_.id, period)
    return queued


def queue_final_digest(app: Appliance, round_: Round, schedule: DigestSchedule, now: datetime) -> int:
    """Queue the final digest (published rounds): the top proposals of the publishable view."""
    _, view = round_results(app, round_.id, JOB_VIEWER)
    message = content.final_digest(round_.title, view.voters if view.shown else None,
                                   content.top_proposals(view, "consensus"), content.top_proposals(view, "controversy"),
                                   round_link(app, round_.id, results=True), mail_speaker(app))
    recipients = addressable(round_, "final digest", resolve_recipients(app, round_, schedule.recipients)[0], _person)
    return enqueue(app.dbs.identity, (_mail(app, f"final:{round_.id}:{r.person.email}", r.person, message)
                                      for r in recipients), now)


def queue_notice(app: Appliance, round_: Round, kind: str, now: datetime) -> int:
    """An invitation, reminder or results notice to the whole audience (reminders skip those who opted out)."""
    refused = stored.opted_out(app.dbs.identity, REMINDERS) if kind == "reminder" else set()
    people = addressable(round_, kind, [p for p in whole_audience(app, round_)[0] if p.id not in refused], _itself)
    link = round_link(app, round_.id, results=kind == "results")
    opt_outs = kind == "reminder" and bool(public_url(app))  # without a public address mail carries no links
    say = mail_speaker(app)

    def message(person: Person) -> Outgoing:
        opt_out = opt_out_path(app, person.id) if opt_outs else None
        notice = content.notice(kind, round_.title, round_.question, round_.closes_at, link, opt_out, say)
        return _mail(app, _notice_key(kind, round_, person), person, notice,
                     unsubscribe_headers(opt_out) if opt_out else None)

    return enqueue(app.dbs.identity, (message(p) for p in people), now)


def _notice_key(kind: str, round_: Round, person: Person) -> str:
    """The outbox key of a notice: one per person, and for reminders one per closing date."""
    if kind == "reminder" and round_.closes_at is not None:
        return f"{kind}:{round_.id}:{int(round_.closes_at.timestamp())}:{person.email}"
    return f"{kind}:{round_.id}:{person.email}"


def _once(app: Appliance, round_: Round, kind: str, now: datetime, queue) -> None:
    """Queue a one-off message of the round unless done; recorded after queueing (keys make a retry harmless)."""
    if stored.notice_queued_at(app.dbs.identity, round_.id, kind) is None:
        queue()
        stored.record_notice(app.dbs.identity, round_.id, kind, int(now.timestamp()))


def _queued_at(app: Appliance, round_: Round, kind: str) -> datetime | None:
    at = stored.notice_queued_at(app.dbs.identity, round_.id, kind)
    return None if at is None else datetime.fromtimestamp(at, timezone.utc)


def reminder_due(app: Appliance, round_: Round, now: datetime) -> bool:
    """In the last REMINDER_DAYS before closing, not after, and at least INVITED_FOR after the invitation.

    Once, unless the round is extended afterwards to close more than twice REMINDER_DAYS after the reminder:
    its audience, told of the old closing time, then gets another in the last days before the new one.
    """
    closes_at, days = round_.closes_at, timedelta(days=REMINDER_DAYS)
    if closes_at is None or not closes_at - days <= now < closes_at:
        return False
    reminded = _queued_at(app, round_, "reminder")
    if reminded is not None and reminded >= closes_at - 2 * days:
        return False
    invited = _queued_at(app, round_, "invitation") or round_.opens_at
    return invited is not None and now - invited >= INVITED_FOR


def final_due(app: Appliance, round_: Round, schedule: DigestSchedule | None, now: datetime) -> bool:
    """Per the stored settings; without them per the default (on), for a round whose results notice is recent:
    a round published before this rule gets no surprise digest."""
    if schedule is not None:
        return schedule.final_at_publication
    results = _queued_at(app, round_, "results")
    return results is not None and now - results <= FINAL_GRACE


def mail_round(app: Appliance, round_: Round, now: datetime) -> None:
    """Whatever mail this round owes now."""
    saved = stored.get_schedule(app.dbs.identity, round_.id)
    schedule = saved or default_schedule(round_.id, app.settings.server.time_zone)  # what the dashboard shows
    if round_.status == "open":
        _once(app, round_, "invitation", now, lambda: queue_notice(app, round_, "invitation", now))
        if reminder_due(app, round_, now):
            queue_notice(app, round_, "reminder", now)
            stored.record_notice(app.dbs.identity, round_.id, "reminder", int(now.timestamp()), again=True)
        if schedule.enabled:
            participation(app, round_.id)  # records today's band once a day: digests show it a day late
            queue_weekly_digest(app, round_, schedule, now)
        current = stored_rounds.get_round(app.dbs.ballots, round_.id)
        if current is None or current.status != "open":  # closed while this was queued (a slow directory)
            withdraw_open_mail(app, round_.id)  # the close withdrew what was queued before it, not this
    elif round_.status == "published":
        _once(app, round_, "results", now, lambda: queue_notice(app, round_, "results", now))
        if final_due(app, round_, saved, now):
            _once(app, round_, "final", now, lambda: queue_final_digest(app, round_, schedule, now))


def send_round_mail(app: Appliance, now: datetime) -> None:
    """The round-mail job: every round's due messages into the outbox (the mail job sends them)."""
    failed = 0
    for round_ in stored_rounds.list_rounds(app.dbs.ballots):
        try:
            mail_round(app, round_, now)
        except DirectoryUnavailable as error:  # said by /readyz too; the next run tries again
            log.warning("round %s: its mail waits for the directory: %s", round_.id, error)
        except Exception:
            log.exception("round %s: its mail could not be queued", round_.id)
            failed += 1
    if failed:
        raise RuntimeError(f"{failed} round(s) could not have their mail queued")
