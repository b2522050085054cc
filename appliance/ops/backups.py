"""Backups of a data directory, and their restoration.

A backup is a directory: both databases (copied with VACUUM INTO while the
appliance keeps serving), the generated instance secret when there is one, a
manifest with checksums, and the key files of open rounds only when asked for.
Without keys, a restored open round cannot take votes: it can only be closed
(`appliance close-keyless-rounds`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from appliance import __version__
from appliance.settings import Settings
from appliance.storage import backup as stored
from appliance.storage import migrations
from appliance.storage.keys import INSTANCE_SECRET_FILE, key_path

MANIFEST = "backup.json"
INCOMPLETE = ".incomplete"  # a backup being written: NAME.incomplete, renamed NAME once complete
IN_PROGRESS = ".backup-in-progress"  # the mark of a directory this backup is writing
FORMAT = 1
KEYS = "keys"


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why and what to do."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    files: list[str]
    open_rounds: list[str]
    keys: list[str]  # open rounds whose key went into the backup


def file_digest(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _partial(target: Path) -> Path:
    """The name a copy has beside its target until it is complete."""
    return target.with_name(f".{target.name}.partial")


def _write_partial(source: Path, target: Path) -> Path:
    """Copy a file beside its target under its partial name, readable by its owner only and synced; that name."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = _partial(target)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle, open(source, "rb") as original:
        shutil.copyfileobj(original, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return partial


def _copy_private(source: Path, target: Path) -> None:
    """Copy a file so that only its owner can read the copy, replacing the target at once."""
    os.replace(_write_partial(source, target), target)


def _databases(settings: Settings) -> list[Path]:
    return [settings.storage.identity_db, settings.storage.ballots_db]


def make_backup(settings: Settings, target: Path, with_keys: bool = False) -> BackupReport:
    """Write a backup of the data directory into target, a new or empty directory."""
    storage = settings.storage
    stored.refuse_unfinished_restore(storage.data_dir)  # part old data, part a backup: not worth keeping
    for db in _databases(settings):
        if not db.is_file():
            raise BackupError(f"no database {db}: nothing to back up (check storage.data_dir)")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} already exists and is not an empty directory: give a new one")
    # A new directory is written beside the target as NAME.incomplete, and given the target's name once
    # complete: a backup stopped half-way (a full disk, Ctrl-C, a stopped job) is removed, or at worst (a kill)
    # left under a name that says what it is. An empty directory given (a mount point, perhaps) is written
    # into, and emptied again if the backup fails. Only what this backup made is ever removed.
    given = target.exists()
    work = target if given else target.with_name(target.name + INCOMPLETE)
    if not given and work.exists():
        if not (work.is_dir() and (work / IN_PROGRESS).is_file()):
            raise BackupError(f"{work} exists and is not a backup left unfinished: remove it, or give another name")
        running = _writer_running(work / IN_PROGRESS)
        if running:
            raise BackupError(f"a backup to {target} is being written (process {running}): wait for it, or give"
                              " another name")
        shutil.rmtree(work)  # what an earlier backup to this name left when it was killed
    made = False
    try:
        work.mkdir(parents=True, exist_ok=given, mode=0o700)
        made = True
        (work / IN_PROGRESS).write_text(f"{os.getpid()}\n", encoding="ascii")
        report = _write_backup(settings, work, with_keys)
        (work / IN_PROGRESS).unlink()
        if not given:
            os.replace(work, target)
    except BaseException as error:
        if made:
            _remove_contents(work) if given else shutil.rmtree(work, ignore_errors=True)
        left = made and (any(work.iterdir()) if given else work.exists())
        if not isinstance(error, (OSError, sqlite3.Error)):
            raise  # stopped (Ctrl-C, SIGTERM, a closed terminal): nothing of it is left either
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        if "full" in reason or (isinstance(error, OSError) and error.errno == errno.ENOSPC):
            reason = f"no space left on the disk of {target.parent.resolve()}"
        outcome = (f"part of it could not be removed: delete {work} (it may hold round keys)" if left
                   else "nothing of it is left")
        raise BackupError(f"backup not written to {target}: {reason}; {outcome}") from None
    return BackupReport(target, report.files, report.open_rounds, report.keys)


def _writer_running(marker: Path) -> int | None:
    """The process writing the backup this marker is in, if it still runs."""
    try:
        pid = int(marker.read_text(encoding="ascii").strip())
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, OSError):
        return None
    return pid if pid != os.getpid() else None


def _remove_contents(directory: Path) -> None:
    for left in directory.iterdir():
        if left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)
        else:
            left.unlink(missing_ok=True)


def _write_backup(settings: Settings, target: Path, with_keys: bool) -> BackupReport:
    """The databases, the generated secret, the keys if asked for, then the manifest, into target."""
    storage = settings.storage
    for db in _databases(settings):
        stored.vacuum_into(db, target / db.name)
    secret = storage.data_dir / INSTANCE_SECRET_FILE
    if settings.security.instance_secret is None and secret.is_file():
        _copy_private(secret, target / INSTANCE_SECRET_FILE)
    open_rounds = stored.open_round_ids(target / storage.ballots_db.name)
    copied = []
    for round_id in open_rounds if with_keys else []:
        key = key_path(storage.round_keys_dir, round_id)
        if key.is_file():
            _copy_private(key, target / KEYS / key.name)
            copied.append(round_id)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file() and p.name != IN_PROGRESS)
    manifest = {"format": FORMAT, "appliance": __version__,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "with_keys": with_keys, "open_rounds": open_rounds,
                "files": {name: file_digest(target / name) for name in files}}
    _write_synced(target / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return BackupReport(target, files, open_rounds, copied)


def read_manifest(source: Path) -> dict:
    """The manifest of a backup, its files checked against their checksums and the databases sound."""
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
        files: dict[str, str] = manifest["files"]
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise TypeError("files: not a table of checksums")
    except FileNotFoundError:
        if not source.is_dir():
            raise BackupError(f"{source} does not exist or is not a directory: give a backup's directory") from None
        raise BackupError(f"{source} is not a backup made by `appliance backup` (no {MANIFEST})") from None
    except (ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
        raise BackupError(f"{source / MANIFEST} is damaged: not a backup manifest") from None
    for name in ("identity.db", "ballots.db"):
        if name not in files:
            raise BackupError(f"{source} lacks {name}: not a complete backup")
    for name, digest in files.items():
        path = source / name
        if ".." in Path(name).parts or not path.is_file():
            raise BackupError(f"{path} is missing: the backup is incomplete")
        if file_digest(path) != digest:
            raise BackupError(f"{path} does not match its checksum in {MANIFEST}: the backup is damaged")
    for name in ("identity.db", "ballots.db"):
        try:
            problems = stored.integrity_problems(source / name)
        except sqlite3.DatabaseError as error:
            problems = [str(error)]
        if problems:
            raise BackupError(f"{source / name} fails the integrity check: {problems[0]}")
    return manifest


def _restore_plan(settings: Settings, source: Path, manifest: dict) -> list[tuple[Path, Path]]:
    """Every file a restore writes, as (file in the backup, file it replaces): databases, secret, keys."""
    storage = settings.storage
    plan = [(source / db.name, db) for db in _databases(settings)]
    if (source / INSTANCE_SECRET_FILE).is_file():
        plan.append((source / INSTANCE_SECRET_FILE, storage.data_dir / INSTANCE_SECRET_FILE))
    for name in manifest["files"]:
        if Path(name).parts[0] == KEYS:
            plan.append((source / name, storage.round_keys_dir / Path(name).name))
    return plan


def _discard(partials: list[Path]) -> None:
    """Remove partial copies, whatever else goes wrong (the error that made them useless is the one to report)."""
    for partial in partials:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def _stage(plan: list[tuple[Path, Path]]) -> None:
    """Copy every file of a restore beside its target, synced; on failure remove the copies: nothing live changed."""
    staged: list[Path] = []
    try:
        for source, target in plan:
            staged.append(_partial(target))
            _write_partial(source, target)
    except OSError as error:
        _discard(staged)
        raise BackupError(f"restore not applied: cannot copy {source} to {target}: {error.strerror or error};"
                          " the live data is unchanged") from None
    except BaseException:
        _discard(staged)
        raise


def _write_synced(path: Path, text: str) -> None:
    """Write a text file and wait until it is on disk."""
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def _sync_directory(directory: Path) -> None:
    """Make the renames in a directory durable, where the file system allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap(plan: list[tuple[Path, Path]]) -> None:
    """Move every staged copy into place, one os.replace each (atomic per file)."""
    moved = 0
    try:
        for _, target in plan:
            os.replace(_partial(target), target)
            moved += 1
    except OSError as error:
        _discard([_partial(later) for _, later in plan[moved:]])
        done = ", ".join(str(replaced) for _, replaced in plan[:moved]) or "nothing"
        raise BackupError(f"restore only partly applied: cannot move a copy to {target}: {error.strerror or error}"
                          f" ({done} replaced): restore again with --force before starting") from None
    for directory in {target.parent for _, target in plan}:
        _sync_directory(directory)


def _remove_logs(databases: list[Path]) -> None:
    """Delete the write-ahead log and shared-memory files the replaced databases left: they belong to the old data."""
    for db in databases:
        for suffix in stored.SQLITE_SIDECARS:
            log = Path(f"{db}{suffix}")
            try:
                log.unlink(missing_ok=True)
            except OSError as error:
                raise BackupError(f"restored, but cannot remove {log}: {error.strerror or error}:"
                                  " delete it before starting the appliance") from None


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version ("0.2.0rc1" -> (0, 2, 0)); () when it has none."""
    match = re.match(r"\d+(\.\d+)*", version.strip())
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def refuse_newer_backup(source: Path) -> None:
    """Refuse a backup made by a newer appliance: its manifest's version, or migrations this one does not know."""
    try:
        made_by = json.loads((source / MANIFEST).read_text(encoding="utf-8")).get("appliance")
    except (OSError, ValueError, AttributeError):
        made_by = None  # read_manifest says what is wrong with the backup
    if isinstance(made_by, str) and _release(made_by) > _release(__version__):
        raise BackupError(f"{source} was made by appliance {made_by}, newer than this one ({__version__}):"
                          " restore it with that version or newer; nothing was replaced")
    for path, known in ((source / "identity.db", migrations.identity), (source / "ballots.db", migrations.ballots)):
        try:
            unknown = migrations.unknown_to(known, stored.applied_migrations(path)) if path.is_file() else []
        except sqlite3.DatabaseError:
            continue  # damaged: restore_backup's integrity check names it
        if unknown:
            raise BackupError(f"{migrations.newer_database_message(path, unknown)}; nothing was replaced")


def restore_backup(settings: Settings, source: Path, replace: bool = False) -> BackupReport:
    """Put a backup's databases (and secret and keys, when it has them) into the data directory, all or nothing.

    Every file is first copied beside the one it replaces and synced; only when all copies are complete are they
    moved into place, and the old databases' logs removed. A failed copy leaves the live data as it was.
    """
    storage = settings.storage
    refuse_newer_backup(source)
    manifest = read_manifest(source)
    present = [db for db in _databases(settings) if db.is_file()]
    if present and not replace:
        raise BackupError(f"{storage.data_dir} already holds databases ({', '.join(p.name for p in present)}):"
                          " add --force to replace them with the backup")
    storage.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    plan = _restore_plan(settings, source, manifest)
    marker = storage.data_dir / stored.RESTORE_MARKER  # the appliance refuses to open the data while it is there
    try:
        # on disk before any file is swapped in, even through a power cut
        _write_synced(marker, f"restoring {source}\n")
        _sync_directory(storage.data_dir)
    except OSError as error:
        marker.unlink(missing_ok=True)
        raise BackupError(f"restore not applied: cannot write {marker}: {error.strerror or error};"
                          " the live data is unchanged") from None
    try:
        _stage(plan)
    except BaseException:
        marker.unlink()  # nothing live changed
        raise
    _swap(plan)  # a failure from here on leaves the marker: part of the backup may be in place
    _remove_logs(_databases(settings))
    marker.unlink()
    open_rounds = stored.open_round_ids(storage.ballots_db)
    with_key = [r for r in open_rounds if key_path(storage.round_keys_dir, r).is_file()]
    return BackupReport(storage.data_dir, sorted(manifest["files"]), open_rounds, with_key)
