"""The built-in local directory: people in identity.db, argon2id password hashes."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlite_utils import Database

from appliance.directory import Person, normal_username
from appliance.storage import people

HASHER = PasswordHasher()
# Verified against when the username is unknown, so that an unknown name costs
# the same time as a wrong password and does not reveal who has an account.
_DUMMY_HASH = HASHER.hash(secrets.token_hex(16))


class LocalDirectory:
    """People managed with `appliance user ...`, kept in identity.db."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def authenticate(self, username: str, password: str) -> Person | None:
        """The person if the password matches; rehashes when argon2 parameters changed."""
        found = self._lookup(username)
        if found is None:
            _verify(_DUMMY_HASH, password)
            return None
        person, password_hash = found
        matches = _verify(password_hash, password)  # even for an empty password: same cost for everyone
        if not password or not matches:
            return None
        if HASHER.check_needs_rehash(password_hash):
            people.set_password_hash(self.db, person.username, HASHER.hash(password))
        return person

    def find(self, username: str) -> Person | None:
        found = self._lookup(username)
        return None if found is None else found[0]

    def _lookup(self, username: str) -> tuple[Person, str] | None:
        """The person and password hash of a username: as written, else compared as directories compare them
        (`ALICE` is `alice`) when that names one person only (`user add` keeps such names apart; older data
        may not). Every username is read each time, found or not, so that the cost does not tell which exist."""
        names = people.usernames(self.db)
        wanted = normal_username(username)
        alike = [name for name in names if normal_username(name) == wanted]
        match = username if username in alike else alike[0] if len(alike) == 1 else None
        return None if match is None else people.find_by_username(self.db, match)

    def spend_a_check(self, password: str) -> None:
        """As long as a password check, for a username that is not here: its absence does not show in the time."""
        _verify(_DUMMY_HASH, password)

    def audience(self, groups: Iterable[str]) -> list[Person]:
        """Everyone in any of these groups (everyone when none are given)."""
        wanted = {g.casefold() for g in groups}  # group names compare without case, as in LDAP
        return [p for p in people.list_people(self.db) if not wanted or {g.casefold() for g in p.groups} & wanted]

    def group_names(self) -> list[str]:
        """Every group that someone belongs to."""
        return sorted({g for p in people.list_people(self.db) for g in p.groups})

    def dimensions(self) -> list[str]:
        """Every attribute name someone has."""
        return sorted({key for p in people.list_people(self.db) for key in p.attributes})

    def names_for(self, surnames: Collection[str]) -> list[str]:
        """Everyone's display name: a local directory is small, and names are matched by the caller."""
        return [p.display_name for p in people.list_people(self.db)]

    def check(self) -> None:
        """identity.db is checked by /readyz on its own."""

    def close(self) -> None:
        """Nothing to release: identity.db belongs to the appliance."""

    def has_username(self, username: str) -> bool:
        return self._lookup(username) is not None

    def add_person(self, person: Person, password: str) -> None:
        """Create a person with this password."""
        people.insert_person(self.db, person, HASHER.hash(password))

    def set_password(self, username: str, password: str) -> bool:
        """Change a password and end the person's sessions (a stolen cookie dies with the old password)."""
        return people.set_password_hash(self.db, username, HASHER.hash(password), sign_out=True)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_person_id() -> str:
    """A random, stable person id for the local directory."""
    return "local:" + secrets.token_hex(12)
