"""The checks of `appliance doctor`: each says ok, warn or fail, and what to do about it."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.settings import Settings
from appliance.storage import backup as stored
from appliance.storage import migrations
from appliance.storage.keys import INSTANCE_SECRET_FILE, round_ids_with_keys

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_FREE_BYTES = 100 * 2**20
LOW_FREE_BYTES = 1 * 2**30


@dataclass(frozen=True)
class Finding:
    status: str  # OK, WARN or FAIL
    subject: str
    message: str


Check = Callable[[Settings], Iterator[Finding]]


def check_data_dir(settings: Settings) -> Iterator[Finding]:
    """The data directory exists, can be written, and has room."""
    data_dir = settings.storage.data_dir
    if not data_dir.is_dir():
        yield Finding(FAIL, "storage.data_dir", f"{data_dir.resolve()} does not exist: run `appliance init` (or serve)"
                      + ("; storage.data_dir is relative to the current directory" if not data_dir.is_absolute()
                         else ""))
        return
    if not os.access(data_dir, os.R_OK | os.W_OK | os.X_OK):
        yield Finding(FAIL, "storage.data_dir", f"{data_dir.resolve()} {_not_writable(data_dir)}")
    else:
        yield Finding(OK, "storage.data_dir", f"{data_dir.resolve()}")
    free = shutil.disk_usage(data_dir).free
    status = FAIL if free < MIN_FREE_BYTES else WARN if free < LOW_FREE_BYTES else OK
    amount = f"{free / 2**30:.1f} GiB" if free >= 2**30 else f"{free / 2**20:.1f} MiB"
    yield Finding(status, "free disk", f"{amount} free beside the databases"
                  + ("" if status == OK else ": votes and closes need room; free some space"))


def _not_writable(path: Path) -> str:
    """Why this user cannot write there, and what to do."""
    if os.statvfs(path).f_flag & os.ST_RDONLY:
        return "is on a read-only file system: mount it read-write"
    uid = os.getuid()
    return (f"cannot be read and written by this user (uid {uid}): chown it (and its files) to uid {uid},"
            " or run the appliance as their owner")


def check_databases(settings: Settings) -> Iterator[Finding]:
    """Both databases exist, pass PRAGMA integrity_check, have every migration and none of a newer version;
    no restore left them half-replaced."""
    try:
        stored.refuse_unfinished_restore(settings.storage.data_dir)
    except stored.UnfinishedRestore as error:
        yield Finding(FAIL, "restore", str(error))
    for path, known in ((settings.storage.identity_db, migrations.identity),
                        (settings.storage.ballots_db, migrations.ballots)):
        if not path.is_file():
            yield Finding(FAIL, path.name, f"{path} does not exist: run `appliance init` (or serve)")
            continue
        if not os.access(path, os.R_OK | os.W_OK):
            yield Finding(FAIL, path.name, f"{path} {_not_writable(path)}; the database itself is not the problem")
            continue
        try:
            problems = stored.integrity_problems(path)
        except sqlite3.DatabaseError as error:
            problems = [str(error)]
        if any("readonly" in p for p in problems):  # the directory, or a -wal file, it cannot write
            yield Finding(FAIL, path.name, f"{path} cannot be written: {problems[0]}; check the owner and mode of"
                          f" {path.parent} and its files (this user is uid {os.getuid()}); the database itself"
                          " is not the problem")
            continue
        if problems:
            yield Finding(FAIL, path.name, f"integrity check failed: {'; '.join(problems[:3])};"
                          " restore the latest backup (`appliance restore`)")
            continue
        unknown = migrations.unknown_to(known, stored.applied_migrations(path))
        pending = stored.pending_migrations(path, known)
        size = path.stat().st_size / 2**20
        if unknown:
            yield Finding(FAIL, path.name, migrations.newer_database_message(path, unknown))
        elif pending:
            yield Finding(WARN, path.name, f"integrity ok, {len(pending)} migration(s) pending"
                          " (`appliance migrate`, or the next start, applies them)")
        else:
            yield Finding(OK, path.name, f"integrity ok, schema up to date, {size:.1f} MiB")


def check_instance_secret(settings: Settings) -> Iterator[Finding]:
    """The instance secret is configured, or its generated file is private."""
    if settings.security.instance_secret is not None:
        yield Finding(OK, "instance secret", "configured (security.instance_secret)")
        return
    path = settings.storage.data_dir / INSTANCE_SECRET_FILE
    if not path.is_file():
        yield Finding(WARN, "instance secret", f"{path} does not exist yet: it is generated at the first start")
    elif path.stat().st_mode & 0o077:
        yield Finding(FAIL, "instance secret", f"{path} can be read by others than its owner: chmod 600 it")
    else:
        yield Finding(OK, "instance secret", f"{path} (mode 0600)")


def _inside(path: Path, parent: Path) -> bool:
    return path.resolve().is_relative_to(parent.resolve())


def _keys_dir_problem(keys_dir: Path) -> str | None:
    """Why round keys cannot be written in keys_dir (or in the directory made for it), if they cannot."""
    uid = os.getuid()
    if keys_dir.exists():
        if not keys_dir.is_dir():
            return f"{keys_dir} is not a directory: set storage.keys_dir to a directory"
        if not os.access(keys_dir, os.W_OK | os.X_OK):
            return (f"{keys_dir} cannot be written by this user (uid {uid}): opening a round fails;"
                    f" chown it to uid {uid} (chmod 700), or set storage.keys_dir to a directory it can write")
        return None
    parent = next(p for p in keys_dir.absolute().parents if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return (f"{keys_dir} does not exist and cannot be made: {parent} cannot be written by this user"
                f" (uid {uid}); create it (mkdir -m 700, owned by uid {uid}), or set storage.keys_dir elsewhere")
    return None


def _shares_the_data_filesystem(keys_dir: Path, data_dir: Path) -> bool:
    """keys_dir is on the data's device and not mounted there of its own (as a volume or tmpfs is)."""
    return (keys_dir.is_dir() and data_dir.is_dir() and keys_dir.stat().st_dev == data_dir.stat().st_dev
            and not os.path.ismount(keys_dir))


def check_keys_dir(settings: Settings) -> Iterator[Finding]:
    """Round keys live apart from the data, privately, writably, and every open round has its key."""
    storage = settings.storage
    keys_dir = storage.round_keys_dir
    if keys_dir.is_dir() and keys_dir.stat().st_mode & 0o077:
        yield Finding(FAIL, "storage.keys_dir", f"{keys_dir} can be read by others than its owner: chmod 700 it")
    problem = _keys_dir_problem(keys_dir)
    if problem:
        yield Finding(FAIL, "storage.keys_dir", problem)
    if _inside(keys_dir, storage.data_dir):
        yield Finding(WARN, "storage.keys_dir", f"{keys_dir} is inside the data directory: a snapshot or copy of"
                      " the data holds the keys of open rounds; set storage.keys_dir to a tmpfs or a volume"
                      " left out of snapshots")
    elif _shares_the_data_filesystem(keys_dir, storage.data_dir):
        yield Finding(WARN, "storage.keys_dir", f"{keys_dir} is on the same filesystem as the data: a snapshot of"
                      " that filesystem holds the keys of open rounds; use a tmpfs or a volume of its own")
    elif not problem:
        yield Finding(OK, "storage.keys_dir", f"{keys_dir} is apart from the data")
    if not storage.ballots_db.is_file():
        return
    try:
        open_rounds = stored.open_round_ids(storage.ballots_db)
    except sqlite3.DatabaseError:
        return  # said by check_databases
    keyed = set(round_ids_with_keys(keys_dir))
    for round_id in open_rounds:
        if round_id not in keyed:
            yield Finding(FAIL, f"round {round_id}", f"open, but its key file is not in {keys_dir}: mount or restore"
                          " the keys directory. If the key is really lost, the next start closes the round with the"
                          " votes it has, or, when no open round has its key, refuses to start until"
                          " `appliance close-keyless-rounds` is run")
    left = sorted(keyed - set(open_rounds))
    if left:
        yield Finding(WARN, "storage.keys_dir", f"{len(left)} key file(s) of rounds that are not open: the next"
                      " start finishes their close and deletes them")
    if open_rounds and set(open_rounds) <= keyed:
        yield Finding(OK, "round keys", f"each of the {len(open_rounds)} open round(s) has its key file")


def check_directory(settings: Settings) -> Iterator[Finding]:
    """The directory answers (LDAP), or the local directory has an admin."""
    from appliance.directory import DirectoryUnavailable
    from appliance.storage import people

    admin_groups = {g.casefold() for g in settings.directory.admin_groups}
    local_admins = 0
    if settings.storage.identity_db.is_file():
        db = stored.open_read_only(settings.storage.identity_db)
        try:
            local_admins = sum(1 for p in people.list_people(db) if admin_groups & {g.casefold() for g in p.groups})
        except sqlite3.DatabaseError:
            return  # said by check_databases
        finally:
            db.close()
    if settings.directory.kind == "local":
        if local_admins:
            yield Finding(OK, "directory", f"local, {local_admins} admin(s)")
        else:
            yield Finding(WARN, "directory", "local, and nobody is an admin yet: `appliance user add NAME"
                          f" --group {settings.directory.admin_groups[0] if admin_groups else 'admins'}`")
        return
    from appliance.directory.ldap import LdapDirectory

    directory = LdapDirectory(settings.ldap)
    try:
        directory.check()
        yield Finding(OK, "directory", f"LDAP answers ({', '.join(settings.ldap.servers)}); local admins: {local_admins}")
    except DirectoryUnavailable as error:
        yield Finding(FAIL, "directory", f"LDAP cannot be used: {error} (details: `appliance ldap check`)")
    finally:
        directory.close()


def check_mail(settings: Settings) -> Iterator[Finding]:
    """With mail on, the relay accepts a connection (and the sign-in): nothing is sent."""
    if not settings.mail.enabled:
        yield Finding(OK, "mail", "off (mail.enabled = false): no mail is sent")
        return
    from appliance.mail import MailError, Mailer

    mailer = Mailer(settings.mail)
    try:
        with mailer.connection():
            pass
        yield Finding(OK, "mail", f"the relay {mailer.relay} accepts the connection")
    except MailError as error:
        yield Finding(FAIL, "mail", f"{mailer.relay}: {error} (details: `appliance mail test ADDRESS`)")


CHECKS: tuple[Check, ...] = (check_data_dir, check_databases, check_instance_secret, check_keys_dir,
                             check_directory, check_mail)


def run_checks(settings: Settings, checks: tuple[Check, ...] = CHECKS) -> Iterator[Finding]:
    """Every finding of every check, in order."""
    for check in checks:
        try:
            yield from check(settings)
        except OSError as error:  # a file it may not read: said, and the other checks still run
            yield Finding(FAIL, check.__name__.removeprefix("check_").replace("_", " "),
                          f"cannot use {error.filename or 'a file'}: {error.strerror or error}"
                          f" (this user is uid {os.getuid()})")
