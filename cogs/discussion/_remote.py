"""Servers on other processes' shards, as Discord's REST API shows them to the leader.

The leader posts for every server, but its gateway cache holds only its own shards' servers.
For another's, the channel, the server's roles and Embargo's own member are fetched (each
request paced like the posts), so the permission checks run as for a cached server, with
discord.py's own rules. What was fetched is kept for one wake only (a fan-out posts a
release and opens its thread from one fetch), and a server's is dropped at once when its
settings or its membership change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

# Discord's answers when Embargo is not in the server: its server is hidden from it, or its
# member there is unknown.
MISSING_ACCESS = 50001
UNKNOWN_MEMBER = 10007


class NotInServer(Exception):
    """Discord says Embargo is not in the server (removed while its process was down, or
    before that process recorded it)."""


@dataclass(frozen=True, slots=True)
class RemoteServer:
    """A server fetched through REST: its roles (in ``guild``) and Embargo's member in it."""

    guild: discord.Guild
    me: discord.Member


class RemoteServers:
    """Fetches and keeps (until :meth:`clear`) the servers the gateway cache doesn't hold.

    ``pace`` is awaited before each request. At most ``limit`` servers are kept: past it the
    oldest is dropped (fetched again if needed), so a fan-out to every server never holds
    them all at once."""

    def __init__(
        self, client: discord.Client, pace: Callable[[], Awaitable[None]], *, limit: int = 1024
    ) -> None:
        self._client = client
        self._pace = pace
        self._limit = limit
        self._servers: dict[int, asyncio.Future[RemoteServer]] = {}

    def __len__(self) -> int:
        return len(self._servers)

    def forget(self, guild_id: int | None) -> None:
        """Drop what is kept of one server (None: of every server)."""
        if guild_id is None:
            self.clear()
        else:
            self._servers.pop(guild_id, None)

    def clear(self) -> None:
        """Drop everything kept (at the end of a wake, when no post waits on a fetch)."""
        for fetch in self._servers.values():
            fetch.cancel()  # a fetch cut short by a stop is not left running
        self._servers.clear()

    async def server(self, guild_id: int) -> RemoteServer:
        """The server's roles and Embargo's member in it: fetched once however many posts
        for it are in flight together. Raises NotInServer, or discord.HTTPException as the
        requests do."""
        found = self._servers.get(guild_id)
        if found is None:
            while len(self._servers) >= self._limit:
                self._servers.pop(next(iter(self._servers)))
            found = asyncio.ensure_future(self._fetch(guild_id))
            self._servers[guild_id] = found
        try:
            return await asyncio.shield(found)
        except BaseException:
            if found.done() and self._servers.get(guild_id) is found:
                del self._servers[guild_id]  # a failure is asked again next time
            raise

    async def channel(self, guild_id: int, channel_id: int) -> tuple[object, discord.Member]:
        """The channel (fetched through its server, so its permission checks see the server's
        roles) and Embargo's member to check them for."""
        remote = await self.server(guild_id)
        await self._pace()
        return await remote.guild.fetch_channel(channel_id), remote.me

    async def _fetch(self, guild_id: int) -> RemoteServer:
        me = self._client.user
        if me is None:
            raise RuntimeError("not logged in")
        try:
            await self._pace()
            guild = await self._client.fetch_guild(guild_id, with_counts=False)
            await self._pace()
            member = await guild.fetch_member(me.id)
        except (discord.Forbidden, discord.NotFound) as error:
            if error.code in (MISSING_ACCESS, UNKNOWN_MEMBER):
                raise NotInServer from error
            raise
        return RemoteServer(guild, member)
