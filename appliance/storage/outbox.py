"""The outbox (identity.db): messages waiting for the relay, who is sending them, and what became of them.

Times are Unix seconds. A message is claimed by one sender at a time: the claim
is taken in a write transaction, so two processes never hold the same message,
and it lapses at claimed_until, so a sender that died does not hold it forever.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage

from sqlite_utils import Database

from appliance.mail.message import POLICY
from appliance.storage.connection import fetch_all, fetch_one, write

_DUE = ("status = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)")


@dataclass(frozen=True)
class Outgoing:
    """A message to queue, under the key that makes queueing it twice harmless."""

    key: str
    message: EmailMessage


@dataclass(frozen=True)
class Claimed:
    """A message a sender holds: what it needs to send it and to count the attempt."""

    id: int
    recipient: str
    attempts: int
    content: bytes

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.content, policy=POLICY)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(frozen=True)
class Outcome:
    """What an attempt that did not deliver leaves: status pending (with its next attempt) or failed."""

    id: int
    status: str
    attempts: int
    next_attempt_at: int
    error: str


@dataclass(frozen=True)
class FailedMessage:
    """A message given up on, for the admin dashboard: no content, only what helps IT fix the cause."""

    id: int
    recipient: str
    subject: str
    last_error: str
    attempts: int
    created_at: int


def _recipient(message: EmailMessage) -> str:
    return ", ".join(address.addr_spec for address in message["To"].addresses)


ENQUEUE_CHUNK = 200  # messages per transaction: sign-ins and sessions never wait long behind a big mailing


def enqueue(db: Database, messages: Iterable[Outgoing], now: int) -> int:
    """Queue messages, due at once; a key already queued (or sent) is skipped. Returns how many were new.

    Messages are taken from the iterable and written a chunk at a time, each chunk its own short
    transaction: a whole audience is never held in memory, nor the identity database locked for long.
    Every message has its idempotency key, so a mailing interrupted half-way is completed, not doubled,
    when it is queued again.
    """
    new = 0
    pending = iter(messages)
    while rows := [(m.key, _recipient(m.message), str(m.message["Subject"] or ""), bytes(m.message), now, now)
                   for m in itertools.islice(pending, ENQUEUE_CHUNK)]:  # each message read as it comes
        with write(db):
            cursor = db.conn.executemany(
                "INSERT OR IGNORE INTO outbox (key, recipient, subject, message, next_attempt_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", rows)
        new += max(cursor.rowcount, 0)
    return new


def claim(db: Database, holder: str, now: int, until: int, limit: int) -> list[Claimed]:
    """Take up to `limit` due messages, oldest due first, for `holder` until `until`."""
    with write(db):
        rows = fetch_all(db, f"SELECT id, recipient, attempts, message FROM outbox WHERE {_DUE}"
                             " ORDER BY next_attempt_at, id LIMIT ?", (now, now, limit))
        db.conn.executemany("UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                            [(holder, until, row[0]) for row in rows])
    return [Claimed(*row) for row in rows]


def mark_sent(db: Database, message_id: int, holder: str, now: int) -> bool:
    """The relay accepted it: sent, and its content is dropped. False if `holder` no longer held it."""
    with write(db):
        cursor = db.conn.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, message = X'', attempts = attempts + 1,"
            " last_error = '', claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?",
            (now, message_id, holder))
    return cursor.rowcount == 1


def held(db: Database, message_id: int, holder: str) -> bool:
    """Whether `holder` still holds the message: not withdrawn, not taken over after its claim lapsed."""
    return fetch_one(db, "SELECT 1 FROM outbox WHERE id = ? AND claimed_by = ?", (message_id, holder)) is not None


def exists(db: Database, message_id: int) -> bool:
    """Whether the message is still in the outbox (withdraw deletes those of a round that closed)."""
    return fetch_one(db, "SELECT 1 FROM outbox WHERE id = ?", (message_id,)) is not None


def settle(db: Database, holder: str, outcomes: Iterable[Outcome]) -> None:
    """Record attempts that did not deliver, and let the messages go."""
    with write(db):
        db.conn.executemany(
            "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?,"
            " claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?",
            [(o.status, o.attempts, o.next_attempt_at, o.error, o.id, holder) for o in outcomes])


def release(db: Database, holder: str, message_ids: Iterable[int]) -> None:
    """Let messages go untried (the sender is stopping): due again at once, no attempt counted."""
    with write(db):
        db.conn.executemany("UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?",
                            [(message_id, holder) for message_id in message_ids])


def depth(db: Database) -> int:
    """How many messages wait to be sent (due now or later)."""
    return fetch_one(db, "SELECT count(*) FROM outbox WHERE status = 'pending'")[0]


def count_failed(db: Database) -> int:
    """How many messages were given up on."""
    return fetch_one(db, "SELECT count(*) FROM outbox WHERE status = 'failed'")[0]


def failures(db: Database, limit: int = 50) -> list[FailedMessage]:
    """Messages given up on, latest first."""
    rows = fetch_all(db, "SELECT id, recipient, subject, last_error, attempts, created_at FROM outbox"
                         " WHERE status = 'failed' ORDER BY id DESC LIMIT ?", (limit,))
    return [FailedMessage(*row) for row in rows]


def retry_failed(db: Database, now: int) -> int:
    """Queue the messages given up on again, due now, with their attempts counted afresh; how many."""
    with write(db):
        return db.conn.execute("UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?,"
                               " last_error = '' WHERE status = 'failed'", (now,)).rowcount


def withdraw(db: Database, prefixes: Iterable[str]) -> int:
    """Delete the messages not sent yet (waiting or given up on) whose key starts with one of `prefixes`; how
    many. A sender checks that it still holds each message before it sends it: only the one on the wire
    right now may still go."""
    with write(db):
        return sum(db.conn.execute("DELETE FROM outbox WHERE status IN ('pending', 'failed')"
                                   " AND substr(key, 1, length(?)) = ?", (prefix, prefix)).rowcount
                   for prefix in prefixes)


def drop_failed(db: Database) -> int:
    """Delete the messages given up on (an address that no longer exists); how many. A one-off round message
    is not queued again for it: round_notices remembers it was queued."""
    with write(db):
        return db.conn.execute("DELETE FROM outbox WHERE status = 'failed'").rowcount


def forget_sent(db: Database, before: int) -> int:
    """Delete messages sent before `before`; their keys stop guarding against queueing them again."""
    with write(db):
        return db.conn.execute("DELETE FROM outbox WHERE status = 'sent' AND sent_at < ?", (before,)).rowcount
