"""The one error path: commands, transformers, views, modals and persistent buttons all end in
one clean ephemeral message, with a traceback in the log only for bugs."""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.errors import (
    GENERIC_FAILURE,
    EmbargoTree,
    ErrorRoutedModal,
    ErrorRoutedView,
    UserError,
    errors_reported,
)
from tests.support import Harness

EPHEMERAL = 1 << 6


class Refusing(app_commands.Transformer):
    async def transform(self, interaction: discord.Interaction, value: str) -> str:
        raise UserError(f"No {len(value)}-letter words. Nothing was changed.")


class BrokenView(ErrorRoutedView):
    @discord.ui.button(label="Break", custom_id="test:break")
    async def crash(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        raise RuntimeError("view bug")

    @discord.ui.button(label="Refuse", custom_id="test:refuse")
    async def refuse(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        raise UserError("Not now.")


class RefusingModal(ErrorRoutedModal, title="Note"):
    note: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Note", custom_id="note")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        raise UserError(f"A note can't say {self.note.value!r}.")


class LockedButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"test:locked:(?P<n>\d+)"
):
    def __init__(self, n: int) -> None:
        super().__init__(discord.ui.Button(label="Locked", custom_id=f"test:locked:{n}"))

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> LockedButton:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        async with errors_reported(interaction):
            raise RuntimeError("dynamic bug")


class Cog(commands.Cog):
    @app_commands.command(description="Crash")
    async def crash(self, interaction: discord.Interaction) -> None:
        raise RuntimeError("command bug")

    @app_commands.command(description="Refuse")
    async def refuse(self, interaction: discord.Interaction) -> None:
        raise UserError("You can't do that. Nothing was changed.")

    @app_commands.command(description="Transform")
    async def word(
        self, interaction: discord.Interaction, word: app_commands.Transform[str, Refusing]
    ) -> None:
        await interaction.response.send_message(word)

    @app_commands.command(description="A view")
    async def buttons(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Press", view=BrokenView())

    @app_commands.command(description="A modal")
    async def form(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(RefusingModal())

    @app_commands.command(description="Answer, then fail")
    async def late(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True)
        raise UserError("Too late.")


class ErrorBot(commands.Bot):
    def __init__(self) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.none(),
            tree_cls=EmbargoTree,
        )

    async def setup_hook(self) -> None:
        await self.add_cog(Cog())
        self.add_dynamic_items(LockedButton)
        await self.tree.sync()


@pytest.fixture
async def harness():
    async with Harness(ErrorBot()) as h:
        yield h


def assert_private_error(reply: Any, text: str) -> None:
    assert reply.content == text
    assert reply.flags & EPHEMERAL
    assert reply.allowed_mentions == {"parse": []}


async def test_a_command_bug_gets_the_generic_message_and_a_traceback(harness, caplog):
    with caplog.at_level(logging.ERROR, logger="bot.errors"):
        reply = await harness.slash("crash")
    assert_private_error(reply, GENERIC_FAILURE)
    (record,) = caplog.records
    assert record.getMessage() == "unhandled error in crash"
    assert record.exc_info is not None


async def test_a_user_error_is_shown_as_is_and_logs_nothing(harness, caplog):
    with caplog.at_level(logging.DEBUG, logger="bot.errors"):
        reply = await harness.slash("refuse")
    assert_private_error(reply, "You can't do that. Nothing was changed.")
    assert not caplog.records


async def test_a_transformers_user_error_reaches_the_member(harness):
    reply = await harness.slash("word", word="spoiler")
    assert_private_error(reply, "No 7-letter words. Nothing was changed.")


async def test_after_a_deferral_the_error_is_a_followup(harness):
    reply = await harness.slash("late")
    assert reply.deferred
    assert_private_error(reply, "Too late.")


async def test_view_errors_are_routed(harness, caplog):
    sent = await harness.slash("buttons")
    with caplog.at_level(logging.ERROR, logger="bot.errors"):
        crashed = await harness.click("test:break", message=sent.message)
    assert_private_error(crashed, GENERIC_FAILURE)
    assert caplog.records
    refused = await harness.click("test:refuse", message=sent.message)
    assert_private_error(refused, "Not now.")


async def test_modal_errors_are_routed(harness):
    opened = await harness.slash("form")
    submitted = await harness.submit_modal(opened, {"note": "hi"})
    assert_private_error(submitted, "A note can't say 'hi'.")


async def test_a_persistent_buttons_errors_are_routed(harness):
    message = harness.bot_message(view=discord.ui.View().add_item(LockedButton(7)))
    clicked = await harness.click("test:locked:7", message=message)
    assert_private_error(clicked, GENERIC_FAILURE)
