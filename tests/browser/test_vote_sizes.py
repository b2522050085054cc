"""What a vote looks like on the network: every vote the voting page sends has one size (ARCHITECTURE.md, rule 6).

With TLS an observer of the network does not read the body, but sees its length: "agree" is shorter than
"disagree", a nuance longer than none. The page pads each ballot to one length.
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import voter_on_a_round_of

TEXTS = ("Hold fewer and shorter meetings", "Publish the cafeteria menu ahead", "Let people work from home on Fridays",
         "Put a water fountain on every floor", "Give every team a budget for training")


def test_every_vote_the_page_sends_has_one_size(api, open_page):
    _, phone = voter_on_a_round_of(api, open_page, TEXTS)
    sizes: list[int] = []
    phone.on("request", lambda request: sizes.append(len(request.post_data_buffer or b""))
             if request.method == "POST" and request.url.endswith("/ballots") else None)
    status = phone.locator("#vote-status")
    phone.keyboard.press("1")
    expect(status).to_have_text("Vote recorded: Agree.")
    phone.locator(".vote-disagree .chip", has_text="Empty words").click()
    expect(status).to_have_text("Vote recorded: Disagree (Empty words).")
    phone.locator(".vote-neutral .chip", has_text="I don't care").click()
    expect(status).to_have_text("Vote recorded: Neutral (I don't care).")
    phone.locator("#vote-change").click()
    phone.locator(".vote-agree .chip", has_text="Obvious").click()
    expect(status).to_have_text("Vote recorded: Agree (Obvious).")
    # An agreement given from a similar proposal shown while writing one: the one on the card, not voted on yet.
    phone.locator("#proposal-text").fill(phone.locator("#card-text").inner_text() + " please")
    phone.locator("#hints-list li button").first.click()
    expect(phone.locator("#hints-list li [role=status]").first).to_have_text("Your agreement is recorded.")
    assert len(sizes) == 5 and len(set(sizes)) == 1, sizes
