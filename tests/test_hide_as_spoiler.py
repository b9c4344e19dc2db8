"""Apps → Hide as spoiler, through discord.py's real tree against the Discord stand-in: the
repost through the channel's webhook, the leak rules on its text, and the original deleted only
after the repost, or left alone with the reason when it can't be made."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import discord
import pytest

from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.storage import Storage
from tests import markdown_oracle
from tests.support import (
    EPISODE_TALK,
    GENERAL,
    MEMBER,
    MODERATOR,
    GuildSpec,
    Harness,
    Recorded,
    RecordedRequest,
    RoleSpec,
    UserSpec,
)
from tests.support.reading import NO_MENTIONS, SUPPRESS_EMBEDS, words
from tests.support.specs import base_bot_permissions
from tests.support.standin.rest import ATTACHMENT_IS_SPOILER
from tests.support.standin.webhooks import (
    CHANNEL_PINNED_MESSAGE,
    IS_VOICE_MESSAGE,
    MAX_WEBHOOKS_PER_CHANNEL,
    USER_JOIN,
    MemberFile,
    Webhook,
)
from tests.support.standin.world import snowflake

HIDE = "Hide as spoiler"
OTHER = UserSpec(id=1_300_000_000_000_000_404, name="other")
HELPER_ROLE = RoleSpec(id=1_300_000_000_000_000_302, name="Spoiler helpers")
HELPER = UserSpec(id=1_300_000_000_000_000_405, name="helper", roles=(HELPER_ROLE,))
NEWS_BOT = UserSpec(id=1_300_000_000_000_000_406, name="newsbot", bot=True)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SPOILER = (
    "Captain Daly survives inside the infinite server, https://example.com/leak explains "
    f"everything, ask <@{MODERATOR.id}> @everyone"
)


def bot_permissions(**changes: bool) -> discord.Permissions:
    permissions = base_bot_permissions()
    permissions.update(**{"manage_webhooks": True, "manage_messages": True, **changes})
    return permissions


GUILD = GuildSpec(members=(MEMBER, MODERATOR, OTHER), bot_permissions=bot_permissions())


@dataclass
class Embargo:
    harness: Harness
    storage: Storage

    def webhook_posts(self) -> list[RecordedRequest]:
        ids = {str(w) for w in self.harness.standin.webhooks}
        return [
            r
            for r in self.harness.requests
            if r.method == "POST"
            and re.fullmatch(r"/webhooks/(\d+)/[^/]+", r.path)
            and r.path.split("/")[2] in ids
        ]

    def stored(self, message: dict) -> dict:
        return self.harness.standin.messages[int(message["id"])].payload

    def deleted(self, message: dict) -> bool:
        return self.harness.standin.messages[int(message["id"])].deleted


async def open_embargo(tmp_path, guild: GuildSpec) -> tuple[Harness, Storage]:
    db_url = f"sqlite:///{tmp_path}/embargo.db"
    storage = await Storage.open(db_url, tmp_path)
    settings = Settings(
        discord_token=None,
        database_url=db_url,
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
    )
    return Harness(EmbargoBot(settings, storage), guild=guild), storage


@pytest.fixture
async def embargo(tmp_path) -> AsyncIterator[Embargo]:
    harness, storage = await open_embargo(tmp_path, GUILD)
    try:
        async with harness:
            member = harness.world.guild.member(MEMBER.id)
            assert member is not None
            member.nick = "Captain Fan"
            member.user.avatar = "a1b2c3d4e5f6"
            yield Embargo(harness, storage)
    finally:
        await storage.close()


def assert_hidden_repost(contents: list[str], text: str) -> None:
    """Every word of ``text`` inside spoiler tags, nothing of it visible, no ambiguous tag."""
    hidden = ""
    for content in contents:
        reading = markdown_oracle.read(content)
        assert not reading.hazards, (reading.hazards, content)
        visible_lines = [line for line in reading.visible.splitlines() if line.strip()]
        for line in visible_lines:
            assert line.startswith("-# "), (line, content)
        assert not words(text) & words(reading.visible), content
        hidden += reading.hidden
    assert words(text) <= words(hidden)


def ephemeral_text(reply: Recorded) -> str:
    assert not reply.errors, reply.describe()
    assert reply.ephemeral, reply.describe()
    return reply.content or ""


async def test_a_moderator_hides_a_members_message_with_a_link_a_mention_and_an_image(embargo):
    h = embargo.harness
    original = await h.member_says(SPOILER, files=[MemberFile("finale.png", PNG)])

    reply = await h.message_command(HIDE, message=original, as_user=MODERATOR)

    assert ephemeral_text(reply).startswith("Hidden"), reply.describe()
    posts = embargo.webhook_posts()
    assert len(posts) == 1
    post = posts[0]
    body = post.json
    assert body["username"] == "Captain Fan"
    assert "a1b2c3d4e5f6" in body["avatar_url"]
    assert body["allowed_mentions"] == NO_MENTIONS
    assert body["flags"] & SUPPRESS_EMBEDS
    assert post.query.get("wait") in ("1", "true")
    assert_hidden_repost([body["content"]], SPOILER)
    assert "https://example.com" not in markdown_oracle.read(body["content"]).visible
    assert body["content"].rstrip().endswith("-# hidden as a spoiler by moderator")
    # The image is re-uploaded as a spoiler, its bytes intact.
    assert [f.filename for f in post.files] == ["SPOILER_finale.png"]
    assert post.files[0].data == PNG
    repost = h.standin.messages[post.message_id]
    assert repost.payload["attachments"][0]["filename"] == "SPOILER_finale.png"
    assert repost.payload["attachments"][0]["flags"] & ATTACHMENT_IS_SPOILER
    assert repost.payload["author"]["username"] == "Captain Fan"
    assert repost.allowed_mentions == NO_MENTIONS
    # The original is deleted, and only after the repost was made.
    assert embargo.deleted(original)
    deletes = [
        i
        for i, r in enumerate(h.requests)
        if r.method == "DELETE" and r.path.endswith(f"/messages/{original['id']}")
    ]
    assert deletes
    assert deletes[0] > h.requests.index(post)
    assert not h.standin.errors, h.standin.errors


async def test_a_member_may_hide_their_own_message_but_not_someone_elses(embargo):
    h = embargo.harness
    theirs = await h.member_says("Daly wins in the end", as_user=OTHER)
    refused = await h.message_command(HIDE, message=theirs, as_user=MEMBER)
    assert "Manage Messages" in ephemeral_text(refused)
    assert "Nothing was changed" in refused.content
    assert not embargo.webhook_posts()
    assert not embargo.deleted(theirs)

    mine = await h.member_says("Daly wins in the end", as_user=MEMBER)
    hidden = await h.message_command(HIDE, message=mine, as_user=MEMBER)
    assert ephemeral_text(hidden).startswith("Hidden")
    assert embargo.deleted(mine)
    assert len(embargo.webhook_posts()) == 1


async def test_the_spoiler_helpers_role_may_hide_others_messages(embargo):
    h = embargo.harness
    message = await h.member_says("Daly wins in the end", as_user=OTHER)
    refused = await h.message_command(HIDE, message=message, as_user=HELPER)
    assert "Nothing was changed" in ephemeral_text(refused)

    role = await h.slash(
        "embargo", subcommand="spoiler-helpers", as_user=MODERATOR, role=HELPER_ROLE
    )
    assert f"<@&{HELPER_ROLE.id}>" in ephemeral_text(role)
    hidden = await h.message_command(HIDE, message=message, as_user=HELPER)
    assert ephemeral_text(hidden).startswith("Hidden")
    assert embargo.deleted(message)

    await h.slash("embargo", subcommand="spoiler-helpers-off", as_user=MODERATOR)
    again = await h.member_says("Daly loses in the end", as_user=OTHER)
    refused = await h.message_command(HIDE, message=again, as_user=HELPER)
    assert "Nothing was changed" in ephemeral_text(refused)
    assert not embargo.deleted(again)


async def test_one_webhook_per_channel_reused_and_recreated_once_when_deleted(embargo):
    h = embargo.harness
    for text in ("first spoiler here", "second spoiler here"):
        message = await h.member_says(text)
        await h.message_command(HIDE, message=message, as_user=MODERATOR)
        assert embargo.deleted(message)
    hooks = h.standin.channel_webhooks(GENERAL.id)
    assert len(hooks) == 1

    h.standin.delete_webhook(hooks[0].id)  # a moderator removed it in the channel settings
    message = await h.member_says("third spoiler here")
    reply = await h.message_command(HIDE, message=message, as_user=MODERATOR)
    assert ephemeral_text(reply).startswith("Hidden")
    assert embargo.deleted(message)
    new_hooks = h.standin.channel_webhooks(GENERAL.id)
    assert len(new_hooks) == 1
    assert new_hooks[0].id != hooks[0].id

    elsewhere = await h.member_says("fourth spoiler here", in_channel=EPISODE_TALK)
    await h.message_command(HIDE, message=elsewhere, as_user=MODERATOR)
    assert len(h.standin.channel_webhooks(EPISODE_TALK.id)) == 1


async def test_a_reply_keeps_a_jump_link_to_the_message_it_answered(embargo):
    h = embargo.harness
    question = await h.member_says("Who survives?", as_user=OTHER)
    answer = await h.member_says("Daly survives", reply_to=question)
    await h.message_command(HIDE, message=answer, as_user=MODERATOR)
    content = embargo.webhook_posts()[0].json["content"]
    link = f"https://discord.com/channels/{GUILD.id}/{GENERAL.id}/{question['id']}"
    assert content.startswith(f"-# ↪ reply to <{link}>")
    assert_hidden_repost([content], "Daly survives")


async def test_a_forwarded_message_is_hidden_from_its_snapshot(embargo):
    h = embargo.harness
    source = await h.member_says("Daly survives the finale", as_user=OTHER, in_channel=EPISODE_TALK)
    forward = await h.member_says("", forwarded=source)
    reply = await h.message_command(HIDE, message=forward, as_user=MODERATOR)
    assert ephemeral_text(reply).startswith("Hidden")
    assert_hidden_repost([embargo.webhook_posts()[0].json["content"]], "Daly survives the finale")
    assert embargo.deleted(forward)


async def test_hides_are_logged_with_a_link_never_the_text(embargo):
    h = embargo.harness
    set_log = await h.slash("embargo", subcommand="log", as_user=MODERATOR, channel=EPISODE_TALK)
    assert f"<#{EPISODE_TALK.id}>" in ephemeral_text(set_log)
    message = await h.member_says(SPOILER)
    await h.message_command(HIDE, message=message, as_user=MODERATOR)
    logged = h.standin.channel_messages(EPISODE_TALK.id)
    assert len(logged) == 1
    entry = logged[0].payload["content"]
    repost = h.standin.channel_messages(GENERAL.id)[-1]
    assert f"/{repost.id}>" in entry
    assert f"<@{MODERATOR.id}>" in entry
    assert not words(SPOILER) & words(entry)
    assert logged[0].allowed_mentions == NO_MENTIONS

    await h.slash("embargo", subcommand="log-off", as_user=MODERATOR)
    await h.message_command(HIDE, message=await h.member_says("more"), as_user=MODERATOR)
    assert len(h.standin.channel_messages(EPISODE_TALK.id)) == 1


async def test_a_message_already_deleted_is_not_reposted(embargo):
    h = embargo.harness
    message = await h.member_says("gone soon")
    h.standin.messages[int(message["id"])].deleted = True  # the member deleted it meanwhile
    reply = await h.message_command(HIDE, message=message, as_user=MODERATOR)
    assert "deleted" in ephemeral_text(reply)
    assert not embargo.webhook_posts()


async def test_embargos_own_message_is_left_alone(embargo):
    h = embargo.harness
    own = h.bot_message(content="Embargo said this")
    reply = await h.message_command(HIDE, message=own, as_user=MODERATOR)
    assert "already Embargo's" in ephemeral_text(reply)
    assert not embargo.deleted(own)


async def test_another_bots_embeds_only_message_stays_and_the_reply_says_why(embargo):
    h = embargo.harness
    recap = await h.member_says(
        "",
        as_user=NEWS_BOT,
        embeds=[{"title": "Finale recap", "description": "Daly survives the infinite server"}],
    )
    assert embargo.stored(recap)["embeds"]  # what Discord holds: embeds, no text

    reply = await h.message_command(HIDE, message=recap, as_user=MODERATOR)

    text = ephemeral_text(reply)
    assert "only embeds from another bot" in text, text
    assert "left as it was" in text
    assert not embargo.deleted(recap)
    assert not embargo.webhook_posts()
    assert not h.standin.channel_webhooks(GENERAL.id)  # nothing was even prepared


@pytest.mark.parametrize("kind", [CHANNEL_PINNED_MESSAGE, USER_JOIN])
async def test_a_system_message_stays_and_the_reply_says_why(embargo, kind):
    h = embargo.harness
    pinned = await h.member_says("Daly survives", as_user=OTHER)
    notice = await h.system_message(kind, about=MEMBER, pinned=pinned)
    assert embargo.stored(notice)["type"] == kind

    # Its author (whose arrival or pin it announces) and a moderator are both refused.
    for who in (MEMBER, MODERATOR):
        reply = await h.message_command(HIDE, message=notice, as_user=who)
        text = ephemeral_text(reply)
        assert "system message" in text, text
        assert "Nothing was changed" in text
    assert not embargo.deleted(notice)
    assert not embargo.deleted(pinned)
    assert not embargo.webhook_posts()


@pytest.mark.parametrize(
    ("missing", "named"),
    [("manage_webhooks", "Manage Webhooks"), ("manage_messages", "Manage Messages")],
)
async def test_without_a_permission_the_original_stays_and_the_reply_names_it(
    tmp_path, missing, named
):
    guild = GuildSpec(
        members=(MEMBER, MODERATOR, OTHER), bot_permissions=bot_permissions(**{missing: False})
    )
    harness, storage = await open_embargo(tmp_path, guild)
    try:
        async with harness as h:
            message = await h.member_says(SPOILER)
            reply = await h.message_command(HIDE, message=message, as_user=MODERATOR)
            assert named in ephemeral_text(reply)
            assert "left as it was" in reply.content
            assert not h.standin.messages[int(message["id"])].deleted
            hooks = {str(webhook) for webhook in h.standin.webhooks}
            assert not [
                m for m in h.standin.messages.values() if m.payload.get("webhook_id") in hooks
            ]
    finally:
        await storage.close()


async def test_an_attachment_too_large_keeps_the_original(embargo):
    h = embargo.harness
    big = MemberFile("episode.mkv", b"\x00" * (10 * 1024 * 1024 + 1))
    message = await h.member_says("the whole finale", files=[big])
    reply = await h.message_command(HIDE, message=message, as_user=MODERATOR)
    assert "episode.mkv" in ephemeral_text(reply)
    assert "left as it was" in reply.content
    assert not embargo.deleted(message)
    assert not embargo.webhook_posts()


async def test_in_a_thread_the_parents_webhook_posts_with_thread_id(embargo):
    h = embargo.harness
    thread = h.world.add_thread("finale-talk", parent="general", owner="member")
    user = h.world.user_by_id(MEMBER.id)
    assert user is not None
    message = h.standin.member_message(thread, user, "Daly survives the finale")
    await h.settle()
    reply = await h.message_command(HIDE, message=message, as_user=MODERATOR)
    assert ephemeral_text(reply).startswith("Hidden")
    post = embargo.webhook_posts()[0]
    assert post.query.get("thread_id") == str(thread.id)
    assert h.standin.channel_webhooks(GENERAL.id)
    assert not h.standin.channel_webhooks(thread.id)
    assert [m.payload["webhook_id"] for m in h.standin.channel_messages(thread.id)] == [
        post.path.split("/")[2]
    ]
    assert embargo.deleted(message)


# -- long messages, many files, and a repost Discord refuses half-way ------------------------

# What a member with Nitro may post: up to 4,000 characters, more than one message's worth.
LONG_TEXT = " ".join(f"clue{i} Daly survives." for i in range(190))[:3990]


def webhook_execute_path(h: Harness) -> str:
    """Executing a channel webhook (not an interaction's followup, which also is /webhooks)."""
    return rf"^/webhooks/(?!{h.app_id}/)\d+/[^/]+$"


def sent_files_size(post: RecordedRequest) -> int:
    return sum(len(f.data) for f in post.files)


async def test_a_message_longer_than_one_message_is_reposted_in_parts_every_word_hidden(embargo):
    h = embargo.harness
    question = await h.member_says("Who survives?", as_user=OTHER)
    original = await h.member_says(
        LONG_TEXT, reply_to=question, files=[MemberFile("finale.png", PNG)]
    )

    reply = await h.message_command(HIDE, message=original, as_user=MODERATOR)

    assert ephemeral_text(reply).startswith("Hidden"), reply.describe()
    posts = embargo.webhook_posts()
    assert len(posts) >= 2
    contents = [post.json["content"] for post in posts]
    assert all(len(content) <= 2000 for content in contents)
    assert_hidden_repost(contents, LONG_TEXT)
    assert contents[0].startswith("-# ↪ reply to <")
    assert not any("reply to" in content for content in contents[1:])
    assert contents[-1].rstrip().endswith("-# hidden as a spoiler by moderator")
    assert not any("hidden as a spoiler" in content for content in contents[:-1])
    assert [f.filename for post in posts for f in post.files] == ["SPOILER_finale.png"]
    assert posts[-1].files
    # Shown in order, and the original deleted only after the last part.
    reposts = [h.standin.messages[post.message_id] for post in posts]
    assert [m.id for m in reposts] == sorted(m.id for m in reposts)
    assert embargo.deleted(original)
    [delete] = [
        r for r in h.requests if r.method == "DELETE" and r.path.endswith(f"/{original['id']}")
    ]
    assert h.requests.index(delete) > h.requests.index(posts[-1])
    assert f"/{reposts[0].id}>" in reply.content  # the jump link is to the first part
    assert not h.standin.errors, h.standin.errors


async def test_files_too_large_together_are_uploaded_in_messages_of_their_own(embargo):
    h = embargo.harness
    big = 6 * 1024 * 1024  # each within the 10 MiB limit, both together over it
    files = [MemberFile(f"shot{i}.png", PNG + bytes([i]) * big) for i in range(2)]
    original = await h.member_says("the last two shots", files=files)

    reply = await h.message_command(HIDE, message=original, as_user=MODERATOR)

    assert ephemeral_text(reply).startswith("Hidden"), reply.describe()
    posts = embargo.webhook_posts()
    assert [[f.filename for f in post.files] for post in posts] == [
        ["SPOILER_shot0.png"],
        ["SPOILER_shot1.png"],
    ]
    assert all(sent_files_size(post) <= h.standin.upload_limit for post in posts)
    assert [post.files[0].data for post in posts] == [f.data for f in files]
    assert_hidden_repost([posts[0].json["content"]], "the last two shots")
    assert posts[-1].json["content"] == "-# hidden as a spoiler by moderator"
    assert embargo.deleted(original)
    assert not h.standin.errors, h.standin.errors


async def test_a_later_part_refused_removes_the_earlier_parts_and_keeps_the_original(embargo):
    h = embargo.harness
    thread = h.world.add_thread("finale-talk", parent="general", owner="member")
    user = h.world.user_by_id(MEMBER.id)
    assert user is not None
    original = h.standin.member_message(thread, user, LONG_TEXT)
    await h.settle()
    refused = h.standin.fail_next(
        "POST",
        webhook_execute_path(h),
        status=403,
        body={"message": "Missing Permissions", "code": 50013},
        after=1,
    )

    reply = await h.message_command(HIDE, message=original, as_user=MODERATOR)

    text = ephemeral_text(reply)
    assert refused.hits, reply.describe()
    assert "part 2 of" in text, text
    assert "Manage Webhooks" in text
    assert "parts already posted were removed" in text
    assert "left as it was" in text
    [first] = [p for p in embargo.webhook_posts() if p.status == 200]
    assert h.standin.messages[first.message_id].deleted
    # Deleting a webhook's message in a thread names the thread, or Discord finds none.
    [withdrawn] = [
        r for r in h.requests if r.method == "DELETE" and r.path.endswith(f"/{first.message_id}")
    ]
    assert withdrawn.status == 204
    assert withdrawn.query.get("thread_id") == str(thread.id)
    assert h.standin.channel_messages(thread.id)[-1].id == int(original["id"])
    assert not embargo.deleted(original)


async def test_a_part_over_the_upload_limit_removes_the_earlier_parts_and_says_so(embargo):
    h = embargo.harness
    original = await h.member_says(
        LONG_TEXT, files=[MemberFile("finale.png", PNG + b"\x00" * (5 * 1024 * 1024))]
    )
    # The server lost a boost since: Discord now takes less than the interaction announced.
    h.standin.upload_limit = 4 * 1024 * 1024

    reply = await h.message_command(HIDE, message=original, as_user=MODERATOR)

    text = ephemeral_text(reply)
    posts = embargo.webhook_posts()
    assert [p.status for p in posts][-1] == 413, posts
    assert len(posts) >= 2
    assert f"part {len(posts)} of {len(posts)}" in text, text
    assert "larger than Discord lets Embargo upload" in text
    assert "parts already posted were removed" in text
    assert all(h.standin.messages[p.message_id].deleted for p in posts if p.status == 200)
    assert [m.id for m in h.standin.channel_messages(GENERAL.id)] == [int(original["id"])]


async def test_parts_that_could_not_be_removed_are_linked_for_the_moderator(embargo):
    h = embargo.harness
    original = await h.member_says(LONG_TEXT)
    h.standin.fail_next("POST", webhook_execute_path(h), status=400, after=1)
    h.standin.fail_next("DELETE", r"^/webhooks/\d+/[^/]+/messages/\d+$", status=403)

    reply = await h.message_command(HIDE, message=original, as_user=MODERATOR)

    text = ephemeral_text(reply)
    [first] = [p for p in embargo.webhook_posts() if p.status == 200]
    assert not h.standin.messages[first.message_id].deleted
    assert f"/{first.message_id}>" in text, text
    assert "by hand" in text
    assert "Discord answered 400" in text
    assert not embargo.deleted(original)


# -- the original changing while it is reposted ---------------------------------------------


def when_reposted(h: Harness, action) -> list[dict]:
    """Run ``action`` the first time a repost appears, before the bot hears back from Discord
    (as a member editing or deleting the original at that very moment); returns the reposts'
    MESSAGE_CREATE payloads."""
    reposts: list[dict] = []

    def listener(name: str, data: dict) -> None:
        if name == "MESSAGE_CREATE" and data.get("webhook_id"):
            reposts.append(data)
            if len(reposts) == 1:
                action()

    h.standin.event_listeners.append(listener)
    return reposts


async def test_an_edit_made_during_the_repost_is_reposted_and_the_old_repost_withdrawn(embargo):
    h = embargo.harness
    original = await h.member_says("Daly survives")
    edited = "Daly survives, and Nanette comes back in the last scene"
    reposts = when_reposted(h, lambda: h.standin.edit_member_message(int(original["id"]), edited))

    reply = await h.message_command(HIDE, message=original, as_user=MODERATOR)

    assert ephemeral_text(reply).startswith("Hidden"), reply.describe()
    assert len(reposts) == 2
    first, second = (h.standin.messages[int(r["id"])] for r in reposts)
    assert first.deleted  # the old words' repost
    assert not second.deleted
    assert_hidden_repost([second.payload["content"]], edited)
    assert embargo.deleted(original)
    assert f"/{second.id}>" in reply.content


async def test_an_original_deleted_during_the_repost_takes_the_repost_with_it(embargo):
    h = embargo.harness
    original = await h.member_says("Daly survives")

    def author_deletes() -> None:
        stored = h.standin.messages[int(original["id"])]
        stored.deleted = True
        h.standin.emit(
            "MESSAGE_DELETE", {"id": original["id"], "channel_id": original["channel_id"]}
        )

    reposts = when_reposted(h, author_deletes)

    reply = await h.message_command(HIDE, message=original, as_user=MODERATOR)

    assert "deleted before Embargo could hide it" in ephemeral_text(reply)
    [repost] = reposts
    assert h.standin.messages[int(repost["id"])].deleted
    assert not [m for m in h.standin.channel_messages(GENERAL.id) if m.payload.get("webhook_id")]


@pytest.mark.parametrize(
    ("what", "said"),
    [
        ({"stickers": ["Daly waves"]}, "can't repost a sticker"),
        ({"poll": ["Does Daly survive?", "Yes", "No"]}, "losing its votes"),
        (
            {"as_user": NEWS_BOT, "embeds": [{"title": "Finale recap", "description": "Daly"}]},
            "carries embeds",
        ),
    ],
    ids=["sticker", "poll", "a-bots-text-and-embeds"],
)
async def test_what_a_repost_would_lose_keeps_the_original_and_says_why(embargo, what, said):
    h = embargo.harness
    message = await h.member_says("Daly survives", **what)

    reply = await h.message_command(HIDE, message=message, as_user=MODERATOR)

    text = ephemeral_text(reply)
    assert said in text, text
    assert "left as it was" in text
    assert not embargo.deleted(message)
    assert not embargo.webhook_posts()


async def test_a_channel_full_of_other_webhooks_keeps_the_original_and_says_why(embargo):
    h = embargo.harness
    for number in range(MAX_WEBHOOKS_PER_CHANNEL):  # other integrations' webhooks
        hook = Webhook(
            id=snowflake(),
            token=f"token{number}",
            channel_id=GENERAL.id,
            guild_id=GUILD.id,
            name=f"feed {number}",
            application_id=None,
        )
        h.standin.webhooks[hook.id] = hook
    message = await h.member_says("Daly survives")

    reply = await h.message_command(HIDE, message=message, as_user=MODERATOR)

    text = ephemeral_text(reply)
    assert "Maximum number of webhooks reached" in text, text
    assert "left as it was" in text
    assert not embargo.deleted(message)


async def test_a_voice_message_is_reposted_as_a_spoilered_recording(embargo):
    h = embargo.harness
    recording = b"OggS" + b"\x01" * 512
    original = await h.member_says(
        "", files=[MemberFile("voice-message.ogg", recording)], voice=True
    )
    assert embargo.stored(original)["flags"] & IS_VOICE_MESSAGE

    reply = await h.message_command(HIDE, message=original, as_user=MODERATOR)

    assert ephemeral_text(reply).startswith("Hidden"), reply.describe()
    [post] = embargo.webhook_posts()
    # A webhook can't send a voice message: the recording comes back as a blurred audio file.
    assert [(f.filename, f.data) for f in post.files] == [("SPOILER_voice-message.ogg", recording)]
    assert post.json["content"] == "-# hidden as a spoiler by moderator"
    assert embargo.deleted(original)


async def test_a_repost_is_not_hidden_again(embargo):
    h = embargo.harness
    original = await h.member_says("Daly survives")
    await h.message_command(HIDE, message=original, as_user=MODERATOR)
    [post] = embargo.webhook_posts()
    repost = h.standin.messages[post.message_id].payload

    reply = await h.message_command(HIDE, message=repost, as_user=MODERATOR)

    assert "already Embargo's" in ephemeral_text(reply)
    assert len(embargo.webhook_posts()) == 1
    assert not embargo.deleted(repost)


async def test_parts_of_a_webhook_deleted_half_way_are_removed_as_channel_messages(embargo):
    h = embargo.harness
    original = await h.member_says(LONG_TEXT)
    webhook_ids: list[int] = []

    def moderator_deletes_the_webhook() -> None:
        [hook] = h.standin.channel_webhooks(GENERAL.id)
        webhook_ids.append(hook.id)
        h.standin.delete_webhook(hook.id)

    reposts = when_reposted(h, moderator_deletes_the_webhook)
    # The second part meets the deleted webhook (Unknown Webhook); the new one's is refused.
    h.standin.fail_next("POST", webhook_execute_path(h), status=400, after=2)

    reply = await h.message_command(HIDE, message=original, as_user=MODERATOR)

    text = ephemeral_text(reply)
    assert "part 2 of" in text, text
    assert "parts already posted were removed" in text
    [first] = reposts
    assert h.standin.messages[int(first["id"])].deleted
    # Its webhook is gone, so it went as any message: by the channel, with Manage Messages.
    [by_channel] = [
        r
        for r in h.requests
        if r.method == "DELETE" and r.path == f"/channels/{GENERAL.id}/messages/{first['id']}"
    ]
    assert by_channel.status == 204
    assert h.standin.channel_webhooks(GENERAL.id)[0].id != webhook_ids[0]
    assert not embargo.deleted(original)
