"""/help and /about: what Embargo does, what a member can run here, and what it keeps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.config import embargo_version
from bot.help_messages import about_message, help_message
from bot.ui import commands_for, send_messages

if TYPE_CHECKING:
    from bot.client import EmbargoBot


class Help(commands.Cog):
    def __init__(self, bot: EmbargoBot) -> None:
        self.bot = bot
        self.version = embargo_version()

    @app_commands.command(
        name="help", description="What Embargo does, the commands you can use here, the rules."
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def help(self, interaction: discord.Interaction) -> None:
        settings = await self.bot.storage.get_guild_settings(interaction.guild_id)
        message = help_message(
            commands_for(self.bot.tree, interaction),
            settings.spoilers,
            {show.slug: show.title for show in self.bot.catalogue.shows},
            in_guild=interaction.guild_id is not None,
            version=self.version,
        )
        await send_messages(interaction, [message])

    @app_commands.command(
        name="about", description="Embargo's version, what it stores and for how long, its source."
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def about(self, interaction: discord.Interaction) -> None:
        message = about_message(version=self.version, source_url=self.bot.settings.source_url)
        await send_messages(interaction, [message])


async def setup(bot: EmbargoBot) -> None:
    await bot.add_cog(Help(bot))
