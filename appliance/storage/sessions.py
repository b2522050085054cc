"""Sign-in sessions in identity.db: a hashed token and a copy of who signed in.

Only signing in and out write here; a session is never touched by voting.
"""

from __future__ import annotations

import json

from sqlite_utils import Database

from appliance.directory import Person
from appliance.storage.connection import fetch_one, write


EXPIRY_GRAIN_SECONDS = 3600


def expiry(now: int, lifetime: int) -> int:
    """End of a session, rounded up to the hour: the table must not tell when someone signed in to the second."""
    return -(-(now + lifetime) // EXPIRY_GRAIN_SECONDS) * EXPIRY_GRAIN_SECONDS


def create_session(db: Database, token_hash: str, person: Person, expires_at: int, now: int) -> None:
    """Store a new session for this person, and forget expired ones in the same transaction."""
    with write(db):
        db.conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        db.conn.execute(
            "INSERT INTO sessions (token_hash, person_id, username, display_name, groups, attributes, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token_hash, person.id, person.username, person.display_name, json.dumps(sorted(person.groups)),
             json.dumps(person.attributes, sort_keys=True), expires_at),
        )


def find_session(db: Database, token_hash: str, now: int) -> Person | None:
    """The person of an unexpired session, or None."""
    row = fetch_one(
        db,
        "SELECT person_id, username, display_name, groups, attributes FROM sessions"
        " WHERE token_hash = ? AND expires_at > ?",
        (token_hash, now),
    )
    if row is None:
        return None
    pid, username, display_name, groups, attributes = row
    return Person(pid, username, display_name, "", frozenset(json.loads(groups)), json.loads(attributes))


def delete_session(db: Database, token_hash: str) -> None:
    """Sign out."""
    with write(db):
        db.conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))
