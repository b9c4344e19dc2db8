"""All SQL lives in this package, behind the one ``Storage`` class.

``Storage`` combines one class per area (content, settings, votes, ...), each in its own
module, over one backend (``bot/storage/backend.py``): a ``Database`` that owns the
connections, plus the engine-specific writes of votes and watch progress. ``DATABASE_URL``
picks the backend: ``sqlite:///path`` (the default) or ``postgresql://...``.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from bot.storage.identify import IdentifyStore
from bot.storage.members import MemberSpoilerStore
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
    MemberSpoilerStore,
    IdentifyStore,
):
    def __init__(
        self, db: Database, vote_backend: VoteBackend, progress_backend: ProgressBackend
    ) -> None:
        self.db = db
        self.vote_backend = vote_backend
        self.progress_backend = progress_backend
        self._caching = True
        self._init_settings_cache()
        self._init_progress_cache()
        self._init_watch_role_cache()
        self._init_member_spoiler_cache()
        self._init_content_listeners()

    @classmethod
    async def open(
        cls, database_url: str, base_dir: Path, *, pool_size: int | None = None
    ) -> Storage:
        """Open (creating and migrating if needed) the database named by ``DATABASE_URL``;
        ``pool_size``: PostgreSQL connections to keep for queries (None: the default)."""
        db: Database
        votes: VoteBackend
        progress: ProgressBackend
        if database_url.startswith(POSTGRES_SCHEMES):
            from bot.storage import postgres

            db, votes, progress = postgres.backend(database_url, pool_size)
        else:
            from bot.storage import sqlite

            db, votes, progress = sqlite.backend(database_url, base_dir)
        await db.open()
        storage = cls(db, votes, progress)
        try:
            await db.listen(storage.changed_elsewhere, storage.trust_caches)
        except BaseException:
            await db.close()
            raise
        return storage

    def changed_elsewhere(self, changes: Sequence[str]) -> None:
        """Another process committed these changes (``bot/storage/backend.py``: change
        names): drop what the caches hold of them, and any fill racing them."""
        for change in changes:
            kind, _, key = change.partition(":")
            if kind == "settings":
                self._settings_changed(int(key))
            elif kind == "member_spoilers":
                self._member_spoilers_changed(int(key))
            elif kind == "watch_roles":
                self._watch_roles_changed(int(key))
            elif kind == "progress":
                self._progress_heard(int(key))
            elif kind == "tallies":
                self._vote_tallies_cache().invalidate(None if key == "*" else [key])
            elif kind == "guild":
                self._guild_forgotten(int(key))
            elif kind == "content":
                self._content_changed(key)
            else:  # a change this version doesn't know: trust nothing cached
                self.trust_caches(True)

    def trust_caches(self, trusted: bool) -> None:
        """Empty every cache, and keep them empty unless ``trusted``: while other processes'
        changes may go unannounced (the backend's listener is down), every read asks the
        database."""
        self._caching = trusted
        for cache, counter in (
            (self._settings_cache, "_settings_writes"),
            (self._progress_cache, "_progress_writes"),
            (self._watch_role_cache, "_watch_role_writes"),
            (self._member_spoiler_cache, "_member_spoiler_writes"),
        ):
            cache.clear()
            setattr(self, counter, getattr(self, counter) + 1)
        tallies = self._vote_tallies_cache()
        tallies.trusted = trusted
        tallies.invalidate(None)
        if trusted:  # what was built from storage meanwhile (the catalogue, the guard's
            # index, the release calendar) may miss changes unheard: rebuilt too
            for listener in self.member_spoiler_listeners:
                listener(None)
            for settings_listener in self.settings_listeners:
                settings_listener(None)
            self._content_changed(None)

    async def forget_member(self, user_id: int) -> MemberForgotten:
        """Delete everything stored about a member: their watch progress and their votes in
        every server, with the vote totals moved back, in one transaction. Committed before
        this returns. The record of the watch roles Embargo gave them stays until the process
        serving each server has taken them back (``forget_role_holds``): every process hears
        the change (``progress:<user_id>``) and does so in its own servers."""
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
        self._member_spoilers_changed(guild_id)

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
