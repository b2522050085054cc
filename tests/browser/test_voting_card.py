"""The voting card on a phone: a group of near-duplicates is asked once, whatever the page's script does."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, sign_in, voter_on_a_round_of
from tests.conftest import PASSWORD, create_open_round

TEXTS = ("Hold fewer and shorter meetings", "Hold shorter meetings, and fewer of them",
         "Publish the cafeteria menu ahead")


def test_near_duplicates_are_asked_once_between_the_page_and_its_script(api, open_page):
    round_id = create_open_round(api("admin"), moderation="post", audience_groups=["staff"])
    ids = []
    for author, text in zip(("u01", "u02", "u03"), TEXTS):
        created = api(author).post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text})
        assert created.status_code == 201
        ids.append(created.json()["id"])
    marked = api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{ids[1]}/duplicate", json={"of": ids[0]})
    assert marked.status_code == 200
    # The page draws one of the pair for its card; its script must go on with that same draw, not a second one.
    for voter in ("u05", "u06", "u07"):
        phone = open_page(PHONE)
        sign_in(phone, voter, PASSWORD)
        phone.goto(f"/rounds/{round_id}")
        seen = []
        while phone.locator("#card").is_visible():
            text = phone.locator("#card-text").inner_text()
            seen.append(text)
            phone.keyboard.press("1")
            phone.wait_for_function("shown => document.getElementById('card').classList.contains('hidden')"
                                    " || document.getElementById('card-text').textContent !== shown", arg=text)
            assert len(seen) <= 3
        expect(phone.locator("#done-all")).to_be_visible()
        assert len(seen) == 2 and TEXTS[2] in seen, seen
        assert api(voter).get(f"/api/v1/rounds/{round_id}/sequence").json()["voted"] == 2


def test_a_double_tap_votes_once_and_never_on_the_proposal_it_brings(api, open_page):
    round_id, phone = voter_on_a_round_of(api, open_page, ("Publish the cafeteria menu ahead",
                                                            "Open the library on Saturdays",
                                                            "Add bike racks by the entrance"))
    first = phone.locator("#card-text").inner_text()
    box = phone.locator(".vote-agree button.vote").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    phone.mouse.click(x, y)
    phone.wait_for_function("shown => document.getElementById('card-text').textContent !== shown", arg=first)
    phone.mouse.click(x, y)  # the second tap of a double tap, on the proposal that has just come
    expect(phone.locator("#progress-text")).to_have_text("1 voted, 2 to go")
    phone.wait_for_timeout(300)
    assert api("u05").get(f"/api/v1/rounds/{round_id}/sequence").json()["voted"] == 1
    phone.wait_for_timeout(400)  # a moment later, the card takes taps again
    phone.mouse.click(x, y)
    expect(phone.locator("#progress-text")).to_have_text("2 voted, 1 to go")


def test_every_button_of_the_phone_voting_page_is_a_44_pixel_tap_target(api, open_page):
    round_id = create_open_round(api("admin"), moderation="post", audience_groups=["staff"])
    assert api("u01").post(f"/api/v1/rounds/{round_id}/proposals",
                           json={"text": "Publish the cafeteria menu ahead"}).status_code == 201
    for language in ("en-GB", "fr-FR"):
        phone = open_page(PHONE, language)
        sign_in(phone, "u05", PASSWORD)
        phone.goto(f"/rounds/{round_id}")
        expect(phone.locator("#card")).to_be_visible()
        heights = phone.evaluate("""() => [...document.querySelectorAll('button, input[type=submit]')]
            .filter(b => b.offsetParent !== null)
            .map(b => [b.textContent.trim() || b.value, b.getBoundingClientRect().height])""")
        assert heights and all(height >= 44 for _, height in heights), [h for h in heights if h[1] < 44]
