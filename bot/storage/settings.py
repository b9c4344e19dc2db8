"""Per-server settings SQL: spoiler window, mode, per-show windows, spoilers-ok channels,
ranking settings, and small bot metadata (the synced command-tree hash)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from bot.guild_settings import DEFAULT_GUILD_SETTINGS, GuildSettings
from bot.spoilers.durations import SpoilerWindow
from bot.spoilers.policy import SpoilerMode
from bot.storage.backend import Database, Transaction
from bot.storage.errors import StorageOutcomeUnknown

T = TypeVar("T")


class SettingsStore:
    """Mixin for ``Storage``: expects ``self.db``. Reads are cached per guild and the cache entry
    is dropped after every committed write, so a reply never shows a stale value."""

    db: Database
    _settings_cache: dict[int, GuildSettings]
    _settings_writes: int  # committed settings writes so far
    _caching: bool  # whether caches may be used (see Storage.trust_caches)
    # Called with the server's id after each committed settings write (the release calendar
    # reschedules that server's window-closed posts), or None when any server's may have
    # changed unheard (see Storage.trust_caches).
    settings_listeners: list[Callable[[int | None], None]]

    def _init_settings_cache(self) -> None:
        self._settings_cache = {}
        self._settings_writes = 0
        self.settings_listeners = []

    def _settings_changed(self, guild_id: int) -> None:
        """After a committed write: drop the guild's cached settings, tell the listeners."""
        self._settings_writes += 1
        self._settings_cache.pop(guild_id, None)
        for listener in self.settings_listeners:
            listener(guild_id)

    async def _write_settings(
        self, guild_id: int, update: Callable[[Transaction], Awaitable[T]]
    ) -> T:
        """Run ``update`` (safe to rerun, see ``Database.transact``) and drop the guild's
        cached settings; also when the commit's outcome is unknown, as it may have landed."""
        try:
            result = await self.db.transact(update)
        except StorageOutcomeUnknown:
            self._settings_changed(guild_id)
            raise
        self._settings_changed(guild_id)
        return result

    async def get_guild_settings(self, guild_id: int | None) -> GuildSettings:
        """Settings for a server; DMs (``None``) and untouched servers get the defaults."""
        if guild_id is None:
            return DEFAULT_GUILD_SETTINGS
        cached = self._settings_cache.get(guild_id) if self._caching else None
        if cached is not None:
            return cached
        writes = self._settings_writes
        settings = await self._read_guild_settings(guild_id)
        # A write that committed while this read ran may have been missed: don't cache then.
        if writes == self._settings_writes and self._caching:
            self._settings_cache[guild_id] = settings
        return settings

    async def _read_guild_settings(self, guild_id: int) -> GuildSettings:
        guild_rows, window_rows, channel_rows = await self.db.read_together(
            [
                (
                    "SELECT spoiler_window_s, spoiler_mode, min_votes, min_member_days "
                    "FROM guild_settings WHERE guild_id = ?",
                    (guild_id,),
                ),
                (
                    "SELECT show_slug, spoiler_window_s FROM show_windows WHERE guild_id = ?",
                    (guild_id,),
                ),
                ("SELECT channel_id FROM spoiler_channels WHERE guild_id = ?", (guild_id,)),
            ]
        )
        row = guild_rows[0] if guild_rows else None
        show_windows = tuple(
            sorted((slug, SpoilerWindow.from_seconds(seconds)) for slug, seconds in window_rows)
        )
        channels = frozenset(int(channel_id) for (channel_id,) in channel_rows)

        base = DEFAULT_GUILD_SETTINGS
        spoilers = replace(base.spoilers, show_windows=show_windows, spoilers_ok_channels=channels)
        if row is None:
            return replace(base, spoilers=spoilers)
        spoilers = replace(
            spoilers,
            window=SpoilerWindow.from_seconds(row["spoiler_window_s"]),
            mode=SpoilerMode(row["spoiler_mode"]),
        )
        return GuildSettings(
            spoilers=spoilers,
            min_votes=int(row["min_votes"]),
            min_member_days=int(row["min_member_days"]),
        )

    async def _ensure_guild_row(self, conn: Transaction, guild_id: int) -> None:
        defaults = DEFAULT_GUILD_SETTINGS
        await conn.execute(
            "INSERT INTO guild_settings "
            "(guild_id, spoiler_window_s, spoiler_mode, min_votes, min_member_days, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO NOTHING",
            (
                guild_id,
                defaults.spoilers.window.seconds,
                defaults.spoilers.mode.value,
                defaults.min_votes,
                defaults.min_member_days,
                int(time.time()),
            ),
        )

    async def _update_guild_column(self, guild_id: int, column: str, value: object) -> Any:
        """Set one guild_settings column; returns the column's value before.

        The old value is read inside the write transaction, so when two moderators change a
        setting at once each is told the value their own change replaced.
        """
        # column comes from the fixed set below, never from user input.
        if column not in {"spoiler_window_s", "spoiler_mode", "min_votes", "min_member_days"}:
            raise ValueError(f"unknown settings column {column}")

        async def update(conn: Transaction) -> Any:
            await conn.serialize(_settings_key(guild_id))
            await conn.announce([f"settings:{guild_id}"])
            await self._ensure_guild_row(conn, guild_id)
            row = await conn.fetch_one(
                f"SELECT {column} FROM guild_settings WHERE guild_id = ?", (guild_id,)
            )
            await conn.execute(
                f"UPDATE guild_settings SET {column} = ?, updated_at = ? WHERE guild_id = ?",
                (value, int(time.time()), guild_id),
            )
            assert row is not None  # _ensure_guild_row made it
            return row[0]  # the raw column value

        return await self._write_settings(guild_id, update)

    async def set_spoiler_window(self, guild_id: int, window: SpoilerWindow) -> SpoilerWindow:
        old = await self._update_guild_column(guild_id, "spoiler_window_s", window.seconds)
        return SpoilerWindow.from_seconds(old)

    async def set_spoiler_mode(self, guild_id: int, mode: SpoilerMode) -> SpoilerMode:
        return SpoilerMode(await self._update_guild_column(guild_id, "spoiler_mode", mode.value))

    async def set_min_votes(self, guild_id: int, count: int) -> int:
        return int(await self._update_guild_column(guild_id, "min_votes", count))

    async def set_min_member_days(self, guild_id: int, days: int) -> int:
        return int(await self._update_guild_column(guild_id, "min_member_days", days))

    async def set_show_window(
        self, guild_id: int, show_slug: str, window: SpoilerWindow | None
    ) -> SpoilerWindow | None:
        """Set (or with ``None`` remove) a per-show override; returns the previous override."""

        async def update(conn: Transaction) -> Any:
            await conn.serialize(_settings_key(guild_id))
            await conn.announce([f"settings:{guild_id}"])
            row = await conn.fetch_one(
                "SELECT spoiler_window_s FROM show_windows WHERE guild_id = ? AND show_slug = ?",
                (guild_id, show_slug),
            )
            if window is None:
                await conn.execute(
                    "DELETE FROM show_windows WHERE guild_id = ? AND show_slug = ?",
                    (guild_id, show_slug),
                )
            else:
                await conn.execute(
                    "INSERT INTO show_windows (guild_id, show_slug, spoiler_window_s) "
                    "VALUES (?, ?, ?) ON CONFLICT (guild_id, show_slug) "
                    "DO UPDATE SET spoiler_window_s = excluded.spoiler_window_s",
                    (guild_id, show_slug, window.seconds),
                )
            return row

        old = await self._write_settings(guild_id, update)
        return None if old is None else SpoilerWindow.from_seconds(old[0])

    async def set_spoilers_ok_channel(self, guild_id: int, channel_id: int, ok: bool) -> bool:
        """Mark or unmark a spoilers-ok channel; returns whether it was marked before."""

        async def update(conn: Transaction) -> bool:
            await conn.serialize(_settings_key(guild_id))
            await conn.announce([f"settings:{guild_id}"])
            was_ok = (
                await conn.fetch_one(
                    "SELECT 1 FROM spoiler_channels WHERE guild_id = ? AND channel_id = ?",
                    (guild_id, channel_id),
                )
                is not None
            )
            if ok:
                await conn.execute(
                    "INSERT INTO spoiler_channels (guild_id, channel_id) VALUES (?, ?) "
                    "ON CONFLICT (guild_id, channel_id) DO NOTHING",
                    (guild_id, channel_id),
                )
            else:
                await conn.execute(
                    "DELETE FROM spoiler_channels WHERE guild_id = ? AND channel_id = ?",
                    (guild_id, channel_id),
                )
            return was_ok

        return await self._write_settings(guild_id, update)

    async def get_meta(self, key: str) -> str | None:
        rows = await self.db.read("SELECT meta_value FROM bot_meta WHERE meta_key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.transact(
            lambda conn: conn.execute(
                "INSERT INTO bot_meta (meta_key, meta_value) VALUES (?, ?) "
                "ON CONFLICT (meta_key) DO UPDATE SET meta_value = excluded.meta_value",
                (key, value),
            )
        )


def _settings_key(guild_id: int) -> str:
    """What a settings write serialises on: every setting of one server (each setter reads
    the value it replaces)."""
    return f"settings:{guild_id}"
