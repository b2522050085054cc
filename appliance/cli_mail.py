"""`appliance mail test ADDRESS`: send one message through the configured relay, or say what to fix;
`mail queue`, `mail retry` and `mail drop`: what waits, what was given up on, and sending that again or
deleting it."""

from __future__ import annotations

import argparse

from appliance.settings import load_settings

SUBJECT = "Test message from the consultation appliance"
TEXT = """\
This message was sent with `appliance mail test` to check the mail settings.

Relay: {relay}
Sender: {sender}

Invitations, reminders and result digests will be sent the same way.
Nothing needs to be done with this message.
"""
HTML = """\
<p>This message was sent with <code>appliance mail test</code> to check the mail settings.</p>
<p>Relay: {relay}<br>Sender: {sender}</p>
<p>Invitations, reminders and result digests will be sent the same way.
Nothing needs to be done with this message.</p>
"""


def add_mail_commands(commands: argparse._SubParsersAction) -> None:
    mail = commands.add_parser("mail", help="outgoing mail: test the relay, see the queue, send again or delete what"
                                            " failed")
    mail_commands = mail.add_subparsers(title="mail commands", metavar="COMMAND", required=True)
    test = mail_commands.add_parser("test", help="send a test message through the relay")
    test.add_argument("address", metavar="ADDRESS", help="the address to send the test message to")
    test.set_defaults(run=run_mail_test)
    queue = mail_commands.add_parser("queue", help="show how many messages wait, and those given up on")
    queue.add_argument("--limit", type=int, default=20, help="how many failed messages to list (default 20)")
    queue.set_defaults(run=run_mail_queue)
    retry = mail_commands.add_parser(
        "retry", help="send the messages given up on again (once the relay's problem is fixed: mail test first)")
    retry.set_defaults(run=run_mail_retry)
    drop = mail_commands.add_parser(
        "drop", help="delete the messages given up on, for good (an address that no longer exists)")
    drop.set_defaults(run=run_mail_drop)


def run_mail_queue(args: argparse.Namespace) -> int:
    from appliance.cli import open_appliance
    from appliance.services.outbox import outbox_state

    with open_appliance() as app:
        state = outbox_state(app.dbs.identity, args.limit)
    print(f"{state.waiting} message(s) waiting, {state.failed} failed{' (the latest shown)' if state.failed else ''}")
    for message in state.latest_failures:
        print(f"failed after {message.attempts} attempt(s): {message.recipient}  {message.subject}\n"
              f"    {message.last_error}")
    return 0


def run_mail_retry(args: argparse.Namespace) -> int:
    from appliance.cli import open_appliance
    from appliance.storage.outbox import retry_failed

    with open_appliance() as app:
        count = retry_failed(app.dbs.identity, int(app.clock().timestamp()))
        enabled = app.settings.mail.enabled
    if not count:
        print("no message was given up on: nothing to send again")
    elif enabled:
        print(f"{count} message(s) given up on are queued again: the running appliance sends them within a minute"
              " (see `appliance mail queue`)")
    else:
        print(f"{count} message(s) given up on are queued again; mail is off, so they wait until it is switched on")
    return 0


def run_mail_drop(args: argparse.Namespace) -> int:
    from appliance.cli import open_appliance
    from appliance.storage.outbox import drop_failed

    with open_appliance() as app:
        count = drop_failed(app.dbs.identity)
    print(f"{count} message(s) given up on deleted" if count else "no message was given up on: nothing to delete")
    return 0


def run_mail_test(args: argparse.Namespace) -> int:
    from html import escape

    from appliance.cli import CommandError
    from appliance.mail import MailDisabled, MailError, Mailer, build_message

    settings = load_settings().mail
    try:
        mailer = Mailer(settings)
        details = {"relay": mailer.relay, "sender": settings.from_address}
        html = HTML.format(**{key: escape(value) for key, value in details.items()})
        message = build_message(args.address, SUBJECT, TEXT.format(**details), html, settings=settings)
    except (MailDisabled, ValueError) as error:
        raise CommandError(str(error)) from None
    try:
        mailer.send(message)
    except MailError as error:
        later = "trying again later may work" if error.temporary else "trying again will not help until this is fixed"
        raise CommandError(f"mail test failed ({error.kind}): {error} ({later})") from None
    print(f"sent a test message to {args.address} through {mailer.relay}")
    return 0
