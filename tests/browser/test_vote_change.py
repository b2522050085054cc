"""Changing a vote just given, on a phone: a mistaken tap is not final."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, sign_in, voter_on_a_round_of
from tests.conftest import PASSWORD, create_open_round

TEXTS = ("Hold fewer and shorter meetings", "Publish the cafeteria menu ahead")


def in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"]


def test_a_voter_changes_the_vote_just_given_and_it_counts_once(api, appliance, open_page):
    _, phone = voter_on_a_round_of(api, open_page, TEXTS)
    change = phone.locator("#vote-change")
    expect(change).to_be_hidden()  # nothing to change yet
    first = phone.locator("#card-text").inner_text()
    before = phone.locator("#card").bounding_box()["y"]
    phone.locator("#card button.vote[value^='agree:']").click()
    expect(phone.locator("#vote-status")).to_have_text("Vote recorded: Agree.")
    assert phone.locator("#card").bounding_box()["y"] == before  # the next tap lands where the last one did
    assert in_viewport(phone, "#vote-status") and in_viewport(phone, "#vote-change")  # seen without scrolling
    second = phone.locator("#card-text").inner_text()
    assert {first, second} == set(TEXTS)
    expect(phone.locator("#progress-text")).to_have_text("1 voted, 1 to go")

    change.click()
    expect(phone.locator("#card-text")).to_have_text(first)
    expect(phone.locator("#vote-status")).to_contain_text("your new vote replaces the one you just gave")
    expect(change).to_be_hidden()
    assert phone.evaluate("document.activeElement.id") == "card-text"
    phone.wait_for_timeout(600)  # the card takes taps again once settled
    phone.locator("#card button.chip[value^='disagree:no_way']").click()
    expect(phone.locator("#vote-status")).to_have_text("Vote recorded: Disagree (No way).")
    expect(phone.locator("#card-text")).to_have_text(second)  # the card that was waiting comes back
    expect(phone.locator("#progress-text")).to_have_text("1 voted, 1 to go")  # one proposal voted on, still

    votes = appliance.dbs.ballots.execute("SELECT vote, qualification FROM ballots").fetchall()
    assert votes == [("disagree", "no_way")]  # the vote replaced, not added
    phone.wait_for_timeout(600)
    phone.locator("#card button.vote[value^='neutral:']").click()
    expect(phone.locator("#progress-text")).to_have_text("2 voted, 0 to go")


def test_a_refused_proposal_s_reason_goes_once_the_text_is_changed(api, open_page):
    round_id = create_open_round(api("admin"), moderation="post", audience_groups=["staff"])
    phone = open_page(PHONE)
    sign_in(phone, "u05", PASSWORD)
    phone.goto(f"/rounds/{round_id}")
    phone.locator("#proposal-text").fill("Too short")
    phone.locator("#propose-form button[type=submit]").click()
    error = phone.locator("#proposal-error")
    expect(error).to_contain_text("too short")
    assert phone.locator("#proposal-text").get_attribute("aria-invalid") == "true"
    phone.locator("#proposal-text").press_sequentially(" still")
    expect(error).to_have_count(0)  # it spoke of the text sent, not of the one being typed
    assert phone.locator("#proposal-text").get_attribute("aria-invalid") is None


def test_a_vote_being_changed_and_given_from_a_similar_proposal_hint_leaves_no_change_pending(api, open_page):
    _, phone = voter_on_a_round_of(api, open_page, ("Hold fewer and shorter weekly meetings",
                                                     "Publish the cafeteria menu ahead",
                                                     "Open a quiet room for focused work"))
    first = phone.locator("#card-text").inner_text()
    phone.locator("#proposal-text").fill(first + " please")  # its hint offers "I agree with it"
    agree = phone.locator("#hints-list button").first
    expect(agree).to_be_visible()
    phone.locator("#card button.vote[value^='disagree:']").click()
    expect(phone.locator("#vote-status")).to_have_text("Vote recorded: Disagree.")
    phone.locator("#vote-change").click()
    expect(phone.locator("#card-text")).to_have_text(first)
    agree.click()  # the change, given from the hint instead of the card
    expect(phone.locator("#card-text")).not_to_have_text(first)
    expect(phone.locator("#vote-status")).not_to_contain_text("Vote again")
    phone.wait_for_timeout(600)
    phone.locator("#card button.vote[value^='neutral:']").click()
    expect(phone.locator("#progress-text")).to_have_text("2 voted, 1 to go")  # a new vote, counted
