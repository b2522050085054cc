"""Settings: TOML file, APPLIANCE_* environment, *_file secrets, loud one-line errors.

The autouse fixture of conftest.py runs each test in an empty temporary directory
with no APPLIANCE_* variable, so relative paths below live in that directory.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from pydantic import BaseModel

from appliance.cli import main
from appliance.settings import Settings, SettingsError, load_settings

EXAMPLE = Path(__file__).parents[2] / "config" / "appliance.example.toml"
SECRET = "s3cret-" * 6  # 42 characters


def write(path: str, text: str) -> Path:
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text, encoding="utf-8")
    return file


def settings_error(**env: str) -> str:
    """The message of the SettingsError raised with these environment variables."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with pytest.raises(SettingsError) as raised:
            load_settings()
    return str(raised.value)


def test_it_loads_the_defaults_without_a_file() -> None:
    settings = load_settings()
    assert (settings.server.host, settings.server.port, settings.server.workers) == ("127.0.0.1", 8000, 1)
    assert settings.server.trusted_proxies == []
    assert settings.storage.data_dir == Path("data")
    assert settings.storage.round_keys_dir == Path("data") / "keys"
    assert settings.security.instance_secret is None
    assert (settings.security.session_lifetime_hours, settings.security.cookie_secure) == (12, False)
    assert settings.directory.kind == "local"
    assert (settings.directory.admin_groups, settings.directory.moderator_groups) == (["admins"], ["moderators"])
    rounds = settings.rounds
    assert (rounds.default_k, rounds.proposal_min_chars, rounds.proposal_max_chars) == (5, 12, 280)
    assert (rounds.proposal_quota, rounds.release_interval_seconds) == (5, 3600)
    assert settings.logging.level == "info"


def test_it_reads_config_appliance_toml() -> None:
    write("config/appliance.toml", '[server]\nport = 9000\n\n[rounds]\ndefault_k = 7\n')
    settings = load_settings()
    assert (settings.server.port, settings.rounds.default_k) == (9000, 7)
    assert settings.server.host == "127.0.0.1"


def test_it_reads_the_file_named_by_appliance_config_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    write("config/appliance.toml", "[server]\nport = 9000\n")
    write("elsewhere/site.toml", '[server]\nport = 9100\n[storage]\ndata_dir = "/srv/data"\n')
    monkeypatch.setenv("APPLIANCE_CONFIG", "elsewhere/site.toml")
    settings = load_settings()
    assert settings.server.port == 9100
    assert settings.storage.data_dir == Path("/srv/data")


def test_environment_variables_win_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    write("config/appliance.toml", '[server]\nhost = "0.0.0.0"\nport = 9000\n')
    monkeypatch.setenv("APPLIANCE_SERVER__PORT", "8080")
    monkeypatch.setenv("APPLIANCE_ROUNDS__DEFAULT_K", "6")
    settings = load_settings()
    assert settings.server.port == 8080
    assert settings.server.host == "0.0.0.0"  # the rest of the file's section still applies
    assert settings.rounds.default_k == 6


def test_appliance_config_naming_a_missing_file_is_an_error() -> None:
    assert settings_error(APPLIANCE_CONFIG="missing.toml") == "APPLIANCE_CONFIG: no such file: missing.toml"


def test_invalid_toml_is_an_error_naming_the_file() -> None:
    write("config/appliance.toml", "[server\nport = \n")
    message = settings_error()
    assert message.startswith(f"{Path('config/appliance.toml')}: not valid TOML: ")
    assert "\n" not in message


def test_invalid_toml_in_the_file_named_by_appliance_config_is_an_error_naming_it() -> None:
    write("site.toml", 'port = "unterminated\n')
    assert settings_error(APPLIANCE_CONFIG="site.toml").startswith("site.toml: not valid TOML: ")


def test_it_reads_a_secret_from_the_file_named_in_toml() -> None:
    write("secrets/instance", SECRET + "\n")
    write("config/appliance.toml", '[security]\ninstance_secret_file = "secrets/instance"\n')
    assert load_settings().security.instance_secret.get_secret_value() == SECRET


def test_it_reads_a_secret_from_the_file_named_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    write("secrets/instance", f"  {SECRET}\n\n")
    monkeypatch.setenv("APPLIANCE_SECURITY__INSTANCE_SECRET_FILE", "secrets/instance")
    assert load_settings().security.instance_secret.get_secret_value() == SECRET


def test_a_missing_secret_file_in_the_environment_is_an_error_naming_the_setting() -> None:
    message = settings_error(APPLIANCE_SECURITY__INSTANCE_SECRET_FILE="secrets/nowhere")
    assert message == ("setting security.instance_secret_file (APPLIANCE_SECURITY__INSTANCE_SECRET_FILE): "
                       "cannot read secrets/nowhere: No such file or directory")


def test_a_missing_secret_file_in_toml_is_an_error_naming_the_setting() -> None:
    write("config/appliance.toml", '[security]\ninstance_secret_file = "secrets/nowhere"\n')
    assert settings_error().startswith(
        "setting security.instance_secret_file (APPLIANCE_SECURITY__INSTANCE_SECRET_FILE): cannot read")


def test_it_refuses_file_on_a_setting_that_is_not_a_secret() -> None:
    write("port.txt", "8080\n")
    assert settings_error(APPLIANCE_SERVER__PORT_FILE="port.txt") == (
        "setting server.port_file (APPLIANCE_SERVER__PORT_FILE): port is not a secret setting")
    write("config/appliance.toml", '[rounds]\ndefault_k_file = "port.txt"\n')
    assert settings_error() == (
        "setting rounds.default_k_file (APPLIANCE_ROUNDS__DEFAULT_K_FILE): default_k is not a secret setting")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("APPLIANCE_SERVER__PORT", "abc",
         "setting server.port (APPLIANCE_SERVER__PORT): Input should be a valid integer"),
        ("APPLIANCE_SERVER__PORT", "70000",
         "setting server.port (APPLIANCE_SERVER__PORT): Input should be less than or equal to 65535"),
        ("APPLIANCE_ROUNDS__DEFAULT_K", "3",
         "setting rounds.default_k (APPLIANCE_ROUNDS__DEFAULT_K): Input should be greater than or equal to 5"),
        ("APPLIANCE_SERVER__COLOUR", "blue",
         "setting server.colour (APPLIANCE_SERVER__COLOUR): unknown setting"),
        ("APPLIANCE_ROUNDS__PROPOSAL_MIN_CHARS", "300",
         "setting rounds.proposal_min_chars (APPLIANCE_ROUNDS__PROPOSAL_MIN_CHARS): "
         "must not exceed proposal_max_chars"),
        ("APPLIANCE_SECURITY__INSTANCE_SECRET", "too-short",
         "setting security.instance_secret (APPLIANCE_SECURITY__INSTANCE_SECRET): must be at least 32 characters"),
        ("APPLIANCE_LOGGING__LEVEL", "chatty",
         "setting logging.level (APPLIANCE_LOGGING__LEVEL): Input should be "),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting_and_its_variable(variable: str, value: str,
                                                                     expected: str) -> None:
    message = settings_error(**{variable: value})
    assert message.startswith(expected)
    assert "\n" not in message


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[server]\ncolour = "blue"\n', "setting server.colour (APPLIANCE_SERVER__COLOUR): unknown setting"),
        ('[nonsense]\nkey = 1\n', "setting nonsense (APPLIANCE_NONSENSE): unknown setting"),
        ("[server]\nprot = 8000\n", "setting server.prot (APPLIANCE_SERVER__PROT): unknown setting;"
                                    " did you mean server.port?"),
        ('[strage]\ndata_dir = "x"\n', "setting strage (APPLIANCE_STRAGE): unknown setting; did you mean storage?"),
        ("port = 8081\n", "setting port (APPLIANCE_PORT): unknown setting; keys go under their section:"
                           " did you mean server.port or mail.port?"),
        ('data_dir = "x"\n', "setting data_dir (APPLIANCE_DATA_DIR): unknown setting; keys go under their section:"
                              " did you mean storage.data_dir?"),
        ('servers = ["ldap://dc1"]\n', "setting servers (APPLIANCE_SERVERS): unknown setting; keys go under their"
                                       " section: did you mean ldap.servers?"),
        ("[server]\nport = \"abc\"\n",
         "setting server.port (APPLIANCE_SERVER__PORT): Input should be a valid integer"),
        ("[rounds]\nproposal_min_chars = 50\nproposal_max_chars = 40\n",
         "setting rounds.proposal_min_chars (APPLIANCE_ROUNDS__PROPOSAL_MIN_CHARS): must not exceed"),
    ],
)
def test_a_bad_value_in_the_file_is_one_line_naming_the_setting(toml: str, expected: str) -> None:
    write("config/appliance.toml", toml)
    message = settings_error()
    assert message.startswith(expected)
    assert "\n" not in message


def test_it_says_how_many_more_settings_are_bad() -> None:
    message = settings_error(APPLIANCE_SERVER__PORT="abc", APPLIANCE_ROUNDS__DEFAULT_K="3")
    assert message.endswith(" (and 1 more)")
    assert "\n" not in message


def test_the_cli_exits_with_status_2_and_one_line_naming_a_bad_setting(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("APPLIANCE_SERVER__PORT", "abc")
    assert main(["init"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("appliance: setting server.port (APPLIANCE_SERVER__PORT): ")
    assert not Path("data").exists()  # it failed before touching the data directory


def example_sections() -> dict[str, str]:
    """The text of each [section] of the example file."""
    parts = re.split(r"(?m)^\[([a-z_]+)\][ \t]*$", EXAMPLE.read_text(encoding="utf-8"))
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_setting_is_documented_in_the_example() -> None:
    sections = example_sections()
    missing = []
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), section
        for key in model.model_fields:
            if not re.search(rf"(?m)^(#[ \t]*)?{key}[ \t]*=", sections.get(section, "")):
                missing.append(f"{section}.{key}")
    assert missing == [], f"not in config/appliance.example.toml: {', '.join(missing)}"


def test_the_example_documents_no_section_the_settings_lack() -> None:
    assert set(example_sections()) == set(Settings.model_fields)


def test_the_example_file_loads_as_is_and_equals_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_settings()
    monkeypatch.setenv("APPLIANCE_CONFIG", str(EXAMPLE))
    from_example = load_settings()
    assert from_example.model_dump() == defaults.model_dump()
    assert from_example == defaults


# LDAP

LDAP_EXAMPLES = sorted(EXAMPLE.parent.glob("ldap-*.example.toml"))


def test_there_are_examples_for_openldap_active_directory_and_freeipa() -> None:
    assert [p.name for p in LDAP_EXAMPLES] == [
        "ldap-active-directory.example.toml", "ldap-freeipa.example.toml", "ldap-openldap.example.toml"]


@pytest.mark.parametrize("example", LDAP_EXAMPLES, ids=lambda p: p.stem)
def test_each_ldap_example_is_a_valid_configuration(example: Path) -> None:
    import tomllib

    sections = tomllib.loads(example.read_text(encoding="utf-8"))
    ldap = sections["ldap"]
    ldap["ca_file"] = str(write("ca.pem", "a CA certificate\n"))
    ldap["bind_password_file"] = str(write("secret", "service-password\n"))
    settings = load_settings(**sections)
    assert settings.directory.kind == "ldap"
    assert settings.ldap.bind_password.get_secret_value() == "service-password"
    assert len(settings.ldap.servers) == 2 and settings.ldap.segment_attributes


def test_ldap_needs_servers_and_search_bases() -> None:
    assert settings_error(APPLIANCE_DIRECTORY__KIND="ldap") == (
        'setting ldap.servers (APPLIANCE_LDAP__SERVERS): required when directory.kind is "ldap"')
    message = settings_error(APPLIANCE_DIRECTORY__KIND="ldap", APPLIANCE_LDAP__SERVERS='["ldaps://dc1"]')
    assert message.startswith("setting ldap.user_search_base (APPLIANCE_LDAP__USER_SEARCH_BASE): required")


@pytest.mark.parametrize("env, expected", [
    ({"APPLIANCE_LDAP__SERVERS": '["https://dc1"]'}, "setting ldap.servers (APPLIANCE_LDAP__SERVERS): 'https://dc1'"
                                                     " is not an ldap:// or ldaps:// URL"),
    ({"APPLIANCE_LDAP__SERVERS": '["ldaps://dc1"]', "APPLIANCE_LDAP__START_TLS": "true"},
     "setting ldap.start_tls (APPLIANCE_LDAP__START_TLS): ldaps://dc1 is ldaps://"),
    ({"APPLIANCE_LDAP__USER_FILTER": "(uid=alice)"}, "setting ldap.user_filter (APPLIANCE_LDAP__USER_FILTER): must"
                                                     " be an LDAP filter in parentheses with {username} once"),
    ({"APPLIANCE_LDAP__USER_FILTER": "(&(uid={username})"}, "setting ldap.user_filter"),
    ({"APPLIANCE_LDAP__GROUP_FILTER": "objectClass=group"}, "setting ldap.group_filter (APPLIANCE_LDAP__GROUP_FILTER)"),
    ({"APPLIANCE_LDAP__BIND_DN": "cn=svc"}, "setting ldap.bind_password (APPLIANCE_LDAP__BIND_PASSWORD): required"
                                            " with bind_dn"),
    ({"APPLIANCE_LDAP__CA_FILE": "missing.pem"}, "setting ldap.ca_file (APPLIANCE_LDAP__CA_FILE): no such file"),
    ({"APPLIANCE_LDAP__GROUP_MEMBERSHIP": "nested"}, "setting ldap.group_membership"),
    ({"APPLIANCE_LDAP__TIMEOUT_SECONDS": "0"}, "setting ldap.timeout_seconds"),
    ({"APPLIANCE_LDAP__SERVERS": "ldaps://dc1"}, "setting ldap.servers (APPLIANCE_LDAP__SERVERS): not valid JSON;"
                                                 " write it as JSON, for example '[\"ldaps://dc1.example.org\"]'"),
    ({"APPLIANCE_LDAP__SERVERS": '["ldaps://dc1:99999"]'}, "setting ldap.servers (APPLIANCE_LDAP__SERVERS):"
                                                           " 'ldaps://dc1:99999' needs a host, and a port from 1"),
    ({"APPLIANCE_LDAP__SERVERS": '["ldap://dc1:abc"]'}, "setting ldap.servers (APPLIANCE_LDAP__SERVERS): 'ldap"),
    ({"APPLIANCE_LDAP__SERVERS": '["ldap://:389"]'}, "setting ldap.servers (APPLIANCE_LDAP__SERVERS): 'ldap"),
    ({"APPLIANCE_LDAP__SEGMENT_ATTRIBUTES": "department=departmentNumber"},
     "setting ldap.segment_attributes (APPLIANCE_LDAP__SEGMENT_ATTRIBUTES): not valid JSON; write it as JSON,"
     " for example '{\"department\": \"departmentNumber\"}'"),
])
def test_a_bad_ldap_setting_is_named(env: dict[str, str], expected: str) -> None:
    assert settings_error(**env).startswith(expected)


def test_the_bind_password_can_come_from_a_file() -> None:
    secret = write("run/bind", "s3rvice\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APPLIANCE_LDAP__BIND_DN", "cn=svc,dc=example,dc=org")
        patch.setenv("APPLIANCE_LDAP__BIND_PASSWORD_FILE", str(secret))
        settings = load_settings()
    assert settings.ldap.bind_password.get_secret_value() == "s3rvice"
    assert "s3rvice" not in repr(settings)


def test_the_public_url_is_an_http_address_without_a_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_SERVER__PUBLIC_URL", "https://consultation.example.org/")
    assert load_settings().server.public_url == "https://consultation.example.org"
    message = settings_error(APPLIANCE_SERVER__PUBLIC_URL="consultation.example.org")
    assert "server.public_url" in message and "is not an http:// or https:// address" in message


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("APPLIANCE_SERVER__TIME_ZONE", "Nowhere/X",
     "setting server.time_zone (APPLIANCE_SERVER__TIME_ZONE): 'Nowhere/X' is not a time zone of the IANA database"
     " (like Europe/Paris or UTC)"),
    ("APPLIANCE_SERVER__TIME_ZONE", "Europe",  # a folder of the time-zone database, not a zone
     "setting server.time_zone (APPLIANCE_SERVER__TIME_ZONE): 'Europe' is not a time zone of the IANA database"),
    ("APPLIANCE_SERVER__PUBLIC_URL", "consultation.example.org",
     "setting server.public_url (APPLIANCE_SERVER__PUBLIC_URL): 'consultation.example.org' is not an http:// or"
     " https:// address (like https://consultation.example.org)"),
    ("APPLIANCE_SERVER__PUBLIC_URL", "ftp://host: 21",
     "setting server.public_url (APPLIANCE_SERVER__PUBLIC_URL): 'ftp://host: 21' is not an http:// or https://"),
    ("APPLIANCE_MAIL__FROM_ADDRESS", "nobody",
     "setting mail.from_address (APPLIANCE_MAIL__FROM_ADDRESS): 'nobody' is not an email address"),
    ("APPLIANCE_MAIL__HOST", "smtp.example.org:25",
     "setting mail.host (APPLIANCE_MAIL__HOST): 'smtp.example.org:25' is not a host name or address"),
])
def test_a_field_validator_names_the_setting_and_its_variable_once(variable: str, value: str, expected: str) -> None:
    message = settings_error(**{variable: value})
    assert message.startswith(expected)
    assert message.count(variable) == 1 and "\n" not in message


@pytest.mark.parametrize(("variable", "expected"), [
    ("APPLIANCE_SECURITY_COOKIE_SECURE",
     "APPLIANCE_SECURITY_COOKIE_SECURE: no setting has this environment variable (they are named"
     " APPLIANCE_<SECTION>__<KEY>, with two underscores); did you mean APPLIANCE_SECURITY__COOKIE_SECURE?"),
    ("APPLIANCE_SERVERX__PORT",
     "setting serverx.port (APPLIANCE_SERVERX__PORT): unknown setting; did you mean APPLIANCE_SERVER__PORT?"),
    ("APPLIANCE_SECURITY__COOKIE_SECUR",
     "setting security.cookie_secur (APPLIANCE_SECURITY__COOKIE_SECUR): unknown setting;"
     " did you mean APPLIANCE_SECURITY__COOKIE_SECURE?"),
    ("appliance_serverx__port",
     "setting serverx.port (appliance_serverx__port): unknown setting; did you mean APPLIANCE_SERVER__PORT?"),
    ("APPLIANCE_ADMIN_PASWORD_FILE",
     "APPLIANCE_ADMIN_PASWORD_FILE: no setting has this environment variable (they are named"
     " APPLIANCE_<SECTION>__<KEY>, with two underscores); did you mean APPLIANCE_ADMIN_PASSWORD_FILE?"),
    ("APPLIANCE_NOTHING_LIKE_IT",
     "APPLIANCE_NOTHING_LIKE_IT: no setting has this environment variable (they are named"
     " APPLIANCE_<SECTION>__<KEY>, with two underscores)"),
])
def test_a_misspelt_environment_variable_is_an_error_naming_it(variable: str, expected: str) -> None:
    assert settings_error(**{variable: "true"}) == expected


def test_the_cli_exits_with_status_2_on_a_misspelt_environment_variable(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("APPLIANCE_SECURITY_COOKIE_SECURE", "true")
    assert main(["init"]) == 2
    assert capsys.readouterr().err.startswith("appliance: APPLIANCE_SECURITY_COOKIE_SECURE: no setting has this")
    assert not Path("data").exists()


def test_the_variables_read_outside_the_settings_are_not_misspelt(monkeypatch: pytest.MonkeyPatch) -> None:
    write("config/other.toml", "")
    for name, value in {"APPLIANCE_CONFIG": "config/other.toml", "APPLIANCE_ADMIN_PASSWORD_FILE": "pw",
                        "APPLIANCE_ADMIN_USERNAME": "root", "APPLIANCE_TEST_DOCKER_DIR": "/var/tmp/x",
                        "APPLIANCE_SECURITY__INSTANCE_SECRET_FILE": str(write("secret", SECRET)),
                        "APPLIANCE_LDAP__SEGMENT_ATTRIBUTES__department": "departmentNumber",
                        "appliance_server__port": "9000"}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.ldap.segment_attributes == {"department": "departmentNumber"}
    assert settings.server.port == 9000


def self_signed(name: str) -> tuple[Path, Path]:
    """A real self-signed certificate and its unencrypted key, made by openssl: (certificate, key)."""
    cert, key = Path(f"{name}.crt"), Path(f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=consultation.example.org", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def tls_error(cert: Path, key: Path) -> str:
    return settings_error(APPLIANCE_SERVER__TLS_CERTIFICATE_FILE=str(cert), APPLIANCE_SERVER__TLS_KEY_FILE=str(key))


def test_a_real_tls_certificate_and_key_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed("server")
    monkeypatch.setenv("APPLIANCE_SERVER__TLS_CERTIFICATE_FILE", str(cert))
    monkeypatch.setenv("APPLIANCE_SERVER__TLS_KEY_FILE", str(key))
    assert load_settings().server.tls_key_file == key


def test_a_tls_file_that_is_not_pem_is_named_with_its_setting_when_settings_load() -> None:
    cert, key = self_signed("server")
    garbage = write("garbage.pem", "not a certificate\n")
    assert tls_error(garbage, key) == ("setting server.tls_certificate_file (APPLIANCE_SERVER__TLS_CERTIFICATE_FILE):"
                                       " garbage.pem: no PEM certificate in it")
    assert tls_error(key, key).endswith("tls_certificate_file (APPLIANCE_SERVER__TLS_CERTIFICATE_FILE):"
                                        " server.key: no PEM certificate in it")
    assert tls_error(cert, garbage) == ("setting server.tls_key_file (APPLIANCE_SERVER__TLS_KEY_FILE):"
                                        " garbage.pem: not a PEM private key")


def test_a_tls_key_of_another_certificate_or_with_a_passphrase_is_refused() -> None:
    cert, _ = self_signed("server")
    _, other_key = self_signed("other")
    assert tls_error(cert, other_key) == ("setting server.tls_key_file (APPLIANCE_SERVER__TLS_KEY_FILE): other.key:"
                                          " does not match the certificate of server.tls_certificate_file")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-days", "2",
                    "-subj", "/CN=x", "-passout", "pass:secret", "-keyout", "locked.key", "-out", "locked.crt"],
                   check=True, capture_output=True)
    assert "locked.key: the key is protected by a passphrase" in tls_error(Path("locked.crt"), Path("locked.key"))


def test_the_cli_exits_2_on_a_garbage_tls_key_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    cert, _ = self_signed("server")
    write("garbage.pem", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APPLIANCE_SERVER__TLS_CERTIFICATE_FILE", str(cert))
        patch.setenv("APPLIANCE_SERVER__TLS_KEY_FILE", "garbage.pem")
        assert main(["serve", "--port", "9"]) == 2
    assert capsys.readouterr().err == ("appliance: setting server.tls_key_file (APPLIANCE_SERVER__TLS_KEY_FILE):"
                                       " garbage.pem: not a PEM private key\n")


@pytest.mark.parametrize("entry, expected", [
    ("127.0.0.1/8", "'127.0.0.1/8' is not an IP address or network (like 10.0.0.5 or 10.0.0.0/24)"
                    " (the network is 127.0.0.0/8)"),
    ("10.0.0.300", "'10.0.0.300' is not an IP address or network"),
    ("proxy.example.org", "'proxy.example.org' is not an IP address or network"),
])
def test_a_trusted_proxy_that_is_no_address_is_named_not_ignored(entry: str, expected: str) -> None:
    # the web server would take it for a name matching nothing: every client would share the proxy's address
    message = settings_error(APPLIANCE_SERVER__TRUSTED_PROXIES=json.dumps(["10.0.0.5", entry]))
    assert message.startswith(f"setting server.trusted_proxies (APPLIANCE_SERVER__TRUSTED_PROXIES): {expected}")


def test_trusted_proxies_take_addresses_networks_and_the_star() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APPLIANCE_SERVER__TRUSTED_PROXIES", '["10.0.0.5", " 10.1.0.0/16", "::1", "*"]')
        assert load_settings().server.trusted_proxies == ["10.0.0.5", "10.1.0.0/16", "::1", "*"]


def test_the_systemd_unit_example_names_valid_settings_and_the_installed_command() -> None:
    unit = (LDAP_EXAMPLES[0].parent / "appliance.service.example").read_text(encoding="utf-8")
    environment = dict(line.removeprefix("Environment=").split("=", 1) for line in unit.splitlines()
                       if line.startswith("Environment="))
    assert set(environment) == {"APPLIANCE_CONFIG", "APPLIANCE_STORAGE__DATA_DIR", "APPLIANCE_STORAGE__KEYS_DIR"}
    config = write("etc/appliance.toml", "")  # the unit's file, empty: the defaults
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, str(config) if name == "APPLIANCE_CONFIG" else value)
        settings = load_settings()
    assert str(settings.storage.data_dir) == "/var/lib/consultation"
    assert str(settings.storage.round_keys_dir) == "/var/lib/consultation-keys"
    assert "ExecStart=/opt/consultation/.venv/bin/appliance serve" in unit
    assert "StateDirectory=consultation consultation-keys" in unit  # the two directories, made for its user


@pytest.mark.parametrize("env, expected", [
    ({"APPLIANCE_STORAGE__DATA_DIR": "/etc/hostname"},
     "setting storage.data_dir (APPLIANCE_STORAGE__DATA_DIR): /etc/hostname exists and is not a directory"),
    ({"APPLIANCE_STORAGE__DATA_DIR": ""},  # it would quietly be the current directory
     "setting storage.data_dir (APPLIANCE_STORAGE__DATA_DIR): is empty: give a directory"),
    ({"APPLIANCE_STORAGE__KEYS_DIR": "/etc/hostname"},
     "setting storage.keys_dir (APPLIANCE_STORAGE__KEYS_DIR): /etc/hostname exists and is not a directory"),
])
def test_a_data_or_keys_directory_that_cannot_be_one_is_named(env: dict[str, str], expected: str) -> None:
    assert settings_error(**env).startswith(expected)
