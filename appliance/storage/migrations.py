"""Named, append-only migrations of the two databases.

Never edit a migration that has shipped: add a new one below it.
The ballot side is built for the anonymity model: no person id, no dates, random
fixed-length ids, and WITHOUT ROWID tables whose keys do not follow insertion order.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from appliance.storage import similar
from appliance.storage.ballots import store_packs
from appliance.storage.connection import fetch_one, forget_order, write

identity = Migrations("appliance.identity")
ballots = Migrations("appliance.ballots")


@identity(name="0001_people_sessions_audit")
def identity_0001(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE people (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            email TEXT NOT NULL DEFAULT '',
            password_hash TEXT NOT NULL,
            groups TEXT NOT NULL DEFAULT '[]',
            attributes TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            person_id TEXT NOT NULL,
            username TEXT NOT NULL,
            display_name TEXT NOT NULL,
            groups TEXT NOT NULL,
            attributes TEXT NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX sessions_person ON sessions(person_id);
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        -- Who was in a round's audience at open, with their coarsened segment
        -- combination. Written at open only, deleted at close.
        CREATE TABLE audience_snapshots (
            round_id TEXT NOT NULL,
            person_id TEXT NOT NULL,
            combo TEXT NOT NULL,
            PRIMARY KEY (round_id, person_id)
        ) WITHOUT ROWID;
        """
    )


@ballots(name="0001_rounds_proposals_ballots_counts")
def ballots_0001(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE rounds (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            question TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            audience_groups TEXT NOT NULL DEFAULT '[]',
            dimensions TEXT NOT NULL DEFAULT '[]',
            k INTEGER NOT NULL,
            opens_at TEXT,
            closes_at TEXT,
            proposals_close_at TEXT,
            moderation TEXT NOT NULL,
            status TEXT NOT NULL,
            proposal_min_chars INTEGER NOT NULL,
            proposal_max_chars INTEGER NOT NULL,
            proposal_quota INTEGER NOT NULL,
            release_interval_seconds INTEGER NOT NULL,
            -- the last release period in which queued proposals were released
            released_period INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        -- Audience members per stored segment combination, frozen at open.
        CREATE TABLE headcounts (
            round_id TEXT NOT NULL REFERENCES rounds(id),
            combo TEXT NOT NULL,
            members INTEGER NOT NULL,
            PRIMARY KEY (round_id, combo)
        ) WITHOUT ROWID;
        -- The coarsening map frozen at open: raw segment values -> stored combination.
        CREATE TABLE coarsening (
            round_id TEXT NOT NULL REFERENCES rounds(id),
            raw TEXT NOT NULL,
            combo TEXT NOT NULL,
            PRIMARY KEY (round_id, raw)
        ) WITHOUT ROWID;
        -- author_label: HMAC label, deleted at close. No submission time, not even
        -- a period: whatever is queued was submitted since the last release.
        CREATE TABLE proposals (
            id TEXT PRIMARY KEY,
            round_id TEXT NOT NULL REFERENCES rounds(id),
            text TEXT NOT NULL,
            status TEXT NOT NULL,
            author_label BLOB,
            refusal_reason TEXT,
            refusal_note TEXT
        ) WITHOUT ROWID;
        CREATE INDEX proposals_round_status ON proposals(round_id, status);
        CREATE INDEX proposals_author ON proposals(round_id, author_label);
        CREATE TABLE voters (
            round_id TEXT NOT NULL,
            pseudonym BLOB NOT NULL,
            combo TEXT NOT NULL,
            PRIMARY KEY (round_id, pseudonym)
        ) WITHOUT ROWID;
        CREATE TABLE ballots (
            round_id TEXT NOT NULL,
            pseudonym BLOB NOT NULL,
            proposal_id TEXT NOT NULL,
            vote TEXT NOT NULL,
            qualification TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (round_id, pseudonym, proposal_id)
        ) WITHOUT ROWID;
        -- After close: what the results need, and nothing else.
        CREATE TABLE counts (
            round_id TEXT NOT NULL REFERENCES rounds(id),
            proposal_id TEXT NOT NULL,
            combo TEXT NOT NULL,
            vote TEXT NOT NULL,
            qualification TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (round_id, proposal_id, combo, vote, qualification)
        ) WITHOUT ROWID;
        CREATE TABLE combo_voters (
            round_id TEXT NOT NULL REFERENCES rounds(id),
            combo TEXT NOT NULL,
            voters INTEGER NOT NULL,
            PRIMARY KEY (round_id, combo)
        ) WITHOUT ROWID;
        """
    )


@identity(name="0002_sign_in_failures")
def identity_0002(db: Database) -> None:
    db.executescript(
        """
        -- Failed sign-ins, for throttling. key is an HMAC of the username or the
        -- client address, so the file holds neither (nor passwords typed as names).
        CREATE TABLE sign_in_failures (
            key TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            last_failure_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        """
    )


@ballots(name="0002_noise_seeds")
def ballots_0002(db: Database) -> None:
    db.executescript(
        """
        -- The key of a closed round's cell-key perturbation: random, made at the
        -- first reading of its results, so the same cell always gets the same noise.
        CREATE TABLE noise_seeds (
            round_id TEXT PRIMARY KEY REFERENCES rounds(id),
            seed BLOB NOT NULL
        ) WITHOUT ROWID;
        """
    )


@identity(name="0003_participation_snapshots")
def identity_0003(db: Database) -> None:
    db.executescript(
        """
        -- While a round is open, participation is published in bands, once a day,
        -- a day late: the band seen on the first reading of each day (UTC).
        -- A band, never a count; kept in identity.db because it carries a date.
        CREATE TABLE participation_snapshots (
            round_id TEXT NOT NULL,
            day TEXT NOT NULL,
            band TEXT NOT NULL,
            PRIMARY KEY (round_id, day)
        ) WITHOUT ROWID;
        """
    )


@ballots(name="0003_count_packs")
def ballots_0003(db: Database) -> None:
    db.executescript(
        """
        -- A closed round's counts again, packed per proposal (int32 triples of
        -- combination, option, count) for the results: the same numbers as the
        -- counts table, nothing more. Combinations are indexes into pack_combos.
        CREATE TABLE pack_combos (
            round_id TEXT PRIMARY KEY REFERENCES rounds(id),
            combos TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE count_packs (
            round_id TEXT NOT NULL REFERENCES rounds(id),
            proposal_id TEXT NOT NULL,
            pack BLOB NOT NULL,
            PRIMARY KEY (round_id, proposal_id)
        ) WITHOUT ROWID;
        """
    )
    for (round_id,) in db.conn.execute("SELECT id FROM rounds WHERE status IN ('closed', 'published')").fetchall():
        store_packs(db, round_id)


@ballots(name="0004_duplicates")
def ballots_0004(db: Database) -> None:
    db.executescript(
        """
        -- A moderator's mark: this accepted proposal says the same as another one.
        -- It keeps its votes; voting sequences show one proposal of each group.
        ALTER TABLE proposals ADD COLUMN duplicate_of TEXT;
        """
    )


@identity(name="0004_moderation_locks")
def identity_0004(db: Database) -> None:
    db.executescript(
        """
        -- A moderator handling a proposal holds it for a short while, so that two
        -- moderators never decide on the same proposal. Moderators are not authors:
        -- this pairs a moderator with a proposal, never an author. Deleted at close.
        CREATE TABLE moderation_locks (
            round_id TEXT NOT NULL,
            proposal_id TEXT NOT NULL,
            holder TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (round_id, proposal_id)
        ) WITHOUT ROWID;
        """
    )


@identity(name="0005_outbox")
def identity_0005(db: Database) -> None:
    db.executescript(
        """
        -- Mail waiting for the relay, and what became of it. `key` names the message
        -- (kind, schedule, period, recipient), so a message queued twice is stored
        -- once. claimed_by / claimed_until: the sender that holds it now, until when.
        -- A sent message keeps its key, recipient and subject, not its content.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            recipient TEXT NOT NULL,
            subject TEXT NOT NULL,
            message BLOB NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            claimed_by TEXT,
            claimed_until INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            sent_at INTEGER
        );
        CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
        """
    )


@identity(name="0006_digests")
def identity_0006(db: Database) -> None:
    db.executescript(
        """
        -- Who gets a round's digest and when: recipients is a JSON list of "admins",
        -- "audience" or directory group names; weekday 0 (Monday) to 6, local_time
        -- "HH:MM" in time_zone (IANA). active_since: digests fall due only after it
        -- (the schedule saved, or the round seen open). last_period: the local date
        -- of the last weekly digest queued, so a run finds quickly it has nothing to do.
        CREATE TABLE digest_schedules (
            round_id TEXT PRIMARY KEY,
            recipients TEXT NOT NULL,
            weekday INTEGER NOT NULL,
            local_time TEXT NOT NULL,
            time_zone TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            final_at_publication INTEGER NOT NULL,
            active_since INTEGER NOT NULL,
            last_period TEXT NOT NULL DEFAULT ''
        ) WITHOUT ROWID;
        -- One-off round messages already queued (invitation, reminder, results,
        -- final digest): a round's kind is queued once, whatever the outbox forgets.
        CREATE TABLE round_notices (
            round_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            queued_at INTEGER NOT NULL,
            PRIMARY KEY (round_id, kind)
        ) WITHOUT ROWID;
        -- People who asked for no more reminders (the one-click link). Nothing here
        -- says whether they took part: reminders go to the whole audience.
        CREATE TABLE mail_opt_outs (
            person_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (person_id, kind)
        ) WITHOUT ROWID;
        """
    )


@identity(name="0007_sealed_sessions")
def identity_0007(db: Database) -> None:
    db.executescript(
        """
        -- Sessions no longer say whose they are: who signed in is sealed under a key
        -- derived from the session's token, which only the browser holds; keyed by
        -- the token's hash (random order, no rowid). Sessions of the old form end
        -- (everyone signs in again); secure_delete wipes the pages they were on.
        DROP INDEX sessions_person;
        DROP TABLE sessions;
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            sealed BLOB NOT NULL,
            expires_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        -- A local account's sessions open only under its current generation:
        -- a new password moves it on, which ends them all.
        ALTER TABLE people ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;
        """
    )


@identity(name="0008_participation_recorded_at")
def identity_0008(db: Database) -> None:
    db.executescript(
        """
        -- When each day's band was recorded: it is shown a full day later, not from
        -- the next midnight (a first reading at 23:59 would otherwise be shown at 00:00).
        -- Bands recorded before this column existed count as long ago.
        ALTER TABLE participation_snapshots ADD COLUMN recorded_at INTEGER NOT NULL DEFAULT 0;
        """
    )


@ballots(name="0005_similar_terms_again")
def ballots_0005(db: Database) -> None:
    """The open rounds' near-duplicate indexes written again with the terms as now computed (French plurals in
    -aux, hyphenated words): a draft's terms and the indexed ones must be made alike."""
    _index_open_rounds_again(db)


@ballots(name="0006_similar_without_filler_words")
def ballots_0006(db: Database) -> None:
    """Again, now that urgency, politeness and generic opening verbs ("ajouter", "as soon as possible") are no
    terms: the indexed proposals must not keep them."""
    _index_open_rounds_again(db)


def _index_open_rounds_again(db: Database) -> None:
    for (round_id,) in db.conn.execute("SELECT id FROM rounds WHERE status = 'open'").fetchall():
        table = f"similar_{round_id}"
        if fetch_one(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)) is None:
            continue
        db.conn.execute(f"DELETE FROM [{table}]")
        accepted = db.conn.execute("SELECT id, text FROM proposals WHERE round_id = ? AND status = 'accepted'",
                                   (round_id,)).fetchall()
        similar.index_accepted(db, round_id, accepted)


class NewerDatabase(sqlite3.DatabaseError):
    """A database migrated by a newer version of the appliance: this one must not use it."""


def unknown_to(known: Migrations, applied: list[str]) -> list[str]:
    """The applied migrations that this version does not know: a newer version applied them."""
    names = {m.name for m in known.pending(Database(memory=True))}  # every migration of the set
    return [name for name in applied if name not in names]


def newer_database_message(path: Path, unknown: list[str]) -> str:
    """What to say of a database a newer version migrated (unknown: its migrations unknown to this version)."""
    return (f"{path.name} was last used by a newer version of the appliance (migration {unknown[0]!r} is unknown"
            f" to this one): run that version or newer, or restore a backup made with this one ({path})")


def refuse_newer(db: Database, known: Migrations) -> None:
    """Raise NewerDatabase, naming the file, when a newer version of the appliance migrated the database."""
    unknown = unknown_to(known, [m.name for m in known.applied(db)])
    if unknown:
        raise NewerDatabase(newer_database_message(Path(db.execute("PRAGMA database_list").fetchone()[2]), unknown))


def apply_migrations(identity_db: Database, ballots_db: Database) -> list[str]:
    """Apply pending migrations to both databases; return the names applied. Refuse databases of a newer version."""
    refuse_newer(identity_db, identity)
    refuse_newer(ballots_db, ballots)
    pending = [m.name for m in identity.pending(identity_db)]
    pending += [m.name for m in ballots.pending(ballots_db)]
    identity.apply(identity_db)
    ballots.apply(ballots_db)
    forget_when_applied(ballots_db)
    return pending


def forget_when_applied(ballots_db: Database) -> None:
    """Blank the applied_at times that sqlite-utils records: ballot-side rows hold no date (names are kept).

    identity.db keeps its times. The WAL, which held the times, is truncated afterwards.
    """
    table = ballots.migrations_table
    if fetch_one(ballots_db, f"SELECT 1 FROM [{table}] WHERE applied_at <> '' LIMIT 1") is None:
        return
    with write(ballots_db):
        ballots_db.conn.execute(f"UPDATE [{table}] SET applied_at = '' WHERE applied_at <> ''")
    forget_order(ballots_db)
