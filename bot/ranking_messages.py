"""What /vote, /unvote, /myvotes and /rankings show, built as plain data.

Titles, codes and numbers only: nothing here ever reads a review, so no review or ending text
can reach a ranking. Content-file text (titles, a critic's name) is escaped as literal text, and
a title that spoils is shown only as the request's ``TitleRule`` allows (``episode_title``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple, overload

from bot.content.models import Episode, Show
from bot.messages import (
    EMBARGO_COLOUR,
    EmbedData,
    OutgoingMessage,
    Surface,
    episode_heading,
    episode_title,
    timestamp,
)
from bot.ranking import (
    CommunityRow,
    CriticRow,
    Order,
    Ranking,
    Scope,
    Source,
    Standing,
    page,
    page_count,
)
from bot.ranking_choice import (
    RankingAnswer,
    RankingRefused,
    RankingRequest,
    Refusal,
    SourceChoice,
    SourceReason,
    seasons_of,
)
from bot.spoilers.policy import TitleRule
from bot.spoilers.render import EMBED_FOOTER_LIMIT, EMBED_TITLE_LIMIT, escape_inline, truncate

CHART_FILENAME = "ranking.png"


def _votes(count: int) -> str:
    return f"{count} vote{'' if count == 1 else 's'}"


def _where(scope: Scope) -> str:
    return "in this server" if scope is Scope.SERVER else "across all servers"


def _score(value: float) -> str:
    return f"{value:.2f}"


# -- /vote and /unvote -------------------------------------------------------------------------


def unreleased_text(episode: Episode, titles: TitleRule) -> str:
    release = episode.release_at
    return (
        f"{episode_heading(episode, titles)} isn't out yet: it's released {timestamp(release)} "
        f"({timestamp(release, 'R')}). Voting opens then."
    )


def too_new_text(min_member_days: int, eligible_at: datetime) -> str:
    return (
        f"Members can vote once they've been in this server for {min_member_days} "
        f"day{'' if min_member_days == 1 else 's'}. You can vote from {timestamp(eligible_at)} "
        f"({timestamp(eligible_at, 'R')}). Nothing was saved."
    )


def unknown_join_date_text() -> str:
    return (
        "Discord didn't say when you joined this server, and it needs a minimum membership "
        "time to vote. Try again in a moment. Nothing was saved."
    )


def score_range_text(low: int, high: int) -> str:
    return f"A score is a whole number from {low} to {high}. Nothing was saved."


def _mean(row: CommunityRow | Standing) -> float:
    # The same float as float(row.tally.mean) (integer division is correctly rounded),
    # without building a Fraction per row.
    return row.tally.total / row.tally.count


def _standing_line(standing: Standing | None, show_title: str) -> str:
    if standing is None:
        return "It has no votes in this server now."
    return (
        f"Community standing here: **#{standing.rank} of {standing.ranked}** ranked "
        f"{escape_inline(show_title)} episodes, weighted score "
        f"**{_score(float(standing.score))}** from {_votes(standing.tally.count)} "
        f"(average {_mean(standing):.1f}).\n"
        f"-# Few votes pull a score towards the show's average here "
        f"({float(standing.prior_mean):.2f}); "
        f"the pull weighs like {_votes(standing.min_votes)} (the server's minimum)."
    )


def vote_message(
    episode: Episode, old: int | None, new: int, standing: Standing | None, titles: TitleRule
) -> OutgoingMessage:
    """The ephemeral reply to /vote, after the vote is committed: ``old`` is the score it
    replaced, if any; ``standing`` is the episode's place in the show's community ranking in
    this server, including the vote."""
    heading = episode_heading(episode, titles)
    if old is None:
        first = f"Saved: **{new}/10** for {heading}."
    elif old == new:
        first = f"Your vote for {heading} was already **{new}/10**; it stands."
    else:
        first = f"Saved: your vote for {heading} changed from {old} to {new}."
    return OutgoingMessage(
        content=f"{first}\n{_standing_line(standing, episode.show_title)}", ephemeral=True
    )


def unvote_message(
    episode: Episode, old: int | None, standing: Standing | None, titles: TitleRule
) -> OutgoingMessage:
    """The reply to /unvote: ``old`` is the score withdrawn (None: there was no vote)."""
    heading = episode_heading(episode, titles)
    if old is None:
        return OutgoingMessage(
            content=f"You haven't voted on {heading} in this server; nothing to withdraw.",
            ephemeral=True,
        )
    return OutgoingMessage(
        content=(
            f"Withdrawn: your {old}/10 for {heading}.\n"
            f"{_standing_line(standing, episode.show_title)}"
        ),
        ephemeral=True,
    )


# -- /myvotes ------------------------------------------------------------------------------------


class VoteLine(NamedTuple):
    """One of a member's votes, and its episode if it is still in the catalogue."""

    episode_key: str
    score: int
    voted_at: datetime
    episode: Episode | None


def _vote_row(vote: VoteLine, *, with_show: bool, titles: TitleRule) -> str:
    episode = vote.episode
    if episode is None:
        # Voted on an episode that has since left the catalogue: the key is all there is.
        label = f"`{escape_inline(vote.episode_key)}`"
    else:
        show = f"{escape_inline(episode.show_title)} " if with_show else ""
        title = episode_title(episode, shown=titles.shows(episode), surface=Surface.EMBED)
        label = f"{show}`{episode.short_code}` {title}"
    return f"{label} · **{vote.score}**/10 · {timestamp(vote.voted_at, 'R')}"


def my_votes_pages(
    votes: Sequence[VoteLine], show: Show | None, titles: TitleRule
) -> list[OutgoingMessage]:
    """One ephemeral message per page of the member's votes in this server."""
    subject = f"Your {show.title} votes" if show is not None else "Your votes"
    if not votes:
        where = f"any {escape_inline(show.title)} episode" if show is not None else "any episode"
        return [
            OutgoingMessage(
                content=f"You haven't voted on {where} in this server yet. Try `/vote`.",
                ephemeral=True,
            )
        ]
    pages = []
    total = page_count(len(votes))
    for number in range(total):
        rows = [
            _vote_row(vote, with_show=show is None, titles=titles) for vote in page(votes, number)
        ]
        embed: EmbedData = {
            "title": truncate(f"{subject} in this server", EMBED_TITLE_LIMIT),
            "description": "\n".join(rows),
            "color": EMBARGO_COLOUR,
            "footer": {
                "text": f"Page {number + 1} of {total} · {_votes(len(votes))} · "
                "change one with /vote, withdraw it with /unvote"
            },
        }
        pages.append(OutgoingMessage(embeds=(embed,), ephemeral=True))
    return pages


# -- /rankings -----------------------------------------------------------------------------------


def ranking_title(request: RankingRequest, source: Source) -> str:
    season = f" · Season {request.season}" if request.season is not None else ""
    kind = "Community ranking" if source is Source.COMMUNITY else "Critic ranking"
    return f"{request.show.title}{season} · {kind}"


def ranking_subtitle(request: RankingRequest, ranking: Ranking) -> str:
    order = "best first" if request.order is Order.BEST_FIRST else "worst first"
    if ranking.source is Source.COMMUNITY:
        scope = "this server" if request.scope is Scope.SERVER else "all servers"
        return f"{scope} · {order} · {len(ranking.rows)} episodes · m = {ranking.min_votes}"
    return f"{order} · {len(ranking.rows)} episodes"


def _ranking_row(row: CommunityRow | CriticRow, titles: TitleRule) -> str:
    episode = row.episode
    title = episode_title(episode, shown=titles.shows(episode), surface=Surface.EMBED)
    label = f"**{row.rank}.** `{episode.short_code}` {title}"
    if isinstance(row, CommunityRow):
        return (
            f"{label} — **{_score(float(row.score))}** · {_votes(row.tally.count)} · "
            f"avg {_mean(row):.1f}"
        )
    return f"{label} — the critic's #{row.position} of {row.listed}"


class LazyPages(Sequence[OutgoingMessage]):
    """Pages built the first time they are read, then kept.

    A reply shows its first page; the others are built only if someone turns to them, so a
    hundred-episode ranking doesn't format ninety rows nobody may look at.
    """

    def __init__(self, count: int, build: Callable[[int], OutgoingMessage]) -> None:
        self._build = build
        self._built: list[OutgoingMessage | None] = [None] * count

    def __len__(self) -> int:
        return len(self._built)

    @overload
    def __getitem__(self, index: int) -> OutgoingMessage: ...

    @overload
    def __getitem__(self, index: slice) -> list[OutgoingMessage]: ...

    def __getitem__(self, index: int | slice) -> OutgoingMessage | list[OutgoingMessage]:
        if isinstance(index, slice):
            return [self[number] for number in range(*index.indices(len(self)))]
        number = index + len(self) if index < 0 else index
        if not 0 <= number < len(self):
            raise IndexError(f"page {index} of {len(self)}")
        built = self._built[number]
        if built is None:
            built = self._built[number] = self._build(number)
        return built


def ranking_pages(
    request: RankingRequest,
    ranking: Ranking,
    reason: str,
    titles: TitleRule,
    *,
    critic_author: str | None = None,
    hidden: int = 0,
) -> Sequence[OutgoingMessage]:
    """One public message per page of 10 rows, in the order asked for (built when read);
    ``hidden``: rows left out because the member hasn't watched them (spoiler-free)."""
    rows = ranking.ordered(request.order)
    title = truncate(ranking_title(request, ranking.source), EMBED_TITLE_LIMIT)
    intro = escape_inline(reason)
    if critic_author is not None:
        intro += f"\nRanked by {escape_inline(critic_author)}."
    if ranking.unranked:
        left_out = "have no votes yet" if ranking.source is Source.COMMUNITY else "aren't in it"
        intro += f"\n-# {ranking.unranked} more episode(s) in range {left_out}."
    if hidden:
        intro += f"\n-# {hidden_text(hidden)}"
    if ranking.source is Source.COMMUNITY and ranking.prior_mean is not None:
        formula = (
            f"Weighted score = v/(v+m)·R + m/(v+m)·C, with m = {ranking.min_votes} and "
            f"C = {float(ranking.prior_mean):.2f} (the show's average {_where(request.scope)})"
        )
    else:
        formula = "Titles and ranks only; no spoilers"
    total = page_count(len(rows))
    subtitle = ranking_subtitle(request, ranking)

    def build(number: int) -> OutgoingMessage:
        lines = [_ranking_row(row, titles) for row in page(rows, number)]
        embed: EmbedData = {
            "title": title,
            "description": intro + "\n\n" + "\n".join(lines),
            "color": EMBARGO_COLOUR,
            "footer": {
                "text": truncate(
                    f"Page {number + 1} of {total} · {subtitle}\n{formula}", EMBED_FOOTER_LIMIT
                )
            },
        }
        return OutgoingMessage(embeds=(embed,))

    return LazyPages(total, build)


def source_reason_text(choice: SourceChoice) -> str:
    """One sentence (plain text, no markup) saying which ranking is shown and why."""
    where = "from this server" if choice.scope is Scope.SERVER else "across all servers"
    counted = f"{_votes(choice.votes)} {where}"
    if choice.reason is SourceReason.ASKED:
        if choice.source is Source.CRITIC:
            return "Critic ranking, as asked."
        return f"Community ranking, as asked: {counted}."
    if choice.reason is SourceReason.ENOUGH_VOTES:
        return f"Community ranking: {counted}, at least the {choice.min_votes} needed to prefer it."
    if choice.reason is SourceReason.NOTHING:
        return f"No ranking yet: no votes {where} and no critic ranking."
    so_far = f"only {counted} so far" if choice.votes else f"no votes {where} yet"
    shortfall = f"{so_far}, and a community ranking needs {choice.min_votes}"
    if choice.reason is SourceReason.TOO_FEW_VOTES:
        return f"Critic ranking: {shortfall}."
    return f"Community ranking, provisional: {shortfall}, but there is no critic ranking."


def refusal_text(refused: RankingRefused) -> str:
    show = refused.request.show
    if refused.refusal is Refusal.NO_SERVER:
        return "There's no server in direct messages: use `scope: global` here."
    if refused.refusal is Refusal.NO_SUCH_SEASON:
        listed = ", ".join(str(s) for s in seasons_of(show)) or "none"
        return (
            f"{escape_inline(show.title)} has no season {refused.request.season}. "
            f"Seasons: {listed}."
        )
    return f"There's no critic ranking of {escape_inline(show.title)} yet. Try `source: community`."


def hidden_text(hidden: int) -> str:
    """spoiler-free: how many rows were left out for the member."""
    if hidden == 1:
        return "1 episode you haven't watched is hidden."
    return f"{hidden} episodes you haven't watched are hidden."


def no_ranking_message(answer: RankingAnswer) -> OutgoingMessage:
    """The reply when there is nothing to rank: no source at all, or no rows in range."""
    request = answer.request
    if answer.ranking is None:
        reason = source_reason_text(answer.choice)
    elif answer.ranking.source is Source.CRITIC:
        reason = "The critic's ranking doesn't include any of these episodes."
    elif request.scope is Scope.SERVER:
        reason = "None of these episodes has a vote in this server."
    else:
        reason = "None of these episodes has a vote yet."
    season = f" season {request.season}" if request.season is not None else ""
    if answer.hidden and answer.ranking is not None:
        return OutgoingMessage(
            content=(
                f"Nothing to show for **{escape_inline(request.show.title)}**{season}: "
                f"{hidden_text(answer.hidden)} Mark episodes with `/watched`, or leave out "
                "`spoiler-free`."
            ),
            ephemeral=True,
        )
    return OutgoingMessage(
        content=(
            f"Nothing to rank for **{escape_inline(request.show.title)}**{season} yet. "
            f"{escape_inline(reason)} Members can add theirs with `/vote`."
        ),
        ephemeral=True,
    )
