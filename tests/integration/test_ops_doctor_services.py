"""`appliance doctor` against a real directory (slapd) and a real mail relay (aiosmtpd)."""

from __future__ import annotations

import json

import pytest

from appliance.cli import main
from tests.conftest import ldap_sections
from tests.services.smtp import SmtpServer


def set_sections(monkeypatch: pytest.MonkeyPatch, sections: dict[str, dict]) -> None:
    """Settings given as APPLIANCE_<SECTION>__<KEY> variables, as in a container."""
    for section, values in sections.items():
        for key, value in values.items():
            text = json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)
            monkeypatch.setenv(f"APPLIANCE_{section.upper()}__{key.upper()}", text)


def doctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    assert main(["init"]) == 0
    capsys.readouterr()
    return main(["doctor"]), capsys.readouterr().out


def test_doctor_finds_the_directory_answering(slapd, ldap_ca, monkeypatch, capsys):
    set_sections(monkeypatch, ldap_sections(slapd, ldap_ca))
    status, out = doctor(monkeypatch, capsys)
    assert status == 0, out
    assert f"ok    directory: LDAP answers ({slapd.url}); local admins: 0" in out


def test_doctor_fails_on_a_refused_service_account(slapd, ldap_ca, monkeypatch, capsys):
    set_sections(monkeypatch, ldap_sections(slapd, ldap_ca, bind_password="not-the-service-secret"))
    status, out = doctor(monkeypatch, capsys)
    assert status == 1
    assert "fail  directory: LDAP cannot be used:" in out and "appliance ldap check" in out


def test_doctor_reaches_the_mail_relay_and_sends_nothing(monkeypatch, capsys):
    with SmtpServer("none") as relay:
        set_sections(monkeypatch, {"mail": relay.mail_settings("consult@example.org")})
        status, out = doctor(monkeypatch, capsys)
        assert status == 0, out
        assert f"ok    mail: the relay {relay.host}:{relay.port} (none) accepts the connection" in out
        assert relay.messages == []


def test_doctor_fails_when_the_mail_relay_is_down(monkeypatch, capsys):
    with SmtpServer("none") as relay:
        mail = relay.mail_settings("consult@example.org", timeout_seconds=2)
    set_sections(monkeypatch, {"mail": mail})
    status, out = doctor(monkeypatch, capsys)
    assert status == 1
    assert f"fail  mail: {mail['host']}:{mail['port']} (none):" in out
