"""`appliance user add | set-password | list | remove`: the local directory."""

from __future__ import annotations

import argparse
import sqlite3

from appliance.cli import CommandError, open_appliance, read_password
from appliance.directory import Person
from appliance.directory.local import LocalDirectory, new_person_id
from appliance.storage import audit, people


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


def run_add(args: argparse.Namespace) -> int:
    username = args.username.strip()
    if not username or any(c.isspace() for c in username):
        raise CommandError("the username must be non-empty and contain no spaces")
    attributes = parse_attributes(args.attribute)
    with open_appliance() as app:
        if people.find_by_username(app.dbs.identity, username):
            raise CommandError(f"user {username!r} already exists")
        person = Person(new_person_id(), username, (args.display_name or username).strip(), args.email.strip(),
                        frozenset(g.strip() for g in args.group if g.strip()), attributes)
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
