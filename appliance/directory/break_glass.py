"""An organisation's directory with the local accounts beside it, for a break-glass admin.

A username that exists in the local directory signs in there, and only there:
when LDAP is down or misconfigured, a local admin can still sign in and act.
Audiences, groups and dimensions come from the organisation's directory alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from appliance.directory import Directory, Person
from appliance.directory.local import LocalDirectory


class WithLocalAccounts:
    """`primary` for everyone, except usernames that exist in `local`."""

    def __init__(self, primary: Directory, local: LocalDirectory) -> None:
        self.primary = primary
        self.local = local

    def authenticate(self, username: str, password: str) -> Person | None:
        if self.local.has_username(username):
            return self.local.authenticate(username, password)
        self.local.spend_a_check(password)  # a local account must not answer slower than a directory one
        return self.primary.authenticate(username, password)

    def find(self, username: str) -> Person | None:
        return self.local.find(username) if self.local.has_username(username) else self.primary.find(username)

    def audience(self, groups: Iterable[str]) -> list[Person]:
        return self.primary.audience(groups)

    def group_names(self) -> list[str]:
        return self.primary.group_names()

    def dimensions(self) -> list[str]:
        return self.primary.dimensions()

    def names_for(self, surnames: Collection[str]) -> list[str]:
        return self.primary.names_for(surnames) + self.local.names_for(surnames)

    def check(self) -> None:
        self.primary.check()

    def close(self) -> None:
        self.primary.close()
