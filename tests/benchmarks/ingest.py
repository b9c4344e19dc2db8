"""Vote ingestion: sustained votes per second from 200 concurrent voters through the storage's
``cast_vote`` (the path ``/vote`` takes once it has checked the member), then a recount proving
that no vote was lost or double-counted.

Each voter is one member of one server voting on released episodes one after another, as a
member clicking through ``/vote`` would; about one vote in ten changes an earlier score. Every
returned ``VoteChange`` must report the score it replaced, every expected vote must be stored
with its last score, the votes table must hold exactly the expected number of rows, and the
storage's own recount (``check_vote_totals``) must find the running totals in agreement.

Runs alternate between the storage's own durability setting (``synchronous=FULL``: every
commit synced, so acknowledged votes survive a power cut) and ``NORMAL`` (survives only a
crash of the process), so the cost of durability is measured side by side; the figure is the
storage's own.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bot.storage import Storage
from bot.storage.sqlite.database import Database as SqliteDatabase
from tests.benchmarks.checks import Checks
from tests.benchmarks.workload import NOW, USER_ID_BASE, GuildRow, World, score_for

# Voters' ids start past every generated member, so their rows can be found and checked.
VOTER_ID_BASE = USER_ID_BASE + 10**12


@dataclass(frozen=True)
class IngestFigures:
    votes_per_s: float
    votes_lost: int
    runs_votes_per_s: tuple[float, ...]
    votes_cast: int
    recount_s: float
    synchronous: str  # the writer's PRAGMA synchronous: how durable each commit was
    normal_votes_per_s: float  # the same runs with synchronous=NORMAL, for comparison
    runs_normal_votes_per_s: tuple[float, ...]


async def measure_ingestion(
    world: World,
    guilds: list[GuildRow],
    database: Path,
    workdir: Path,
    *,
    voters: int,
    votes_per_voter: int,
    runs: int,
    seed: int,
    checks: Checks,
) -> IngestFigures:
    rng = random.Random(seed)
    released = [e.key for e in world.released()]
    expected: dict[tuple[int, int, str], int] = {}
    rates: dict[str, list[float]] = {}
    storage = await Storage.open(f"sqlite:///{database}", workdir)
    try:
        rows_before = await _count(storage)
        synchronous = await _sqlite(storage).synchronous()
        schedule = [mode for _ in range(runs) for mode in (synchronous, "NORMAL")]
        for run, mode in enumerate(schedule):
            await _sqlite(storage).conn.execute(f"PRAGMA synchronous = {mode}")
            plans = []
            for voter in range(voters):
                guild_id = rng.choice(guilds).guild_id
                user_id = VOTER_ID_BASE + run * voters + voter
                keys = rng.sample(released, votes_per_voter)
                plan = []
                for index, key in enumerate(keys):
                    # About one vote in ten goes back to an episode voted on before.
                    if index and rng.random() < 0.1:
                        key = keys[rng.randrange(index)]
                    plan.append((key, score_for(world.quality[key], rng)))
                plans.append((guild_id, user_id, plan))

            async def vote(guild_id: int, user_id: int, plan: list[tuple[str, int]]) -> None:
                mine: dict[str, int] = {}
                for key, score in plan:
                    change = await storage.cast_vote(guild_id, user_id, key, score, now=NOW)
                    checks.expect(
                        change.old_score == mine.get(key) and change.new_score == score,
                        f"vote {guild_id}/{user_id}/{key}: replaced {change.old_score}, "
                        f"expected {mine.get(key)}",
                    )
                    mine[key] = score
                for key, score in mine.items():
                    expected[(guild_id, user_id, key)] = score

            started = time.perf_counter()
            await asyncio.gather(*(vote(*plan) for plan in plans))
            elapsed = time.perf_counter() - started
            rates.setdefault(mode, []).append(voters * votes_per_voter / elapsed)
        await _sqlite(storage).conn.execute(f"PRAGMA synchronous = {synchronous}")

        started = time.perf_counter()
        stored = await _voters_rows(storage)
        lost = sum(1 for vote_key, score in expected.items() if stored.get(vote_key) != score)
        extra = sum(1 for vote_key in stored if vote_key not in expected)
        checks.expect(lost == 0, f"ingestion: {lost} vote(s) missing or with a stale score")
        checks.expect(extra == 0, f"ingestion: {extra} vote(s) stored that nobody cast")
        rows_after = await _count(storage)
        checks.expect(
            rows_after == rows_before + len(expected),
            f"ingestion: votes table went from {rows_before} to {rows_after} rows, "
            f"expected +{len(expected)}",
        )
        drift = await storage.check_vote_totals()
        checks.expect(not drift, f"ingestion: totals drift: {[d.describe() for d in drift[:3]]}")
        recount_s = time.perf_counter() - started
    finally:
        await storage.drain_votes()
        await storage.close()
    return IngestFigures(
        votes_per_s=statistics.median(rates[synchronous]),
        votes_lost=lost,
        runs_votes_per_s=tuple(rates[synchronous]),
        votes_cast=len(schedule) * voters * votes_per_voter,
        recount_s=recount_s,
        synchronous=synchronous,
        normal_votes_per_s=statistics.median(rates["NORMAL"]),
        runs_normal_votes_per_s=tuple(rates["NORMAL"]),
    )


def _sqlite(storage: Storage) -> SqliteDatabase:
    """The benchmark measures SQLite's synchronous modes: its database is SQLite."""
    assert isinstance(storage.db, SqliteDatabase)
    return storage.db


async def _count(storage: Storage) -> int:
    async with _sqlite(storage).conn.execute("SELECT COUNT(*) FROM votes") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _voters_rows(storage: Storage) -> dict[tuple[int, int, str], int]:
    async with _sqlite(storage).conn.execute(
        "SELECT guild_id, user_id, episode_key, score FROM votes WHERE user_id >= ?",
        (VOTER_ID_BASE,),
    ) as cursor:
        rows = await cursor.fetchall()
    return {(int(g), int(u), k): int(s) for g, u, k, s in rows}
