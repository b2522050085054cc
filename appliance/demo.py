"""`appliance demo`: people, an open round and a published one, so every screen has something to show."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from appliance.directory import Person
from appliance.directory.local import HASHER, new_person_id
from appliance.domain.votes import QUALIFICATIONS
from appliance.services import participation, rounds
from appliance.services.context import Appliance
from appliance.storage import audit, people

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


class DemoAlreadyLoaded(Exception):
    """The directory already has people: the demo only fills an empty appliance."""


def load_demo(app: Appliance, seed: int = 2026) -> list[tuple[str, str, str]]:
    """Create demo people and rounds; return (role, username, password) to print once."""
    if people.list_people(app.dbs.identity):
        raise DemoAlreadyLoaded("the directory already has people; the demo only fills an empty appliance")
    rng = random.Random(seed)
    admin_password, moderator_password, staff_password = (secrets.token_urlsafe(9) for _ in range(3))
    admin = _add(app, Person(new_person_id(), "hr.admin", "HR Admin", "hr.admin@example.org",
                             frozenset({"admins"})), admin_password)
    moderator = _add(app, Person(new_person_id(), "moderator", "Moderator", "moderator@example.org",
                                 frozenset({"moderators"})), moderator_password)
    staff = _add_staff(app, staff_password)
    published = _demo_round(app, rng, admin, moderator, staff, "Onboarding",
                            "What would make the first weeks of a newcomer better?", ONBOARDING)
    rounds.close_round(app, admin.username, published)
    rounds.publish_round(app, admin.username, published)
    _demo_round(app, rng, admin, moderator, staff, "Everyday work",
                "How could we make our day-to-day work easier?", EVERYDAY)
    audit.record(app.dbs.identity, "demo", "demo.load", "", f"{len(staff)} employees")
    return [("admin", admin.username, admin_password), ("moderator", moderator.username, moderator_password),
            ("employees", f"{staff[0].username}, {staff[1].username}, ... ({len(staff)})", staff_password)]


def _add(app: Appliance, person: Person, password: str) -> Person:
    people.insert_person(app.dbs.identity, person, HASHER.hash(password))
    return person


def _add_staff(app: Appliance, password: str) -> list[Person]:
    password_hash = HASHER.hash(password)  # one hash for all: argon2 is slow on purpose
    staff = []
    names = [(first, last) for last in LAST_NAMES for first in FIRST_NAMES][:STAFF]
    for i, (first, last) in enumerate(names):
        username = f"{_ascii(first)}.{_ascii(last)}".lower()
        person = Person(new_person_id(), username, f"{first} {last}", f"{username}@example.org",
                        frozenset({"staff"}), {"department": DEPARTMENTS[i % 5], "site": SITES[(i // 5) % 3]})
        people.insert_person(app.dbs.identity, person, password_hash)
        staff.append(person)
    return staff


def _ascii(name: str) -> str:
    return name.replace("é", "e").replace("ë", "e")


@contextmanager
def _earlier_clock(app: Appliance, seconds: int) -> Iterator[None]:
    """Submit demo proposals in an earlier release period, so they are released now."""
    real = app.clock
    app.clock = lambda: real() - timedelta(seconds=seconds)
    try:
        yield
    finally:
        app.clock = real


def _demo_round(app: Appliance, rng: random.Random, admin: Person, moderator: Person, staff: list[Person],
                title: str, question: str, texts: tuple[str, ...]) -> str:
    draft = rounds.RoundDraft(title=title, question=question, audience_groups=("staff",),
                              dimensions=("department", "site"))
    round_id = rounds.create_round(app, admin.username, draft).id
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
