"""Checks over every extension and command, so a new cog can't quietly break the rules.

The commands are read as Discord has them: the real bot starts against the project's Discord
stand-in (every extension loaded as ``python -m bot`` loads it, cog_load included), so the
``/embargo`` subcommands other extensions attach to the group are checked like its own."""

from __future__ import annotations

import asyncio
import copy
import importlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.client import EmbargoBot, extension_names
from bot.config import PROJECT_DIR, Settings
from bot.errors import error_text
from bot.storage import Storage
from tests.support import GENERAL, MEMBER, MODERATOR_ROLE, Harness

EXPECTED_TOP_LEVEL = {
    "review",
    "ending",
    "spoilers",
    "embargo",
    "vote",
    "unvote",
    "myvotes",
    "rankings",
    "upcoming",
    "help",
    "about",
    "watched",
    "unwatched",
    "progress",
    "forget-me",
}
CHAT_INPUT, MESSAGE_COMMAND = 1, 3  # application command types
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING = discord.AppCommandOptionType.string.value
GUILD_ONLY = [0]  # contexts: servers only
MANAGE_SERVER = str(discord.Permissions(manage_guild=True).value)


@asynccontextmanager
async def running_embargo(folder: Path) -> AsyncIterator[tuple[Harness, Path]]:
    """Embargo as ``python -m bot`` starts it (the optional guard on, so nothing is left out),
    logged in to the stand-in; and its SQLite file."""
    database = folder / "embargo.db"
    storage = await Storage.open(f"sqlite:///{database}", folder)
    settings = Settings(
        discord_token=None,
        database_url=f"sqlite:///{database}",
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
        message_guard=True,
    )
    try:
        async with Harness(EmbargoBot(settings, storage)) as harness:
            yield harness, database
    finally:
        await storage.close()


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every global command as Embargo registered it with Discord."""

    async def read() -> list[dict[str, Any]]:
        async with running_embargo(tmp_path_factory.mktemp("meta")) as (harness, _):
            return copy.deepcopy(harness.standin.commands[None])

    return asyncio.run(read())


def slash_commands(registered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [command for command in registered if command.get("type", CHAT_INPUT) == CHAT_INPUT]


def walk(options: list[dict[str, Any]], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subcommand and subcommand group below a command, with its qualified name."""
    for option in options:
        if option["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP):
            name = f"{prefix} {option['name']}"
            yield name, option
            yield from walk(option.get("options") or [], name)


def every_command(registered: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for command in slash_commands(registered):
        yield command["name"], command
        yield from walk(command.get("options") or [], command["name"])


def parameters(command: dict[str, Any]) -> list[dict[str, Any]]:
    """A command's own options (not its subcommands)."""
    return [
        option
        for option in command.get("options") or []
        if option["type"] not in (SUB_COMMAND, SUB_COMMAND_GROUP)
    ]


def moderator_commands(registered: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every command Discord shows only to members with Manage Server, by its qualified name:
    each subcommand of such a command, or the command itself when it has none."""
    found = []
    for command in slash_commands(registered):
        required = command.get("default_member_permissions")
        if required is None or not discord.Permissions(int(required)).manage_guild:
            continue
        leaves = [
            (name, option)
            for name, option in walk(command.get("options") or [], command["name"])
            if option["type"] == SUB_COMMAND
        ]
        found += leaves or [(command["name"], command)]
    return found


def test_every_extension_has_setup():
    names = extension_names()
    assert names, "no extensions found in cogs/"
    for name in names:
        assert callable(getattr(importlib.import_module(name), "setup", None)), name


def test_the_public_command_names(registered):
    assert {command["name"] for command in slash_commands(registered)} == EXPECTED_TOP_LEVEL
    menus = {command["name"] for command in registered if command["type"] == MESSAGE_COMMAND}
    assert menus == {"Hide as spoiler"}


def test_no_two_commands_share_a_name(registered):
    names = [name for name, _ in every_command(registered)]
    assert len(names) == len(set(names))


def test_every_command_and_option_is_described(registered):
    for name, command in every_command(registered):
        # discord.py cuts a description over 100 characters with "…" when registering it.
        assert command["description"] not in ("", "…"), name
        assert not command["description"].endswith("…"), name
        for option in parameters(command):
            where = f"/{name} {option['name']}"
            assert option["description"] not in ("", "…"), where
            assert not option["description"].endswith("…"), where


def test_the_attached_moderator_commands_are_seen(registered):
    # Subcommands other extensions attach in cog_load, next to the group's own.
    names = {name for name, _ in moderator_commands(registered)}
    expected = {"window", "settings", "announce", "watch-role", "guard", "log"}
    assert {f"embargo {name}" for name in expected} <= names


def test_moderator_group_is_hidden_and_guild_only(registered):
    # Discord reads these from the top-level command only: they cover every subcommand.
    [group] = [c for c in slash_commands(registered) if c["name"] == "embargo"]
    assert group["default_member_permissions"] == MANAGE_SERVER
    assert group["contexts"] == GUILD_ONLY
    assert group["dm_permission"] is False


def test_servers_only_commands_say_so_in_both_fields(registered):
    # Older clients read dm_permission, newer ones contexts: both must agree.
    for command in registered:
        if command.get("contexts") == GUILD_ONLY:
            assert command["dm_permission"] is False, command["name"]


def test_every_string_option_declares_a_max_length(registered):
    # Discord's client then refuses longer input; Embargo checks the length again itself.
    strings = 0
    for name, command in every_command(registered):
        for option in parameters(command):
            if option["type"] == STRING:
                strings += 1
                where = f"/{name} {option['name']}"
                assert 1 <= option.get("max_length", 0) <= 100, where
    assert strings >= 10  # the check saw the commands' text options


def some_value(option: dict[str, Any]) -> Any:
    """A value Discord's client would accept for ``option``."""
    kind = discord.AppCommandOptionType(option["type"])
    if option.get("choices"):
        return option["choices"][0]["value"]
    if kind is discord.AppCommandOptionType.string:
        return "x" * max(1, option.get("min_length", 1))
    if kind in (discord.AppCommandOptionType.integer, discord.AppCommandOptionType.number):
        return option.get("min_value", 1)
    if kind is discord.AppCommandOptionType.boolean:
        return True
    if kind in (discord.AppCommandOptionType.user, discord.AppCommandOptionType.mentionable):
        return MEMBER
    if kind is discord.AppCommandOptionType.role:
        return MODERATOR_ROLE
    if kind is discord.AppCommandOptionType.channel:
        assert discord.ChannelType.text.value in option.get("channel_types", [0]), option
        return GENERAL
    raise AssertionError(f"no value to send for {option['name']!r} ({kind.name})")


def database_rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return list(connection.iterdump())


async def test_every_moderator_command_refuses_members_without_manage_server(tmp_path):
    # Discord's client hides these from them, but a server admin can change that: Embargo's own
    # check must refuse each, whichever extension added it, before it does anything.
    refusal = error_text(app_commands.MissingPermissions(["manage_guild"]))
    async with running_embargo(tmp_path) as (harness, database):
        commands = moderator_commands(harness.standin.commands[None])
        assert len(commands) >= 10
        before = database_rows(database)
        for name, command in commands:
            root, _, subcommand = name.partition(" ")
            options = {
                option["name"]: some_value(option)
                for option in parameters(command)
                if option.get("required")
            }
            reply = await harness.slash(
                root, subcommand=subcommand or None, as_user=MEMBER, options=options
            )
            assert not reply.errors, (name, reply.describe())
            assert reply.ephemeral, name
            assert reply.content == refusal, name
            # Nothing but the refusal: no post, no role given, no webhook made.
            assert [request.path for request in reply.requests] == [reply.callback.path], name
        assert database_rows(database) == before
