"""Secrets kept as files, outside the databases: the instance secret and round keys.

A round key lives only while its round is open; at close it is overwritten and
deleted, and with it any way to link a pseudonym or author label to a person.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_BYTES = 32
INSTANCE_SECRET_FILE = "instance_secret"


def _write_private(path: Path, data: bytes) -> None:
    """Create a file readable by the owner only, refusing to overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as error:  # a full disk: no empty file left, which would refuse the next try as "exists"
        path.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:  # a failed write names no file: name it
            raise OSError(error.errno, error.strerror, str(path.absolute())) from error
        raise


def load_or_create_instance_secret(data_dir: Path) -> bytes:
    """The instance secret from the data directory, generated (mode 0600) on first start."""
    path = data_dir / INSTANCE_SECRET_FILE
    if not path.exists():
        _write_private(path, secrets.token_hex(KEY_BYTES).encode())
    return path.read_bytes().strip()


def key_path(keys_dir: Path, round_id: str) -> Path:
    return keys_dir / f"round-{round_id}.key"


def create_round_key(keys_dir: Path, round_id: str) -> bytes:
    """A new random round secret, written to its own key file."""
    secret = secrets.token_bytes(KEY_BYTES)
    _write_private(key_path(keys_dir, round_id), secret)
    return secret


def read_round_key(keys_dir: Path, round_id: str) -> bytes | None:
    """The round secret, or None when its key file is gone."""
    try:
        return key_path(keys_dir, round_id).read_bytes()
    except FileNotFoundError:
        return None


def destroy_round_key(keys_dir: Path, round_id: str) -> None:
    """Overwrite the key file with random bytes, sync, and delete it."""
    path = key_path(keys_dir, round_id)
    try:
        with open(path, "r+b") as handle:
            handle.write(secrets.token_bytes(max(KEY_BYTES, path.stat().st_size)))
            handle.flush()
            os.fsync(handle.fileno())
    except FileNotFoundError:
        return
    path.unlink(missing_ok=True)


def round_ids_with_keys(keys_dir: Path) -> list[str]:
    """Rounds whose key file exists."""
    if not keys_dir.is_dir():
        return []
    return [p.name.removeprefix("round-").removesuffix(".key") for p in keys_dir.glob("round-*.key")]
