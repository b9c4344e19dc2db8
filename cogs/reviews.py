"""/review and /ending, and the "Ending explained" reveal button."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.content.models import Episode
from bot.errors import ErrorRoutedView
from bot.messages import OutgoingMessage, ending_messages, reveal_privately, review_message
from bot.spoilers.policy import Delivery
from bot.ui import (
    EPISODE_HELP,
    EpisodeArg,
    EpisodeButton,
    decide_here,
    send_messages,
    titles_here,
)

if TYPE_CHECKING:
    from bot.client import EmbargoBot


async def ending_for(
    bot: EmbargoBot, interaction: discord.Interaction, episode: Episode
) -> list[OutgoingMessage]:
    decision = await decide_here(bot, interaction, episode, for_asker=True)
    titles = await titles_here(bot, interaction.guild_id)
    # Nothing about an unreleased episode's ending is read, not even whether it has one.
    released = decision.delivery is not Delivery.UNRELEASED
    review = await bot.storage.get_review(episode.key) if released else None
    return ending_messages(episode, review, decision, titles)


class EndingButton(
    EpisodeButton,
    action="ending",
    label="Ending explained",
    emoji="\N{LOCK}",
    style=discord.ButtonStyle.secondary,
):
    """On a /review and a release post; still works on a week-old one."""

    async def clicked(
        self, bot: EmbargoBot, interaction: discord.Interaction, episode: Episode
    ) -> None:
        # Whoever clicks gets the ending privately, under the same rules as /ending.
        await send_messages(
            interaction, reveal_privately(await ending_for(bot, interaction, episode))
        )


def ending_view(episode_key: str) -> discord.ui.View:
    view = ErrorRoutedView(timeout=None)
    view.add_item(EndingButton(episode_key))
    return view


class Reviews(commands.Cog):
    def __init__(self, bot: EmbargoBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(EndingButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(EndingButton)

    @app_commands.command(
        name="review", description="An episode's spoiler-free review: verdict, rating, write-up."
    )
    @app_commands.describe(episode=EPISODE_HELP)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def review(
        self,
        interaction: discord.Interaction,
        episode: EpisodeArg,
    ) -> None:
        review = await self.bot.storage.get_review(episode.key)
        titles = await titles_here(self.bot, interaction.guild_id)
        view = ending_view(episode.key) if review is not None and review.ending else None
        await send_messages(interaction, [review_message(episode, review, titles)], view=view)

    @app_commands.command(
        name="ending",
        description="The ending explained, hidden as this server's spoiler rules say.",
    )
    @app_commands.describe(episode=EPISODE_HELP)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def ending(
        self,
        interaction: discord.Interaction,
        episode: EpisodeArg,
    ) -> None:
        await send_messages(interaction, await ending_for(self.bot, interaction, episode))


async def setup(bot: EmbargoBot) -> None:
    await bot.add_cog(Reviews(bot))
