"""/review and /ending, and the "Ending explained" reveal button."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.content.models import Episode
from bot.errors import ErrorRoutedView, errors_reported
from bot.messages import OutgoingMessage, ending_messages, reveal_privately, review_message
from bot.spoilers.policy import Delivery
from bot.ui import (
    EPISODE_HELP,
    EpisodeArg,
    button_episode,
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
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"embargo:ending:(?P<key>[a-z0-9-]+/s\d+e\d+)",
):
    """Persistent across restarts: the episode key lives in the custom id, so a button on a
    week-old /review still works."""

    def __init__(self, episode_key: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Ending explained",
                emoji="\N{LOCK}",
                style=discord.ButtonStyle.secondary,
                custom_id=f"embargo:ending:{episode_key}",
            )
        )
        self.episode_key = episode_key

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> EndingButton:
        return cls(match["key"])

    async def callback(self, interaction: discord.Interaction) -> None:
        # discord.py types an Item callback's client with a TypeVar no override can narrow.
        bot: EmbargoBot = interaction.client  # type: ignore[assignment]
        # discord.py only logs a dynamic item's errors; the clicker must always get an answer.
        async with errors_reported(interaction):
            episode = button_episode(bot, self.episode_key)
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
