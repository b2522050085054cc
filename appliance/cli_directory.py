"""`appliance ldap check` and `appliance directory sync`."""

from __future__ import annotations

import argparse

from appliance.settings import load_settings


def add_directory_commands(commands: argparse._SubParsersAction) -> None:
    ldap = commands.add_parser("ldap", help="check the LDAP / Active Directory configuration")
    ldap_commands = ldap.add_subparsers(title="ldap commands", metavar="COMMAND", required=True)
    check = ldap_commands.add_parser(
        "check", help="connect, check TLS and the service account, find a person and their groups")
    check.add_argument("--user", metavar="NAME", help="also find this person and show their groups, roles and"
                                                       " segment attributes")
    check.set_defaults(run=run_ldap_check)

    directory = commands.add_parser("directory", help="directory tasks")
    directory_commands = directory.add_subparsers(title="directory commands", metavar="COMMAND", required=True)
    directory_commands.add_parser(
        "sync", help="count each draft and open round's audience now; store open rounds' headcounts"
    ).set_defaults(run=run_directory_sync)


def run_ldap_check(args: argparse.Namespace) -> int:
    from appliance.cli import CommandError
    from appliance.directory.ldap.check import FAIL, check

    settings = load_settings()
    missing = settings.ldap.missing()
    if missing:
        raise CommandError(f"ldap.{missing[0]} is not set: fill in the [ldap] section first"
                           " (examples: config/ldap-*.example.toml)")
    failed = False
    for finding in check(settings, args.user):
        failed = failed or finding.level == FAIL
        print(f"{finding.level:<5} {finding.subject}: {finding.detail}", flush=True)
    if settings.directory.kind != "ldap":
        print("note: directory.kind is not \"ldap\": people do not sign in through LDAP yet")
    print("some checks FAILED" if failed else "all checks passed")
    return 1 if failed else 0


def run_directory_sync(_: argparse.Namespace) -> int:
    from appliance.cli import CommandError, open_appliance
    from appliance.directory import DirectoryUnavailable
    from appliance.services.rounds import sync_headcounts

    with open_appliance() as app:
        try:
            report = sync_headcounts(app)
        except DirectoryUnavailable as error:
            raise CommandError(f"directory unreachable: {error}") from None
    if not report:
        print("no draft or open round: nothing to count")
    for line in report:
        what = "headcounts stored" if line.status == "open" else "would be invited at open"
        print(f"{line.status:<5} {line.round_id}  {line.title}: {line.members} people in the audience ({what})")
    return 0
