import asyncio
from datetime import timedelta

import pytest

from bot.guild_settings import DEFAULT_GUILD_SETTINGS
from bot.spoilers.durations import DEFAULT_SPOILER_WINDOW as DEFAULT_WINDOW
from bot.spoilers.durations import SpoilerWindow, parse_window
from bot.spoilers.policy import SpoilerMode
from bot.storage import Storage, StorageError
from bot.storage.migrations import migrations
from bot.storage.sqlite.database import Database, sqlite_path_from_url

GUILD = 1234


@pytest.fixture
async def storage(database_url, tmp_path):
    store = await Storage.open(database_url, tmp_path)
    yield store
    await store.close()


async def test_migrates_from_empty_to_latest(tmp_path):
    db = Database(tmp_path / "fresh.db")
    await db.open()
    try:
        assert await db.schema_version() == len(migrations("sqlite"))
        async with db.conn.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone())[0] == "wal"
        async with db.conn.execute("PRAGMA foreign_keys") as cursor:
            assert (await cursor.fetchone())[0] == 1
    finally:
        await db.close()


async def test_reopening_does_not_reapply_migrations(tmp_path):
    for _ in range(2):
        db = Database(tmp_path / "again.db")
        await db.open()
        assert await db.schema_version() == len(migrations("sqlite"))
        await db.close()


async def test_newer_database_is_refused(tmp_path):
    db = Database(tmp_path / "future.db")
    await db.open()
    await db.conn.execute("PRAGMA user_version = 999")
    await db.close()
    with pytest.raises(StorageError, match="newer than this code"):
        await Database(tmp_path / "future.db").open()


async def test_untouched_guild_and_dms_get_defaults(storage):
    assert await storage.get_guild_settings(GUILD) == DEFAULT_GUILD_SETTINGS
    assert await storage.get_guild_settings(None) == DEFAULT_GUILD_SETTINGS


async def test_settings_survive_reopening(database_url, tmp_path):
    url = database_url
    store = await Storage.open(url, tmp_path)
    await store.set_spoiler_window(GUILD, parse_window("1000d"))
    await store.set_spoiler_mode(GUILD, SpoilerMode.PRIVATE)
    await store.set_show_window(GUILD, "black-mirror", parse_window("forever"))
    await store.set_spoilers_ok_channel(GUILD, 777, True)
    await store.set_min_votes(GUILD, 12)
    await store.set_min_member_days(GUILD, 3)
    await store.close()

    reopened = await Storage.open(url, tmp_path)
    try:
        settings = await reopened.get_guild_settings(GUILD)
    finally:
        await reopened.close()
    assert settings.spoilers.window.length == timedelta(days=1000)
    assert settings.spoilers.mode is SpoilerMode.PRIVATE
    assert settings.spoilers.show_windows == (("black-mirror", SpoilerWindow(None)),)
    assert settings.spoilers.spoilers_ok_channels == {777}
    assert settings.min_votes == 12
    assert settings.min_member_days == 3


async def test_setters_return_old_value_and_refresh_cache(storage):
    assert (await storage.get_guild_settings(GUILD)).spoilers.window.length == timedelta(days=7)
    old = await storage.set_spoiler_window(GUILD, parse_window("off"))
    assert old.length == timedelta(days=7)
    assert (await storage.get_guild_settings(GUILD)).spoilers.window.is_off
    assert await storage.set_spoiler_mode(GUILD, SpoilerMode.REFUSE) is SpoilerMode.TAGGED
    # Changing the mode must not reset the window to the default.
    assert (await storage.get_guild_settings(GUILD)).spoilers.window.is_off


async def test_show_window_override_and_removal(storage):
    assert await storage.set_show_window(GUILD, "bm", parse_window("2w")) is None
    old = await storage.set_show_window(GUILD, "bm", None)
    assert old == parse_window("2w")
    assert (await storage.get_guild_settings(GUILD)).spoilers.show_windows == ()


async def test_channel_policy_toggles(storage):
    assert await storage.set_spoilers_ok_channel(GUILD, 5, True) is False
    assert await storage.set_spoilers_ok_channel(GUILD, 5, True) is True
    assert await storage.set_spoilers_ok_channel(GUILD, 5, False) is True
    assert (await storage.get_guild_settings(GUILD)).spoilers.spoilers_ok_channels == frozenset()


async def test_settings_are_per_guild(storage):
    await storage.set_spoiler_mode(GUILD, SpoilerMode.REFUSE)
    assert (await storage.get_guild_settings(GUILD + 1)).spoilers.mode is SpoilerMode.TAGGED


async def test_failed_transaction_changes_nothing(storage):
    async def write_then_fail():
        async with storage.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO bot_meta (meta_key, meta_value) VALUES (?, ?)", ("k", "v")
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await write_then_fail()
    assert await storage.get_meta("k") is None


async def test_meta_round_trip(storage):
    await storage.set_meta("command_tree_hash", "abc")
    await storage.set_meta("command_tree_hash", "def")
    assert await storage.get_meta("command_tree_hash") == "def"


def test_database_url_forms(tmp_path):
    assert sqlite_path_from_url("sqlite:///data/x.db", tmp_path) == tmp_path / "data/x.db"
    assert sqlite_path_from_url("sqlite:////abs/x.db", tmp_path).as_posix() == "/abs/x.db"
    assert sqlite_path_from_url("sqlite://:memory:", tmp_path) == ":memory:"
    with pytest.raises(StorageError, match="not supported"):
        sqlite_path_from_url("postgres://host/db", tmp_path)


async def test_checkpoints_run_in_the_background_and_close_folds_the_wal(tmp_path):
    db = Database(tmp_path / "wal.db")
    await db.open()
    async with db.conn.execute("PRAGMA wal_autocheckpoint") as cursor:
        assert (await cursor.fetchone())[0] == 0  # never inside a COMMIT
    assert db._checkpoint_task is not None
    assert not db._checkpoint_task.done()
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO bot_meta (meta_key, meta_value) VALUES (?, ?)",
            [(f"k{i}", "v" * 200) for i in range(500)],
        )
    wal = tmp_path / "wal.db-wal"
    assert wal.stat().st_size > 0
    task = db._checkpoint_task
    await db.close()
    assert task.cancelled()
    assert not wal.exists() or wal.stat().st_size == 0


async def test_two_moderators_at_once_are_each_told_the_value_they_replaced(storage):
    await storage.get_guild_settings(GUILD)  # cached, as in a running bot
    first, second = parse_window("2w"), parse_window("3w")
    olds = await asyncio.gather(
        storage.set_spoiler_window(GUILD, first), storage.set_spoiler_window(GUILD, second)
    )
    # The writes commit in some order: the first is told the default, the second the first.
    final = (await storage.get_guild_settings(GUILD)).spoilers.window
    assert final in (first, second)
    replaced_first = final == second
    assert olds == ([DEFAULT_WINDOW, first] if replaced_first else [second, DEFAULT_WINDOW])

    mode_olds = await asyncio.gather(
        storage.set_spoiler_mode(GUILD, SpoilerMode.REFUSE),
        storage.set_spoiler_mode(GUILD, SpoilerMode.PRIVATE),
    )
    final_mode = (await storage.get_guild_settings(GUILD)).spoilers.mode
    other_mode = ({SpoilerMode.REFUSE, SpoilerMode.PRIVATE} - {final_mode}).pop()
    assert sorted(mode_olds) == sorted([SpoilerMode.TAGGED, other_mode])
    show_olds = await asyncio.gather(
        storage.set_show_window(GUILD, "bm", first), storage.set_show_window(GUILD, "bm", second)
    )
    final_show = dict((await storage.get_guild_settings(GUILD)).spoilers.show_windows)["bm"]
    assert sorted(show_olds, key=str) == sorted(
        [None, ({first, second} - {final_show}).pop()], key=str
    )
    channel_olds = await asyncio.gather(
        storage.set_spoilers_ok_channel(GUILD, 5, True),
        storage.set_spoilers_ok_channel(GUILD, 5, True),
    )
    assert sorted(channel_olds) == [False, True]


async def test_a_second_process_is_told_the_value_the_first_one_set(database_url, tmp_path):
    url = database_url
    one, other = await Storage.open(url, tmp_path), await Storage.open(url, tmp_path)
    try:
        await other.get_guild_settings(GUILD)  # the other process has the defaults cached
        assert await one.set_min_votes(GUILD, 12) == DEFAULT_GUILD_SETTINGS.min_votes
        assert await other.set_min_votes(GUILD, 20) == 12
        assert await one.set_show_window(GUILD, "bm", parse_window("2w")) is None
        assert await other.set_show_window(GUILD, "bm", None) == parse_window("2w")
    finally:
        await one.close()
        await other.close()


async def test_a_read_that_races_a_write_never_caches_the_old_settings(storage):
    read_started = asyncio.Event()
    write_done = asyncio.Event()
    real_read = storage._read_guild_settings

    async def slow_read(guild_id):
        settings = await real_read(guild_id)
        read_started.set()
        await write_done.wait()  # the write commits while this read's result is in flight
        return settings

    storage._read_guild_settings = slow_read
    reader = asyncio.create_task(storage.get_guild_settings(GUILD))
    await read_started.wait()
    storage._read_guild_settings = real_read
    await storage.set_min_votes(GUILD, 42)
    write_done.set()
    assert (await reader).min_votes == DEFAULT_GUILD_SETTINGS.min_votes  # read before the write
    assert (await storage.get_guild_settings(GUILD)).min_votes == 42
