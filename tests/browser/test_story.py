"""The whole story in Chromium: propose, moderate, vote through the card, close, publish, read the results."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (DESKTOP, PHONE, overflows_sideways, screenshot, serious_accessibility_problems,
                                    sign_in)
from appliance.domain.proposals import clean_text
from tests.conftest import PASSWORD, create_open_round

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> is not run'
IDEAS = ["Hold fewer and shorter meetings", "Publish the cafeteria menu a week ahead", XSS]


def accessible(page, name: str) -> None:
    """No serious or critical accessibility violation, no sideways scrolling, and a screenshot of the page."""
    screenshot(page, name)
    problems = serious_accessibility_problems(page)
    assert not problems, f"{name}: {problems}"
    assert not overflows_sideways(page), f"{name} is wider than the window"


def test_a_round_from_proposals_to_published_results_in_a_real_browser(api, open_page):
    # The admin creates the round with the form and opens it from its dashboard.
    admin = open_page(DESKTOP)
    sign_in(admin, "admin", PASSWORD)
    admin.goto("/admin/rounds/new")
    admin.fill("#title", "Day-to-day work")
    admin.fill("#question", "How could we make our day-to-day work easier?")
    admin.check("input[name=audience_groups][value=staff]")
    admin.check("input[name=dimensions][value=department]")
    box = admin.locator("input[name=audience_groups][value=staff]").bounding_box()
    assert box and box["width"] >= 20 and box["height"] >= 20  # the browser's 13 px are hard to hit
    accessible(admin, "new-round-desktop")
    admin.click("form button.primary")
    expect(admin.locator(".notice")).to_have_text("Round created as a draft.")
    round_id = admin.url.split("?")[0].rsplit("/", 1)[1]
    admin.click("form[action$='/open'] button")
    expect(admin.locator(".notice")).to_have_text("The round is open.")

    sign_in_page = open_page(PHONE)
    sign_in_page.goto("/sign-in")
    accessible(sign_in_page, "sign-in-phone")

    # Two employees propose from their phones; the character counter follows the draft.
    for username, text in (("u01", IDEAS[0]), ("u02", IDEAS[2]), ("u03", IDEAS[1])):
        phone = open_page(PHONE)
        sign_in(phone, username, PASSWORD)
        phone.goto(f"/rounds/{round_id}")
        phone.fill("#proposal-text", text)
        expect(phone.locator("#proposal-counter")).to_contain_text(f"{len(text)} / 280")
        if username == "u01":
            accessible(phone, "round-propose-phone")
        phone.click("#propose-form button[type=submit]")
        expect(phone.locator(".notice")).to_contain_text("your proposal is sent")
        if username == "u01":
            phone.click("text=My proposal and its status")
            expect(phone.locator(".item .badge")).to_have_text("Waiting for moderation")
            accessible(phone, "my-proposals-phone")
            phone.goto("/rounds")
            accessible(phone, "my-rounds-phone")

    # The moderator accepts them from the desk; nothing names an author.
    desk = open_page(DESKTOP)
    sign_in(desk, "mod", PASSWORD)
    desk.goto("/moderation")
    accessible(desk, "moderation-rounds-desktop")
    desk.click(".tile a")
    desk.wait_for_url(f"**/rounds/{round_id}/moderation")
    expect(desk.locator(".item")).to_have_count(3)
    assert desk.evaluate("() => window.__xss") is None
    accessible(desk, "moderation-desktop")
    for _ in IDEAS:
        desk.locator(".item button.primary").first.click()
        expect(desk.locator(".notice")).to_contain_text("Proposal accepted.")
    expect(desk.locator("#duplicate-of option")).to_have_count(4)  # the three, after "choose"
    accessible(desk, "moderation-published-desktop")

    # Writing a proposal close to a published one brings it up as a hint.
    writer = open_page(PHONE)
    sign_in(writer, "u07", PASSWORD)
    writer.goto(f"/rounds/{round_id}")
    writer.locator("#proposal-text").press_sequentially("Shorter meetings, and fewer of them")
    expect(writer.locator("#hints")).to_be_visible()
    expect(writer.locator("#hints-list li .hint-text").first).to_have_text(IDEAS[0])
    screenshot(writer, "round-hints-phone")
    writer.locator("#hints-list li button").first.click()  # agree with it rather than repeat it
    expect(writer.locator("#hints-list li [role=status]").first).to_have_text("Your agreement is recorded.")
    expect(writer.locator("#progress-text")).to_contain_text("1 voted")  # the progress counts it
    expect(writer.locator("#card-text")).not_to_have_text(IDEAS[0])  # nor is it asked again on the card
    assert api("u07").get(f"/api/v1/rounds/{round_id}/sequence").json()["voted"] == 1
    writer.locator("#proposal-text").press_sequentially(" please")  # the hint again: voted on, nothing to press
    expect(writer.locator("#hints-list li").first).to_contain_text("(you have voted on it)")
    expect(writer.locator("#hints-list li").first.locator("button")).to_have_count(0)

    # An employee votes through the card: no page load, progress, spoken feedback, keyboard shortcuts.
    voter = open_page(PHONE)
    sign_in(voter, "u05", PASSWORD)
    voter.goto(f"/rounds/{round_id}")
    expect(voter.locator("#progress-text")).to_have_text("0 voted, 3 to go")
    accessible(voter, "round-vote-phone")
    seen = []
    said = {"click-agree": "Vote recorded: Agree.", "chip-doable": "Vote recorded: Agree (Doable).",
            "key-2": "Vote recorded: Disagree."}  # the nuance too, so that the voter knows it was taken
    for done, action in enumerate(("click-agree", "chip-doable", "key-2"), start=1):
        seen.append(voter.locator("#card-text").inner_text())
        if action == "click-agree":
            voter.click(".vote-agree button.vote")
        elif action == "chip-doable":
            voter.click("button.chip[value^='agree:doable']")
        else:
            voter.keyboard.press("2")
        expect(voter.locator("#progress-text")).to_have_text(f"{done} voted, {3 - done} to go")
        expect(voter.locator("#vote-status")).to_have_text(said[action])
    expect(voter.locator("#card-done")).to_be_visible()
    assert voter.url.endswith(f"/rounds/{round_id}")  # the votes went through the API, no page load
    assert sorted(seen) == sorted(IDEAS)
    assert voter.evaluate("() => window.__xss") is None  # the payload was shown as text, never run
    screenshot(voter, "round-voted-phone")

    # The French interface on the voting page.
    french = open_page(DESKTOP, locale="fr-FR")
    sign_in(french, "u06", PASSWORD)
    french.goto(f"/rounds/{round_id}")
    expect(french.locator("html")).to_have_attribute("lang", "fr")
    expect(french.locator(".vote-agree button.vote")).to_contain_text("D’accord")
    expect(french.locator("#progress-text")).to_have_text("0 votées, 3 à voter")
    accessible(french, "round-vote-desktop-fr")
    french.keyboard.press("1")
    expect(french.locator("#vote-status")).to_have_text("Vote enregistré\u00a0: D’accord.")

    # Eight more employees vote through the card, by keyboard, so that every proposal passes k = 5
    # (not u07, who agreed with a hint above).
    for i in (0, 1, 2, 3, 4, 8, 9, 11):
        employee = open_page(DESKTOP if i % 2 else PHONE)
        sign_in(employee, f"u{i:02d}", PASSWORD)
        employee.goto(f"/rounds/{round_id}")
        for done in range(1, len(IDEAS) + 1):
            text = employee.locator("#card-text").inner_text()
            employee.keyboard.press("1" if text == IDEAS[0] or i % 2 else "2")
            expect(employee.locator("#progress-text")).to_have_text(f"{done} voted, {len(IDEAS) - done} to go")
        expect(employee.locator("#card-done")).to_be_visible()
        employee.context.close()

    # The admin closes and publishes from the dashboard.
    admin.goto("/admin/rounds")
    accessible(admin, "rounds-admin-desktop")
    admin.goto("/rounds/no-such-round")
    expect(admin.locator("h1")).to_have_text("This page does not exist")
    accessible(admin, "error-desktop")
    admin.goto(f"/admin/rounds/{round_id}")
    accessible(admin, "dashboard-desktop")
    admin.click("button.danger")  # the box not ticked: the browser does not send the form
    assert admin.evaluate("document.querySelector(\"form[action$='/close'] input[name=confirm]\").validity.valid") is False
    admin.check("form[action$='/close'] input[name=confirm]")
    admin.click("button.danger")
    expect(admin.locator(".notice")).to_contain_text("The round is closed")
    admin.check("form[action$='/publish'] input[name=confirm]")
    admin.click("form[action$='/publish'] button")
    expect(admin.locator(".notice")).to_contain_text("published")

    # An employee reads the results on a phone, then on a desktop.
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        reader = open_page(viewport)
        sign_in(reader, "u01", PASSWORD)
        reader.goto(f"/rounds/{round_id}/results?dimension=department")
        first = reader.locator(".result").first
        expect(first.locator(".result-text")).to_have_text(IDEAS[0])
        expect(first.locator(".badge")).to_have_text("Consensus")
        expect(first.locator(".legend li").first).to_have_text(re.compile(r"^Agree \d+%"))  # the bar's figures, written
        accessible(reader, f"results-{size}")
    reader.click("text=Controversy")
    expect(reader.locator(".tabs a[aria-current=page]")).to_contain_text("Controversy")
    assert reader.evaluate("() => window.__xss") is None
    screenshot(reader, "results-controversy-desktop")


LONG_WORD = "Réaménagement" * 12  # one word of 156 letters, as pasted from a document


def test_the_proposal_form_counts_like_the_server_and_sends_once(api, open_page):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    phone = open_page(PHONE)
    sign_in(phone, "u01", PASSWORD)
    phone.goto(f"/rounds/{round_id}")
    area = phone.locator("#proposal-text")
    assert area.get_attribute("minlength") is None and area.get_attribute("maxlength") == str(4 * 280)
    # decomposed accents, runs of spaces and an emoji: "Café au bureau 😀", 16 characters for the server
    text = "  Caf" + "e\u0301" + "   au   bure" + "a\u0300" + "u \U0001f600  "
    area.fill(text)
    expect(phone.locator("#proposal-counter")).to_have_text("16 / 280 characters")  # 23 UTF-16 units once trimmed
    # invisible characters the server drops (a zero-width space, a soft hyphen, a BOM) are not counted either
    padded = "Hold\u200b fewer\u00ad meetings\ufeff"
    area.fill(padded)
    expect(phone.locator("#proposal-counter")).to_have_text(f"{len(clean_text(padded))} / 280 characters")
    area.fill("Hold fewer and shorter meetings")
    assert phone.evaluate("""() => {
        const button = document.querySelector("#propose-form button[type=submit]");
        button.click();
        return button.disabled;
    }""")  # a second tap finds the button disabled
    expect(phone.locator(".notice")).to_contain_text("your proposal is sent")
    assert len(api("u01").get(f"/api/v1/rounds/{round_id}/proposals/mine").json()) == 1
    phone.go_back()
    expect(phone.locator("#propose-form button[type=submit]")).to_be_enabled()


def test_a_draft_goes_along_when_the_language_is_switched_and_no_further(api, open_page):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    phone = open_page(PHONE)
    sign_in(phone, "u01", PASSWORD)
    phone.goto(f"/rounds/{round_id}")
    phone.locator("#proposal-text").fill("Install a bike shelter near the entrance")
    phone.click("form.lang button[value=fr]")
    expect(phone.locator("html")).to_have_attribute("lang", "fr")
    expect(phone.locator("#proposal-text")).to_have_value("Install a bike shelter near the entrance")
    expect(phone.locator("#proposal-counter")).to_contain_text("40")
    assert phone.evaluate("() => sessionStorage.length") == 0  # taken back, and gone from the tab
    phone.reload()
    expect(phone.locator("#proposal-text")).to_have_value("")  # a reload, or whoever uses the tab next: nothing
    phone.locator("#proposal-text").fill("Trop court")
    phone.click("#propose-form button[type=submit]")  # refused: the page is the form's answer, not the round's
    expect(phone.locator("#proposal-error")).to_be_visible()
    phone.click("form.lang button[value=en]")  # this switch lands on my rounds: the draft is not kept anywhere
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    assert phone.evaluate("() => sessionStorage.length") == 0


@pytest.mark.parametrize("settings_overrides", [{"rounds": {"proposal_min_chars": 20, "release_interval_seconds": 0}}])
def test_hints_are_looked_up_from_the_round_s_minimum_length(api, open_page, settings_overrides):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    assert api("u02").post(f"/api/v1/rounds/{round_id}/proposals",
                           json={"text": "Hold fewer and shorter meetings"}).status_code == 201
    phone = open_page(PHONE)
    sign_in(phone, "u01", PASSWORD)
    phone.goto(f"/rounds/{round_id}")
    asked = []
    phone.on("request", lambda request: asked.append(request.url) if request.url.endswith("/similar") else None)
    phone.locator("#proposal-text").press_sequentially("fewer meetings")  # 14 characters: not yet
    phone.wait_for_timeout(900)
    assert asked == []
    phone.locator("#proposal-text").press_sequentially(" and shorter")
    expect(phone.locator("#hints-list li .hint-text").first).to_have_text("Hold fewer and shorter meetings")


def test_long_words_in_hints_and_refusal_notes_do_not_widen_the_phone_page(api, open_page):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    published = f"Meetings {LONG_WORD} shorter"
    assert api("u02").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": published}).status_code == 201
    refused = api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "A canteen open later"}).json()
    assert api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{refused['id']}/refuse",
                           json={"reason": "off_topic", "note": f"See {LONG_WORD}"}).status_code == 200
    phone = open_page(PHONE)
    sign_in(phone, "u01", PASSWORD)
    phone.goto(f"/rounds/{round_id}")
    phone.locator("#proposal-text").press_sequentially("Meetings shorter please")
    expect(phone.locator("#hints-list li .hint-text").first).to_have_text(published)
    assert not overflows_sideways(phone), "the hints are wider than the phone"
    phone.goto(f"/rounds/{round_id}/mine")
    expect(phone.locator(".item-note")).to_contain_text(LONG_WORD)
    assert not overflows_sideways(phone), "the refusal note is wider than the phone"
