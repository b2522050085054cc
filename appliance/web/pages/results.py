"""The results page: exactly the API's publishable view, ranked, in tabs, with charts drawn on the server."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from appliance.domain.rounds import Viewer
from appliance.domain.scoring import ZONE_FEW, ZONE_MOST, ZONE_NEUTRAL
from appliance.services import rounds as service
from appliance.services.context import Appliance
from appliance.web.api.models import ProposalResultOut
from appliance.web.api.results import results_out
from appliance.web.pages import charts
from appliance.web.pages.labels import N_
from appliance.web.pages.render import page, speaker_for

TABS = {"ranking": N_("Ranking"), "consensus": N_("Consensus"), "controversy": N_("Controversy"),
        "rejection": N_("Rejection"), "limbo": N_("Undecided")}


def tab_proposals(proposals: list[ProposalResultOut], tab: str) -> list[ProposalResultOut]:
    """The proposals a tab lists: all by rank (unranked last), or one zone by its own score or by rank."""
    if tab == "ranking":
        return sorted(proposals, key=lambda p: (p.rank is None, p.rank or 0))
    if tab in ("consensus", "limbo"):  # by rank; "undecided" (limbo) has no score of its own
        return sorted((p for p in proposals if p.zone == tab), key=lambda p: p.rank or 0)
    chosen = [p for p in proposals if p.zone == tab and p.scores]
    return sorted(chosen, key=lambda p: -p.scores[tab].value)


class ResultsPages(Controller):
    include_in_schema = False

    @get("/rounds/{round_id:str}/results", sync_to_thread=True)
    def results(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], request: Request,
                round_id: FromPath[str], tab: FromQuery[str] = "ranking",
                dimension: FromQuery[str | None] = None) -> Template:
        """Published results: admins after close, the audience after publish (the API's rules)."""
        round_, view = service.round_results(app, round_id, viewer, dimension or None)
        published = results_out(round_, view)
        tab = tab if tab in TABS else "ranking"
        say = speaker_for(request)
        return page(request, "results.html", round=round_, view=published, tab=tab, tabs=TABS,
                    shown=tab_proposals(published.proposals, tab),
                    counts={name: len(tab_proposals(published.proposals, name)) for name in TABS},
                    bounds={"most": say.percent(ZONE_MOST), "neutral": say.percent(ZONE_NEUTRAL),
                            "few": say.percent(ZONE_FEW)},
                    bar=charts.stacked_bar,
                    interval=lambda figure, name: charts.interval_bar(figure, say, name))
