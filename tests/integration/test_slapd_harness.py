"""The private OpenLDAP server of the test suite does what the other tests rely on."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from ldap3 import Connection, Server, Tls
from ldap3.core.exceptions import LDAPException

from tests.services.slapd import (
    BASE_DN,
    PEOPLE_DN,
    SERVICE_DN,
    SERVICE_PASSWORD,
    USER_PASSWORD,
    Slapd,
    TestCA,
    group_dn,
)

U00 = f"uid=u00,{PEOPLE_DN}"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory, ca: TestCA) -> Iterator[Slapd]:
    """One directory shared by the read-only tests."""
    with Slapd(tmp_path_factory.mktemp("slapd"), ca) as server:
        yield server


@pytest.fixture
def own_slapd(tmp_path: Path, ca: TestCA) -> Iterator[Slapd]:
    """A directory of its own, for tests that stop or freeze it."""
    with Slapd(tmp_path / "slapd", ca, people=4) as server:
        yield server


def tls(ca_file: Path) -> Tls:
    return Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca_file))


@contextmanager
def connect(
    url: str, user: str | None = None, password: str | None = None, ca_file: Path | None = None
) -> Iterator[Connection]:
    """An unbound connection (failures raise), closed at the end whatever happened."""
    server = Server(url, tls=tls(ca_file) if ca_file else None, connect_timeout=2)
    connection = Connection(server, user, password, receive_timeout=1, raise_exceptions=True)
    try:
        yield connection
    finally:
        with suppress(LDAPException):
            connection.unbind()


def read(connection: Connection, dn: str, *attributes: str) -> dict:
    connection.search(dn, "(objectClass=*)", search_scope="BASE", attributes=list(attributes))
    return connection.response[0]["attributes"]


def port_refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_person_binds_over_start_tls_verifying_the_server(slapd: Slapd, ca: TestCA) -> None:
    with connect(slapd.url, U00, USER_PASSWORD, ca.ca_file) as connection:
        connection.open()
        assert connection.start_tls()
        assert connection.bind()
        assert connection.extend.standard.who_am_i() == f"dn:{U00}"


def test_a_person_binds_over_ldaps_verifying_the_server(slapd: Slapd, ca: TestCA) -> None:
    with connect(slapd.ldaps_url, U00, USER_PASSWORD, ca.ca_file) as connection:
        assert connection.bind()


def test_the_service_account_binds(slapd: Slapd, ca: TestCA) -> None:
    with connect(slapd.ldaps_url, SERVICE_DN, SERVICE_PASSWORD, ca.ca_file) as connection:
        assert connection.bind()


def test_a_wrong_password_is_refused(slapd: Slapd) -> None:
    with connect(slapd.url, U00, "not-the-password") as connection, pytest.raises(LDAPException):
        connection.bind()


def test_a_certificate_from_another_ca_is_rejected(slapd: Slapd, ca: TestCA) -> None:
    with connect(slapd.ldaps_url, U00, USER_PASSWORD, ca.wrong_ca_file) as connection, pytest.raises(LDAPException):
        connection.bind()
    with connect(slapd.url, U00, USER_PASSWORD, ca.wrong_ca_file) as connection:
        connection.open()
        with pytest.raises(LDAPException):
            connection.start_tls()


def test_group_membership_shows_in_member_of(slapd: Slapd) -> None:
    with connect(slapd.url, U00, USER_PASSWORD) as connection:
        connection.bind()
        member_of = read(connection, U00, "memberOf")["memberOf"]
        assert set(member_of) == {group_dn("staff"), group_dn("finance"), group_dn("pilot")}
        alice = read(connection, f"uid=alice,{PEOPLE_DN}", "memberOf")["memberOf"]
        assert alice == [group_dn("appliance-admins")]


def test_entries_have_an_entry_uuid(slapd: Slapd) -> None:
    with connect(slapd.url) as connection:
        connection.bind()
        assert len(read(connection, U00, "entryUUID")["entryUUID"]) == 36


def test_the_special_cases_are_there(slapd: Slapd) -> None:
    with connect(slapd.url) as connection:
        connection.bind()
        connection.search(PEOPLE_DN, "(uid=élodie)", attributes=["cn"])
        assert connection.entries[0].cn.value == "Élodie Durand"
        connection.search(PEOPLE_DN, "(uid=jsmith)", attributes=["cn"])
        assert connection.entries[0].cn.value == "Smith, John"
        assert not read(connection, f"uid=nodept,{PEOPLE_DN}", "departmentNumber")["departmentNumber"]
        connection.search(BASE_DN, "(userAccountControl:1.2.840.113556.1.4.803:=2)", attributes=["uid"])
        assert [entry.uid.value for entry in connection.entries] == ["disabled"]
        assert read(connection, group_dn("posix-admins"), "memberUid")["memberUid"] == ["alice"]


def test_stop_refuses_connections_and_start_comes_back_on_the_same_port(own_slapd: Slapd) -> None:
    own_slapd.stop()
    assert not own_slapd.running() and port_refuses(own_slapd.port)
    own_slapd.stop()  # idempotent
    own_slapd.start()
    assert own_slapd.running()
    with connect(own_slapd.url, U00, USER_PASSWORD) as connection:
        assert connection.bind()


def test_a_paused_directory_accepts_connections_but_never_answers(own_slapd: Slapd) -> None:
    with connect(own_slapd.url) as connection:
        connection.bind()
        own_slapd.pause()
        assert not port_refuses(own_slapd.port)
        started = time.monotonic()
        with pytest.raises(LDAPException):
            connection.search(BASE_DN, "(uid=u00)")
        assert time.monotonic() - started < 3
    own_slapd.resume()
    with connect(own_slapd.url) as connection:
        assert connection.bind() and connection.search(BASE_DN, "(uid=u00)")


def test_two_instances_run_side_by_side_with_the_same_people(slapd: Slapd, own_slapd: Slapd) -> None:
    assert own_slapd.port != slapd.port
    uuids = []
    for server in (slapd, own_slapd):
        with connect(server.url) as connection:
            connection.bind()
            uuids.append(read(connection, U00, "entryUUID")["entryUUID"])
    assert uuids[0] == uuids[1]
