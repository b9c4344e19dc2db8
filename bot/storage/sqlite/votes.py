"""The votes' writes on SQLite: each batch one transaction in one trip to the writer's thread
(``Database.run_transaction``), with a fixed number of statements (``executemany``) whatever
the batch size. The queue, the caches and the reads are shared (``bot/storage/votes.py``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial

from bot.storage.errors import StorageBusy
from bot.storage.retention import GUILD_TABLES, GuildDeleted
from bot.storage.sqlite.database import Database
from bot.storage.sqlite.progress import delete_member_progress
from bot.storage.votes import (
    ForgottenVotes,
    TotalsDeltas,
    VoteChange,
    VoteKey,
    VoteWrites,
    plan_batch,
    totals_rows,
)

# Row keys per SELECT: 3 parameters each stays under SQLite's historic 999-parameter limit.
_KEYS_PER_SELECT = 333


class SqliteVotes:
    """``VoteBackend`` on SQLite."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def apply_votes(
        self, wanted: Sequence[tuple[VoteKey, int | None, int]], wait_s: float
    ) -> tuple[list[VoteChange], TotalsDeltas]:
        return await self.db.run_transaction(partial(_apply_batch, wanted), wait_s=wait_s)

    async def forget_member(
        self, user_id: int, wait_s: float
    ) -> tuple[tuple[ForgottenVotes, int], TotalsDeltas]:
        return await self.db.run_transaction(partial(_forget_member, user_id), wait_s=wait_s)

    async def delete_departed_guild(
        self, guild_id: int, now_s: int, wait_s: float
    ) -> tuple[GuildDeleted | None, TotalsDeltas]:
        return await self.db.run_transaction(partial(_delete_guild, guild_id, now_s), wait_s=wait_s)

    def busy(self) -> StorageBusy:
        return self.db.busy()


def _apply_batch(
    wanted: Sequence[tuple[VoteKey, int | None, int]], conn: sqlite3.Connection
) -> tuple[list[VoteChange], TotalsDeltas]:
    """On the writer's thread, inside one transaction: apply the votes in arrival order and
    move the totals by their net change. Returns what each request replaced, and the net
    change of each total."""
    keys = list(dict.fromkeys(key for key, _, _ in wanted))
    results, writes, totals = plan_batch(wanted, _current_scores(conn, keys))
    _write_votes(conn, writes)
    _write_totals(conn, totals)
    return results, totals


def _forget_member(
    user_id: int, conn: sqlite3.Connection
) -> tuple[tuple[ForgottenVotes, int], TotalsDeltas]:
    """On the writer's thread, inside one transaction: delete every vote of the member in
    every server, move the totals back by them, then delete their watch progress."""
    # The votes are keyed by server first and no index leads with the member (it would cost
    # every vote a write): walk the servers that have votes, one index seek each, and look
    # the member up in each by the primary key. Standard SQL (PostgreSQL too).
    rows = conn.execute(
        "WITH RECURSIVE servers (guild_id) AS ("
        "SELECT MIN(guild_id) FROM votes "
        "UNION ALL SELECT (SELECT MIN(later.guild_id) FROM votes AS later "
        "WHERE later.guild_id > servers.guild_id) FROM servers "
        "WHERE servers.guild_id IS NOT NULL) "
        "SELECT v.guild_id, v.episode_key, v.score FROM servers "
        "JOIN votes AS v ON v.guild_id = servers.guild_id AND v.user_id = ?",
        (user_id,),
    ).fetchall()
    deltas: TotalsDeltas = {}
    for guild_id, episode_key, score in rows:
        deltas[(int(guild_id), episode_key)] = [-1, -int(score)]
    conn.executemany(
        "DELETE FROM votes WHERE guild_id = ? AND user_id = ? AND episode_key = ?",
        [(guild_id, user_id, episode_key) for guild_id, episode_key, _ in rows],
    )
    _write_totals(conn, deltas)
    forgotten = ForgottenVotes(
        votes=len(rows), guild_ids=frozenset(int(guild_id) for guild_id, _, _ in rows)
    )
    return (forgotten, delete_member_progress(user_id, conn)), deltas


def _delete_guild(
    guild_id: int, now_s: int, conn: sqlite3.Connection
) -> tuple[GuildDeleted | None, TotalsDeltas]:
    """On the writer's thread, in one transaction: see ``VoteBackend.delete_departed_guild``."""
    row = conn.execute(
        "SELECT delete_at FROM departed_guilds WHERE guild_id = ?", (guild_id,)
    ).fetchone()
    if row is None or int(row[0]) > now_s:
        return None, {}
    votes, deltas = delete_guild_votes(guild_id, conn)
    # Totals left over without votes (only if they had drifted) go with the server too.
    conn.execute("DELETE FROM vote_totals WHERE guild_id = ?", (guild_id,))
    for table in GUILD_TABLES:  # fixed names, never input
        conn.execute(f"DELETE FROM {table} WHERE guild_id = ?", (guild_id,))
    conn.execute("DELETE FROM departed_guilds WHERE guild_id = ?", (guild_id,))
    return GuildDeleted(guild_id=guild_id, votes=votes), deltas


def delete_guild_votes(guild_id: int, conn: sqlite3.Connection) -> tuple[int, TotalsDeltas]:
    """On the writer's thread, inside a transaction: delete every vote in one server and move
    the totals by them, the server's to zero (so its rows go) and the pooled ones down by as
    much. Returns how many votes went, and the deltas for the cache."""
    rows = conn.execute(
        "SELECT episode_key, COUNT(*), SUM(score) FROM votes WHERE guild_id = ? "
        "GROUP BY episode_key",
        (guild_id,),
    ).fetchall()
    deltas: TotalsDeltas = {
        (guild_id, episode_key): [-int(count), -int(total)] for episode_key, count, total in rows
    }
    conn.execute("DELETE FROM votes WHERE guild_id = ?", (guild_id,))
    _write_totals(conn, deltas)
    return sum(int(count) for _, count, _ in rows), deltas


def _current_scores(conn: sqlite3.Connection, keys: Sequence[VoteKey]) -> dict[VoteKey, int | None]:
    scores: dict[VoteKey, int | None] = dict.fromkeys(keys)
    for start in range(0, len(keys), _KEYS_PER_SELECT):
        chunk = keys[start : start + _KEYS_PER_SELECT]
        rows_sql = ", ".join("(?, ?, ?)" for _ in chunk)
        params = [value for key in chunk for value in key]
        # A join from the wanted keys looks each one up by the primary key. The row-value
        # form "(guild_id, user_id, episode_key) IN (VALUES ...)" reads the same rows but
        # SQLite plans it as a scan of every vote (185 ms for 200 keys at a million votes).
        # Both are standard SQL (PostgreSQL too).
        rows = conn.execute(
            f"WITH wanted (guild_id, user_id, episode_key) AS (VALUES {rows_sql}) "
            "SELECT v.guild_id, v.user_id, v.episode_key, v.score FROM wanted "
            "JOIN votes AS v ON v.guild_id = wanted.guild_id AND v.user_id = wanted.user_id "
            "AND v.episode_key = wanted.episode_key",
            params,
        ).fetchall()
        for guild_id, user_id, episode_key, score in rows:
            scores[(int(guild_id), int(user_id), episode_key)] = int(score)
    return scores


def _write_votes(conn: sqlite3.Connection, writes: VoteWrites) -> None:
    upserts, deletes = writes
    if upserts:
        conn.executemany(
            "INSERT INTO votes (guild_id, user_id, episode_key, show_slug, score, voted_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, user_id, episode_key) "
            "DO UPDATE SET score = excluded.score, voted_at = excluded.voted_at",
            upserts,
        )
    if deletes:
        conn.executemany(
            "DELETE FROM votes WHERE guild_id = ? AND user_id = ? AND episode_key = ?", deletes
        )


def _write_totals(conn: sqlite3.Connection, deltas: TotalsDeltas) -> None:
    per_guild, pooled_rows = totals_rows(deltas)
    if per_guild:
        conn.executemany(
            "INSERT INTO vote_totals (guild_id, episode_key, show_slug, vote_count, score_sum) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, show_slug, episode_key) DO UPDATE SET "
            "vote_count = vote_totals.vote_count + excluded.vote_count, "
            "score_sum = vote_totals.score_sum + excluded.score_sum",
            per_guild,
        )
        # A total exists only while it counts at least one vote.
        shrunk = [(row[0], row[2], row[1]) for row in per_guild if row[3] < 0]
        if shrunk:
            conn.executemany(
                "DELETE FROM vote_totals WHERE guild_id = ? AND show_slug = ? "
                "AND episode_key = ? AND vote_count = 0",
                shrunk,
            )
    if pooled_rows:
        conn.executemany(
            "INSERT INTO vote_totals_global (episode_key, show_slug, vote_count, score_sum) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (show_slug, episode_key) DO UPDATE SET "
            "vote_count = vote_totals_global.vote_count + excluded.vote_count, "
            "score_sum = vote_totals_global.score_sum + excluded.score_sum",
            pooled_rows,
        )
        shrunk_global = [(row[1], row[0]) for row in pooled_rows if row[2] < 0]
        if shrunk_global:
            conn.executemany(
                "DELETE FROM vote_totals_global WHERE show_slug = ? AND episode_key = ? "
                "AND vote_count = 0",
                shrunk_global,
            )
