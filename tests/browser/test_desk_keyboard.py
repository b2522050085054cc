"""The moderation desk with a keyboard: after a decision, the next proposal is read first."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, sign_in
from tests.conftest import PASSWORD, create_open_round


def test_after_a_decision_the_focus_is_on_the_next_proposal_and_one_tab_reaches_accept(api, open_page):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    for author, text in (("u01", "Hold fewer and shorter meetings"), ("u02", "Open the library on Saturdays")):
        assert api(author).post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).status_code == 201
    desk = open_page(DESKTOP)
    sign_in(desk, "mod", PASSWORD)
    desk.goto(f"/rounds/{round_id}/moderation")
    desk.locator("#desk button.primary").first.click()
    expect(desk.locator(".notice")).to_contain_text("Proposal accepted.")
    desk.wait_for_load_state("load")
    focused = desk.evaluate("() => document.activeElement.matches('li.item') && document.activeElement.innerText")
    assert focused and "Proposal accepted." not in focused  # a proposal's text, not the notice
    desk.keyboard.press("Tab")
    assert desk.evaluate("() => document.activeElement.textContent.trim()") == "Accept"


def test_the_desk_renews_its_holds_twice_a_minute_while_the_moderator_is_at_it(api, open_page):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    assert api("u01").post(f"/api/v1/rounds/{round_id}/proposals",
                           json={"text": "Hold fewer and shorter meetings"}).status_code == 201
    desk = open_page(DESKTOP)
    desk.clock.install()
    sign_in(desk, "mod", PASSWORD)
    renewals: list[int] = []
    desk.on("response", lambda response: renewals.append(response.status)
            if response.url.endswith(f"/rounds/{round_id}/moderation/holds") else None)
    desk.goto(f"/rounds/{round_id}/moderation")
    desk.mouse.wheel(0, 100)  # the moderator reads
    desk.clock.run_for(31_000)
    desk.wait_for_timeout(500)
    assert renewals == [204]
    desk.clock.run_for(6 * 60_000)  # away from the page: nothing typed, clicked or scrolled for minutes
    desk.wait_for_timeout(500)
    assert 5 <= len(renewals) <= 10 and set(renewals) == {204}  # renewed while recently active, then no more
    count = len(renewals)
    desk.clock.run_for(3 * 60_000)
    desk.wait_for_timeout(500)
    assert len(renewals) == count
