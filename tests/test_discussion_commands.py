"""Episode discussion end to end through discord.py and the Discord stand-in: release posts,
their threads and buttons, window-closed posts, restarts, missing permissions, forums,
``/embargo announce`` and ``/upcoming``.

The bot's clock runs at real speed from a chosen instant (``MovingClock``), so the scheduler's
real sleeps are exercised; ``jump`` moves it forward, as time passing while nothing was due.
Each test gets its own small catalogue, so the only posts are the ones it sets up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
from discord.ext import commands

from bot.calendar import AnnounceSettings, PostKey, PostKind, PostState
from bot.client import EmbargoBot
from bot.config import Settings
from bot.storage import Storage, StorageBusy
from cogs.discussion import Discussion
from tests import markdown_oracle
from tests.content_factory import episode_table, review_md, show_toml, write
from tests.support import (
    EPISODE_TALK,
    GENERAL,
    MEMBER,
    MODERATOR,
    ChannelSpec,
    GuildSpec,
    Harness,
    RoleSpec,
    reading,
)
from tests.support.reading import EPHEMERAL
from tests.support.specs import base_bot_permissions
from tests.support.standin.threads import threads_of

RELEASE = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
PILOT = "severed-ties/s01e01"
ENDING = "The caller was her own twin, hiding in the lighthouse all along."
FORUM = ChannelSpec(
    id=1_300_000_000_000_000_230, name="episodes-forum", type=discord.ChannelType.forum
)
GUILD = GuildSpec(channels=(GENERAL, EPISODE_TALK, FORUM))  # the invite's permissions
WITHOUT_THREADS = discord.Permissions(base_bot_permissions().value)
WITHOUT_THREADS.create_public_threads = False
NO_THREADS = GuildSpec(channels=(GENERAL, EPISODE_TALK, FORUM), bot_permissions=WITHOUT_THREADS)
FANS = RoleSpec(id=1_300_000_000_000_000_310, name="Severed fans")
WATCHERS = RoleSpec(id=1_300_000_000_000_000_311, name="Watched Severed Ties", position=2)
WITH_MANAGE_ROLES = discord.Permissions(base_bot_permissions().value)
WITH_MANAGE_ROLES.manage_roles = True
WATCH_ROLE_GUILD = GuildSpec(
    channels=(GENERAL, EPISODE_TALK, FORUM),
    roles=(*GuildSpec().roles, WATCHERS),
    bot_permissions=WITH_MANAGE_ROLES,
    bot_role_position=5,
)


class MovingClock:
    """The wall clock shifted to start at ``start``, running at real speed."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def jump(self, by: timedelta) -> None:
        self.offset += by


def write_content(root: Path) -> None:
    episodes = [
        episode_table(1, 1, "The Lighthouse Call", released=RELEASE),
        episode_table(1, 2, "Low Tide", released=RELEASE + timedelta(days=7)),
    ]
    write(root, "shows/severed-ties.toml", show_toml(title="Severed Ties", episodes=episodes))
    write(root, "reviews/severed-ties/s01e01.md", review_md("Taut and patient.", ENDING))


@dataclass
class Running:
    harness: Harness
    storage: Storage
    clock: MovingClock

    @property
    def scheduler(self) -> Any:
        # The extension's module is loaded apart from this test's import: no isinstance, and
        # so no type for the cog either.
        assert isinstance(self.harness.bot, commands.AutoShardedBot)
        cog: Any = self.harness.bot.get_cog(Discussion.__cog_name__)
        assert cog is not None
        return cog.scheduler

    def posts(self, channel_id: int) -> list[dict[str, Any]]:
        """What Embargo posted in the channel on its own (not answers to commands)."""
        messages = self.harness.standin.channel_messages(channel_id)
        return [m.payload for m in messages if m.interaction_id is None]

    async def wait_posts(self, channel_id: int, count: int, within: float = 10.0) -> None:
        await self.harness.standin.wait_for(
            lambda: len(self.posts(channel_id)) >= count,
            within=within,
            what=f"{count} post(s) in channel {channel_id}",
        )

    async def settle(self) -> None:
        """Wake the scheduler and wait until it has gone back to sleep."""
        self.scheduler.wake()
        await asyncio.wait_for(self.scheduler.wait_idle(), 20.0)

    async def moderator(self, subcommand: str, **options: Any) -> Any:
        return await self.harness.slash(
            "embargo", subcommand=subcommand, as_user=MODERATOR, **options
        )


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, clock: MovingClock, guild: GuildSpec = GUILD
) -> AsyncIterator[Running]:
    """The bot on the test's database and content (a second call is a restart)."""
    content = tmp_path / "content"
    if not content.exists():
        write_content(content)
    db_url = f"sqlite:///{tmp_path}/embargo.db"
    storage = await Storage.open(db_url, tmp_path)
    settings = Settings(
        discord_token=None,
        database_url=db_url,
        content_dir=content,
        log_level="INFO",
        dev_guild_id=None,
    )
    try:
        bot = EmbargoBot(settings, storage, clock=clock)
        async with Harness(bot, guild=guild) as harness:
            yield Running(harness, storage, clock)
    finally:
        await storage.close()


async def test_release_post_thread_and_buttons(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=3))
    async with running(tmp_path, clock) as bot:
        set_up = await bot.moderator("announce", channel=EPISODE_TALK, ping=FANS)
        assert "Release posts: **off** → **<#" in set_up.content
        assert "⚠️" not in set_up.content  # Embargo has every permission it needs there
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        await bot.settle()
        (post,) = bot.posts(EPISODE_TALK.id)
        assert "Severed Ties S1E1" in post["content"]
        assert "The Lighthouse Call" in post["content"]
        assert f"<@&{FANS.id}>" in post["content"]
        assert "spoilers stay hidden in this server until" in post["content"].lower()
        assert ENDING.split()[1] not in post["content"]  # nothing of the ending
        stored = bot.harness.standin.messages[int(post["id"])]
        # The one role may be pinged, nobody else.
        mentions = stored.allowed_mentions or {}
        assert mentions.get("parse") == [], mentions
        assert [int(role) for role in mentions["roles"]] == [FANS.id], mentions
        assert post.get("nonce")

        (thread,) = threads_of(bot.harness.standin, EPISODE_TALK.id)
        assert thread.id == int(post["id"])  # started from the release post
        assert thread.name == "Severed Ties S1E1 · The Lighthouse Call · spoilers"
        assert thread.auto_archive_duration == 10080
        await bot.wait_posts(thread.id, 1)
        (welcome,) = bot.posts(thread.id)
        assert "Spoilers are welcome here" in welcome["content"]

        # The buttons: the review, privately; the ending, privately and hidden as /ending.
        review = await bot.harness.click(f"embargo:review:{PILOT}", message=post, as_user=MEMBER)
        assert not review.errors, review.describe()
        assert review.ephemeral
        assert "Taut and patient." in str(review.embeds)
        ending = await bot.harness.click(f"embargo:ending:{PILOT}", message=post, as_user=MEMBER)
        assert not ending.errors, ending.describe()
        assert ending.ephemeral
        reading.assert_all_hidden([m.get("content") or "" for m in ending.sent], ENDING)

        # /ending: plain in the thread Embargo opened, tagged in the channel it came from.
        inside = await bot.harness.slash("ending", episode=PILOT, in_channel=thread.id)
        assert not inside.errors, inside.describe()
        reading.assert_plain([m.get("content") or "" for m in inside.sent], ENDING)
        outside = await bot.harness.slash("ending", episode=PILOT, in_channel=EPISODE_TALK)
        reading.assert_all_hidden([m.get("content") or "" for m in outside.sent], ENDING)

        await bot.settle()
        assert len(bot.posts(EPISODE_TALK.id)) == 1
        assert len(threads_of(bot.harness.standin, EPISODE_TALK.id)) == 1
        key = PostKey(bot.harness.guild.id, PILOT, PostKind.RELEASE)
        entry = (await bot.storage.ledger_entries([key]))[key]
        assert entry.state is PostState.POSTED
        assert entry.thread_id == thread.id


async def test_window_closed_post_once_and_restart_posts_nothing_again(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)
        await bot.moderator("window", duration="1h")
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        # An hour passes, less ten seconds: the window closes in ten.
        clock.jump(timedelta(hours=1) - timedelta(seconds=10))
        bot.scheduler.wake()
        await bot.wait_posts(EPISODE_TALK.id, 2, within=20.0)
        closed = bot.posts(EPISODE_TALK.id)[1]
        assert closed["content"] == (
            "Spoilers for **Severed Ties S1E1** are now open everywhere in this server."
        )
        await bot.settle()
        assert len(bot.posts(EPISODE_TALK.id)) == 2

    # A restart: the ledger says both went out; the new process sends nothing.
    clock.jump(timedelta(minutes=1))
    async with running(tmp_path, clock) as bot:
        bot.harness.mark_ready()
        await bot.settle()
        sent = bot.harness.standin.find_requests("POST", r"^/channels/\d+/(messages|threads)")
        assert sent == []


async def test_post_due_while_stopped_is_posted_once_after_start(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(hours=1))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)
        bot.harness.mark_ready()
        await bot.settle()
        assert bot.posts(EPISODE_TALK.id) == []
    clock.jump(timedelta(hours=3))  # down over the release
    async with running(tmp_path, clock) as bot:
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        await bot.settle()
        (post,) = bot.posts(EPISODE_TALK.id)
        assert "Posted 2 hours late" in post["content"], post["content"]
        assert len(threads_of(bot.harness.standin, EPISODE_TALK.id)) == 1


async def test_post_due_too_long_ago_is_skipped(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(hours=1))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)
        bot.harness.mark_ready()
        await bot.settle()
    clock.jump(timedelta(hours=30))
    async with running(tmp_path, clock) as bot:
        bot.harness.mark_ready()
        await bot.settle()
        assert bot.posts(EPISODE_TALK.id) == []
        key = PostKey(bot.harness.guild.id, PILOT, PostKind.RELEASE)
        assert (await bot.storage.ledger_entries([key]))[key].state is PostState.SKIPPED


async def test_channel_without_create_public_threads(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock, NO_THREADS) as bot:
        set_up = await bot.moderator("announce", channel=EPISODE_TALK)
        assert "**Create Public Threads**" in set_up.content  # named when it is set
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        await bot.settle()
        assert threads_of(bot.harness.standin, EPISODE_TALK.id) == []
        settings = await bot.moderator("settings")
        assert not settings.errors, settings.describe()
        field = next(f for f in settings.embeds[0]["fields"] if f["name"] == "Release posts")
        assert "Create Public Threads" in field["value"], field
        # The task is alive: a later wake still runs.
        await bot.settle()


async def test_missing_send_permission_is_recorded_and_shown(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    guild = GuildSpec(
        channels=(GENERAL, EPISODE_TALK),
        bot_permissions=discord.Permissions(view_channel=True, read_message_history=True),
    )
    async with running(tmp_path, clock, guild) as bot:
        set_up = await bot.moderator("announce", channel=EPISODE_TALK)
        assert "**Send Messages**" in set_up.content
        bot.harness.mark_ready()
        await bot.harness.standin.wait_for(
            lambda: bot.scheduler.last_wake is not None and bot.scheduler.last_wake >= RELEASE,
            within=10.0,
            what="the wake at release",
        )
        await bot.settle()
        assert bot.posts(EPISODE_TALK.id) == []
        key = PostKey(bot.harness.guild.id, PILOT, PostKind.RELEASE)
        entry = (await bot.storage.ledger_entries([key]))[key]
        assert entry.state is PostState.FAILED
        assert entry.retry_at is not None
        assert "Send Messages" in (entry.last_error or "")
        shown = await bot.moderator("settings")
        field = next(f for f in shown.embeds[0]["fields"] if f["name"] == "Release posts")
        assert "The last post failed" in field["value"]
        assert "Send Messages" in field["value"]


async def test_forum_release_is_a_forum_post_and_close_replies_in_it(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock) as bot:
        set_up = await bot.moderator("announce", channel=FORUM)
        assert "⚠️" not in set_up.content, set_up.content
        await bot.moderator("window", duration="1h")
        bot.harness.mark_ready()
        await bot.harness.standin.wait_for(
            lambda: threads_of(bot.harness.standin, FORUM.id),
            within=10.0,
            what="the forum post",
        )
        await bot.settle()
        (post,) = threads_of(bot.harness.standin, FORUM.id)
        assert post.name == "Severed Ties S1E1 · The Lighthouse Call · spoilers"
        (first,) = bot.posts(post.id)
        assert "Spoilers are welcome in the replies" in first["content"]
        assert {c["custom_id"] for row in first["components"] for c in row["components"]} == {
            f"embargo:review:{PILOT}",
            f"embargo:ending:{PILOT}",
            f"embargo:watched:{PILOT}",
        }
        watched = await bot.harness.click(f"embargo:watched:{PILOT}", message=first, as_user=MEMBER)
        assert not watched.errors, watched.describe()
        assert watched.ephemeral
        assert (watched.content or "").startswith("Marked watched: **Severed Ties S1E1")
        assert await bot.storage.watched_keys(MEMBER.id) == {PILOT}
        inside = await bot.harness.slash("ending", episode=PILOT, in_channel=post.id)
        reading.assert_plain([m.get("content") or "" for m in inside.sent], ENDING)
        clock.jump(timedelta(hours=1))
        bot.scheduler.wake()
        await bot.wait_posts(post.id, 2)
        assert "are now open everywhere" in bot.posts(post.id)[1]["content"]
        assert len(threads_of(bot.harness.standin, FORUM.id)) == 1


async def test_ive_watched_it_is_watched_for_the_clicker_privately_and_the_role_follows(
    tmp_path: Path,
) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock, WATCH_ROLE_GUILD) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)
        await bot.moderator("watch-role", show="severed-ties", role=WATCHERS)
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        await bot.settle()
        (post,) = bot.posts(EPISODE_TALK.id)
        buttons = [c for row in post["components"] for c in row["components"]]
        (button,) = [b for b in buttons if b["custom_id"] == f"embargo:watched:{PILOT}"]
        assert button["label"] == "I've watched it"
        guild = bot.harness.world.guild
        assert bot.harness.standin.role_changes() == []

        first = await bot.harness.click(f"embargo:watched:{PILOT}", message=post, as_user=MEMBER)
        assert not first.errors, first.describe()
        reply, role_note = first.sent
        # /watched's own reply (committed first), then the role it earned: both private.
        assert reply["content"].startswith(
            "Marked watched: **Severed Ties S1E1 · The Lighthouse Call**. Saved.\n"
            "Severed Ties: S1E1 of S1E1, 1 of 1 episode watched."
        ), reply["content"]
        assert role_note["content"] == f"You now have <@&{WATCHERS.id}>."
        assert all(message["flags"] & EPHEMERAL for message in first.sent), first.sent
        assert await bot.storage.watched_keys(MEMBER.id) == {PILOT}
        assert await bot.storage.watched_keys(MODERATOR.id) == frozenset()
        assert bot.harness.standin.role_changes() == [("PUT", guild.id, MEMBER.id, WATCHERS.id)]
        member = guild.member(MEMBER.id)
        assert member is not None
        assert WATCHERS.id in member.roles
        # The post itself is untouched: nobody else sees who clicked.
        assert bot.harness.standin.find_requests("PATCH", f"/messages/{post['id']}") == []
        assert bot.posts(EPISODE_TALK.id) == [post]

        again = await bot.harness.click(f"embargo:watched:{PILOT}", message=post, as_user=MEMBER)
        assert not again.errors, again.describe()
        assert again.ephemeral
        assert (again.content or "").startswith(
            "**Severed Ties S1E1 · The Lighthouse Call** was already marked watched; "
            "nothing changed."
        ), again.content
        assert len(bot.harness.standin.role_changes()) == 1

        # Unmarking with /unwatched takes the role back, as for any other marking.
        await bot.harness.slash("unwatched", episode=PILOT, as_user=MEMBER)
        assert bot.harness.standin.role_changes()[-1] == (
            "DELETE",
            guild.id,
            MEMBER.id,
            WATCHERS.id,
        )

    # After a restart the post's button still works: it is found from its custom id alone.
    async with running(tmp_path, clock, WATCH_ROLE_GUILD) as bot:
        old_post = bot.harness.bot_message(components=post["components"], channel=EPISODE_TALK)
        later = await bot.harness.click(
            f"embargo:watched:{PILOT}", message=old_post, as_user=MEMBER
        )
        assert not later.errors, later.describe()
        assert later.sent[0]["content"].startswith("Marked watched: **Severed Ties S1E1")
        assert all(message["flags"] & EPHEMERAL for message in later.sent), later.sent
        assert await bot.storage.watched_keys(MEMBER.id) == {PILOT}


async def test_ive_watched_it_for_an_episode_gone_from_the_catalogue_says_so(
    tmp_path: Path,
) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        await bot.settle()
        (post,) = bot.posts(EPISODE_TALK.id)
        # The show's file is removed and the content reloaded; the old post keeps its button.
        (tmp_path / "content" / "shows" / "severed-ties.toml").unlink()
        embargo = bot.harness.bot
        assert isinstance(embargo, EmbargoBot)
        await embargo.content.reload()
        gone = await bot.harness.click(f"embargo:watched:{PILOT}", message=post, as_user=MEMBER)
        assert not gone.errors, gone.describe()
        assert gone.ephemeral
        assert gone.content == "That episode is no longer in the catalogue."
        assert await bot.storage.watched_keys(MEMBER.id) == frozenset()


async def test_announce_rules(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(days=1))
    async with running(tmp_path, clock) as bot:
        refused = await bot.harness.slash(
            "embargo", subcommand="announce", as_user=MEMBER, channel=EPISODE_TALK
        )
        assert refused.ephemeral
        assert "Manage Server" in (refused.content or ""), refused.content
        assert (await bot.storage.get_announce(bot.harness.guild.id)).is_empty
        everyone = RoleSpec(id=bot.harness.guild.id, name="@everyone")
        pinged = await bot.moderator("announce", channel=EPISODE_TALK, ping=everyone)
        assert "can't ping @everyone" in pinged.content
        assert (await bot.storage.get_announce(bot.harness.guild.id)).default is None

        await bot.moderator("announce", channel=EPISODE_TALK)
        for_show = await bot.moderator("announce", channel=FORUM, show="severed-ties")
        assert f"Release posts for Severed Ties: **<#{EPISODE_TALK.id}>** → **<#{FORUM.id}>**" in (
            for_show.content
        )
        off = await bot.moderator("announce-off", show="severed-ties")
        assert f"**<#{FORUM.id}>** → **off**" in off.content
        everything_off = await bot.moderator("announce-off")
        assert f"**<#{EPISODE_TALK.id}>** → **off**" in everything_off.content
        spoilers = await bot.harness.slash("spoilers", as_user=MEMBER)
        field = next(f for f in spoilers.embeds[0]["fields"] if f["name"] == "Release posts")
        assert "Default: off" in field["value"]


async def test_upcoming(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(days=1))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("window", duration="2d")
        shown = await bot.harness.slash("upcoming", as_user=MEMBER)
        assert not shown.errors, shown.describe()
        text = shown.embeds[0]["description"]
        assert text.index("S1E1") < text.index("S1E2")
        assert f"<t:{int(RELEASE.timestamp())}:f>" in text
        opens = RELEASE + timedelta(days=2)
        assert f"spoilers open in this server <t:{int(opens.timestamp())}:f>" in text
        in_dm = await bot.harness.slash("upcoming", in_dm=True, show="severed-ties")
        default_opens = RELEASE + timedelta(days=7)
        assert f"<t:{int(default_opens.timestamp())}:f>" in in_dm.embeds[0]["description"]


def lose_first_ledger_write(storage: Storage) -> list[object]:
    """The first post's ledger write fails, as if the bot died between sending and
    recording; later writes go through. Returns the writes tried, as they come."""
    record_posted = storage.record_posted
    tries: list[object] = []

    async def lost_once(*args: Any, **kwargs: Any) -> None:
        tries.append(args)
        if len(tries) == 1:
            raise StorageBusy("the database is busy")
        await record_posted(*args, **kwargs)

    storage.record_posted = lost_once  # type: ignore[method-assign]
    return tries


async def test_a_post_whose_record_was_lost_is_not_sent_twice(tmp_path: Path) -> None:
    """Sent, then the ledger write failed (as if the bot died in between): the retry sends
    the same nonce, and Discord (enforce_nonce) hands back the first message."""
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)
        lose_first_ledger_write(bot.storage)
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        await bot.settle()  # the failed wake is over; try again now rather than in 30 s
        await bot.settle()
        sends = bot.harness.standin.find_requests(
            "POST", rf"^/channels/{EPISODE_TALK.id}/messages$"
        )
        assert len(sends) == 2
        assert {r.json["nonce"] for r in sends} == {sends[0].json["nonce"]}
        assert all(r.json["enforce_nonce"] is True for r in sends)
        assert len(bot.posts(EPISODE_TALK.id)) == 1
        assert len(threads_of(bot.harness.standin, EPISODE_TALK.id)) == 1
        key = PostKey(bot.harness.guild.id, PILOT, PostKind.RELEASE)
        assert (await bot.storage.ledger_entries([key]))[key].state is PostState.POSTED


async def test_a_forum_post_whose_record_was_lost_is_found_not_made_twice(tmp_path: Path) -> None:
    """A forum post takes no nonce: made, then the ledger write failed (as if the bot died in
    between), the retry finds Embargo's post among the server's active threads and records
    it, thread and all, instead of making a second."""
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=FORUM)
        tries = lose_first_ledger_write(bot.storage)
        bot.harness.mark_ready()
        await bot.harness.standin.wait_for(
            lambda: threads_of(bot.harness.standin, FORUM.id), within=10.0, what="the forum post"
        )
        await bot.settle()  # the failed wake is over; try again now rather than in 30 s
        await bot.settle()
        assert len(tries) == 2
        (post,) = threads_of(bot.harness.standin, FORUM.id)
        assert (
            len(bot.harness.standin.find_requests("POST", rf"^/channels/{FORUM.id}/threads$")) == 1
        )
        assert bot.harness.standin.find_requests("GET", r"^/guilds/\d+/threads/active$")
        key = PostKey(bot.harness.guild.id, PILOT, PostKind.RELEASE)
        entry = (await bot.storage.ledger_entries([key]))[key]
        assert entry.state is PostState.POSTED
        assert entry.thread_id == entry.message_id == post.id
        assert await bot.storage.is_discussion_thread(post.id)
        assert not await bot.storage.forum_post_started(key)
        inside = await bot.harness.slash("ending", episode=PILOT, in_channel=post.id)
        reading.assert_plain([m.get("content") or "" for m in inside.sent], ENDING)


async def test_a_forum_post_cut_short_before_it_was_made_is_made_once(tmp_path: Path) -> None:
    """The try was recorded but the bot stopped before making the post: the retry looks,
    finds nothing, and makes it (once)."""
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=FORUM)
        key = PostKey(bot.harness.guild.id, PILOT, PostKind.RELEASE)
        await bot.storage.record_forum_post_started(key, channel_id=FORUM.id, now=clock())
        bot.harness.mark_ready()
        await bot.harness.standin.wait_for(
            lambda: threads_of(bot.harness.standin, FORUM.id), within=10.0, what="the forum post"
        )
        await bot.settle()
        (post,) = threads_of(bot.harness.standin, FORUM.id)
        assert bot.harness.standin.find_requests("GET", r"^/guilds/\d+/threads/active$")
        entry = (await bot.storage.ledger_entries([key]))[key]
        assert entry.state is PostState.POSTED
        assert entry.thread_id == post.id


async def test_nothing_is_posted_twice_after_the_ledger_is_pruned(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)
        await bot.moderator("window", duration="1h")
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        clock.jump(timedelta(hours=2))
        bot.scheduler.wake()
        await bot.wait_posts(EPISODE_TALK.id, 2)
        await bot.settle()
        guild_id = bot.harness.guild.id
        keys = [PostKey(guild_id, PILOT, kind) for kind in PostKind]
        assert len(await bot.storage.ledger_entries(keys)) == 2
        # Long after: the next wake forgets the pilot's posts (and the second episode's,
        # skipped as too late while nothing woke the scheduler).
        clock.jump(timedelta(days=40))
        await bot.settle()
        assert await bot.storage.ledger_entries(keys) == {}
        assert guild_id in await bot.storage.ledger_horizons()
        # A window ending long ago, one ending later, a restart: none posts for the pilot.
        await bot.moderator("window", duration="1d")
        await bot.settle()
        await bot.moderator("window", duration="45d")
        clock.jump(timedelta(days=6))
        await bot.settle()
        assert len(bot.posts(EPISODE_TALK.id)) == 2
    async with running(tmp_path, clock) as bot:
        bot.harness.mark_ready()
        await bot.settle()
        assert bot.harness.standin.find_requests("POST", r"^/channels/\d+/(messages|threads)") == []


async def test_leaving_a_server_stops_its_posts_and_says_why(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    guild = GuildSpec(
        channels=(GENERAL, EPISODE_TALK),
        bot_permissions=discord.Permissions(view_channel=True, read_message_history=True),
    )
    async with running(tmp_path, clock, guild) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)
        bot.harness.mark_ready()
        await bot.harness.standin.wait_for(
            lambda: bot.scheduler.last_wake is not None and bot.scheduler.last_wake >= RELEASE,
            within=10.0,
            what="the wake at release",
        )
        await bot.settle()
        guild_id = bot.harness.guild.id
        key = PostKey(guild_id, PILOT, PostKind.RELEASE)
        assert not (await bot.storage.ledger_entries([key]))[key].settled  # to be retried
        await bot.harness.remove_bot(guild_id)
        entry = (await bot.storage.ledger_entries([key]))[key]
        assert (entry.settled, entry.retry_at) == (True, None)
        assert entry.last_error == "Embargo is no longer in this server."
        # Past every retry, and past the next release: nothing is tried there.
        clock.jump(timedelta(days=8))
        await bot.settle()
        assert (await bot.storage.ledger_entries([key]))[key] == entry
        second = PostKey(guild_id, "severed-ties/s01e02", PostKind.RELEASE)
        assert await bot.storage.ledger_entries([second]) == {}
        assert await bot.storage.get_announce(guild_id) != AnnounceSettings()  # kept


async def test_a_deleted_announce_channel_is_not_retried(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    gone = 1_300_000_000_000_000_999
    async with running(tmp_path, clock) as bot:
        await bot.storage.set_announce(bot.harness.guild.id, gone, None, now=clock())
        bot.harness.mark_ready()
        await bot.harness.standin.wait_for(
            lambda: bot.scheduler.last_wake is not None and bot.scheduler.last_wake >= RELEASE,
            within=10.0,
            what="the wake at release",
        )
        await bot.settle()
        key = PostKey(bot.harness.guild.id, PILOT, PostKind.RELEASE)
        entry = (await bot.storage.ledger_entries([key]))[key]
        assert (entry.state, entry.settled, entry.retry_at) == (PostState.FAILED, True, None)
        assert "no longer exists" in (entry.last_error or "")
        clock.jump(timedelta(hours=3))  # past every retry delay
        await bot.settle()
        assert len(bot.harness.standin.find_requests("GET", rf"^/channels/{gone}$")) == 1


async def test_a_window_change_moves_the_close_post(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        clock.jump(timedelta(hours=2))
        await bot.settle()
        assert len(bot.posts(EPISODE_TALK.id)) == 1  # the default week is still running
        # A window that has already ended posts at once, without a "late" notice.
        await bot.moderator("window", duration="1h")
        await bot.wait_posts(EPISODE_TALK.id, 2)
        closed = bot.posts(EPISODE_TALK.id)[1]["content"]
        assert closed.endswith("are now open everywhere in this server."), closed
        await bot.moderator("window", duration="forever")
        await bot.settle()
        assert len(bot.posts(EPISODE_TALK.id)) == 2


async def test_a_thread_cut_short_by_a_stop_is_opened_at_the_next_start(tmp_path: Path) -> None:
    clock = MovingClock(RELEASE - timedelta(seconds=2))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)

        async def stopped_here(*args: Any, **kwargs: Any) -> None:
            raise StorageBusy("the bot stopped between the post and its thread")

        bot.scheduler._open_thread = stopped_here
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        await bot.settle()
        assert threads_of(bot.harness.standin, EPISODE_TALK.id) == []
    async with running(tmp_path, clock) as bot:
        # The new stand-in has the post the first process made.
        bot.harness.standin.post_message(
            bot.harness.world.guild.channel(EPISODE_TALK.id), {"content": "release post"}
        )
        key = PostKey(bot.harness.guild.id, PILOT, PostKind.RELEASE)
        message_id = max(bot.harness.standin.messages)
        async with bot.storage.db.transaction() as conn:
            await conn.execute(
                "UPDATE discussion_posts SET message_id = ? WHERE episode_key = ?",
                (message_id, key.episode_key),
            )
        bot.harness.mark_ready()
        await bot.settle()
        (thread,) = threads_of(bot.harness.standin, EPISODE_TALK.id)
        assert thread.id == message_id
        assert "Spoilers are welcome here" in bot.posts(thread.id)[0]["content"]
        assert (await bot.storage.ledger_entries([key]))[key].thread_id == thread.id
        assert len(bot.posts(EPISODE_TALK.id)) == 1  # no second release post


async def test_a_spoiling_title_stays_out_of_sight_everywhere_the_calendar_posts(
    tmp_path: Path,
) -> None:
    spoiler = "Marguerite Dies at the Lighthouse"
    content = tmp_path / "content"
    table = {**episode_table(1, 1, spoiler, released=RELEASE), "title_spoils": True}
    write(content, "shows/severed-ties.toml", show_toml(title="Severed Ties", episodes=[table]))
    clock = MovingClock(RELEASE - timedelta(days=1))
    async with running(tmp_path, clock) as bot:
        await bot.moderator("announce", channel=EPISODE_TALK)
        await bot.moderator("window", duration="1h")
        upcoming = await bot.harness.slash("upcoming", as_user=MEMBER)
        assert "Severed Ties S1E1" in str(upcoming.embeds)
        clock.jump(timedelta(days=1) - timedelta(seconds=2))
        bot.harness.mark_ready()
        await bot.wait_posts(EPISODE_TALK.id, 1)
        await bot.settle()
        (post,) = bot.posts(EPISODE_TALK.id)
        visible = markdown_oracle.read(post["content"]).visible
        assert "Marguerite" not in visible
        assert f"||{spoiler}||" in post["content"]  # there, but behind a spoiler tag
        (thread,) = threads_of(bot.harness.standin, EPISODE_TALK.id)
        assert thread.name == "Severed Ties S1E1 · spoilers"
        # Every request the bot sent, apart from the tagged title in the posts' text.
        for request in bot.harness.standin.requests:
            text = str(request.json).replace(f"||{spoiler}||", "")
            assert "Marguerite" not in text, request
