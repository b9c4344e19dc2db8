"""The discussion store against a real SQLite file and a real PostgreSQL server: announce
settings, the ledger, threads."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from bot.calendar import (
    MAX_ATTEMPTS,
    AnnounceSettings,
    AnnounceTarget,
    PostKey,
    PostKind,
    PostState,
)
from bot.storage import Storage
from bot.storage.discussion import MAX_ERROR_LENGTH

GUILD = 1234
OTHER = 99
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
RELEASE_KEY = PostKey(GUILD, "show-a/s01e01", PostKind.RELEASE)
CLOSE_KEY = PostKey(GUILD, "show-a/s01e01", PostKind.WINDOW_CLOSED)


INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


@pytest.fixture
async def storage(database_url, tmp_path):
    store = await Storage.open(database_url, tmp_path)
    yield store
    await store.close()


async def test_migration_creates_the_tables_with_their_constraints(storage):
    insert = (
        "INSERT INTO discussion_posts (episode_key, guild_id, kind, state, attempts, due_at, "
        "created_at, updated_at) VALUES ('a/s01e01', ?, 'release', ?, 1, 0, 0, 0)"
    )
    async with storage.db.transaction() as tx:
        await tx.execute(insert, (1, "posted"))
    # UNIQUE (guild, episode, kind).
    with pytest.raises(INTEGRITY_ERRORS):
        async with storage.db.transaction() as tx:
            await tx.execute(insert, (1, "failed"))
    with pytest.raises(INTEGRITY_ERRORS):
        async with storage.db.transaction() as tx:
            await tx.execute(insert, (2, "lost"))
    assert len(await storage.db.fetch_all("SELECT * FROM discussion_posts")) == 1


async def test_untouched_server_announces_nothing(storage):
    settings = await storage.get_announce(GUILD)
    assert settings == AnnounceSettings()
    assert settings.is_empty
    assert await storage.all_announce() == {}


async def test_default_channel_and_show_overrides(storage):
    old = await storage.set_announce(GUILD, 10, 20, now=T0)
    assert old == AnnounceSettings()
    await storage.set_announce(GUILD, 11, None, show_slug="show-b", now=T0 + HOUR)
    await storage.announce_off(GUILD, show_slug="show-c", now=T0 + 2 * HOUR)
    settings = await storage.get_announce(GUILD)
    assert settings.target_for("show-a") == AnnounceTarget(10, 20, T0)
    assert settings.target_for("show-b") == AnnounceTarget(11, None, T0 + HOUR)
    assert settings.target_for("show-c") is None
    assert await storage.all_announce() == {GUILD: settings}


async def test_moving_the_channel_restarts_the_clock_but_changing_the_ping_does_not(storage):
    await storage.set_announce(GUILD, 10, None, now=T0)
    await storage.set_announce(GUILD, 10, 30, now=T0 + HOUR)
    assert (await storage.get_announce(GUILD)).default == AnnounceTarget(10, 30, T0)
    old = await storage.set_announce(GUILD, 12, 30, now=T0 + 2 * HOUR)
    assert old.default == AnnounceTarget(10, 30, T0)
    assert (await storage.get_announce(GUILD)).default == AnnounceTarget(12, 30, T0 + 2 * HOUR)
    # A show turned off and back on starts again from then.
    await storage.announce_off(GUILD, show_slug="show-a", now=T0 + 3 * HOUR)
    await storage.set_announce(GUILD, 12, None, show_slug="show-a", now=T0 + 4 * HOUR)
    target = (await storage.get_announce(GUILD)).target_for("show-a")
    assert target == AnnounceTarget(12, None, T0 + 4 * HOUR)


async def test_announce_off_for_the_server_clears_every_channel_of_that_server_only(storage):
    await storage.set_announce(GUILD, 10, None, now=T0)
    await storage.set_announce(GUILD, 11, None, show_slug="show-b", now=T0)
    await storage.set_announce(OTHER, 50, None, now=T0)
    old = await storage.announce_off(GUILD, now=T0 + HOUR)
    assert old.default == AnnounceTarget(10, None, T0)
    assert (await storage.get_announce(GUILD)).is_empty
    assert set(await storage.all_announce()) == {OTHER}


async def test_settings_survive_reopening(database_url, tmp_path):
    url = database_url
    store = await Storage.open(url, tmp_path)
    await store.set_announce(GUILD, 10, 20, now=T0)
    await store.record_posted(RELEASE_KEY, due_at=T0, channel_id=10, message_id=77, now=T0)
    await store.record_thread(RELEASE_KEY, thread_id=88, parent_id=10, now=T0)
    await store.set_calendar_checked_through(T0 + HOUR)
    await store.close()
    store = await Storage.open(url, tmp_path)
    try:
        assert (await store.get_announce(GUILD)).default == AnnounceTarget(10, 20, T0)
        entry = (await store.ledger_entries([RELEASE_KEY]))[RELEASE_KEY]
        assert (entry.state, entry.message_id, entry.thread_id) == (PostState.POSTED, 77, 88)
        assert await store.is_discussion_thread(88)
        assert await store.calendar_checked_through() == T0 + HOUR
    finally:
        await store.close()


async def test_a_post_is_recorded_once_and_keeps_its_first_message(storage):
    await storage.record_posted(RELEASE_KEY, due_at=T0, channel_id=10, message_id=1, now=T0)
    await storage.record_posted(RELEASE_KEY, due_at=T0, channel_id=10, message_id=2, now=T0)
    # A late failure report for a post already made does not undo it.
    entry = await storage.record_failed(
        RELEASE_KEY, due_at=T0, channel_id=10, error="timeout", now=T0 + HOUR
    )
    assert entry.state is PostState.POSTED
    assert entry.message_id == 1
    assert entry.attempts == 1
    assert entry.settled


async def test_failures_count_attempts_and_a_later_success_clears_the_error(storage):
    for attempt in range(1, 3):
        entry = await storage.record_failed(
            CLOSE_KEY,
            due_at=T0,
            channel_id=10,
            error="Missing Permissions",
            now=T0 + attempt * HOUR,
        )
        assert (entry.state, entry.attempts) == (PostState.FAILED, attempt)
        assert entry.last_error == "Missing Permissions"
        assert entry.updated_at == T0 + attempt * HOUR
    assert set(await storage.retryable_posts()) == {CLOSE_KEY}
    await storage.record_posted(CLOSE_KEY, due_at=T0, channel_id=10, message_id=5, now=T0)
    entry = (await storage.ledger_entries([CLOSE_KEY]))[CLOSE_KEY]
    assert (entry.state, entry.attempts, entry.last_error) == (PostState.POSTED, 3, None)
    assert await storage.retryable_posts() == {}


async def test_a_post_out_of_tries_is_no_longer_retryable(storage):
    for _ in range(MAX_ATTEMPTS):
        entry = await storage.record_failed(
            CLOSE_KEY, due_at=T0, channel_id=10, error="Unknown Channel", now=T0
        )
    assert entry.attempts == MAX_ATTEMPTS
    assert entry.settled
    assert await storage.retryable_posts() == {}


async def test_a_final_failure_uses_every_try_at_once(storage):
    entry = await storage.record_failed(
        CLOSE_KEY, due_at=T0, channel_id=10, error="Missing Permissions", now=T0
    )
    assert entry.attempts == 1
    entry = await storage.record_failed(
        CLOSE_KEY, due_at=T0, channel_id=10, error="Unknown Channel", final=True, now=T0 + HOUR
    )
    assert (entry.attempts, entry.settled, entry.retry_at) == (MAX_ATTEMPTS, True, None)
    assert entry.last_error == "Unknown Channel"
    assert await storage.retryable_posts() == {}


async def test_leaving_a_server_gives_up_its_failed_posts_only(storage):
    other = PostKey(OTHER, "show-a/s01e01", PostKind.RELEASE)
    for key in (RELEASE_KEY, other):
        await storage.record_failed(key, due_at=T0, channel_id=10, error="Missing Access", now=T0)
    await storage.record_posted(CLOSE_KEY, due_at=T0, channel_id=10, message_id=5, now=T0)
    assert await storage.give_up_posts(GUILD, error="Embargo left.", now=T0 + HOUR) == 1
    entries = await storage.ledger_entries([RELEASE_KEY, CLOSE_KEY, other])
    assert entries[RELEASE_KEY].settled
    assert entries[RELEASE_KEY].last_error == "Embargo left."
    assert entries[CLOSE_KEY].state is PostState.POSTED
    assert set(await storage.retryable_posts()) == {other}


async def test_pruning_forgets_posts_due_before_the_horizon_per_server(storage):
    old = PostKey(GUILD, "show-a/s01e01", PostKind.RELEASE)
    new = PostKey(GUILD, "show-a/s01e02", PostKind.RELEASE)
    others = PostKey(OTHER, "show-a/s01e01", PostKind.RELEASE)
    for key, due in ((old, T0 - 50 * DAY), (new, T0), (others, T0 - 50 * DAY)):
        await storage.record_posted(key, due_at=due, channel_id=10, message_id=5, now=due)
    await storage.record_forum_post_started(old, channel_id=10, now=T0 - 50 * DAY)
    await storage.prune_ledger({GUILD: T0 - 40 * DAY})
    assert set(await storage.ledger_entries([old, new, others])) == {new, others}
    assert not await storage.forum_post_started(old)
    assert await storage.ledger_horizons() == {GUILD: T0 - 40 * DAY}
    await storage.prune_ledger({GUILD: T0 - 45 * DAY})  # never moves back
    assert await storage.ledger_horizons() == {GUILD: T0 - 40 * DAY}


async def test_errors_are_bounded_and_on_one_line(storage):
    entry = await storage.record_failed(
        CLOSE_KEY, due_at=T0, channel_id=None, error="x\n" * 5000, now=T0
    )
    assert len(entry.last_error) <= MAX_ERROR_LENGTH
    assert "\n" not in entry.last_error


async def test_skips_never_overwrite_a_recorded_post(storage):
    await storage.record_posted(RELEASE_KEY, due_at=T0, channel_id=10, message_id=1, now=T0)
    other = PostKey(OTHER, RELEASE_KEY.episode_key, PostKind.RELEASE)
    await storage.record_skipped([(RELEASE_KEY, T0), (other, T0)], now=T0 + HOUR)
    await storage.record_skipped([], now=T0)
    entries = await storage.ledger_entries([RELEASE_KEY, other, CLOSE_KEY])
    assert entries[RELEASE_KEY].state is PostState.POSTED
    assert entries[other].state is PostState.SKIPPED
    assert entries[other].settled
    assert CLOSE_KEY not in entries


async def test_ledger_lookups_for_many_servers_return_exactly_the_keys_asked(storage):
    episode = "show-a/s02e03"
    keys = [PostKey(guild, episode, PostKind.RELEASE) for guild in range(200)]
    await storage.record_skipped([(key, T0) for key in keys], now=T0)
    # One server asked (a key lookup) and a hundred (one range read, filtered).
    assert set(await storage.ledger_entries(keys[:1])) == {keys[0]}
    asked = [*keys[50:150], PostKey(500, episode, PostKind.RELEASE)]
    assert set(await storage.ledger_entries(asked)) == set(keys[50:150])
    assert await storage.ledger_entries([]) == {}


async def test_last_post_shows_the_latest_outcome_for_the_server(storage):
    assert await storage.last_post(GUILD) is None
    await storage.record_posted(RELEASE_KEY, due_at=T0, channel_id=10, message_id=1, now=T0)
    await storage.record_failed(
        CLOSE_KEY, due_at=T0, channel_id=10, error="Missing Access", now=T0 + HOUR
    )
    await storage.record_posted(
        PostKey(OTHER, "x/s01e01", PostKind.RELEASE),
        due_at=T0,
        channel_id=3,
        message_id=4,
        now=T0 + 2 * HOUR,
    )
    key, entry = await storage.last_post(GUILD)
    assert key == CLOSE_KEY
    assert (entry.state, entry.last_error) == (PostState.FAILED, "Missing Access")


async def test_threads_embargo_opened_are_known_and_others_are_not(storage):
    await storage.record_posted(RELEASE_KEY, due_at=T0, channel_id=10, message_id=1, now=T0)
    await storage.record_thread_failed(RELEASE_KEY, error="Missing Create Public Threads", now=T0)
    entry = (await storage.ledger_entries([RELEASE_KEY]))[RELEASE_KEY]
    assert entry.state is PostState.POSTED
    assert entry.thread_id is None
    assert entry.last_error == "Missing Create Public Threads"
    assert not await storage.is_discussion_thread(88)
    await storage.record_thread(RELEASE_KEY, thread_id=88, parent_id=10, now=T0)
    assert await storage.is_discussion_thread(88)
    assert not await storage.is_discussion_thread(10)
    thread = await storage.discussion_thread(88)
    assert (thread.guild_id, thread.episode_key, thread.parent_id) == (
        GUILD,
        RELEASE_KEY.episode_key,
        10,
    )
    entry = (await storage.ledger_entries([RELEASE_KEY]))[RELEASE_KEY]
    assert (entry.thread_id, entry.last_error) == (88, None)


async def test_watermark_starts_empty_and_moves(storage):
    assert await storage.calendar_checked_through() is None
    await storage.set_calendar_checked_through(T0)
    await storage.set_calendar_checked_through(T0 + HOUR)
    assert await storage.calendar_checked_through() == T0 + HOUR


async def test_naive_times_are_refused(storage):
    with pytest.raises(ValueError, match="timezone-aware"):
        await storage.set_announce(GUILD, 1, None, now=datetime(2026, 1, 1))
