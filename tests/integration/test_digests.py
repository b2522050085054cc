"""Round mail through the real outbox and a real SMTP server: weekly digests, final digest, reminders, opt-outs."""

from __future__ import annotations

from collections import Counter
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from appliance.directory import Person
from appliance.domain.disclosure import participation_band
from appliance.services import notifications, rounds
from appliance.services.outbox import send_mail
from appliance.services.rounds import RoundDraft, close_round, edit_round, round_results
from appliance.storage import digests as stored
from appliance.storage import people
from appliance.storage.connection import fetch_all
from appliance.storage.outbox import depth
from tests.conftest import PASSWORD_HASH, create_open_round
from tests.services.smtp import SmtpServer

SENDER = "consultation@example.org"
T0 = datetime(2030, 10, 16, 10, 0, tzinfo=timezone.utc)  # a Wednesday; summer time ends on Sunday 27 October
MONDAY_SUMMER = datetime(2030, 10, 21, 7, 0, tzinfo=timezone.utc)  # 09:00 in Paris (UTC+2)
MONDAY_WINTER = datetime(2030, 10, 28, 8, 0, tzinfo=timezone.utc)  # 09:00 in Paris (UTC+1)
STAFF = [f"u{i:02d}" for i in range(12)]
WEEKLY = {"recipients": ["admins", "audience"], "weekday": 0, "local_time": "09:00", "time_zone": "Europe/Paris"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


@pytest.fixture
def settings_overrides(server: SmtpServer) -> dict[str, dict]:
    return {"mail": server.mail_settings(SENDER, timeout_seconds=2),
            "server": {"public_url": "https://consultation.example.org"}}


@pytest.fixture
def clock(appliance) -> Clock:
    appliance.clock = Clock(T0)
    return appliance.clock


def run_jobs(app, clock: Clock, until: datetime, step: timedelta = timedelta(minutes=5)) -> None:
    """The round-mail and mail jobs, as the scheduler runs them, on a clock moved forward step by step."""
    while clock.now <= until:
        notifications.send_round_mail(app, clock.now)
        send_mail(app, clock.now)
        clock.now += step
    clock.now = until


def parts(received) -> tuple[str, str]:
    message = received.message
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


def mails(server: SmtpServer, subject_part: str) -> list:
    return [m for m in server.messages if subject_part in str(m.message["Subject"])]


def finals(server: SmtpServer) -> list:
    return [m for m in server.messages if str(m.message["Subject"]).endswith(": the results")]


def propose(api, round_id: str, author: str, text: str) -> str:
    response = api(author).post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def vote(api, round_id: str, proposal_id: str, voters: dict[str, str]) -> None:
    for username, choice in voters.items():
        response = api(username).post(f"/api/v1/rounds/{round_id}/ballots",
                                      json={"proposal": proposal_id, "vote": choice})
        assert response.status_code == 200, response.text


def test_a_weekly_digest_goes_once_each_monday_at_nine_paris_time_across_the_end_of_summer_time(
        api, appliance, server, clock):
    admin, mod = api("admin"), api("mod")
    round_id = create_open_round(admin, audience_groups=["staff"], dimensions=["department"])
    assert admin.put(f"/api/v1/rounds/{round_id}/digest", json=WEEKLY).status_code == 200
    accepted = propose(api, round_id, "u00", "Flexible hours for everyone who asks")
    assert mod.post(f"/api/v1/rounds/{round_id}/proposals/{accepted}/accept").status_code == 200
    propose(api, round_id, "u01", "A quiet room on every floor of the building")  # stays pending
    vote(api, round_id, accepted, {u: "agree" for u in STAFF[:8]})

    run_jobs(appliance, clock, MONDAY_WINTER + timedelta(hours=1))
    digests = mails(server, "this week's digest")
    recipients = Counter(r for m in digests for r in m.recipients)
    assert recipients == Counter({f"{u}@example.org": 2 for u in ["admin", *STAFF]})
    due = fetch_all(appliance.dbs.identity, "SELECT DISTINCT created_at FROM outbox WHERE key LIKE 'digest:%'")
    assert sorted(at for (at,) in due) == [int(MONDAY_SUMMER.timestamp()), int(MONDAY_WINTER.timestamp())]
    keys = {key for (key,) in fetch_all(appliance.dbs.identity, "SELECT key FROM outbox WHERE key LIKE 'digest:%'")}
    assert f"digest:{round_id}:2030-10-28:u03@example.org" in keys

    band = participation_band(8, 5)
    by_recipient = {m.recipients[0]: parts(m) for m in digests[-13:]}
    admin_text, admin_html = by_recipient["admin@example.org"]
    staff_text, staff_html = by_recipient["u05@example.org"]
    for text in (admin_text, admin_html, staff_text, staff_html):
        assert f"Participation: {band} people (as of Oct 27, 2030)" in text
        assert "Proposals accepted so far: 1" in text
        for hidden in ("Finance", "Sales", "U00", "U01"):  # no segment, no author
            assert hidden not in text
    assert "Proposals waiting for moderation: 1" in admin_text and "waiting for moderation: 1" in admin_html
    assert "moderation" not in staff_text and "moderation" not in staff_html

    sent = len(server.messages)  # a restart: the jobs run again at the same time, twice
    notifications.send_round_mail(appliance, clock.now)
    notifications.send_round_mail(appliance, clock.now)
    send_mail(appliance, clock.now)
    assert len(server.messages) == sent


def test_a_digest_missed_while_down_goes_once_for_the_latest_week_only(api, appliance, server, clock):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    admin.put(f"/api/v1/rounds/{round_id}/digest", json=WEEKLY | {"recipients": ["admins"]})
    run_jobs(appliance, clock, T0)  # up, then down for three weeks
    back = MONDAY_WINTER + timedelta(days=14, hours=3)
    clock.now = back
    run_jobs(appliance, clock, back + timedelta(hours=1))
    digests = mails(server, "this week's digest")
    assert [m.recipients for m in digests] == [("admin@example.org",)]
    [(key,)] = fetch_all(appliance.dbs.identity, "SELECT key FROM outbox WHERE key LIKE 'digest:%'")
    assert key == f"digest:{round_id}:2030-11-11:admin@example.org"


def test_the_digest_settings_are_checked_with_clear_messages(api, appliance, clock):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    path = f"/api/v1/rounds/{round_id}/digest"
    assert admin.get(path).json()["enabled"] is False
    cases = {"time_zone": ("Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
             "local_time": ("9h", "bad time '9h'"), "recipients": (["nobody"], "unknown group 'nobody'")}
    for field, (value, message) in cases.items():
        response = admin.put(path, json=WEEKLY | {field: value})
        assert response.status_code == 400 and message in response.json()["detail"], response.text
    assert api("u01").put(path, json=WEEKLY).status_code == 403
    saved = admin.put(path, json=WEEKLY | {"recipients": ["staff", "admins"]}).json()
    assert saved["reachable"] == 13 and saved["without_email"] == 0
    assert admin.get(path).json() == saved


def test_the_reminder_goes_to_the_whole_audience_but_not_to_who_opted_out(api, appliance, server, clock):
    admin, mod = api("admin"), api("mod")
    closes_at = T0 + timedelta(days=5)
    round_id = create_open_round(admin, audience_groups=["staff"], closes_at=closes_at.isoformat())
    proposal = propose(api, round_id, "u00", "Flexible hours for everyone who asks")
    mod.post(f"/api/v1/rounds/{round_id}/proposals/{proposal}/accept")
    vote(api, round_id, proposal, {u: "agree" for u in STAFF[:6]})
    run_jobs(appliance, clock, T0 + timedelta(hours=1))
    assert {m.recipients[0] for m in mails(server, "New consultation")} == {f"{u}@example.org" for u in STAFF}

    link = notifications.opt_out_path(appliance, "local:u07")
    assert link.startswith("https://consultation.example.org/api/v1/unsubscribe?token=")
    link = link.removeprefix("https://consultation.example.org")
    page = api(None).get(link)  # what a mail gateway scanning the link does: it must not opt out
    assert page.status_code == 200 and "Stop reminders" in page.text and 'method="post"' in page.text
    assert not fetch_all(appliance.dbs.identity, "SELECT * FROM mail_opt_outs")
    assert api(None).get("/api/v1/unsubscribe?token=bogus.123").status_code == 400
    assert api(None).post("/api/v1/unsubscribe?token=bogus.123").status_code == 400
    assert api(None).get("/api/v1/unsubscribe?token=YQ.\u00e9").status_code == 400  # not ASCII: no 500
    done = api(None).post(link)  # the button: no session, no CSRF cookie, the signed token is enough
    assert done.status_code == 200 and "no more reminders" in done.text

    run_jobs(appliance, clock, closes_at - timedelta(days=2) + timedelta(minutes=10))
    reminders = mails(server, "closing soon")
    assert sorted(m.recipients[0] for m in reminders) == sorted(f"{u}@example.org" for u in STAFF if u != "u07")
    text, html = parts(reminders[0])
    opt_out = "https://consultation.example.org/api/v1/unsubscribe?token="
    assert opt_out in text and f'<a href="{opt_out}' in html
    assert f"\nNo more reminders: {opt_out}" in text  # one colon, then the link
    # RFC 8058: the mail client's own button posts "List-Unsubscribe=One-Click" to the link in the header
    header = str(reminders[0].message["List-Unsubscribe"])
    assert header.startswith(f"<{opt_out}") and header.endswith(">")
    assert f"\nList-Unsubscribe: {header}\r\n".encode() in reminders[0].raw  # one plain line, not RFC 2047 words
    assert str(reminders[0].message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert all("List-Unsubscribe" not in m.message for m in mails(server, "New consultation"))
    one_click = api(None).post(header[1:-1].removeprefix("https://consultation.example.org"),
                               content=b"List-Unsubscribe=One-Click",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert one_click.status_code == 200
    assert len(fetch_all(appliance.dbs.identity, "SELECT * FROM mail_opt_outs")) == 2  # u07, and this one
    link = f"https://consultation.example.org/rounds/{round_id}"  # server.public_url + the round's page
    assert link in text and link in html


def test_the_final_digest_shows_the_publishable_view_and_nothing_below_k(api, appliance, server, clock):
    admin, mod = api("admin"), api("mod")
    round_id = create_open_round(admin, audience_groups=["staff"], dimensions=["department"])
    admin.put(f"/api/v1/rounds/{round_id}/digest", json=WEEKLY | {"recipients": ["admins"], "enabled": False})
    wide = propose(api, round_id, "u00", "Flexible hours for everyone who asks")
    divided = propose(api, round_id, "u01", "Open-plan offices for every team")
    few = propose(api, round_id, "u02", "A quiet room on every floor of the building")
    refused = propose(api, round_id, "u03", "Something entirely beside the question")
    for proposal in (wide, divided, few):
        mod.post(f"/api/v1/rounds/{round_id}/proposals/{proposal}/accept")
    mod.post(f"/api/v1/rounds/{round_id}/proposals/{refused}/refuse",
             json={"reason": "off_topic", "note": "Confidential moderator note"})
    vote(api, round_id, wide, {u: "agree" for u in STAFF[:8]})
    vote(api, round_id, divided, {u: "agree" if i < 4 else "disagree" for i, u in enumerate(STAFF[:8])})
    vote(api, round_id, few, {u: "agree" for u in STAFF[:3]})
    assert admin.post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    run_jobs(appliance, clock, T0 + timedelta(hours=1))
    assert not finals(server) and not mails(server, "published")  # closed, not published: nothing yet
    assert admin.post(f"/api/v1/rounds/{round_id}/publish").status_code == 200
    run_jobs(appliance, clock, T0 + timedelta(hours=2))

    [final] = finals(server)
    assert final.recipients == ("admin@example.org",)
    notices = mails(server, "results are published")
    assert sorted(m.recipients[0] for m in notices) == sorted(f"{u}@example.org" for u in STAFF)
    text, html = parts(final)
    results_page = f"https://consultation.example.org/rounds/{round_id}/results"
    assert results_page in text and results_page in html and results_page in parts(notices[0])[0]
    _, view = round_results(appliance, round_id, notifications.JOB_VIEWER)
    shown = {p.id: p for p in view.proposals}
    for proposal_id in (wide, divided):
        agree = round(shown[proposal_id].scores.rates["agree"].value * 100)
        assert f"agree     {agree:>3}% " in text and f"agree {agree}%" in html
        assert f"({shown[proposal_id].voters} voters)" in text
    assert text.index("Widest support") < text.index("Flexible hours") < text.index("Most divided")
    line = text[text.index("Flexible hours"):]
    assert line.index("agree ") < line.index("neutral ") < line.index("disagree ")  # as the results page reads
    assert text.index("Most divided") < text.index("Open-plan offices")
    assert "\u2587" in text and "<img" not in html and "background:#2e7d32" in html
    for received in server.messages:
        for part in parts(received) if received.message.is_multipart() else (received.message.get_content(), ""):
            assert "quiet room" not in part and "beside the question" not in part
            assert "Confidential" not in part and "off_topic" not in part and "Finance" not in part
            assert "U00" not in part and "U01" not in part
    run_jobs(appliance, clock, T0 + timedelta(hours=3))
    assert len(finals(server)) == 1


@pytest.fixture
def french(server: SmtpServer) -> dict[str, dict]:
    return {"mail": server.mail_settings(SENDER, timeout_seconds=2, language="fr")}


def test_mail_is_written_in_the_language_of_the_settings(make_settings, server, french):
    from litestar.testing import TestClient

    from appliance.app import create_app
    from appliance.services.context import build_appliance
    from tests.conftest import seed_people

    app = build_appliance(make_settings(**french))
    try:
        seed_people(app)
        clock = Clock(T0)
        app.clock = clock
        closes_at = T0 + timedelta(days=5)
        draft = RoundDraft("Notre quotidien", "Qu'est-ce qui faciliterait notre travail ?", audience_groups=("staff",),
                           closes_at=closes_at)
        round_id = rounds.create_round(app, "admin", draft).id
        rounds.open_round(app, "admin", round_id)
        run_jobs(app, clock, T0 + timedelta(hours=1))
        run_jobs(app, clock, closes_at - timedelta(days=2) + timedelta(minutes=10))
        opt_out = TestClient(create_app(app.settings, app)).get(notifications.opt_out_path(app, "local:u07"))
        assert '<html lang="fr">' in opt_out.text and "Ne plus recevoir de rappels</button>" in opt_out.text
    finally:
        app.close()
    [invitation, *_] = mails(server, "Nouvelle consultation\u00a0: Notre quotidien")  # no-break space before ":"
    text, html = parts(invitation) if invitation.message.is_multipart() else (invitation.message.get_content(), "")
    assert "Une consultation est ouverte\u00a0: «\u00a0Qu'est-ce qui faciliterait notre travail ?\u00a0»" in text
    assert "Elle se termine le 21 oct. 2030, 12:00 CEST." in text  # day and time, the French way, in Paris
    assert '<html lang="fr">' in html  # a screen reader reads it with a French voice
    # Without server.public_url mail carries no links, the opt-out included: a bare path opens nothing.
    [reminder, *_] = mails(server, "Notre quotidien\u00a0: bientôt terminée")
    reminder_text = reminder.message.get_body(("plain",)).get_content()
    assert reminder_text.startswith("La consultation «\u00a0Notre quotidien\u00a0» se termine le 21 oct. 2030,"
                                    " 12:00 CEST. ")
    assert "il est encore temps de proposer et de voter." in reminder_text
    assert b"unsubscribe" not in reminder.raw and "List-Unsubscribe" not in reminder.message


def test_a_mail_client_is_offered_the_opt_out_only_with_a_public_address():
    link = "https://consultation.example.org/api/v1/unsubscribe?token=abc.123"
    assert notifications.unsubscribe_headers(link) == {
        "List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert notifications.unsubscribe_headers("/api/v1/unsubscribe?token=abc.123") == {}  # no server.public_url
    plain = "http://consultation.example.org/api/v1/unsubscribe?token=abc.123"
    assert notifications.unsubscribe_headers(plain) == {"List-Unsubscribe": f"<{plain}>"}  # one-click needs HTTPS


def test_one_malformed_address_skips_that_person_only_and_the_log_names_nobody(api, appliance, server, clock, caplog):
    broken = Person("local:zed", "zed", "Zed Broken", "aaa-at-example.org", frozenset({"staff"}))
    people.insert_person(appliance.dbs.identity, broken, PASSWORD_HASH)
    two_lines = Person("local:yve", "yve", "Yve\r\nTwo Lines", "yve@example.org", frozenset({"staff"}))
    people.insert_person(appliance.dbs.identity, two_lines, PASSWORD_HASH)  # a name the directory broke in two
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    with caplog.at_level(logging.WARNING, logger="appliance.mail"):
        run_jobs(appliance, clock, T0 + timedelta(hours=1))  # raises if a run fails
    invited = sorted(m.recipients[0] for m in mails(server, "New consultation"))
    assert invited == sorted(f"{u}@example.org" for u in [*STAFF, "yve"])
    [to_yve] = [m for m in mails(server, "New consultation") if m.recipients == ("yve@example.org",)]
    assert str(to_yve.message["To"]) == "Yve Two Lines <yve@example.org>"
    assert stored.notice_queued_at(appliance.dbs.identity, round_id, "invitation") == int(T0.timestamp())
    [warning] = [r.getMessage() for r in caplog.records if "does not parse" in r.getMessage()]  # once, not each run
    assert "1 recipient(s) of the invitation skipped" in warning and "appliance doctor" in warning
    for named in ("aaa-at-example.org", "zed", "Zed Broken", "local:zed"):
        assert named not in warning
    sent = len(server.messages)
    notifications.send_round_mail(appliance, clock.now)
    send_mail(appliance, clock.now)
    assert len(server.messages) == sent


def test_publishing_without_saved_digest_settings_sends_the_final_digest_the_dashboard_shows(
        api, appliance, server, clock):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    assert admin.get(f"/api/v1/rounds/{round_id}/digest").json()["final_at_publication"] is True
    assert admin.post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    assert admin.post(f"/api/v1/rounds/{round_id}/publish").status_code == 200
    run_jobs(appliance, clock, T0 + timedelta(hours=1))
    [final] = finals(server)
    assert final.recipients == ("admin@example.org",)  # default_schedule: to the admins
    run_jobs(appliance, clock, T0 + timedelta(hours=2))
    assert len(finals(server)) == 1


def test_a_round_published_long_before_gets_no_final_digest_out_of_the_blue(api, appliance, server, clock):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    admin.post(f"/api/v1/rounds/{round_id}/close")
    admin.post(f"/api/v1/rounds/{round_id}/publish")
    stored.record_notice(appliance.dbs.identity, round_id, "results", int((T0 - timedelta(days=30)).timestamp()))
    run_jobs(appliance, clock, T0 + timedelta(hours=1))  # e.g. the first run after an upgrade
    assert not finals(server)


def reminders_at(appliance) -> list[int]:
    return [at for (at,) in fetch_all(appliance.dbs.identity,
                                      "SELECT DISTINCT created_at FROM outbox WHERE key LIKE 'reminder:%'")]


def test_a_short_round_gets_its_reminder_a_day_after_the_invitation_not_with_it(api, appliance, server, clock):
    closes_at = T0 + timedelta(hours=36)  # opened less than two days before it closes
    create_open_round(api("admin"), audience_groups=["staff"], closes_at=closes_at.isoformat())
    run_jobs(appliance, clock, T0)
    assert mails(server, "New consultation") and not mails(server, "closing soon")
    run_jobs(appliance, clock, closes_at + timedelta(hours=2), step=timedelta(hours=1))
    assert reminders_at(appliance) == [int((T0 + timedelta(days=1)).timestamp())]
    assert len(mails(server, "closing soon")) == len(STAFF)


def test_a_round_extended_well_past_its_reminder_gets_a_second_one_and_a_short_extension_none(
        api, appliance, server, clock):
    admin = api("admin")
    closes_at = T0 + timedelta(days=5)
    round_id = create_open_round(admin, audience_groups=["staff"], closes_at=closes_at.isoformat())
    run_jobs(appliance, clock, closes_at - timedelta(days=1), step=timedelta(hours=1))
    assert len(reminders_at(appliance)) == 1
    later = closes_at + timedelta(days=1)  # told "closes on the 21st", it closes on the 22nd: no new mail
    edit_round(appliance, "admin", round_id, {"closes_at": later})  # the admin's session has long expired
    run_jobs(appliance, clock, later - timedelta(hours=1), step=timedelta(hours=1))
    assert len(reminders_at(appliance)) == 1
    week_later = later + timedelta(days=7)
    edit_round(appliance, "admin", round_id, {"closes_at": week_later})
    run_jobs(appliance, clock, week_later + timedelta(hours=2), step=timedelta(hours=1))
    assert reminders_at(appliance)[1:] == [int((week_later - timedelta(days=2)).timestamp())]
    second = [m for m in mails(server, "closing soon") if "Oct 29, 2030" in parts(m)[0]]
    assert len(second) == len(STAFF) and len(mails(server, "closing soon")) == 2 * len(STAFF)


def test_no_reminder_once_the_round_has_closed_or_too_soon_after_the_invitation(api, appliance, server, clock):
    admin = api("admin")
    soon = create_open_round(admin, audience_groups=["staff"], closes_at=(T0 + timedelta(hours=12)).isoformat())
    later = create_open_round(admin, audience_groups=["staff"], closes_at=(T0 + timedelta(days=5)).isoformat())
    run_jobs(appliance, clock, T0)
    clock.now = T0 + timedelta(days=5, hours=1)  # down until both closing times have passed, the rounds still open
    run_jobs(appliance, clock, clock.now + timedelta(hours=1))
    assert [notifications.get_round(appliance, i).status for i in (soon, later)] == ["open", "open"]
    assert not mails(server, "closing soon") and not reminders_at(appliance)


def test_invitations_and_digests_not_sent_when_the_round_closes_are_withdrawn(api, appliance, server, clock):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    admin.put(f"/api/v1/rounds/{round_id}/digest", json=WEEKLY | {"recipients": ["admins"]})
    server.stop()  # the relay is down for days
    run_jobs(appliance, clock, MONDAY_WINTER + timedelta(hours=1), step=timedelta(days=1))
    queued = [key for (key,) in fetch_all(appliance.dbs.identity, "SELECT key FROM outbox")]
    assert len(queued) == len(STAFF) + 1 and f"digest:{round_id}:2030-10-21:admin@example.org" in queued
    admin = api("admin")  # days later: signed in again
    other = create_open_round(admin, audience_groups=["staff"])  # another round's mail stays
    notifications.send_round_mail(appliance, clock.now)
    assert admin.post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    left = [key for (key,) in fetch_all(appliance.dbs.identity, "SELECT key FROM outbox")]
    assert len(left) == len(STAFF) and all(key.startswith(f"invitation:{other}:") for key in left)
    admin.post(f"/api/v1/rounds/{other}/close")
    assert depth(appliance.dbs.identity) == 0  # "a consultation is open" would arrive after it closed
    server.start()
    assert admin.post(f"/api/v1/rounds/{round_id}/publish").status_code == 200
    run_jobs(appliance, clock, clock.now + timedelta(hours=1))
    assert not mails(server, "New consultation")
    assert len(mails(server, "the results are published")) == len(STAFF)  # mail goes again, the right one


def test_a_digest_queued_while_its_round_closes_is_withdrawn_too(api, appliance, server, clock, monkeypatch):
    """The close withdraws what was queued before it; the digest job, slow with the directory, queues after."""
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    admin.put(f"/api/v1/rounds/{round_id}/digest", json=WEEKLY | {"recipients": ["admins"]})
    run_jobs(appliance, clock, T0)  # the invitations went
    counted = notifications.participation

    def closes_meanwhile(app, rid):  # the round closes during the digest's lookups
        seen = counted(app, rid)
        if rid == round_id and notifications.get_round(app, rid).status == "open":
            close_round(app, "admin", rid)
        return seen

    monkeypatch.setattr(notifications, "participation", closes_meanwhile)
    server.stop()  # nothing leaves before the check
    notifications.send_round_mail(appliance, MONDAY_SUMMER + timedelta(hours=1))
    assert not fetch_all(appliance.dbs.identity, "SELECT key FROM outbox WHERE status != 'sent'")


def test_invitation_and_reminder_give_the_closing_day_and_time_in_paris(api, appliance, server, clock):
    clock.now = start = datetime(2030, 10, 10, 10, 0, tzinfo=timezone.utc)
    closes_at = datetime(2030, 10, 14, 22, 0, tzinfo=timezone.utc)  # 15 October, 00:00 in Paris (UTC+2)
    create_open_round(api("admin"), audience_groups=["staff"], closes_at=closes_at.isoformat())
    run_jobs(appliance, clock, start + timedelta(days=3), step=timedelta(hours=1))
    when = "Oct 15, 2030, 12:00\u202fAM CEST"
    [invitation, *_] = mails(server, "New consultation")
    assert f"It closes on {when}." in parts(invitation)[0] and f"It closes on {when}." in parts(invitation)[1]
    [reminder, *_] = mails(server, "closing soon")
    assert f"\u201cDay-to-day work\u201d closes on {when}." in parts(reminder)[0]
