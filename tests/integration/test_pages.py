"""Pages without JavaScript: sign in, propose, vote, read my proposals; CSRF; sign-in redirects."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from tests.conftest import create_open_round


def card_proposal(html: str) -> str:
    return re.search(r'name="proposal" id="card-proposal" value="([^"]*)"', html).group(1)


def test_signed_out_visitors_are_sent_to_sign_in_and_come_back(pages):
    browser = pages(None)
    response = browser.get("/rounds/abc", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/rounds/abc"
    assert browser.get("/", follow_redirects=False).headers["location"].startswith("/sign-in")
    signed = browser.submit("/sign-in", {"username": "u01", "password": "correct-horse-battery",
                                         "next": "/rounds/abc"})
    assert signed.status_code == 303 and signed.headers["location"] == "/rounds/abc"


def test_sign_in_refuses_a_wrong_password_on_the_form(pages):
    browser = pages(None)
    response = browser.sign_in("u01", "wrong")
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert 'value="u01"' in response.text  # the username stays in the form


def test_sign_in_never_redirects_to_another_site(pages):
    browser = pages(None)
    response = browser.submit("/sign-in", {"username": "u01", "password": "correct-horse-battery",
                                           "next": "//evil.example/"})
    assert response.headers["location"] == "/rounds"


def test_a_form_without_its_csrf_token_is_refused(pages):
    browser = pages(None)
    browser.token()
    response = browser.post("/sign-in", data={"username": "u01", "password": "correct-horse-battery"},
                            follow_redirects=False)
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert "session" not in browser.cookies


def test_an_employee_proposes_and_votes_without_javascript(api, pages):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"], moderation="post")
    author, voter = pages("u01"), pages("u02")

    listing = author.get("/rounds")
    assert f'href="/rounds/{round_id}"' in listing.text

    sent = author.submit(f"/rounds/{round_id}/proposals", {"text": "Publish the meeting notes within a day"})
    assert sent.status_code == 303 and sent.headers["location"] == f"/rounds/{round_id}?done=proposed_post#propose"
    thanked = author.get(sent.headers["location"]).text  # the page opens at the form: the thanks are there
    assert re.search(r'<section id="propose"[^>]*>\s*<h2[^<]*</h2>\s*<p class="notice" role="status">Thank you', thanked)
    page = voter.get(f"/rounds/{round_id}")
    assert "Publish the meeting notes within a day" in page.text
    proposal = card_proposal(page.text)
    assert "“Obvious”: you agree, but it goes without saying; it counts against the proposal" in page.text
    assert '<h3 class="card-text" id="card-text" tabindex="-1">Publish the meeting notes' in page.text  # by headings

    voted = voter.submit(f"/rounds/{round_id}/ballots", {"proposal": proposal, "choice": "agree:like_it"})
    assert voted.status_code == 303 and "agree" not in voted.headers["location"]  # a vote never travels in a URL
    after = voter.get(voted.headers["location"])
    assert "Vote recorded." in after.text
    assert card_proposal(after.text) == ""  # nothing left to vote on
    assert "You have voted on every proposal" in after.text

    mine = author.get(f"/rounds/{round_id}/mine")
    assert "Publish the meeting notes within a day" in mine.text and "Published" in mine.text


@pytest.mark.parametrize("settings_overrides", [{"rounds": {"release_interval_seconds": 3600}}])
def test_my_proposals_says_a_proposal_waiting_for_its_batch_appears_with_it(api, appliance, pages, settings_overrides):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    author = pages("u01")
    author.submit(f"/rounds/{round_id}/proposals", {"text": "Publish the meeting notes within a day"})
    assert [p["status"] for p in api("u01").get(f"/api/v1/rounds/{round_id}/proposals/mine").json()] == ["accepted"]
    mine = author.get(f"/rounds/{round_id}/mine")
    assert "Appears with the next batch" in mine.text and "Published" not in mine.text
    assert "Publish the meeting notes" not in pages("u02").get(f"/rounds/{round_id}").text

    later = appliance.clock() + timedelta(hours=1)
    appliance.clock = lambda: later
    mine = author.get(f"/rounds/{round_id}/mine")
    assert "Published" in mine.text and "Appears with the next batch" not in mine.text


def test_a_proposal_too_short_comes_back_with_the_reason_and_the_draft(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    response = pages("u01").submit(f"/rounds/{round_id}/proposals", {"text": "Short"})
    assert response.status_code == 400
    assert 'role="alert"' in response.text and ">Short</textarea>" in response.text
    form = response.text.split('<section id="propose"')[1]  # the reason above the draft, which takes the focus
    assert '<p class="alert" role="alert" id="proposal-error">Proposal is too short' in form
    assert re.search(r'<textarea[^>]*aria-describedby="proposal-error proposal-rules" aria-invalid="true" autofocus',
                     form)


def test_a_wrong_vote_is_a_clear_page_not_a_server_error(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    response = pages("u01").submit(f"/rounds/{round_id}/ballots", {"proposal": "nope", "choice": "maybe"})
    assert response.status_code == 400
    assert "Vote must be one of" in response.text


def test_a_vote_refused_without_javascript_brings_the_voter_back_to_the_round_told_why(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    for text in ("Publish the meeting notes within a day", "Hold fewer and shorter meetings"):
        assert api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).status_code == 201
    voter = pages("u02")
    withdrawn = card_proposal(voter.get(f"/rounds/{round_id}").text)
    assert api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{withdrawn}/refuse",
                           json={"reason": "off_topic"}).status_code == 200
    refused = voter.submit(f"/rounds/{round_id}/ballots", {"proposal": withdrawn, "choice": "agree"})
    assert refused.status_code == 303 and refused.headers["location"] == f"/rounds/{round_id}?done=vote_withdrawn#vote"
    after = voter.get(refused.headers["location"])
    assert "this proposal is no longer published" in after.text
    assert card_proposal(after.text) not in ("", withdrawn)  # the next proposal is on the card

    assert api("admin").post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    closed = voter.submit(f"/rounds/{round_id}/ballots", {"proposal": card_proposal(after.text), "choice": "agree"})
    assert closed.status_code == 303 and closed.headers["location"] == f"/rounds/{round_id}?done=vote_closed#vote"
    assert "this round no longer takes votes" in voter.get(closed.headers["location"]).text  # no card: at the top


def test_a_round_past_its_closing_time_shows_no_card_and_no_error(api, pages, appliance):
    from datetime import datetime, timedelta, timezone

    round_id = create_open_round(api("admin"), audience_groups=["staff"],
                                 closes_at=(datetime.now(timezone.utc) + timedelta(hours=1)).isoformat())
    appliance.clock = lambda: datetime.now(timezone.utc) + timedelta(hours=2)
    response = pages("u01").get(f"/rounds/{round_id}")
    assert response.status_code == 200 and 'id="vote-form"' not in response.text
    assert "reached its closing time" in response.text


XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script> shown as text'


def test_a_proposal_that_looks_like_html_is_shown_as_text_on_every_page(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    assert api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": XSS}).status_code == 201
    escaped = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt; shown as text"
    for who, path in (("u02", f"/rounds/{round_id}"), ("u01", f"/rounds/{round_id}/mine")):
        html = pages(who).get(path).text
        assert escaped in html and "<script>alert" not in html and "<img src=x" not in html
    assert "script-src 'self'" in pages("u02").get(f"/rounds/{round_id}").headers["content-security-policy"]


def test_a_new_round_invites_the_first_proposals(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    html = pages("u01").get(f"/rounds/{round_id}").text
    assert '<p id="done-none">' in html and '<p id="done-all" class="hidden">' in html


def test_a_vote_posted_from_another_site_without_the_token_is_refused(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Publish the meeting notes within a day"})
    voter = pages("u02")
    proposal = card_proposal(voter.get(f"/rounds/{round_id}").text)
    forged = voter.post(f"/rounds/{round_id}/ballots", data={"proposal": proposal, "choice": "disagree"},
                        follow_redirects=False)
    assert forged.status_code == 403 and "The form had expired" in forged.text
    assert card_proposal(voter.get(f"/rounds/{round_id}").text) == proposal  # still to vote on


def test_after_the_close_my_proposals_says_why_it_cannot_list_them(api, pages):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])  # pre-moderation: it waits
    assert api("u01").post(f"/api/v1/rounds/{round_id}/proposals",
                           json={"text": "Hold fewer and shorter meetings"}).status_code == 201
    author = pages("u01")
    assert "Hold fewer and shorter meetings" in author.get(f"/rounds/{round_id}/mine").text
    assert admin.post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    for step in ("closed", "published"):
        mine = author.get(f"/rounds/{round_id}/mine")
        assert mine.status_code == 200, mine.text
        assert "the link between you and your proposals was erased" in mine.text
        assert "Hold fewer and shorter meetings" not in mine.text
        assert ('href="/rounds/' + round_id + '/results"' in mine.text) == (step == "published")
        dashboard = pages("admin").get(f"/admin/rounds/{round_id}").text
        assert "Never moderated: the round closed first" in dashboard and "Waiting for moderation" not in dashboard
        if step == "closed":
            assert admin.post(f"/api/v1/rounds/{round_id}/publish").status_code == 200


def test_no_page_fails_on_odd_input(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    odd = ["nope", "%00", "a" * 300, round_id]
    for who in (None, "u01", "mod", "admin", "outsider"):
        browser = pages(who)
        for rid in odd:
            for path in (f"/rounds/{rid}", f"/rounds/{rid}/mine", f"/rounds/{rid}/results?tab=x&dimension=y",
                         f"/rounds/{rid}/moderation", f"/admin/rounds/{rid}"):
                assert browser.get(path, follow_redirects=False).status_code in (200, 303, 400, 403, 404, 409), path
            for path, fields in ((f"/rounds/{rid}/ballots", {"proposal": "x", "choice": ":"}),
                                 (f"/rounds/{rid}/proposals", {"text": "\u202e" * 20}),
                                 (f"/admin/rounds/{rid}/explode", {}),
                                 (f"/rounds/{rid}/moderation/x/refuse", {"reason": "nope"})):
                status = browser.submit(path, fields).status_code
                assert status in (303, 400, 403, 404, 409), (path, status)
        assert browser.submit("/language", {"lang": "fr", "next": "\\\\evil"}).headers["location"] == "/rounds"


def test_repeated_wrong_passwords_slow_the_sign_in_form_down(pages):
    browser = pages(None)
    statuses = [browser.sign_in("u01", "wrong").status_code for _ in range(12)]
    assert statuses[0] == 401 and statuses[-1] == 429
    response = browser.sign_in("u01", "wrong")
    assert "Too many failed attempts" in response.text and int(response.headers["retry-after"]) > 0


def test_every_vote_gets_the_same_answer_whatever_it_is(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Publish the meeting notes within a day"})
    voter = pages("u02")
    proposal = card_proposal(voter.get(f"/rounds/{round_id}").text)
    answers = {(r.status_code, r.headers["location"], len(r.content))
               for choice in ("agree", "disagree:no_way", "neutral", "agree:platitude_agree")
               for r in [voter.submit(f"/rounds/{round_id}/ballots", {"proposal": proposal, "choice": choice})]}
    assert len(answers) == 1



def test_every_button_of_the_card_sends_a_form_body_of_one_length(api, pages):
    """The vote must not show in the size of the request on the network either (rule 6)."""
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Publish the meeting notes within a day"})
    voter = pages("u02")
    page = voter.get(f"/rounds/{round_id}").text
    choices = re.findall(r'<button type="submit" name="choice" value="([^"]*)"', page)
    assert len(choices) == 12  # three votes and nine nuances
    bodies = {len(urlencode({"_csrf_token": voter.token(), "proposal": card_proposal(page), "choice": choice}))
              for choice in choices}
    assert len(bodies) == 1, choices
    recorded = voter.submit(f"/rounds/{round_id}/ballots", {"proposal": card_proposal(page), "choice": choices[4]})
    assert recorded.status_code == 303 and "vote_" not in recorded.headers["location"]
    assert api("u02").get(f"/api/v1/rounds/{round_id}/sequence").json()["voted"] == 1


def test_an_unknown_address_is_a_page_for_a_browser_and_problem_json_for_programs(pages, api):
    browser = pages("u01")
    response = browser.get("/no/such/page", headers={"accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 404 and "text/html" in response.headers["content-type"]
    assert "This page does not exist" in response.text
    french = browser.get("/no/such/page", headers={"accept": "text/html", "Accept-Language": "fr"})
    assert "Cette page n’existe pas" in french.text and "Not Found" not in french.text  # no English left over
    program = api("u01").get("/api/v1/no-such-thing", headers={"accept": "text/html"})
    assert program.status_code == 404 and program.headers["content-type"].startswith("application/problem+json")
    assert api("u01").get("/no/such/page").headers["content-type"].startswith("application/problem+json")


def test_a_new_password_signs_out_the_sessions_of_the_old_one(api, appliance):
    from appliance.directory.local import LocalDirectory

    stolen = api("u03")
    assert stolen.get("/api/v1/me").status_code == 200
    assert LocalDirectory(appliance.dbs.identity).set_password("u03", "a-brand-new-password-2030")
    assert stolen.get("/api/v1/me").status_code == 401


def test_signing_out_says_so_and_ends_the_session(pages):
    browser = pages("u01")
    assert browser.get("/rounds").status_code == 200
    out = browser.submit("/sign-out", {})
    assert out.status_code == 303 and out.headers["location"] == "/sign-in?done=signed_out"
    assert '<p class="notice" role="status">You are signed out.</p>' in browser.get(out.headers["location"]).text
    assert browser.get("/rounds", follow_redirects=False).headers["location"].startswith("/sign-in")
    assert "You are signed out" not in browser.get("/sign-in").text
