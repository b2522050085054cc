"""Key-value facts about this installation (identity.db `settings` table)."""

from __future__ import annotations

from sqlite_utils import Database

from appliance.storage.connection import fetch_one, write


def get_value(db: Database, key: str) -> str | None:
    row = fetch_one(db, "SELECT value FROM settings WHERE key = ?", (key,))
    return row[0] if row else None


def set_value(db: Database, key: str, value: str) -> None:
    with write(db):
        db.conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
