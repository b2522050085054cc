"""Liveness and readiness."""

from __future__ import annotations

import sqlite3

from litestar import Response, get
from litestar.di import NamedDependency

from appliance.services.context import Appliance
from appliance.storage.connection import fetch_one


@get("/healthz", opt={"exclude_from_auth": True}, tags=["operations"])
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@get("/readyz", opt={"exclude_from_auth": True}, sync_to_thread=True, tags=["operations"])
def readyz(app: NamedDependency[Appliance]) -> Response[dict[str, str]]:
    """Both databases answer."""
    checks = {}
    for name in ("identity", "ballots"):
        try:
            fetch_one(getattr(app.dbs, name), "SELECT 1")
            checks[name] = "ok"
        except sqlite3.Error as error:
            checks[name] = f"failing: {error}"
    ready = all(v == "ok" for v in checks.values())
    return Response(checks | {"status": "ready" if ready else "not ready"}, status_code=200 if ready else 503)
