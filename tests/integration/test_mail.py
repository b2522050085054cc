"""Sending through a real SMTP server (tests/services/smtp.py): TLS, sign-in, refusals, reuse, outages, the CLI."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.mail import MailDisabled, MailError, Mailer, build_message
from appliance.settings import MailSettings, SettingsError, load_settings
from tests.services.slapd import TestCA
from tests.services.smtp import Security, SmtpServer

SENDER = "consultation@example.org"
TO = "alice@example.org"
USERNAME, PASSWORD = "appliance", "relay-pass-1"

StartServer = Callable[..., SmtpServer]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("mail-ca"))


@pytest.fixture(scope="module")
def certificate(ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ca.server_cert(tmp_path_factory.mktemp("relay"))


@pytest.fixture
def start_server(certificate: tuple[Path, Path]) -> Iterator[StartServer]:
    """Starts SmtpServers for one test (security first, then SmtpServer's options) and stops them after it."""
    servers: list[SmtpServer] = []

    def start(security: Security = "none", **options: str) -> SmtpServer:
        server = SmtpServer(security, certificate=None if security == "none" else certificate, **options)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def settings_for(ca: TestCA) -> Callable[..., MailSettings]:
    """MailSettings that reach a server, trusting the test CA; keyword arguments override."""

    def make(server: SmtpServer, **overrides: object) -> MailSettings:
        values = {"enabled": True, "host": server.host, "port": server.port, "security": server.security,
                  "ca_file": ca.ca_file, "from_address": SENDER, "from_name": "Staff consultation",
                  "timeout_seconds": 2} | overrides
        return MailSettings(**values)

    return make


def message(settings: MailSettings, subject: str = "Your voice counts", to: str = TO) -> EmailMessage:
    return build_message(to, subject, "Vote here: https://consult.example.org/r/1",
                         '<p>Vote <a href="https://consult.example.org/r/1">here</a></p>', settings=settings)


def send_error(settings: MailSettings, to: str = TO) -> MailError:
    with pytest.raises(MailError) as raised:
        Mailer(settings).send(message(settings, to=to))
    return raised.value


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Sending -------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_it_delivers_over_plain_smtp_starttls_and_implicit_tls(security, start_server, settings_for):
    server = start_server(security)
    Mailer(settings_for(server)).send(message(settings_for(server)))
    [received] = server.messages
    assert (received.sender, received.recipients) == (SENDER, (TO,))
    assert received.message["Subject"] == "Your voice counts"


def test_a_message_has_a_text_and_an_html_part_from_the_named_sender(start_server, settings_for):
    server = start_server()
    settings = settings_for(server, reply_to="hr@example.org")
    Mailer(settings).send(build_message(TO, "Hello", "Plain words", "<p>Rich words</p>", settings=settings,
                                        to_name="Alice Martin"))
    received = server.messages[0].message
    assert received.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in received.iter_parts()] == ["text/plain", "text/html"]
    assert received.get_body(("plain",)).get_content().strip() == "Plain words"
    assert received.get_body(("html",)).get_content().strip() == "<p>Rich words</p>"
    assert received["From"] == f"Staff consultation <{SENDER}>"
    assert received["To"] == f"Alice Martin <{TO}>"
    assert received["Reply-To"] == "hr@example.org"
    assert received["Message-ID"].endswith("@example.org>") and received["Date"]
    assert received["Auto-Submitted"] == "auto-generated"


def test_a_message_without_html_is_plain_text(start_server, settings_for):
    settings = settings_for(start_server())
    built = build_message(TO, "Hello", "Plain words", settings=settings)
    assert built.get_content_type() == "text/plain" and "Reply-To" not in built


@pytest.mark.parametrize("html", [
    '<img src="https://tracker.example.com/pixel.gif">',
    '<link rel="stylesheet" href="https://cdn.example.com/mail.css">',
    '<p style="background: url(https://cdn.example.com/bg.png)">x</p>',
    "<style>@import 'https://fonts.example.com/font.css';</style>",
    '<img srcset="data:image/png;base64,AAAA 1x, https://cdn.example.com/logo.png 2x">',
])
def test_html_that_would_fetch_remote_content_is_refused(html, start_server, settings_for):
    with pytest.raises(ValueError, match="html: refers to '.*example.com"):
        build_message(TO, "Hello", "text", html, settings=settings_for(start_server()))


def test_embedded_images_and_links_are_not_remote_content(start_server, settings_for):
    html = '<a href="https://consult.example.org"><img src="cid:logo" alt=""><img src="data:image/png;base64,AA,A"></a>'
    assert build_message(TO, "Hello", "text", html, settings=settings_for(start_server()))


def test_a_malformed_recipient_is_refused_before_sending(start_server, settings_for):
    with pytest.raises(ValueError, match="to: 'alice' is not an email address"):
        build_message("alice", "Hello", "text", settings=settings_for(start_server()))


# --- TLS and sign-in -----------------------------------------------------------------


@pytest.mark.parametrize("security", ["starttls", "tls"])
@pytest.mark.parametrize("trust", ["system", "wrong_ca"])
def test_an_untrusted_certificate_is_a_tls_error_that_points_to_ca_file(security, trust, ca, start_server,
                                                                        settings_for):
    server = start_server(security)
    error = send_error(settings_for(server, ca_file=None if trust == "system" else ca.wrong_ca_file))
    assert error.kind == "tls" and not error.temporary
    assert f"the certificate of 127.0.0.1:{server.port} is not trusted" in error.message
    assert "mail.ca_file" in error.message
    assert server.messages == []


def test_a_ca_file_that_holds_no_certificate_is_a_tls_error(start_server, settings_for):
    Path("ca.pem").write_text("not a certificate\n", encoding="utf-8")
    error = send_error(settings_for(start_server("tls"), ca_file="ca.pem"))
    assert error.kind == "tls"
    assert error.message.startswith("mail.ca_file ca.pem: not a readable PEM certificate")


def test_a_relay_without_starttls_is_a_tls_error(start_server, settings_for):
    server = start_server("none")
    error = send_error(settings_for(server, security="starttls"))
    assert error.kind == "tls"
    assert "does not offer STARTTLS" in error.message


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_it_signs_in_with_the_username_and_password(security, start_server, settings_for):
    server = start_server(security, username=USERNAME, password=PASSWORD)
    Mailer(settings_for(server, username=USERNAME, password=PASSWORD)).send(message(settings_for(server)))
    assert server.messages[0].login == USERNAME


def test_a_wrong_password_is_a_permanent_auth_error(start_server, settings_for):
    server = start_server("starttls", username=USERNAME, password=PASSWORD)
    error = send_error(settings_for(server, username=USERNAME, password="wrong"))
    assert error.kind == "auth" and not error.temporary
    assert " answered 535 " in error.message and "check mail.username and mail.password" in error.message
    assert "wrong" not in error.message
    assert server.messages == []


def test_a_username_for_a_relay_that_offers_no_sign_in_is_an_auth_error(start_server, settings_for):
    error = send_error(settings_for(start_server(), username=USERNAME, password=PASSWORD))
    assert error.kind == "auth" and "offers no sign-in (AUTH)" in error.message


# --- Failures ------------------------------------------------------------------------


def test_nothing_listening_is_a_temporary_connection_error():
    port = closed_port()
    settings = MailSettings(enabled=True, host="127.0.0.1", port=port, security="none", from_address=SENDER)
    error = send_error(settings)
    assert error.kind == "connection" and error.temporary
    assert error.message.startswith(f"nothing accepts connections on 127.0.0.1:{port}: check mail.host and mail.port")


def test_a_relay_that_never_answers_is_a_timeout():
    with socket.socket() as silent:  # accepts connections (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings = MailSettings(enabled=True, host="127.0.0.1", port=silent.getsockname()[1], security="none",
                                from_address=SENDER, timeout_seconds=0.3)
        error = send_error(settings)
    assert error.kind == "timeout" and error.temporary
    assert "did not answer within 0.3 s" in error.message and "mail.security" in error.message


def test_a_refused_recipient_is_named_and_the_connection_goes_on(start_server, settings_for):
    server = start_server()
    server.refusals["nobody@example.org"] = "550 5.1.1 no such user"
    settings = settings_for(server)
    with Mailer(settings).connection() as smtp:
        with pytest.raises(MailError) as raised:
            smtp.send(message(settings, to="nobody@example.org"))
        smtp.send(message(settings))
    error = raised.value
    assert error.kind == "refused_recipient" and not error.temporary
    assert error.refused == ("nobody@example.org",)
    assert "refuses the recipient nobody@example.org" in error.message and "550 5.1.1 no such user" in error.message
    assert [received.recipients for received in server.messages] == [(TO,)]
    assert server.connections == 1


def test_a_451_refusal_is_temporary(start_server, settings_for):
    server = start_server()
    server.refusals[TO] = "451 4.3.0 mailbox busy, try later"
    error = send_error(settings_for(server))
    assert error.kind == "refused_recipient" and error.temporary


def test_a_refused_sender_is_named(start_server, settings_for):
    server = start_server()
    server.refusals[SENDER] = "553 5.7.1 sender not allowed"
    error = send_error(settings_for(server))
    assert error.kind == "refused_sender" and not error.temporary
    assert f"refuses the sender {SENDER}" in error.message and "mail.from_address" in error.message


def test_a_relay_that_wants_a_sign_in_says_so(start_server, settings_for):
    server = start_server("starttls", username=USERNAME, password=PASSWORD)
    error = send_error(settings_for(server))
    assert error.kind == "auth" and " answered 530 " in error.message
    assert "set mail.username and mail.password" in error.message


def test_a_relay_that_wants_starttls_says_so(start_server, settings_for):
    server = start_server("starttls")
    error = send_error(settings_for(server, security="none"))
    assert error.kind == "tls" and error.message.endswith(': set mail.security = "starttls"')


def test_some_recipients_refused_are_named_and_the_others_get_the_message(start_server, settings_for):
    server = start_server()
    server.refusals["nobody@example.org"] = "550 5.1.1 no such user"
    settings = settings_for(server)
    two = message(settings)
    two["Cc"] = "nobody@example.org"
    with pytest.raises(MailError) as raised:
        Mailer(settings).send(two)
    assert raised.value.refused == ("nobody@example.org",)
    assert raised.value.message.endswith("; the other recipients got the message")
    assert [received.recipients for received in server.messages] == [(TO,)]


# --- One connection, outages ---------------------------------------------------------


def test_one_connection_carries_fifty_messages(start_server, settings_for):
    server = start_server("starttls", username=USERNAME, password=PASSWORD)
    settings = settings_for(server, username=USERNAME, password=PASSWORD)
    with Mailer(settings).connection() as smtp:
        for n in range(50):
            smtp.send(message(settings, subject=f"Invitation {n}"))
    assert server.connections == 1
    assert [received.message["Subject"] for received in server.messages] == [f"Invitation {n}" for n in range(50)]


def test_it_connects_again_when_the_relay_restarted_between_messages(start_server, settings_for):
    server = start_server("tls")
    settings = settings_for(server)
    with Mailer(settings).connection() as smtp:
        smtp.send(message(settings, subject="before"))
        server.restart()
        smtp.send(message(settings, subject="after"))
    assert [received.message["Subject"] for received in server.messages] == ["before", "after"]
    assert server.connections == 2


def test_a_relay_that_stays_down_is_a_temporary_connection_error(start_server, settings_for):
    server = start_server()
    settings = settings_for(server)
    with Mailer(settings).connection() as smtp:
        smtp.send(message(settings))
        server.stop()
        with pytest.raises(MailError) as raised:
            smtp.send(message(settings))
    assert raised.value.kind == "connection" and raised.value.temporary


def test_a_mailer_refuses_to_exist_while_mail_is_disabled():
    with pytest.raises(MailDisabled, match="mail is not enabled"):
        Mailer(MailSettings())


# --- appliance mail test ---------------------------------------------------------------


def configure(monkeypatch: pytest.MonkeyPatch, **mail: object) -> None:
    """Each setting as an APPLIANCE_MAIL__KEY variable, the way an operator would give it."""
    for key, value in mail.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        monkeypatch.setenv(f"APPLIANCE_MAIL__{key.upper()}", text)


def test_mail_test_sends_a_text_and_html_message_and_says_through_which_relay(start_server, ca, monkeypatch, capsys):
    server = start_server("starttls", username=USERNAME, password=PASSWORD)
    Path("relay-password").write_text(PASSWORD + "\n", encoding="utf-8")
    configure(monkeypatch, enabled=True, host=server.host, port=server.port, ca_file=ca.ca_file,
              username=USERNAME, password_file="relay-password", from_address=SENDER)
    assert main(["mail", "test", "it@example.org"]) == 0
    out, err = capsys.readouterr()
    assert out == f"sent a test message to it@example.org through 127.0.0.1:{server.port} (starttls)\n"
    assert err == ""
    [received] = server.messages
    assert received.recipients == ("it@example.org",) and received.login == USERNAME
    assert {part.get_content_type() for part in received.message.iter_parts()} == {"text/plain", "text/html"}


def test_mail_test_refuses_while_mail_is_not_enabled(capsys):
    assert main(["mail", "test", "it@example.org"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("appliance: mail is not enabled, so the appliance sends no email: set mail.enabled = true"
                   " (APPLIANCE_MAIL__ENABLED=true) and at least mail.host and mail.from_address\n")


def test_mail_test_names_a_missing_setting(monkeypatch, capsys):
    configure(monkeypatch, enabled=True, host="relay.example.org")
    assert main(["mail", "test", "it@example.org"]) == 2
    assert capsys.readouterr().err == ("appliance: setting mail.from_address (APPLIANCE_MAIL__FROM_ADDRESS): required"
                                       " when mail.enabled is true\n")


def test_mail_test_explains_a_failure_in_one_line(monkeypatch, capsys):
    port = closed_port()
    configure(monkeypatch, enabled=True, host="127.0.0.1", port=port, security="none", from_address=SENDER)
    assert main(["mail", "test", "it@example.org"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"appliance: mail test failed (connection): nothing accepts connections on 127.0.0.1:{port}:"
                   " check mail.host and mail.port, and that the relay is running (trying again later may work)\n")


def test_mail_test_refuses_a_malformed_address(monkeypatch, capsys):
    configure(monkeypatch, enabled=True, host="127.0.0.1", security="none", from_address=SENDER)
    assert main(["mail", "test", "not an address"]) == 1
    assert capsys.readouterr().err.startswith("appliance: to: 'not an address' is not an email address")


# --- Settings --------------------------------------------------------------------------


def mail_error(**mail: object) -> str:
    with pytest.MonkeyPatch.context() as patch:
        configure(patch, **mail)
        with pytest.raises(SettingsError) as raised:
            load_settings()
    return str(raised.value)


def test_mail_is_off_by_default_and_the_port_follows_security(monkeypatch):
    assert load_settings().mail.enabled is False
    for security, port in (("none", 25), ("starttls", 587), ("tls", 465)):
        monkeypatch.setenv("APPLIANCE_MAIL__SECURITY", security)
        assert load_settings().mail.port == port
    monkeypatch.setenv("APPLIANCE_MAIL__PORT", "2525")
    assert load_settings().mail.port == 2525


@pytest.mark.parametrize("mail, expected", [
    ({"enabled": True}, "setting mail.host (APPLIANCE_MAIL__HOST): required when mail.enabled is true"),
    ({"enabled": True, "host": "relay"},
     "setting mail.from_address (APPLIANCE_MAIL__FROM_ADDRESS): required when mail.enabled is true"),
    ({"from_address": "consultation"},
     "setting mail.from_address (APPLIANCE_MAIL__FROM_ADDRESS): 'consultation' is not an email address"),
    ({"reply_to": "hr at example.org"}, "setting mail.reply_to (APPLIANCE_MAIL__REPLY_TO): 'hr at example.org'"),
    ({"password": "secret"}, "setting mail.username (APPLIANCE_MAIL__USERNAME): required with mail.password"),
    ({"username": "appliance"}, "setting mail.password (APPLIANCE_MAIL__PASSWORD): required with mail.username"),
    ({"host": "relay.example.org", "security": "none", "username": "appliance", "password": "secret"},
     'setting mail.security (APPLIANCE_MAIL__SECURITY): "none" would send the password of mail.username in clear'
     " text to relay.example.org"),
    ({"host": "relay.example.org:25"}, "setting mail.host (APPLIANCE_MAIL__HOST): 'relay.example.org:25' is not"),
    ({"security": "ssl"}, "setting mail.security (APPLIANCE_MAIL__SECURITY): Input should be 'none', 'starttls'"),
    ({"ca_file": "missing.pem"}, "setting mail.ca_file (APPLIANCE_MAIL__CA_FILE): no such file: missing.pem"),
    ({"timeout_seconds": "0"}, "setting mail.timeout_seconds (APPLIANCE_MAIL__TIMEOUT_SECONDS): "),
])
def test_a_bad_mail_setting_is_named(mail, expected):
    message = mail_error(**mail)
    assert message.startswith(expected)
    assert "\n" not in message


@pytest.mark.parametrize("host, allow", [("relay.example.org", True), ("localhost", False), ("127.0.0.1", False),
                                         ("::1", False)])
def test_clear_text_sign_in_is_allowed_on_this_machine_or_when_asked_for(host, allow, monkeypatch):
    configure(monkeypatch, host=host, security="none", username="appliance", password="secret",
              allow_plaintext_auth=allow)
    assert load_settings().mail.username == "appliance"


def test_the_relay_password_can_come_from_a_file(monkeypatch):
    Path("relay-password").write_text("s3cret\n", encoding="utf-8")
    configure(monkeypatch, username="appliance", password_file="relay-password")
    settings = load_settings()
    assert settings.mail.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_mail_queue_shows_what_waits_and_what_failed(make_settings, monkeypatch, capsys):
    from appliance.cli import main
    from appliance.services.context import build_appliance
    from appliance.storage import outbox

    app = build_appliance(make_settings())
    app.dbs.identity.execute("INSERT INTO outbox (key, recipient, subject, message, status, attempts, next_attempt_at,"
                             " last_error, created_at) VALUES ('k1', 'ann@example.org', 'Weekly digest', x'', 'failed',"
                             " 8, 0, 'connection: the relay did not answer', 0)")
    app.dbs.identity.conn.commit()
    assert outbox.count_failed(app.dbs.identity) == 1
    app.close()
    assert main(["mail", "queue"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "0 message(s) waiting, 1 failed (the latest shown)"
    assert out[1] == "failed after 8 attempt(s): ann@example.org  Weekly digest"
    assert out[2] == "    connection: the relay did not answer"
