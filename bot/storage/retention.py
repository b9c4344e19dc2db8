"""Departed servers: recording Embargo's removal from a server, cancelling it on a re-invite,
and deleting everything stored about a server once its retention ran out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bot.retention import Departure, departure
from bot.storage.backend import Database
from bot.storage.votes import ExclusiveWork, VoteBackend

# Every table holding a server's own rows, deleted with it (votes and their totals apart:
# they move the pooled totals too). tests/test_retention.py checks that every table with a
# guild_id column is here or in the votes.
GUILD_TABLES = (
    "guild_settings",
    "show_windows",
    "spoiler_channels",
    "announce_channels",
    "announce_shows",
    "discussion_posts",
    "discussion_threads",
    "forum_posts_started",
    "discussion_pruned",
    "watch_roles",
    "watch_role_failures",
    "member_spoiler_settings",
    "guard_ignored_channels",
    "spoiler_webhooks",
    "watch_role_holders",
    "guard_flag_deletions",
)


@dataclass(frozen=True, slots=True)
class GuildDeleted:
    """What deleting a departed server's data removed (None: it was not due, or came back)."""

    guild_id: int
    votes: int


def _when(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


class RetentionStore:
    """Mixin for ``Storage``: expects ``self.db`` and the votes' queue (``VoteStore``)."""

    db: Database
    vote_backend: VoteBackend
    # From VoteStore, and Storage (which drops the server's cached settings).
    votes_transaction: Callable[[ExclusiveWork], Awaitable[Any]]
    _guild_forgotten: Callable[[int], None]

    async def record_departure(self, guild_id: int, now: datetime) -> Departure:
        """Embargo was removed from a server: keep its data until the retention runs out.
        A departure already recorded keeps its date (a duplicate event changes nothing)."""
        wanted = departure(guild_id, now)
        async with self.db.transaction() as conn:
            # The leader's release calendar, in whichever process, stops posting there.
            await conn.announce([f"settings:{guild_id}"])
            await conn.execute(
                "INSERT INTO departed_guilds (guild_id, left_at, delete_at) VALUES (?, ?, ?) "
                "ON CONFLICT (guild_id) DO NOTHING",
                (guild_id, int(wanted.left_at.timestamp()), int(wanted.delete_at.timestamp())),
            )
            row = await conn.fetch_one(
                "SELECT left_at, delete_at FROM departed_guilds WHERE guild_id = ?", (guild_id,)
            )
        assert row is not None  # inserted above, or there before
        return Departure(guild_id, _when(row[0]), _when(row[1]))

    async def cancel_departure(self, guild_id: int) -> bool:
        """Embargo is back in the server: keep everything. Returns whether a deletion was
        pending."""
        async with self.db.transaction() as conn:
            await conn.announce([f"settings:{guild_id}"])  # the release calendar posts again
            deleted = await conn.fetch_all(
                "DELETE FROM departed_guilds WHERE guild_id = ? RETURNING guild_id", (guild_id,)
            )
        return bool(deleted)

    async def guilds_with_data(self) -> set[int]:
        """Every server something is stored about (a server with votes has vote totals)."""
        # Table names are fixed, never input. The settings tables are small and their DISTINCTs
        # read an index; vote totals hold a row per server and voted episode, so their servers
        # are found by one index seek each (standard SQL, PostgreSQL too).
        sql = " UNION ".join(f"SELECT DISTINCT guild_id FROM {table}" for table in GUILD_TABLES)
        rows = await self.db.fetch_all(sql)
        voted = await self.db.fetch_all(
            "WITH RECURSIVE servers (guild_id) AS ("
            "SELECT MIN(guild_id) FROM vote_totals "
            "UNION ALL SELECT (SELECT MIN(later.guild_id) FROM vote_totals AS later "
            "WHERE later.guild_id > servers.guild_id) FROM servers "
            "WHERE servers.guild_id IS NOT NULL) "
            "SELECT guild_id FROM servers WHERE guild_id IS NOT NULL"
        )
        return {int(row[0]) for row in (*rows, *voted)}

    async def departures(self) -> list[Departure]:
        """Every pending deletion, the soonest first."""
        rows = await self.db.fetch_all(
            "SELECT guild_id, left_at, delete_at FROM departed_guilds ORDER BY delete_at, guild_id"
        )
        return [Departure(int(row[0]), _when(row[1]), _when(row[2])) for row in rows]

    async def delete_departed_guild(self, guild_id: int, now: datetime) -> GuildDeleted | None:
        """Delete everything stored about a departed server if its deletion is due at ``now``,
        in one transaction in the votes' queue, so the pooled totals (stored and cached) drop
        by exactly its votes. None when it was not due or Embargo was invited back."""
        deleted: GuildDeleted | None = await self.votes_transaction(
            partial(self.vote_backend.delete_departed_guild, guild_id, int(now.timestamp()))
        )
        if deleted is not None:
            self._guild_forgotten(guild_id)
        return deleted
