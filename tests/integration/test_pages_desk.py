"""Moderators' and admins' pages without JavaScript: the queue never names an author; a round's whole life."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from appliance.storage import audit, people
from tests.conftest import add_person, create_open_round


def test_the_moderation_page_never_shows_who_wrote_a_proposal(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    api("u03").post(f"/api/v1/rounds/{round_id}/proposals",
                    json={"text": "Write to jane.doe@example.org about the new canteen menu"})
    html = pages("mod").get(f"/rounds/{round_id}/moderation").text
    assert "Write to" in html and '<mark class="flag"' in html  # the e-mail address is flagged
    body = html.split('<main', 1)[1]
    for trace in ("u03", "U03", "local:u03", "u03@example.org"):
        assert trace not in body


def test_a_moderator_accepts_and_refuses_from_the_queue(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    author = api("u01")
    for text in ("Hold fewer and shorter meetings", "Buy a better coffee machine please"):
        assert author.post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).status_code == 201
    mod = pages("mod")
    html = mod.get(f"/rounds/{round_id}/moderation").text
    ids = dict(re.findall(r'<p class="item-text">([^<]+)</p>.*?/moderation/([0-9a-f]+)/accept', html, re.S))
    ids = {text: pid for text, pid in ids.items()}
    accepted = mod.submit(f"/rounds/{round_id}/moderation/{ids['Hold fewer and shorter meetings']}/accept")
    assert accepted.status_code == 303 and accepted.headers["location"].endswith("done=accepted#desk")
    back = mod.get(accepted.headers["location"].split("#")[0]).text
    assert back.index('id="desk"') < back.index("Proposal accepted.")  # where the page scrolls to, not above it
    refused = mod.submit(f"/rounds/{round_id}/moderation/{ids['Buy a better coffee machine please']}/refuse",
                         {"reason": "off_topic", "note": "not about daily work"})
    assert refused.status_code == 303
    assert "Nothing waits for moderation." in mod.get(f"/rounds/{round_id}/moderation").text
    mine = pages("u01").get(f"/rounds/{round_id}/mine").text
    assert "off topic" in mine and "not about daily work" in mine


def test_a_pending_proposal_shows_the_published_proposals_it_resembles(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "A quiet room on every floor"})
    [pending] = api("mod").get(f"/api/v1/rounds/{round_id}/moderation").json()
    api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{pending['id']}/accept")
    api("u02").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "A quiet room on each floor, please"})
    html = pages("mod").get(f"/rounds/{round_id}/moderation").text
    similar = html.split('<div class="small similar">', 1)[1].split("</div>", 1)[0]
    assert "Resembles published proposals:" in similar and "A quiet room on every floor" in similar
    assert re.search(r"\(similarity \d+%\)", similar)  # not a share of words in common, which it is not


def test_the_list_of_rounds_to_moderate_says_how_many_wait_in_each(api, pages):
    busy = create_open_round(api("admin"), audience_groups=["staff"], title="Canteen")
    create_open_round(api("admin"), audience_groups=["staff"], title="Parking")
    for author, text in (("u01", "Hold fewer and shorter meetings"), ("u02", "Open the library on Saturdays")):
        assert api(author).post(f"/api/v1/rounds/{busy}/proposals", json={"text": text}).status_code == 201
    html = pages("mod").get("/moderation").text
    assert html.count('class="badge status-pending"') == 1  # none for the round where nothing waits
    canteen = html[html.index(f'href="/rounds/{busy}/moderation"'):]
    assert '<span class="badge status-pending">2 wait for a decision</span>' in canteen[:canteen.index("</a>")]


def test_employees_cannot_open_the_desk_or_the_admin_pages(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    employee = pages("u01")
    for path in ("/moderation", f"/rounds/{round_id}/moderation", "/admin/rounds", f"/admin/rounds/{round_id}"):
        response = employee.get(path)
        assert response.status_code == 403 and "text/html" in response.headers["content-type"], path
    assert employee.submit(f"/admin/rounds/{round_id}/close").status_code == 403


def test_an_admin_creates_opens_closes_and_publishes_a_round_from_the_pages(pages):
    admin = pages("admin")
    form = admin.get("/admin/rounds/new").text
    assert 'value="staff"' in form and 'value="department"' in form  # picked from the directory
    created = admin.submit("/admin/rounds/new", {
        "title": "Canteen", "question": "How could the canteen serve us better?", "audience_groups": "staff",
        "dimensions": "department", "k": "5", "moderation": "post", "closes_at": "2099-01-01T12:00"})
    assert created.status_code == 303, created.text
    dashboard = created.headers["location"].split("?")[0]
    round_id = dashboard.rsplit("/", 1)[1]
    assert "Round created as a draft." in admin.get(created.headers["location"]).text
    for action, status in (("open", "Open"), ("close", "Closed"), ("publish", "Results published")):
        response = admin.submit(f"{dashboard}/{action}", {"confirm": "1"})  # the box the dashboard asks to tick
        assert response.status_code == 303, response.text
        assert 'class="badge status-' in admin.get(dashboard).text and status in admin.get(dashboard).text
    assert admin.get(f"/rounds/{round_id}/results").status_code == 200
    page = admin.get(dashboard).text  # what happened when, beside what was planned
    for label in ("Planned closing", "Opened on", "Closed on", "Results published"):
        assert f'<th scope="row">{label}</th><td>' in page, label
    assert '<th scope="row">Closes at</th>' not in page
    french = admin.get(dashboard, headers={"Accept-Language": "fr"}).text  # "Close 29 nov." read as a verb
    for label in ("Ouverte le", "Clôturée le", "Résultats publiés"):
        assert f'<th scope="row">{label}</th><td>' in french, label


def test_a_refused_round_form_comes_back_with_its_values(pages):
    admin = pages("admin")
    response = admin.submit("/admin/rounds/new", {"title": "Canteen", "question": "Why?", "k": "2"})
    assert response.status_code == 400
    assert "The anonymity threshold (k) must be at least 5" in response.text and 'value="Canteen"' in response.text
    assert "k must be at least 5" not in response.text  # the form's words, not the API's
    response = admin.submit("/admin/rounds/new", {"title": "Canteen", "question": "Why?", "opens_at": "soon"})
    assert response.status_code == 400 and "not a date and time" in response.text


def test_a_second_close_is_a_clear_conflict(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    admin = pages("admin")
    assert admin.submit(f"/admin/rounds/{round_id}/close", {"confirm": "1"}).status_code == 303
    again = admin.submit(f"/admin/rounds/{round_id}/close", {"confirm": "1"})
    assert again.status_code == 409 and "Cannot close a round that is closed" in again.text


def test_closing_and_publishing_from_the_pages_take_a_ticked_box(api, pages):
    api_admin = api("admin")
    round_id = create_open_round(api_admin, audience_groups=["staff"])
    admin = pages("admin")
    dashboard = admin.get(f"/admin/rounds/{round_id}").text
    assert 'name="confirm" value="1" required' in dashboard and "this cannot be undone" in dashboard
    unticked = admin.submit(f"/admin/rounds/{round_id}/close")
    assert unticked.status_code == 400 and "Tick the box that says what this does" in unticked.text
    assert api_admin.get(f"/api/v1/rounds/{round_id}").json()["status"] == "open"
    assert admin.submit(f"/admin/rounds/{round_id}/close", {"confirm": "1"}).status_code == 303
    assert admin.submit(f"/admin/rounds/{round_id}/publish").status_code == 400
    assert admin.submit(f"/admin/rounds/{round_id}/publish", {"confirm": "1"}).status_code == 303
    assert api_admin.get(f"/api/v1/rounds/{round_id}").json()["status"] == "published"


def test_the_round_form_sets_the_quota_and_the_schedule(api, pages):
    created = pages("admin").submit("/admin/rounds/new", {
        "title": "Canteen", "question": "How could the canteen serve us better?", "proposal_quota": "2",
        "description": "Lunch times.\n\nThe menu.", "opens_at": "2099-01-01T08:00",
        "proposals_close_at": "2099-01-05T12:00", "closes_at": "2099-01-10T18:30"})
    round_id = created.headers["location"].split("?")[0].rsplit("/", 1)[1]
    dashboard = pages("admin").get(f"/admin/rounds/{round_id}").text  # every setting the form took, shown back
    assert '<th scope="row">Proposals per person</th><td>2</td>' in dashboard
    assert '<th scope="row">Proposals close at</th><td>Jan 5, 2099, 12:00' in dashboard
    assert '<td class="description">Lunch times.\n\nThe menu.</td>' in dashboard
    stored = api("admin").get(f"/api/v1/rounds/{round_id}").json()
    assert stored["proposal_quota"] == 2
    # Typed in server.time_zone (Europe/Paris, UTC+1 in January), stored in UTC.
    assert stored["proposals_close_at"] == "2099-01-05T11:00:00Z" and stored["closes_at"] == "2099-01-10T17:30:00Z"


def test_an_admin_changes_a_draft_from_its_form_which_saves_only_what_changed(appliance, api, pages):
    admin = pages("admin")
    created = admin.submit("/admin/rounds/new", {
        "title": "Canteen", "question": "How could the canteen serve us better?", "audience_groups": "staff",
        "dimensions": "department", "k": "5", "description": "Lunch times.\n\nThe menu.",
        "closes_at": "2099-01-10T18:30"})
    round_id = created.headers["location"].split("?")[0].rsplit("/", 1)[1]
    assert f'href="/admin/rounds/{round_id}/edit"' in admin.get(f"/admin/rounds/{round_id}").text
    form = admin.get(f"/admin/rounds/{round_id}/edit").text
    assert f'action="/admin/rounds/{round_id}/edit"' in form and "Save the draft" in form
    for shown in ('value="Canteen"', 'value="staff" checked', 'value="department" checked', 'value="5"',
                  'value="2099-01-10T18:30"', ">Lunch times.\n\nThe menu.</textarea>"):
        assert shown in form, shown
    as_sent = {"title": "Canteen", "question": "How could the canteen serve us better?", "audience_groups": "staff",
               "dimensions": "department", "k": "5", "description": "Lunch times.\r\n\r\nThe menu.",
               "closes_at": "2099-01-10T18:30", "opens_at": "", "proposals_close_at": "", "proposal_quota": "5",
               "moderation": "pre"}  # a browser sends a text area's lines with \r\n
    unchanged = admin.submit(f"/admin/rounds/{round_id}/edit", as_sent)
    assert unchanged.headers["location"] == f"/admin/rounds/{round_id}?done=unchanged"
    assert "Nothing was changed." in admin.get(unchanged.headers["location"]).text
    changed = admin.submit(f"/admin/rounds/{round_id}/edit", as_sent | {
        "title": "Canteen and coffee", "k": "7", "dimensions": ["site", "department"], "moderation": "post",
        "audience_groups": ["staff", "moderators"]})
    assert changed.headers["location"] == f"/admin/rounds/{round_id}?done=edited"
    assert "Draft saved." in admin.get(changed.headers["location"]).text
    stored = api("admin").get(f"/api/v1/rounds/{round_id}").json()
    assert (stored["title"], stored["k"], sorted(stored["dimensions"]), stored["moderation"],
            sorted(stored["audience_groups"])) == ("Canteen and coffee", 7, ["department", "site"], "post",
                                                   ["moderators", "staff"])
    assert stored["closes_at"] == "2099-01-10T17:30:00Z" and stored["description"] == "Lunch times.\n\nThe menu."
    assert [detail for _, _, done, target, detail in audit.recent(appliance.dbs.identity)
            if done == "round.edit"] == ["title, audience_groups, dimensions, k, moderation"]
    refused = admin.submit(f"/admin/rounds/{round_id}/edit", as_sent | {"title": "Typed again", "k": "2"})
    assert refused.status_code == 400
    assert "The anonymity threshold (k) must be at least 5" in refused.text and 'value="Typed again"' in refused.text
    assert "Change the draft" in refused.text and api("admin").get(f"/api/v1/rounds/{round_id}").json()["k"] == 7
    assert admin.submit(f"/admin/rounds/{round_id}/open").status_code == 303
    opened = admin.get(f"/admin/rounds/{round_id}/edit", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/admin/rounds/{round_id}"
    late = admin.submit(f"/admin/rounds/{round_id}/edit", as_sent | {"closes_at": "2099-02-10T18:30"})
    assert late.status_code == 409 and "The round was opened meanwhile" in late.text
    assert api("admin").get(f"/api/v1/rounds/{round_id}").json()["closes_at"] == "2099-01-10T17:30:00Z"


def test_the_draft_form_keeps_what_the_admin_did_not_touch(appliance, api, pages):
    add_person(appliance, "sam", {"sales"})
    description = "\n\n".join(["x" * 98] * 50)  # 4,998 characters: 5,048 as a browser sends them back
    round_id = api("admin").post("/api/v1/rounds", json={
        "title": "Sales", "question": "Why?", "audience_groups": ["sales"], "description": description}).json()["id"]
    people.delete_person(appliance.dbs.identity, "sam")  # the group is gone from the directory since
    admin = pages("admin")
    form = admin.get(f"/admin/rounds/{round_id}/edit").text
    assert 'value="sales" checked' in form  # still there, ticked: saving does not widen the audience
    as_sent = {"title": "Sales team", "question": "Why?", "audience_groups": "sales", "k": "",
               "proposal_quota": "", "description": description.replace("\n", "\r\n"), "moderation": "pre"}
    saved = admin.submit(f"/admin/rounds/{round_id}/edit", as_sent)
    assert saved.headers["location"] == f"/admin/rounds/{round_id}?done=edited", saved.text
    stored = api("admin").get(f"/api/v1/rounds/{round_id}").json()
    assert (stored["title"], stored["audience_groups"], stored["description"]) == ("Sales team", ["sales"],
                                                                                   description)
    assert [detail for _, _, done, _, detail in audit.recent(appliance.dbs.identity)
            if done == "round.edit"] == ["title"]  # an emptied k or quota that was the default is no change


def test_an_admin_deletes_a_draft_once_the_box_is_ticked(api, pages):
    admin = pages("admin")
    draft = api("admin").post("/api/v1/rounds", json={"title": "Typo round", "question": "Why?"}).json()["id"]
    dashboard = admin.get(f"/admin/rounds/{draft}").text
    assert f'action="/admin/rounds/{draft}/delete"' in dashboard and "this cannot be undone" in dashboard
    unticked = admin.submit(f"/admin/rounds/{draft}/delete")
    assert unticked.status_code == 400 and "Tick the box that says what this does" in unticked.text
    deleted = admin.submit(f"/admin/rounds/{draft}/delete", {"confirm": "1"})
    assert deleted.headers["location"] == "/admin/rounds?done=deleted"
    listing = admin.get(deleted.headers["location"]).text
    assert "Draft deleted." in listing and "Typo round" not in listing
    assert admin.get(f"/admin/rounds/{draft}").status_code == 404
    open_round = create_open_round(api("admin"), audience_groups=["staff"])
    assert "/delete" not in admin.get(f"/admin/rounds/{open_round}").text
    kept = admin.submit(f"/admin/rounds/{open_round}/delete", {"confirm": "1"})
    assert kept.status_code == 409 and "Only a draft can be deleted: this round is open" in kept.text
    assert api("admin").get(f"/api/v1/rounds/{open_round}").json()["status"] == "open"


def test_a_moderator_corrects_the_spelling_of_a_pending_proposal(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Hold fewer and shorter meetigns"})
    mod = pages("mod")
    html = mod.get(f"/rounds/{round_id}/moderation").text
    proposal_id = re.search(r"/moderation/([0-9a-f]+)/correct", html).group(1)
    fixed = mod.submit(f"/rounds/{round_id}/moderation/{proposal_id}/correct",
                       {"text": "Hold fewer and shorter meetings"})
    assert fixed.status_code == 303 and fixed.headers["location"].endswith("done=corrected#desk")
    assert ">Hold fewer and shorter meetings</p>" in mod.get(f"/rounds/{round_id}/moderation").text
    rewrite = mod.submit(f"/rounds/{round_id}/moderation/{proposal_id}/correct",
                         {"text": "Something else entirely, about the car park"})
    assert rewrite.status_code == 400 and "text/html" in rewrite.headers["content-type"]


def test_a_moderator_marks_and_unmarks_a_duplicate(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    ids = [api(f"u0{i}").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).json()["id"]
           for i, text in ((1, "Hold fewer and shorter meetings"), (2, "Publish the cafeteria menu a week ahead"))]
    mod = pages("mod")
    marked = mod.submit(f"/rounds/{round_id}/moderation/duplicates", {"proposal": ids[1], "of": ids[0]})
    assert marked.status_code == 303 and "done=grouped" in marked.headers["location"]
    html = mod.get(f"/rounds/{round_id}/moderation").text
    assert "repeats: Hold fewer and shorter meetings" in html
    voter = api("u05")
    assert len(voter.get(f"/api/v1/rounds/{round_id}/sequence").json()["proposals"]) == 1
    assert mod.submit(f"/rounds/{round_id}/moderation/duplicates", {"proposal": ids[1], "of": ""}).status_code == 303
    assert "repeats: " not in mod.get(f"/rounds/{round_id}/moderation").text
    assert len(voter.get(f"/api/v1/rounds/{round_id}/sequence").json()["proposals"]) == 2
    itself = mod.submit(f"/rounds/{round_id}/moderation/duplicates", {"proposal": ids[0], "of": ids[0]})
    assert itself.status_code == 400
    # Refused, the mark comes back on the desk, above its form, in the page's language.
    mod.submit(f"/rounds/{round_id}/moderation/duplicates", {"proposal": ids[1], "of": ids[0]})
    mod.submit("/language", {"lang": "fr", "next": f"/rounds/{round_id}/moderation"})
    turned = mod.submit(f"/rounds/{round_id}/moderation/duplicates", {"proposal": ids[0], "of": ids[1]})
    assert turned.status_code == 400
    alert = '<p class="alert" role="alert">La proposition qu’elle répète est déjà marquée comme répétant celle-ci'
    assert alert in turned.text.split('action="/rounds/' + round_id + '/moderation/duplicates"')[0]
    assert 'id="duplicate-proposal" name="proposal" required autofocus' in turned.text
    # With fewer than two published there is no duplicate form: the refusal is said above the desk.
    api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{ids[1]}/refuse", json={"reason": "duplicate"})
    stale = mod.submit(f"/rounds/{round_id}/moderation/duplicates", {"proposal": ids[1], "of": ids[0]})
    assert stale.status_code in (404, 409) and '<p class="alert" role="alert">' in stale.text


def test_the_desk_keeps_its_proposals_while_the_moderator_is_at_it_and_a_lost_one_is_said_on_the_desk(
        api, pages, appliance):
    round_id, first, second = two_moderators_on(api, pages, appliance, 3)
    page = first.get(f"/rounds/{round_id}/moderation").text
    mine = accept_forms(page)
    assert len(mine) == 3 and f'data-holds="/rounds/{round_id}/moderation/holds"' in page
    start = appliance.clock()
    for minutes in (1, 2, 3):  # the page renews the holds (twice a minute) while the moderator reads
        appliance.clock = lambda minutes=minutes: start + timedelta(minutes=minutes)
        assert first.submit(f"/rounds/{round_id}/moderation/holds").status_code == 204
    assert not accept_forms(second.get(f"/rounds/{round_id}/moderation").text)  # still the first one's
    appliance.clock = lambda: start + timedelta(minutes=6)  # the first moderator left: the holds lapse
    assert first.submit(f"/rounds/{round_id}/moderation/holds").status_code == 204  # renews nothing lapsed
    taken = accept_forms(second.get(f"/rounds/{round_id}/moderation").text)
    assert taken == mine
    lost = first.submit(f"/rounds/{round_id}/moderation/{next(iter(mine))}/accept")
    assert lost.status_code == 409  # the desk again, told why, not a page of its own
    assert '<p class="alert" role="alert">Another moderator is handling this proposal for' in lost.text
    assert 'id="desk"' in lost.text
    assert pages("u05").submit(f"/rounds/{round_id}/moderation/holds").status_code == 403


def test_a_proposal_accepted_meanwhile_is_said_above_the_desk(api, pages, appliance):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    assert api("u01").post(f"/api/v1/rounds/{round_id}/proposals",
                           json={"text": "Hold fewer and shorter meetings"}).status_code == 201
    first = pages("mod")
    [pid] = accept_forms(first.get(f"/rounds/{round_id}/moderation").text)
    assert api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{pid}/accept").status_code == 200  # elsewhere
    late = first.submit(f"/rounds/{round_id}/moderation/{pid}/accept")
    assert late.status_code == 409
    top = late.text[:late.text.index('id="desk"')]
    assert '<p class="alert" role="alert">' in top  # not on the published card, which shows no accept error


def test_a_correction_s_hold_on_a_published_proposal_is_not_renewed_by_the_desk(api, pages, appliance):
    add_person(appliance, "mod2", {"moderators"})
    round_id = post_moderated_round(api, "Hold fewer and shorter meetigns")
    first = pages("mod")
    pid = re.search(r'id="published-([0-9a-f]+)"', first.get(f"/rounds/{round_id}/moderation").text).group(1)
    assert first.submit(f"/rounds/{round_id}/moderation/{pid}/correct",
                        {"text": "Hold fewer and shorter meetings", "back": pid}).status_code == 303
    start = appliance.clock()
    for minutes in (1, 2, 3):
        appliance.clock = lambda minutes=minutes: start + timedelta(minutes=minutes)
        first.submit(f"/rounds/{round_id}/moderation/holds")
    refused = api("mod2").post(f"/api/v1/rounds/{round_id}/proposals/{pid}/refuse", json={"reason": "off_topic"})
    assert refused.status_code == 200, refused.text  # the correction's two minutes are long over


def test_the_dashboard_shows_participation_a_day_late_and_in_bands(api, pages, appliance):
    from datetime import datetime, timedelta, timezone

    from appliance.domain.schedules import zone_named
    from appliance.i18n import Speaker

    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    admin = pages("admin")
    first = admin.get(f"/admin/rounds/{round_id}").text
    assert "shown from the second day" in first and "Participation by day" not in first
    today = datetime.now(timezone.utc)
    appliance.clock = lambda: today + timedelta(days=1)
    later = pages("admin").get(f"/admin/rounds/{round_id}").text  # a new session: the first one expired
    day = today.astimezone(zone_named(appliance.settings.server.time_zone)).date()  # the day where the server is
    assert "Participation by day" in later and f"<td>{Speaker('en').date(day)}</td>" in later  # Nov 28, 2026
    assert "<td class=\"num\">fewer than 5</td>" in later
    french = pages("admin")
    french.submit("/language", {"lang": "fr", "next": f"/admin/rounds/{round_id}"})
    shown = french.get(f"/admin/rounds/{round_id}").text
    assert f"<td>{Speaker('fr').date(day)}</td>" in shown and "<td class=\"num\">moins de 5</td>" in shown


def test_once_closed_the_dashboard_gives_the_voters_as_the_results_do(api, pages):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"], moderation="post")
    proposal = api("u00").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Hold fewer meetings"}).json()
    for i in range(7):
        api(f"u{i:02d}").post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal["id"], "vote": "agree"})
    assert admin.post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    page = pages("admin").get(f"/admin/rounds/{round_id}").text
    assert "<strong>7</strong>" in page and "5 to 9" not in page  # not a band beside the results' 7 voters
    assert "7 voters" in pages("admin").get(f"/rounds/{round_id}/results").text


def test_an_admin_sets_the_weekly_digest_from_the_dashboard(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    admin = pages("admin")
    dashboard = admin.get(f"/admin/rounds/{round_id}").text
    assert "Digest by email" in dashboard and 'value="staff"' in dashboard
    assert "Mail is off on this appliance" in dashboard
    saved = admin.submit(f"/admin/rounds/{round_id}/digest", {
        "recipients": ["admins", "staff"], "weekday": "4", "local_time": "08:30", "time_zone": "Europe/Paris",
        "enabled": "1"})
    assert saved.status_code == 303 and "done=digest" in saved.headers["location"]
    schedule = api("admin").get(f"/api/v1/rounds/{round_id}/digest").json()
    assert (schedule["recipients"], schedule["weekday"], schedule["local_time"]) == (["admins", "staff"], 4, "08:30")
    assert schedule["enabled"] is True and schedule["final_at_publication"] is False
    assert "Digest settings saved." in admin.get(saved.headers["location"]).text
    refused = admin.submit(f"/admin/rounds/{round_id}/digest", {"recipients": "admins", "time_zone": "Mars/Olympus"})
    assert refused.status_code == 400 and "Mars/Olympus" in refused.text
    assert pages("u01").submit(f"/admin/rounds/{round_id}/digest", {"recipients": "admins"}).status_code == 403


def test_the_round_form_explains_an_unreachable_date_and_keeps_a_typed_offset(api, pages):
    admin = pages("admin")
    form = {"title": "Canteen", "question": "How could the canteen serve us better?", "audience_groups": "staff",
            "k": "5", "moderation": "pre"}
    refused = admin.submit("/admin/rounds/new", form | {"opens_at": "0001-01-01T00:00"})
    assert refused.status_code == 400 and "The opening date: not a date and time within reach" in refused.text
    created = admin.submit("/admin/rounds/new", form | {"closes_at": "2099-01-02T00:00+05:00"})
    round_id = created.headers["location"].split("?")[0].rsplit("/", 1)[1]
    assert api("admin").get(f"/api/v1/rounds/{round_id}").json()["closes_at"] == "2099-01-01T19:00:00Z"


def accept_forms(html: str) -> set[str]:
    return set(re.findall(r'/moderation/([0-9a-f]+)/accept"', html))


def two_moderators_on(api, pages, appliance, count: int):
    """A pre-moderated round with `count` proposals waiting (by u00 to u03), and two moderators' browsers."""
    add_person(appliance, "mod2", {"moderators"})
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    for n in range(count):
        text = f"Proposal number {n} about our daily work"
        assert api(f"u{n % 4:02d}").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).status_code == 201
    return round_id, pages("mod"), pages("mod2")


def test_two_moderators_desks_never_offer_the_same_proposal(api, pages, appliance):
    round_id, first, second = two_moderators_on(api, pages, appliance, 12)
    mine = accept_forms(first.get(f"/rounds/{round_id}/moderation").text)
    html = second.get(f"/rounds/{round_id}/moderation").text
    theirs = accept_forms(html)
    assert len(mine) == 10 and len(theirs) == 2 and not mine & theirs
    assert html.count("Another moderator is handling this proposal.") == 10
    assert accept_forms(first.get(f"/rounds/{round_id}/moderation").text) == mine  # a visit keeps the same ones
    # A decision makes room: the first moderator's desk takes the next waiting one, none of the second's.
    decided = next(iter(mine))
    assert first.submit(f"/rounds/{round_id}/moderation/{decided}/accept").status_code == 303
    assert accept_forms(first.get(f"/rounds/{round_id}/moderation").text) == mine - {decided}


def post_moderated_round(api, *texts: str) -> str:
    """An open post-moderation round where u01, u02... have each published one of the texts."""
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    for i, text in enumerate(texts, start=1):
        assert api(f"u{i:02d}").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).status_code == 201
    return round_id


def test_in_post_moderation_the_desk_refuses_and_corrects_what_is_published(api, pages):
    round_id = post_moderated_round(api, "Hold fewer and shorter meetings", "The boss is an idiot, fire him")
    mod = pages("mod")
    html = mod.get(f"/rounds/{round_id}/moderation").text
    assert "Review what is published" in html
    assert '<p class="counts">Published: 2.</p>' in html  # nothing waits for a decision here: not "0, 0 of them"
    ids = dict(re.findall(r'<p class="item-text">([^<]+)</p>\s*<details.*?/moderation/([0-9a-f]+)/refuse', html, re.S))
    assert set(ids) == {"Hold fewer and shorter meetings", "The boss is an idiot, fire him"}
    insult = ids["The boss is an idiot, fire him"]
    refused = mod.submit(f"/rounds/{round_id}/moderation/{insult}/refuse", {"reason": "insulting"})
    assert refused.status_code == 303
    shown = [p["id"] for p in api("u05").get(f"/api/v1/rounds/{round_id}/sequence").json()["proposals"]]
    assert insult not in shown and len(shown) == 1  # hidden from voters
    meetings = ids["Hold fewer and shorter meetings"]
    corrected = mod.submit(f"/rounds/{round_id}/moderation/{meetings}/correct",
                           {"text": "Hold fewer and shorter meetings."})
    assert corrected.status_code == 303
    assert "Hold fewer and shorter meetings." in mod.get(f"/rounds/{round_id}/moderation").text


@pytest.mark.parametrize("fields, detail", [
    ({"proposal_quota": "-3"}, "the number of proposals per person must be from 1 to 100"),
    ({"proposal_quota": "0"}, "the number of proposals per person must be from 1 to 100"),
    ({"proposal_quota": "101"}, "the number of proposals per person must be from 1 to 100"),
    ({"k": "999999"}, "the anonymity threshold (k) must be at most 1000"),
    ({"opens_at": "2099-01-10T09:00", "closes_at": "2099-01-05T18:00"}, "the closing date must be after the opening date"),
    ({"closes_at": "9999-12-31T23:00"}, "the closing date must be in the years 2000 to 2999"),
    ({"opens_at": "1999-12-31T23:00"}, "the opening date must be in the years 2000 to 2999"),
    ({"closes_at": "2020-01-01T12:00"}, "the closing date is already past: give a later date"),
])
def test_the_round_form_keeps_to_the_limits_of_the_api(api, pages, fields, detail):
    form = {"title": "Canteen", "question": "How could the canteen serve us better?"} | fields
    response = pages("admin").submit("/admin/rounds/new", form)
    assert response.status_code == 400, response.text
    assert detail[:1].upper() + detail[1:] in response.text and 'value="Canteen"' in response.text  # a sentence
    for value in fields.values():
        assert f'value="{value}"' in response.text
    assert api("admin").get("/api/v1/rounds").json() == []


def test_a_digest_time_zone_that_is_a_folder_is_refused_on_the_dashboard(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    response = pages("admin").submit(f"/admin/rounds/{round_id}/digest",
                                     {"recipients": "admins", "time_zone": "Europe", "local_time": "09:00"})
    assert response.status_code == 400 and "Unknown time zone" in response.text and "Europe" in response.text
    assert 'name="time_zone" value="Europe"' in response.text  # the dashboard again, with what was typed
    unticked = pages("admin").submit(f"/admin/rounds/{round_id}/close")  # a refused step comes back to it too
    assert unticked.status_code == 400 and "Tick the box" in unticked.text and "Close the round" in unticked.text
    assert "Back to the page" not in pages("admin").get("/rounds/no-such-round").text  # a link, not a form


def test_a_refused_dashboard_form_comes_back_with_the_values_typed(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    admin = pages("admin")
    typed = {"recipients": ["admins", "staff"], "weekday": "4", "local_time": "25:00", "time_zone": "Europe/Paris",
             "enabled": "1", "final_at_publication": "1"}
    refused = admin.submit(f"/admin/rounds/{round_id}/digest", typed)
    html = refused.text
    assert refused.status_code == 400 and re.search(r'<p class="alert" role="alert">[^<]*from 00:00 to 23:59', html)
    assert 'value="25:00"' in html and '<option value="4" selected>' in html
    assert 'value="staff" checked' in html and 'value="admins" checked' in html
    assert 'name="enabled" value="1" checked' in html and 'name="final_at_publication" value="1" checked' in html
    assert api("admin").get(f"/api/v1/rounds/{round_id}/digest").json()["enabled"] is False  # nothing was saved
    reach = re.compile(r"Reaches (\d+) (?:person|people) now")
    saved_reach = reach.search(admin.get(f"/admin/rounds/{round_id}").text).group(1)  # the admins alone
    assert admin.submit(f"/admin/rounds/{round_id}/digest", typed | {"local_time": "09:00"}).status_code == 303
    typed_reach = reach.search(admin.get(f"/admin/rounds/{round_id}").text).group(1)
    assert reach.search(html).group(1) == typed_reach != saved_reach  # the reach of the boxes ticked
    assert admin.submit(f"/admin/rounds/{round_id}/digest", typed | {"weekday": "", "local_time": "09:00"}).status_code == 303
    earlier = admin.submit(f"/admin/rounds/{round_id}/dates", {"closes_at": "2000-01-30T12:00"})
    assert earlier.status_code == 400 and 'value="2000-01-30T12:00"' in earlier.text
    assert '<details class="correct" id="dates" open>' in earlier.text
    assert admin.submit("/admin/rounds/no-such-round/dates", {"closes_at": "2000-01-30T12:00"}).status_code == 404


def test_an_admin_changes_a_draft_s_dates_and_closes_an_open_round_later_from_the_dashboard(api, pages):
    admin = pages("admin")
    created = admin.submit("/admin/rounds/new", {"title": "Canteen", "question": "How could the canteen serve us?",
                                                 "audience_groups": "staff", "closes_at": "2099-01-10T18:30"})
    dashboard = created.headers["location"].split("?")[0]
    round_id = dashboard.rsplit("/", 1)[1]
    assert 'value="2099-01-10T18:30"' in admin.get(dashboard).text  # the current date, in the form
    dated = admin.submit(f"{dashboard}/dates", {"opens_at": "", "closes_at": "2099-02-01T12:00",
                                                "proposals_close_at": "2099-01-25T12:00"})
    assert dated.status_code == 303 and "Dates saved." in admin.get(dated.headers["location"]).text
    stored = api("admin").get(f"/api/v1/rounds/{round_id}").json()
    assert stored["closes_at"].startswith("2099-02-01T11:00") and stored["proposals_close_at"].startswith("2099-01-25")

    assert admin.submit(f"{dashboard}/open").status_code == 303
    page = admin.get(dashboard).text
    assert "Close it later" in page and 'name="opens_at"' not in page  # an open round: only a later close
    earlier = admin.submit(f"{dashboard}/dates", {"closes_at": "2099-01-30T12:00"})
    assert earlier.status_code == 400 and "can only be extended" in earlier.text
    later = admin.submit(f"{dashboard}/dates", {"closes_at": "2099-03-01T12:00"})
    assert later.status_code == 303
    assert api("admin").get(f"/api/v1/rounds/{round_id}").json()["closes_at"].startswith("2099-03-01T11:00")


def test_the_dashboard_counts_an_address_that_does_not_parse_among_those_mail_skips(api, pages, appliance):
    from appliance.directory import Person
    from appliance.storage import people
    from tests.conftest import PASSWORD_HASH

    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    admin = pages("admin")
    assert admin.submit(f"/admin/rounds/{round_id}/digest", {"recipients": "audience", "weekday": "0",
                                                             "local_time": "09:00", "time_zone": "Europe/Paris",
                                                             "enabled": "1"}).status_code == 303
    before = re.search(r"Reaches (\d+) people now\.", admin.get(f"/admin/rounds/{round_id}").text).group(1)
    broken = Person("local:zed", "zed", "Zed Broken", "aaa-at-example.org", frozenset({"staff"}))
    people.insert_person(appliance.dbs.identity, broken, PASSWORD_HASH)
    html = admin.get(f"/admin/rounds/{round_id}").text
    assert f"Reaches {before} people now." in html and "1 without an email address is skipped." in html


@pytest.mark.parametrize("settings_overrides", [{"rounds": {"release_interval_seconds": 3600}}])
def test_the_dashboard_and_the_desk_say_when_the_next_batch_comes_not_what_it_holds(api, pages, appliance,
                                                                                   settings_overrides):
    from datetime import datetime, timezone

    from appliance.i18n import Speaker

    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    assert api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Hold fewer meetings"}).status_code == 201
    now = appliance.clock().timestamp()
    when = Speaker("en", appliance.settings.server.time_zone).datetime(
        datetime.fromtimestamp((now // 3600 + 1) * 3600, timezone.utc))
    dashboard = pages("admin").get(f"/admin/rounds/{round_id}").text
    assert f"new proposals arrive in batches: the next at {when}" in dashboard
    assert "<strong>0</strong>" in dashboard  # the proposal sent this hour is not counted before its batch
    desk = pages("mod").get(f"/rounds/{round_id}/moderation").text
    assert f"Next batch of new proposals: {when}." in desk and "Nothing waits for moderation." in desk


@pytest.mark.parametrize(("settings_overrides", "published"), [
    ({"rounds": {"release_interval_seconds": 3600}}, False), ({"rounds": {"release_interval_seconds": 0}}, True)])
def test_the_api_says_whether_an_author_s_accepted_proposal_is_published_yet(api, settings_overrides, published):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    author = api("u01")
    assert author.post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Hold fewer meetings"}).status_code == 201
    [mine] = author.get(f"/api/v1/rounds/{round_id}/proposals/mine").json()
    assert (mine["status"], mine["published"]) == ("accepted", published)  # accepted at once, public with its batch


def test_in_pre_moderation_the_desk_can_refuse_a_proposal_accepted_by_mistake(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Call Marc on 06 12 34 56 78"})
    mod = pages("mod")
    proposal_id = re.search(r"/moderation/([0-9a-f]+)/accept", mod.get(f"/rounds/{round_id}/moderation").text).group(1)
    assert mod.submit(f"/rounds/{round_id}/moderation/{proposal_id}/accept").status_code == 303
    html = mod.get(f"/rounds/{round_id}/moderation").text
    assert "A proposal accepted by mistake can still be refused" in html
    assert f"/moderation/{proposal_id}/refuse" in html
    refused = mod.submit(f"/rounds/{round_id}/moderation/{proposal_id}/refuse", {"reason": "targets_a_person"})
    assert refused.status_code == 303
    assert api("u05").get(f"/api/v1/rounds/{round_id}/proposals").json() == []


def test_a_refusal_without_a_reason_is_refused_with_the_charter_and_nothing_is_decided(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Hold fewer and shorter meetings"})
    mod = pages("mod")
    html = mod.get(f"/rounds/{round_id}/moderation").text
    assert '<option value="" selected disabled>Why refuse it?</option>' in html and 'name="reason" required' in html
    proposal_id = re.search(r"/moderation/([0-9a-f]+)/refuse", html).group(1)
    for fields in ({}, {"reason": ""}):
        response = mod.submit(f"/rounds/{round_id}/moderation/{proposal_id}/refuse", fields)
        assert response.status_code == 400 and "A refusal needs its reason, from the charter" in response.text
    assert "hard to understand, off topic, discriminatory" in response.text  # as the form names them, not codes
    assert "names or targets a person" in response.text  # a contact given in a proposal names someone too
    mod.submit("/language", {"lang": "fr", "next": f"/rounds/{round_id}/moderation"})
    french = mod.submit(f"/rounds/{round_id}/moderation/{proposal_id}/refuse", {"reason": "spam"})
    assert french.status_code == 400 and "difficile à comprendre, hors sujet" in french.text
    assert "off_topic" not in french.text.split("<select")[0]
    assert api("mod").get(f"/api/v1/rounds/{round_id}/moderation").json()[0]["id"] == proposal_id  # still pending
    api_said = api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{proposal_id}/refuse", json={"reason": "spam"})
    assert "incomprehensible, off_topic" in api_said.json()["detail"]  # the API names the codes it takes


def test_the_desk_counts_the_queue_and_folds_what_waits_beyond_the_moderator_s_ten(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    for i in range(12):
        text = f"Proposal number {i} about the canteen" + (", call 06 12 34 56 78" if i == 11 else "")
        created = api(f"u{i % 12:02d}").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text})
        assert created.status_code == 201
    html = pages("mod").get(f"/rounds/{round_id}/moderation").text
    assert "Waiting for a decision: 12, 10 of them on your desk. Published: 0." in html
    desk = html[html.index('id="desk"'):html.index('<details class="panel waiting">')]
    assert desk.count("/accept") == 10
    waiting = html[html.index('<details class="panel waiting">'):html.index("</details>", html.index("waiting"))]
    assert "2 more proposals wait" in waiting and "/accept" not in waiting
    assert html.count('<mark class="flag"') == 1  # the number is marked, on the desk or among those waiting


def test_a_decision_on_a_published_proposal_comes_back_to_it_and_flags_come_first(api, pages):
    texts = ["Add bike racks by the entrance", "Call Marc on 06 12 34 56 78 about parking",
             "Hold fewer and shorter meetings", "Open the library on Saturdays"]
    round_id = post_moderated_round(api, *texts)
    mod = pages("mod")
    html = mod.get(f"/rounds/{round_id}/moderation").text
    listed = re.findall(r'<li class="item" id="published-([0-9a-f]+)">.*?<p class="item-text">(.*?)</p>', html, re.S)
    ids = {re.sub(r"<[^>]+>", "", text): pid for pid, text in listed}
    assert [re.sub(r"<[^>]+>", "", text) for _, text in listed][0] == texts[1]  # personal data first
    assert '<mark class="flag" title="phone number">06 12 34 56 78</mark>' in html
    meetings, library = ids["Hold fewer and shorter meetings"], ids["Open the library on Saturdays"]
    back = re.search(rf'/moderation/{meetings}/refuse".*?name="back" value="([0-9a-f]+)"', html, re.S).group(1)
    assert back == library  # the next one of the list
    refused = mod.submit(f"/rounds/{round_id}/moderation/{meetings}/refuse", {"reason": "off_topic", "back": back})
    assert refused.headers["location"] == f"/rounds/{round_id}/moderation?done=refused_published&at={library}" \
                                          f"#published-{library}"
    after = mod.get(refused.headers["location"].split("#")[0]).text
    # The notice sits just above the proposal the page came back to, outside its card (inside, it read as if
    # said of that one), and that proposal takes the focus.
    row = re.search(r'<li class="notice-row"><p class="notice" role="status">([^<]*)</p></li>\s*'
                    r'<li class="item" id="published-([0-9a-f]+)" tabindex="-1" data-next>', after)
    assert row and row.groups() == ("Proposal refused: it is hidden from voters.", library)
    assert after.count("Proposal refused") == 1  # not at the top too
    bad = mod.submit(f"/rounds/{round_id}/moderation/{library}/refuse", {"reason": "off_topic", "back": "../x"})
    assert bad.status_code == 400


def test_the_duplicate_form_starts_unchosen_and_a_form_sent_without_choices_is_refused_plainly(api, pages):
    round_id = post_moderated_round(api, "Hold fewer and shorter meetings", "Open the library on Saturdays")
    mod = pages("mod")
    html = mod.get(f"/rounds/{round_id}/moderation").text
    assert '<option value="" selected disabled>Choose the proposal it repeats</option>' in html
    for fields in ({}, {"of": ""}):
        refused = mod.submit(f"/rounds/{round_id}/moderation/duplicates", fields)
        assert refused.status_code == 400 and "Choose the published proposal that repeats another" in refused.text


def test_a_refused_correction_or_refusal_comes_back_on_its_proposal_with_what_was_typed(api, pages):
    round_id = post_moderated_round(api, "Hold fewer and shorter meetigns")
    mod = pages("mod")
    pid = re.search(r'id="published-([0-9a-f]+)"', mod.get(f"/rounds/{round_id}/moderation").text).group(1)
    rewrite = "Hold no meetings at all, ever"
    refused = mod.submit(f"/rounds/{round_id}/moderation/{pid}/correct", {"text": rewrite, "back": pid})
    assert refused.status_code == 400
    item = refused.text[refused.text.index(f'id="published-{pid}"'):]
    item = item[:item.index("</li>")]
    assert '<details class="correct" open>' in item and 'role="alert">A correction may fix spelling' in item
    assert f"autofocus>{rewrite}</textarea>" in item
    long_note = "x" * 600
    refused = mod.submit(f"/rounds/{round_id}/moderation/{pid}/refuse", {"reason": "insulting", "note": long_note})
    assert refused.status_code == 400
    item = refused.text[refused.text.index(f'id="published-{pid}"'):]
    item = item[:item.index("</li>")]
    assert 'role="alert">Note is too long' in item and '<option value="insulting" selected>' in item
    assert f'value="{long_note}"' in item
    assert api("u05").get(f"/api/v1/rounds/{round_id}/proposals").json()[0]["text"] == "Hold fewer and shorter meetigns"
    # Decided meanwhile: its form is gone, so the reason is said at the top of the page.
    decided = api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{pid}/refuse",
                              json={"reason": "off_topic"})
    assert decided.status_code == 200
    gone = mod.submit(f"/rounds/{round_id}/moderation/{pid}/refuse", {"reason": "insulting"})
    assert gone.status_code == 409 and '<p class="alert" role="alert">The proposal is already refused' in gone.text


def test_after_the_last_decisions_the_notice_is_where_the_page_scrolls_to(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Hold fewer and shorter meetings"})
    mod = pages("mod")
    pid = re.search(r"/moderation/([0-9a-f]+)/accept", mod.get(f"/rounds/{round_id}/moderation").text).group(1)
    accepted = mod.submit(f"/rounds/{round_id}/moderation/{pid}/accept")
    page = mod.get(accepted.headers["location"].split("#")[0]).text
    assert page.index('id="desk"') < page.index("Proposal accepted.") < page.index("Nothing waits for moderation.")
    # The only published proposal, refused: the notice on the published list, where the page goes.
    html = mod.get(f"/rounds/{round_id}/moderation").text
    back = re.search(rf'/moderation/{pid}/refuse".*?name="back" value="([0-9a-f]+)"', html, re.S).group(1)
    refused = mod.submit(f"/rounds/{round_id}/moderation/{pid}/refuse", {"reason": "off_topic", "back": back})
    assert refused.headers["location"].endswith(f"done=refused_published&at={pid}#published")
    page = mod.get(refused.headers["location"].split("#")[0]).text
    assert page.index('id="published"') < page.index("Proposal refused: it is hidden from voters.")


def test_after_a_decision_the_next_proposal_has_the_focus_not_its_accept_button(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    for i, text in enumerate(("Hold fewer and shorter meetings", "Open the library on Saturdays", "Add bike racks")):
        api(f"u{i:02d}").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text})
    mod = pages("mod")
    first = mod.get(f"/rounds/{round_id}/moderation").text
    assert "data-next" not in first  # a page opened fresh leaves the focus alone
    pid = re.search(r"/moderation/([0-9a-f]+)/accept", first).group(1)
    after = mod.get(mod.submit(f"/rounds/{round_id}/moderation/{pid}/accept").headers["location"].split("#")[0]).text
    # The text first: a second Enter must not accept a proposal nobody has read; one Tab reaches Accept.
    assert after.count("data-next") == 1 and '<li class="item" tabindex="-1" data-next>' in after
