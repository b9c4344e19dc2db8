"""/vote, /unvote, /myvotes and /rankings: community votes, critic rankings, charts."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.chart import ranking_chart
from bot.content.models import CriticRanking, Episode, Show
from bot.errors import UserError
from bot.messages import escape_inline
from bot.ranking import (
    MAX_SCORE,
    MIN_SCORE,
    Order,
    Scope,
    Source,
    Standing,
    Tally,
    choose_source,
    combined,
    community_ranking,
    community_standing,
    critic_ranking,
    needs_critic,
)
from bot.ranking_messages import (
    CHART_FILENAME,
    RankingRequest,
    my_votes_pages,
    no_ranking_message,
    ranking_pages,
    ranking_subtitle,
    ranking_title,
    score_range_text,
    too_new_text,
    unknown_join_date_text,
    unreleased_text,
    unvote_message,
    vote_message,
)
from bot.ui import EPISODE_HELP, EpisodeArg, OneOf, ShowArg, send_messages, send_paged

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


def _season_episodes(show: Show, season: int | None, now: datetime) -> list[Episode]:
    if season is not None and all(e.season != season for e in show.episodes):
        seasons = sorted({e.season for e in show.episodes})
        listed = ", ".join(str(s) for s in seasons) or "none"
        raise UserError(f"{escape_inline(show.title)} has no season {season}. Seasons: {listed}.")
    # Unreleased episodes can't be voted on and aren't ranked by critics yet.
    return [
        e for e in show.episodes if (season is None or e.season == season) and e.release_at <= now
    ]


class Rankings(commands.Cog):
    def __init__(self, bot: EmbargoBot) -> None:
        self.bot = bot

    def _show_of(self, episode: Episode) -> Show:
        show = self.bot.catalogue.shows_by_slug.get(episode.show_slug)
        if show is None:  # an Episode always comes from a loaded show
            raise UserError("That episode's show is no longer in the catalogue.")
        return show

    async def _tallies(self, show: Show, guild_id: int | None) -> tuple[dict[str, Tally], Tally]:
        """The show's vote tallies in one server (or pooled for ``None``), and the prior: their
        sum over the show's episodes (C, the show's mean in scope, is its mean)."""
        tallies = await self.bot.storage.vote_tallies(show.slug, guild_id)
        prior = combined(t for e in show.episodes if (t := tallies.get(e.key)) is not None)
        return tallies, prior

    async def _standing(self, episode: Episode, guild_id: int, min_votes: int) -> Standing | None:
        """The episode's place in its show's community ranking in this server: only its own
        row is worked out, which is all the /vote and /unvote replies show."""
        show = self._show_of(episode)
        tallies, prior = await self._tallies(show, guild_id)
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
        if episode.release_at > now:
            raise UserError(unreleased_text(episode))
        settings = await self.bot.storage.get_guild_settings(guild_id)
        check_member_age(interaction.user, settings.min_member_days, now)
        # Returns only once the vote and its totals are committed.
        change = await self.bot.storage.cast_vote(
            guild_id, interaction.user.id, episode.key, score, now=now
        )
        standing = await self._standing(episode, guild_id, settings.min_votes)
        await send_messages(interaction, [vote_message(episode, change, standing)])

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
        standing = await self._standing(episode, guild_id, settings.min_votes)
        await send_messages(interaction, [unvote_message(episode, change, standing)])

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
        paired = [(vote, by_key.get(vote.episode_key)) for vote in votes]
        await send_paged(interaction, my_votes_pages(paired, show))

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
    )
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
    ) -> None:
        found = show
        guild_id = interaction.guild_id
        if guild_id is None and scope == "server":
            raise UserError("There's no server in direct messages: use `scope: global` here.")
        # Outside a server only the pooled votes exist.
        chosen_scope = Scope(scope) if scope else (Scope.SERVER if guild_id else Scope.GLOBAL)
        request = RankingRequest(show=found, season=season, order=Order(order), scope=chosen_scope)
        episodes = _season_episodes(found, season, self.bot.clock())
        settings = await self.bot.storage.get_guild_settings(guild_id)
        requested = Source(source) if source else None
        tallies: Mapping[str, Tally] = {}
        prior = Tally()
        if requested is not Source.CRITIC:  # the critic's ranking, as asked, counts no votes
            votes_guild = guild_id if chosen_scope is Scope.SERVER else None
            tallies, prior = await self._tallies(found, votes_guild)
        votes = sum(tallies[e.key].count for e in episodes if e.key in tallies)
        # Read only when it is asked for or the default choice depends on it existing.
        critic: CriticRanking | None = None
        if needs_critic(requested, votes=votes, min_votes=settings.min_votes):
            critic = await self.bot.storage.get_critic_ranking(found.slug)
        choice = choose_source(
            requested,
            votes=votes,
            min_votes=settings.min_votes,
            has_critic=critic is not None,
            scope=chosen_scope,
        )
        if choice.source is None:
            await send_messages(interaction, [no_ranking_message(request, choice.reason)])
            return
        if choice.source is Source.CRITIC:
            if critic is None:
                raise UserError(
                    f"There's no critic ranking of {escape_inline(found.title)} yet. "
                    "Try `source: community`."
                )
            ranking = critic_ranking(episodes, critic)
            author: str | None = critic.author
        else:
            ranking = community_ranking(
                episodes, tallies, min_votes=settings.min_votes, prior=prior
            )
            author = None
        if not ranking.rows:
            if ranking.source is Source.CRITIC:
                why = "The critic's ranking doesn't include any of these episodes."
            elif chosen_scope is Scope.SERVER:
                why = "None of these episodes has a vote in this server."
            else:
                why = "None of these episodes has a vote yet."
            await send_messages(interaction, [no_ranking_message(request, why)])
            return
        pages = ranking_pages(request, ranking, choice.reason, critic_author=author)
        file = None
        if chart:
            # Pillow releases the GIL while it encodes; keep the event loop free meanwhile.
            png = await asyncio.to_thread(
                ranking_chart,
                ranking,
                request.order,
                ranking_title(request, ranking.source),
                ranking_subtitle(request, ranking),
            )
            file = discord.File(io.BytesIO(png), filename=CHART_FILENAME)
        await send_paged(interaction, pages, file=file)


async def setup(bot: EmbargoBot) -> None:
    await bot.add_cog(Rankings(bot))
