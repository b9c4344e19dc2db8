"""The members' spoilers store against a real SQLite file and a real PostgreSQL server: the
helpers role, log channel, guard mode and ignored channels (cached, and invalidated across
processes), and the reposting webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from bot.hiding import GuardMode, MemberSpoilerSettings
from bot.storage import Storage
from bot.storage.members import (
    MAX_GUARD_IGNORED_CHANNELS,
    FlagDeletion,
    StoredWebhook,
    TooManyIgnoredChannelsError,
)

# Discord ids are 64-bit: these need BIGINT columns on PostgreSQL.
GUILD = 1_300_000_000_000_700_001
ROLE, LOG, CHANNEL = 1_300_000_000_000_700_002, 1_300_000_000_000_700_003, 1_300_000_000_000_700_004
WEBHOOK = 1_300_000_000_000_700_005


@pytest.fixture
async def storage(database_url, tmp_path) -> AsyncIterator[Storage]:
    store = await Storage.open(database_url, tmp_path)
    yield store
    await store.close()


async def test_settings_are_stored_read_back_and_heard(storage):
    heard: list[int | None] = []
    storage.member_spoiler_listeners.append(heard.append)
    assert await storage.member_spoiler_settings(GUILD) == MemberSpoilerSettings()
    assert await storage.set_guard_mode(GUILD, GuardMode.HIDE) is GuardMode.OFF
    assert await storage.set_spoiler_helpers_role(GUILD, ROLE) is None
    assert await storage.set_spoiler_log_channel(GUILD, LOG) is None
    assert await storage.set_guard_ignored(GUILD, CHANNEL, True) is False
    settings = await storage.member_spoiler_settings(GUILD)
    assert settings == MemberSpoilerSettings(
        helper_role_id=ROLE,
        log_channel_id=LOG,
        guard_mode=GuardMode.HIDE,
        guard_ignored=frozenset({CHANNEL}),
    )
    assert await storage.guarded_guilds() == {GUILD: settings}
    assert heard == [GUILD] * 4

    assert await storage.set_spoiler_helpers_role(GUILD, None) == ROLE
    assert await storage.set_guard_ignored(GUILD, CHANNEL, False) is True
    assert await storage.set_guard_mode(GUILD, GuardMode.OFF) is GuardMode.HIDE
    assert await storage.member_spoiler_settings(GUILD) == MemberSpoilerSettings(log_channel_id=LOG)
    assert await storage.guarded_guilds() == {}  # the guard is off there


async def test_ignored_channels_are_capped_and_a_refusal_changes_nothing(storage):
    for channel in range(MAX_GUARD_IGNORED_CHANNELS):
        await storage.set_guard_ignored(GUILD, 1000 + channel, True)
    before = await storage.member_spoiler_settings(GUILD)
    with pytest.raises(TooManyIgnoredChannelsError):
        await storage.set_guard_ignored(GUILD, CHANNEL, True)
    assert await storage.member_spoiler_settings(GUILD) == before
    assert CHANNEL not in before.guard_ignored
    # One already ignored may be ignored again: nothing is added.
    assert await storage.set_guard_ignored(GUILD, 1000, True) is True


async def test_two_moderators_at_once_are_each_told_the_value_they_replaced(storage):
    await storage.member_spoiler_settings(GUILD)  # cached, as in a running bot
    olds = await asyncio.gather(
        storage.set_guard_mode(GUILD, GuardMode.FLAG), storage.set_guard_mode(GUILD, GuardMode.HIDE)
    )
    final = (await storage.member_spoiler_settings(GUILD)).guard_mode
    other = ({GuardMode.FLAG, GuardMode.HIDE} - {final}).pop()
    assert sorted(olds) == sorted([GuardMode.OFF, other])
    ignores = await asyncio.gather(
        storage.set_guard_ignored(GUILD, CHANNEL, True),
        storage.set_guard_ignored(GUILD, CHANNEL, True),
    )
    assert sorted(ignores) == [False, True]


async def test_a_second_process_is_told_the_value_the_first_one_set(database_url, tmp_path):
    one, other = (
        await Storage.open(database_url, tmp_path),
        await Storage.open(database_url, tmp_path),
    )
    try:
        await other.member_spoiler_settings(GUILD)  # the other process has the defaults cached
        assert await one.set_guard_mode(GUILD, GuardMode.FLAG) is GuardMode.OFF
        assert await other.set_guard_mode(GUILD, GuardMode.HIDE) is GuardMode.FLAG
        assert await one.set_spoiler_log_channel(GUILD, LOG) is None
        assert await other.set_spoiler_log_channel(GUILD, None) == LOG
    finally:
        await one.close()
        await other.close()


async def test_a_read_that_races_a_write_is_not_cached(storage):
    read = storage.db.read_together
    started, written = asyncio.Event(), asyncio.Event()

    async def slow_read(queries):
        rows = await read(queries)
        started.set()
        await written.wait()  # the write commits while this read's result is in flight
        return rows

    storage.db.read_together = slow_read
    reader = asyncio.create_task(storage.member_spoiler_settings(GUILD))
    await started.wait()
    storage.db.read_together = read
    await storage.set_guard_mode(GUILD, GuardMode.FLAG)
    written.set()
    assert (await reader).guard_mode is GuardMode.OFF  # read before the write
    assert (await storage.member_spoiler_settings(GUILD)).guard_mode is GuardMode.FLAG


async def test_webhooks_are_kept_per_channel_and_only_the_one_gone_is_forgotten(storage):
    assert await storage.spoiler_webhook(CHANNEL) is None
    await storage.save_spoiler_webhook(GUILD, CHANNEL, StoredWebhook(WEBHOOK, "token"))
    assert await storage.spoiler_webhook(CHANNEL) == StoredWebhook(WEBHOOK, "token")
    await storage.save_spoiler_webhook(GUILD, CHANNEL, StoredWebhook(WEBHOOK + 1, "newer"))
    assert await storage.spoiler_webhook(CHANNEL) == StoredWebhook(WEBHOOK + 1, "newer")
    await storage.forget_spoiler_webhook(CHANNEL, WEBHOOK)  # an older webhook: the newer stays
    assert await storage.spoiler_webhook(CHANNEL) is not None
    await storage.forget_spoiler_webhook(CHANNEL, WEBHOOK + 1)
    assert await storage.spoiler_webhook(CHANNEL) is None


async def eventually(check, within_s: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        assert loop.time() - started < within_s, "not within the time allowed"
        await asyncio.sleep(0.005)


async def test_a_change_in_one_process_reaches_the_others_cache_and_guard(postgres_url):
    one = await Storage.open(postgres_url, Path("."))
    other = await Storage.open(postgres_url, Path("."))
    heard: list[int | None] = []
    other.member_spoiler_listeners.append(heard.append)
    try:
        await other.member_spoiler_settings(GUILD)
        assert GUILD in other._member_spoiler_cache  # only an announcement can refresh it
        await one.set_guard_ignored(GUILD, CHANNEL, True)

        async def seen() -> bool:
            return (await other.member_spoiler_settings(GUILD)).guard_ignored == {CHANNEL}

        await eventually(seen)
        assert GUILD in heard  # the other process's guard rebuilds

        # Changes missed while its listener was down: the guard rebuilds once it hears again.
        heard.clear()
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend($1)", other.db._listener.get_server_pid()
            )
        finally:
            await admin.close()

        async def untrusting() -> bool:
            return not other._caching

        async def trusting() -> bool:
            return other._caching

        await eventually(untrusting)
        await one.set_guard_mode(GUILD, GuardMode.HIDE)
        assert (await other.member_spoiler_settings(GUILD)).guard_mode is GuardMode.HIDE
        await eventually(trusting, within_s=5)
        assert None in heard
    finally:
        await one.close()
        await other.close()


async def test_flag_deletions_come_due_in_order_to_the_second_and_go_once_done(storage):
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    first, second, later = WEBHOOK + 1, WEBHOOK + 2, WEBHOOK + 3
    assert await storage.flag_deletions(now) == ([], None)
    # Stored to the second and never early: half a second past the minute is the next second.
    await storage.schedule_flag_deletion(GUILD, CHANNEL, second, now + timedelta(seconds=60.5))
    await storage.schedule_flag_deletion(GUILD, CHANNEL, first, now + timedelta(seconds=60))
    await storage.schedule_flag_deletion(GUILD, LOG, later, now + timedelta(hours=1))
    await storage.schedule_flag_deletion(GUILD, CHANNEL, first, now + timedelta(days=9))  # again

    assert await storage.flag_deletions(now) == ([], now + timedelta(seconds=60))
    due, upcoming = await storage.flag_deletions(now + timedelta(seconds=61))
    assert due == [
        FlagDeletion(first, CHANNEL, now + timedelta(seconds=60)),
        FlagDeletion(second, CHANNEL, now + timedelta(seconds=61)),
    ]
    assert upcoming == now + timedelta(hours=1)

    await storage.flag_deleted(first)
    await storage.flag_deleted(first)  # twice is harmless
    due, upcoming = await storage.flag_deletions(now + timedelta(days=1))
    assert [d.message_id for d in due] == [second, later]
    assert upcoming is None


async def test_flag_deletions_survive_reopening_the_database(database_url, tmp_path):
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    store = await Storage.open(database_url, tmp_path)
    try:
        await store.schedule_flag_deletion(GUILD, CHANNEL, WEBHOOK, now)
    finally:
        await store.close()
    store = await Storage.open(database_url, tmp_path)
    try:
        assert await store.flag_deletions(now) == ([FlagDeletion(WEBHOOK, CHANNEL, now)], None)
    finally:
        await store.close()
