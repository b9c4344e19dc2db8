"""All SQL lives in this package, behind the one ``Storage`` class.

``Storage`` combines one class per area (content, settings, votes, ...), each in its own
module, over one backend (``bot/storage/backend.py``): a ``Database`` that owns the
connections, plus the engine-specific writes of votes and watch progress. ``DATABASE_URL``
picks the backend: ``sqlite:///path`` (the default) or ``postgresql://...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.storage.backend import Database
from bot.storage.content import ContentStore
from bot.storage.discussion import DiscussionStore
from bot.storage.errors import (
    StorageBusy,
    StorageDamaged,
    StorageError,
    StorageFull,
    StorageReadOnly,
)
from bot.storage.progress import ProgressBackend, ProgressStore
from bot.storage.retention import RetentionStore
from bot.storage.settings import SettingsStore
from bot.storage.votes import VoteBackend, VoteStore
from bot.storage.watch_roles import WatchRoleStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


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
    def __init__(
        self, db: Database, vote_backend: VoteBackend, progress_backend: ProgressBackend
    ) -> None:
        self.db = db
        self.vote_backend = vote_backend
        self.progress_backend = progress_backend
        self._init_settings_cache()
        self._init_progress_cache()
        self._init_watch_role_cache()

    @classmethod
    async def open(cls, database_url: str, base_dir: Path) -> Storage:
        """Open (creating and migrating if needed) the database named by ``DATABASE_URL``."""
        if database_url.startswith(POSTGRES_SCHEMES):
            from bot.storage import postgres

            db, votes, progress = postgres.backend(database_url)
        else:
            from bot.storage import sqlite

            db, votes, progress = sqlite.backend(database_url, base_dir)
        await db.open()
        return cls(db, votes, progress)

    async def forget_member(self, user_id: int) -> MemberForgotten:
        """Delete everything stored about a member: their watch progress and their votes in
        every server, with the vote totals moved back, in one transaction committed before
        this returns."""
        try:
            votes, watched = await self.forget_voter(user_id)
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
    "StorageDamaged",
    "StorageError",
    "StorageFull",
    "StorageReadOnly",
]
