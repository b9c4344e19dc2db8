"""/vote, /unvote, /myvotes and /rankings: community votes, critic rankings, charts."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.chart import ranking_chart
from bot.content.models import Episode, Show
from bot.errors import UserError
from bot.ranking import MAX_SCORE, MIN_SCORE, Order, Scope, Source, Standing, community_standing
from bot.ranking_choice import RankingRefused, rank_show, show_tallies
from bot.ranking_messages import (
    CHART_FILENAME,
    VoteLine,
    my_votes_pages,
    no_ranking_message,
    ranking_pages,
    ranking_subtitle,
    ranking_title,
    refusal_text,
    score_range_text,
    source_reason_text,
    too_new_text,
    unknown_join_date_text,
    unreleased_text,
    unvote_message,
    vote_message,
)
from bot.spoilers.policy import TitleRule
from bot.ui import EPISODE_HELP, EpisodeArg, OneOf, ShowArg, send_messages, send_paged, titles_here

if TYPE_CHECKING:
    from bot.client import EmbargoBot


def guild_id_of(interaction: discord.Interaction) -> int:
    # The commands are registered guild-only; a stale client could still send one from a DM.
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage
    return interaction.guild_id


def check_member_age(user: discord.abc.User, min_member_days: int, now: datetime) -> None:
    """Refuse (nothing stored) a member who joined the server too recently to vote."""
    if min_member_days <= 0:
        return
    joined_at = getattr(user, "joined_at", None)
    if joined_at is None:
        raise UserError(unknown_join_date_text())
    eligible_at = joined_at + timedelta(days=min_member_days)
    if now < eligible_at:
        raise UserError(too_new_text(min_member_days, eligible_at))


class Rankings(commands.Cog):
    def __init__(self, bot: EmbargoBot) -> None:
        self.bot = bot

    def _show_of(self, episode: Episode) -> Show:
        show = self.bot.catalogue.shows_by_slug.get(episode.show_slug)
        if show is None:  # an Episode always comes from a loaded show
            raise UserError("That episode's show is no longer in the catalogue.")
        return show

    async def _standing(self, episode: Episode, guild_id: int, min_votes: int) -> Standing | None:
        """The episode's place in its show's community ranking in this server: only its own
        row is worked out, which is all the /vote and /unvote replies show."""
        show = self._show_of(episode)
        tallies, prior = await show_tallies(self.bot.storage, show, guild_id)
        return community_standing(
            episode.key, show.episodes, tallies, min_votes=min_votes, prior=prior
        )

    # -- /vote, /unvote -----------------------------------------------------------------------

    @app_commands.command(
        name="vote", description="Score an episode from 1 to 10. Voting again changes your score."
    )
    @app_commands.describe(episode=EPISODE_HELP, score="1 (worst) to 10 (best)")
    @app_commands.guild_only()
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def vote(
        self,
        interaction: discord.Interaction,
        episode: EpisodeArg,
        score: app_commands.Range[int, MIN_SCORE, MAX_SCORE],
    ) -> None:
        guild_id = guild_id_of(interaction)
        if not MIN_SCORE <= score <= MAX_SCORE:  # Discord enforces the range; so do we.
            raise UserError(score_range_text(MIN_SCORE, MAX_SCORE))
        now = self.bot.clock()
        settings = await self.bot.storage.get_guild_settings(guild_id)
        titles = TitleRule(settings.spoilers, now)
        if episode.release_at > now:
            raise UserError(unreleased_text(episode, titles))
        check_member_age(interaction.user, settings.min_member_days, now)
        # Returns only once the vote and its totals are committed.
        change = await self.bot.storage.cast_vote(
            guild_id, interaction.user.id, episode.key, score, now=now
        )
        standing = await self._standing(episode, guild_id, settings.min_votes)
        message = vote_message(episode, change.old_score, score, standing, titles)
        await send_messages(interaction, [message])

    @app_commands.command(name="unvote", description="Withdraw your vote on an episode.")
    @app_commands.describe(episode=EPISODE_HELP)
    @app_commands.guild_only()
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def unvote(
        self,
        interaction: discord.Interaction,
        episode: EpisodeArg,
    ) -> None:
        guild_id = guild_id_of(interaction)
        change = await self.bot.storage.withdraw_vote(guild_id, interaction.user.id, episode.key)
        settings = await self.bot.storage.get_guild_settings(guild_id)
        titles = TitleRule(settings.spoilers, self.bot.clock())
        standing = await self._standing(episode, guild_id, settings.min_votes)
        message = unvote_message(episode, change.old_score, standing, titles)
        await send_messages(interaction, [message])

    # -- /myvotes -------------------------------------------------------------------------------

    @app_commands.command(name="myvotes", description="Your own votes in this server.")
    @app_commands.describe(show="Optional: only this show")
    @app_commands.guild_only()
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def myvotes(
        self,
        interaction: discord.Interaction,
        show: ShowArg | None = None,
    ) -> None:
        guild_id = guild_id_of(interaction)
        votes = await self.bot.storage.member_votes(
            guild_id, interaction.user.id, show.slug if show is not None else None
        )
        by_key = self.bot.catalogue.by_key
        lines = [
            VoteLine(vote.episode_key, vote.score, vote.voted_at, by_key.get(vote.episode_key))
            for vote in votes
        ]
        titles = await titles_here(self.bot, guild_id)
        await send_paged(interaction, my_votes_pages(lines, show, titles))

    # -- /rankings ------------------------------------------------------------------------------

    @app_commands.command(
        name="rankings", description="A show's episodes ranked by this server's votes or a critic."
    )
    @app_commands.describe(
        show="The show",
        season="Optional: only this season",
        source="community (votes) or critic; by default community once there are enough votes",
        order="best-first (default) or worst-first",
        scope="server (default): this server's votes · global: every server's votes pooled",
        chart="Also attach the ranking as a bar chart image",
        spoiler_free="Only the episodes you've marked watched (/watched)",
    )
    @app_commands.rename(spoiler_free="spoiler-free")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def rankings(
        self,
        interaction: discord.Interaction,
        show: ShowArg,
        season: app_commands.Range[int, 0, 999] | None = None,
        source: app_commands.Transform[str, OneOf(*Source)] | None = None,
        order: app_commands.Transform[str, OneOf(*Order)] = Order.BEST_FIRST.value,
        scope: app_commands.Transform[str, OneOf(*Scope)] | None = None,
        chart: bool = False,
        spoiler_free: bool = False,
    ) -> None:
        settings = await self.bot.storage.get_guild_settings(interaction.guild_id)
        now = self.bot.clock()
        # The titles shown follow the rules where the ranking is shown, whatever its scope.
        titles = TitleRule(settings.spoilers, now)
        watched = await self.bot.storage.watched_keys(interaction.user.id) if spoiler_free else None
        try:
            answer = await rank_show(
                self.bot.storage,
                show=show,
                season=season,
                requested_source=Source(source) if source else None,
                order=Order(order),
                requested_scope=Scope(scope) if scope else None,
                guild_id=interaction.guild_id,
                min_votes=settings.min_votes,
                now=now,
                watched=watched,
            )
        except RankingRefused as refused:
            raise UserError(refusal_text(refused)) from None
        ranking, request = answer.ranking, answer.request
        if ranking is None or not ranking.rows:
            await send_messages(interaction, [no_ranking_message(answer)])
            return
        reason = source_reason_text(answer.choice)
        pages = ranking_pages(
            request,
            ranking,
            reason,
            titles,
            critic_author=answer.critic_author,
            hidden=answer.hidden,
        )
        file = None
        if chart:
            # Pillow releases the GIL while it encodes; keep the event loop free meanwhile.
            png = await asyncio.to_thread(
                ranking_chart,
                ranking,
                request.order,
                ranking_title(request, ranking.source),
                ranking_subtitle(request, ranking),
                titles,
            )
            file = discord.File(io.BytesIO(png), filename=CHART_FILENAME)
        await send_paged(interaction, pages, file=file)


async def setup(bot: EmbargoBot) -> None:
    await bot.add_cog(Rankings(bot))
