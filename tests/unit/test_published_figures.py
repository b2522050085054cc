"""The results page, the exports and the final digest say the same figures in the same order."""

from __future__ import annotations

from appliance.domain import digests
from appliance.domain.disclosure import RoundCounts, percent_said, publishable_view
from appliance.domain.results import CountRow
from appliance.domain.rounds import Round
from appliance.domain.scoring import score_proposal
from appliance.i18n import Speaker
from appliance.web.api.results import figure, results_csv, results_out
from appliance.web.pages.results import tab_proposals

COMBO = "[]"
CLOSED = Round("r1", "Title", "Question?", "", (), (), 5, None, None, None, "pre", "closed", 10, 280, 5, 3600)


def view_of(tallies: dict[str, dict[str, int]], voters: int):
    rows = [CountRow(pid, COMBO, vote, "", n) for pid, votes in tallies.items() for vote, n in votes.items() if n]
    data = RoundCounts(5, (), [(pid, f"Proposal {pid}") for pid in tallies], rows, {COMBO: voters})
    return publishable_view(data, None, b"seed")


def test_the_page_and_the_digest_round_every_rate_alike() -> None:
    for language in ("en", "fr"):
        say = Speaker(language)
        for total in range(5, 250):
            for agree in range(total + 1):
                rate = score_proposal({"agree": agree, "neutral": total - agree}, {}).rates["agree"]
                # the page formats the API's 4-decimal figure, the digest the view's own value
                assert percent_said(say, figure(rate, bounded=True).value) == percent_said(say, rate.value), rate


def test_83_agree_of_100_is_83_percent_on_the_page_in_the_export_and_in_the_digest() -> None:
    view = view_of({"p1": {"agree": 83, "disagree": 10, "neutral": 7}}, 100)
    say = Speaker("en")
    page = results_out(CLOSED, view).proposals[0]
    assert percent_said(say, page.rates["agree"].value) == "83%"
    assert ",0.8250," in results_csv(view)
    assert ";0,8250;" in results_csv(view, "semicolon")
    mail = digests.final_digest("Title", view.voters, digests.top_proposals(view, "consensus"), [], None, say)
    assert "83%" in mail.text and "82%" not in mail.text


def test_a_rate_just_below_the_consensus_edge_is_never_shown_at_it() -> None:
    view = view_of({"p1": {"agree": 119, "disagree": 50, "neutral": 30}}, 199)  # agree 0.5967
    page = results_out(CLOSED, view).proposals[0]
    assert page.zone == "controversy"
    assert percent_said(Speaker("en"), page.rates["agree"].value) == "59%"


def test_the_digest_lists_the_most_divided_in_the_order_of_the_page_s_controversy_tab() -> None:
    tallies = {"A": {"agree": 30, "disagree": 25, "neutral": 5}, "B": {"agree": 9, "disagree": 8, "neutral": 1},
               "C": {"agree": 40, "disagree": 38, "neutral": 2}, "D": {"agree": 20, "disagree": 21, "neutral": 9}}
    view = view_of(tallies, 80)
    tab = [p.text for p in tab_proposals(results_out(CLOSED, view).proposals, "controversy")]
    assert len(tab) >= 3 and tab != sorted(tab, key=lambda text: next(p.rank for p in view.proposals
                                                                      if p.text == text))  # rank order differs
    assert [line.text for line in digests.top_proposals(view, "controversy")] == tab
