"""The outbox against a real SMTP server (tests/services/smtp.py): once per key, retries, concurrency, crashes."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from appliance.mail import Mailer
from appliance.services import outbox
from appliance.services.context import Appliance
from appliance.services.outbox import (BACKOFF_CAP_SECONDS, BACKOFF_SECONDS, LEASE_SECONDS, MAX_ATTEMPTS,
                                       SendReport, compose, depth, enqueue, failures, send_due)
from appliance.storage import outbox as stored
from appliance.storage.connection import connect, fetch_all
from tests.services.smtp import SmtpServer

SENDER = "consultation@example.org"
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


@pytest.fixture
def settings_overrides(server: SmtpServer) -> dict[str, dict]:
    return {"mail": server.mail_settings(SENDER, timeout_seconds=2)}


@pytest.fixture
def mailer(appliance: Appliance) -> Mailer:
    return Mailer(appliance.settings.mail)


def address(i: int) -> str:
    return f"p{i:03d}@example.org"


def queue(app: Appliance, count: int, now: datetime = T0) -> int:
    """Queue `count` reminders, one per person p000, p001..."""
    return enqueue(app.dbs.identity, [
        compose(app.settings.mail, f"reminder:r1:{address(i)}", address(i), "The consultation closes on Friday",
                "Your voice counts.", "<p>Your voice counts.</p>")
        for i in range(count)
    ], now)


def rows(app: Appliance) -> dict[str, tuple]:
    """recipient -> (status, attempts, next_attempt_at as seconds after T0)."""
    found = fetch_all(app.dbs.identity, "SELECT recipient, status, attempts, next_attempt_at FROM outbox")
    return {r: (status, attempts, at - int(T0.timestamp())) for r, status, attempts, at in found}


def delivered(server: SmtpServer) -> Counter[str]:
    return Counter(r for received in server.messages for r in received.recipients)


def test_a_message_queued_twice_under_one_key_is_stored_once(appliance):
    assert queue(appliance, 3) == 3
    assert queue(appliance, 3) == 0
    assert depth(appliance.dbs.identity) == 3


def test_a_hundred_messages_go_over_one_connection_each_once(appliance, server, mailer):
    queue(appliance, 100)
    assert send_due(appliance.dbs.identity, mailer, T0) == SendReport(sent=100)
    assert delivered(server) == Counter({address(i): 1 for i in range(100)})
    assert server.connections == 1
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(hours=1)) == SendReport()
    assert len(server.messages) == 100 and depth(appliance.dbs.identity) == 0
    message = server.messages[0].message
    assert message["Subject"] == "The consultation closes on Friday" and message["From"] == SENDER


def test_a_sent_message_keeps_its_key_but_not_its_content(appliance, mailer):
    queue(appliance, 2)
    send_due(appliance.dbs.identity, mailer, T0)
    assert fetch_all(appliance.dbs.identity, "SELECT length(message), status, sent_at FROM outbox") == [
        (0, "sent", int(T0.timestamp()))] * 2
    assert queue(appliance, 2) == 0  # sent already: queueing it again does nothing


def test_a_relay_down_then_back_loses_nothing_and_sends_nothing_twice(appliance, server, mailer):
    queue(appliance, 5)
    server.stop()
    assert send_due(appliance.dbs.identity, mailer, T0) == SendReport(retried=5)
    assert set(rows(appliance).values()) == {("pending", 1, BACKOFF_SECONDS)}
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(seconds=59)) == SendReport()  # not due yet
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(seconds=60)) == SendReport(retried=5)
    assert set(rows(appliance).values()) == {("pending", 2, BACKOFF_SECONDS + 2 * BACKOFF_SECONDS)}
    server.start()
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(seconds=180)) == SendReport(sent=5)
    assert delivered(server) == Counter({address(i): 1 for i in range(5)})
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(days=1)) == SendReport()
    assert len(server.messages) == 5


def test_a_relay_that_cannot_be_reached_is_explained_in_last_error(appliance, server, mailer):
    queue(appliance, 1)
    server.stop()
    send_due(appliance.dbs.identity, mailer, T0)
    [(error,)] = fetch_all(appliance.dbs.identity, "SELECT last_error FROM outbox")
    assert error.startswith(f"nothing accepts connections on 127.0.0.1:{server.port}")


def test_a_permanent_refusal_fails_that_recipient_only(appliance, server, mailer):
    queue(appliance, 5)
    server.refusals[address(2)] = "550 5.1.1 no such user"
    assert send_due(appliance.dbs.identity, mailer, T0) == SendReport(sent=4, failed=1)
    assert address(2) not in delivered(server) and len(delivered(server)) == 4
    [failed] = failures(appliance.dbs.identity)
    assert (failed.recipient, failed.subject, failed.attempts) == (address(2), "The consultation closes on Friday", 1)
    assert "refuses the recipient p002@example.org" in failed.last_error and "550" in failed.last_error
    assert depth(appliance.dbs.identity) == 0


def test_a_temporary_refusal_retries_that_recipient_later(appliance, server, mailer):
    queue(appliance, 3)
    server.refusals[address(1)] = "451 4.3.0 try later"
    assert send_due(appliance.dbs.identity, mailer, T0) == SendReport(sent=2, retried=1)
    assert rows(appliance)[address(1)] == ("pending", 1, BACKOFF_SECONDS)
    del server.refusals[address(1)]
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(minutes=1)) == SendReport(sent=1)
    assert delivered(server) == Counter({address(i): 1 for i in range(3)})


def test_after_max_attempts_a_message_fails_and_the_backoff_doubled_on_the_way(appliance, server, mailer):
    queue(appliance, 1)
    server.stop()
    now, waits = T0, []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = send_due(appliance.dbs.identity, mailer, now)
        status, attempts, at = rows(appliance)[address(0)]
        assert attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert report == SendReport(retried=1) and status == "pending"
            waits.append(at - int((now - T0).total_seconds()))
            now = T0 + timedelta(seconds=at)
    assert report == SendReport(failed=1) and status == "failed"
    assert waits == [min(BACKOFF_SECONDS * 2 ** i, BACKOFF_CAP_SECONDS) for i in range(MAX_ATTEMPTS - 1)]
    [failed] = failures(appliance.dbs.identity)
    assert failed.attempts == MAX_ATTEMPTS and "nothing accepts connections" in failed.last_error
    assert depth(appliance.dbs.identity) == 0
    assert send_due(appliance.dbs.identity, mailer, now + timedelta(days=30)) == SendReport()


def test_two_senders_at_once_deliver_each_message_once(appliance, server):
    queue(appliance, 100)
    start, reports = threading.Barrier(2), []

    def sender() -> None:
        db, mailer = connect(appliance.settings.storage.identity_db), Mailer(appliance.settings.mail)
        total = SendReport()
        start.wait()
        while (report := send_due(db, mailer, T0, limit=7)) != SendReport():
            total += report
        reports.append(total)
        db.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert delivered(server) == Counter({address(i): 1 for i in range(100)})
    assert sum(r.sent for r in reports) == 100 and all(r.sent for r in reports)  # both took part


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch it)."""


class CrashingMailer:
    """A Mailer whose connection dies right before the message number `at` (counted from 0)."""

    def __init__(self, mailer: Mailer, at: int) -> None:
        self.mailer, self.at, self.sent = mailer, at, 0

    @contextmanager
    def connection(self) -> Iterator[CrashingMailer]:
        with self.mailer.connection() as smtp:
            self.smtp = smtp
            yield self

    def send(self, message) -> None:
        if self.sent == self.at:
            raise Crash()
        self.smtp.send(message)
        self.sent += 1


def test_a_restart_in_the_middle_of_a_send_delivers_the_rest_once(appliance, server, mailer):
    queue(appliance, 10)
    with pytest.raises(Crash):
        send_due(appliance.dbs.identity, CrashingMailer(mailer, at=4), T0)  # type: ignore[arg-type]
    assert len(server.messages) == 4
    assert send_due(appliance.dbs.identity, mailer, T0) == SendReport(sent=6)
    assert delivered(server) == Counter({address(i): 1 for i in range(10)})


def test_the_claim_of_a_sender_that_died_lapses_after_its_lease(appliance, server, mailer):
    queue(appliance, 3)
    now = int(T0.timestamp())
    assert len(stored.claim(appliance.dbs.identity, "dead-sender", now, now + LEASE_SECONDS, 10)) == 3
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(seconds=LEASE_SECONDS - 1)) == SendReport()
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(seconds=LEASE_SECONDS)) == SendReport(sent=3)
    assert delivered(server) == Counter({address(i): 1 for i in range(3)})


def test_a_crash_between_the_relays_acceptance_and_the_sent_mark_sends_that_one_message_twice(
        appliance, server, mailer, monkeypatch):
    """The at-least-once edge, as documented: one message at most, with the same Message-ID."""
    queue(appliance, 5)
    mark_sent, calls = stored.mark_sent, []

    def dies_on_the_third(*args) -> bool:
        calls.append(args)
        if len(calls) == 3:
            raise Crash()
        return mark_sent(*args)

    monkeypatch.setattr(stored, "mark_sent", dies_on_the_third)
    with pytest.raises(Crash):
        send_due(appliance.dbs.identity, mailer, T0)
    monkeypatch.setattr(stored, "mark_sent", mark_sent)
    assert send_due(appliance.dbs.identity, mailer, T0) == SendReport(sent=2)  # the rest, at once
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(seconds=LEASE_SECONDS)) == SendReport(sent=1)
    assert delivered(server) == Counter({address(i): 2 if i == 2 else 1 for i in range(5)})
    ids = Counter(received.message["Message-ID"] for received in server.messages)
    assert sorted(ids.values()) == [1, 1, 1, 1, 2]


def test_a_message_withdrawn_while_on_the_wire_is_said_as_such_not_as_a_lapsed_claim(
        appliance, server, mailer, monkeypatch, caplog):
    """Its round closed between the relay's acceptance and the sent mark: it went, once, and nothing is wrong;
    the next one of the sender's batch is not sent."""
    queue(appliance, 3)
    mark_sent, calls = stored.mark_sent, []

    def round_closes_during_the_second(*args) -> bool:
        calls.append(args)
        if len(calls) == 2:
            stored.withdraw(appliance.dbs.identity, ["reminder:r1:"])
        return mark_sent(*args)

    monkeypatch.setattr(stored, "mark_sent", round_closes_during_the_second)
    with caplog.at_level(logging.INFO, logger="appliance"):
        assert send_due(appliance.dbs.identity, mailer, T0) == SendReport(sent=2)  # the third, claimed, did not go
    assert delivered(server) == Counter({address(0): 1, address(1): 1})
    assert rows(appliance) == {address(0): ("sent", 1, 0)}
    said = [r for r in caplog.records if "withdrawn while it was being sent" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_sender_asked_to_stop_lets_the_rest_go_untried(appliance, server, mailer):
    queue(appliance, 10)
    assert send_due(appliance.dbs.identity, mailer, T0, should_stop=lambda: len(server.messages) >= 3) == SendReport(
        sent=3)
    assert [r[:2] for r in rows(appliance).values()].count(("pending", 0)) == 7
    assert send_due(appliance.dbs.identity, mailer, T0) == SendReport(sent=7)


def test_the_sender_job_does_nothing_while_mail_is_off(make_settings, server):
    from appliance.services.context import build_appliance

    app = build_appliance(make_settings())
    try:
        assert outbox.send_mail(app, T0) == SendReport()
    finally:
        app.close()


def test_a_big_mailing_is_queued_a_chunk_at_a_time_without_holding_it_all(appliance):
    """Composed lazily and written in short transactions: another writer never waits behind a whole audience."""
    other = connect(appliance.settings.storage.identity_db)
    committed_when_composed = []

    def messages(watch: bool = True):
        for i in range(2 * stored.ENQUEUE_CHUNK + 50):
            if watch:
                committed_when_composed.append(other.execute("SELECT count(*) FROM outbox").fetchone()[0])
            yield compose(appliance.settings.mail, f"invitation:r1:{address(i)}", address(i), "A new consultation",
                          "Have your say.")

    try:
        assert outbox.enqueue(appliance.dbs.identity, messages(), T0) == 2 * stored.ENQUEUE_CHUNK + 50
        # While the third chunk was being composed, the first two were already committed (and no more).
        assert committed_when_composed[2 * stored.ENQUEUE_CHUNK] == 2 * stored.ENQUEUE_CHUNK
        assert committed_when_composed[stored.ENQUEUE_CHUNK - 1] == 0
    finally:
        other.close()
    assert outbox.enqueue(appliance.dbs.identity, messages(watch=False), T0) == 0  # again: nothing doubles


def give_up(app: Appliance, server: SmtpServer, mailer: Mailer) -> None:
    """With the relay down, try every queued message until the outbox gives up on it."""
    server.stop()
    now = T0
    for _ in range(MAX_ATTEMPTS):
        send_due(app.dbs.identity, mailer, now)
        now += timedelta(seconds=BACKOFF_CAP_SECONDS)


def test_admins_see_the_outbox_and_why_mail_failed_others_are_refused(appliance, api, server, mailer):
    queue(appliance, 3)
    give_up(appliance, server, mailer)
    queue(appliance, 5)  # two more, still waiting
    body = api("admin").get("/api/v1/mail/outbox").json()
    assert (body["enabled"], body["waiting"], body["failed"]) == (True, 2, 3)
    assert {f["recipient"] for f in body["latest_failures"]} == {address(i) for i in range(3)}
    assert all("nothing accepts connections" in f["last_error"] for f in body["latest_failures"])
    assert api("u01").get("/api/v1/mail/outbox").status_code == 403


def test_the_admins_rounds_page_shows_the_mail_given_up_on_and_why(appliance, pages, server, mailer):
    queue(appliance, 2)
    give_up(appliance, server, mailer)
    html = pages("admin").get("/admin/rounds/").text
    panel = html.split('aria-labelledby="mail-title"', 1)[1].split("</section>", 1)[0]
    assert "0 waiting to be sent, 2 given up on after every retry." in panel
    assert "The consultation closes on Friday" in panel and "nothing accepts connections" in panel


def test_messages_given_up_on_are_sent_once_the_relay_is_fixed_and_they_are_retried(appliance, server, mailer):
    queue(appliance, 2)
    server.refusals[address(1)] = "550 5.7.1 relaying denied"  # a relay set up wrongly for that domain
    assert send_due(appliance.dbs.identity, mailer, T0) == SendReport(sent=1, failed=1)
    del server.refusals[address(1)]  # fixed
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(minutes=5)) == SendReport()  # given up: stays
    assert stored.retry_failed(appliance.dbs.identity, int((T0 + timedelta(minutes=5)).timestamp())) == 1
    assert failures(appliance.dbs.identity) == [] and depth(appliance.dbs.identity) == 1
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(minutes=5)) == SendReport(sent=1)
    assert delivered(server) == Counter({address(0): 1, address(1): 1})  # each once
    assert stored.retry_failed(appliance.dbs.identity, int(T0.timestamp())) == 0


def test_messages_given_up_on_can_be_dropped_and_only_those(appliance, server, mailer):
    queue(appliance, 3)
    server.refusals[address(1)] = "550 5.1.1 no such user"  # an address that no longer exists
    assert send_due(appliance.dbs.identity, mailer, T0) == SendReport(sent=2, failed=1)
    queue(appliance, 4)  # one more, waiting
    assert stored.drop_failed(appliance.dbs.identity) == 1
    assert failures(appliance.dbs.identity) == [] and depth(appliance.dbs.identity) == 1
    assert stored.retry_failed(appliance.dbs.identity, int(T0.timestamp())) == 0  # nothing left to send again
    assert send_due(appliance.dbs.identity, mailer, T0 + timedelta(minutes=5)) == SendReport(sent=1)
    assert address(1) not in delivered(server) and stored.drop_failed(appliance.dbs.identity) == 0
