"""Several processes on one PostgreSQL database, one of them a real bot against the Discord
stand-in: the bot follows while another process leads (serving the catalogue that process
writes, its guard flagging the new terms, syncing nothing itself), takes over the shared work
when the leader's session ends, acts on ``python -m bot reload``, and, after its listening
connection was lost, rebuilds what it may have missed (the catalogue, the release calendar).

The other process is played by storage and content objects of its own on the same database,
with the leader lock held on a connection of its own, as a second ``python -m bot`` holds
them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.client import EmbargoBot
from bot.config import Settings
from bot.content.reload import LiveContent
from bot.spoilers.durations import parse_window
from bot.storage import Storage
from bot.storage.postgres.leader import (
    AdvisoryLeaderLock,
    ask_leader,
)
from tests.content_factory import episode_table, review_md, show_toml, write
from tests.support import EPISODE_TALK, GENERAL, MODERATOR, GuildSpec, Harness
from tests.support.specs import base_bot_permissions
from tests.test_guard import ACTIVE_TERM, SPOILING_TITLE
from tests.test_leader import leader_session_pid, terminate

TODAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NEW_TERM = "Orla takes the helm"


def write_show(root: Path, *, third_episode: bool = False, later: datetime | None = None) -> None:
    episodes: list[dict[str, Any]] = [
        episode_table(1, 1, "Pilot", released=date(2025, 1, 1)),
        {
            **episode_table(1, 2, SPOILING_TITLE, released=date(2026, 11, 20)),
            "title_spoils": True,
        },
    ]
    if third_episode:
        episodes.append(episode_table(1, 3, "Open Water", released=date(2026, 11, 24)))
    if later is not None:
        episodes.append(episode_table(1, 4, "Landfall", released=later))
    write(
        root,
        "shows/test-show.toml",
        show_toml(title="Test Show", timezone="UTC", episodes=episodes),
    )
    write(root, "reviews/test-show/s01e02.md", review_md(spoiler_terms=[ACTIVE_TERM]))
    if third_episode:
        write(root, "reviews/test-show/s01e03.md", review_md(spoiler_terms=[NEW_TERM]))


class MovingClock:
    """The wall clock shifted to start at ``start``, running at real speed."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def until(check: Callable[[], object], within_s: float = 1.0) -> float:
    """Seconds until ``check()`` held (fails the test past ``within_s``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within_s:
            raise AssertionError(f"not within {within_s} s")
        await asyncio.sleep(0.002)
    return time.monotonic() - start


def command_syncs(harness: Harness) -> int:
    return sum(1 for r in harness.requests if r.method == "PUT" and r.path.endswith("/commands"))


def cog(bot: EmbargoBot, name: str) -> Any:
    found: Any = bot.get_cog(name)
    assert found is not None
    return found


def shared_work_running(bot: EmbargoBot) -> list[bool]:
    return [
        cog(bot, "Discussion").scheduler._work.running,
        bot._content_lead.running,
    ]


def bot_settings(url: str, content_dir: Path) -> Settings:
    return Settings(
        discord_token=None,
        database_url=url,
        content_dir=content_dir,
        log_level="INFO",
        dev_guild_id=None,
        message_guard=True,
    )


def replies_to(harness: Harness, bot: EmbargoBot, original: dict) -> list[str]:
    bot_id = str(bot.application_id)
    return [
        m.payload["content"]
        for m in harness.standin.channel_messages(GENERAL.id)
        if m.payload["author"]["id"] == bot_id
        and str(m.payload.get("message_reference", {}).get("message_id")) == original["id"]
    ]


async def moderator(harness: Harness, subcommand: str, **options: Any) -> None:
    reply = await harness.slash("embargo", subcommand=subcommand, as_user=MODERATOR, **options)
    assert not reply.errors, reply.describe()


async def test_a_follower_serves_the_leaders_content_and_takes_over_when_it_dies(
    postgres_url, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    root = tmp_path / "content"
    write_show(root)
    # The other process leads: it holds the lock and has synced the content.
    other = await Storage.open(postgres_url, tmp_path)
    other_lock = AdvisoryLeaderLock(postgres_url)
    assert await other_lock.acquire(wait=False)
    other_content = LiveContent(other, root)
    await other_content.reload()
    storage = await Storage.open(postgres_url, tmp_path)
    perms = base_bot_permissions()
    perms.update(manage_webhooks=True, manage_messages=True)
    bot = EmbargoBot(bot_settings(postgres_url, root), storage, clock=MovingClock(TODAY))
    try:
        async with Harness(bot, guild=GuildSpec(bot_permissions=perms)) as harness:
            harness.mark_ready()
            assert not bot.leadership.leading
            assert "test-show/s01e02" in bot.catalogue.by_key  # loaded from storage
            assert command_syncs(harness) == 0  # the leader's work
            assert shared_work_running(bot) == [False, False]
            guard = cog(bot, "Guard")
            guard.flag_seconds = 0.05  # one flag reply per member while it is up
            await moderator(harness, "window", duration="2w")
            await moderator(harness, "guard", mode="flag")
            await guard.rebuild()
            said = await harness.member_says(f"{ACTIVE_TERM}!")
            assert [r for r in replies_to(harness, bot, said) if "Test Show S1E2" in r]

            # The leader adds an episode and its review: this process hears the commit and
            # serves both, its guard included, without reading a file.
            write_show(root, third_episode=True)
            committed = time.monotonic()
            await other_content.reload()
            swapped = await until(lambda: "test-show/s01e03" in bot.catalogue.by_key)
            print(f"commit to catalogue swap in the other process: {swapped * 1000:.1f} ms")
            await until(lambda: "test-show/s01e03" in guard.episodes)
            print(f"commit to guard terms: {(time.monotonic() - committed) * 1000:.1f} ms")
            await asyncio.sleep(0.1)  # the first flag reply is gone
            said = await harness.member_says(f"wow, {NEW_TERM}")
            assert [r for r in replies_to(harness, bot, said) if "Test Show S1E3" in r]
            assert not any("content reload" in r.getMessage() for r in caplog.records)

            # The leader's session ends (kill -9, a lost connection): this process takes over.
            ended = time.monotonic()
            await terminate(postgres_url, await leader_session_pid(postgres_url))
            await until(lambda: bot.leadership.leading)
            print(f"takeover: {(time.monotonic() - ended) * 1000:.1f} ms")
            await until(lambda: all(shared_work_running(bot)))
            # It catches up: the files, then the commands (synced once, by it).
            await until(lambda: command_syncs(harness) == 1, within_s=5)
            messages = [r.getMessage() for r in caplog.records]
            assert any(m.startswith("leading the shared work") for m in messages)
            assert any(m.startswith("content reload (now leading)") for m in messages)

            # `python -m bot reload` reaches the leader, across machines.
            caplog.clear()
            assert await ask_leader(postgres_url, "content:reload") is not None

            def reloaded() -> bool:
                return any(
                    r.getMessage().startswith("content reload (python -m bot reload)")
                    for r in caplog.records
                )

            await until(reloaded)
    finally:
        await other_lock.release()
        await storage.close()
        await other.close()


def release_posts(harness: Harness) -> list[str]:
    return [
        m.payload["content"]
        for m in harness.standin.channel_messages(EPISODE_TALK.id)
        if m.interaction_id is None
    ]


async def deafen(url: str, storage: Storage) -> None:
    """End the connection the process hears other processes' changes on."""
    db: Any = storage.db  # the PostgreSQL backend's
    listener = db._listener
    assert listener is not None
    await terminate(url, listener.get_server_pid())
    await until(lambda: not storage._caching)


async def test_after_its_listener_is_back_the_leader_serves_the_content_it_missed(
    postgres_url, tmp_path
):
    root = tmp_path / "content"
    write_show(root)
    # Another process writes content too (`python -m bot check --apply` on another machine,
    # with files of its own).
    elsewhere = tmp_path / "elsewhere"
    write_show(elsewhere, later=TODAY + timedelta(minutes=30))
    storage = await Storage.open(postgres_url, tmp_path)
    other = await Storage.open(postgres_url, tmp_path)
    clock = MovingClock(TODAY)
    bot = EmbargoBot(bot_settings(postgres_url, root), storage, clock=clock)
    try:
        async with Harness(bot, guild=GuildSpec(channels=(GENERAL, EPISODE_TALK))) as harness:
            harness.mark_ready()
            assert bot.leadership.leading
            await other.set_announce(harness.guild.id, EPISODE_TALK.id, None, now=TODAY)
            scheduler = cog(bot, "Discussion").scheduler
            await asyncio.wait_for(scheduler.wait_idle(), 10)
            await deafen(postgres_url, storage)
            clock.offset += timedelta(hours=1)
            # Unheard: an episode released half an hour ago is added.
            await LiveContent(other, elsewhere).reload()
            assert "test-show/s01e04" not in bot.catalogue.by_key
            await until(lambda: storage._caching, within_s=5)
            await until(lambda: "test-show/s01e04" in bot.catalogue.by_key)
            await harness.standin.wait_for(
                lambda: [p for p in release_posts(harness) if "Landfall" in p] or None,
                within=10,
                what="the release post of the episode added while not listening",
            )
    finally:
        await storage.close()
        await other.close()


async def test_after_its_listener_is_back_the_leader_rechecks_windows_changed_unheard(
    postgres_url, tmp_path
):
    root = tmp_path / "content"
    write_show(root)  # S1E2 came out five days ago
    storage = await Storage.open(postgres_url, tmp_path)
    other = await Storage.open(postgres_url, tmp_path)
    guild = GuildSpec(channels=(GENERAL, EPISODE_TALK))
    await other.set_announce(guild.id, EPISODE_TALK.id, None, now=TODAY - timedelta(days=10))
    await other.set_spoiler_window(guild.id, parse_window("2w"))
    bot = EmbargoBot(bot_settings(postgres_url, root), storage, clock=MovingClock(TODAY))
    try:
        async with Harness(bot, guild=guild) as harness:
            harness.mark_ready()
            assert bot.leadership.leading
            scheduler = cog(bot, "Discussion").scheduler
            await asyncio.wait_for(scheduler.wait_idle(), 10)
            assert release_posts(harness) == []  # its release post came too late: skipped
            await deafen(postgres_url, storage)
            # Unheard: another process's moderator shortens the window, which closed S1E2's
            # four days ago.
            await other.set_spoiler_window(guild.id, parse_window("1d"))
            await until(lambda: storage._caching, within_s=5)
            await harness.standin.wait_for(
                lambda: [p for p in release_posts(harness) if "S1E2" in p] or None,
                within=10,
                what="the window-closed post under the window changed while not listening",
            )
            (post,) = release_posts(harness)
            assert post == "Spoilers for **Test Show S1E2** are now open everywhere in this server."
    finally:
        await storage.close()
        await other.close()


async def test_release_posts_set_up_in_a_follower_reach_the_leaders_calendar(
    postgres_url, tmp_path
):
    root = tmp_path / "content"
    write_show(root, later=TODAY + timedelta(minutes=30))
    storage = await Storage.open(postgres_url, tmp_path)
    follower = await Storage.open(postgres_url, tmp_path)
    clock = MovingClock(TODAY)
    bot = EmbargoBot(bot_settings(postgres_url, root), storage, clock=clock)
    try:
        async with Harness(bot, guild=GuildSpec(channels=(GENERAL, EPISODE_TALK))) as harness:
            harness.mark_ready()
            scheduler = cog(bot, "Discussion").scheduler
            await asyncio.wait_for(scheduler.wait_idle(), 10)  # nothing to post: asleep
            # `/embargo announce` answered by a process that does not lead.
            await follower.set_announce(harness.guild.id, EPISODE_TALK.id, None, now=TODAY)
            await until(lambda: not scheduler._idle.is_set())  # woken by the notice
            await asyncio.wait_for(scheduler.wait_idle(), 10)
            clock.offset += timedelta(minutes=30)  # the release comes
            scheduler.wake()
            await harness.standin.wait_for(
                lambda: [p for p in release_posts(harness) if "Landfall" in p] or None,
                within=10,
                what="the release post set up in the follower",
            )
    finally:
        await storage.close()
        await follower.close()


async def test_a_follower_deletes_its_own_servers_data_when_due(postgres_url, tmp_path):
    """Deleting a departed server's data is not the leader's: only the process whose shards
    hold the server would see it come back, so that process deletes it (a leader could never
    tell, and servers on followers' shards would be kept for good)."""
    root = tmp_path / "content"
    write_show(root)
    other = await Storage.open(postgres_url, tmp_path)
    other_lock = AdvisoryLeaderLock(postgres_url)
    assert await other_lock.acquire(wait=False)
    await LiveContent(other, root).reload()
    storage = await Storage.open(postgres_url, tmp_path)
    clock = MovingClock(TODAY)
    bot = EmbargoBot(bot_settings(postgres_url, root), storage, clock=clock)
    try:
        async with Harness(bot) as harness:
            harness.mark_ready()
            assert not bot.leadership.leading
            gone = harness.guild.id
            await storage.set_spoiler_window(gone, parse_window("2w"))
            await harness.remove_bot(gone)
            await until(lambda: bool(cog(bot, "Retention")._departed), within_s=5)
            assert await storage.guilds_with_data() == {gone}
            clock.offset += timedelta(days=31)
            cog(bot, "Retention").wake()
            await until_async(lambda: storage.guilds_with_data(), within_s=5)
            assert not bot.leadership.leading  # deleted by this follower, not by a leader
    finally:
        await storage.close()
        await other.close()
        await other_lock.release()


async def until_async(read: Callable[[], Any], within_s: float) -> None:
    """Until the awaited ``read()`` is empty (fails the test past ``within_s``)."""
    start = time.monotonic()
    while await read():
        if time.monotonic() - start > within_s:
            raise AssertionError(f"not within {within_s} s")
        await asyncio.sleep(0.01)
