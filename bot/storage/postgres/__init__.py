"""The PostgreSQL backend (``DATABASE_URL=postgresql://...``), through asyncpg: one database
shared by any number of Embargo processes."""

from __future__ import annotations

from bot.storage.postgres.database import POOL_SIZE, Database
from bot.storage.postgres.progress import PostgresProgress
from bot.storage.postgres.votes import PostgresVotes


def backend(
    database_url: str, pool_size: int | None = None
) -> tuple[Database, PostgresVotes, PostgresProgress]:
    """The backend for ``postgresql://...``, not yet opened, keeping ``pool_size``
    connections for queries (None: ``POOL_SIZE``)."""
    db = Database(database_url, pool_size=POOL_SIZE if pool_size is None else pool_size)
    return db, PostgresVotes(db), PostgresProgress(db)


__all__ = ["Database", "backend"]
