"""The PostgreSQL backend (``DATABASE_URL=postgresql://...``), through asyncpg: one database
shared by any number of Embargo processes."""

from __future__ import annotations

from bot.storage.postgres.database import Database
from bot.storage.postgres.progress import PostgresProgress
from bot.storage.postgres.votes import PostgresVotes


def backend(database_url: str) -> tuple[Database, PostgresVotes, PostgresProgress]:
    """The backend for ``postgresql://...``, not yet opened."""
    db = Database(database_url)
    return db, PostgresVotes(db), PostgresProgress(db)


__all__ = ["Database", "backend"]
