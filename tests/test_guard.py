"""The spoiler guard through discord.py's real gateway parsers and tree, against the Discord
stand-in: members' messages (new, edited) flagged or hidden for an active episode's terms, and
left alone outside its window, in spoilers-ok or ignored channels and inside spoiler tags."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import discord
import pytest

from bot.client import EmbargoBot
from bot.config import Settings
from bot.storage import Storage
from tests.content_factory import episode_table, review_md, show_toml, write
from tests.support import (
    EPISODE_TALK,
    GENERAL,
    MEMBER,
    MODERATOR,
    GuildSpec,
    Harness,
    Recorded,
)
from tests.support.reading import NO_MENTIONS, words
from tests.support.specs import base_bot_permissions
from tests.support.standin.server import DiscordStandIn

TODAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ACTIVE_TERM = "Daly survives"
OLD_TERM = "Nanette"
# The active episode's title spoils: the guard names it by show and code only.
SPOILING_TITLE = "The Captain Falls"


def content(root) -> None:
    write(
        root,
        "shows/test-show.toml",
        show_toml(
            title="Test Show",
            timezone="UTC",
            episodes=[
                episode_table(1, 1, "Pilot", released=date(2025, 1, 1)),
                {
                    **episode_table(1, 2, SPOILING_TITLE, released=date(2026, 11, 20)),
                    "title_spoils": True,
                },
            ],
        ),
    )
    write(root, "reviews/test-show/s01e01.md", review_md(spoiler_terms=[OLD_TERM]))
    write(root, "reviews/test-show/s01e02.md", review_md(spoiler_terms=[ACTIVE_TERM]))


def permissions() -> discord.Permissions:
    perms = base_bot_permissions()
    perms.update(manage_webhooks=True, manage_messages=True)
    return perms


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Embargo:
    harness: Harness
    bot: EmbargoBot

    async def moderator(self, subcommand: str, **options: Any) -> Recorded:
        reply = await self.harness.slash(
            "embargo", subcommand=subcommand, as_user=MODERATOR, **options
        )
        assert not reply.errors, reply.describe()
        # The guard's task rebuilds on its own after a change; the test waits for it here.
        await self.guard.rebuild()
        return reply

    @property
    def guard(self) -> Any:
        # Not isinstance: each bot loads the extension afresh, so the class differs per test.
        cog = self.bot.get_cog("Guard")
        assert type(cog).__name__ == "Guard"
        return cog

    def bot_replies(self, channel_id: int = GENERAL.id) -> list[dict]:
        bot_id = str(self.bot.application_id)
        return [
            m.payload
            for m in self.harness.standin.channel_messages(channel_id)
            if m.payload["author"]["id"] == bot_id
        ]


async def start(
    tmp_path, *, guard: bool, now: datetime = TODAY, standin: DiscordStandIn | None = None
) -> tuple[Harness, Storage, EmbargoBot]:
    """Embargo on the database in ``tmp_path``, against ``standin`` if given (a restart)."""
    content(tmp_path / "content")
    db_url = f"sqlite:///{tmp_path}/embargo.db"
    storage = await Storage.open(db_url, tmp_path)
    settings = Settings(
        discord_token=None,
        database_url=db_url,
        content_dir=tmp_path / "content",
        log_level="INFO",
        dev_guild_id=None,
        message_guard=guard,
    )
    bot = EmbargoBot(settings, storage, clock=Clock(now))
    harness = Harness(bot, guild=GuildSpec(bot_permissions=permissions()), standin=standin)
    return harness, storage, bot


@pytest.fixture
async def embargo(tmp_path) -> AsyncIterator[Embargo]:
    harness, storage, bot = await start(tmp_path, guard=True)
    try:
        async with harness:
            embargo = Embargo(harness, bot)
            await embargo.moderator("window", duration="2w")
            yield embargo
    finally:
        await storage.close()


def flagged(reply: dict, original: dict) -> bool:
    return str(reply.get("message_reference", {}).get("message_id")) == original["id"] and reply[
        "content"
    ].startswith("That looks like a spoiler for Test Show S1E2")


async def eventually(check, within_s: float = 3.0) -> None:
    for _ in range(int(within_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    assert check()


async def no_flag_pending(storage: Storage) -> None:
    """Wait until no flag reply is left to delete (the row goes just after the reply)."""
    for _ in range(150):
        if await storage.flag_deletions(TODAY + timedelta(days=1)) == ([], None):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("a flag reply is still waiting to be deleted")


def deletes_of(standin: DiscordStandIn, message: dict) -> list:
    return [
        r
        for r in standin.requests
        if r.method == "DELETE" and r.path.endswith(f"/messages/{message['id']}")
    ]


async def test_flag_replies_for_an_active_episodes_term_and_deletes_the_reply(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="flag")
    await embargo.moderator("log", channel=EPISODE_TALK)
    original = await h.member_says("I can't believe DALY survives!!")

    [reply] = embargo.bot_replies()
    assert flagged(reply, original), (reply["content"], reply.get("message_reference"))
    ends = int(datetime(2026, 12, 4, tzinfo=UTC).timestamp())
    assert f"<t:{ends}:f>" in reply["content"]
    assert "`||…||`" in reply["content"]
    stored = h.standin.messages[int(reply["id"])]
    assert stored.allowed_mentions == NO_MENTIONS
    assert not h.standin.messages[int(original["id"])].deleted
    [entry] = embargo.bot_replies(EPISODE_TALK.id)
    assert "flagged" in entry["content"]
    assert original["id"] in entry["content"]
    assert "Daly" not in entry["content"]
    assert "Test Show S1E2" in entry["content"]
    assert all("Captain" not in text for text in (reply["content"], entry["content"]))

    # A minute later the reply goes: the guard's task sleeps until then and wakes by itself.
    clock = embargo.bot.clock
    clock.now = TODAY + timedelta(seconds=60 - 0.3)
    embargo.guard.flags_changed()  # time moved: the task sleeps again, for what is left
    await asyncio.sleep(0.1)
    assert not stored.deleted  # not a moment early
    clock.now = TODAY + timedelta(seconds=61)
    await eventually(lambda: stored.deleted)
    await no_flag_pending(embargo.bot.storage)
    assert len(deletes_of(h.standin, reply)) == 1


@pytest.mark.parametrize("down_for", [timedelta(minutes=5), timedelta(seconds=20)])
async def test_a_restart_between_a_flag_and_its_deletion_still_deletes_it_once(tmp_path, down_for):
    harness, storage, bot = await start(tmp_path, guard=True)
    try:
        async with harness as h:
            embargo = Embargo(h, bot)
            await embargo.moderator("window", duration="2w")
            await embargo.moderator("guard", mode="flag")
            await h.member_says(ACTIVE_TERM)
            [reply] = embargo.bot_replies()
    finally:
        await storage.close()
    standin = harness.standin
    flag = standin.messages[int(reply["id"])]
    assert not flag.deleted  # stopped before its minute was up

    # Back after ``down_for``: at once if the minute ran out meanwhile, else when it does.
    restarted, storage, bot = await start(
        tmp_path, guard=True, now=TODAY + down_for, standin=standin
    )
    try:
        async with restarted:
            if down_for < timedelta(seconds=60):
                await asyncio.sleep(0.1)
                assert not flag.deleted
                bot.clock.now = TODAY + timedelta(seconds=61)
                bot.get_cog("Guard").flags_changed()
            await eventually(lambda: flag.deleted)
            await no_flag_pending(storage)
    finally:
        await storage.close()
    assert [r.status for r in deletes_of(standin, reply)] == [204]

    # Started once more: nothing is left to delete, and nothing is deleted twice.
    again, storage, bot = await start(
        tmp_path, guard=True, now=TODAY + timedelta(days=1), standin=standin
    )
    try:
        async with again:
            assert await bot.get_cog("Guard").delete_due_flags() is None
    finally:
        await storage.close()
    assert len(deletes_of(standin, reply)) == 1


async def test_a_flag_reply_someone_deleted_already_counts_as_done(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="flag")
    await h.member_says(ACTIVE_TERM)
    [reply] = embargo.bot_replies()
    # A moderator deletes it by hand: Discord announces it, the guard needs nothing of it.
    h.standin.messages[int(reply["id"])].deleted = True

    embargo.bot.clock.now = TODAY + timedelta(minutes=2)
    assert await embargo.guard.delete_due_flags() is None  # nothing left, nothing to retry

    [delete] = deletes_of(h.standin, reply)
    assert delete.status == 404
    assert await embargo.bot.storage.flag_deletions(TODAY + timedelta(days=1)) == ([], None)
    assert await embargo.guard.delete_due_flags() is None
    assert len(deletes_of(h.standin, reply)) == 1


async def test_a_flag_reply_discord_failed_to_delete_is_tried_again_later(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="flag")
    await h.member_says(ACTIVE_TERM)
    [reply] = embargo.bot_replies()
    h.standin.fail_next("DELETE", rf"/messages/{reply['id']}$", status=400)

    embargo.bot.clock.now = TODAY + timedelta(minutes=2)
    assert await embargo.guard.delete_due_flags() == 60.0  # kept, and tried in a minute
    assert not h.standin.messages[int(reply["id"])].deleted
    assert await embargo.guard.delete_due_flags() is None
    assert h.standin.messages[int(reply["id"])].deleted


async def test_nothing_outside_the_window_in_spoilers_ok_or_ignored_channels_or_in_tags(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="flag")
    await h.member_says(f"{OLD_TERM} was great")  # released last year: its window is over
    await h.member_says(f"wow ||{ACTIVE_TERM}||")  # already tagged
    await embargo.moderator("channel", channel=EPISODE_TALK, policy="spoilers-ok")
    await h.member_says(ACTIVE_TERM, in_channel=EPISODE_TALK)
    await embargo.moderator("channel", channel=EPISODE_TALK, policy="default")
    await embargo.moderator("guard-ignore", channel=EPISODE_TALK)
    await h.member_says(ACTIVE_TERM, in_channel=EPISODE_TALK)
    assert embargo.bot_replies() == []
    assert embargo.bot_replies(EPISODE_TALK.id) == []

    await embargo.moderator("guard-watch", channel=EPISODE_TALK)
    original = await h.member_says(ACTIVE_TERM, in_channel=EPISODE_TALK)
    [reply] = embargo.bot_replies(EPISODE_TALK.id)
    assert flagged(reply, original)


async def test_an_edit_that_adds_the_term_is_flagged(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="flag")
    original = await h.member_says("what a finale")
    assert embargo.bot_replies() == []
    await h.member_edits(original, f"what a finale, {ACTIVE_TERM}")
    [reply] = embargo.bot_replies()
    assert flagged(reply, original)
    # The same text again (a link preview arriving) is not flagged twice.
    await h.member_edits(original, f"what a finale, {ACTIVE_TERM}")
    assert len(embargo.bot_replies()) == 1


async def test_off_by_default_and_off_again(embargo):
    h = embargo.harness
    await h.member_says(ACTIVE_TERM)
    await embargo.moderator("guard", mode="flag")
    await embargo.moderator("guard", mode="off")
    await h.member_says(ACTIVE_TERM)
    assert embargo.bot_replies() == []


async def test_hide_reposts_as_a_spoiler_and_logs_it(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="hide")
    await embargo.moderator("log", channel=EPISODE_TALK)
    text = f"Spoiler: {ACTIVE_TERM} in the end, incredible"
    original = await h.member_says(text)
    assert h.standin.messages[int(original["id"])].deleted
    [repost] = [
        m.payload for m in h.standin.channel_messages(GENERAL.id) if m.payload.get("webhook_id")
    ]
    assert repost["content"].endswith("-# hidden as a spoiler by Embargo's guard")
    assert "Daly" not in repost["content"].split("||")[0]
    assert words(text) <= words(repost["content"])
    [entry] = embargo.bot_replies(EPISODE_TALK.id)
    assert "Embargo's guard hid" in entry["content"]
    assert "Daly" not in entry["content"]
    assert "Captain" not in entry["content"]


async def test_without_the_intent_guard_explains_how_to_turn_it_on(tmp_path):
    harness, storage, bot = await start(tmp_path, guard=False)
    try:
        async with harness as h:
            assert not bot.intents.message_content
            reply = await h.slash("embargo", subcommand="guard", as_user=MODERATOR, mode="flag")
            assert "MESSAGE_GUARD=on" in (reply.content or "")
            assert "Message Content" in reply.content
            assert (await storage.member_spoiler_settings(h.guild.id)).guard_mode.value == "off"
    finally:
        await storage.close()


def test_the_intent_is_asked_for_only_with_message_guard_on(tmp_path):
    from bot.client import intents_for

    base = Settings(None, "sqlite://", tmp_path, "INFO", None)
    assert not intents_for(base).message_content
    assert not intents_for(base).guild_messages
    on = Settings(None, "sqlite://", tmp_path, "INFO", None, message_guard=True)
    assert intents_for(on).message_content
    assert intents_for(on).guild_messages


async def test_a_forwarded_message_is_judged_by_its_snapshot(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="flag")
    source = await h.member_says(f"wow ||{ACTIVE_TERM}||", in_channel=EPISODE_TALK)
    assert embargo.bot_replies(EPISODE_TALK.id) == []
    bare = dict(source, content=f"so {ACTIVE_TERM}")  # the same message, untagged
    forward = await h.member_says("", forwarded=bare)
    [reply] = embargo.bot_replies()
    assert flagged(reply, forward)


async def test_embargos_discussion_threads_are_left_alone(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="flag")
    thread = h.world.add_thread("finale-talk", parent="general", owner="member")
    storage = embargo.bot.storage
    async with storage.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO discussion_threads (thread_id, guild_id, episode_key, parent_id, "
            "created_at) VALUES (?, ?, 'test-show/s01e02', ?, 0)",
            (thread.id, h.guild.id, GENERAL.id),
        )
    user = h.world.user_by_id(MEMBER.id)
    assert user is not None
    # The bot learns of the thread as Discord would tell it: THREAD_CREATE.
    h.standin.emit("THREAD_CREATE", thread.to_payload() | {"newly_created": True})
    h.standin.member_message(thread, user, ACTIVE_TERM)
    await h.settle()
    assert embargo.bot_replies(thread.id) == []
    # A thread members opened themselves is watched.
    other = h.world.add_thread("members-thread", parent="general", owner="member")
    h.standin.emit("THREAD_CREATE", other.to_payload() | {"newly_created": True})
    h.standin.member_message(other, user, ACTIVE_TERM)
    await h.settle()
    assert len(embargo.bot_replies(other.id)) == 1


async def test_a_content_reload_brings_new_terms(embargo, tmp_path):
    h = embargo.harness
    await embargo.moderator("guard", mode="flag")
    await h.member_says("the lighthouse keeper")
    assert embargo.bot_replies() == []
    write(
        tmp_path / "content",
        "reviews/test-show/s01e02.md",
        review_md(spoiler_terms=[ACTIVE_TERM, "lighthouse keeper"]),
    )
    before = embargo.guard.index
    await embargo.bot.content.reload()
    # The reload wakes the guard's task, which rebuilds the index on its own.
    for _ in range(200):
        if embargo.guard.index is not before:
            break
        await asyncio.sleep(0.01)
    assert embargo.guard.index is not before
    original = await h.member_says("the lighthouse keeper")
    [reply] = embargo.bot_replies()
    assert flagged(reply, original)


async def test_the_guard_wakes_by_itself_when_a_window_closes(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="flag")
    closes = datetime(2026, 12, 4, tzinfo=UTC)  # the finale's 2-week window ends
    clock = embargo.bot.clock
    clock.now = closes - timedelta(seconds=0.3)
    embargo.guard.rebuild_soon()
    for _ in range(100):  # the task rebuilds for the new instant and sleeps until the end
        await asyncio.sleep(0.01)
        if embargo.guard.index.built_at == clock.now:
            break
    assert embargo.guard.index.expires_at == closes
    inside = await h.member_says(ACTIVE_TERM)
    assert [r for r in embargo.bot_replies() if flagged(r, inside)]

    clock.now = closes + timedelta(seconds=1)  # time passes; nothing wakes the task but itself
    for _ in range(100):
        await asyncio.sleep(0.01)
        if embargo.guard.index.built_at == clock.now:
            break
    after = await h.member_says(ACTIVE_TERM)
    assert not [r for r in embargo.bot_replies() if flagged(r, after)]


async def test_an_edit_while_the_guard_hides_a_message_is_hidden_once_never_flagged(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="hide")
    user = h.world.user_by_id(MEMBER.id)
    assert user is not None
    edited = f"{ACTIVE_TERM}, and the lighthouse keeper too"
    reposts: list[dict] = []
    original: dict = {}

    def member_edits_meanwhile(name: str, data: dict) -> None:
        if name == "MESSAGE_CREATE" and data.get("webhook_id"):
            reposts.append(data)
            if len(reposts) == 1:  # the guard's repost is up; the original not yet deleted
                h.standin.edit_member_message(int(original["id"]), edited)

    h.standin.event_listeners.append(member_edits_meanwhile)
    channel = h.world.find_channel(GENERAL.id)
    assert channel is not None
    original.update(h.standin.member_message(channel, user, ACTIVE_TERM))
    await h.settle()

    # The edit reached the guard while it was hiding the message: it neither flagged it nor
    # hid it a second time; the hide itself reposted the edited words instead of the old.
    assert embargo.bot_replies() == []
    assert len(reposts) == 2
    live = [m for m in h.standin.channel_messages(GENERAL.id) if m.payload.get("webhook_id")]
    assert [m.id for m in live] == [int(reposts[1]["id"])]
    assert words(edited) <= words(live[0].payload["content"])
    assert h.standin.messages[int(original["id"])].deleted


async def test_a_poll_naming_the_term_is_flagged_as_it_cant_be_hidden(embargo):
    h = embargo.harness
    await embargo.moderator("guard", mode="hide")
    poll = await h.member_says("", poll=[f"So, {ACTIVE_TERM}?", "Yes", "No"])
    sticker = await h.member_says(f"{ACTIVE_TERM}!", stickers=["Shocked"], in_channel=EPISODE_TALK)
    [poll_reply] = embargo.bot_replies()
    assert flagged(poll_reply, poll)
    [sticker_reply] = embargo.bot_replies(EPISODE_TALK.id)
    assert flagged(sticker_reply, sticker)
    for channel in (GENERAL, EPISODE_TALK):
        assert not [
            m for m in h.standin.channel_messages(channel.id) if m.payload.get("webhook_id")
        ]
    assert not h.standin.messages[int(poll["id"])].deleted
    assert not h.standin.messages[int(sticker["id"])].deleted


async def test_a_member_posting_spoilers_in_a_row_gets_one_reply_while_it_is_up(embargo):
    h = embargo.harness
    embargo.guard.flag_seconds = 0.5
    await embargo.moderator("guard", mode="flag")
    await embargo.moderator("log", channel=EPISODE_TALK)
    first = await h.member_says(ACTIVE_TERM)
    for _ in range(3):
        await h.member_says(f"really, {ACTIVE_TERM}")
    [reply] = embargo.bot_replies()
    assert flagged(reply, first)
    assert len(embargo.bot_replies(EPISODE_TALK.id)) == 4  # each one logged all the same
    # Someone else, or elsewhere, still gets their own reply.
    other = await h.member_says(ACTIVE_TERM, as_user=MODERATOR)
    assert flagged(embargo.bot_replies()[-1], other)
    # Once the reply's time is up, a new spoiler gets a new reply.
    await asyncio.sleep(0.6)
    later = await h.member_says(ACTIVE_TERM)
    assert flagged(embargo.bot_replies()[-1], later)
    assert len(embargo.bot_replies()) == 3
