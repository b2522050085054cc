"""A vote the appliance refuses: the voter is told why in their page's language, on a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, sign_in
from tests.conftest import PASSWORD, create_open_round


@pytest.fixture
def settings_overrides() -> dict[str, dict]:
    return {"security": {"votes_per_minute": 1}}


def round_with_two_proposals(api) -> str:
    round_id = create_open_round(api("admin"), moderation="post", audience_groups=["staff"])
    for author, text in (("u01", "Hold fewer and shorter meetings"), ("u02", "Publish the cafeteria menu ahead")):
        assert api(author).post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).status_code == 201
    return round_id


def french_voter(open_page, round_id: str):
    phone = open_page(PHONE, locale="fr-FR")
    sign_in(phone, "u05", PASSWORD)
    phone.goto(f"/rounds/{round_id}")
    return phone


def test_the_vote_limit_is_said_in_french_with_the_wait(api, open_page):
    phone = french_voter(open_page, round_with_two_proposals(api))
    phone.keyboard.press("1")
    expect(phone.locator("#vote-status")).to_have_text("Vote enregistré\u00a0: D’accord.")
    phone.keyboard.press("1")  # the second vote in the same minute
    status = phone.locator("#vote-status")
    expect(status).to_contain_text("Votre vote n’a pas été enregistré\u00a0: trop de votes en une minute.")
    expect(status).to_have_text(re.compile(r"Votez à nouveau dans \d+ secondes\.$"))
    assert "too many" not in status.inner_text()  # not the API's English words


@pytest.mark.parametrize("settings_overrides", [{}])
def test_a_round_closed_while_the_card_is_open_is_said_in_french(api, open_page, settings_overrides):
    round_id = round_with_two_proposals(api)
    phone = french_voter(open_page, round_id)
    assert api("admin").post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    phone.keyboard.press("1")
    expect(phone.locator("#vote-status")).to_have_text(
        "Votre vote n’a pas été enregistré\u00a0: cette consultation ne prend plus de votes.")


@pytest.mark.parametrize("settings_overrides", [{}])
def test_a_vote_without_network_is_said_in_french(api, open_page, settings_overrides):
    phone = french_voter(open_page, round_with_two_proposals(api))
    phone.context.set_offline(True)
    phone.keyboard.press("1")
    status = phone.locator("#vote-status")
    expect(status).to_have_text("Votre vote n’a peut-être pas été enregistré\u00a0: le service est injoignable."
                                " Vérifiez votre connexion et votez à nouveau\u202f; un vote donné deux fois"
                                " compte une fois.")
    expect(status).to_have_class("live failed")  # not the colour of a recorded vote
    assert phone.evaluate("navigator.onLine") is False
    phone.context.set_offline(False)
    phone.wait_for_function("navigator.onLine")  # the browser has taken the network back
    phone.keyboard.press("1")  # the same card is still there: the vote goes through once the network is back
    expect(status).to_have_text("Vote enregistré\u00a0: D’accord.")
    expect(status).to_have_class("live")


@pytest.mark.parametrize("settings_overrides", [{}])
def test_an_ended_session_and_a_stale_page_are_said_in_french(api, open_page, settings_overrides):
    phone = french_voter(open_page, round_with_two_proposals(api))
    context = phone.context
    kept = context.cookies()
    context.clear_cookies()
    context.add_cookies([c for c in kept if c["name"] != "session"])  # signed out elsewhere, say
    phone.keyboard.press("1")
    status = phone.locator("#vote-status")
    expect(status).to_have_text("Votre vote n’a pas été enregistré\u00a0: votre session a pris fin."
                                " Reconnectez-vous.")
    context.clear_cookies()
    context.add_cookies([c | {"value": "x" * len(c["value"])} if c["name"] == "csrftoken" else c for c in kept])
    phone.keyboard.press("1")
    expect(status).to_have_text("Votre vote n’a pas été enregistré\u00a0: cette page n’est plus à jour."
                                " Rechargez-la et votez à nouveau.")


@pytest.mark.parametrize("settings_overrides", [{}])
def test_a_vote_recorded_when_the_next_proposal_cannot_be_fetched_is_said_recorded(api, open_page, settings_overrides):
    round_id = round_with_two_proposals(api)
    phone = french_voter(open_page, round_id)
    status = phone.locator("#vote-status")
    phone.keyboard.press("1")
    expect(status).to_have_text("Vote enregistré\u00a0: D’accord.")
    # The second vote goes through; the network fails when the page then asks for the next proposals.
    phone.route("**/sequence", lambda route: route.abort())
    phone.locator("button.vote[data-key='2']").focus()  # as a keyboard or screen-reader user votes
    phone.keyboard.press("Enter")
    expect(status).to_have_text("Vote enregistré\u00a0: Pas d’accord. La proposition suivante n’a pas pu être chargée\u00a0:"
                                " rechargez la page.")
    expect(phone.locator("#card")).to_be_hidden()  # no card left whose buttons would change the vote just cast
    assert phone.evaluate("document.activeElement.id") == "vote-status"  # the focus went with the card: given back
    assert api("u05").get(f"/api/v1/rounds/{round_id}/sequence").json()["voted"] == 2


@pytest.mark.parametrize("settings_overrides", [{}])
def test_a_proposal_withdrawn_under_the_card_gives_way_to_the_next(api, open_page, settings_overrides):
    round_id = round_with_two_proposals(api)
    phone = french_voter(open_page, round_id)
    text = phone.locator("#card-text")
    expect(text).not_to_be_empty()
    shown = text.inner_text()
    proposals = api("mod").get(f"/api/v1/rounds/{round_id}/proposals").json()
    withdrawn = next(p["id"] for p in proposals if p["text"] == shown)
    assert api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{withdrawn}/refuse",
                           json={"reason": "off_topic"}).status_code == 200
    phone.keyboard.press("1")
    status = phone.locator("#vote-status")
    expect(status).to_have_text("Votre vote n’a pas été enregistré\u00a0: cette proposition n’est plus publiée.")
    expect(text).not_to_have_text(shown)  # not stuck on a card every press would fail on
    phone.keyboard.press("1")
    expect(status).to_have_text("Vote enregistré\u00a0: D’accord.")
    assert api("u05").get(f"/api/v1/rounds/{round_id}/sequence").json()["voted"] == 1


@pytest.mark.parametrize("settings_overrides", [{}])
def test_a_proposal_withdrawn_under_the_card_leaves_the_vote_before_it_changeable(api, open_page, settings_overrides):
    round_id = round_with_two_proposals(api)
    assert api("u03").post(f"/api/v1/rounds/{round_id}/proposals",
                           json={"text": "Let people work from home on Fridays"}).status_code == 201
    phone = french_voter(open_page, round_id)
    text, status = phone.locator("#card-text"), phone.locator("#vote-status")
    expect(text).not_to_be_empty()
    first = text.inner_text()
    phone.keyboard.press("1")
    expect(status).to_have_text("Vote enregistré\u00a0: D’accord.")
    expect(text).not_to_have_text(first)
    proposals = api("mod").get(f"/api/v1/rounds/{round_id}/proposals").json()
    withdrawn = next(p["id"] for p in proposals if p["text"] == text.inner_text())
    assert api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{withdrawn}/refuse",
                           json={"reason": "off_topic"}).status_code == 200
    phone.keyboard.press("1")
    expect(status).to_have_text("Votre vote n’a pas été enregistré\u00a0: cette proposition n’est plus publiée.")
    change = phone.locator("#vote-change")
    expect(change).to_be_visible()  # the first vote can still be changed
    change.click()
    expect(text).to_have_text(first)
    phone.keyboard.press("2")
    expect(status).to_have_text("Vote enregistré\u00a0: Pas d’accord.")
    assert api("u05").get(f"/api/v1/rounds/{round_id}/sequence").json()["voted"] == 1  # replaced, not added


@pytest.mark.parametrize("settings_overrides", [{}])
def test_a_held_key_votes_once_and_the_next_proposal_is_given_the_focus(api, open_page, settings_overrides):
    round_id = round_with_two_proposals(api)
    phone = french_voter(open_page, round_id)
    phone.locator("button.vote[data-key='1']").focus()
    phone.keyboard.down("1")
    expect(phone.locator("#vote-status")).to_have_text("Vote enregistré\u00a0: D’accord.")
    phone.keyboard.down("1")  # the key still held: the browser repeats it
    phone.keyboard.up("1")
    phone.wait_for_timeout(300)
    assert api("u05").get(f"/api/v1/rounds/{round_id}/sequence").json()["voted"] == 1
    assert phone.evaluate("document.activeElement.id") == "card-text"  # read out before the next vote
