"""GET /api/v1/audit: the audit log of admin, moderator and local-directory actions, for admins."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from pydantic import BaseModel

from appliance.services.context import Appliance
from appliance.storage import audit
from appliance.web.api.models import PROBLEMS
from appliance.web.auth import requires_admin


class AuditEntryOut(BaseModel):
    at: str
    actor: str
    action: str
    target: str
    detail: str


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["operations"]

    @get("/", guards=[requires_admin], sync_to_thread=True, responses=PROBLEMS)
    def entries(self, app: NamedDependency[Appliance],
                limit: int = Parameter(default=100, ge=1, le=1000, description="how many entries, newest first")
                ) -> list[AuditEntryOut]:
        """Who created, opened, closed, exported, moderated, or changed the local directory: newest first.

        It records admin acts only: never a vote, nor who wrote a proposal.
        """
        return [AuditEntryOut(at=at, actor=actor, action=action, target=target, detail=detail)
                for at, actor, action, target, detail in audit.recent(app.dbs.identity, limit)]
