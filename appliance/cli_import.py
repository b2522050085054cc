"""`appliance import polis DIR`: a consultation held elsewhere, imported as a closed round."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.cli import CommandError, open_appliance


def add_import_commands(commands: argparse._SubParsersAction) -> None:
    importer = commands.add_parser("import", help="import a consultation held elsewhere as a closed round")
    sources = importer.add_subparsers(title="sources", metavar="SOURCE", required=True)
    polis = sources.add_parser(
        "polis", help="import a Polis conversation export (comments.csv plus votes.csv or participants-votes.csv)")
    polis.add_argument("directory", metavar="DIR", type=Path, help="the folder of the export's CSV files")
    polis.add_argument("--title", help="the round's title (default: summary.csv's topic, else the folder name)")
    polis.add_argument("--k", type=int, help="the round's anonymity threshold (default: rounds.default_k)")
    polis.add_argument("--with-groups", action="store_true",
                       help="store Polis's opinion groups (participants-votes.csv group-id) as dimension polis_group")
    polis.add_argument("--audience", action="append", metavar="GROUP",
                       help="a directory group that sees the round and is mailed when it is published"
                            " (repeatable; default: the administrators' groups, directory.admin_groups)")
    polis.set_defaults(run=run_import_polis)


def run_import_polis(args: argparse.Namespace) -> int:
    from appliance.directory import DirectoryUnavailable
    from appliance.domain.errors import Invalid
    from appliance.services.polis_import import PolisExportError, read_export, store_export

    try:
        export = read_export(args.directory, args.with_groups)  # checked before the data directory is touched
        with open_appliance() as app:
            report = store_export(app, "cli", export, args.title, args.k, args.audience)
    except (PolisExportError, Invalid) as error:
        raise CommandError(str(error)) from None
    except DirectoryUnavailable as error:
        raise CommandError(f"--audience: the directory cannot be reached to check the groups ({error})") from None
    replaced = f" ({report.replaced} earlier votes replaced by a later one)" if report.replaced else ""
    print(f"imported round {report.round_id} \"{report.title}\": {report.accepted} proposals accepted,"
          f" {report.refused} refused; {report.voters} voters, {report.votes} votes{replaced};"
          f" seen by {', '.join(report.audience) or 'everyone in the directory'}")
    return 0
