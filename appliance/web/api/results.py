"""Results: the publishable view as JSON and as CSV."""

from __future__ import annotations

import csv
import io

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from appliance.domain.results import NOT_ENOUGH, ProposalResult, ResultsView
from appliance.domain.rounds import Round, Viewer
from appliance.domain.scoring import Estimate
from appliance.services import rounds as service
from appliance.services.context import Appliance
from appliance.web.api.models import PROBLEMS, Figure, ProposalResultOut, ResultsOut

RATE_NAMES = ("agree", "disagree", "neutral")
SCORE_NAMES = ("top", "controversy", "rejection", "engagement")


def figure(estimate: Estimate, bounded: bool = False) -> Figure:
    """Rounded figure; a rate's interval is clipped to [0, 1]."""
    low, high = (max(0.0, estimate.low), min(1.0, estimate.high)) if bounded else (estimate.low, estimate.high)
    return Figure(value=round(estimate.value, 4), low=round(low, 4), high=round(high, 4))


def proposal_result_out(result: ProposalResult) -> ProposalResultOut:
    scores = result.scores
    if scores is None:
        return ProposalResultOut(id=result.id, text=result.text, rank=None, voters=None, zone=None,
                                 rates=None, scores=None, note=NOT_ENOUGH)
    return ProposalResultOut(
        id=result.id, text=result.text, rank=result.rank, voters=result.voters, zone=scores.zone,
        rates={name: figure(estimate, bounded=True) for name, estimate in scores.rates.items()},
        scores={name: figure(getattr(scores, name)) for name in SCORE_NAMES},
    )


def results_out(round_: Round, view: ResultsView) -> ResultsOut:
    return ResultsOut(round_id=round_.id, status=round_.status, k=view.k, shown=view.shown, voters=view.voters,
                      note=None if view.shown else NOT_ENOUGH,
                      proposals=[proposal_result_out(r) for r in view.proposals])


def spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet shows as text, never runs as a formula (OWASP CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def results_csv(view: ResultsView) -> str:
    """One row a proposal, the same figures as the JSON view."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "proposal", "voters", "zone", *RATE_NAMES, *(f"{s}_score" for s in SCORE_NAMES),
                     "top_score_low", "note"])
    for result in view.proposals:
        scores = result.scores
        if scores is None:
            writer.writerow(["", spreadsheet_safe(result.text), "", "", *[""] * 8, NOT_ENOUGH])
            continue
        writer.writerow([
            result.rank, spreadsheet_safe(result.text), result.voters, scores.zone,
            *(f"{scores.rates[name].value:.4f}" for name in RATE_NAMES),
            *(f"{getattr(scores, name).value:.4f}" for name in SCORE_NAMES),
            f"{scores.top.low:.4f}", "",
        ])
    return out.getvalue()


class ResultsController(Controller):
    path = "/api/v1/rounds/{round_id:str}"
    tags = ["results"]

    @get("/results", sync_to_thread=True, responses=PROBLEMS)
    def results(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str]) -> ResultsOut:
        """The publishable view: admins after close, the audience after publish."""
        return results_out(*service.round_results(app, round_id, viewer))

    @get("/results.csv", sync_to_thread=True, media_type="text/csv", responses=PROBLEMS)
    def results_as_csv(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str], round_id: FromPath[str]) -> Response[str]:
        """The same view as CSV."""
        round_, view = service.round_results(app, round_id, viewer)
        service.record_export(app, actor, round_id)
        filename = f"results-{round_.id}.csv"
        return Response(results_csv(view), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
