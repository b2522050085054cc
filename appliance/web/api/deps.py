"""Dependencies injected into controllers."""

from __future__ import annotations

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from appliance.domain.rounds import Viewer
from appliance.services.context import Appliance


def provide_appliance(state: State) -> Appliance:
    return state.appliance


def provide_viewer(request: Request) -> Viewer:
    return request.auth


DEPENDENCIES = {
    "app": Provide(provide_appliance, sync_to_thread=False),
    "viewer": Provide(provide_viewer, sync_to_thread=False),
}


def provide_actor(request: Request) -> str:
    """The signed-in username, as the audit log records it."""
    return request.user.username


DEPENDENCIES["actor"] = Provide(provide_actor, sync_to_thread=False)
