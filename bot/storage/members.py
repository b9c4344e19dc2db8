"""Members' spoilers SQL: each server's spoiler helpers role, log channel, guard mode and the
channels the guard ignores (cached per server with the settings' rule: dropped after every
committed write, here or announced by another process as ``member_spoilers:<guild_id>``, and
a read that a write overtook is not cached), and the webhook Embargo reposts hidden messages
through in each channel, and the guard's flag replies waiting to be deleted. Portable SQL, on
either backend."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.hiding import GuardMode, MemberSpoilerSettings
from bot.storage.backend import Database, Row

# Exempted channels are listed in /embargo settings; a server needs a handful at most.
MAX_GUARD_IGNORED_CHANNELS = 100
# How many due flag replies one read returns; the guard reads again at once when it got this many.
FLAG_DELETION_BATCH = 100


@dataclass(frozen=True, slots=True)
class StoredWebhook:
    webhook_id: int
    token: str


@dataclass(frozen=True, slots=True)
class FlagDeletion:
    """One of the guard's flag replies, to delete once ``delete_at`` has come."""

    message_id: int
    channel_id: int
    delete_at: datetime


class TooManyIgnoredChannelsError(Exception):
    """The server already ignores ``MAX_GUARD_IGNORED_CHANNELS``; nothing was changed."""


_COLUMNS = ("helper_role_id", "log_channel_id", "guard_mode")


class MemberSpoilerStore:
    """Mixin for ``Storage``: expects ``self.db``."""

    db: Database
    _member_spoiler_cache: dict[int, MemberSpoilerSettings]
    _member_spoiler_writes: int
    _caching: bool  # whether caches may be used (see Storage.trust_caches)
    # Called with the server's id after each committed write of its members' spoiler
    # settings, here or heard from another process, and with None when any server's settings
    # of any kind may have changed unheard (see Storage.trust_caches): the guard rebuilds.
    member_spoiler_listeners: list[Callable[[int | None], None]]

    def _init_member_spoiler_cache(self) -> None:
        self._member_spoiler_cache = {}
        self._member_spoiler_writes = 0
        self.member_spoiler_listeners = []

    def _member_spoilers_changed(self, guild_id: int) -> None:
        self._member_spoiler_writes += 1
        self._member_spoiler_cache.pop(guild_id, None)
        for listener in self.member_spoiler_listeners:
            listener(guild_id)

    async def guarded_guilds(self) -> dict[int, MemberSpoilerSettings]:
        """Every server whose guard is on, with its settings."""
        rows = await self.db.fetch_all(
            "SELECT guild_id, helper_role_id, log_channel_id, guard_mode "
            "FROM member_spoiler_settings WHERE guard_mode <> 'off'"
        )
        ignored = await self.db.fetch_all("SELECT guild_id, channel_id FROM guard_ignored_channels")
        by_guild: dict[int, set[int]] = {}
        for guild_id, channel_id in ignored:
            by_guild.setdefault(int(guild_id), set()).add(int(channel_id))
        return {
            int(guild_id): _settings(
                (helper, log_channel, mode), frozenset(by_guild.get(int(guild_id), ()))
            )
            for guild_id, helper, log_channel, mode in rows
        }

    async def member_spoiler_settings(self, guild_id: int) -> MemberSpoilerSettings:
        """The server's settings for members' spoilers, as committed."""
        cached = self._member_spoiler_cache.get(guild_id) if self._caching else None
        if cached is not None:
            return cached
        writes = self._member_spoiler_writes
        rows, ignored = await self.db.read_together(
            [
                (
                    "SELECT helper_role_id, log_channel_id, guard_mode "
                    "FROM member_spoiler_settings WHERE guild_id = ?",
                    (guild_id,),
                ),
                ("SELECT channel_id FROM guard_ignored_channels WHERE guild_id = ?", (guild_id,)),
            ]
        )
        channels = frozenset(int(row[0]) for row in ignored)
        settings = (
            _settings(rows[0], channels) if rows else MemberSpoilerSettings(guard_ignored=channels)
        )
        # A write that committed while this read ran may have been missed: don't cache then.
        if writes == self._member_spoiler_writes and self._caching:
            self._member_spoiler_cache[guild_id] = settings
        return settings

    async def _set_member_spoiler_column(
        self, guild_id: int, column: str, value: int | str | None
    ) -> MemberSpoilerSettings:
        """Set one column; returns the settings it replaced (read in the same transaction,
        serialised per server, so two moderators are each told what their change replaced)."""
        if column not in _COLUMNS:  # the column name is ours, never input
            raise ValueError(column)
        try:
            async with self.db.transaction() as conn:
                await conn.serialize(_member_spoilers_key(guild_id))
                await conn.announce([_member_spoilers_key(guild_id)])
                row = await conn.fetch_one(
                    "SELECT helper_role_id, log_channel_id, guard_mode "
                    "FROM member_spoiler_settings WHERE guild_id = ?",
                    (guild_id,),
                )
                await conn.execute(
                    f"INSERT INTO member_spoiler_settings (guild_id, {column}) VALUES (?, ?) "
                    f"ON CONFLICT (guild_id) DO UPDATE SET {column} = excluded.{column}",
                    (guild_id, value),
                )
        finally:  # also when the commit's outcome is unknown: read it again next time
            self._member_spoilers_changed(guild_id)
        return MemberSpoilerSettings() if row is None else _settings(row, frozenset())

    async def set_spoiler_helpers_role(self, guild_id: int, role_id: int | None) -> int | None:
        """Set (or clear, with None) the role whose members may hide messages; returns the old."""
        old = await self._set_member_spoiler_column(guild_id, "helper_role_id", role_id)
        return old.helper_role_id

    async def set_spoiler_log_channel(self, guild_id: int, channel_id: int | None) -> int | None:
        """Set (or clear) the channel hides are logged in; returns the old one."""
        old = await self._set_member_spoiler_column(guild_id, "log_channel_id", channel_id)
        return old.log_channel_id

    async def set_guard_mode(self, guild_id: int, mode: GuardMode) -> GuardMode:
        old = await self._set_member_spoiler_column(guild_id, "guard_mode", mode.value)
        return old.guard_mode

    async def set_guard_ignored(self, guild_id: int, channel_id: int, ignored: bool) -> bool:
        """Exempt a channel from the guard (or watch it again); returns whether it was exempt.
        Raises ``TooManyIgnoredChannelsError``, changing nothing."""
        try:
            async with self.db.transaction() as conn:
                await conn.serialize(_member_spoilers_key(guild_id))
                await conn.announce([_member_spoilers_key(guild_id)])
                was = (
                    await conn.fetch_one(
                        "SELECT 1 FROM guard_ignored_channels "
                        "WHERE guild_id = ? AND channel_id = ?",
                        (guild_id, channel_id),
                    )
                    is not None
                )
                if ignored and not was:
                    count = await conn.fetch_one(
                        "SELECT COUNT(*) FROM guard_ignored_channels WHERE guild_id = ?",
                        (guild_id,),
                    )
                    if count is not None and count[0] >= MAX_GUARD_IGNORED_CHANNELS:
                        raise TooManyIgnoredChannelsError
                    await conn.execute(
                        "INSERT INTO guard_ignored_channels (guild_id, channel_id) VALUES (?, ?)",
                        (guild_id, channel_id),
                    )
                elif was and not ignored:
                    await conn.execute(
                        "DELETE FROM guard_ignored_channels WHERE guild_id = ? AND channel_id = ?",
                        (guild_id, channel_id),
                    )
        finally:
            self._member_spoilers_changed(guild_id)
        return was

    # -- webhooks ---------------------------------------------------------------------------

    async def spoiler_webhook(self, channel_id: int) -> StoredWebhook | None:
        """The webhook Embargo reposts through in a channel (a thread's parent), if made."""
        rows = await self.db.read(
            "SELECT webhook_id, token FROM spoiler_webhooks WHERE channel_id = ?", (channel_id,)
        )
        return StoredWebhook(int(rows[0][0]), str(rows[0][1])) if rows else None

    async def save_spoiler_webhook(
        self, guild_id: int, channel_id: int, webhook: StoredWebhook
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO spoiler_webhooks (channel_id, guild_id, webhook_id, token) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (channel_id) DO UPDATE SET "
                "webhook_id = excluded.webhook_id, token = excluded.token",
                (channel_id, guild_id, webhook.webhook_id, webhook.token),
            )

    async def forget_spoiler_webhook(self, channel_id: int, webhook_id: int) -> None:
        """Drop a webhook Discord no longer has (only that one: a newer one stays)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "DELETE FROM spoiler_webhooks WHERE channel_id = ? AND webhook_id = ?",
                (channel_id, webhook_id),
            )

    # -- the guard's flag replies ------------------------------------------------------------

    async def schedule_flag_deletion(
        self, guild_id: int, channel_id: int, message_id: int, delete_at: datetime
    ) -> None:
        """Remember to delete the guard's reply ``message_id`` once ``delete_at`` has come (to
        the second, never before). Committed before this returns."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO guard_flag_deletions (message_id, channel_id, guild_id, delete_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                (message_id, channel_id, guild_id, math.ceil(delete_at.timestamp())),
            )

    async def flag_deletions(self, now: datetime) -> tuple[list[FlagDeletion], datetime | None]:
        """The flag replies due at ``now``, the soonest first (at most
        ``FLAG_DELETION_BATCH``), and when the next of the others falls due (None: none)."""
        seconds = math.floor(now.timestamp())
        due, upcoming = await self.db.read_together(
            [
                (
                    "SELECT message_id, channel_id, delete_at FROM guard_flag_deletions "
                    "WHERE delete_at <= ? ORDER BY delete_at, message_id LIMIT ?",
                    (seconds, FLAG_DELETION_BATCH),
                ),
                ("SELECT MIN(delete_at) FROM guard_flag_deletions WHERE delete_at > ?", (seconds,)),
            ]
        )
        deletions = [FlagDeletion(int(row[0]), int(row[1]), _when(row[2])) for row in due]
        nearest = upcoming[0][0] if upcoming else None
        return deletions, None if nearest is None else _when(nearest)

    async def flag_deleted(self, message_id: int) -> None:
        """The reply is gone from Discord (or can never be deleted): forget it."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "DELETE FROM guard_flag_deletions WHERE message_id = ?", (message_id,)
            )


def _when(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def _settings(row: Row, ignored: frozenset[int]) -> MemberSpoilerSettings:
    helper, log_channel, mode = row
    return MemberSpoilerSettings(
        helper_role_id=None if helper is None else int(helper),
        log_channel_id=None if log_channel is None else int(log_channel),
        guard_mode=GuardMode(mode),
        guard_ignored=ignored,
    )


def _member_spoilers_key(guild_id: int) -> str:
    """What a write of the server's members' spoiler settings serialises on and announces."""
    return f"member_spoilers:{guild_id}"
