"""/help and /about through discord.py's real command tree, and their texts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import discord
import pytest
from discord import app_commands

from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, ConfigError, Settings, embargo_version, load_settings
from bot.help_messages import CommandHelp, about_message, help_message
from bot.spoilers.durations import parse_window
from bot.spoilers.policy import SpoilerMode, SpoilerSettings
from bot.spoilers.render import EMBED_FIELD_VALUE_LIMIT, EMBED_TOTAL_LIMIT
from bot.storage import Storage
from tests.support import DEFAULT_GUILD_ID, EPISODE_TALK, MEMBER, MODERATOR, Harness

TODAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MODERATOR_COMMANDS = {
    "/embargo window duration:",
    "/embargo mode mode:",
    "/embargo settings",
    "/embargo channel channel: policy:",
}


def make_settings(tmp_path, **changes) -> Settings:
    settings = Settings(
        discord_token=None,
        database_url=f"sqlite:///{tmp_path}/embargo.db",
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
    )
    return replace(settings, **changes)


@pytest.fixture
async def storage(tmp_path) -> AsyncIterator[Storage]:
    storage = await Storage.open(f"sqlite:///{tmp_path}/embargo.db", tmp_path)
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
async def harness(tmp_path, storage) -> AsyncIterator[Harness]:
    bot = EmbargoBot(make_settings(tmp_path), storage, clock=lambda: TODAY)
    async with Harness(bot) as harness:
        yield harness


def usages(embed: dict) -> dict[str, set[str]]:
    """Each field of a /help embed: the command usages it lists."""
    found: dict[str, set[str]] = {}
    for field in embed["fields"]:
        name = field["name"].removesuffix(" (more)")
        for line in field["value"].splitlines():
            if line.startswith("`/"):
                found.setdefault(name, set()).add(line[1 : line.index("`", 1)])
    return found


def field_text(embed: dict, prefix: str) -> str:
    return "\n".join(f["value"] for f in embed["fields"] if f["name"].startswith(prefix))


async def test_help_differs_for_a_member_and_a_moderator(harness):
    member = await harness.slash("help", as_user=MEMBER)
    moderator = await harness.slash("help", as_user=MODERATOR)
    for reply in (member, moderator):
        assert reply.ephemeral
        assert not reply.errors, reply.describe()
        assert reply.allowed_mentions == {"parse": []}
    member_lists = usages(member.embeds[0])
    moderator_lists = usages(moderator.embeds[0])
    everyone = member_lists["Your commands"]
    assert {"/review episode:", "/spoilers [episode:]", "/help", "/about"} <= everyone
    assert "Moderator commands (Manage Server)" not in member_lists
    assert not any(usage.startswith("/embargo") for usage in everyone)
    assert moderator_lists["Your commands"] == everyone
    assert moderator_lists["Moderator commands (Manage Server)"] >= MODERATOR_COMMANDS
    # Descriptions come from the commands themselves.
    assert "How long after release spoilers stay hidden." in field_text(
        moderator.embeds[0], "Moderator commands"
    )
    assert member.embeds[0]["footer"]["text"].startswith(f"Embargo {embargo_version()}")


async def test_help_lists_a_new_command_without_being_told(harness):
    @app_commands.command(name="catch-up", description="What to watch next.")
    async def catch_up(interaction: discord.Interaction) -> None:  # pragma: no cover
        await interaction.response.send_message("…")

    before = usages((await harness.slash("help")).embeds[0])["Your commands"]
    harness.bot.tree.add_command(catch_up)
    after = (await harness.slash("help")).embeds[0]
    assert usages(after)["Your commands"] == before | {"/catch-up"}
    assert "`/catch-up`: What to watch next." in field_text(after, "Your commands")


async def test_help_shows_this_servers_rules_one_line_each(harness, storage):
    await storage.set_spoiler_window(DEFAULT_GUILD_ID, parse_window("2w"))
    await storage.set_spoiler_mode(DEFAULT_GUILD_ID, SpoilerMode.PRIVATE)
    await storage.set_show_window(DEFAULT_GUILD_ID, "black-mirror", parse_window("30d"))
    await storage.set_spoilers_ok_channel(DEFAULT_GUILD_ID, EPISODE_TALK.id, True)
    reply = await harness.slash("help")
    rules = field_text(reply.embeds[0], "Spoiler rules in this server").splitlines()
    assert rules == [
        "**Spoiler window:** 2 weeks after each episode's release",
        "**While it runs:** endings are shown only to the member who asks (`private`)",
        "**Per-show windows:** Black Mirror: 30 days",
        f"**Spoilers-ok channels:** <#{EPISODE_TALK.id}>",
    ]


async def test_help_in_dms_lists_dm_commands_and_the_default_rules(harness, storage):
    await storage.set_spoiler_window(DEFAULT_GUILD_ID, parse_window("2w"))
    reply = await harness.slash("help", in_dm=True, as_user=MODERATOR)
    embed = reply.embeds[0]
    lists = usages(embed)
    assert "Moderator commands (Manage Server)" not in lists
    assert "/spoilers [episode:]" in lists["Your commands"]
    rules = field_text(embed, "Spoiler rules in DMs (the defaults)")
    assert "2 weeks" not in rules
    assert "Spoilers-ok channels" not in rules
    assert rules.startswith("**Spoiler window:** ")


async def test_about_names_version_data_retention_and_source(tmp_path, storage):
    settings = make_settings(tmp_path, source_url="https://example.org/embargo")
    async with Harness(EmbargoBot(settings, storage, clock=lambda: TODAY)) as harness:
        reply = await harness.slash("about", as_user=MEMBER)
    assert reply.ephemeral
    (embed,) = reply.embeds
    assert embargo_version() in embed["description"]
    assert "<https://example.org/embargo>" in embed["description"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "user id" in fields["What Embargo stores"]
    assert "**30 days**" in fields["For how long"]


def test_about_without_a_source_url_says_so():
    embed = about_message(version="1.2.3", source_url=None).embeds[0]
    assert "SOURCE_URL" in str(embed["description"])
    assert "http" not in str(embed["description"])


def test_version_comes_from_the_package_metadata():
    from importlib import metadata

    assert embargo_version() == metadata.version("embargo") != "unknown"


@pytest.mark.parametrize(
    "value",
    ["ftp://example.org", "https://example.org/a b", "https://" + "a" * 300, "<https://x.org>"],
)
def test_a_bad_source_url_is_refused_at_start(value):
    with pytest.raises(ConfigError, match="SOURCE_URL"):
        load_settings({"SOURCE_URL": value}, dotenv=False)


def test_help_stays_within_discord_limits_however_many_commands():
    commands = [
        CommandHelp(name=f"command-{i}", description="d" * 100, moderator=i % 2 == 0)
        for i in range(200)
    ]
    settings = SpoilerSettings(
        show_windows=tuple((f"show-{i}", parse_window("1d")) for i in range(200)),
        spoilers_ok_channels=frozenset(range(10**18, 10**18 + 200)),
    )
    embed = help_message(commands, settings, {}, in_guild=True, version="1").embeds[0]
    fields = embed["fields"]
    assert 1 < len(fields) <= 25
    assert all(len(f["value"]) <= EMBED_FIELD_VALUE_LIMIT for f in fields)
    total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
    total += sum(len(f["name"]) + len(f["value"]) for f in fields)
    assert total <= EMBED_TOTAL_LIMIT
    # Lines are whole: every listed command is one line starting with its usage.
    lines = [line for f in fields for line in f["value"].splitlines()]
    assert all(line.startswith("`/command-") for line in lines if "command-" in line)
