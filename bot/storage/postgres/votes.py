"""The votes' writes on PostgreSQL: each batch one transaction of a fixed number of
statements (arrays through ``unnest``), whatever the batch size.

Several processes may write votes at once. Each batch first takes a transaction-scoped
advisory lock per vote key, in sorted order, then reads the scores it replaces: a key is
never read by one batch while another is between its read and its commit, and locks taken
in one order can't deadlock. The totals are changed in sorted key order too, by relative
``UPDATE``s, so pooled totals stay exact with any number of writers. A deadlock or
serialisation failure nonetheless reruns the whole batch (``Database.run_transaction``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

import asyncpg

from bot.content.models import show_slug_of
from bot.storage.errors import StorageBusy
from bot.storage.postgres.database import Database, announce, lock_id
from bot.storage.retention import GUILD_TABLES, GuildDeleted
from bot.storage.votes import (
    ForgottenVotes,
    TotalsDeltas,
    VoteChange,
    VoteKey,
    plan_batch,
    totals_rows,
)

T = TypeVar("T")


def vote_lock_id(key: VoteKey) -> int:
    guild_id, user_id, episode_key = key
    return lock_id(f"vote:{guild_id}:{user_id}:{episode_key}")


class PostgresVotes:
    """``VoteBackend`` on PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def apply_votes(
        self, wanted: Sequence[tuple[VoteKey, int | None, int]], wait_s: float
    ) -> tuple[list[VoteChange], TotalsDeltas]:
        return await self.db.run_transaction(
            partial(_announced, self.db.sender, partial(_apply_batch, wanted)), wait_s=wait_s
        )

    async def forget_member(
        self, user_id: int, wait_s: float
    ) -> tuple[tuple[ForgottenVotes, int], TotalsDeltas]:
        return await self.db.run_transaction(
            partial(_announced, self.db.sender, partial(_forget_member, user_id), user=user_id),
            wait_s=wait_s,
        )

    async def delete_departed_guild(
        self, guild_id: int, now_s: int, wait_s: float
    ) -> tuple[GuildDeleted | None, TotalsDeltas]:
        return await self.db.run_transaction(
            partial(
                _announced, self.db.sender, partial(_delete_guild, guild_id, now_s), guild=guild_id
            ),
            wait_s=wait_s,
        )

    def busy(self) -> StorageBusy:
        return self.db.busy()


async def _announced(
    sender: str,
    work: Callable[[asyncpg.Connection], Awaitable[tuple[T, TotalsDeltas]]],
    conn: asyncpg.Connection,
    *,
    user: int | None = None,
    guild: int | None = None,
) -> tuple[T, TotalsDeltas]:
    """Run ``work`` and announce, in the same transaction, the shows whose totals it moved
    (and the member or server it was about)."""
    result, deltas = await work(conn)
    changes = [f"tallies:{show}" for show in sorted({show_slug_of(key) for _, key in deltas})]
    if user is not None:
        changes.append(f"progress:{user}")
    if guild is not None:
        changes.append(f"guild:{guild}")
    await announce(conn, sender, changes)
    return result, deltas


async def _lock(conn: asyncpg.Connection, keys: Sequence[VoteKey]) -> None:
    ids = sorted({vote_lock_id(key) for key in keys})
    await conn.execute(
        "SELECT pg_advisory_xact_lock(id) FROM (SELECT unnest($1::bigint[]) AS id) AS sorted "
        "ORDER BY id",
        ids,
    )


async def _apply_batch(
    wanted: Sequence[tuple[VoteKey, int | None, int]], conn: asyncpg.Connection
) -> tuple[list[VoteChange], TotalsDeltas]:
    keys = sorted(dict.fromkeys(key for key, _, _ in wanted))
    await _lock(conn, keys)
    rows = await conn.fetch(
        "SELECT v.guild_id, v.user_id, v.episode_key, v.score "
        "FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS w (guild_id, user_id, episode_key) "
        "JOIN votes AS v ON v.guild_id = w.guild_id AND v.user_id = w.user_id "
        "AND v.episode_key = w.episode_key",
        [key[0] for key in keys],
        [key[1] for key in keys],
        [key[2] for key in keys],
    )
    current: dict[VoteKey, int | None] = dict.fromkeys(keys)
    for guild_id, user_id, episode_key, score in rows:
        current[(guild_id, user_id, episode_key)] = score
    results, (upserts, deletes), totals = plan_batch(wanted, current)
    if upserts:
        upserts.sort()
        columns = list(zip(*upserts, strict=True))
        await conn.execute(
            "INSERT INTO votes (guild_id, user_id, episode_key, show_slug, score, voted_at) "
            "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], "
            "$5::int[], $6::bigint[]) "
            "ON CONFLICT (guild_id, user_id, episode_key) "
            "DO UPDATE SET score = excluded.score, voted_at = excluded.voted_at",
            *map(list, columns),
        )
    if deletes:
        await _delete_votes(conn, sorted(deletes))
    await _write_totals(conn, totals)
    return results, totals


async def _delete_votes(conn: asyncpg.Connection, keys: Sequence[VoteKey]) -> list[asyncpg.Record]:
    """Delete these votes; returns (guild_id, episode_key, score) of each deleted."""
    deleted: list[asyncpg.Record] = await conn.fetch(
        "DELETE FROM votes AS v USING unnest($1::bigint[], $2::bigint[], $3::text[]) "
        "AS w (guild_id, user_id, episode_key) "
        "WHERE v.guild_id = w.guild_id AND v.user_id = w.user_id "
        "AND v.episode_key = w.episode_key RETURNING v.guild_id, v.episode_key, v.score",
        [key[0] for key in keys],
        [key[1] for key in keys],
        [key[2] for key in keys],
    )
    return deleted


async def _forget_member(
    user_id: int, conn: asyncpg.Connection
) -> tuple[tuple[ForgottenVotes, int], TotalsDeltas]:
    """Delete every vote of the member in every server, moving the totals back by what was
    actually deleted, then their watch progress."""
    # As on SQLite: walk the servers that have votes, one index seek each (no index leads
    # with the member).
    found = await conn.fetch(
        "WITH RECURSIVE servers (guild_id) AS ("
        "SELECT MIN(guild_id) FROM votes "
        "UNION ALL SELECT (SELECT MIN(later.guild_id) FROM votes AS later "
        "WHERE later.guild_id > servers.guild_id) FROM servers "
        "WHERE servers.guild_id IS NOT NULL) "
        "SELECT v.guild_id, v.episode_key FROM servers "
        "JOIN votes AS v ON v.guild_id = servers.guild_id AND v.user_id = $1",
        user_id,
    )
    keys = sorted((guild_id, user_id, episode_key) for guild_id, episode_key in found)
    deltas: TotalsDeltas = {}
    deleted: list[asyncpg.Record] = []
    if keys:
        await _lock(conn, keys)
        deleted = await _delete_votes(conn, keys)
        for guild_id, episode_key, score in deleted:
            deltas[(guild_id, episode_key)] = [-1, -score]
        await _write_totals(conn, deltas)
    status = await conn.execute("DELETE FROM watched_episodes WHERE user_id = $1", user_id)
    forgotten = ForgottenVotes(
        votes=len(deleted), guild_ids=frozenset(guild_id for guild_id, _, _ in deleted)
    )
    return (forgotten, int(status.split()[-1])), deltas


async def _delete_guild(
    guild_id: int, now_s: int, conn: asyncpg.Connection
) -> tuple[GuildDeleted | None, TotalsDeltas]:
    """See ``VoteBackend.delete_departed_guild``. The departure row is locked first, so a
    re-invite (which deletes it) either lands before and wins, or waits for this."""
    delete_at = await conn.fetchval(
        "SELECT delete_at FROM departed_guilds WHERE guild_id = $1 FOR UPDATE", guild_id
    )
    if delete_at is None or delete_at > now_s:
        return None, {}
    # Votes being cast in this server by another process wait on their keys' locks; the
    # server's votes are read and deleted in one statement, and the totals moved by them.
    deleted = await conn.fetch(
        "DELETE FROM votes WHERE guild_id = $1 RETURNING episode_key, score", guild_id
    )
    deltas: TotalsDeltas = {}
    for episode_key, score in deleted:
        delta = deltas.setdefault((guild_id, episode_key), [0, 0])
        delta[0] -= 1
        delta[1] -= score
    await _write_totals(conn, deltas)
    # Totals left over without votes (only if they had drifted) go with the server too.
    await conn.execute("DELETE FROM vote_totals WHERE guild_id = $1", guild_id)
    for table in GUILD_TABLES:  # fixed names, never input
        await conn.execute(f"DELETE FROM {table} WHERE guild_id = $1", guild_id)
    await conn.execute("DELETE FROM departed_guilds WHERE guild_id = $1", guild_id)
    return GuildDeleted(guild_id=guild_id, votes=len(deleted)), deltas


async def _write_totals(conn: asyncpg.Connection, deltas: TotalsDeltas) -> None:
    per_guild, pooled = totals_rows(deltas)  # sorted: rows are locked in one order
    if per_guild:
        guild_ids, episode_keys, show_slugs, counts, sums = map(list, zip(*per_guild, strict=True))
        await conn.execute(
            "INSERT INTO vote_totals (guild_id, episode_key, show_slug, vote_count, score_sum) "
            "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::bigint[]) "
            "ON CONFLICT (guild_id, show_slug, episode_key) DO UPDATE SET "
            "vote_count = vote_totals.vote_count + excluded.vote_count, "
            "score_sum = vote_totals.score_sum + excluded.score_sum",
            guild_ids,
            episode_keys,
            show_slugs,
            counts,
            sums,
        )
        # A total exists only while it counts at least one vote.
        if any(count < 0 for count in counts):
            await conn.execute(
                "DELETE FROM vote_totals AS t USING unnest($1::bigint[], $2::text[], $3::text[]) "
                "AS w (guild_id, show_slug, episode_key) WHERE t.guild_id = w.guild_id "
                "AND t.show_slug = w.show_slug AND t.episode_key = w.episode_key "
                "AND t.vote_count = 0",
                guild_ids,
                show_slugs,
                episode_keys,
            )
    if pooled:
        episode_keys, show_slugs, counts, sums = map(list, zip(*pooled, strict=True))
        await conn.execute(
            "INSERT INTO vote_totals_global (episode_key, show_slug, vote_count, score_sum) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[]) "
            "ON CONFLICT (show_slug, episode_key) DO UPDATE SET "
            "vote_count = vote_totals_global.vote_count + excluded.vote_count, "
            "score_sum = vote_totals_global.score_sum + excluded.score_sum",
            episode_keys,
            show_slugs,
            counts,
            sums,
        )
        if any(count < 0 for count in counts):
            await conn.execute(
                "DELETE FROM vote_totals_global AS t USING unnest($1::text[], $2::text[]) "
                "AS w (show_slug, episode_key) WHERE t.show_slug = w.show_slug "
                "AND t.episode_key = w.episode_key AND t.vote_count = 0",
                show_slugs,
                episode_keys,
            )
