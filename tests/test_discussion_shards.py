"""The release calendar across shard processes: the leader posts for every server, those on
another process's shards included, whose channels its gateway cache doesn't hold.

The leader is a real bot serving one shard of two, against the Discord stand-in; the process
serving the other shard is played by storage of its own on the same PostgreSQL database (it
is where that server's moderators set things). Its server exists on the stand-in, but the
leader never gets its GUILD_CREATE (it is added once the leader is logged in), as for a
server on another process's shard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from discord.ext import commands

from bot.calendar import PostKey, PostKind, PostState
from bot.client import EmbargoBot
from bot.config import Settings
from bot.spoilers.durations import parse_window
from bot.storage import Storage, StorageBusy
from cogs.discussion import Discussion
from tests.content_factory import episode_table, review_md, show_toml, write
from tests.support import MODERATOR, GuildSpec, Harness
from tests.support.standin.threads import threads_of
from tests.support.standin.world import (
    CREATE_PUBLIC_THREADS,
    FORUM_CHANNEL,
    Channel,
    Guild,
    snowflake,
)

RELEASE = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
PILOT = "severed-ties/s01e01"
HERE = (GuildSpec().id >> 22) % 2  # the shard the leader serves, of two


class MovingClock:
    """The wall clock shifted to start at ``start``, running at real speed."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def jump(self, by: timedelta) -> None:
        self.offset += by


@dataclass
class Leader:
    harness: Harness
    far: Guild  # a server on the other process's shard
    elsewhere: Storage  # the other process's storage

    @property
    def scheduler(self) -> Any:
        assert isinstance(self.harness.bot, commands.AutoShardedBot)
        cog: Any = self.harness.bot.get_cog(Discussion.__cog_name__)
        assert cog is not None
        return cog.scheduler

    def posts(self, channel_id: int) -> list[dict[str, Any]]:
        messages = self.harness.standin.channel_messages(channel_id)
        return [m.payload for m in messages if m.interaction_id is None]

    async def wait_posts(self, channel_id: int, count: int) -> None:
        await self.harness.standin.wait_for(
            lambda: len(self.posts(channel_id)) >= count,
            within=20.0,
            what=f"{count} post(s) in channel {channel_id}",
        )

    async def wait_for(self, check: Any, what: str) -> None:
        await self.harness.standin.wait_for(check, within=20.0, what=what)


@contextlib.asynccontextmanager
async def leading_one_shard(
    postgres_url: str, tmp_path: Path, clock: MovingClock
) -> AsyncIterator[Leader]:
    content = tmp_path / "content"
    episodes = [episode_table(1, 1, "The Lighthouse Call", released=RELEASE)]
    write(content, "shows/severed-ties.toml", show_toml(title="Severed Ties", episodes=episodes))
    write(content, "reviews/severed-ties/s01e01.md", review_md("Taut and patient."))
    settings = Settings(
        discord_token=None,
        database_url=postgres_url,
        content_dir=content,
        log_level="INFO",
        dev_guild_id=None,
        shard_count=2,
        shard_ids=(HERE,),
    )
    storage = await Storage.open(postgres_url, tmp_path)
    elsewhere = await Storage.open(postgres_url, tmp_path)
    try:
        bot = EmbargoBot(settings, storage, clock=clock)
        async with Harness(bot) as harness:
            assert bot.leadership.leading
            far = harness.world.add_guild("Far Server", shard=(1 - HERE, 2))
            far.role("Embargo").permissions |= CREATE_PUBLIC_THREADS
            assert not bot.serves_guild(far.id)
            assert bot.get_guild(far.id) is None
            yield Leader(harness, far, elsewhere)
    finally:
        await elsewhere.close()
        await storage.close()


async def test_the_leader_posts_in_a_server_on_another_process_shard(postgres_url, tmp_path):
    clock = MovingClock(RELEASE - timedelta(seconds=3))
    async with leading_one_shard(postgres_url, tmp_path, clock) as leader:
        far = leader.far
        general = far.channel("general")
        # Set in the process serving the server, heard by the leader through the database.
        await leader.elsewhere.set_spoiler_window(far.id, parse_window("1h"))
        await leader.elsewhere.set_announce(far.id, general.id, None, now=clock())
        leader.harness.mark_ready()
        await leader.wait_posts(general.id, 1)
        await leader.wait_for(
            lambda: len(threads_of(leader.harness.standin, general.id)) == 1, "the thread"
        )
        (post,) = leader.posts(general.id)
        assert "Severed Ties S1E1" in post["content"]
        assert "The Lighthouse Call" in post["content"]
        (thread,) = threads_of(leader.harness.standin, general.id)
        assert thread.id == int(post["id"])  # started from the release post
        assert thread.name == "Severed Ties S1E1 · The Lighthouse Call · spoilers"
        await leader.wait_posts(thread.id, 1)
        assert "Spoilers are welcome here" in leader.posts(thread.id)[0]["content"]

        # The window closes ten seconds after the jump: the close post follows, once.
        clock.jump(timedelta(hours=1) - timedelta(seconds=10))
        leader.scheduler.wake()
        await leader.wait_posts(general.id, 2)
        closed = leader.posts(general.id)[1]
        assert closed["content"] == (
            "Spoilers for **Severed Ties S1E1** are now open everywhere in this server."
        )
        leader.scheduler.wake()
        await leader.scheduler.wait_idle()
        assert len(leader.posts(general.id)) == 2
        assert len(threads_of(leader.harness.standin, general.id)) == 1
        release = PostKey(far.id, PILOT, PostKind.RELEASE)
        entry = (await leader.elsewhere.ledger_entries([release]))[release]
        assert entry.state is PostState.POSTED
        assert entry.thread_id == thread.id
        # What was fetched for the wake is not kept past it.
        assert len(leader.scheduler.remote) == 0


async def test_a_missing_permission_there_is_named_as_on_the_leaders_own_shard(
    postgres_url, tmp_path
):
    clock = MovingClock(RELEASE - timedelta(seconds=3))
    async with leading_one_shard(postgres_url, tmp_path, clock) as leader:
        far = leader.far
        read_only = far.channel("announcements")  # @everyone may not send there
        await leader.elsewhere.set_announce(far.id, read_only.id, None, now=clock())
        leader.harness.mark_ready()
        await asyncio.sleep((RELEASE + timedelta(seconds=1) - clock()).total_seconds())
        leader.scheduler.wake()
        await leader.scheduler.wait_idle()
        assert leader.posts(read_only.id) == []
        key = PostKey(far.id, PILOT, PostKind.RELEASE)
        entry = (await leader.elsewhere.ledger_entries([key]))[key]
        assert entry.state is PostState.FAILED
        assert entry.retry_at is not None
        assert "Send Messages" in (entry.last_error or ""), entry.last_error
        # Checked on Embargo's side, as on its own shard: Discord was never asked to post.
        sent = leader.harness.standin.find_requests("POST", rf"^/channels/{read_only.id}/")
        assert sent == []
        shown = await leader.harness.slash(
            "embargo",
            subcommand="settings",
            as_user=MODERATOR,
            in_channel=far.channel("general").id,
        )
        assert not shown.errors, shown.describe()
        field = next(f for f in shown.embeds[0]["fields"] if f["name"] == "Release posts")
        assert "The last post failed" in field["value"]
        assert "Send Messages" in field["value"]


async def test_a_removal_the_other_process_records_stops_the_leaders_posts_there(
    postgres_url, tmp_path
):
    clock = MovingClock(RELEASE - timedelta(seconds=3))
    async with leading_one_shard(postgres_url, tmp_path, clock) as leader:
        far = leader.far
        general = far.channel("general")
        await leader.elsewhere.set_announce(far.id, general.id, None, now=clock())
        leader.harness.mark_ready()
        await leader.scheduler.wait_idle()  # the release is scheduled there
        # Embargo is removed from the server: its process records it, and the leader hears.
        await leader.elsewhere.record_departure(far.id, clock())
        await asyncio.sleep((RELEASE + timedelta(seconds=1) - clock()).total_seconds())
        leader.scheduler.wake()
        await leader.scheduler.wait_idle()
        assert leader.posts(general.id) == []
        asked = [r for r in leader.harness.requests if str(far.id) in r.path]
        assert asked == []
        assert (
            await leader.elsewhere.ledger_entries([PostKey(far.id, PILOT, PostKind.RELEASE)])
        ) == {}


async def test_a_forum_there_gets_its_post_and_the_close_reply_in_it(postgres_url, tmp_path):
    clock = MovingClock(RELEASE - timedelta(seconds=3))
    async with leading_one_shard(postgres_url, tmp_path, clock) as leader:
        far = leader.far
        forum = Channel(id=snowflake(), name="episodes", guild_id=far.id, type=FORUM_CHANNEL)
        far.channels.append(forum)
        await leader.elsewhere.set_spoiler_window(far.id, parse_window("1h"))
        await leader.elsewhere.set_announce(far.id, forum.id, None, now=clock())
        leader.harness.mark_ready()
        await leader.wait_for(lambda: threads_of(leader.harness.standin, forum.id), "the post")
        (post,) = threads_of(leader.harness.standin, forum.id)
        assert post.name == "Severed Ties S1E1 · The Lighthouse Call · spoilers"
        (first,) = leader.posts(post.id)
        assert "Spoilers are welcome in the replies" in first["content"]
        clock.jump(timedelta(hours=1) - timedelta(seconds=2))
        leader.scheduler.wake()
        await leader.wait_posts(post.id, 2)
        assert "are now open everywhere" in leader.posts(post.id)[1]["content"]
        assert len(threads_of(leader.harness.standin, forum.id)) == 1


async def test_a_thread_cut_short_there_is_opened_when_the_lead_starts(postgres_url, tmp_path):
    clock = MovingClock(RELEASE - timedelta(seconds=3))
    async with leading_one_shard(postgres_url, tmp_path, clock) as leader:
        far = leader.far
        general = far.channel("general")
        await leader.elsewhere.set_announce(far.id, general.id, None, now=clock())

        async def stopped_here(*args: Any, **kwargs: Any) -> None:
            raise StorageBusy("the bot stopped between the post and its thread")

        leader.scheduler._open_thread = stopped_here
        leader.harness.mark_ready()
        await leader.wait_posts(general.id, 1)
        leader.scheduler.wake()  # after the wake the stop cut short
        await leader.scheduler.wait_idle()
        assert threads_of(leader.harness.standin, general.id) == []
        del leader.scheduler._open_thread
        # What a process taking the lead does first.
        await leader.scheduler.finish_threads()
        (post,) = leader.posts(general.id)
        (thread,) = threads_of(leader.harness.standin, general.id)
        assert thread.id == int(post["id"])
        assert "Spoilers are welcome here" in leader.posts(thread.id)[0]["content"]
        key = PostKey(far.id, PILOT, PostKind.RELEASE)
        assert (await leader.elsewhere.ledger_entries([key]))[key].thread_id == thread.id


@pytest.mark.parametrize("discord_says", ["no access to the server", "no member there"])
async def test_a_server_that_removed_embargo_unheard_is_given_up_on(
    postgres_url, tmp_path, discord_says
):
    """Removed before its process recorded it (it was down): Discord answers that Embargo is
    not there, and the post is given up on at once, saying why."""
    clock = MovingClock(RELEASE - timedelta(seconds=3))
    async with leading_one_shard(postgres_url, tmp_path, clock) as leader:
        far = leader.far
        await leader.elsewhere.set_announce(far.id, far.channel("general").id, None, now=clock())
        if discord_says == "no access to the server":
            leader.harness.standin.fail_next(
                "GET",
                rf"^/guilds/{far.id}$",
                status=403,
                body={"message": "Missing Access", "code": 50001},
            )
        else:
            bot_id = leader.harness.world.bot_user.id
            far.members = [m for m in far.members if m.user.id != bot_id]
        leader.harness.mark_ready()
        await asyncio.sleep((RELEASE + timedelta(seconds=1) - clock()).total_seconds())
        leader.scheduler.wake()
        await leader.scheduler.wait_idle()
        key = PostKey(far.id, PILOT, PostKind.RELEASE)
        entry = (await leader.elsewhere.ledger_entries([key]))[key]
        assert entry.state is PostState.FAILED
        assert entry.retry_at is None  # not tried again
        assert entry.last_error == "Embargo is no longer in this server."
