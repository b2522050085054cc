"""`appliance user add | set-password | list | remove`: the local directory."""

from __future__ import annotations

import argparse
import sqlite3
import unicodedata
from typing import TYPE_CHECKING

from appliance.cli import CommandError, open_appliance, read_password
from appliance.directory import Person
from appliance.directory.local import LocalDirectory, new_person_id
from appliance.storage import audit, people

if TYPE_CHECKING:
    from appliance.services.context import Appliance


def add_user_commands(commands: argparse._SubParsersAction) -> None:
    user = commands.add_parser("user", help="manage people of the local directory")
    actions = user.add_subparsers(title="actions", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="add a person (password from a prompt, or stdin)")
    add.add_argument("username")
    add.add_argument("--display-name", help="name shown in the interface (default: the username)")
    add.add_argument("--email", default="")
    add.add_argument("--group", action="append", default=[], help="a group; repeat for several")
    add.add_argument("--attribute", action="append", default=[], metavar="KEY=VALUE",
                     help="a segment attribute such as department=Finance; repeat for several")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=run_add)

    password = actions.add_parser("set-password", help="change a person's password")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    password.set_defaults(run=run_set_password)

    actions.add_parser("list", help="list people, their groups and attributes").set_defaults(run=run_list)

    remove = actions.add_parser("remove", help="remove a person and end their sessions")
    remove.add_argument("username")
    remove.set_defaults(run=run_remove)


def parse_attributes(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs as a dict; CommandError on a malformed pair."""
    attributes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CommandError(f"--attribute {pair!r}: expected KEY=VALUE, for example department=Finance")
        attributes[key.strip()] = value.strip()
    return attributes


def _has_control(text: str) -> bool:
    """A control or format character (line break, tab, NUL, bidi override ...) in the text."""
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in text)


def check_username(text: str) -> str:
    """The trimmed username; CommandError when empty, with spaces or with control characters."""
    username = text.strip()
    if not username or any(c.isspace() for c in username):
        raise CommandError("the username must be non-empty and contain no spaces")
    if _has_control(username):
        raise CommandError(f"the username {username!r} must not contain control characters")
    return username


def check_email(text: str) -> str:
    """The trimmed address, or "" when none is given; CommandError naming --email when it is not one."""
    from appliance.mail.message import parse_address

    if not text.strip():
        return ""
    try:
        parse_address(text, "--email")
    except ValueError as error:
        raise CommandError(str(error)) from None
    return text.strip()


def check_groups(names: list[str]) -> frozenset[str]:
    """The trimmed, non-empty group names; CommandError naming --group on a comma or a control character."""
    for name in names:
        if "," in name or _has_control(name):
            raise CommandError(f"--group {name!r}: a group name must contain no comma and no control characters")
    return frozenset(g.strip() for g in names if g.strip())


def check_display_name(text: str | None, username: str) -> str:
    """The trimmed display name (default: the username); CommandError naming --display-name when blank."""
    if text is None:
        return username
    name = text.strip()
    if not name:
        raise CommandError(f"--display-name {text!r}: must not be blank")
    return name


def same_username(app: Appliance, username: str) -> str | None:
    """An existing username that sign-in takes for this one (NFKC, case folded), or None."""
    from appliance.directory import normal_username

    wanted = normal_username(username)
    return next((p.username for p in people.list_people(app.dbs.identity)
                 if normal_username(p.username) == wanted), None)


def run_add(args: argparse.Namespace) -> int:
    username = check_username(args.username)
    display_name = check_display_name(args.display_name, username)
    email, groups = check_email(args.email), check_groups(args.group)
    attributes = parse_attributes(args.attribute)
    with open_appliance() as app:
        if people.find_by_username(app.dbs.identity, username):
            raise CommandError(f"user {username!r} already exists")
        existing = same_username(app, username)
        if existing:
            raise CommandError(f"user {existing!r} already exists, and sign-in takes {username!r} for the same name")
        person = Person(new_person_id(), username, display_name, email, groups, attributes)
        password = read_password(args.password_stdin)
        try:
            LocalDirectory(app.dbs.identity).add_person(person, password)
        except sqlite3.IntegrityError:
            raise CommandError(f"user {username!r} already exists") from None
        audit.record(app.dbs.identity, "cli", "user.add", username, ",".join(sorted(person.groups)))
    print(f"added {username}")
    return 0


def run_set_password(args: argparse.Namespace) -> int:
    with open_appliance() as app:
        if not people.find_by_username(app.dbs.identity, args.username):
            raise CommandError(f"no user {args.username!r}")
        if not LocalDirectory(app.dbs.identity).set_password(args.username, read_password(args.password_stdin)):
            raise CommandError(f"no user {args.username!r}")
        audit.record(app.dbs.identity, "cli", "user.set_password", args.username)
    print(f"password changed for {args.username}")
    return 0


def run_list(_: argparse.Namespace) -> int:
    with open_appliance() as app:
        everyone = people.list_people(app.dbs.identity)
    for person in everyone:
        attributes = " ".join(f"{k}={v}" for k, v in sorted(person.attributes.items()))
        print(f"{person.username}\t{person.display_name}\t{','.join(sorted(person.groups))}\t{attributes}")
    if not everyone:
        print("no users yet: add one with `appliance user add USERNAME`")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with open_appliance() as app:
        if not people.delete_person(app.dbs.identity, args.username):
            raise CommandError(f"no user {args.username!r}")
        audit.record(app.dbs.identity, "cli", "user.remove", args.username)
    print(f"removed {args.username}")
    return 0
