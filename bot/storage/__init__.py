"""All SQL lives in this package, behind the one ``Storage`` class.

``Storage`` is composed of one mixin per area (content, settings, ...), each in its own module,
all sharing the single ``Database`` connection owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
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
from bot.storage.progress import ProgressStore, delete_member_progress
from bot.storage.retention import RetentionStore
from bot.storage.settings import SettingsStore
from bot.storage.votes import VoteStore
from bot.storage.watch_roles import WatchRoleStore


@dataclass(frozen=True, slots=True)
class MemberForgotten:
    """What ``forget_member`` deleted."""

    watched_episodes: int
    votes: int
    vote_guild_ids: frozenset[int]  # the servers the votes were in


class Storage(
    ContentStore,
    SettingsStore,
    VoteStore,
    DiscussionStore,
    ProgressStore,
    WatchRoleStore,
    RetentionStore,
):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._init_settings_cache()
        self._init_progress_cache()
        self._init_watch_role_cache()

    @classmethod
    async def open(cls, database_url: str, base_dir: Path) -> Storage:
        """Open (creating and migrating if needed) the database named by ``DATABASE_URL``."""
        db = Database(sqlite_path_from_url(database_url, base_dir))
        await db.open()
        return cls(db)

    async def forget_member(self, user_id: int) -> MemberForgotten:
        """Delete everything stored about a member: their watch progress and their votes in
        every server, with the vote totals moved back, in one transaction committed before
        this returns."""
        try:
            votes, watched = await self.forget_voter(
                user_id, also=partial(delete_member_progress, user_id)
            )
        finally:
            self._progress_changed(user_id)
        return MemberForgotten(
            watched_episodes=watched, votes=votes.votes, vote_guild_ids=votes.guild_ids
        )

    def _guild_forgotten(self, guild_id: int) -> None:
        """After a departed server's data was deleted: drop what is cached about it."""
        self._settings_changed(guild_id)
        self._watch_roles_changed(guild_id)

    async def close(self) -> None:
        # Votes still queued for the group commit are written before the connection goes.
        await self.drain_votes()
        await self.db.close()


__all__ = [
    "Database",
    "MemberForgotten",
    "Storage",
    "StorageBusy",
    "StorageError",
    "StorageFull",
    "StorageReadOnly",
    "sqlite_path_from_url",
]
