"""The `appliance` command: serve, init, migrate, demo, user ..., ldap check, directory sync."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import select
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from appliance import __version__
from appliance.domain.errors import DomainError
from appliance.settings import ENV_PREFIX, SettingsError, config_path, load_settings

if TYPE_CHECKING:
    from appliance.services.context import Appliance

MIN_PASSWORD_CHARS = 10


class CommandError(Exception):
    """A user mistake on the command line; the message says what to do."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit status 0 on success, 1 on a refused command, 2 on bad settings."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    global created_data_dir
    created_data_dir = None
    try:
        status = args.run(args) or 0
        sys.stdout.flush()  # here, where a reader gone (a pipe to `head`) is handled, not at exit
        if created_data_dir is not None and status == 0:
            print(f"appliance: created the data directory {created_data_dir}, which did not exist (storage.data_dir,"
                  " relative to the current directory unless absolute)", file=sys.stderr)
        return status
    except SettingsError as error:
        print(f"appliance: {error}", file=sys.stderr)
        return 2
    except CommandError as error:
        print(f"appliance: {error}", file=sys.stderr)
        return 1
    except DomainError as error:  # a rule a command did not check first: refused, in one line
        print(f"appliance: {' '.join(str(error).split()) or error.title}", file=sys.stderr)
        return 1
    except BrokenPipeError as error:
        if not _reader_gone():  # a connection closed by its server, say: an error like any other
            print(_os_error_line(error), file=sys.stderr)
            return 1
        devnull = os.open(os.devnull, os.O_WRONLY)  # `appliance user list | head`: the reader has what it wanted
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit, and no second error
        return 141  # as a command killed by SIGPIPE
    except OSError as error:
        print(_os_error_line(error), file=sys.stderr)
        return 1
    except sqlite3.Error as error:
        print(f"appliance: database error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _os_error_line(error: OSError) -> str:
    """One line for a file the command could not use, naming what it is for when that is known."""
    denied = isinstance(error, PermissionError)
    if error.filename and Path(error.filename) == config_path():
        hint = (f" (the configuration file, {ENV_PREFIX}CONFIG: this user is uid {os.getuid()} and must be able to"
                " read it)") if denied else f" (the configuration file, {ENV_PREFIX}CONFIG)"
    elif denied:
        hint = f" (this user is uid {os.getuid()}: check who owns storage.data_dir and its files)"
    elif error.filename and _on_data_dir_path(Path(error.filename)):
        hint = " (storage.data_dir, where the appliance keeps its databases and keys)"
    else:
        hint = ""
    return f"appliance: cannot use {error.filename or 'a file'}: {error.strerror or error}{hint}"


def _on_data_dir_path(path: Path) -> bool:
    """Whether `path` is storage.data_dir, a folder above it, or in it (False when the settings cannot be read)."""
    try:
        data_dir = load_settings().storage.data_dir.absolute()
    except Exception:  # the error being reported is the one to show
        return False
    path = path.absolute()
    return path == data_dir or path in data_dir.parents or data_dir in path.parents


def _reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (poll says so: POLLERR)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no file descriptor (captured output), or no poll here
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description="On-premise engagement-consultation appliance.")
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web application")
    serve.add_argument("--host", help="address to listen on (default: server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (default: server.port)")
    serve.add_argument("--close-keyless-rounds", action="store_true",
                       help="close open rounds whose key files are lost (for a backup restored without keys)")
    serve.set_defaults(run=run_serve)

    commands.add_parser("init", help="create the data directory, databases and instance secret").set_defaults(run=run_init)
    commands.add_parser("migrate", help="apply pending database migrations").set_defaults(run=run_migrate)
    commands.add_parser("demo", help="fill an empty appliance with demo people and rounds").set_defaults(run=run_demo)

    from appliance.cli_directory import add_directory_commands
    from appliance.cli_import import add_import_commands
    from appliance.cli_mail import add_mail_commands
    from appliance.cli_ops import add_ops_commands
    from appliance.cli_users import add_user_commands

    add_user_commands(commands)
    add_directory_commands(commands)
    add_import_commands(commands)
    add_mail_commands(commands)
    add_ops_commands(commands)
    describe_commands(parser)
    return parser


def describe_commands(parser: argparse.ArgumentParser) -> None:
    """Each command's --help opens with what it does, the line the list of commands gives it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            said = {choice.dest: choice.help for choice in action._choices_actions}
            for name, command in action.choices.items():
                if command.description is None and said.get(name):
                    command.description = said[name][0].upper() + said[name][1:] + "."
                describe_commands(command)


created_data_dir: Path | None = None  # set by open_appliance when this command made the data directory


@contextmanager
def open_appliance(quiet_if_new: bool = False) -> Iterator[Appliance]:
    """The appliance opened from the settings (SettingsError names a bad one), closed afterwards.

    A data directory it has to create is said on stderr once the command is done (unless `quiet_if_new`): a
    relative storage.data_dir depends on the current directory, and a command run from elsewhere would otherwise
    quietly start a second, empty appliance. A refused command keeps to its one line.
    """
    from appliance.services.context import build_appliance

    global created_data_dir
    settings = load_settings()
    new = not settings.storage.data_dir.exists()
    app = build_appliance(settings)
    if new and not quiet_if_new:
        created_data_dir = settings.storage.data_dir.resolve()
    try:
        yield app
    finally:
        app.close()


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.host:
        os.environ["APPLIANCE_SERVER__HOST"] = args.host
    if args.port:
        os.environ["APPLIANCE_SERVER__PORT"] = str(args.port)
    from appliance.logs import configure_logging, logging_config
    from appliance.ops.first_admin import local_admins
    from appliance.services.rounds import StartupRefused, reconcile_keys

    settings = load_settings()
    check_address(settings.server.host, settings.server.port)  # before migrations, key checks and the scheduler
    configure_logging(settings.logging, force=True)
    log = logging.getLogger("appliance")
    from appliance.services.scheduler import held_elsewhere, lock_path

    if held_elsewhere(lock_path(settings)):
        log.warning("another appliance serve already runs on %s (it holds its scheduler lock): both answer"
                    " requests, it runs the scheduled jobs and this one takes over if it stops; if that is not"
                    " intended, stop one of them", settings.storage.data_dir.resolve())
    with open_appliance(quiet_if_new=True) as app:  # once, before the workers start: migrations and round keys
        try:
            reconcile_keys(app, close_keyless=args.close_keyless_rounds)
        except StartupRefused as error:
            raise CommandError(str(error)) from None
        storage = app.settings.storage
        log.info("configuration: %s", config_path().resolve() if config_path().is_file() else "defaults and environment")
        log.info("data: %s  round keys: %s", storage.data_dir.resolve(), storage.round_keys_dir.resolve())
        told = os.environ.get(f"{ENV_PREFIX}BOOTSTRAPPED") == "1"  # the container's `appliance bootstrap` did
        if app.settings.directory.kind == "local" and not local_admins(app) and not told:
            group = (app.settings.directory.admin_groups or ["admins"])[0]
            log.warning("no admin yet: create one with `appliance user add admin --group %s`, or stop and load"
                        " people and rounds to try it with `appliance demo`", group)
    scheme = "https" if settings.server.tls_certificate_file else "http"
    log.info("appliance %s serving on %s://%s:%s", __version__, scheme, settings.server.host, settings.server.port)
    uvicorn.run(
        "appliance.app:app_from_environment",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=settings.server.workers,
        proxy_headers=bool(settings.server.trusted_proxies),
        forwarded_allow_ips=settings.server.trusted_proxies or None,
        # The access log would put client addresses beside ballot and proposal requests.
        access_log=False,
        log_level=settings.logging.level,
        log_config=logging_config(settings.logging),
        ssl_certfile=settings.server.tls_certificate_file,
        ssl_keyfile=settings.server.tls_key_file,
        # Requests in flight get 4 s, then running jobs up to 5 s (scheduler stop): within docker stop's 10 s.
        timeout_graceful_shutdown=4,
    )
    return 0


def check_address(host: str, port: int) -> None:
    """Bind host:port as the server will (SO_REUSEADDR on, as uvicorn does), then let go; SettingsError if refused."""
    import errno
    import socket

    setting = f"server.port {port} (APPLIANCE_SERVER__PORT)"
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise SettingsError(f"server.host {host} (APPLIANCE_SERVER__HOST): cannot be resolved: {error.strerror}"
                            " (give an address of this machine, or 0.0.0.0 for all)") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise SettingsError(f"{setting}: address already in use on {address[0]};"
                                        " stop what uses it or choose another port") from None
                if error.errno == errno.EACCES:
                    raise SettingsError(f"{setting}: permission denied on {address[0]}; ports below 1024 need"
                                        " privileges: choose a port above 1023") from None
                raise SettingsError(f"server.host {host} (APPLIANCE_SERVER__HOST): cannot listen on"
                                    f" {address[0]}: {error.strerror or error}") from None


def run_init(_: argparse.Namespace) -> int:
    with open_appliance(quiet_if_new=True) as app:
        storage = app.settings.storage
    print(f"data directory ready: {storage.data_dir.resolve()}")
    print(f"  databases: {storage.identity_db.name}, {storage.ballots_db.name}")
    print(f"  round keys: {storage.round_keys_dir.resolve()}")
    return 0


def run_migrate(_: argparse.Namespace) -> int:
    from appliance.storage.backup import refuse_unfinished_restore
    from appliance.storage.connection import Databases
    from appliance.storage.migrations import apply_migrations

    global created_data_dir
    storage = load_settings().storage
    if not storage.data_dir.exists():  # said once the command is done, as open_appliance says it
        storage.data_dir.mkdir(parents=True, mode=0o700)
        created_data_dir = storage.data_dir.resolve()
    refuse_unfinished_restore(storage.data_dir)
    dbs = Databases(storage.identity_db, storage.ballots_db)
    applied = apply_migrations(dbs.identity, dbs.ballots)
    dbs.close()
    print("applied: " + ", ".join(applied) if applied else "nothing to apply: the databases are up to date")
    return 0


def run_demo(_: argparse.Namespace) -> int:
    from appliance.demo import DemoError, load_demo

    with open_appliance() as app:
        try:
            credentials = load_demo(app)
        except DemoError as error:
            raise CommandError(str(error)) from None
    print("Demo data loaded. These passwords are shown once; write them down.")
    for role, username, password in credentials:
        print(f"  {role:<10} {username:<22} {password}")
    return 0


def read_password(from_stdin: bool) -> str:
    """A new password from stdin (one line) or an interactive prompt typed twice; never from argv."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise CommandError("the two passwords differ")
    if len(password) < MIN_PASSWORD_CHARS:
        raise CommandError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    return password
