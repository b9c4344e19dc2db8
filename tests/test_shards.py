"""Shards: the shard of a server, and IDENTIFY pacing: the pure rule (bot/shards.py) and the
reservations every process shares through the database (bot/storage/identify.py), on both
backends."""

import asyncio
import itertools
import logging
import time

import pytest

from bot import client
from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.shards import (
    IDENTIFY_INTERVAL_S,
    IDENTIFY_SPACING_S,
    guild_shard,
    identify_bucket,
    next_identify_at,
    queue_horizon_s,
)
from bot.storage import Storage
from tests.support import Harness


@pytest.mark.parametrize(
    ("guild_id", "shard_count", "shard"),
    [
        (81384788765712384, 1, 0),
        (81384788765712384, 2, 0),  # its timestamp part, 19403645698, is even
        (81384788765712384, 3, 1),
        (81384788765712384, 4, 2),
        ((5 << 22) | 0x3FFFFF, 4, 1),  # the low 22 bits (worker, process, increment) don't count
        (5 << 22, 4, 1),
    ],
)
def test_a_server_is_on_the_shard_of_its_id_timestamp(guild_id, shard_count, shard):
    assert guild_shard(guild_id, shard_count) == shard


def test_turns_are_spaced_by_discords_five_seconds_and_a_margin():
    assert IDENTIFY_INTERVAL_S == 5.0
    assert IDENTIFY_INTERVAL_S < IDENTIFY_SPACING_S <= IDENTIFY_INTERVAL_S + 1.0


@pytest.mark.parametrize(
    ("shard_id", "max_concurrency", "bucket"),
    [(0, 1, 0), (7, 1, 0), (0, 16, 0), (15, 16, 15), (16, 16, 0), (33, 16, 1)],
)
def test_a_shard_is_in_bucket_id_modulo_max_concurrency(shard_id, max_concurrency, bucket):
    assert identify_bucket(shard_id, max_concurrency) == bucket


def test_max_concurrency_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        identify_bucket(3, 0)


def test_the_horizon_is_every_shard_of_a_bucket_queued():
    assert queue_horizon_s(4, 1, 5.0) == 20.0
    assert queue_horizon_s(32, 16, 5.0) == 10.0
    assert queue_horizon_s(33, 16, 5.0) == 15.0  # bucket 0 holds shards 0, 16 and 32
    assert queue_horizon_s(1, 16, 5.0) == 5.0


def test_a_bucket_never_used_identifies_now():
    assert next_identify_at(None, 1000.0, interval_s=5.0, horizon_s=20.0) == 1000.0


def test_an_old_reservation_does_not_delay():
    assert next_identify_at(900.0, 1000.0, interval_s=5.0, horizon_s=20.0) == 1000.0
    assert next_identify_at(995.0, 1000.0, interval_s=5.0, horizon_s=20.0) == 1000.0


def test_a_recent_reservation_delays_until_one_interval_after_it():
    assert next_identify_at(998.0, 1000.0, interval_s=5.0, horizon_s=20.0) == 1003.0
    assert next_identify_at(1000.0, 1000.0, interval_s=5.0, horizon_s=20.0) == 1005.0


def test_reservations_queue_one_interval_apart_up_to_the_horizon():
    assert next_identify_at(1015.0, 1000.0, interval_s=5.0, horizon_s=20.0) == 1020.0
    assert next_identify_at(1020.0, 1000.0, interval_s=5.0, horizon_s=20.0) == 1025.0


def test_a_reservation_beyond_the_horizon_means_the_clock_went_back():
    # An hour ahead: the clock was set back an hour. One interval, not an hour, offline.
    assert next_identify_at(4600.0, 1000.0, interval_s=5.0, horizon_s=20.0) == 1005.0


@pytest.fixture
async def two_processes(database_url, tmp_path):
    """Two Storage objects on one database, as two processes would have."""
    first = await Storage.open(database_url, tmp_path)
    second = await Storage.open(database_url, tmp_path)
    yield first, second
    await second.close()
    await first.close()


async def test_the_first_reservation_of_a_bucket_waits_nothing(two_processes):
    first, _ = two_processes
    slot = await first.reserve_identify(0, interval_s=5.0, horizon_s=20.0)
    assert slot.wait_s == 0.0


async def test_a_second_reservation_waits_for_the_interval(two_processes):
    first, second = two_processes
    one = await first.reserve_identify(0, interval_s=5.0, horizon_s=20.0)
    two = await second.reserve_identify(0, interval_s=5.0, horizon_s=20.0)
    assert two.at == one.at + 5.0
    # The time between the two calls is taken off the wait, and nothing more.
    assert 4.0 < two.wait_s <= 5.0


async def test_buckets_do_not_wait_for_each_other(two_processes):
    first, second = two_processes
    await first.reserve_identify(0, interval_s=5.0, horizon_s=20.0)
    other = await second.reserve_identify(1, interval_s=5.0, horizon_s=20.0)
    assert other.wait_s == 0.0


async def test_concurrent_reservations_over_processes_get_distinct_spaced_instants(
    two_processes,
):
    first, second = two_processes
    slots = await asyncio.gather(
        *(
            store.reserve_identify(3, interval_s=5.0, horizon_s=40.0)
            for store in (first, second, first, second, first, second)
        )
    )
    instants = sorted(slot.at for slot in slots)
    gaps = [later - earlier for earlier, later in itertools.pairwise(instants)]
    assert all(gap >= 5.0 for gap in gaps), gaps
    # Back to back: each reservation queues right after the one before.
    assert instants[-1] - instants[0] < 5 * 5.0 + 2.0


async def test_a_reservation_far_ahead_is_not_waited_for(two_processes):
    first, second = two_processes
    ahead = await first.reserve_identify(2, interval_s=5.0, horizon_s=20.0)
    async with first.db.transaction() as tx:
        await tx.execute(
            "UPDATE identify_slots SET reserved_at = ? WHERE bucket = 2", (ahead.at + 3600.0,)
        )
    slot = await second.reserve_identify(2, interval_s=5.0, horizon_s=20.0)
    assert 4.0 < slot.wait_s <= 5.0


async def test_reservations_survive_a_restart(database_url, tmp_path):
    store = await Storage.open(database_url, tmp_path)
    await store.reserve_identify(0, interval_s=5.0, horizon_s=20.0)
    await store.close()
    reopened = await Storage.open(database_url, tmp_path)
    try:
        slot = await reopened.reserve_identify(0, interval_s=5.0, horizon_s=20.0)
    finally:
        await reopened.close()
    assert slot.wait_s > 4.0


# -- the bot's hook: Discord's limits asked once, the turn reserved, then waited for ----------


def sharded_settings(tmp_path, count: int) -> Settings:
    return Settings(
        discord_token=None,
        database_url=f"sqlite:///{tmp_path}/embargo.db",
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
        shard_count=count,
    )


@pytest.fixture
async def hooked(tmp_path, monkeypatch):
    """A logged-in sharded bot (4 shards) whose turns are 0.3 s apart, and its stand-in."""
    monkeypatch.setattr(client, "IDENTIFY_SPACING_S", 0.3)
    storage = await Storage.open(f"sqlite:///{tmp_path}/embargo.db", tmp_path)
    try:
        async with Harness(EmbargoBot(sharded_settings(tmp_path, 4), storage)) as harness:
            yield harness
    finally:
        await storage.close()


async def timed(work) -> float:
    started = time.monotonic()
    await work
    return time.monotonic() - started


async def test_the_hook_waits_for_its_buckets_turn_only(hooked, caplog):
    hooked.standin.max_concurrency = 2
    caplog.set_level(logging.INFO, logger="bot.client")
    await hooked.bot.before_identify_hook(0, initial=True)
    await hooked.bot.before_identify_hook(1)  # bucket 1: its first turn
    assert "waits" not in caplog.text
    assert await timed(hooked.bot.before_identify_hook(2)) >= 0.25  # bucket 0 again
    assert "shard 2 waits 0.3s for its turn to log in (bucket 0)" in caplog.text
    assert "Discord allows 2 concurrent login(s); 1000 of 1000 session starts" in caplog.text
    assert len(hooked.standin.find_requests("GET", r"^/gateway/bot$")) == 1  # asked once


async def test_unknown_limits_put_every_shard_in_one_bucket_and_are_asked_again(hooked, caplog):
    hooked.standin.max_concurrency = 2
    caplog.set_level(logging.INFO, logger="bot.client")
    hooked.standin.fail_next("GET", r"^/gateway/bot$", status=400)
    await hooked.bot.before_identify_hook(0, initial=True)
    assert "Discord's session-start limits unknown" in caplog.text
    # Shard 1 has a bucket of its own: asked again, Discord says so.
    await hooked.bot.before_identify_hook(1)
    assert "waits" not in caplog.text
    assert len(hooked.standin.find_requests("GET", r"^/gateway/bot$")) == 2


async def test_without_the_database_a_shard_waits_a_full_turn(hooked, caplog):
    await hooked.bot.storage.close()  # every reservation now fails
    waited = await timed(hooked.bot.before_identify_hook(0, initial=True))
    assert waited >= 0.3
    assert "shard 0: no turn to log in reserved" in caplog.text


async def test_too_few_session_starts_left_are_one_warning(hooked, caplog):
    hooked.standin.session_starts = 997  # 3 left for 4 shards
    await hooked.bot.before_identify_hook(0, initial=True)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("only 3 session start(s) left for 4 shard(s) here")
