"""A server's data outlives Embargo's removal by 30 days, then goes, with the totals exact.

Storage is a real SQLite file; the cog runs in the real bot against the local stand-in, with
a clock the tests move.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import discord
import pytest

from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.guild_settings import DEFAULT_GUILD_SETTINGS
from bot.ranking import Tally
from bot.retention import RETENTION, Departure, departure, due_for_deletion, next_deletion
from bot.spoilers.durations import parse_window
from bot.spoilers.policy import SpoilerMode
from bot.storage import Storage
from bot.storage.retention import GUILD_TABLES, GuildDeleted
from tests.support import DEFAULT_GUILD_ID, Harness

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
G1, G2 = 1_300_000_000_000_900_001, 1_300_000_000_000_900_002
ALICE, BOB = 1_300_000_000_000_800_001, 1_300_000_000_000_800_002
E1, E2 = "black-mirror/s07e06", "black-mirror/s07e05"
DAY = timedelta(days=1)

# One row for a server in every per-server table, to see each one deleted (or kept).
SERVER_ROWS = {
    "guild_settings": (
        "INSERT INTO guild_settings (guild_id, spoiler_window_s, spoiler_mode, min_votes, "
        "min_member_days, updated_at) VALUES (?, 60, 'private', 3, 0, 0)"
    ),
    "show_windows": "INSERT INTO show_windows VALUES (?, 'black-mirror', 3600)",
    "spoiler_channels": "INSERT INTO spoiler_channels VALUES (?, 42)",
    "announce_channels": "INSERT INTO announce_channels VALUES (?, 43, NULL, 0)",
    "announce_shows": "INSERT INTO announce_shows VALUES (?, 'black-mirror', 44, NULL, 0)",
    "discussion_posts": (
        "INSERT INTO discussion_posts (episode_key, guild_id, kind, state, attempts, due_at, "
        "created_at, updated_at) VALUES ('black-mirror/s07e06', ?, 'release', 'posted', 1, 0, "
        "0, 0)"
    ),
    "discussion_threads": (
        "INSERT INTO discussion_threads VALUES (CAST(? AS BIGINT) + 7, ?, 'bm/s1e1', 45, 0)"
    ),
    "forum_posts_started": (
        "INSERT INTO forum_posts_started VALUES ('black-mirror/s07e06', ?, 'release', 45, 0)"
    ),
    "discussion_pruned": "INSERT INTO discussion_pruned VALUES (?, 0)",
    "watch_roles": "INSERT INTO watch_roles VALUES (?, 'black-mirror', -1, 46)",
    "watch_role_failures": "INSERT INTO watch_role_failures VALUES (?, 46, 'missing', 0)",
    "member_spoiler_settings": "INSERT INTO member_spoiler_settings VALUES (?, 47, 48, 'flag')",
    "guard_ignored_channels": "INSERT INTO guard_ignored_channels VALUES (?, 49)",
    "spoiler_webhooks": (
        "INSERT INTO spoiler_webhooks VALUES (CAST(? AS BIGINT) + 9, ?, 50, 'token')"
    ),
    "watch_role_holders": "INSERT INTO watch_role_holders VALUES (?, 46, 47)",
    "guard_flag_deletions": (
        "INSERT INTO guard_flag_deletions VALUES (CAST(? AS BIGINT) + 11, 51, ?, 0)"
    ),
}


@pytest.fixture
async def storage(database_url, tmp_path) -> AsyncIterator[Storage]:
    storage = await Storage.open(database_url, tmp_path)
    try:
        yield storage
    finally:
        await storage.close()


async def fill_server(storage: Storage, guild_id: int) -> None:
    await storage.set_spoiler_window(guild_id, parse_window("2w"))
    async with storage.db.transaction() as conn:
        for table, sql in SERVER_ROWS.items():
            if table == "guild_settings":
                continue  # set above, through the store
            params = (guild_id, guild_id) if sql.count("?") == 2 else (guild_id,)
            await conn.execute(sql, params)
    await storage.set_spoiler_mode(guild_id, SpoilerMode.PRIVATE)


async def count_rows(storage: Storage, guild_id: int) -> dict[str, int]:
    counts = {}
    for table in (*GUILD_TABLES, "votes", "vote_totals"):
        rows = await storage.db.read(
            f"SELECT COUNT(*) FROM {table} WHERE guild_id = ?", (guild_id,)
        )
        counts[table] = int(rows[0][0])
    return counts


async def stored_tallies(storage: Storage, guild_id: int | None) -> dict[str, Tally]:
    if guild_id is None:
        params: tuple[int, ...] = ()
        sql = "SELECT episode_key, vote_count, score_sum FROM vote_totals_global"
    else:
        sql = "SELECT episode_key, vote_count, score_sum FROM vote_totals WHERE guild_id = ?"
        params = (guild_id,)
    return {row[0]: Tally(int(row[1]), int(row[2])) for row in await storage.db.read(sql, params)}


# -- the decision ------------------------------------------------------------------------------


def test_due_exactly_thirty_days_after_removal():
    gone = departure(G1, NOW)
    assert gone.delete_at == NOW + timedelta(days=30) == NOW + RETENTION
    assert due_for_deletion([gone], NOW + RETENTION - timedelta(seconds=1)) == []
    assert due_for_deletion([gone], NOW + RETENTION) == [G1]
    assert next_deletion([gone], NOW + 29 * DAY) == NOW + RETENTION
    assert next_deletion([gone], NOW + RETENTION) is None


def test_the_longest_overdue_first_and_the_next_one_not_yet_due():
    older = Departure(G2, NOW - 40 * DAY, NOW - 10 * DAY)
    newer = departure(G1, NOW - 31 * DAY)
    later = departure(3, NOW - DAY)
    assert due_for_deletion([newer, later, older], NOW) == [G2, G1]
    assert next_deletion([newer, later, older], NOW) == later.delete_at


# -- storage -----------------------------------------------------------------------------------


async def test_kept_29_days_then_deleted_at_30_with_the_totals_exact(storage):
    for guild in (G1, G2):
        await fill_server(storage, guild)
    await storage.cast_vote(G1, ALICE, E1, 9, now=NOW)
    await storage.cast_vote(G1, BOB, E1, 4, now=NOW)
    await storage.cast_vote(G1, BOB, E2, 7, now=NOW)
    await storage.cast_vote(G2, ALICE, E1, 2, now=NOW)
    # Read (and so cache) every scope's totals first: the cache must move too.
    for scope in (G1, G2, None):
        await storage.vote_tallies("black-mirror", scope)
    g1_before, g2_before = await count_rows(storage, G1), await count_rows(storage, G2)
    assert all(g1_before.values()), g1_before

    gone = await storage.record_departure(G1, NOW)
    assert gone.delete_at == NOW + 30 * DAY
    assert await storage.delete_departed_guild(G1, NOW + 29 * DAY) is None
    assert await count_rows(storage, G1) == g1_before
    assert (await storage.get_guild_settings(G1)).spoilers.mode is SpoilerMode.PRIVATE

    deleted = await storage.delete_departed_guild(G1, NOW + 30 * DAY)

    assert deleted == GuildDeleted(guild_id=G1, votes=3)
    assert set((await count_rows(storage, G1)).values()) == {0}
    assert await count_rows(storage, G2) == g2_before
    assert await storage.departures() == []
    assert await storage.check_vote_totals() == []
    assert await stored_tallies(storage, None) == {E1: Tally(1, 2)}
    assert await storage.vote_tallies("black-mirror", None) == {E1: Tally(1, 2)}
    assert await storage.vote_tallies("black-mirror", G1) == {}
    assert await storage.vote_tallies("black-mirror", G2) == {E1: Tally(1, 2)}
    for (scope, _), cached in storage._tallies_cache.entries().items():
        assert cached == await stored_tallies(storage, scope)
    assert await storage.get_guild_settings(G1) == DEFAULT_GUILD_SETTINGS
    assert (await storage.get_guild_settings(G2)).spoilers.mode is SpoilerMode.PRIVATE
    # Done once: a second run finds nothing to do.
    assert await storage.delete_departed_guild(G1, NOW + 31 * DAY) is None


async def test_a_reinvite_cancels_the_deletion(storage):
    await fill_server(storage, G1)
    await storage.cast_vote(G1, ALICE, E1, 9, now=NOW)
    before = await count_rows(storage, G1)
    await storage.record_departure(G1, NOW)
    assert await storage.cancel_departure(G1) is True
    assert await storage.cancel_departure(G1) is False
    assert await storage.delete_departed_guild(G1, NOW + 60 * DAY) is None
    assert await count_rows(storage, G1) == before
    assert await storage.check_vote_totals() == []


async def test_a_second_removal_event_keeps_the_first_date(storage):
    first = await storage.record_departure(G1, NOW)
    again = await storage.record_departure(G1, NOW + 5 * DAY)
    assert again == first
    assert await storage.departures() == [first]


async def test_votes_queued_before_the_deletion_are_deleted_with_the_server(storage):
    await storage.record_departure(G1, NOW)
    votes = [storage.cast_vote(G1, 1000 + n, E1, 1 + n % 10, now=NOW) for n in range(50)]
    vote_tasks = [asyncio.ensure_future(vote) for vote in votes]
    await asyncio.sleep(0)  # queued first
    deleted = await storage.delete_departed_guild(G1, NOW + 30 * DAY)
    await asyncio.gather(*vote_tasks)
    assert deleted is not None
    assert deleted.votes == 50
    assert await count_rows(storage, G1) == dict.fromkeys(
        (*GUILD_TABLES, "votes", "vote_totals"), 0
    )
    assert await storage.check_vote_totals() == []


async def tables_with_a_guild_id(storage: Storage) -> set[str]:
    if storage.db.dialect == "postgres":
        rows = await storage.db.read(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND column_name = 'guild_id'"
        )
        return {row[0] for row in rows}
    tables = [
        row[0]
        for row in await storage.db.read(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    with_guild = set()
    for table in tables:
        columns = {row[1] for row in await storage.db.read(f"PRAGMA table_info({table})")}
        if "guild_id" in columns:
            with_guild.add(table)
    return with_guild


async def test_every_per_server_table_is_deleted_with_the_server(storage):
    with_guild = await tables_with_a_guild_id(storage)
    handled = {*GUILD_TABLES, "votes", "vote_totals", "departed_guilds"}
    assert with_guild == handled
    assert set(SERVER_ROWS) == set(GUILD_TABLES)


# -- the cog -----------------------------------------------------------------------------------


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def bot_settings(tmp_path) -> Settings:
    return Settings(
        discord_token=None,
        database_url=f"sqlite:///{tmp_path}/embargo.db",
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
    )


def make_bot(tmp_path, storage: Storage, clock: Clock) -> EmbargoBot:
    return EmbargoBot(bot_settings(tmp_path), storage, clock=clock)


async def dispatch(bot: discord.Client, event: str, *args: object) -> None:
    """Dispatch a gateway event to the bot and wait for the listeners it started."""
    before = asyncio.all_tasks()
    bot.dispatch(event, *args)
    await asyncio.gather(*(asyncio.all_tasks() - before))


async def test_removal_rejoin_and_restart_through_the_bot(tmp_path):
    url = f"sqlite:///{tmp_path}/embargo.db"
    clock = Clock(NOW)
    storage = await Storage.open(url, tmp_path)
    try:
        await fill_server(storage, G1)
        await storage.cast_vote(G1, ALICE, E1, 9, now=NOW)
        await storage.cast_vote(G2, ALICE, E1, 3, now=NOW)
        async with Harness(make_bot(tmp_path, storage, clock)) as h:
            cog = h.bot.get_cog("Retention")
            await dispatch(h.bot, "guild_remove", discord.Object(G1))
            assert await _departed(storage, G1)
            clock.now = NOW + 29 * DAY
            assert await cog.delete_due() == pytest.approx(DAY.total_seconds())
            # Invited back: nothing is deleted, however long it waits.
            await dispatch(h.bot, "guild_join", discord.Object(G1))
            assert not await _departed(storage, G1)
            clock.now = NOW + 40 * DAY
            assert await cog.delete_due() is None
            assert (await count_rows(storage, G1))["votes"] == 1
            # Removed again, then Embargo restarts before the 30 days are up.
            clock.now = NOW + 50 * DAY
            await dispatch(h.bot, "guild_remove", discord.Object(G1))
            assert await _departed(storage, G1)
    finally:
        await storage.close()

    storage = await Storage.open(url, tmp_path)
    try:
        async with Harness(make_bot(tmp_path, storage, clock)) as h:
            cog = h.bot.get_cog("Retention")
            clock.now = NOW + 79 * DAY
            assert await cog.delete_due() == pytest.approx(DAY.total_seconds())
            assert (await count_rows(storage, G1))["votes"] == 1
            clock.now = NOW + 80 * DAY
            assert await cog.delete_due() is None
            assert set((await count_rows(storage, G1)).values()) == {0}
            assert await storage.check_vote_totals() == []
            assert await stored_tallies(storage, None) == {E1: Tally(1, 3)}
    finally:
        await storage.close()


async def test_a_server_embargo_is_in_is_never_deleted(tmp_path, storage):
    """A departure whose re-invite event went missing: the server is there, so it stays."""
    await fill_server(storage, DEFAULT_GUILD_ID)
    clock = Clock(NOW)
    async with Harness(make_bot(tmp_path, storage, clock)) as h:
        # Recorded behind the cog's back, after the server became available.
        await storage.record_departure(DEFAULT_GUILD_ID, NOW - 31 * DAY)
        cog = h.bot.get_cog("Retention")
        assert await cog.delete_due() is None
    assert await storage.departures() == []
    assert (await count_rows(storage, DEFAULT_GUILD_ID))["guild_settings"] == 1


async def test_the_background_task_sleeps_until_the_deletion_is_due(tmp_path, storage):
    await fill_server(storage, G1)
    clock = Clock(NOW)
    bot = make_bot(tmp_path, storage, clock)

    async def ready() -> None:  # the stand-in sends no READY: start at once
        return None

    bot.wait_until_ready = ready
    # Each pass of the task ends in delete_due: count them, and wait for them.
    passes: asyncio.Queue[float | None] = asyncio.Queue()
    async with Harness(bot) as h:
        cog = h.bot.get_cog("Retention")
        delete_due = cog.delete_due

        async def counted() -> float | None:
            delay = await delete_due()
            passes.put_nowait(delay)
            return delay

        cog.delete_due = counted
        await dispatch(h.bot, "guild_remove", discord.Object(G1))
        assert await asyncio.wait_for(passes.get(), 5) == RETENTION.total_seconds()
        assert (await count_rows(storage, G1))["guild_settings"] == 1
        # Asleep until the deletion is due: no pass comes by itself.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(passes.get(), 0.2)
        clock.now = NOW + 30 * DAY
        cog.wake()
        assert await asyncio.wait_for(passes.get(), 5) is None
        assert set((await count_rows(storage, G1)).values()) == {0}


async def _departed(storage: Storage, guild_id: int) -> bool:
    return any(d.guild_id == guild_id for d in await storage.departures())


async def test_invited_back_while_offline_is_noticed_at_start(tmp_path, storage):
    await fill_server(storage, DEFAULT_GUILD_ID)
    await storage.record_departure(DEFAULT_GUILD_ID, NOW - 10 * DAY)
    async with Harness(make_bot(tmp_path, storage, Clock(NOW))):
        # The server arrives with the gateway's start-up stream, not as a join.
        assert not await _departed(storage, DEFAULT_GUILD_ID)
    assert (await count_rows(storage, DEFAULT_GUILD_ID))["guild_settings"] == 1


async def test_a_removal_while_offline_is_noticed_when_ready(tmp_path, storage):
    await fill_server(storage, DEFAULT_GUILD_ID)
    await fill_server(storage, G1)
    await storage.cast_vote(G2, ALICE, E1, 3, now=NOW)  # votes and nothing else
    clock = Clock(NOW)
    async with Harness(make_bot(tmp_path, storage, clock)) as h:
        cog = h.bot.get_cog("Retention")
        await cog.notice_removals_while_offline()
        departed = {d.guild_id: d for d in await storage.departures()}
        assert set(departed) == {G1, G2}
        assert departed[G1].left_at == NOW
        # Seen again at the next start: the date stays.
        clock.now = NOW + 5 * DAY
        await cog.notice_removals_while_offline()
        assert await storage.departures() == sorted(departed.values(), key=lambda d: d.guild_id)


def on_shard(shard_id: int, low_bits: int) -> int:
    """A server id on ``shard_id`` of two shards."""
    return (((G1 >> 22) & ~1) + shard_id) << 22 | low_bits


async def test_a_process_leaves_the_servers_of_other_processes_shards_alone(tmp_path, storage):
    """With SHARD_IDS, a process sees only its shards' servers: the others' are theirs to
    notice and delete, never taken for servers Embargo left."""
    here = (DEFAULT_GUILD_ID >> 22) % 2
    mine_left, theirs = on_shard(here, 1), on_shard(1 - here, 2)
    theirs_left = on_shard(1 - here, 3)
    for guild_id in (DEFAULT_GUILD_ID, mine_left, theirs, theirs_left):
        await fill_server(storage, guild_id)
    await storage.record_departure(theirs_left, NOW - 31 * DAY)  # by the other process
    sharded = replace(bot_settings(tmp_path), shard_count=2, shard_ids=(here,))
    async with Harness(EmbargoBot(sharded, storage, clock=Clock(NOW))) as h:
        assert h.bot.shard_ids == [here]
        cog = h.bot.get_cog("Retention")
        await cog.notice_removals_while_offline()
        assert {d.guild_id for d in await storage.departures()} == {mine_left, theirs_left}
        await cog.delete_due()  # nothing of its own is due yet
        assert (await count_rows(storage, theirs_left))["guild_settings"] == 1
    assert (await count_rows(storage, theirs))["guild_settings"] == 1
