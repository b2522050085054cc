"""`appliance backup | restore | doctor | bootstrap` against real data directories."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.ops.backups import file_digest
from appliance.services.context import build_appliance
from appliance.services.scheduler import SchedulerLock, held_elsewhere, lock_path
from appliance.settings import load_settings
from appliance.storage import keys, people
from appliance.storage.backup import open_read_only
from appliance.storage.connection import fetch_one
from appliance.storage.rounds import list_rounds
from tests.conftest import PASSWORD, add_person, create_open_round

DATA = "data"


def run(args: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(args)


@pytest.fixture
def voting(api, appliance) -> str:
    """An open round with a proposal and votes, the appliance still serving; the round id."""
    round_id = create_open_round(api("admin"), moderation="post", audience_groups=["staff"])
    proposal = api("u00").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Hold fewer meetings"}).json()
    for name in ("u00", "u01", "u02"):
        api(name).post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal["id"], "vote": "agree"})
    return round_id


def test_a_backup_made_while_serving_holds_both_databases_compacted_and_no_key(voting, tmp_path, monkeypatch, capsys):
    assert run(["backup", "backups/monday"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "1 open round(s), without their keys" in out and "--with-keys" in out
    assert "`appliance close-keyless-rounds` before the first start" in out  # what a restore of it will need
    backup = tmp_path / "backups" / "monday"
    assert sorted(p.name for p in backup.iterdir()) == ["backup.json", "ballots.db", "identity.db", "instance_secret"]
    manifest = json.loads((backup / "backup.json").read_text())
    assert manifest["open_rounds"] == [voting] and manifest["with_keys"] is False
    assert all((backup / name).stat().st_mode & 0o077 == 0 for name in ("ballots.db", "identity.db", "instance_secret"))
    db = open_read_only(backup / "ballots.db")
    assert fetch_one(db, "PRAGMA freelist_count") == (0,)  # VACUUM INTO: nothing deleted lingers
    assert fetch_one(db, "SELECT count(*) FROM ballots") == (3,)
    db.close()


def test_a_backup_with_keys_holds_the_open_rounds_keys(voting, tmp_path, monkeypatch, capsys):
    assert run(["backup", "b", "--with-keys"], monkeypatch) == 0
    assert "keep this backup as safe as the keys" in capsys.readouterr().out
    assert (tmp_path / "b" / "keys" / f"round-{voting}.key").read_bytes() == keys.read_round_key(
        tmp_path / DATA / "keys", voting)


def test_a_backup_never_overwrites_a_directory_in_use(voting, tmp_path, monkeypatch, capsys):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    assert run(["backup", "b"], monkeypatch) == 1
    assert "is not an empty directory" in capsys.readouterr().err


def test_a_restore_without_keys_says_the_open_rounds_will_be_closed(voting, appliance, tmp_path, monkeypatch, capsys):
    assert run(["backup", "b"], monkeypatch) == 0
    appliance.close()
    monkeypatch.setenv("APPLIANCE_STORAGE__DATA_DIR", str(tmp_path / "new"))
    assert run(["restore", "b"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "1 open round(s) have no key file" in out and "`appliance close-keyless-rounds`" in out
    restored = build_appliance(load_settings())
    assert [r.id for r in list_rounds(restored.dbs.ballots)] == [voting]
    assert restored.directory.authenticate("u01", PASSWORD) is not None
    assert (tmp_path / "new" / "instance_secret").read_bytes() == (tmp_path / DATA / "instance_secret").read_bytes()
    restored.close()


def test_a_restore_with_keys_puts_the_keys_back(voting, appliance, tmp_path, monkeypatch, capsys):
    assert run(["backup", "b", "--with-keys"], monkeypatch) == 0
    appliance.close()
    monkeypatch.setenv("APPLIANCE_STORAGE__DATA_DIR", str(tmp_path / "new"))
    monkeypatch.setenv("APPLIANCE_STORAGE__KEYS_DIR", str(tmp_path / "keys"))
    assert run(["restore", "b"], monkeypatch) == 0
    assert "no key file" not in capsys.readouterr().out
    assert keys.read_round_key(tmp_path / "keys", voting) is not None


def test_a_restore_refuses_to_replace_data_without_force(voting, appliance, tmp_path, monkeypatch, capsys):
    assert run(["backup", "b"], monkeypatch) == 0
    appliance.close()
    assert run(["restore", "b"], monkeypatch) == 1
    assert "add --force" in capsys.readouterr().err
    (tmp_path / DATA / "ballots.db-wal").write_bytes(b"a log of the replaced database")
    assert run(["restore", "b", "--force"], monkeypatch) == 0
    data = tmp_path / DATA
    for name in ("identity.db", "ballots.db", "instance_secret"):
        assert file_digest(data / name) == file_digest(tmp_path / "b" / name)
    assert not (data / "ballots.db-wal").exists()
    assert not list(data.rglob("*.partial"))


def tree_digests(directory: Path) -> dict[str, str]:
    """Every file under a directory, by relative name, with its SHA-256 (but the scheduler's empty lock file)."""
    return {str(p.relative_to(directory)): file_digest(p) for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != "scheduler.lock"}


def fill(directory: Path) -> int:
    """Bytes used on the file system of a directory."""
    stat = os.statvfs(directory)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own, resized with remount. The tests run as root (.ci/run), so a mount that fails is a
    failure of the machine to report, not a reason to skip the one real disk-full test."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mount_point)],
                             capture_output=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs (run the tests as root): {mounted.stderr.decode()}"
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def resize(mount_point: Path, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount_point)], check=True, capture_output=True)


def test_a_restore_that_runs_out_of_disk_changes_nothing(voting, appliance, small_disk, tmp_path, monkeypatch,
                                                         capsys):
    assert run(["backup", "b"], monkeypatch) == 0
    appliance.close()
    live = small_disk / DATA
    shutil.copytree(tmp_path / DATA, live)
    monkeypatch.setenv("APPLIANCE_STORAGE__DATA_DIR", str(live))
    before = tree_digests(live)
    assert before["ballots.db"] != file_digest(tmp_path / "b" / "ballots.db")
    page = os.statvfs(small_disk).f_frsize
    identity_pages = -(-(tmp_path / "b" / "identity.db").stat().st_size // page)
    assert (tmp_path / "b" / "ballots.db").stat().st_size > 2 * page
    # Room for the lock and restore-marker files and identity.db, not for ballots.db.
    resize(small_disk, fill(small_disk) + (identity_pages + 3) * page)
    assert run(["restore", "b", "--force"], monkeypatch) == 1
    err = capsys.readouterr().err
    assert "restore not applied" in err and "the live data is unchanged" in err
    assert f"to {live / 'ballots.db'}: No space left on device" in err
    assert tree_digests(live) == before  # both databases, the secret, the keys; and no partial copy left
    resize(small_disk, 64 << 20)
    assert run(["restore", "b", "--force"], monkeypatch) == 0
    assert file_digest(live / "ballots.db") == file_digest(tmp_path / "b" / "ballots.db")
    assert not list(live.rglob("*.partial"))


def test_a_backup_that_runs_out_of_disk_leaves_nothing_that_looks_like_a_backup(voting, small_disk, monkeypatch,
                                                                                 capsys):
    page = os.statvfs(small_disk).f_frsize
    resize(small_disk, fill(small_disk) + 8 * page)  # room for a start, not for both databases
    for target in (small_disk / "monday", small_disk / "mounted"):
        if target.name == "mounted":
            target.mkdir()  # an empty directory given, a mount point perhaps: written into, emptied again
        assert run(["backup", str(target)], monkeypatch) == 1
        err = capsys.readouterr().err
        assert f"backup not written to {target}: no space left on the disk of {small_disk}" in err
        assert "nothing of it is left" in err
        assert not list(small_disk.rglob("*.db")) and not list(small_disk.rglob("*.incomplete"))
    assert not (small_disk / "monday").exists() and list((small_disk / "mounted").iterdir()) == []
    resize(small_disk, 64 << 20)
    assert run(["backup", str(small_disk / "monday")], monkeypatch) == 0  # the same name, once there is room
    assert (small_disk / "monday" / "backup.json").is_file()


def test_a_backup_stopped_half_way_leaves_no_copy_of_the_keys_and_removes_only_what_it_made(
        voting, tmp_path, monkeypatch, capsys):
    import appliance.ops.backups as backups

    def stopped(path):  # Ctrl-C, or SIGTERM turned into an exit, at the last step: cannot be timed for real
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(backups, "file_digest", stopped)
        with pytest.raises(KeyboardInterrupt):
            backups.make_backup(load_settings(), tmp_path / "nightly", with_keys=True)
    assert not (tmp_path / "nightly").exists() and not (tmp_path / "nightly.incomplete").exists()

    notes = tmp_path / "monday.incomplete"
    notes.write_text("the operator's own file\n")
    assert run(["backup", str(tmp_path / "monday")], monkeypatch) == 1
    assert "monday.incomplete exists and is not a backup left unfinished" in capsys.readouterr().err
    assert notes.read_text() == "the operator's own file\n"  # never removed

    killed = tmp_path / "tuesday.incomplete"  # a backup killed outright leaves its mark: the next one clears it
    killed.mkdir()
    (killed / "identity.db").write_bytes(b"half")
    still_running = subprocess.Popen(["sleep", "60"])
    try:  # unless the process that wrote it still runs: two backups to one name at once
        (killed / backups.IN_PROGRESS).write_text(f"{still_running.pid}\n")
        assert run(["backup", str(tmp_path / "tuesday")], monkeypatch) == 1
        assert f"a backup to {tmp_path / 'tuesday'} is being written (process {still_running.pid})" in (
            capsys.readouterr().err)
        assert (killed / "identity.db").read_bytes() == b"half"
    finally:
        still_running.kill()
        still_running.wait()
    assert run(["backup", str(tmp_path / "tuesday")], monkeypatch) == 0
    assert not killed.exists() and (tmp_path / "tuesday" / "backup.json").is_file()
    assert backups.IN_PROGRESS not in json.loads((tmp_path / "tuesday" / "backup.json").read_text())["files"]


def test_a_restore_that_fails_on_its_last_file_changes_nothing(voting, appliance, tmp_path, monkeypatch, capsys):
    assert run(["backup", "b", "--with-keys"], monkeypatch) == 0
    appliance.close()
    live = tmp_path / DATA
    before = tree_digests(live)
    copy = shutil.copyfileobj
    calls = []

    def failing_on_the_key(source, target, *args):  # an I/O error cannot be produced for real in a test
        calls.append(Path(source.name).name)
        if source.name.endswith(".key"):
            target.write(b"half a key")
            raise OSError(errno.EIO, "Input/output error")
        copy(source, target, *args)

    monkeypatch.setattr(shutil, "copyfileobj", failing_on_the_key)
    assert run(["restore", "b", "--force"], monkeypatch) == 1
    assert calls == ["identity.db", "ballots.db", "instance_secret", f"round-{voting}.key"]  # the last file fails
    err = capsys.readouterr().err
    assert "restore not applied" in err and "the live data is unchanged" in err
    assert f"to {Path(DATA) / 'keys' / f'round-{voting}.key'}: Input/output error" in err
    assert tree_digests(live) == before


def test_a_restore_stopped_half_way_keeps_the_appliance_from_opening_until_it_is_run_again(
        voting, appliance, tmp_path, monkeypatch, capsys):
    assert run(["backup", "b", "--with-keys"], monkeypatch) == 0
    appliance.close()
    live = tmp_path / DATA
    key = live / "keys" / f"round-{voting}.key"
    key.unlink()
    (key / "in-the-way").mkdir(parents=True)  # the last file cannot be moved into place: the others were
    assert run(["restore", "b", "--force"], monkeypatch) == 1
    assert "restore only partly applied" in capsys.readouterr().err
    for command in (["user", "list"], ["serve"], ["migrate"], ["backup", "mixed"]):
        assert run(command, monkeypatch) == 1, command
        err = capsys.readouterr().err
        assert f"a restore into {DATA} is running or did not finish" in err and "restore --force" in err
    assert not (tmp_path / "mixed").exists()  # no backup of part old data, part restored
    assert run(["doctor"], monkeypatch) == 1
    assert "did not finish" in capsys.readouterr().out
    shutil.rmtree(key)
    assert run(["restore", "b", "--force"], monkeypatch) == 0
    assert not (live / "restore-unfinished").exists()
    assert run(["user", "list"], monkeypatch) == 0


def test_a_restore_holds_the_lock_while_it_copies(voting, appliance, tmp_path, monkeypatch):
    assert run(["backup", "b"], monkeypatch) == 0
    appliance.close()
    copy, held = shutil.copyfileobj, []

    def noting_the_lock(source, target, *args):
        held.append(held_elsewhere(lock_path(appliance.settings)))
        copy(source, target, *args)

    monkeypatch.setattr(shutil, "copyfileobj", noting_the_lock)
    assert run(["restore", "b", "--force"], monkeypatch) == 0
    assert held == [True, True, True] and not held_elsewhere(lock_path(appliance.settings))


def test_a_restore_refuses_while_the_appliance_runs(voting, appliance, monkeypatch, capsys):
    assert run(["backup", "b"], monkeypatch) == 0
    lock = SchedulerLock(lock_path(appliance.settings))
    assert lock.acquire()
    try:
        assert run(["restore", "b", "--force"], monkeypatch) == 1
        assert "stop it, then restore" in capsys.readouterr().err
    finally:
        lock.release()


def test_a_damaged_backup_is_refused_and_nothing_is_replaced(voting, appliance, tmp_path, monkeypatch, capsys):
    assert run(["backup", "b"], monkeypatch) == 0
    with open(tmp_path / "b" / "ballots.db", "r+b") as damaged:
        damaged.seek(4200)
        damaged.write(b"\xff" * 16)
    monkeypatch.setenv("APPLIANCE_STORAGE__DATA_DIR", str(tmp_path / "new"))
    assert run(["restore", "b"], monkeypatch) == 1
    assert "does not match its checksum" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert run(["restore", str(tmp_path)], monkeypatch) == 1
    assert "not a backup made by `appliance backup`" in capsys.readouterr().err
    assert run(["restore", str(tmp_path / "no-such-backup")], monkeypatch) == 1
    assert f"{tmp_path / 'no-such-backup'} does not exist or is not a directory" in capsys.readouterr().err
    for manifest in ('{"files": ["identity.db", "ballots.db"]}', '{"files": "all"}', "\udcff", "[]"):
        (tmp_path / "b" / "backup.json").write_text(manifest, encoding="utf-8", errors="surrogateescape")
        assert run(["restore", "b"], monkeypatch) == 1
        assert "is damaged: not a backup manifest" in capsys.readouterr().err


def test_doctor_passes_with_warnings_on_a_fresh_appliance(monkeypatch, capsys):
    assert run(["init"], monkeypatch) == 0
    capsys.readouterr()
    assert run(["doctor"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "ok    identity.db: integrity ok, schema up to date" in out
    assert "warn  storage.keys_dir:" in out and "inside the data directory" in out
    assert "warn  directory: local, and nobody is an admin yet" in out
    assert "ok    mail: off" in out
    assert out.rstrip().endswith("all checks passed, 2 warning(s)")


def test_doctor_says_a_read_only_data_directory_is_no_damaged_database(small_disk, monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_STORAGE__DATA_DIR", str(small_disk / DATA))
    assert run(["init"], monkeypatch) == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        capsys.readouterr()
        assert run(["doctor"], monkeypatch) == 1
        out = capsys.readouterr().out
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert f"fail  storage.data_dir: {small_disk / DATA} is on a read-only file system: mount it read-write" in out
    assert "identity.db is on a read-only file system: mount it read-write; the database itself is not the" in out
    assert "restore" not in out  # restoring a backup is no cure for a mount, and would lose what was voted since
    assert "ok    mail: off" in out  # every check ran


def test_doctor_fails_when_an_open_round_lost_its_key(voting, appliance, tmp_path, monkeypatch, capsys):
    keys.destroy_round_key(appliance.keys_dir, voting)
    assert run(["doctor"], monkeypatch) == 1
    out = capsys.readouterr().out
    assert f"fail  round {voting}: open, but its key file is not in" in out and "close-keyless-rounds" in out
    assert "ok    directory: local, 1 admin(s)" in out


def test_doctor_is_content_with_keys_on_a_filesystem_of_their_own(monkeypatch, capsys):
    shm = Path("/dev/shm")
    assert shm.is_dir(), "this test needs the tmpfs every Linux mounts at /dev/shm"
    keys_dir = shm / f"appliance-doctor-{id(capsys)}"
    monkeypatch.setenv("APPLIANCE_STORAGE__KEYS_DIR", str(keys_dir))
    try:
        assert run(["init"], monkeypatch) == 0
        keys_dir.mkdir(mode=0o700, exist_ok=True)
        assert run(["doctor"], monkeypatch) == 0
        assert f"ok    storage.keys_dir: {keys_dir} is apart from the data" in capsys.readouterr().out
    finally:
        keys_dir.rmdir()


def deny_writing(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """os.access says path cannot be written (the tests may run as root, whom modes do not stop)."""
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: (Path(p).absolute() != path.absolute()
                                                             or not mode & os.W_OK) and access(p, mode, **kw))


def test_doctor_fails_when_the_keys_dir_cannot_be_written(tmp_path, monkeypatch, capsys):
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir(mode=0o700)
    monkeypatch.setenv("APPLIANCE_STORAGE__KEYS_DIR", str(keys_dir))
    assert run(["init"], monkeypatch) == 0
    capsys.readouterr()
    deny_writing(monkeypatch, keys_dir)
    assert run(["doctor"], monkeypatch) == 1
    out = capsys.readouterr().out
    assert f"fail  storage.keys_dir: {keys_dir} cannot be written by this user (uid {os.getuid()})" in out
    assert "is apart from the data" not in out


def test_doctor_fails_when_the_keys_dir_is_missing_and_cannot_be_made(tmp_path, monkeypatch, capsys):
    (tmp_path / "locked").mkdir()
    keys_dir = tmp_path / "locked" / "appliance" / "keys"
    monkeypatch.setenv("APPLIANCE_STORAGE__KEYS_DIR", str(keys_dir))
    assert run(["init"], monkeypatch) == 0
    shutil.rmtree(keys_dir.parent, ignore_errors=True)  # in case init made it
    capsys.readouterr()
    deny_writing(monkeypatch, tmp_path / "locked")
    assert run(["doctor"], monkeypatch) == 1
    out = capsys.readouterr().out
    assert (f"fail  storage.keys_dir: {keys_dir} does not exist and cannot be made: {tmp_path / 'locked'} cannot"
            " be written by this user") in out


def test_doctor_accepts_a_missing_keys_dir_it_can_make(tmp_path, monkeypatch, capsys):
    keys_dir = tmp_path / "elsewhere" / "keys"
    monkeypatch.setenv("APPLIANCE_STORAGE__KEYS_DIR", str(keys_dir))
    assert run(["init"], monkeypatch) == 0
    capsys.readouterr()
    if keys_dir.is_dir():
        keys_dir.rmdir()
    assert run(["doctor"], monkeypatch) == 0
    assert f"ok    storage.keys_dir: {keys_dir} is apart from the data" in capsys.readouterr().out


def test_doctor_warns_of_keys_on_the_data_filesystem_unless_mounted_of_their_own(tmp_path, monkeypatch, capsys):
    keys_dir = tmp_path / "keys"  # beside ./data, on the same filesystem
    keys_dir.mkdir(mode=0o700)
    monkeypatch.setenv("APPLIANCE_STORAGE__KEYS_DIR", str(keys_dir))
    assert run(["init"], monkeypatch) == 0
    capsys.readouterr()
    assert run(["doctor"], monkeypatch) == 0
    assert f"warn  storage.keys_dir: {keys_dir} is on the same filesystem as the data" in capsys.readouterr().out
    # Two Docker volumes on one disk: the same device, but keys_dir is a mount point of its own.
    ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == keys_dir or ismount(p))
    assert run(["doctor"], monkeypatch) == 0
    assert f"ok    storage.keys_dir: {keys_dir} is apart from the data" in capsys.readouterr().out


def test_doctor_fails_on_a_damaged_database(tmp_path, monkeypatch, capsys):
    assert run(["init"], monkeypatch) == 0
    (tmp_path / DATA / "ballots.db").write_bytes(b"this is not a database" * 100)
    assert run(["doctor"], monkeypatch) == 1
    assert "fail  ballots.db: integrity check failed" in capsys.readouterr().out


def test_doctor_names_a_bad_setting(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_SERVER__PORT", "eighty")
    assert run(["doctor"], monkeypatch) == 1
    assert "fail  configuration: setting server.port (APPLIANCE_SERVER__PORT)" in capsys.readouterr().out


def admin_password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    (tmp_path / "pw").write_text(password + "\n")
    monkeypatch.setenv("APPLIANCE_ADMIN_PASSWORD_FILE", str(tmp_path / "pw"))


def test_bootstrap_makes_the_first_admin_from_the_password_file_once(tmp_path, monkeypatch, capsys):
    admin_password_file(tmp_path, monkeypatch, "a-first-admin-password")
    assert run(["bootstrap"], monkeypatch) == 0
    assert run(["bootstrap"], monkeypatch) == 0
    app = build_appliance(load_settings())
    assert [p.username for p in people.list_people(app.dbs.identity)] == ["admin"]
    assert app.directory.authenticate("admin", "a-first-admin-password") is not None
    app.close()
    out = capsys.readouterr().out
    assert "first admin 'admin' created" in out and "local admin(s): admin" in out
    assert "a-first-admin-password" not in out


def test_bootstrap_without_a_password_file_says_how_to_make_the_first_admin(monkeypatch, capsys):
    assert run(["bootstrap"], monkeypatch) == 0
    assert "appliance user add admin --group admins" in capsys.readouterr().out
    app = build_appliance(load_settings())
    assert people.list_people(app.dbs.identity) == []  # never a default password
    app.close()


def test_bootstrap_refuses_a_short_password(tmp_path, monkeypatch, capsys):
    admin_password_file(tmp_path, monkeypatch, "short")
    assert run(["bootstrap"], monkeypatch) == 1
    assert "must have at least 10 characters" in capsys.readouterr().err


def test_bootstrap_explains_a_password_file_that_is_not_utf8(tmp_path, monkeypatch, capsys):
    admin_password_file(tmp_path, monkeypatch, "a long enough password")
    (tmp_path / "pw").write_bytes("a long enough password".encode("utf-16"))
    assert run(["bootstrap"], monkeypatch) == 1
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_bootstrap_leaves_an_appliance_with_an_admin_alone(appliance, tmp_path, monkeypatch, capsys):
    add_person(appliance, "hr", {"admins"})
    admin_password_file(tmp_path, monkeypatch, "a-first-admin-password")
    assert run(["bootstrap"], monkeypatch) == 0
    assert people.find_by_username(appliance.dbs.identity, "admin") is not None  # the seeded one
    assert "local admin(s): admin, hr" in capsys.readouterr().out


def test_healthcheck_fails_when_nothing_answers(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_SERVER__PORT", "9")  # discard: nothing listens there
    assert run(["healthcheck"], monkeypatch) == 1
    assert "http://127.0.0.1:9/healthz" in capsys.readouterr().err


def test_a_tls_certificate_needs_its_key(tmp_path, monkeypatch, capsys):
    (tmp_path / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("APPLIANCE_SERVER__TLS_CERTIFICATE_FILE", str(tmp_path / "cert.pem"))
    assert run(["healthcheck"], monkeypatch) == 2
    assert ("setting server.tls_key_file (APPLIANCE_SERVER__TLS_KEY_FILE): required with server.tls_certificate_file"
            in capsys.readouterr().err)


def test_doctor_warns_of_pending_migrations(tmp_path, monkeypatch, capsys):
    from appliance.storage import migrations
    from appliance.storage.connection import connect

    for name, known in (("identity.db", migrations.identity), ("ballots.db", migrations.ballots)):
        db = connect(tmp_path / DATA / name)
        first, second = [m.name for m in known.pending(db)][:2]
        known.apply(db, stop_before=second)
        db.close()
    assert run(["doctor"], monkeypatch) == 0
    assert "warn  ballots.db: integrity ok, " in capsys.readouterr().out


def test_close_keyless_rounds_closes_the_open_rounds_without_a_key_and_only_them(voting, api, appliance, monkeypatch,
                                                                                  capsys):
    kept = create_open_round(api("admin"), title="Canteen", audience_groups=["staff"])
    appliance.close()
    keys_dir = Path(DATA) / "keys"
    keys.key_path(keys_dir, voting).unlink()  # a backup restored without this key
    assert run(["close-keyless-rounds"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert f"closed round {voting} (Day-to-day work): no key file in {keys_dir}" in out and kept not in out
    app = build_appliance(load_settings())
    assert {r.id: r.status for r in list_rounds(app.dbs.ballots)} == {voting: "closed", kept: "open"}
    app.close()
    assert keys.read_round_key(keys_dir, kept) is not None
    assert run(["close-keyless-rounds"], monkeypatch) == 0
    assert "nothing closed" in capsys.readouterr().out


def test_close_keyless_rounds_closes_them_all_when_every_key_is_gone(voting, appliance, monkeypatch, capsys):
    appliance.close()
    shutil.rmtree(Path(DATA) / "keys")  # what `serve` refuses without --close-keyless-rounds
    assert run(["close-keyless-rounds"], monkeypatch) == 0
    assert f"closed round {voting}" in capsys.readouterr().out


def test_close_keyless_rounds_refuses_while_the_appliance_runs(voting, appliance, monkeypatch, capsys):
    keys.key_path(appliance.keys_dir, voting).unlink()
    lock = SchedulerLock(lock_path(appliance.settings))
    assert lock.acquire()
    try:
        assert run(["close-keyless-rounds"], monkeypatch) == 1
        assert "stop it, then close the rounds" in capsys.readouterr().err
    finally:
        lock.release()
    assert [r.status for r in list_rounds(appliance.dbs.ballots)] == ["open"]


def record_newer_migration(database: Path, migration_set: str) -> None:
    """What a newer version leaves in a database it migrated: a migration this version does not know."""
    db = sqlite3.connect(database)
    db.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
               (migration_set, "9999_from_the_future", "2031-01-01 00:00:00.000000+00:00"))
    db.commit()
    db.close()


NEWER = ("ballots.db was last used by a newer version of the appliance (migration '9999_from_the_future' is"
         " unknown to this one): run that version or newer, or restore a backup made with this one")


def test_a_database_migrated_by_a_newer_version_is_refused(monkeypatch, capsys):
    assert run(["init"], monkeypatch) == 0
    record_newer_migration(Path(DATA) / "ballots.db", "appliance.ballots")
    capsys.readouterr()
    for command in ("init", "migrate", "bootstrap", "close-keyless-rounds"):
        assert run([command], monkeypatch) == 1, command
        err = capsys.readouterr().err
        assert err.startswith("appliance: database error: " + NEWER) and err.count("\n") == 1, (command, err)
    assert run(["doctor"], monkeypatch) == 1
    assert f"fail  ballots.db: {NEWER}" in capsys.readouterr().out


def test_serve_refuses_a_database_of_a_newer_version_in_one_line(tmp_path):
    data = tmp_path / "data"
    assert subprocess.run([sys.executable, "-m", "appliance", "init"], env=serve_env(data, free_port()),
                          capture_output=True).returncode == 0
    record_newer_migration(data / "ballots.db", "appliance.ballots")
    served = subprocess.run([sys.executable, "-m", "appliance", "serve"], env=serve_env(data, port=free_port()),
                            capture_output=True, text=True, timeout=60)
    assert served.returncode == 1 and served.stderr == f"appliance: database error: {NEWER} ({data / 'ballots.db'})\n"


def serve_env(data: Path, port: int) -> dict[str, str]:
    return dict(os.environ, APPLIANCE_STORAGE__DATA_DIR=str(data), APPLIANCE_SERVER__PORT=str(port))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_restore_refuses_a_backup_made_by_a_newer_appliance(voting, appliance, tmp_path, monkeypatch, capsys):
    assert run(["backup", "b"], monkeypatch) == 0
    appliance.close()
    manifest = json.loads((tmp_path / "b" / "backup.json").read_text())
    (tmp_path / "b" / "backup.json").write_text(json.dumps(manifest | {"appliance": "99.0.0"}))
    before = tree_digests(tmp_path / DATA)
    assert run(["restore", "b", "--force"], monkeypatch) == 1
    assert "b was made by appliance 99.0.0, newer than this one (0.1.0)" in capsys.readouterr().err
    assert tree_digests(tmp_path / DATA) == before


def test_a_restore_refuses_a_backup_whose_database_a_newer_version_migrated(voting, appliance, tmp_path, monkeypatch,
                                                                              capsys):
    assert run(["backup", "b"], monkeypatch) == 0
    appliance.close()
    record_newer_migration(tmp_path / "b" / "ballots.db", "appliance.ballots")  # a manifest without the version
    before = tree_digests(tmp_path / DATA)
    assert run(["restore", "b", "--force"], monkeypatch) == 1
    assert NEWER in capsys.readouterr().err
    assert tree_digests(tmp_path / DATA) == before
