"""Liveness and readiness."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from litestar import Response, get
from litestar.di import NamedDependency

from appliance.directory import DirectoryMisconfigured, DirectoryUnavailable
from appliance.services.context import Appliance, log
from appliance.services.scheduler import scheduler_status
from appliance.storage import outbox
from appliance.storage.connection import fetch_one


@get("/healthz", opt={"exclude_from_auth": True}, tags=["operations"])
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


DIRECTORY_WAIT_SECONDS = 2.0  # /readyz waits this long for the directory's check, under a probe's usual timeout
LOW_DISK_MIB = 64  # less free space than this on the data directory's disk: "degraded"


def disk_check(data_dir: Path) -> str:
    """Free space on the data directory's disk: votes, proposals and sign-ins are writes that fail once it is full."""
    try:
        free = shutil.disk_usage(data_dir).free // (1 << 20)
    except OSError as error:
        return f"unknown: {error.strerror}"
    if free < LOW_DISK_MIB:
        return f"almost full: {free} MiB free; votes, proposals and sign-ins fail once it is full"
    return f"{free} MiB free"


@get("/readyz", opt={"exclude_from_auth": True}, sync_to_thread=True, tags=["operations"])
def readyz(app: NamedDependency[Appliance]) -> Response[dict[str, str]]:
    """Both databases answer (else 503), and whether the directory does; which worker runs the scheduled
    jobs ("running here", "running elsewhere" or "stopped"), the outgoing mail waiting and failed, and the
    free space on the data directory's disk ("degraded" below 64 MiB).

    A directory that cannot be reached makes the appliance "degraded", not
    unready: people already signed in keep working, and every instance behind a
    load balancer sees the same directory, so taking this one out would not help.
    A directory that does not answer within DIRECTORY_WAIT_SECONDS is "not
    answering" (degraded) at once; its check goes on in the background.
    """
    checks = {}
    for name in ("identity", "ballots"):
        try:
            fetch_one(getattr(app.dbs, name), "SELECT 1")
            checks[name] = "ok"
        except sqlite3.Error as error:
            checks[name] = f"failing: {error}"
    ready = all(v == "ok" for v in checks.values())
    try:
        app.directory_probe.start(app.directory.check).result(timeout=DIRECTORY_WAIT_SECONDS)
        checks["directory"] = "ok"
    except TimeoutError:
        log.warning("readiness: the directory has not answered within %g s; still waiting for it",
                    DIRECTORY_WAIT_SECONDS)
        checks["directory"] = (f"not answering: no answer within {DIRECTORY_WAIT_SECONDS:g} s;"
                               " new sign-ins wait for it, then fail; open sessions keep working")
    except DirectoryMisconfigured as error:  # it answers, but refuses the configuration: no network problem
        log.warning("readiness: the directory refuses the configuration: %s", error)
        checks["directory"] = ("misconfigured: it refuses the service account or a search base (the log says which);"
                               " new sign-ins fail, open sessions keep working")  # /readyz is public: no DN here
    except DirectoryUnavailable as error:
        log.warning("readiness: directory unreachable: %s", error)
        checks["directory"] = "unreachable: new sign-ins fail, open sessions keep working"
    checks["disk"] = disk_check(app.settings.storage.data_dir)
    checks["scheduler"] = scheduler_status(app)  # informational: one worker of the deployment runs the jobs
    failed = outbox.count_failed(app.dbs.identity)
    checks["outbox"] = f"{outbox.depth(app.dbs.identity)} waiting, {failed} failed"
    healthy = checks["directory"] == "ok" and not checks["disk"].startswith("almost full")
    status = "not ready" if not ready else "ready" if healthy else "degraded"
    return Response(checks | {"status": status}, status_code=200 if ready else 503)
