"""Checks over every extension and command, so a new cog can't quietly break the rules."""

import importlib

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.client import extension_names

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


@pytest.fixture(scope="module")
def tree():
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    for name in extension_names():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, commands.Cog):
                if value.__module__ != name:
                    continue
                cog = value.__new__(value)
                for command in cog.__cog_app_commands__:
                    tree.add_command(command)
    return tree


def walk(commands):
    for command in commands:
        yield command
        if isinstance(command, app_commands.Group):
            yield from walk(command.commands)


def test_every_extension_has_setup():
    names = extension_names()
    assert names, "no extensions found in cogs/"
    for name in names:
        assert callable(getattr(importlib.import_module(name), "setup", None)), name


def test_the_public_command_names(tree):
    assert {command.name for command in tree.get_commands()} == EXPECTED_TOP_LEVEL


def test_no_two_commands_share_a_name(tree):
    names = [command.qualified_name for command in walk(tree.get_commands())]
    assert len(names) == len(set(names))


def test_every_command_and_option_is_described(tree):
    for command in walk(tree.get_commands()):
        assert command.description not in ("", "…"), command.qualified_name
        # discord.py cuts a description over 100 characters with "…" when registering it.
        assert not command.description.endswith("…"), command.qualified_name
        if isinstance(command, app_commands.Command):
            for parameter in command.parameters:
                where = f"/{command.qualified_name} {parameter.name}"
                assert parameter.description not in ("", "…"), where
                assert not parameter.description.endswith("…"), where


def test_moderator_group_is_hidden_and_guild_only(tree):
    payload = tree.get_command("embargo").to_dict(tree)
    assert str(payload["default_member_permissions"]) == str(
        discord.Permissions(manage_guild=True).value
    )
    assert payload["contexts"] == [0]
    assert payload["dm_permission"] is False


def test_servers_only_commands_say_so_in_both_fields(tree):
    # Older clients read dm_permission, newer ones contexts: both must agree.
    for command in tree.get_commands():
        payload = command.to_dict(tree)
        if payload.get("contexts") == [0]:
            assert payload["dm_permission"] is False, command.name


def test_every_string_option_declares_a_max_length(tree):
    # Discord's client then refuses longer input; Embargo checks the length again itself.
    strings = 0
    for command in walk(tree.get_commands()):
        if not isinstance(command, app_commands.Command):
            continue
        for option in command.to_dict(tree)["options"]:
            if option["type"] == discord.AppCommandOptionType.string.value:
                strings += 1
                where = f"/{command.qualified_name} {option['name']}"
                assert 1 <= option.get("max_length", 0) <= 100, where
    assert strings >= 10  # the check saw the commands' text options
