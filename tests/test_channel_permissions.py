"""A reply Embargo can't post where it was asked names the permission the moderators must give.

The stand-in hands Embargo's channel permissions to the bot as ``app_permissions``, as Discord
does (overwrites included); a test takes some away with ``GuildSpec(bot_permissions=...)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import discord
import pytest

from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.messages import OutgoingMessage, permissions_needed
from bot.storage import Storage
from tests.support import (
    DEFAULT_GUILD_ID,
    EPISODE_TALK,
    GuildSpec,
    Harness,
    RecordedRequest,
)

FINALE = "black-mirror/s07e06"
TODAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EMBED = {"title": "t"}


def base_bot_permissions() -> discord.Permissions:
    """What Embargo's invite asks for, as the stand-in's server gives it by default."""
    return discord.Permissions(GuildSpec().bot_permissions.value)


def without(**flags: bool) -> discord.Permissions:
    permissions = base_bot_permissions()
    permissions.update(**dict.fromkeys(flags, False))
    return permissions


@pytest.fixture
async def storage(tmp_path) -> AsyncIterator[Storage]:
    storage = await Storage.open(f"sqlite:///{tmp_path}/embargo.db", tmp_path)
    try:
        yield storage
    finally:
        await storage.close()


def embargo(tmp_path, storage: Storage, bot_permissions: discord.Permissions) -> Harness:
    settings = Settings(
        discord_token=None,
        database_url=f"sqlite:///{tmp_path}/embargo.db",
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
    )
    bot = EmbargoBot(settings, storage, clock=lambda: TODAY)
    return Harness(bot, guild=GuildSpec(bot_permissions=bot_permissions))


def public_messages(reply) -> list[dict]:
    return [m for m in reply.sent if not m.get("flags", 0) & (1 << 6)]


async def test_a_review_without_embed_links_names_the_permission(tmp_path, storage):
    async with embargo(tmp_path, storage, without(embed_links=True)) as h:
        reply = await h.slash("review", episode=FINALE)
    assert not reply.errors, reply.describe()
    assert public_messages(reply) == []
    assert reply.ephemeral
    assert "Embargo needs **Embed Links** in this channel" in reply.content
    assert "Nothing was posted." in reply.content


async def test_a_long_ending_without_send_messages_names_it_and_posts_nothing(tmp_path, storage):
    await storage.set_spoilers_ok_channel(DEFAULT_GUILD_ID, EPISODE_TALK.id, True)
    async with embargo(tmp_path, storage, base_bot_permissions()) as h:
        allowed = await h.slash("ending", episode=FINALE, in_channel=EPISODE_TALK)
    assert len(public_messages(allowed)) > 1  # the ending needs follow-ups
    async with embargo(tmp_path, storage, without(send_messages=True)) as h:
        refused = await h.slash("ending", episode=FINALE, in_channel=EPISODE_TALK)
    assert public_messages(refused) == []
    assert refused.ephemeral
    assert "**Send Messages**" in refused.content
    assert "Embed Links" not in refused.content


async def test_a_chart_without_attach_files_names_it(tmp_path, storage):
    async with embargo(tmp_path, storage, without(attach_files=True, embed_links=True)) as h:
        charted = await h.slash("rankings", show="Black Mirror", chart=True)
        plain = await h.slash("rankings", show="Black Mirror")
    assert public_messages(charted) == []
    assert "Embargo needs **Embed Links** and **Attach Files** in this channel" in charted.content
    assert "**Attach Files**" not in plain.content
    assert "**Embed Links**" in plain.content


async def test_private_replies_need_no_channel_permission(tmp_path, storage):
    nothing = discord.Permissions.none()
    async with embargo(tmp_path, storage, nothing) as h:
        reply = await h.slash("help")
        spoilers = await h.slash("spoilers")
    assert reply.ephemeral
    assert reply.embeds[0]["title"] == "Embargo help"
    assert spoilers.ephemeral
    assert spoilers.embeds[0]["title"] == "Spoiler rules"


async def test_a_refusal_by_discord_names_what_embargo_lacks(tmp_path, storage):
    await storage.set_spoilers_ok_channel(DEFAULT_GUILD_ID, EPISODE_TALK.id, True)
    refusals: list[str] = []

    def refuse_public_followups(request: RecordedRequest, **_: str):
        if request.json and not request.json.get("flags", 0) & (1 << 6):
            refusals.append(request.path)
            return 403, {"code": 50013, "message": "Missing Permissions"}
        return 200, {
            "id": "1300000000000009999",
            "channel_id": str(EPISODE_TALK.id),
            "content": request.json.get("content", "") if request.json else "",
            "type": 0,
            "author": {"id": "1", "username": "Embargo", "discriminator": "0", "avatar": None},
            "attachments": [],
            "embeds": [],
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "mention_everyone": False,
            "tts": False,
            "timestamp": "2026-11-25T12:00:00+00:00",
            "edited_timestamp": None,
            "flags": 64,
            "components": [],
        }

    # Embargo can't see the channel: nothing it checks before sending, so Discord refuses.
    async with embargo(tmp_path, storage, without(view_channel=True)) as h:
        h.add_route("POST", "/webhooks/{app_id}/{token}", refuse_public_followups)
        reply = await h.slash("ending", episode=FINALE, in_channel=EPISODE_TALK)
    assert refusals, reply.describe()
    assert reply.flags & (1 << 6)  # the last message: the explanation, to the member alone
    assert "Embargo needs **View Channel** in this channel" in reply.content
    assert "Something went wrong" not in reply.content


def test_permissions_needed():
    public = OutgoingMessage(content="a")
    private = OutgoingMessage(content="a", ephemeral=True)
    embedded = OutgoingMessage(embeds=(EMBED,))
    assert permissions_needed([public]) == []
    assert permissions_needed([public, public]) == ["send_messages"]
    assert permissions_needed([public, public], in_thread=True) == ["send_messages_in_threads"]
    assert permissions_needed([private, private, private]) == []
    assert permissions_needed([embedded], with_file=True) == ["embed_links", "attach_files"]
    assert permissions_needed([OutgoingMessage(embeds=(EMBED,), ephemeral=True)]) == []
    assert permissions_needed([public], with_file=True) == ["attach_files"]
