"""Where people come from: the Directory protocol and the person record."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Protocol


def normal_username(username: str) -> str:
    """The username as directories compare it: NFKC, spaces trimmed and collapsed, case folded.

    Sign-in finds local accounts and throttling counts under this form, so " Alice", "alice " and "ａｌｉｃｅ"
    are one name.
    """
    return " ".join(unicodedata.normalize("NFKC", username).split()).casefold()


@dataclass(frozen=True)
class Person:
    """A directory entry as the appliance sees it."""

    id: str
    username: str
    display_name: str
    email: str = ""
    groups: frozenset[str] = frozenset()
    attributes: dict[str, str] = field(default_factory=dict)


MAX_SURNAMES = 80  # candidate surnames a directory is asked for at once (names_for)


class DirectoryUnavailable(Exception):
    """The directory cannot be reached; sign-in answers 503."""


class DirectoryMisconfigured(DirectoryUnavailable):
    """The server answers, but the configuration does not fit it (a wrong base, a refused service account)."""


class Directory(Protocol):
    """What the appliance asks of a directory (local or LDAP)."""

    def authenticate(self, username: str, password: str) -> Person | None:
        """The person if the password is right, else None."""

    def find(self, username: str) -> Person | None:
        """The person as the directory has them now (groups included), without a password; None when gone or
        disabled. Raises DirectoryUnavailable when it cannot answer."""

    def audience(self, groups: Iterable[str]) -> list[Person]:
        """Everyone in any of these groups; everyone when groups is empty."""

    def group_names(self) -> list[str]:
        """Names of the groups an admin can pick an audience from."""

    def dimensions(self) -> list[str]:
        """Segment attributes a round can break its results down by."""

    def names_for(self, surnames: Collection[str]) -> list[str]:
        """Display names of the people whose surname is one of these (or more: callers match full names)."""

    def check(self) -> None:
        """Raise DirectoryUnavailable when the directory cannot answer now."""

    def close(self) -> None:
        """Release connections."""
