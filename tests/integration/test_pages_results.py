"""The results page: what the API publishes and nothing more; nothing while open; hidden cells stay hidden."""

from __future__ import annotations

import re

from appliance.domain.scoring import shown_points

from tests.conftest import add_person, create_open_round
from tests.integration.test_results_api import closed_round, crowd  # noqa: F401 (a fixture)


def rows(html: str) -> dict[str, str]:
    """The breakdown table's rows: segment -> the row's cells as text."""
    found = re.findall(r'<tr>\s*<th scope="row">([^<]*)</th>(.*?)</tr>', html, re.S)
    return {name: re.sub(r"<[^>]+>", " ", cells) for name, cells in found}


def split_votes(username: str, department: str) -> str:
    if username in ("c11", "c21"):
        return "neutral"
    return "agree" if department == "Finance" else "disagree"


def test_the_results_page_hides_what_the_api_hides(api, pages, crowd):  # noqa: F811
    admin, round_id, _ = closed_round(api, crowd, split_votes)
    view = admin.get(f"/api/v1/rounds/{round_id}/results", params={"dimension": "department"}).json()
    html = pages("admin").get(f"/rounds/{round_id}/results?dimension=department").text
    [proposal] = view["proposals"]
    assert "Flexible hours for everyone" in html
    shown = rows(html.split('<table>')[1])  # the proposal's breakdown
    for cell in proposal["cells"]:
        name = "Other groups together" if cell["pooled"] else cell["segment"]
        if cell["rates"] is None:
            assert "not enough responses" in shown[name] and "%" not in shown[name]
        else:
            assert "%" in shown[name]
    assert any(c["rates"] is None for c in proposal["cells"])  # the test covers a hidden cell
    legal = rows(html.split('<table>')[2])["Legal"]  # participation table
    assert "not enough responses" in legal and "%" not in legal


def test_the_results_page_shows_the_ranking_with_zones_and_bars(api, pages, crowd):  # noqa: F811
    admin, round_id, _ = closed_round(api, crowd, lambda username, department: "agree")
    assert admin.post(f"/api/v1/rounds/{round_id}/publish").status_code == 200
    html = pages("c05").get(f"/rounds/{round_id}/results").text
    assert "Flexible hours for everyone" in html
    assert 'class="badge zone-consensus"' in html
    assert re.search(r'<svg class="bar"[^>]*aria-hidden="true"', html)  # the legend says it: heard once
    assert re.search(r'<ul class="legend">\s*<li><span class="dot dot-agree" aria-hidden="true"></span>Agree 9\d%', html)
    assert "28 voters" in html
    rules = html.split('<details class="zones-help">', 1)[1].split("</details>", 1)[0]
    for said in ("at least 60% agree, or fewer than 40% are neutral and fewer than 15% disagree",
                 "at least 60% disagree", "otherwise, when 40% or more are neutral",
                 "even when more disagree than agree"):
        assert said in rules, said
    french = pages("c05")
    french.submit("/language", {"lang": "fr", "next": "/rounds"})
    assert re.search(r"au moins 60[\u00a0\u202f]% sont d’accord", french.get(f"/rounds/{round_id}/results").text)


def test_no_results_page_while_a_round_is_open(api, pages):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"], moderation="post")
    api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Publish the meeting notes within a day"})
    for who in ("admin", "u02"):
        response = pages(who).get(f"/rounds/{round_id}/results")
        assert response.status_code == 409
        assert "Publish the meeting notes" not in response.text and "%" not in response.text


def test_the_audience_reads_no_results_before_publication(api, pages, crowd):  # noqa: F811
    _, round_id, _ = closed_round(api, crowd, split_votes)
    browser = pages("c05")
    assert browser.get(f"/rounds/{round_id}/results").status_code == 403
    assert "See the results" not in browser.get(f"/rounds/{round_id}").text


def test_a_dimension_merged_at_open_says_why_it_has_no_breakdown(api, pages, appliance):
    for i in range(25):  # three departments, and a site of one's own each: no site can be kept apart
        add_person(appliance, f"o{i}", {"ops"}, {"department": ("Ops", "Sales", "Legal")[i // 10], "site": f"S{i}"})
    admin = api("admin")
    round_id = create_open_round(admin, moderation="post", audience_groups=["ops"], dimensions=["department", "site"])
    proposal = api("o0").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "A shuttle between the sites"})
    for i in range(6):
        api(f"o{i}").post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal.json()["id"], "vote": "agree"})
    assert admin.post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    view = admin.get(f"/api/v1/rounds/{round_id}/results", params={"dimension": "site"}).json()
    assert view["segments"] == [] and view["note"].startswith("no breakdown: when the round opened")
    html = pages("admin").get(f"/rounds/{round_id}/results?dimension=site").text
    assert "No breakdown by site: when the round opened, its groups could not be kept apart" in html
    by_department = pages("admin").get(f"/rounds/{round_id}/results?dimension=department").text
    assert "No breakdown" not in by_department and "rounded to 5 points" in by_department


def test_the_download_suits_the_page_s_language_and_the_admin_goes_back_to_the_dashboard(api, pages, crowd):  # noqa: F811
    admin, round_id, _ = closed_round(api, crowd, lambda username, department: "agree")
    browser = pages("admin")
    english = browser.get(f"/rounds/{round_id}/results?dimension=department").text
    assert f'href="/api/v1/rounds/{round_id}/results.csv?dimension=department" download' in english
    assert f'<a href="/admin/rounds/{round_id}">' in english  # back to the dashboard the admin came from
    french = browser.get(f"/rounds/{round_id}/results?dimension=department", headers={"Accept-Language": "fr"}).text
    link = re.search(r'href="(/api/v1/rounds/[^"]+)" download', french).group(1).replace("&amp;", "&")
    assert link == f"/api/v1/rounds/{round_id}/results.csv?dimension=department&separator=semicolon"
    assert ";" in browser.get(link).text.splitlines()[0]
    assert admin.post(f"/api/v1/rounds/{round_id}/publish").status_code == 200
    assert f'<a href="/rounds/{round_id}">' in pages("c05").get(f"/rounds/{round_id}/results").text


def test_a_group_that_voted_en_masse_is_said_over_represented_on_the_page(api, pages, crowd):  # noqa: F811
    admin, round_id, _ = closed_round(api, crowd, lambda username, department: department == "Finance" and "agree")
    view = admin.get(f"/api/v1/rounds/{round_id}/results", params={"dimension": "department"}).json()
    assert {s["name"]: s["over_represented"] for s in view["segments"] if s["shown"]} == {"Finance": True}
    html = pages("admin").get(f"/rounds/{round_id}/results?dimension=department").text
    participation = html[html.index("Participation by department"):]
    assert "(over-represented)" in rows(participation)["Finance"]
    assert "its share of the voters is more than 1.5 times its share of the audience" in participation


def test_the_results_say_what_share_of_the_audience_voted_top_coded_like_a_group(api, pages, crowd):  # noqa: F811
    admin, round_id, _ = closed_round(api, crowd, lambda username, department: "agree")
    view = admin.get(f"/api/v1/rounds/{round_id}/results").json()
    # 28 of the crowd's 34 voted; with the 12 staff of the fixture, the audience is 46: 18 did not vote.
    assert (view["voters"], view["participation"], view["participation_at_least"]) == (28, 0.6, False)
    assert "60% of the audience" in pages("admin").get(f"/rounds/{round_id}/results").text


def test_each_proposal_shows_the_support_score_that_ranks_it(api, pages, crowd):  # noqa: F811
    admin, round_id, _ = closed_round(api, crowd, split_votes)
    [proposal] = admin.get(f"/api/v1/rounds/{round_id}/results").json()["proposals"]
    top = proposal["scores"]["top"]
    html = pages("admin").get(f"/rounds/{round_id}/results").text
    assert (f"support score {shown_points(top['value'])} (at least {shown_points(top['low'])},"
            " given the margin of error)") in html
    assert "ranked by their support score at the low end of its margin of error" in html
