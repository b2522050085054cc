"""One Settings model: config/appliance.toml, then APPLIANCE_* env, then *_FILE secrets.

Environment variables win over the TOML file. A secret setting `x` may instead
be given as `x_file` (in TOML, or `APPLIANCE_SECTION__X_FILE` in the
environment): the file's content, stripped, becomes the value.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, field_validator,
                      model_validator)
from pydantic_settings import (
    BaseSettings,
    SettingsError as PydanticSettingsError,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG = Path("config/appliance.toml")
ENV_PREFIX = "APPLIANCE_"
# APPLIANCE_* variables read outside the Settings model: not typing mistakes.
OTHER_VARIABLES = frozenset({
    f"{ENV_PREFIX}CONFIG",  # config_path(); set by the Docker image
    f"{ENV_PREFIX}ADMIN_PASSWORD_FILE",  # `appliance bootstrap` (cli_ops.py, first_admin.py)
    f"{ENV_PREFIX}ADMIN_USERNAME",  # the same
    f"{ENV_PREFIX}BOOTSTRAPPED",  # set by the image's entry point: bootstrap told how to make the first admin
    f"{ENV_PREFIX}TEST_DOCKER_DIR",  # the Docker tests (tests/services/docker.py)
})
# "key: what is wrong" from a section validator, as opposed to a field validator's bare message.
_KEY_PREFIX = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")


class SettingsError(Exception):
    """A setting is missing, unreadable or invalid; the message names it."""


class Section(BaseModel):
    """A settings section: unknown keys are errors, `<secret>_file` keys are read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def read_secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, field in cls.model_fields.items():
            path = data.pop(f"{name}_file", None)
            if path is None or field.annotation not in (SecretStr, SecretStr | None):
                if path is not None:
                    raise ValueError(f"{name}_file: {name} is not a secret setting")
                continue
            try:
                data[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ValueError(f"{name}_file: cannot read {path}: {error.strerror}") from None
        return data


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    trusted_proxies: list[str] = []
    public_url: str = ""  # how people reach the appliance (https://consultation.example.org): links in mail
    time_zone: str = "Europe/Paris"  # the organisation's: dates on pages and in mail, times typed in forms
    metrics_token: SecretStr | None = None  # when set, /metrics asks for it as a bearer token
    tls_certificate_file: Path | None = None  # HTTPS served directly: PEM certificate (chain)
    tls_key_file: Path | None = None  # and its private key

    @model_validator(mode="after")
    def tls_files_go_together(self) -> ServerSettings:
        if (self.tls_certificate_file is None) != (self.tls_key_file is None):
            given, missing = (("tls_certificate_file", "tls_key_file") if self.tls_key_file is None
                              else ("tls_key_file", "tls_certificate_file"))
            raise ValueError(f"{missing}: required with server.{given}")
        for key in ("tls_certificate_file", "tls_key_file"):
            path = getattr(self, key)
            if path is not None and not path.is_file():
                raise ValueError(f"{key}: no such file: {path}")
        if self.tls_certificate_file is not None and self.tls_key_file is not None:
            check_tls_pair(self.tls_certificate_file, self.tls_key_file)
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def addresses_or_networks(cls, value: list[str]) -> list[str]:
        """Each an IP address or a network: the web server takes anything else for a literal name, matching nothing,
        so that every client would share the proxy's address (and its sign-in throttle)."""
        cleaned = [entry.strip() for entry in value]
        for entry in cleaned:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=True)
            except ValueError as error:
                hint = ""
                if "host bits set" in str(error):
                    hint = f" (the network is {ipaddress.ip_network(entry, strict=False)})"
                raise ValueError(f"{entry!r} is not an IP address or network (like 10.0.0.5 or 10.0.0.0/24)"
                                 f"{hint}") from None
        return cleaned

    @field_validator("time_zone")
    @classmethod
    def an_iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "Europe"
            raise ValueError(f"{value!r} is not a time zone of the IANA database (like Europe/Paris or UTC)") from None
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def an_http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        scheme, _, rest = value.partition("://")
        if value and (scheme not in ("http", "https") or not rest or "?" in rest or "#" in rest):
            raise ValueError(f"{value!r} is not an http:// or https:// address"
                             " (like https://consultation.example.org)")
        return value


class _Passphrase(Exception):
    """The private key asks for a passphrase: the server cannot type one."""


def _no_passphrase() -> bytes:
    raise _Passphrase


def check_tls_pair(certificate: Path, key: Path) -> None:
    """Load the certificate and key as the server will, or say which file is wrong and why ("key: what")."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_verify_locations(cafile=certificate)
    except (ssl.SSLError, OSError) as error:
        reason = "no PEM certificate in it" if isinstance(error, ssl.SSLError) else error.strerror or str(error)
        raise ValueError(f"tls_certificate_file: {certificate}: {reason}") from None
    try:
        context.load_cert_chain(certificate, key, password=_no_passphrase)
    except _Passphrase:
        raise ValueError(f"tls_key_file: {key}: the key is protected by a passphrase, which the server"
                         " cannot type; give it without one (openssl pkey -in KEY -out KEY.plain)") from None
    except ssl.SSLError as error:
        reason = ("does not match the certificate of server.tls_certificate_file" if "MISMATCH" in str(error)
                  else "not a PEM private key")
        raise ValueError(f"tls_key_file: {key}: {reason}") from None
    except OSError as error:
        raise ValueError(f"tls_key_file: {key}: {error.strerror or error}") from None


class StorageSettings(Section):
    data_dir: Path = Path("data")
    keys_dir: Path | None = None

    @field_validator("data_dir", "keys_dir", mode="before")
    @classmethod
    def not_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():  # "" would quietly be the current directory
            raise ValueError("is empty: give a directory (an absolute path is best)")
        return value

    @field_validator("data_dir", "keys_dir")
    @classmethod
    def a_directory(cls, value: Path | None) -> Path | None:
        """A directory, or a path where one can be made: not a file."""
        try:
            not_a_directory = value is not None and value.exists() and not value.is_dir()
        except OSError:  # not reachable by this user: doctor and the commands say so in their own words
            return value
        if not_a_directory:
            raise ValueError(f"{value} exists and is not a directory")
        return value

    @property
    def identity_db(self) -> Path:
        return self.data_dir / "identity.db"

    @property
    def ballots_db(self) -> Path:
        return self.data_dir / "ballots.db"

    @property
    def round_keys_dir(self) -> Path:
        return self.keys_dir if self.keys_dir is not None else self.data_dir / "keys"


class SecuritySettings(Section):
    instance_secret: SecretStr | None = None
    session_lifetime_hours: int = Field(12, ge=1, le=24 * 90)
    cookie_secure: bool = False
    failed_sign_ins_per_user: int = Field(5, ge=1, le=1000)
    failed_sign_ins_per_address: int = Field(30, ge=1, le=100_000)
    sign_in_max_delay_seconds: int = Field(300, ge=1, le=3600)
    votes_per_minute: int = Field(60, ge=1, le=10_000)
    proposals_per_hour: int = Field(10, ge=1, le=1000)

    @model_validator(mode="after")
    def secret_is_long_enough(self) -> SecuritySettings:
        secret = self.instance_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("instance_secret: must be at least 32 characters")
        return self


class DirectorySettings(Section):
    kind: Literal["local", "ldap"] = "local"
    admin_groups: list[str] = ["admins"]
    moderator_groups: list[str] = ["moderators"]


GroupMembership = Literal["member", "member_uid", "member_of", "ad_nested"]
# A CA file given empty (APPLIANCE_LDAP__CA_FILE=) means none: the system's CAs, not the file ".".
OptionalFile = Annotated[Path | None, BeforeValidator(lambda v: None if isinstance(v, str) and not v.strip() else v)]


class LdapSettings(Section):
    """How to reach and read an LDAP / Active Directory server (used when directory.kind = "ldap")."""

    servers: list[str] = []
    start_tls: bool = False
    ca_file: OptionalFile = None
    insecure_skip_certificate_verification: bool = False
    connect_timeout_seconds: int = Field(5, ge=1, le=120)
    timeout_seconds: int = Field(10, ge=1, le=300)
    retry_offline_server_seconds: int = Field(30, ge=0, le=3600)
    pool_size: int = Field(8, ge=1, le=100)
    bind_dn: str = ""
    bind_password: SecretStr | None = None
    user_search_base: str = ""
    user_filter: str = "(&(objectClass=inetOrgPerson)(uid={username}))"
    id_attribute: str = "entryUUID"
    username_attribute: str = "uid"
    display_name_attribute: str = "cn"
    surname_attribute: str = "sn"  # to find colleagues named in a proposal (moderators' personal-data flags)
    email_attribute: str = "mail"
    segment_attributes: dict[str, str] = {}
    group_membership: GroupMembership = "member"
    group_search_base: str = ""
    group_filter: str = ("(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)"
                         "(objectClass=posixGroup)(objectClass=group))")
    group_name_attribute: str = "cn"
    refuse_disabled_accounts: bool = False

    @model_validator(mode="after")
    def well_formed(self) -> LdapSettings:
        for url in self.servers:
            scheme, _, rest = url.partition("://")
            if scheme.lower() not in ("ldap", "ldaps") or not rest.strip("/"):
                raise ValueError(f"servers: {url!r} is not an ldap:// or ldaps:// URL")
            try:
                port = urlsplit(url).port
            except ValueError:
                port = 0
            if port == 0 or not urlsplit(url).hostname:
                raise ValueError(f"servers: {url!r} needs a host, and a port from 1 to 65535 if it names one"
                                 " (like ldaps://dc1.example.org:636)")
            if self.start_tls and scheme.lower() == "ldaps":
                raise ValueError(f"start_tls: {url} is ldaps:// (already encrypted); use ldap:// URLs with StartTLS")
        if self.user_filter.count("{username}") != 1 or not _is_filter(self.user_filter.replace("{username}", "x")):
            raise ValueError("user_filter: must be an LDAP filter in parentheses with {username} once,"
                             " for example (&(objectClass=inetOrgPerson)(uid={username}))")
        if not _is_filter(self.group_filter):
            raise ValueError("group_filter: must be an LDAP filter in parentheses")
        if self.bind_dn and self.bind_password is None:
            raise ValueError("bind_password: required with bind_dn (better: bind_password_file)")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file: no such file: {self.ca_file}")
        for name, attribute in self.segment_attributes.items():
            if not name.strip() or not attribute.strip():
                raise ValueError("segment_attributes: names and attributes must not be empty")
        return self

    def missing(self) -> list[str]:
        """The settings LDAP sign-in cannot do without that are not set."""
        return [key for key in ("servers", "user_search_base", "group_search_base") if not getattr(self, key)]


def _is_filter(text: str) -> bool:
    """Balanced parentheses around the whole text: enough to catch a mistyped filter early."""
    depth = 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0 or (depth == 0 and i != len(text) - 1):
                return False
    return text.startswith("(") and depth == 0


class RoundSettings(Section):
    default_k: int = Field(5, ge=5)
    proposal_min_chars: int = Field(12, ge=1)
    proposal_max_chars: int = Field(280, ge=1, le=10_000)
    proposal_quota: int = Field(5, ge=1)
    release_interval_seconds: int = Field(3600, ge=0)

    @model_validator(mode="after")
    def lengths_are_ordered(self) -> RoundSettings:
        if self.proposal_min_chars > self.proposal_max_chars:
            raise ValueError("proposal_min_chars: must not exceed proposal_max_chars")
        return self


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"  # json: one object a line on stdout, for a log collector


MailSecurity = Literal["none", "starttls", "tls"]
MAIL_PORTS: dict[str, int] = {"none": 25, "starttls": 587, "tls": 465}


class MailSettings(Section):
    """How to reach the organisation's SMTP relay (invitations, reminders, result digests)."""

    enabled: bool = False
    language: Literal["en", "fr"] = "en"  # of invitations, reminders and digests
    host: str = ""
    port: int = Field(MAIL_PORTS["starttls"], ge=1, le=65535)  # when not given: the usual port of `security`
    security: MailSecurity = "starttls"
    ca_file: OptionalFile = None
    username: str = ""
    password: SecretStr | None = None
    allow_plaintext_auth: bool = False
    from_address: str = ""
    from_name: str = ""
    reply_to: str = ""
    timeout_seconds: float = Field(10.0, gt=0, le=300)

    @model_validator(mode="before")
    @classmethod
    def port_follows_security(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("port") in (None, ""):
            data = dict(data)
            security = data.get("security", "starttls")
            data["port"] = MAIL_PORTS.get(security if isinstance(security, str) else "", MAIL_PORTS["starttls"])
        return data

    @model_validator(mode="after")
    def well_formed(self) -> MailSettings:
        from appliance.mail.message import parse_address

        if self.enabled:
            for key in ("host", "from_address"):
                if not getattr(self, key):
                    raise ValueError(f"{key}: required when mail.enabled is true")
        if "/" in self.host or (":" in self.host and not _is_ip_address(self.host)):
            raise ValueError(f"host: {self.host!r} is not a host name or address (give the port as mail.port)")
        for key in ("from_address", "reply_to"):
            if getattr(self, key):
                parse_address(getattr(self, key), key)
        if self.password is not None and not self.username:
            raise ValueError("username: required with mail.password (a password alone cannot sign in)")
        if self.username and self.password is None:
            raise ValueError("password: required with mail.username (better: password_file)")
        if self.username and self.security == "none" and not self.allow_plaintext_auth and not _is_local(self.host):
            raise ValueError(f"security: \"none\" would send the password of mail.username in clear text to"
                             f" {self.host}; use \"starttls\" or \"tls\", or set mail.allow_plaintext_auth = true"
                             " if nobody can listen on the way")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file: no such file: {self.ca_file}")
        return self


def _is_local(host: str) -> bool:
    """Whether a connection to host stays on this machine, where nobody can read it on the way."""
    return host.lower() in ("localhost", "localhost.") or _is_ip_address(host, loopback=True)


def _is_ip_address(host: str, loopback: bool = False) -> bool:
    from ipaddress import ip_address

    try:
        address = ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or not loopback


class Settings(BaseSettings):
    """Every setting of the appliance, by section."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    security: SecuritySettings = SecuritySettings()
    directory: DirectorySettings = DirectorySettings()
    ldap: LdapSettings = LdapSettings()
    rounds: RoundSettings = RoundSettings()
    logging: LoggingSettings = LoggingSettings()
    mail: MailSettings = MailSettings()

    @model_validator(mode="after")
    def ldap_is_complete(self) -> Settings:
        missing = self.ldap.missing()
        if self.directory.kind == "ldap" and missing:
            raise ValueError(f"ldap.{missing[0]}: required when directory.kind is \"ldap\"")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_path())
        return (init_settings, env_settings, toml)


def config_path() -> Path:
    """The TOML file to read: APPLIANCE_CONFIG, else config/appliance.toml."""
    return Path(os.environ.get(f"{ENV_PREFIX}CONFIG", DEFAULT_CONFIG))


def load_settings(**overrides: Any) -> Settings:
    """Read and validate all settings, or raise SettingsError naming the bad one."""
    check_environment_names()
    path = config_path()
    if f"{ENV_PREFIX}CONFIG" in os.environ and not path.is_file():
        raise SettingsError(f"{ENV_PREFIX}CONFIG: no such file: {path}")
    if path.is_file():
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise SettingsError(f"{path}: not valid TOML: {error}") from None
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(describe_error(error)) from None
    except PydanticSettingsError as error:  # a list or table given as a plain environment value
        raise SettingsError(describe_json_error(str(error))) from None


def setting_variables() -> dict[str, Any]:
    """Every APPLIANCE_SECTION__KEY variable of a setting (and of its _FILE form), with its field."""
    names: dict[str, Any] = {}
    for section, model in Settings.model_fields.items():
        for key, field in model.annotation.model_fields.items():  # type: ignore[union-attr]
            name = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            names[name] = names[f"{name}_FILE"] = field  # _FILE of a plain setting: refused by the section
    return names


def check_environment_names() -> None:
    """Refuse an APPLIANCE_* variable that no setting reads: a typing mistake would silently be ignored."""
    known = setting_variables()
    tables = tuple(f"{name}__" for name, field in known.items()
                   if getattr(field.annotation, "__origin__", None) is dict)  # ..._ATTRIBUTES__NAME: one entry
    for name in sorted(os.environ):
        upper = name.upper()
        if (not upper.startswith(ENV_PREFIX) or upper in known or upper in OTHER_VARIABLES
                or upper.startswith(tables)):
            continue
        raise SettingsError(describe_unknown_variable(name, [*known, *OTHER_VARIABLES]))


def describe_unknown_variable(name: str, known: list[str]) -> str:
    """The unknown variable, as a setting when it looks like one, and the known variable it is close to."""
    close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.8)
    hint = f"; did you mean {close[0]}?" if close else ""
    parts = name.upper().removeprefix(ENV_PREFIX).lower().split("__")
    if len(parts) == 2 and all(_KEY_PREFIX.fullmatch(part) for part in parts):
        return f"setting {'.'.join(parts)} ({name}): unknown setting{hint}"
    return (f"{name}: no setting has this environment variable (they are named"
            f" {ENV_PREFIX}<SECTION>__<KEY>, with two underscores){hint}")


def _close_setting(location: list[str]) -> str:
    """"; did you mean server.port?" for a misspelt key or section of the file, or ""."""
    if len(location) == 1:
        known, prefix = list(Settings.model_fields), ""
    elif len(location) == 2 and location[0] in Settings.model_fields:
        section = Settings.model_fields[location[0]].annotation
        known, prefix = list(getattr(section, "model_fields", {})), f"{location[0]}."
    else:
        return ""
    if len(location) == 1:  # a section's key written above every section: `port = 8081` for [server] port
        owners = [f"{name}.{location[0].lower()}" for name, field in Settings.model_fields.items()
                  if location[0].lower() in getattr(field.annotation, "model_fields", {})]
        if owners:  # before a section of a close name: `servers` is ldap.servers, not [server]
            return f"; keys go under their section: did you mean {' or '.join(owners)}?"
    close = difflib.get_close_matches(location[-1].lower(), known, n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


# A list setting's own example, where group names would mislead.
JSON_EXAMPLES = {"trusted_proxies": '["10.0.0.5", "10.1.0.0/16"]', "servers": '["ldaps://dc1.example.org"]'}


def describe_json_error(message: str) -> str:
    """Name the environment variable whose list or table value is not JSON."""
    for name, value in os.environ.items():
        parts = name.removeprefix(ENV_PREFIX).lower().split("__")
        if not name.startswith(ENV_PREFIX) or len(parts) != 2 or parts[0] not in Settings.model_fields:
            continue
        field = Settings.model_fields[parts[0]].annotation.model_fields.get(parts[1])  # type: ignore[union-attr]
        if field is None or getattr(field.annotation, "__origin__", None) not in (list, dict):
            continue
        try:
            json.loads(value)
        except ValueError:
            example = JSON_EXAMPLES.get(parts[1], '["admins", "hr"]' if field.annotation.__origin__ is list
                                        else '{"department": "departmentNumber"}')
            return f"setting {'.'.join(parts)} ({name}): not valid JSON; write it as JSON, for example '{example}'"
    return f"{message}; lists and tables are written as JSON, for example '[\"admins\", \"hr\"]'"


def describe_error(error: ValidationError) -> str:
    """One line: the first bad setting, as section.key and its env variable, and why."""
    first = error.errors()[0]
    location = [str(part) for part in first["loc"]]
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown setting" + _close_setting(location)
    elif message.startswith("Value error, "):
        # Section validators say "key: what is wrong"; name the key itself. Field validators
        # say only what is wrong: their location already ends with the key.
        message = message.removeprefix("Value error, ")
        key, _, rest = message.partition(": ")
        if rest and _KEY_PREFIX.fullmatch(key):
            location.extend(key.split("."))
            message = rest
    name = ".".join(location)
    env_name = ENV_PREFIX + "__".join(part.upper() for part in location)
    count = error.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"setting {name} ({env_name}): {message}{more}"
