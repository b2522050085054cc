"""`appliance demo`: people, an open round and a published one, so every screen has something to show."""

from __future__ import annotations

import random
import secrets
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlite_utils import Database

from appliance.directory import Person
from appliance.directory.local import HASHER, new_person_id
from appliance.domain.proposals import clean_text
from appliance.domain.votes import QUALIFICATIONS
from appliance.services import participation, rounds
from appliance.services.context import Appliance
from appliance.storage import audit, keys, people, similar
from appliance.storage.connection import fetch_all, write

DEPARTMENTS = ("Finance", "HR", "IT", "Operations", "Sales")
SITES = ("Lyon", "Nantes", "Paris")
FIRST_NAMES = ("Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Gaëlle", "Hugo", "Inès", "Jules",
               "Karim", "Léa", "Marc", "Nadia", "Olivier", "Pauline", "Quentin", "Rania", "Sophie", "Thomas")
LAST_NAMES = ("Martin", "Bernard", "Dubois", "Moreau")
STAFF = 48

EVERYDAY = (
    "Hold no internal meetings on Friday afternoons",
    "Give every team a shared calendar of who is on leave",
    "Replace the expense report form with a phone photo of the receipt",
    "Publish the cafeteria menu a week in advance",
    "Let people choose two remote working days a week",
    "Answer IT tickets within one working day and say so",
    "Keep a single page listing who to ask for what",
    "Stop copying the whole department on every email",
    "Buy quieter chairs and carpets for the open spaces",
    "Organise a monthly breakfast between departments",
    "Allow managers to approve small purchases without a committee",
    "Write meeting decisions down and share them the same day",
    "Offer a shuttle between the station and the Nantes site",
    "Translate the intranet into English for our foreign colleagues",
)
ONBOARDING = (
    "Give each newcomer a buddy from another team for a month",
    "Have the laptop and accounts ready on the first morning",
    "Write a short guide to our acronyms and tools",
    "Schedule a lunch with the team on the first day",
    "Explain in the first week how decisions are made here",
    "Hold a check-in with HR after one month",
    "Invite newcomers to visit another site in their first quarter",
    "Record short videos presenting each department",
)


class DemoError(Exception):
    """The demo cannot load here, or failed and was undone; the message says why in one line."""


class DemoAlreadyLoaded(DemoError):
    """The directory already has people: the demo only fills an empty appliance."""


@dataclass
class _Created:
    """What the demo has written so far, so that a failure can undo it."""

    usernames: list[str] = field(default_factory=list)
    round_ids: list[str] = field(default_factory=list)


def load_demo(app: Appliance, seed: int = 2026) -> list[tuple[str, str, str]]:
    """Create demo people and rounds; return (role, username, password) to print once.

    DemoError before writing anything when the settings do not allow the demo; when a
    step fails later, what the demo created is removed and DemoError says what failed.
    """
    admin_group, moderator_group = check_demo(app)
    created = _Created()
    try:
        return _load(app, random.Random(seed), admin_group, moderator_group, created)
    except BaseException as error:
        try:
            _undo(app, created)
        except Exception as undo_error:
            raise DemoError(f"the demo failed ({_one_line(error)}) and could not be undone ({_one_line(undo_error)}):"
                            " remove the data directory, or its demo people and rounds, before trying again") from error
        if not isinstance(error, Exception):
            raise
        raise DemoError(f"the demo failed and was undone: {_one_line(error)}") from error


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def check_demo(app: Appliance) -> tuple[str, str]:
    """The admin and moderator groups to use; DemoError when the demo cannot load with these settings."""
    directory = app.settings.directory
    if directory.kind != "local":
        raise DemoError(f"the demo needs the local directory, not directory.kind {directory.kind!r}"
                        " (APPLIANCE_DIRECTORY__KIND)")
    if not directory.admin_groups or not directory.moderator_groups:
        empty = "admin_groups" if not directory.admin_groups else "moderator_groups"
        raise DemoError(f"directory.{empty} is empty: the demo needs a group for its {empty.split('_')[0]}")
    limits = app.settings.rounds
    for text in EVERYDAY + ONBOARDING:
        length = len(clean_text(text))
        if not limits.proposal_min_chars <= length <= limits.proposal_max_chars:
            raise DemoError(f"a demo proposal has {length} characters, outside rounds.proposal_min_chars"
                            f" {limits.proposal_min_chars} to rounds.proposal_max_chars {limits.proposal_max_chars}:"
                            f" {text!r}")
    if people.list_people(app.dbs.identity):
        raise DemoAlreadyLoaded("the directory already has people; the demo only fills an empty appliance")
    return directory.admin_groups[0], directory.moderator_groups[0]


def _load(app: Appliance, rng: random.Random, admin_group: str, moderator_group: str,
          created: _Created) -> list[tuple[str, str, str]]:
    """The demo's writes, each noted in `created` as soon as it is made."""
    admin_password, moderator_password, staff_password = (secrets.token_urlsafe(9) for _ in range(3))
    admin = _add(app, created, Person(new_person_id(), "hr.admin", "HR Admin", "hr.admin@example.org",
                                      frozenset({admin_group})), admin_password)
    moderator = _add(app, created, Person(new_person_id(), "moderator", "Moderator", "moderator@example.org",
                                          frozenset({moderator_group})), moderator_password)
    staff = _add_staff(app, created, staff_password)
    published = _demo_round(app, rng, created, (admin, moderator, staff), "Onboarding",
                            "What would make the first weeks of a newcomer better?", ONBOARDING)
    rounds.close_round(app, admin.username, published)
    rounds.publish_round(app, admin.username, published)
    _demo_round(app, rng, created, (admin, moderator, staff), "Everyday work",
                "How could we make our day-to-day work easier?", EVERYDAY)
    audit.record(app.dbs.identity, "demo", "demo.load", "", f"{len(staff)} employees")
    return [("admin", admin.username, admin_password), ("moderator", moderator.username, moderator_password),
            ("employees", f"{staff[0].username}, {staff[1].username}, ... ({len(staff)})", staff_password)]


def _undo(app: Appliance, created: _Created) -> None:
    """Remove the demo's rounds (rows of both databases, search indexes, key files) and people.

    The audit log keeps its lines, and gets one saying what was removed.
    """
    for round_id in created.round_ids:
        keys.destroy_round_key(app.keys_dir, round_id)
        similar.drop(app.dbs.ballots, round_id)
    for db in (app.dbs.ballots, app.dbs.identity):
        _delete_rounds(db, created.round_ids)
    for username in created.usernames:
        people.delete_person(app.dbs.identity, username)
    if created.usernames or created.round_ids:
        audit.record(app.dbs.identity, "demo", "demo.undo", "",
                     f"{len(created.usernames)} people, {len(created.round_ids)} rounds removed")


def _delete_rounds(db: Database, round_ids: list[str]) -> None:
    """Delete every row of these rounds: tables with a round_id column first, then the rounds themselves."""
    if not round_ids:
        return
    marks = ", ".join("?" * len(round_ids))
    tables = [name for (name,) in fetch_all(db, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    with write(db):
        for table in tables:
            columns = {row[1] for row in fetch_all(db, f"PRAGMA table_info([{table}])")}
            if "round_id" in columns:
                db.conn.execute(f"DELETE FROM [{table}] WHERE round_id IN ({marks})", round_ids)
        if "rounds" in tables:
            db.conn.execute(f"DELETE FROM rounds WHERE id IN ({marks})", round_ids)


def _add(app: Appliance, created: _Created, person: Person, password: str) -> Person:
    people.insert_person(app.dbs.identity, person, HASHER.hash(password))
    created.usernames.append(person.username)
    return person


def _add_staff(app: Appliance, created: _Created, password: str) -> list[Person]:
    password_hash = HASHER.hash(password)  # one hash for all: argon2 is slow on purpose
    staff = []
    names = [(first, last) for last in LAST_NAMES for first in FIRST_NAMES][:STAFF]
    for i, (first, last) in enumerate(names):
        username = f"{_ascii(first)}.{_ascii(last)}".lower()
        person = Person(new_person_id(), username, f"{first} {last}", f"{username}@example.org",
                        frozenset({"staff"}), {"department": DEPARTMENTS[i % 5], "site": SITES[(i // 5) % 3]})
        people.insert_person(app.dbs.identity, person, password_hash)
        created.usernames.append(username)
        staff.append(person)
    return staff


def _ascii(name: str) -> str:
    """The name without accents ("Inès" -> "Ines"): usernames and e-mail addresses in plain ASCII."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))


@contextmanager
def _earlier_clock(app: Appliance, seconds: int) -> Iterator[None]:
    """Submit demo proposals in an earlier release period, so they are released now."""
    real = app.clock
    app.clock = lambda: real() - timedelta(seconds=seconds)
    try:
        yield
    finally:
        app.clock = real


def _demo_round(app: Appliance, rng: random.Random, created: _Created,
                cast: tuple[Person, Person, list[Person]], title: str, question: str, texts: tuple[str, ...]) -> str:
    """An open round with accepted proposals and votes; cast is (admin, moderator, staff)."""
    admin, moderator, staff = cast
    draft = rounds.RoundDraft(title=title, question=question, audience_groups=("staff",),
                              dimensions=("department", "site"))
    round_id = rounds.create_round(app, admin.username, draft).id
    created.round_ids.append(round_id)
    rounds.open_round(app, admin.username, round_id)
    with _earlier_clock(app, 2 * app.settings.rounds.release_interval_seconds):
        for author, text in zip(rng.sample(staff, len(texts)), texts):
            participation.submit_proposal(app, round_id, app.viewer(author), text)
    for item in participation.moderation_queue(app, moderator.username, round_id, app.viewer(moderator)):
        participation.moderate(app, moderator.username, round_id, app.viewer(moderator), item.proposal.id, "accept")
    _cast_demo_votes(app, rng, round_id, staff)
    return round_id


def _cast_demo_votes(app: Appliance, rng: random.Random, round_id: str, staff: list[Person]) -> None:
    """Each proposal gets a hidden support level; about three in four employees vote on each."""
    viewer = app.viewer(staff[0])
    accepted = participation.accepted_proposals(app, round_id, viewer)
    support = {p.id: rng.uniform(0.15, 0.9) for p in accepted}
    for person in staff:
        for proposal in accepted:
            if rng.random() > 0.75:
                continue
            agree = support[proposal.id]
            vote = rng.choices(("agree", "disagree", "neutral"), (agree, (1 - agree) * 0.7, (1 - agree) * 0.3))[0]
            qualification = rng.choice(QUALIFICATIONS[vote]) if rng.random() < 0.4 else None
            participation.cast_vote(app, round_id, app.viewer(person), proposal.id, vote, qualification)
