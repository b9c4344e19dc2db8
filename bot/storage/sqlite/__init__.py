"""The SQLite backend (the default): one file, WAL, three connections (see ``database.py``)."""

from __future__ import annotations

from pathlib import Path

from bot.storage.sqlite.database import Database, sqlite_path_from_url
from bot.storage.sqlite.progress import SqliteProgress
from bot.storage.sqlite.votes import SqliteVotes


def backend(database_url: str, base_dir: Path) -> tuple[Database, SqliteVotes, SqliteProgress]:
    """The backend for ``sqlite:///...``, not yet opened."""
    db = Database(sqlite_path_from_url(database_url, base_dir))
    return db, SqliteVotes(db), SqliteProgress(db)


__all__ = ["Database", "backend", "sqlite_path_from_url"]
