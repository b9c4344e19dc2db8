"""Watch progress writes on SQLite: each one transaction in one trip to the writer's thread
(``Database.run_transaction``). The cache and the reads are shared (``bot/storage/progress.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial

from bot.progress import show_slug_of_key
from bot.storage.sqlite.database import Database


class SqliteProgress:
    """``ProgressBackend`` on SQLite."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def mark(self, user_id: int, keys: Sequence[str], watched_at: int) -> frozenset[str]:
        return await self.db.run_transaction(partial(_mark, user_id, keys, watched_at))

    async def unmark(self, user_id: int, keys: Sequence[str]) -> frozenset[str]:
        return await self.db.run_transaction(partial(_unmark, user_id, keys))


def _marked_among(conn: sqlite3.Connection, user_id: int, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` the member has marked: one primary-key range per show involved."""
    marked: set[str] = set()
    for show_slug in dict.fromkeys(show_slug_of_key(key) for key in keys):
        marked.update(
            row[0]
            for row in conn.execute(
                "SELECT episode_key FROM watched_episodes WHERE user_id = ? AND show_slug = ?",
                (user_id, show_slug),
            )
        )
    return marked & set(keys)


def _mark(
    user_id: int, keys: Sequence[str], watched_at: int, conn: sqlite3.Connection
) -> frozenset[str]:
    marked = _marked_among(conn, user_id, keys)
    added = [key for key in keys if key not in marked]
    conn.executemany(
        "INSERT INTO watched_episodes (user_id, show_slug, episode_key, watched_at) "
        "VALUES (?, ?, ?, ?)",
        [(user_id, show_slug_of_key(key), key, watched_at) for key in added],
    )
    return frozenset(added)


def _unmark(user_id: int, keys: Sequence[str], conn: sqlite3.Connection) -> frozenset[str]:
    removed = _marked_among(conn, user_id, keys)
    conn.executemany(
        "DELETE FROM watched_episodes WHERE user_id = ? AND show_slug = ? AND episode_key = ?",
        [(user_id, show_slug_of_key(key), key) for key in removed],
    )
    return frozenset(removed)


def delete_member_progress(user_id: int, conn: sqlite3.Connection) -> int:
    """Inside a transaction on the writer's thread: delete all of a member's marks; returns
    how many there were."""
    return conn.execute("DELETE FROM watched_episodes WHERE user_id = ?", (user_id,)).rowcount
