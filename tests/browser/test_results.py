"""Results broken down by department in Chromium: the heat map, hidden cells, French figures, accessibility."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import (DESKTOP, PHONE, overflows_sideways, screenshot, serious_accessibility_problems,
                                    sign_in)
from tests.conftest import PASSWORD
from tests.integration.test_pages_results import split_votes
from tests.integration.test_results_api import closed_round, crowd  # noqa: F401 (a fixture)


def test_the_breakdown_by_department_reads_well_and_hides_small_groups(api, open_page, crowd):  # noqa: F811
    _, round_id, _ = closed_round(api, crowd, split_votes)
    for size, viewport, locale in (("desktop", DESKTOP, "en-GB"), ("phone-fr", PHONE, "fr-FR")):
        page = open_page(viewport, locale=locale)
        sign_in(page, "admin", PASSWORD)
        page.goto(f"/rounds/{round_id}/results")
        page.select_option("#dimension", "department")
        page.click(".filters button")
        page.wait_for_url("**dimension=department")
        table = page.locator(".result table")
        hidden = "pas assez de réponses" if locale.startswith("fr") else "not enough responses"
        expect(table.locator("td.hidden-cell").first).to_have_text(hidden)
        expect(table.locator("td[class*=heat-agree]").first).to_be_visible()
        problems = serious_accessibility_problems(page)
        screenshot(page, f"results-by-department-{size}")
        assert not problems, problems
        assert not overflows_sideways(page)
        width = page.viewport_size["width"]
        for tab in page.locator(".tabs a").all():  # every tab in sight, none scrolled away
            box = tab.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, tab.inner_text()
    expect(page.locator(".legend li").first).to_contain_text("\u202f%")  # French writes 62 %


def test_a_printed_results_page_shows_the_figures_and_estimates_without_the_controls(api, open_page, crowd):  # noqa: F811
    _, round_id, _ = closed_round(api, crowd, split_votes)
    page = open_page(DESKTOP)
    sign_in(page, "admin", PASSWORD)
    page.goto(f"/rounds/{round_id}/results?dimension=department")
    expect(page.locator("details.estimates").first).not_to_have_attribute("open", "")
    page.emulate_media(media="print")
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")  # what printing fires first
    for control in ("header.top", "form.filters", ".tabs", "a.button", "p.back"):
        expect(page.locator(control).first).to_be_hidden()
    expect(page.locator("p.print-only")).to_be_visible()
    expect(page.locator("details.estimates").first).to_have_attribute("open", "")
    expect(page.locator("details.zones-help")).to_have_attribute("open", "")  # how it is ranked, on paper too
    expect(page.locator(".result").first).to_be_visible()
    screenshot(page, "results-printed")
