"""Results: the publishable view as JSON and as CSV."""

from __future__ import annotations

import csv
import io
import re
from typing import Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath, FromQuery

from appliance.domain import disclosure
from appliance.domain.disclosure import NOT_ENOUGH, ProposalView, ResultsView
from appliance.domain.results import NO_BREAKDOWN
from appliance.domain.rounds import Round, Viewer
from appliance.domain.scoring import PUBLISHED_DECIMALS, Estimate
from appliance.domain.similarity import fold
from appliance.services import rounds as service
from appliance.services.context import Appliance
from appliance.web.api.models import (
    PROBLEMS,
    CellOut,
    Figure,
    ParticipationOut,
    RESULTS_EXAMPLE,
    ProposalResultOut,
    ResultsOut,
    SegmentOut,
)
from appliance.web.auth import requires_admin
from appliance.web.head import HEAD_MARK

RATE_NAMES = ("agree", "disagree", "neutral")
SCORE_NAMES = ("top", "controversy", "rejection", "engagement")


def figure(estimate: Estimate, bounded: bool = False) -> Figure:
    """Rounded figure; a rate's interval is clipped to [0, 1]."""
    low, high = (max(0.0, estimate.low), min(1.0, estimate.high)) if bounded else (estimate.low, estimate.high)
    return Figure(value=round(estimate.value, PUBLISHED_DECIMALS), low=round(low, PUBLISHED_DECIMALS),
                  high=round(high, PUBLISHED_DECIMALS))


def published(figures: dict[str, disclosure.Figure] | None) -> dict[str, Figure] | None:
    if figures is None:
        return None
    return {name: Figure(value=f.value, low=f.low, high=f.high) for name, f in figures.items()}


def proposal_result_out(result: ProposalView) -> ProposalResultOut:
    scores = result.scores
    if scores is None:
        return ProposalResultOut(id=result.id, text=result.text, rank=None, voters=None, zone=None,
                                 rates=None, scores=None, note=NOT_ENOUGH)
    return ProposalResultOut(
        id=result.id, text=result.text, rank=result.rank, voters=result.voters, zone=scores.zone,
        rates={name: figure(estimate, bounded=True) for name, estimate in scores.rates.items()},
        scores={name: figure(getattr(scores, name)) for name in SCORE_NAMES},
        representative=published(result.representative),
        cross_segment_consensus=result.cross_segment_consensus,
        cells=[CellOut(segment=c.segment, pooled=c.pooled, rates=published(c.rates),
                       note=None if c.rates else NOT_ENOUGH) for c in result.cells],
    )


def results_out(round_: Round, view: ResultsView) -> ResultsOut:
    return ResultsOut(
        round_id=round_.id, status=round_.status, k=view.k, shown=view.shown, voters=view.voters,
        note=NOT_ENOUGH if not view.shown else NO_BREAKDOWN if view.dimension and not view.segments else None,
        dimensions=list(view.dimensions), dimension=view.dimension,
        main_dimension=view.main_dimension,
        segments=[SegmentOut(name=s.name, pooled=s.pooled, shown=s.shown, participation=s.participation,
                             participation_at_least=s.participation_at_least, over_represented=s.over_represented,
                             note=None if s.shown else NOT_ENOUGH) for s in view.segments],
        proposals=[proposal_result_out(r) for r in view.proposals], audience_known=view.audience_known,
        participation=view.participation, participation_at_least=view.participation_at_least,
    )


FORMULA_STARTS = "=+-@\t\r"
# A separator of the other kind: a spreadsheet set up for it cuts the cell there, and what follows is a new cell.
_CELL_STARTS_INSIDE = re.compile(r"([,;]\s*)(?=[=+\-@\t\r])")


def spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet shows as text, never runs as a formula (OWASP CSV injection).

    A quote goes before a formula character that starts the cell, or that follows a
    comma or a semicolon: the file may be opened with either as its separator.
    """
    text = _CELL_STARTS_INSIDE.sub(r"\1'", text)
    return "'" + text if text[:1] in FORMULA_STARTS else text


CSV_RATES = ("agree", "disagree", "neutral")
BOM = "\ufeff"  # Excel reads a UTF-8 CSV as UTF-8 only when it starts with one


def results_csv(view: ResultsView, separator: str = "comma") -> str:
    """The same view, one row per proposal and group: "all", then each segment of the chosen dimension.

    It starts with a byte order mark, so that Excel reads its accents. With
    `separator` "semicolon" the figures have decimal commas (0,8250): what a
    spreadsheet set up for French, and most of Europe, opens in columns.
    """
    out = io.StringIO()
    out.write(BOM)
    semicolon = separator == "semicolon"
    writer = csv.writer(out, delimiter=";" if semicolon else ",")

    def number(value: float, decimals: int) -> str:
        text = f"{value:.{decimals}f}"
        return text.replace(".", ",") if semicolon else text

    dimension = view.dimension or ""
    writer.writerow(["rank", "proposal", "dimension", "segment", "voters", "zone",
                     *(f"{name}{part}" for name in CSV_RATES for part in ("", "_low", "_high")),
                     *(f"{s}_score" for s in SCORE_NAMES), "top_score_low",
                     *(f"representative_{name}" for name in CSV_RATES), "cross_segment_consensus", "note"])
    for result in view.proposals:
        text = spreadsheet_safe(result.text)
        scores = result.scores
        if scores is None:
            writer.writerow(["", text, "", "all", "", "", *[""] * 18, NOT_ENOUGH])
            continue
        rates = [number(value, 4) for name in CSV_RATES
                 for value in (scores.rates[name].value, max(0.0, scores.rates[name].low),
                               min(1.0, scores.rates[name].high))]
        representative = [number(result.representative[name].value, 2) if result.representative else ""
                          for name in CSV_RATES]
        consensus = "" if result.cross_segment_consensus is None else number(result.cross_segment_consensus, 2)
        writer.writerow([result.rank, text, "", "all", result.voters, scores.zone, *rates,
                         *(number(getattr(scores, name).value, 4) for name in SCORE_NAMES),
                         number(scores.top.low, 4), *representative, consensus, ""])
        for cell in result.cells:
            segment = spreadsheet_safe(cell.segment) + (" (pooled)" if cell.pooled else "")
            if cell.rates is None:
                writer.writerow([result.rank, text, dimension, segment, "", "", *[""] * 18, NOT_ENOUGH])
                continue
            cell_rates = [number(value, 2) for name in CSV_RATES
                          for value in (cell.rates[name].value, cell.rates[name].low, cell.rates[name].high)]
            writer.writerow([result.rank, text, dimension, segment, "", "", *cell_rates, *[""] * 9, ""])
    return out.getvalue()


def download_name(title: str, dimension: str | None, round_id: str) -> str:
    """The CSV's file name, from the round's title and the breakdown, in plain ASCII for every browser:
    "results-canteen-and-coffee-by-site.csv"; the round's id when the title leaves no letter or digit."""
    def plain(text: str) -> str:
        return "-".join(re.findall(r"[a-z0-9]+", fold(text)))[:60].strip("-")

    name = plain(title) or round_id
    if dimension and plain(dimension):
        name += f"-by-{plain(dimension)}"
    return f"results-{name}.csv"


RESULTS_RESPONSES = PROBLEMS | {200: ResponseSpec(
    ResultsOut, description="the publishable view", generate_examples=False,
    examples=[Example(summary="by department", value=RESULTS_EXAMPLE)])}


class ResultsController(Controller):
    path = "/api/v1/rounds/{round_id:str}"
    tags = ["results"]

    @get("/results", sync_to_thread=True, responses=RESULTS_RESPONSES)
    def results(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str],
                dimension: FromQuery[str | None] = None) -> ResultsOut:
        """The publishable view: admins after close, the audience after publish.

        `dimension` breaks it down by one of the round's dimensions (one at a time);
        every figure follows the disclosure rules, hidden and empty cells read
        "not enough responses".
        """
        return results_out(*service.round_results(app, round_id, viewer, dimension))

    @get("/participation", guards=[requires_admin], sync_to_thread=True, responses=PROBLEMS)
    def participation(self, app: NamedDependency[Appliance], round_id: FromPath[str]) -> ParticipationOut:
        """Participation within the rules: while open, a band once a day, a day late; after close, the voters."""
        seen = service.participation(app, round_id)
        return ParticipationOut(round_id=round_id, status=seen.status, band=seen.band, as_of=seen.as_of,
                                voters=seen.voters, history=[{"day": d, "band": b} for d, b in seen.history])

    @get("/results.csv", sync_to_thread=True, media_type="text/csv", responses=PROBLEMS)
    def results_as_csv(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer],
                       actor: NamedDependency[str], request: Request, round_id: FromPath[str],
                       dimension: FromQuery[str | None] = None,
                       separator: FromQuery[Literal["comma", "semicolon"]] = "comma") -> Response[str]:
        """The same view as CSV: one row per proposal, then one per segment of `dimension`.

        UTF-8 with a byte order mark. `separator=semicolon` writes ";" between
        cells and decimal commas, for spreadsheets set up for French.
        """
        round_, view = service.round_results(app, round_id, viewer, dimension)
        if viewer.is_admin and not request.scope.get(HEAD_MARK):  # an admin's export, not a probe's HEAD
            service.record_export(app, actor, round_id)
        filename = download_name(round_.title, dimension, round_.id)
        return Response(results_csv(view, separator), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
