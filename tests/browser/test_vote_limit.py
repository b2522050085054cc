"""A voter who goes past the vote limit is told so in their page's language, on a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, sign_in
from tests.conftest import PASSWORD, create_open_round


@pytest.fixture
def settings_overrides() -> dict[str, dict]:
    return {"security": {"votes_per_minute": 1}}


def test_the_vote_limit_is_said_in_french_with_the_wait(api, open_page):
    round_id = create_open_round(api("admin"), moderation="post", audience_groups=["staff"])
    for author, text in (("u01", "Hold fewer and shorter meetings"), ("u02", "Publish the cafeteria menu ahead")):
        assert api(author).post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).status_code == 201
    phone = open_page(PHONE, locale="fr-FR")
    sign_in(phone, "u05", PASSWORD)
    phone.goto(f"/rounds/{round_id}")
    phone.keyboard.press("1")
    expect(phone.locator("#vote-status")).to_have_text("Vote enregistré\u00a0: D’accord.")
    phone.keyboard.press("1")  # the second vote in the same minute
    status = phone.locator("#vote-status")
    expect(status).to_contain_text("Votre vote n’a pas été enregistré\u00a0: trop de votes en une minute.")
    expect(status).to_have_text(re.compile(r"Votez à nouveau dans \d+ secondes\.$"))
    assert "too many" not in status.inner_text()  # not the API's English words
