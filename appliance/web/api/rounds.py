"""Rounds: create, list, read, and move through their lifecycle (admins)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from appliance.domain.rounds import Round, Viewer
from appliance.services import rounds as service
from appliance.services.context import Appliance
from appliance.web.api.models import PROBLEMS, RoundChange, RoundIn, RoundOut
from appliance.web.auth import requires_admin


def round_out(round_: Round) -> RoundOut:
    fields = vars(round_) | {"audience_groups": list(round_.audience_groups), "dimensions": list(round_.dimensions)}
    return RoundOut.model_validate(fields, from_attributes=False)


class RoundController(Controller):
    path = "/api/v1/rounds"
    tags = ["rounds"]

    @post("/", guards=[requires_admin], sync_to_thread=True, responses=PROBLEMS)
    def create(self, app: NamedDependency[Appliance], actor: NamedDependency[str], data: JSONBody[RoundIn]) -> RoundOut:
        """Create a draft round."""
        draft = service.RoundDraft(**data.model_dump() | {
            "audience_groups": tuple(data.audience_groups), "dimensions": tuple(data.dimensions)})
        return round_out(service.create_round(app, actor, draft))

    @get("/", sync_to_thread=True, responses=PROBLEMS)
    def list_rounds(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer]) -> list[RoundOut]:
        """The rounds visible to me."""
        return [round_out(r) for r in service.visible_rounds(app, viewer)]

    @get("/{round_id:str}", sync_to_thread=True, responses=PROBLEMS)
    def read(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str]) -> RoundOut:
        """One round visible to me."""
        return round_out(service.find_round(app, round_id, viewer))

    @patch("/{round_id:str}", guards=[requires_admin], sync_to_thread=True, responses=PROBLEMS)
    def edit(self, app: NamedDependency[Appliance], actor: NamedDependency[str], round_id: FromPath[str],
             data: JSONBody[RoundChange]) -> RoundOut:
        """Change a draft's settings (the fields given), or extend an open round's closes_at."""
        return round_out(service.edit_round(app, actor, round_id, data.model_dump(exclude_unset=True)))

    @delete("/{round_id:str}", guards=[requires_admin], sync_to_thread=True, responses=PROBLEMS)
    def delete_draft(self, app: NamedDependency[Appliance], actor: NamedDependency[str],
                     round_id: FromPath[str]) -> None:
        """Delete a draft round; 409 for any other."""
        service.delete_draft(app, actor, round_id)

    @post("/{round_id:str}/open", guards=[requires_admin], sync_to_thread=True, status_code=200, responses=PROBLEMS)
    def open(self, app: NamedDependency[Appliance], actor: NamedDependency[str], round_id: FromPath[str]) -> RoundOut:
        """Open a draft round: freezes its audience, segments and anonymity settings."""
        return round_out(service.open_round(app, actor, round_id))

    @post("/{round_id:str}/close", guards=[requires_admin], sync_to_thread=True, status_code=200, responses=PROBLEMS)
    def close(self, app: NamedDependency[Appliance], actor: NamedDependency[str], round_id: FromPath[str]) -> RoundOut:
        """Close an open round: ballots become counts and every link to a voter is destroyed."""
        return round_out(service.close_round(app, actor, round_id))

    @post("/{round_id:str}/publish", guards=[requires_admin], sync_to_thread=True, status_code=200, responses=PROBLEMS)
    def publish(self, app: NamedDependency[Appliance], actor: NamedDependency[str], round_id: FromPath[str]) -> RoundOut:
        """Publish a closed round's results to its audience."""
        return round_out(service.publish_round(app, actor, round_id))
