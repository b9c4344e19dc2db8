"""Keeping a server's data for a while after Embargo is removed from it, then deleting it.

Removal records a departure; a re-invite cancels it. One background task sleeps until the next
deletion falls due (or until a departure changes), deletes what is due, and sleeps again. Due
times live in the database, so a restart picks up where the last run stopped, and a deletion
checks again in its own transaction that it is still due, so nothing is deleted twice or after
a re-invite. Of several processes on one database, each records, and deletes when due, the
departures of the servers on its own shards: only the process a server's shard belongs to sees
it come back, and a departure wakes the task of the process that recorded it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.retention import due_for_deletion, next_deletion
from bot.storage import StorageError

if TYPE_CHECKING:
    from bot.client import EmbargoBot

log = logging.getLogger(__name__)

# The longest single sleep: the event loop's clock and the wall clock can drift apart (a
# suspended machine, a corrected clock), so a far-off deletion is re-checked now and then.
MAX_SLEEP_S = 6 * 3600.0
# After a storage fault (busy, full disk), try again this much later.
RETRY_S = 60.0


class Retention(commands.Cog):
    def __init__(self, bot: EmbargoBot) -> None:
        self.bot = bot
        self._wake = asyncio.Event()
        self._deletions: asyncio.Task[None] | None = None
        # The servers with a deletion pending, so that the start-up stream of available
        # servers costs a set lookup each, not a database write.
        self._departed: set[int] = set()

    async def cog_load(self) -> None:
        self._departed = {d.guild_id for d in await self.bot.storage.departures()}
        self._deletions = asyncio.create_task(self._run(), name="embargo-retention")

    async def cog_unload(self) -> None:
        if self._deletions is not None:
            self._deletions.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._deletions
            self._deletions = None

    def wake(self) -> None:
        """Look at the departures again now (one was added or cancelled, or time moved)."""
        self._wake.set()

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.server_left(guild.id)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.server_back(guild.id)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        # Invited back while Embargo was offline: no join event comes, only the guild.
        await self.server_back(guild.id)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        await self.notice_removals_while_offline()

    async def notice_removals_while_offline(self) -> None:
        """Servers with data that Embargo is no longer in were left while it was offline (no
        removal event came): their retention starts now. Run once the gateway has listed
        every server Embargo is in; a server wrongly counted as gone is still safe, since
        availability or a re-invite cancels its deletion and none is deleted while
        Embargo is in it."""
        present = {guild.id for guild in self.bot.guilds}
        # Servers on other processes' shards are theirs to notice: this one never sees them.
        stored = {g for g in await self.bot.storage.guilds_with_data() if self.bot.serves_guild(g)}
        gone = stored - present - self._departed
        for guild_id in sorted(gone):
            await self.server_left(guild_id)
        if gone:
            log.info("%d server(s) removed Embargo while it was offline", len(gone))

    async def server_left(self, guild_id: int) -> None:
        gone = await self.bot.storage.record_departure(guild_id, self.bot.clock())
        self._departed.add(guild_id)
        log.info(
            "removed from server %s: its settings and votes are kept until %s",
            guild_id,
            gone.delete_at.isoformat(),
        )
        self.wake()

    async def server_back(self, guild_id: int) -> None:
        if guild_id not in self._departed:
            return
        self._departed.discard(guild_id)
        if await self.bot.storage.cancel_departure(guild_id):
            log.info("back in server %s: its settings and votes are kept", guild_id)
            self.wake()

    async def delete_due(self) -> float | None:
        """Delete every departed server's data now due; returns the seconds until the next
        deletion falls due (None: none pending)."""
        # A server on another process's shards is that process's to delete (it would see it
        # again if Embargo were invited back).
        departures = [
            d for d in await self.bot.storage.departures() if self.bot.serves_guild(d.guild_id)
        ]
        left_at = {d.guild_id: d.left_at for d in departures}
        now = self.bot.clock()
        for guild_id in due_for_deletion(departures, now):
            if self.bot.get_guild(guild_id) is not None:
                # Back in it (the re-invite's event went missing): keep everything.
                self._departed.discard(guild_id)
                await self.bot.storage.cancel_departure(guild_id)
                continue
            deleted = await self.bot.storage.delete_departed_guild(guild_id, now)
            self._departed.discard(guild_id)
            if deleted is not None:
                log.info(
                    "deleted the settings and %d vote(s) of server %s, %d days after removal",
                    deleted.votes,
                    guild_id,
                    (now - left_at[guild_id]).days,
                )
        upcoming = next_deletion(departures, now)
        return None if upcoming is None else (upcoming - now).total_seconds()

    async def _run(self) -> None:
        # Only once the servers Embargo is in are known: one it was invited back to while
        # offline must be recognised before anything of it is deleted.
        await self.bot.wait_until_ready()
        while True:
            self._wake.clear()
            try:
                delay = await self.delete_due()
            except StorageError as error:
                log.warning("deleting departed servers' data failed (%s); retrying later", error)
                delay = RETRY_S
            except Exception:
                log.exception("deleting departed servers' data failed; retrying later")
                delay = RETRY_S
            timeout = None if delay is None else min(max(delay, 0.0), MAX_SLEEP_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


async def setup(bot: EmbargoBot) -> None:
    await bot.add_cog(Retention(bot))
