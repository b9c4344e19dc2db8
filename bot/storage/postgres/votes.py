"""The votes' writes on PostgreSQL: each batch one transaction of a fixed number of
statements (arrays through ``unnest``), whatever the batch size.

Several processes may write votes at once. Each batch first takes a transaction-scoped
advisory lock per vote key, in sorted order, then reads the scores it replaces: a key is
never read by one batch while another is between its read and its commit, and locks taken
in one order can't deadlock. The totals are changed in sorted key order too, by relative
``UPDATE``s, so they stay exact with any number of writers. The per-server totals are
written by the process running the server's shard; the pooled (global) totals, which every
process moves, are split into slots (migration 015): a batch takes the lowest slot no other
transaction holds and writes only that slot's rows, so batches of several processes never
wait for each other on them. A deadlock or serialisation failure nonetheless reruns the
whole batch (``Database.run_transaction``).
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

# Slots of the pooled totals (migration 015): more than processes ever write votes at once.
SLOTS = 64
# An arbitrary constant naming the slots' advisory locks (a pair: this, slot).
SLOT_LOCKS = 0x766F_7465


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
        await _write_pooled_totals(conn, pooled)


async def _take_slot(conn: asyncpg.Connection) -> int:
    """The lowest slot of the pooled totals that no other transaction holds, held until
    this one ends (slot 0 whenever one process writes alone); when every slot is held,
    wait for slot 0."""
    slot: int | None = await conn.fetchval(
        "SELECT slot FROM generate_series(0, $1::int - 1) AS slot "
        "WHERE pg_try_advisory_xact_lock($2::int, slot) LIMIT 1",
        SLOTS,
        SLOT_LOCKS,
    )
    if slot is None:
        await conn.execute("SELECT pg_advisory_xact_lock($1::int, 0)", SLOT_LOCKS)
        slot = 0
    return slot


async def _write_pooled_totals(
    conn: asyncpg.Connection, pooled: Sequence[tuple[str, str, int, int]]
) -> None:
    """Add ``pooled`` (episode_key, show_slug, count, total) to the rows of a slot of our
    own (see migration 015). Holding slot 0, fold into it the rows these episodes have in
    other slots that no transaction holds, so an episode keeps about one row."""
    episode_keys, show_slugs, counts, sums = map(list, zip(*pooled, strict=True))
    slot = await _take_slot(conn)
    folded: list[int] = []
    if slot == 0:
        # pg_try_advisory_xact_lock is volatile: it runs after DISTINCT, once per slot.
        folded = [
            row[0]
            for row in await conn.fetch(
                "SELECT slot FROM (SELECT DISTINCT t.slot FROM vote_totals_global AS t "
                "JOIN unnest($1::text[], $2::text[]) AS w (show_slug, episode_key) "
                "ON t.show_slug = w.show_slug AND t.episode_key = w.episode_key "
                "WHERE t.slot <> 0) AS other WHERE pg_try_advisory_xact_lock($3::int, slot)",
                show_slugs,
                episode_keys,
                SLOT_LOCKS,
            )
        ]
    changed = await conn.fetch(
        "WITH moved AS ("
        "DELETE FROM vote_totals_global AS t "
        "USING unnest($1::text[], $2::text[]) AS w (show_slug, episode_key) "
        "WHERE t.show_slug = w.show_slug AND t.episode_key = w.episode_key "
        "AND t.slot = ANY($5::smallint[]) "
        "RETURNING t.show_slug, t.episode_key, t.vote_count, t.score_sum), "
        "deltas AS ("
        "SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[]) "
        "AS d (show_slug, episode_key, vote_count, score_sum) "
        "UNION ALL SELECT * FROM moved) "
        "INSERT INTO vote_totals_global (show_slug, episode_key, slot, vote_count, score_sum) "
        "SELECT show_slug, episode_key, $6::smallint, SUM(vote_count), SUM(score_sum) "
        "FROM deltas GROUP BY show_slug, episode_key "
        "ON CONFLICT (show_slug, episode_key, slot) DO UPDATE SET "
        "vote_count = vote_totals_global.vote_count + excluded.vote_count, "
        "score_sum = vote_totals_global.score_sum + excluded.score_sum "
        "RETURNING episode_key, vote_count, score_sum",
        show_slugs,
        episode_keys,
        counts,
        sums,
        folded,
        slot,
    )
    # A slot's row that adds up to nothing goes.
    empty = [row[0] for row in changed if row[1] == 0 and row[2] == 0]
    if empty:
        await conn.execute(
            "DELETE FROM vote_totals_global WHERE show_slug = ANY($1::text[]) "
            "AND episode_key = ANY($2::text[]) AND slot = $3 "
            "AND vote_count = 0 AND score_sum = 0",
            sorted({show_slug_of(key) for key in empty}),
            empty,
            slot,
        )
