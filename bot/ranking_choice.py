"""What /rankings shows: the episodes in range, which ranking (community or critic) and why, and
the ranking itself.

Plain values in and out, no Discord: storage is reached only through the two reads a ranking
may need, each made only when the answer depends on it. The sentences that explain a choice
are built by ``bot.ranking_messages``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bot.content.models import CriticRanking, Episode, Show
from bot.ranking import (
    Order,
    Ranking,
    Scope,
    Source,
    Tally,
    combined,
    community_ranking,
    critic_ranking,
)


class RankingReads(Protocol):
    """The storage reads a ranking may need."""

    async def vote_tallies(self, show_slug: str, guild_id: int | None) -> dict[str, Tally]: ...

    async def get_critic_ranking(self, show_slug: str) -> CriticRanking | None: ...


@dataclass(frozen=True, slots=True)
class RankingRequest:
    """What was asked, for the headings: the show, an optional season, order and scope."""

    show: Show
    season: int | None
    order: Order
    scope: Scope


class SourceReason(StrEnum):
    ASKED = "asked"  # the member chose the source
    ENOUGH_VOTES = "enough-votes"  # community: at least m votes in scope
    TOO_FEW_VOTES = "too-few-votes"  # critic: fewer than m votes
    PROVISIONAL = "provisional"  # community: fewer than m votes, and no critic ranking
    NOTHING = "nothing"  # no votes and no critic ranking


@dataclass(frozen=True, slots=True)
class SourceChoice:
    source: Source | None  # None: there is nothing to rank with yet
    reason: SourceReason
    votes: int  # votes in scope on the episodes being ranked
    min_votes: int
    scope: Scope


def _community_preferred(votes: int, min_votes: int) -> bool:
    return votes >= min_votes and votes > 0


def needs_critic(requested: Source | None, *, votes: int, min_votes: int) -> bool:
    """Whether the critic's ranking must be read: it was asked for, or the default choice
    depends on whether there is one (too few votes). Otherwise ``choose_source`` gives the
    same answer whatever ``has_critic`` says, and the critic's list is not needed."""
    if requested is None:
        return not _community_preferred(votes, min_votes)
    return requested is Source.CRITIC


def choose_source(
    requested: Source | None,
    *,
    votes: int,
    min_votes: int,
    has_critic: bool,
    scope: Scope,
) -> SourceChoice:
    """Which ranking to show and why.

    By default the community ranking is preferred once there are at least ``m`` votes on the
    episodes being ranked; below that the critic's ranking is shown when there is one.
    """

    def choice(source: Source | None, reason: SourceReason) -> SourceChoice:
        return SourceChoice(source, reason, votes, min_votes, scope)

    if requested is not None:
        return choice(requested, SourceReason.ASKED)
    if _community_preferred(votes, min_votes):
        return choice(Source.COMMUNITY, SourceReason.ENOUGH_VOTES)
    if has_critic:
        return choice(Source.CRITIC, SourceReason.TOO_FEW_VOTES)
    if votes > 0:
        return choice(Source.COMMUNITY, SourceReason.PROVISIONAL)
    return choice(None, SourceReason.NOTHING)


class Refusal(StrEnum):
    """Asked for something that can't be ranked; nothing is shown."""

    NO_SERVER = "no-server"  # scope: server, in direct messages
    NO_SUCH_SEASON = "no-such-season"
    NO_CRITIC = "no-critic"  # source: critic for a show without a critic ranking


class RankingRefused(Exception):
    def __init__(self, refusal: Refusal, request: RankingRequest) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal
        self.request = request


@dataclass(frozen=True, slots=True)
class RankingAnswer:
    request: RankingRequest
    choice: SourceChoice
    # None when there is nothing to rank with; may have no rows (nobody voted on the
    # episodes in range, or the critic ranked none of them).
    ranking: Ranking | None
    critic_author: str | None = None
    # spoiler-free: released episodes in range the member hasn't watched, left out of the rows
    hidden: int = 0


def episodes_in_range(show: Show, season: int | None, now: datetime) -> list[Episode]:
    """The released episodes of ``show`` (or of one season): unreleased episodes can't be
    voted on and aren't ranked by critics yet."""
    return [
        e for e in show.episodes if (season is None or e.season == season) and e.release_at <= now
    ]


async def show_tallies(
    reads: RankingReads, show: Show, guild_id: int | None
) -> tuple[dict[str, Tally], Tally]:
    """The show's vote tallies in one server (or pooled for ``None``), and the prior: their
    sum over the show's episodes (C, the show's mean in scope, is its mean)."""
    tallies = await reads.vote_tallies(show.slug, guild_id)
    prior = combined(t for e in show.episodes if (t := tallies.get(e.key)) is not None)
    return tallies, prior


async def rank_show(
    reads: RankingReads,
    *,
    show: Show,
    season: int | None,
    requested_source: Source | None,
    order: Order,
    requested_scope: Scope | None,
    guild_id: int | None,
    min_votes: int,
    now: datetime,
    watched: AbstractSet[str] | None = None,
) -> RankingAnswer:
    """Answer /rankings: raises ``RankingRefused`` for a request that can't be met.

    ``watched`` (spoiler-free): only the episodes the member marked watched get rows. Which
    ranking is shown, and every score, are the same as for anyone else: the votes on hidden
    episodes still count towards the show's average and the source choice."""
    if guild_id is None and requested_scope is Scope.SERVER:
        raise RankingRefused(Refusal.NO_SERVER, RankingRequest(show, season, order, Scope.SERVER))
    # Outside a server only the pooled votes exist.
    scope = requested_scope or (Scope.SERVER if guild_id is not None else Scope.GLOBAL)
    request = RankingRequest(show=show, season=season, order=order, scope=scope)
    if season is not None and all(e.season != season for e in show.episodes):
        raise RankingRefused(Refusal.NO_SUCH_SEASON, request)
    episodes = episodes_in_range(show, season, now)
    tallies: Mapping[str, Tally] = {}
    prior = Tally()
    if requested_source is not Source.CRITIC:  # the critic's ranking, as asked, counts no votes
        votes_guild = guild_id if scope is Scope.SERVER else None
        tallies, prior = await show_tallies(reads, show, votes_guild)
    votes = sum(tallies[e.key].count for e in episodes if e.key in tallies)
    critic: CriticRanking | None = None
    if needs_critic(requested_source, votes=votes, min_votes=min_votes):
        critic = await reads.get_critic_ranking(show.slug)
    choice = choose_source(
        requested_source,
        votes=votes,
        min_votes=min_votes,
        has_critic=critic is not None,
        scope=scope,
    )
    shown = episodes if watched is None else [e for e in episodes if e.key in watched]
    hidden = len(episodes) - len(shown)
    if choice.source is None:
        return RankingAnswer(request, choice, None, hidden=hidden)
    if choice.source is Source.CRITIC:
        if critic is None:
            raise RankingRefused(Refusal.NO_CRITIC, request)
        ranking = critic_ranking(shown, critic)
        return RankingAnswer(request, choice, ranking, critic.author, hidden=hidden)
    ranking = community_ranking(shown, tallies, min_votes=min_votes, prior=prior)
    return RankingAnswer(request, choice, ranking, hidden=hidden)


def seasons_of(show: Show) -> Sequence[int]:
    return sorted({e.season for e in show.episodes})
