"""`appliance backup | restore | doctor | bootstrap`: day-2 operations of an installed appliance."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path

from appliance.cli import CommandError, open_appliance
from appliance.settings import SettingsError, load_settings

ADMIN_PASSWORD_FILE = "APPLIANCE_ADMIN_PASSWORD_FILE"
ADMIN_USERNAME = "APPLIANCE_ADMIN_USERNAME"


def add_ops_commands(commands: argparse._SubParsersAction) -> None:
    backup = commands.add_parser("backup", help="copy both databases into a new directory, while serving")
    backup.add_argument("path", metavar="PATH", type=Path, help="a new (or empty) directory for the backup")
    backup.add_argument("--with-keys", action="store_true",
                        help="also copy the key files of open rounds (whoever holds the backup can then link"
                             " their votes to people, with the instance secret)")
    backup.set_defaults(run=run_backup)

    restore = commands.add_parser("restore", help="put a backup back in place (the appliance stopped)")
    restore.add_argument("path", metavar="PATH", type=Path, help="a directory made by `appliance backup`")
    restore.add_argument("--force", action="store_true", help="replace the databases already in storage.data_dir")
    restore.set_defaults(run=run_restore)

    commands.add_parser("close-keyless-rounds", help="close the open rounds whose key file is lost (a backup"
                        " restored without keys), then exit").set_defaults(run=run_close_keyless_rounds)
    commands.add_parser("doctor", help="check configuration, storage, keys, directory and mail").set_defaults(
        run=run_doctor)
    commands.add_parser("bootstrap", help="migrate, and give an empty appliance its first admin (containers)"
                        ).set_defaults(run=run_bootstrap)
    commands.add_parser("healthcheck", help="exit 0 when the server on this machine answers /healthz"
                        ).set_defaults(run=run_healthcheck)


def run_backup(args: argparse.Namespace) -> int:
    from appliance.ops.backups import BackupError, make_backup

    def stopped(signum: int, _frame: object) -> None:  # a stopped job: the half-written backup is removed
        raise SystemExit(128 + signum)

    stops = (signal.SIGTERM, signal.SIGHUP)  # a stopped job, a closed terminal (Ctrl-C is KeyboardInterrupt)
    previous = {signum: signal.signal(signum, stopped) for signum in stops}
    try:
        report = make_backup(load_settings(), args.path, with_keys=args.with_keys)
    except BackupError as error:
        raise CommandError(str(error)) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(f"backup written to {report.path}: {', '.join(report.files)}")
    missing = len(report.open_rounds) - len(report.keys)
    if report.open_rounds and not args.with_keys:
        print(f"{len(report.open_rounds)} open round(s), without their keys: restored from this backup, they can"
              " only be closed with the votes they have (`appliance close-keyless-rounds` before the first start);"
              " add --with-keys to keep them open")
    elif missing:
        print(f"{missing} open round(s) had no key file to copy: restored, they are closed with the votes they have")
    if report.keys:
        print(f"round keys of {len(report.keys)} open round(s) included: keep this backup as safe as the keys")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from appliance.ops.backups import BackupError, restore_backup
    from appliance.services.scheduler import SchedulerLock, lock_path

    settings = load_settings()
    lock = SchedulerLock(lock_path(settings))  # held throughout: no scheduler, no second restore meanwhile
    if settings.storage.data_dir.is_dir() and not lock.acquire():  # a new data directory is nobody's yet
        raise CommandError(f"the appliance is running on {settings.storage.data_dir}: stop it, then restore")
    try:
        report = restore_backup(settings, args.path, replace=args.force)
    except BackupError as error:
        raise CommandError(str(error)) from None
    finally:
        lock.release()
    print(f"restored {', '.join(report.files)} into {report.path}")
    keyless = len(report.open_rounds) - len(report.keys)
    if keyless:
        print(f"{keyless} open round(s) have no key file in {settings.storage.round_keys_dir}: they cannot take votes;"
              " run `appliance close-keyless-rounds` once to close them with the votes they have")
    print("start the appliance: pending migrations are applied at start")
    return 0


def run_close_keyless_rounds(_: argparse.Namespace) -> int:
    """Once, the appliance stopped: close the open rounds whose key is lost, as `serve --close-keyless-rounds` did."""
    from appliance.services.rounds import StartupRefused, reconcile_keys
    from appliance.services.scheduler import held_elsewhere, lock_path
    from appliance.storage.rounds import list_rounds

    settings = load_settings()
    if held_elsewhere(lock_path(settings)):
        raise CommandError(f"the appliance is running on {settings.storage.data_dir}: stop it, then close the rounds")
    with open_appliance() as app:
        keyless = [r for r in list_rounds(app.dbs.ballots) if r.status == "open" and app.round_key(r.id) is None]
        try:
            reconcile_keys(app, close_keyless=True)
        except StartupRefused as error:
            raise CommandError(str(error)) from None
        still_open = {r.id for r in list_rounds(app.dbs.ballots) if r.status == "open"}
    closed = [r for r in keyless if r.id not in still_open]
    for round_ in closed:
        print(f"closed round {round_.id} ({round_.title}): no key file in {app.keys_dir}")
    if not closed:
        print(f"no open round lacks its key file in {app.keys_dir}: nothing closed")
    return 0


def run_doctor(_: argparse.Namespace) -> int:
    from appliance.ops.doctor import FAIL, OK, WARN, run_checks
    from appliance.settings import config_path

    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"{FAIL:<5} configuration: {error}")
        return 1
    source = config_path().resolve() if config_path().is_file() else "defaults and environment"
    print(f"{OK:<5} configuration: {source}")
    counts = {OK: 1, WARN: 0, FAIL: 0}
    for finding in run_checks(settings):
        counts[finding.status] += 1
        print(f"{finding.status:<5} {finding.subject}: {finding.message}", flush=True)
    if counts[FAIL]:
        print(f"{counts[FAIL]} check(s) failed, {counts[WARN]} warning(s)")
        return 1
    print(f"all checks passed{f', {counts[WARN]} warning(s)' if counts[WARN] else ''}")
    return 0


def run_bootstrap(_: argparse.Namespace) -> int:
    from appliance.logs import configure_logging
    from appliance.ops.first_admin import FirstAdminError, create_first_admin

    password_file = os.environ.get(ADMIN_PASSWORD_FILE, "")
    username = os.environ.get(ADMIN_USERNAME, "").strip() or "admin"
    configure_logging(load_settings().logging, force=True)  # what it says joins the server's log, in its format
    log = logging.getLogger("appliance")
    with open_appliance(quiet_if_new=True) as app:  # creates and migrates the databases (the first start)
        try:
            said = create_first_admin(app, username, Path(password_file) if password_file else None)
        except FirstAdminError as error:
            raise CommandError(str(error)) from None
    (log.warning if said.startswith("no admin") else log.info)("%s", said)
    return 0


def run_healthcheck(_: argparse.Namespace) -> int:
    """For Docker's HEALTHCHECK: no curl in the image, and the port and TLS come from the settings."""
    import ssl
    import urllib.request

    server = load_settings().server
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host
    scheme = "https" if server.tls_certificate_file else "http"
    # The certificate names the public host, not 127.0.0.1: this check only asks whether the process answers.
    context = ssl._create_unverified_context() if scheme == "https" else None
    url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{server.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as response:
            healthy = response.status == 200
    except OSError as error:
        raise CommandError(f"{url}: {error}") from None
    return 0 if healthy else 1
