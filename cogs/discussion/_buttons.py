"""The buttons on a release post: the episode's review (privately, to whoever clicks), the
existing "Ending explained" reveal, and "I've watched it" (``/watched`` for the clicker). All are
persistent: the episode key is in the custom id, so a post from last month still answers after
any number of restarts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.content.models import Episode
from bot.errors import ErrorRoutedView
from bot.messages import reveal_privately, review_message
from bot.ui import EpisodeButton, send_messages, titles_here
from cogs.progress import WatchedButton
from cogs.reviews import EndingButton

if TYPE_CHECKING:
    from bot.client import EmbargoBot


class ReviewButton(
    EpisodeButton,
    action="review",
    label="Review",
    emoji="\N{MEMO}",
    style=discord.ButtonStyle.primary,
):
    async def clicked(
        self, bot: EmbargoBot, interaction: discord.Interaction, episode: Episode
    ) -> None:
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
