"""Mail through the outbox: queue once per key, send claimed batches over one connection, retry with backoff.

Delivery is at least once. A message is marked sent in its own small
transaction right after the relay accepted it; if the process dies between the
relay's acceptance and that commit, the message is sent again once its claim
lapses (LEASE_SECONDS). At most the message in flight is affected, and it keeps
its Message-ID, by which many mail systems drop the copy. Likewise, when the
connection drops after the message was handed over but before the relay's
answer, nobody can tell whether it arrived, and it is retried.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from appliance.domain.schedules import retry_delay
from appliance.mail import MailError, Mailer, build_message
from appliance.services.context import Appliance, utc_now
from appliance.settings import MailSettings
from appliance.storage import outbox
from appliance.storage.outbox import Claimed, FailedMessage, Outcome, Outgoing, count_failed, depth, failures

__all__ = ["FailedMessage", "OutboxState", "Outgoing", "SendReport", "compose", "depth", "enqueue", "failures",
           "outbox_state", "send_all_due", "send_due", "send_mail"]

log = logging.getLogger("appliance.mail")

MAX_ATTEMPTS = 8
BACKOFF_SECONDS = 60  # after the first failed attempt; doubled after each further one
BACKOFF_CAP_SECONDS = 6 * 3600
SEND_BATCH = 200
LEASE_SECONDS = 900  # how long a claim holds: a sender that died lets its messages go after this
SEND_WINDOW_SECONDS = 300  # a sender starts no send after this, well within its lease
SENT_RETENTION_DAYS = 90
# Failures of the relay or of the session, not of one message: the rest of the batch waits with it.
SESSION_FAILURES = frozenset({"connection", "tls", "auth", "timeout", "refused_sender"})


@dataclass(frozen=True)
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def __add__(self, other: SendReport) -> SendReport:
        return SendReport(self.sent + other.sent, self.retried + other.retried, self.failed + other.failed)


@dataclass(frozen=True)
class OutboxState:
    """What the outgoing mail is doing, for admins: how many wait, how many failed, the latest failures."""

    waiting: int
    failed: int
    latest_failures: list[FailedMessage]


def outbox_state(db: Database, latest: int = 50) -> OutboxState:
    """How many messages wait and failed, and the `latest` given up on (newest first)."""
    return OutboxState(depth(db), count_failed(db), failures(db, latest))


def _never() -> bool:
    return False


def compose(mail: MailSettings, key: str, to: str, subject: str, text: str, html: str | None = None,
            to_name: str = "", headers: Mapping[str, str] | None = None) -> Outgoing:
    """A message from the configured sender, ready to queue under `key`."""
    return Outgoing(key, build_message(to, subject, text, html, settings=mail, to_name=to_name, headers=headers))


def enqueue(db: Database, messages: Iterable[Outgoing], now: datetime | None = None) -> int:
    """Queue messages, due at once, skipping keys already there (a restart, a second worker); how many were new."""
    return outbox.enqueue(db, messages, int((now or utc_now()).timestamp()))


def send_due(db: Database, mailer: Mailer, now: datetime, limit: int = SEND_BATCH,
             should_stop: Callable[[], bool] = _never) -> SendReport:
    """Claim up to `limit` due messages and send them over one connection."""
    at, holder = int(now.timestamp()), secrets.token_hex(8)
    waiting = outbox.claim(db, holder, at, at + LEASE_SECONDS, limit)
    waiting.reverse()  # popped from the end: oldest first
    settled: list[Outcome] = []
    sent = 0
    try:
        sent = _send_claimed(db, mailer, holder, at, waiting, settled, should_stop)
    except MailError as error:  # nothing more goes through this relay now: all that is left waits
        log.warning("mail relay failing, %d message(s) wait: %s", len(waiting), error.message)
        outcomes = [_outcome(item, error.message, True, at) for item in waiting]
        outbox.settle(db, holder, outcomes)
        settled += outcomes
        waiting.clear()
    finally:
        if waiting:  # stopping, or out of time: untried, due again at once
            outbox.release(db, holder, [item.id for item in waiting])
    retried = sum(1 for o in settled if o.status == "pending")
    return SendReport(sent, retried, len(settled) - retried)


def _send_claimed(db: Database, mailer: Mailer, holder: str, at: int, waiting: list[Claimed],
                  settled: list[Outcome], should_stop: Callable[[], bool]) -> int:
    """Send until none is left, or stopped; MailError when the relay or the session fails."""
    if not waiting or should_stop():
        return 0
    deadline, sent = time.monotonic() + SEND_WINDOW_SECONDS, 0
    with mailer.connection() as smtp:
        while waiting and not should_stop() and time.monotonic() < deadline:
            item = waiting[-1]
            if not outbox.held(db, item.id, holder):  # withdrawn (its round closed), or taken over: not to send
                waiting.pop()
                continue
            try:
                smtp.send(item.message())
            except MailError as error:
                if error.kind in SESSION_FAILURES:
                    raise
                settled.append(_settle_one(db, holder, waiting.pop(), error.message, error.temporary, at))
                continue
            except Exception as error:  # a bug, not the relay: that message waits, the others go on
                log.exception("sending message %s failed unexpectedly", item.id)
                settled.append(_settle_one(db, holder, waiting.pop(), f"unexpected error: {error!r}", True, at))
                continue
            waiting.pop()  # from here on, a crash leaves it claimed, to be sent again after its lease
            if not outbox.mark_sent(db, item.id, holder, at):
                if outbox.exists(db, item.id):
                    log.warning("message %s was sent after its claim lapsed: another sender may send it too",
                                item.id)
                else:  # withdrawn meanwhile: it went once, as withdraw() warns
                    log.info("message %s was withdrawn while it was being sent (its round closed)", item.id)
            sent += 1
    return sent


def _settle_one(db: Database, holder: str, item: Claimed, error: str, temporary: bool, at: int) -> Outcome:
    outcome = _outcome(item, error, temporary, at)
    outbox.settle(db, holder, [outcome])
    if outcome.status == "failed":
        log.warning("message %s given up after %d attempt(s): %s", item.id, outcome.attempts, error)
    return outcome


def _outcome(item: Claimed, error: str, temporary: bool, at: int) -> Outcome:
    """Another attempt later, with backoff, while temporary and attempts are left; failed otherwise."""
    attempts = item.attempts + 1
    if temporary and attempts < MAX_ATTEMPTS:
        return Outcome(item.id, "pending", attempts, at + retry_delay(attempts, BACKOFF_SECONDS, BACKOFF_CAP_SECONDS),
                       error)
    return Outcome(item.id, "failed", attempts, at, error)


def send_all_due(db: Database, mailer: Mailer, now: datetime,
                 should_stop: Callable[[], bool] = _never) -> SendReport:
    """Send batch after batch while full batches go through; stop at the first retry (the relay struggles)."""
    total = SendReport()
    while not should_stop():
        report = send_due(db, mailer, now, SEND_BATCH, should_stop)
        total += report
        if report.retried or report.sent + report.failed < SEND_BATCH:
            break
    return total


def send_mail(app: Appliance, now: datetime, should_stop: Callable[[], bool] = _never) -> SendReport:
    """The sender job: every due message, when mail is enabled."""
    if not app.settings.mail.enabled:
        return SendReport()
    report = send_all_due(app.dbs.identity, Mailer(app.settings.mail), now, should_stop)
    if report != SendReport():
        log.info("mail: %d sent, %d to retry, %d failed", report.sent, report.retried, report.failed)
    return report


def forget_old_mail(app: Appliance, now: datetime) -> None:
    """Delete sent messages older than SENT_RETENTION_DAYS (their content went at sending already)."""
    outbox.forget_sent(app.dbs.identity, int(now.timestamp()) - SENT_RETENTION_DAYS * 86400)
