"""`appliance ldap check` against a real slapd: each step's plain diagnosis, and `appliance directory sync`.

The commands run in-process (appliance.cli.main), configured the way an
operator would: APPLIANCE_* environment variables, or a TOML file named by
APPLIANCE_CONFIG.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from ldap3 import MOCK_SYNC, Connection, Server

from appliance.cli import main
from appliance.directory.ldap import garbled
from appliance.services.context import build_appliance
from appliance.services.rounds import RoundDraft, create_round
from appliance.settings import load_settings
from tests.conftest import ldap_sections
from tests.services.slapd import PEOPLE_DN

NOBODY_BASE = "ou=nobody,dc=example,dc=org"


def configure(monkeypatch: pytest.MonkeyPatch, sections: dict[str, dict]) -> None:
    """Every setting as an APPLIANCE_SECTION__KEY variable (lists and tables as JSON)."""
    for section, values in sections.items():
        for key, value in values.items():
            text = value if isinstance(value, str) else json.dumps(value)
            monkeypatch.setenv(f"APPLIANCE_{section.upper()}__{key.upper()}", text)


def toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # strings, numbers, booleans and lists of strings are written alike


def write_config(path: Path, sections: dict[str, dict]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def ldap_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    """(exit status, stdout lines, stderr) of `appliance ldap check ARGS`."""
    status = main(["ldap", "check", *args])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def lines_of(lines: list[str], level: str) -> list[str]:
    return [line for line in lines if line.split(" ", 1)[0] == level]


def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- All good ----------------------------------------------------------------------


def test_check_walks_every_step_and_describes_the_person(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca))
    status, lines, err = ldap_check(capsys, "--user", "u12")
    assert status == 0, "\n".join(lines) + err
    out = "\n".join(lines)
    assert not lines_of(lines, "FAIL")
    assert lines[-1] == "all checks passed"
    transport = lines[0]
    assert transport.startswith("ok ") and "StartTLS TLSv1." in transport
    assert "certificate CN=localhost issued by CN=Appliance Test CA" in transport and transport.endswith("verified")
    assert "service account cn=appliance,ou=services,dc=example,dc=org bound" in out
    assert f"ok    ldap.user_search_base: {PEOPLE_DN} exists" in lines
    assert "ok    ldap.group_search_base: ou=groups,dc=example,dc=org exists" in lines
    assert "ok    moderator groups: appliance-moderators" in lines
    assert any(line.startswith("ok    groups:") and "groups match ldap.group_filter" in line for line in lines)
    # ldap_sections also lists "admins", which the directory does not have: a warning, not a failure
    assert [line for line in lines_of(lines, "warn") if "admin groups" in line] == [
        "warn  admin groups: not found: admins; nobody signing in from LDAP gets the admin role through them"]
    assert f"ok    u12: found uid=u12,{PEOPLE_DN}" in lines
    assert any(line.startswith("ok    id: ldap:") and len(line.split("ldap:", 1)[1]) == 36 for line in lines)
    assert "ok    username: u12 (uid)" in lines
    assert "ok    display name: User 12 (cn)" in lines
    assert "ok    email: u12@example.org (mail)" in lines
    assert "ok    segment department: Finance (departmentNumber)" in lines
    assert "ok    segment site: Paris (l)" in lines
    assert "ok    groups: finance, staff" in lines
    assert "ok    roles: none (takes part in rounds of their audience groups)" in lines
    assert "note:" not in out  # directory.kind is "ldap"


def test_check_over_ldaps_from_a_toml_file_shows_an_admin(slapd, ldap_ca, tmp_path, monkeypatch, capsys):
    sections = ldap_sections(slapd, ldap_ca, servers=[slapd.ldaps_url], start_tls=False)
    monkeypatch.setenv("APPLIANCE_CONFIG", str(write_config(tmp_path / "appliance.toml", sections)))
    status, lines, err = ldap_check(capsys, "--user", "alice")
    assert status == 0, "\n".join(lines) + err
    assert lines[0].startswith("ok    localhost: LDAPS TLSv1.") and lines[0].endswith("verified")
    assert "ok    display name: Alice Admin (cn)" in lines
    assert "ok    groups: appliance-admins" in lines
    assert "ok    roles: admin" in lines
    assert lines[-1] == "all checks passed"


def test_check_finds_people_with_escaped_and_accented_names(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca))
    status, lines, _ = ldap_check(capsys, "--user", "jsmith")
    assert status == 0 and "ok    display name: Smith, John (cn)" in lines
    status, lines, _ = ldap_check(capsys, "--user", "élodie")
    assert status == 0 and "ok    email: elodie.durand@example.org (mail)" in lines


def test_check_without_user_stops_after_the_role_groups(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca))
    status, lines, _ = ldap_check(capsys)
    assert status == 0
    assert lines[-2].startswith("ok    moderator groups:") and lines[-1] == "all checks passed"


def test_check_notes_that_the_directory_kind_is_not_ldap_yet(slapd, ldap_ca, monkeypatch, capsys):
    sections = ldap_sections(slapd, ldap_ca)
    del sections["directory"]  # kind stays "local"
    configure(monkeypatch, sections)
    status, lines, _ = ldap_check(capsys)
    assert status == 0
    assert 'note: directory.kind is not "ldap"' in "\n".join(lines)


# --- One plain diagnosis per failure -----------------------------------------------


def test_an_unresolvable_host_name(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca, servers=["ldap://no-such-host.invalid:389"]))
    status, lines, _ = ldap_check(capsys, "--user", "u12")
    assert status == 1
    assert lines[0].startswith("FAIL  ldap://no-such-host.invalid:389: cannot resolve the host name"
                               " 'no-such-host.invalid'")
    assert lines[1:] == ["some checks FAILED"]  # nothing else is tried: it could only fail the same way


def test_a_closed_port(slapd, ldap_ca, monkeypatch, capsys):
    url = f"ldap://127.0.0.1:{closed_port()}"
    configure(monkeypatch, ldap_sections(slapd, ldap_ca, servers=[url]))
    status, lines, _ = ldap_check(capsys)
    assert status == 1
    assert lines[0].startswith(f"FAIL  {url}: connection refused by 127.0.0.1:")
    assert lines[1:] == ["some checks FAILED"]


def test_a_stopped_server_among_two_fails_the_check_but_the_other_is_checked(slapd, ldap_ca, monkeypatch, capsys):
    down = f"ldap://127.0.0.1:{closed_port()}"
    configure(monkeypatch, ldap_sections(slapd, ldap_ca, servers=[down, slapd.url]))
    status, lines, _ = ldap_check(capsys, "--user", "u12")
    assert status == 1
    assert lines_of(lines, "FAIL") == [line for line in lines if line.startswith(f"FAIL  {down}: connection refused")]
    assert "ok    segment site: Paris (l)" in lines
    assert lines[-1] == "some checks FAILED"


def test_a_hung_server_fails_within_about_the_timeout(own_slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(own_slapd, ldap_ca, timeout_seconds=1))
    own_slapd.pause()
    try:
        started = time.monotonic()
        status, lines, err = ldap_check(capsys, "--user", "u12")
        elapsed = time.monotonic() - started
    finally:
        own_slapd.resume()
    assert status == 1, "\n".join(lines) + err
    assert lines[0].startswith(f"FAIL  {own_slapd.url}: cannot talk LDAP to 127.0.0.1")
    assert lines[1:] == ["some checks FAILED"]
    assert elapsed < 4


@pytest.mark.parametrize("scheme", ["starttls", "ldaps"])
def test_a_certificate_signed_by_another_ca(slapd, ldap_ca, scheme, monkeypatch, capsys):
    url = slapd.url if scheme == "starttls" else slapd.ldaps_url
    configure(monkeypatch, ldap_sections(slapd, ldap_ca, servers=[url], start_tls=scheme == "starttls",
                                         ca_file=str(ldap_ca.wrong_ca_file)))
    status, lines, _ = ldap_check(capsys)
    assert status == 1
    assert lines[0].startswith(f"FAIL  {url}: TLS: the certificate of ")
    assert "is not trusted" in lines[0] and f"ldap.ca_file {ldap_ca.wrong_ca_file}" in lines[0]
    assert lines[1:] == ["some checks FAILED"]


def test_skipping_certificate_verification_passes_with_a_warning(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca, ca_file=str(ldap_ca.wrong_ca_file),
                                         insecure_skip_certificate_verification=True))
    status, lines, _ = ldap_check(capsys)
    assert status == 0
    assert lines[0].startswith("warn  127.0.0.1: StartTLS TLSv1.")
    assert "NOT verified (ldap.insecure_skip_certificate_verification)" in lines[0]


def test_a_plain_ldap_connection_is_a_warning(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca, start_tls=False))
    status, lines, _ = ldap_check(capsys, "--user", "u12")
    assert status == 0
    assert lines[0].startswith("warn  127.0.0.1: connected WITHOUT encryption")
    assert lines[-1] == "all checks passed"


def test_a_refused_service_account(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca, bind_password="not-the-service-secret"))
    status, lines, err = ldap_check(capsys, "--user", "u12")
    assert status == 1
    assert lines[0].startswith("ok ")  # the transport was fine
    assert lines[1] == (f"FAIL  {slapd.url}: the service account cn=appliance,ou=services,dc=example,dc=org was"
                        " refused: invalid credentials (LDAP result 49); check ldap.bind_dn and ldap.bind_password")
    assert lines[2:] == ["some checks FAILED"]
    assert "not-the-service-secret" not in "\n".join(lines) + err


@pytest.mark.parametrize("key", ["user_search_base", "group_search_base"])
def test_a_search_base_that_does_not_exist(slapd, ldap_ca, key, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca, **{key: NOBODY_BASE}))
    status, lines, _ = ldap_check(capsys, "--user", "u12")
    assert status == 1
    [failure] = lines_of(lines, "FAIL")
    assert failure.startswith(f"FAIL  ldap.{key}: '{NOBODY_BASE}' does not exist (LDAP result 32, noSuchObject)")
    assert lines[-1] == "some checks FAILED"
    assert not any("u12" in line for line in lines)  # the person is not looked for under a missing base


def test_a_search_base_with_a_bad_syntax_is_not_called_missing(slapd, ldap_ca, monkeypatch, capsys):
    base = "xyz=people32,dc=example,dc=org"  # no attribute type xyz: invalidDNSyntax (34)
    configure(monkeypatch, ldap_sections(slapd, ldap_ca, user_search_base=base))
    status, lines, _ = ldap_check(capsys)
    assert status == 1
    [failure] = lines_of(lines, "FAIL")
    assert failure.startswith(f"FAIL  ldap.user_search_base: '{base}' cannot be read")
    assert "invalidDNSyntax (34)" in failure
    assert "noSuchObject" not in failure and "result 32" not in failure


def test_an_unknown_user(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca))
    status, lines, _ = ldap_check(capsys, "--user", "ghost")
    assert status == 1
    assert lines[-2].startswith("FAIL  ghost: no entry matches ldap.user_filter"
                                " (&(objectClass=inetOrgPerson)(uid={username})) under " + PEOPLE_DN)
    assert lines[-1] == "some checks FAILED"


def test_a_user_filter_value_is_escaped_not_injected(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca))
    status, lines, _ = ldap_check(capsys, "--user", "*")
    assert status == 1
    assert lines[-2].startswith("FAIL  *: no entry matches")


def test_a_person_without_a_mapped_attribute_is_a_warning_only(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca))
    status, lines, _ = ldap_check(capsys, "--user", "nodept")
    assert status == 0
    assert ('warn  segment department: attribute departmentNumber is missing: counted as "other"') in lines
    assert "ok    segment site: Lyon (l)" in lines
    assert lines[-1] == "all checks passed"


def test_a_segment_mapped_to_an_attribute_nobody_has(slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca,
                                         segment_attributes={"department": "departmentNumber",
                                                             "site": "employeeType"}))
    status, lines, _ = ldap_check(capsys, "--user", "u12")
    assert status == 0
    [site] = [line for line in lines if "segment site" in line]
    assert site.startswith("warn ") and "employeeType is missing" in site
    assert "ok    segment department: Finance (departmentNumber)" in lines
    assert lines[-1] == "all checks passed"


# --- Not configured, or unreachable -------------------------------------------------


def test_check_without_an_ldap_section_names_ldap_servers(monkeypatch, capsys):
    status, lines, err = ldap_check(capsys)
    assert status == 1
    assert lines == []
    assert "ldap.servers" in err and err.count("\n") == 1 and "Traceback" not in err


def test_check_with_servers_but_no_search_base_names_it(slapd, ldap_ca, monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_LDAP__SERVERS", json.dumps([slapd.url]))
    status, _, err = ldap_check(capsys)
    assert status == 1 and "ldap.user_search_base" in err


def test_directory_sync_reports_an_unreachable_directory(own_slapd, ldap_ca, tmp_path, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(own_slapd, ldap_ca) | {"storage": {"data_dir": str(tmp_path / "data")}})
    app = build_appliance(load_settings())
    try:
        create_round(app, "admin", RoundDraft(title="Day-to-day work", question="How could we work better?",
                                              audience_groups=("staff",)))
    finally:
        app.close()
    assert main(["directory", "sync"]) == 0
    out = capsys.readouterr().out
    assert "draft" in out and "29 people in the audience" in out  # u00..u23 and five special people

    own_slapd.stop()
    assert main(["directory", "sync"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("appliance: directory unreachable: ")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""

    own_slapd.start()
    assert main(["directory", "sync"]) == 0
    assert "29 people in the audience" in capsys.readouterr().out


def test_a_port_that_answers_in_another_protocol_is_named_without_a_traceback(slapd, ldap_ca, not_ldap, monkeypatch,
                                                                              capsys):
    configure(monkeypatch, ldap_sections(slapd, ldap_ca, servers=[not_ldap], start_tls=False))
    status, lines, err = ldap_check(capsys)
    assert status == 1 and "Traceback" not in err, err
    assert lines_of(lines, "FAIL") == [f"FAIL  {not_ldap}: the server answered, but not in LDAP: check the port"
                                       " (389 for ldap://, 636 for ldaps://)"]
    assert lines[-1] == "some checks FAILED"


def test_a_hung_server_over_plain_ldap_fails_without_a_traceback(own_slapd, ldap_ca, monkeypatch, capsys):
    configure(monkeypatch, ldap_sections(own_slapd, ldap_ca, timeout_seconds=1, start_tls=False))
    own_slapd.pause()
    try:
        status, lines, err = ldap_check(capsys, "--user", "u12")
    finally:
        own_slapd.resume()
    assert status == 1 and "Traceback" not in err, err
    assert lines_of(lines, "FAIL")[0].startswith(f"FAIL  {own_slapd.url}: cannot talk LDAP to 127.0.0.1")
    assert lines[-1] == "some checks FAILED"


def test_an_error_of_ours_on_the_way_out_is_not_taken_for_a_server_in_another_protocol():
    connection = Connection(Server("mock"), client_strategy=MOCK_SYNC)
    connection.bind()
    with pytest.raises(Exception) as caught:  # a bad argument ldap3 and pyasn1 cannot encode
        connection.search(None, "(objectClass=*)")
    assert not garbled(caught.value)  # a bug to see with its traceback, not "check the port"
