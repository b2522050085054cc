"""The first admin of an empty appliance: from a password file, or a command the log tells IT to run once.

An empty volume never gets a default password.
"""

from __future__ import annotations

from pathlib import Path

from appliance.directory import Person
from appliance.directory.local import LocalDirectory, new_person_id
from appliance.services.context import Appliance
from appliance.storage import audit, people

MIN_PASSWORD_CHARS = 10


class FirstAdminError(Exception):
    """The first admin cannot be made as configured; the message names what to fix."""


def local_admins(app: Appliance) -> list[str]:
    """Usernames of the local directory that are in an admin group."""
    admin_groups = {g.casefold() for g in app.settings.directory.admin_groups}
    return [p.username for p in people.list_people(app.dbs.identity)
            if admin_groups & {g.casefold() for g in p.groups}]


def read_admin_password(path: Path) -> str:
    """The first line of the password file, long enough; FirstAdminError otherwise."""
    try:
        password = path.read_text(encoding="utf-8").splitlines()[0].strip() if path.stat().st_size else ""
    except OSError as error:
        raise FirstAdminError(f"APPLIANCE_ADMIN_PASSWORD_FILE: cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise FirstAdminError(f"APPLIANCE_ADMIN_PASSWORD_FILE: {path} is not UTF-8 text (save it as UTF-8)") from None
    if len(password) < MIN_PASSWORD_CHARS:
        raise FirstAdminError(f"APPLIANCE_ADMIN_PASSWORD_FILE: the password in {path} must have at least"
                              f" {MIN_PASSWORD_CHARS} characters")
    return password


def create_first_admin(app: Appliance, username: str, password_file: Path | None) -> str:
    """Add a local admin when there is none and a password file is given; say what was done or is to do."""
    admins = local_admins(app)
    group = app.settings.directory.admin_groups[0] if app.settings.directory.admin_groups else "admins"
    ldap = app.settings.directory.kind == "ldap"
    if admins:
        return f"local admin(s): {', '.join(admins)}"
    if password_file is None:
        if ldap:
            return f"admins are the members of {', '.join(app.settings.directory.admin_groups)} in the directory"
        return ("no admin yet, and no APPLIANCE_ADMIN_PASSWORD_FILE: create the first one, once, with"
                f" `docker exec -it CONTAINER appliance user add {username} --group {group}`"
                f" (outside a container: `appliance user add {username} --group {group}`)")
    password = read_admin_password(password_file)
    if LocalDirectory(app.dbs.identity).has_username(username):  # compared as sign-in compares names
        raise FirstAdminError(f"APPLIANCE_ADMIN_USERNAME: {username!r} exists but is not an admin; choose another"
                              " name, or add it to an admin group")
    person = Person(new_person_id(), username, username, "", frozenset({group}), {})
    LocalDirectory(app.dbs.identity).add_person(person, password)
    audit.record(app.dbs.identity, "bootstrap", "user.add", username, group)
    return f"first admin {username!r} created (group {group}) from APPLIANCE_ADMIN_PASSWORD_FILE"
