"""A small, ordinary discord.py bot used to validate the Discord stand-in.

It knows nothing about the stand-in: it reads DISCORD_TOKEN and DATABASE_URL like any bot and is
pointed at the stand-in from outside (tests/e2e/sitecustomize).
Run: ``python -m tests.e2e.demo_bot``.
It covers the interaction shapes the stand-in must get right: a plain reply, an ephemeral reply
with allowed mentions, a "thinking" deferral with followups, a button that edits its message, a
select menu, a modal, an attachment, autocomplete, a channel option, a subcommand group, a
permission-gated command, a channel message, and state kept in SQLite across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import os
import sqlite3

import discord
from discord import app_commands
from discord.ext import commands

log = logging.getLogger("demo_bot")

FRUITS = ["apple", "apricot", "banana", "blackberry", "cherry", "grape", "lemon", "lime"]


def database_path() -> str:
    url = os.environ["DATABASE_URL"]
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise SystemExit(f"DATABASE_URL must start with {prefix}")
    return url[len(prefix) :]


class CounterView(discord.ui.View):
    """A persistent view: its button keeps working after a restart."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="+1", style=discord.ButtonStyle.primary, custom_id="demo:counter:inc")
    async def increment(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        content = interaction.message.content if interaction.message else "Count: 0"
        count = int(content.rsplit(" ", 1)[-1]) + 1
        await interaction.response.edit_message(content=f"Count: {count}", view=self)


class FlavourSelect(discord.ui.View):
    @discord.ui.select(
        custom_id="demo:flavour",
        options=[discord.SelectOption(label=f, value=f) for f in ("vanilla", "mint", "mango")],
    )
    async def choose(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.send_message(f"You chose {select.values[0]}.", ephemeral=True)


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    text: discord.ui.TextInput = discord.ui.TextInput(label="Your feedback", custom_id="text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Thanks: {self.text.value}", ephemeral=True)


class DemoBot(commands.Bot):
    def __init__(self) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.default())
        self.db = sqlite3.connect(database_path())
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT)")

    def kv_get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def kv_set(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))
        self.db.commit()

    async def setup_hook(self) -> None:
        add_commands(self)
        self.add_view(CounterView())
        # Sync only when the command payloads changed, as a production bot should.
        payload = [c.to_dict(self.tree) for c in self.tree.get_commands()]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        if self.kv_get("commands_hash") != digest:
            synced = await self.tree.sync()
            self.kv_set("commands_hash", digest)
            log.info("synced %d commands", len(synced))
        else:
            log.info("commands unchanged, not syncing")

    async def close(self) -> None:
        await super().close()
        self.db.close()


def add_commands(bot: DemoBot) -> None:
    tree = bot.tree

    @tree.command(description="Answer with pong")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    @tree.command(description="Repeat text privately, pinging nobody")
    @app_commands.describe(text="What to repeat")
    async def echo(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @tree.command(description="Think, then answer with two followups")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await asyncio.sleep(0.2)
        await interaction.followup.send("done thinking", ephemeral=True)
        await interaction.followup.send("and one more thing")

    @tree.command(description="Show a counter with a button")
    async def counter(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Count: 0", view=CounterView())

    @tree.command(description="Pick a flavour from a menu")
    async def flavour(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Pick one:", view=FlavourSelect())

    @tree.command(description="Open a feedback form")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(FeedbackModal())

    @tree.command(description="Upload a small report file")
    async def report(interaction: discord.Interaction) -> None:
        data = io.BytesIO(f"report for {interaction.user.name}\n".encode())
        await interaction.response.send_message(
            "Here is your report", file=discord.File(data, filename="report.txt")
        )

    @tree.command(description="Count the bytes of a file")
    async def measure(interaction: discord.Interaction, file: discord.Attachment) -> None:
        data = await file.read()
        await interaction.response.send_message(f"{file.filename}: {len(data)} bytes")

    @tree.command(description="Pick a fruit")
    async def fruit(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(f"You picked {name}")

    @fruit.autocomplete("name")
    async def fruit_autocomplete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=f, value=f) for f in FRUITS if f.startswith(current)]

    @tree.command(description="Describe a channel")
    async def where(interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        await interaction.response.send_message(f"{channel.name} ({channel.id})")

    @tree.command(description="Post a notice to a channel")
    async def announce(
        interaction: discord.Interaction, channel: discord.TextChannel, text: str
    ) -> None:
        try:
            await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
        except discord.Forbidden:
            await interaction.response.send_message("I can't post there.", ephemeral=True)
            return
        await interaction.response.send_message("Posted.", ephemeral=True)

    @tree.command(description="Wait, then answer (too late if over Discord's 3 s)")
    async def sleepy(
        interaction: discord.Interaction, seconds: app_commands.Range[float, 0, 10]
    ) -> None:
        await asyncio.sleep(seconds)
        try:
            await interaction.response.send_message("awake")
        except discord.NotFound:
            log.warning("too late to answer interaction %s", interaction.id)

    @tree.command(description="Count invocations, kept across restarts")
    async def tally(interaction: discord.Interaction) -> None:
        count = int(bot.kv_get("tally") or 0) + 1
        bot.kv_set("tally", str(count))
        await interaction.response.send_message(f"tally {count}")

    @tree.command(description="Server settings (managers only)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def settings(interaction: discord.Interaction) -> None:
        # default_permissions only hides the command: check on the server side too.
        if not interaction.permissions.manage_guild:
            await interaction.response.send_message("Managers only.", ephemeral=True)
            return
        await interaction.response.send_message("Settings: all default.", ephemeral=True)

    info = app_commands.Group(name="info", description="Information")
    about = app_commands.Group(name="about", description="About things", parent=info)

    @about.command(name="user", description="About a user")
    async def about_user(interaction: discord.Interaction, who: discord.Member) -> None:
        await interaction.response.send_message(f"{who.display_name} has {len(who.roles)} roles")

    tree.add_command(info)


async def main() -> None:
    discord.utils.setup_logging(level=logging.INFO)
    async with DemoBot() as bot:
        await bot.start(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
