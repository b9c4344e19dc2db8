"""All SQL lives in this package, behind the one ``Storage`` class.

``Storage`` is composed of one mixin per area (content, settings, ...), each in its own module,
all sharing the single ``Database`` connection owner.
"""

from __future__ import annotations

from pathlib import Path

from bot.storage.content import ContentStore
from bot.storage.database import (
    Database,
    StorageBusy,
    StorageError,
    StorageFull,
    StorageReadOnly,
    sqlite_path_from_url,
)
from bot.storage.discussion import DiscussionStore
from bot.storage.settings import SettingsStore
from bot.storage.votes import VoteStore


class Storage(ContentStore, SettingsStore, VoteStore, DiscussionStore):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._init_settings_cache()

    @classmethod
    async def open(cls, database_url: str, base_dir: Path) -> Storage:
        """Open (creating and migrating if needed) the database named by ``DATABASE_URL``."""
        db = Database(sqlite_path_from_url(database_url, base_dir))
        await db.open()
        return cls(db)

    async def close(self) -> None:
        # Votes still queued for the group commit are written before the connection goes.
        await self.drain_votes()
        await self.db.close()


__all__ = [
    "Database",
    "Storage",
    "StorageBusy",
    "StorageError",
    "StorageFull",
    "StorageReadOnly",
    "sqlite_path_from_url",
]
