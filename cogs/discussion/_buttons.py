"""The buttons on a release post: the episode's review (privately, to whoever clicks), the
existing "Ending explained" reveal, and "I've watched it" (``/watched`` for the clicker). All are
persistent: the episode key is in the custom id, so a post from last month still answers after
any number of restarts."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.errors import ErrorRoutedView, errors_reported
from bot.messages import reveal_privately, review_message
from bot.ui import button_episode, send_messages, titles_here
from cogs.progress import WatchedButton
from cogs.reviews import EndingButton

if TYPE_CHECKING:
    from bot.client import EmbargoBot


class ReviewButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"embargo:review:(?P<key>[a-z0-9-]+/s\d+e\d+)",
):
    def __init__(self, episode_key: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Review",
                emoji="\N{MEMO}",
                style=discord.ButtonStyle.primary,
                custom_id=f"embargo:review:{episode_key}",
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
    ) -> ReviewButton:
        return cls(match["key"])

    async def callback(self, interaction: discord.Interaction) -> None:
        # discord.py types an Item callback's client with a TypeVar no override can narrow.
        bot: EmbargoBot = interaction.client  # type: ignore[assignment]
        async with errors_reported(interaction):
            episode = button_episode(bot, self.episode_key)
            review = await bot.storage.get_review(episode.key)
            titles = await titles_here(bot, interaction.guild_id)
            # The spoiler-free review, seen by the clicker alone.
            reply = review_message(episode, review, titles)
            await send_messages(interaction, reveal_privately([reply]))


def release_view(episode_key: str) -> discord.ui.View:
    """The release post's buttons: Review, Ending explained and I've watched it. All are always
    there: a review often comes days after the release, and a click says when there is none yet."""
    view = ErrorRoutedView(timeout=None)
    view.add_item(ReviewButton(episode_key))
    view.add_item(EndingButton(episode_key))
    view.add_item(WatchedButton(episode_key))
    return view
