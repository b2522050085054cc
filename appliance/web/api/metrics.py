"""GET /metrics in the Prometheus text format, and the middleware that counts requests.

Every label is a route template ("/api/v1/rounds/{round_id}/ballots"), a
method, a status, a job name or a round status: never a person, a round id, a
proposal id or anything else from a request's content (anonymity rule 6).
Counters are those of the process that answers; run one worker per container,
or scrape each.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator

from litestar import MediaType, Request, Response, get
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from appliance import __version__
from appliance.services.context import Appliance
from appliance.services.scheduler import RUNNING_HERE, scheduler_status
from appliance.storage import outbox
from appliance.storage import rounds as stored_rounds

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A vote or a proposal accepted: through the API (200, 201) or a page's form (303 to the round page).
VOTES = {("/api/v1/rounds/{round_id}/ballots", 200), ("/rounds/{round_id}/ballots", 303)}
PROPOSALS = {("/api/v1/rounds/{round_id}/proposals", 201), ("/rounds/{round_id}/proposals", 303)}
ROUND_STATUSES = ("draft", "open", "closed", "published")
_TYPED_PARAMETER = re.compile(r"\{(\w+):\w+\}")


class RequestMetrics:
    """Request counts and latency histograms by (method, route template), and what they say of votes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.counts: dict[tuple[str, str], int] = defaultdict(int)
        self.votes_cast = 0
        self.proposals_submitted = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        with self._lock:
            self.requests[(method, route, status)] += 1
            key = (method, route)
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[key][i] += 1
            self.sums[key] += seconds
            self.counts[key] += 1
            if method == "POST" and (route, status) in VOTES:
                self.votes_cast += 1
            elif method == "POST" and (route, status) in PROPOSALS:
                self.proposals_submitted += 1

    def lines(self) -> Iterator[str]:
        """The request metrics in the Prometheus text format."""
        with self._lock:
            yield from _family("appliance_http_requests_total", "counter", "HTTP requests answered, by route")
            for (method, route, status), n in sorted(self.requests.items()):
                yield f'appliance_http_requests_total{{method="{method}",route="{_quote(route)}",status="{status}"}} {n}'
            yield from _family("appliance_http_request_duration_seconds", "histogram", "Time to answer, by route")
            for (method, route), counts in sorted(self.buckets.items()):
                labels = f'method="{method}",route="{_quote(route)}"'
                for bound, n in zip(BUCKETS, counts):
                    yield f'appliance_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {n}'
                yield f'appliance_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {self.counts[(method, route)]}'
                yield f"appliance_http_request_duration_seconds_sum{{{labels}}} {self.sums[(method, route)]:.6f}"
                yield f"appliance_http_request_duration_seconds_count{{{labels}}} {self.counts[(method, route)]}"
            yield from _family("appliance_votes_cast_total", "counter", "Votes cast or changed")
            yield f"appliance_votes_cast_total {self.votes_cast}"
            yield from _family("appliance_proposals_submitted_total", "counter", "Proposals submitted")
            yield f"appliance_proposals_submitted_total {self.proposals_submitted}"


def _family(name: str, kind: str, help_text: str) -> Iterator[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} {kind}"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def route_label(scope: Scope) -> str:
    """The route template a request matched, without parameter types: never the ids it carried."""
    return _TYPED_PARAMETER.sub(r"{\1}", scope.get("path_template") or "unmatched")  # type: ignore[arg-type]


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Time and count every HTTP request by method, route template and status."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_status)
        except HTTPException as error:
            status = error.status_code
            raise
        finally:
            metrics: RequestMetrics | None = getattr(scope["litestar_app"].state, "metrics", None)
            if metrics is not None:
                metrics.observe(scope["method"], route_label(scope), status, time.perf_counter() - started)

    return middleware


def state_lines(app: Appliance, scheduler: object) -> Iterator[str]:
    """Gauges read at each scrape: outgoing mail, rounds by status, scheduled jobs of this process."""
    yield from _family("appliance_outbox_messages", "gauge", "Outgoing mail waiting or given up on")
    yield f'appliance_outbox_messages{{state="waiting"}} {outbox.depth(app.dbs.identity)}'
    yield f'appliance_outbox_messages{{state="failed"}} {outbox.count_failed(app.dbs.identity)}'
    statuses = [r.status for r in stored_rounds.list_rounds(app.dbs.ballots)]
    yield from _family("appliance_rounds", "gauge", "Rounds by status")
    for status in ROUND_STATUSES:
        yield f'appliance_rounds{{status="{status}"}} {statuses.count(status)}'
    yield from _family("appliance_scheduler_running", "gauge", "1 when this process runs the scheduled jobs")
    yield f"appliance_scheduler_running {int(scheduler_status(app) == RUNNING_HERE)}"
    stats = getattr(scheduler, "stats", {})
    yield from _family("appliance_job_runs_total", "counter", "Scheduled job runs in this process")
    for name, job in sorted(stats.items()):
        yield f'appliance_job_runs_total{{job="{_quote(name)}"}} {job.runs}'
    yield from _family("appliance_job_failures_total", "counter", "Scheduled job runs that failed")
    for name, job in sorted(stats.items()):
        yield f'appliance_job_failures_total{{job="{_quote(name)}"}} {job.failures}'


def _authorised(request: Request, app: Appliance) -> bool:
    token = app.settings.server.metrics_token
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode())


@get("/metrics", opt={"exclude_from_auth": True}, sync_to_thread=True, include_in_schema=True, tags=["operations"],
     media_type=MediaType.TEXT)
def metrics(request: Request) -> Response[str]:
    """Counts for Prometheus: requests and latency by route, votes cast, outbox, rounds, scheduled jobs."""
    state = request.app.state
    app: Appliance = state.appliance
    if app.settings.server.metrics_token is None:
        # Live counts of votes and proposals would say when someone voted or proposed: only for monitoring.
        return Response("metrics are off: set server.metrics_token to let the monitoring system read them\n",
                        status_code=404, media_type=MediaType.TEXT)
    if not _authorised(request, app):
        return Response("a bearer token is needed (server.metrics_token)\n", status_code=401,
                        headers={"WWW-Authenticate": "Bearer"}, media_type=MediaType.TEXT)
    lines = [f'# TYPE appliance_info gauge\nappliance_info{{version="{__version__}"}} 1']
    lines += list(state.metrics.lines())
    lines += list(state_lines(app, state.scheduler))
    return Response("\n".join(lines) + "\n", media_type=CONTENT_TYPE)
