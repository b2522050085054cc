"""Sign-in sessions in identity.db, sealed: a copy of the database does not say whose they are.

A session row holds the hash of its token, its expiry (to the hour) and who
signed in, encrypted (AES-GCM) under a key derived from the token, which only
the person's browser has. Someone with a copy of identity.db sees how many
sessions end in each hour, not who signed in (ARCHITECTURE.md: a database
thief must not learn who took part). A local account's sessions end when its
session generation moves on (a new password) or the account goes.

Only signing in and out write here; a session is never touched by voting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlite_utils import Database

from appliance.directory import Person
from appliance.storage.connection import fetch_one, write

EXPIRY_GRAIN_SECONDS = 3600
LOCAL_PREFIX = "local:"  # ids of the local directory's people, whose row holds their session generation
_NONCE_BYTES = 12
SEALED_BLOCK = 4096  # sealed people are padded to whole blocks of this many bytes (one block for all but a few)


def expiry(now: int, lifetime: int) -> int:
    """End of a session, rounded up to the hour: the table must not tell when someone signed in to the second."""
    return -(-(now + lifetime) // EXPIRY_GRAIN_SECONDS) * EXPIRY_GRAIN_SECONDS


def token_hash(token: str) -> str:
    """What a session is stored under: a copy of identity.db cannot sign anyone in."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(db: Database, token: str, person: Person, expires_at: int, now: int) -> None:
    """Store a new session for this person, and forget expired ones in the same transaction."""
    with write(db):
        db.conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        payload = {"id": person.id, "username": person.username, "display_name": person.display_name,
                   "groups": sorted(person.groups), "attributes": person.attributes,
                   "generation": _generation(db, person.id)}
        db.conn.execute("INSERT INTO sessions (token_hash, sealed, expires_at) VALUES (?, ?, ?)",
                        (token_hash(token), _seal(token, json.dumps(payload, sort_keys=True).encode()), expires_at))


def find_session(db: Database, token: str, now: int) -> Person | None:
    """The person of an unexpired session, or None (also when its local account moved on since)."""
    key = token_hash(token)
    row = fetch_one(db, "SELECT sealed FROM sessions WHERE token_hash = ? AND expires_at > ?", (key, now))
    if row is None:
        return None
    try:
        payload = json.loads(_open(token, row[0]))
    except (InvalidTag, ValueError):
        return None
    if payload["generation"] != _generation(db, payload["id"]):
        return None  # a new password, or the account gone: the row itself expires (no write on this path)
    return Person(payload["id"], payload["username"], payload["display_name"], "", frozenset(payload["groups"]),
                  payload["attributes"])


def delete_session(db: Database, key: str) -> None:
    """Sign out (the session by its token hash)."""
    with write(db):
        db.conn.execute("DELETE FROM sessions WHERE token_hash = ?", (key,))


def _generation(db: Database, person_id: str) -> int | None:
    """A local account's session generation (None once the account is gone); 0 for a directory account."""
    if not person_id.startswith(LOCAL_PREFIX):
        return 0
    row = fetch_one(db, "SELECT session_generation FROM people WHERE id = ?", (person_id,))
    return None if row is None else row[0]


def _key(token: str) -> bytes:
    """The sealing key: from the token itself, which identity.db never holds (only its SHA-256)."""
    return hmac.new(token.encode(), b"session seal", hashlib.sha256).digest()


def _seal(token: str, data: bytes) -> bytes:
    """Encrypted, and padded with spaces to whole blocks of SEALED_BLOCK bytes: the length of a sealed row must
    not tell whose it is (the length of a name, of a list of groups)."""
    padded = data + b" " * (-len(data) % SEALED_BLOCK)
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(_key(token)).encrypt(nonce, padded, token_hash(token).encode())


def _open(token: str, sealed: bytes) -> bytes:
    return AESGCM(_key(token)).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], token_hash(token).encode())
