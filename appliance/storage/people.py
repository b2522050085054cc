"""The local directory's people, in identity.db."""

from __future__ import annotations

import json

from sqlite_utils import Database

from appliance.directory import Person
from appliance.storage.connection import fetch_all, fetch_one, write

COLUMNS = "id, username, display_name, email, groups, attributes"


def person_from_row(row: tuple) -> Person:
    """A Person from a row of COLUMNS."""
    pid, username, display_name, email, groups, attributes = row
    return Person(pid, username, display_name, email, frozenset(json.loads(groups)), json.loads(attributes))


def insert_person(db: Database, person: Person, password_hash: str) -> None:
    """Add a person; the username must be new."""
    with write(db):
        db.conn.execute(
            "INSERT INTO people (id, username, display_name, email, password_hash, groups, attributes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (person.id, person.username, person.display_name, person.email, password_hash,
             json.dumps(sorted(person.groups)), json.dumps(person.attributes, sort_keys=True)),
        )


def find_by_username(db: Database, username: str) -> tuple[Person, str] | None:
    """The person and their password hash, or None."""
    row = fetch_one(db, f"SELECT {COLUMNS}, password_hash FROM people WHERE username = ?", (username,))
    return None if row is None else (person_from_row(row[:6]), row[6])


def usernames(db: Database) -> list[str]:
    """Every local username."""
    return [row[0] for row in fetch_all(db, "SELECT username FROM people")]


def list_people(db: Database) -> list[Person]:
    """Everyone in the local directory, by username."""
    return [person_from_row(r) for r in fetch_all(db, f"SELECT {COLUMNS} FROM people ORDER BY username")]


def set_password_hash(db: Database, username: str, password_hash: str, sign_out: bool = False) -> bool:
    """Replace a password hash, and with `sign_out` end the person's sessions; False when no such person."""
    with write(db):  # with sign_out, the sessions sealed under the old generation no longer open
        cursor = db.conn.execute("UPDATE people SET password_hash = ?, session_generation = session_generation + ?"
                                 " WHERE username = ?", (password_hash, int(sign_out), username))
    return cursor.rowcount == 1


def delete_person(db: Database, username: str) -> bool:
    """Remove a person (their sessions no longer open); False when no such person."""
    with write(db):
        cursor = db.conn.execute("DELETE FROM people WHERE username = ?", (username,))
        if cursor.rowcount != 1:
            return False
    return True
