"""Community scores and the order of rankings: pure maths on plain values, no Discord, no SQL.

The community score is an IMDb-style weighted (Bayesian) average::

    WR = v/(v+m)·R + m/(v+m)·C  =  (S + m·C) / (v + m)

where ``v`` is the episode's vote count, ``S`` the sum of its scores, ``R = S/v`` its mean,
``C`` the show's mean over all its votes in scope and ``m`` the server's minimum-votes setting.
An episode with few votes is pulled towards the show's mean, so one 10/10 can't top a chart.

Scores are compared exactly, so two episodes with the same weighted score really tie (no
floating-point noise) and fall to the tie-breaks: more votes, then the earlier episode. With
``C = p/q``, ``WR = N / (q·d)`` where ``N = S·q + m·p`` and ``d = v + m`` are integers; every
score shares ``q``, so the scores are in the order of ``N/d``. One order serves the full ranking
and one episode's standing; how it compares ``N/d`` cheaply is explained at ``_float_order``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple, TypeVar

from bot.content.models import CriticRanking, Episode

MIN_SCORE = 1
MAX_SCORE = 10
PAGE_SIZE = 10

T = TypeVar("T")


class Source(StrEnum):
    COMMUNITY = "community"
    CRITIC = "critic"


class Order(StrEnum):
    BEST_FIRST = "best-first"
    WORST_FIRST = "worst-first"


class Scope(StrEnum):
    SERVER = "server"
    GLOBAL = "global"  # every server's votes pooled


@dataclass(frozen=True, slots=True)
class Tally:
    """An episode's (or a show's) votes in one scope: how many, and the sum of their scores."""

    count: int = 0
    total: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.count + other.count, self.total + other.total)

    @property
    def mean(self) -> Fraction:
        if self.count == 0:
            raise ValueError("the mean of no votes is undefined")
        return Fraction(self.total, self.count)


def combined(tallies: Iterable[Tally]) -> Tally:
    count = total = 0
    for tally in tallies:
        count += tally.count
        total += tally.total
    return Tally(count, total)


def _check_weights(tally: Tally, min_votes: int) -> None:
    if min_votes < 0 or tally.count + min_votes == 0:
        raise ValueError("the weighted score needs v + m > 0 and m >= 0")


def _prior_terms(prior_mean: Fraction, min_votes: int) -> tuple[int, int]:
    """``(q, m·p)`` for ``C = p/q``: shared by every row of a ranking, whose numerators are
    ``N = S·q + m·p`` and whose weighted scores are ``N / (q·(v + m))``."""
    return prior_mean.denominator, min_votes * prior_mean.numerator


def _numerator(tally: Tally, min_votes: int, prior_mean: Fraction) -> int:
    """``N = S·q + m·p`` (see ``_prior_terms``) for one tally."""
    q, prior_part = _prior_terms(prior_mean, min_votes)
    return tally.total * q + prior_part


def weighted_score(tally: Tally, min_votes: int, prior_mean: Fraction) -> Fraction:
    """``WR = v/(v+m)·R + m/(v+m)·C``, exactly. Always between ``C`` and ``R``."""
    _check_weights(tally, min_votes)
    # One Fraction built from integers: no Fraction arithmetic.
    return Fraction(
        _numerator(tally, min_votes, prior_mean),
        prior_mean.denominator * (tally.count + min_votes),
    )


def _voted(
    episodes: Sequence[Episode], tallies: Mapping[str, Tally]
) -> list[tuple[Tally, Episode]]:
    return [(t, e) for e in episodes if (t := tallies.get(e.key)) is not None and t.count > 0]


class CommunityRow(NamedTuple):
    # A named tuple, not a dataclass: a ranking builds one per episode on every /rankings, and
    # a frozen dataclass costs several times as much to build.
    rank: int  # 1 = best, whichever order the rows are shown in
    episode: Episode
    tally: Tally
    # The weighted score WR as numerator and denominator: the Fraction (whose gcd costs more
    # than ranking the row) is built only for the rows someone reads, a page of ten.
    score_numerator: int
    score_denominator: int

    @property
    def score(self) -> Fraction:
        """The weighted score WR."""
        return Fraction(self.score_numerator, self.score_denominator)


@dataclass(frozen=True, slots=True)
class CriticRow:
    rank: int
    episode: Episode
    position: int  # the episode's place in the critic's whole list (which may span seasons)
    listed: int  # how many episodes the critic's whole list has


RankingRow = CommunityRow | CriticRow


@dataclass(frozen=True, slots=True)
class Ranking:
    """Rows best first (``rank`` 1 first), plus what the reply needs to explain them."""

    source: Source
    rows: tuple[RankingRow, ...]
    unranked: int  # episodes in range left out: no votes yet, or not in the critic's list
    prior_mean: Fraction | None = None  # C (community only)
    min_votes: int = 0  # m (community only)

    def ordered(self, order: Order) -> tuple[RankingRow, ...]:
        # Worst-first is the same ranking read from the bottom: rank numbers keep their meaning.
        return self.rows if order is Order.BEST_FIRST else tuple(reversed(self.rows))


def _episode_order(episode: Episode) -> tuple[int, int]:
    return (episode.season, episode.number)


_WeightedRow = tuple[int, int, Tally, Episode]  # N, v + m, the tally, the episode


def _weighted_rows(
    voted: Sequence[tuple[Tally, Episode]], prior_mean: Fraction, min_votes: int
) -> list[_WeightedRow]:
    q, prior_part = _prior_terms(prior_mean, min_votes)
    return [
        (tally.total * q + prior_part, tally.count + min_votes, tally, episode)
        for tally, episode in voted
    ]


# The one order of a community ranking: higher weighted score, then more votes, then the
# earlier episode. Scores are compared as floats first, exactly only when the floats are equal:
# Python divides ints with correct rounding, which is monotone, so a higher score never gets a
# lower float and floats that differ are already in the exact order. Only scores that round to
# the same float (rare) need the exact comparison, a Fraction each.


def _float_order(row: _WeightedRow) -> tuple[float, int, tuple[int, int]]:
    return (-(row[0] / row[1]), -row[2].count, _episode_order(row[3]))


def _exact_order(row: _WeightedRow) -> tuple[Fraction, int, tuple[int, int]]:
    return (-Fraction(row[0], row[1]), -row[2].count, _episode_order(row[3]))


def _sort_rows(rows: list[_WeightedRow]) -> None:
    """Sort ``rows`` best first, in place: by float, then each run of equal floats exactly."""
    rows.sort(key=_float_order)
    floats = [numerator / weight for numerator, weight, _, _ in rows]
    start, count = 0, len(rows)
    while start < count:
        end = start + 1
        while end < count and floats[end] == floats[start]:
            end += 1
        if end - start > 1:
            rows[start:end] = sorted(rows[start:end], key=_exact_order)
        start = end


def _ranks_above(row: _WeightedRow, other: _WeightedRow) -> bool:
    """Whether ``row`` comes before ``other`` in the order ``_sort_rows`` puts them in."""
    if row[0] / row[1] != other[0] / other[1]:
        return _float_order(row) < _float_order(other)
    return _exact_order(row) < _exact_order(other)


def community_ranking(
    episodes: Sequence[Episode],
    tallies: Mapping[str, Tally],
    *,
    min_votes: int,
    prior: Tally,
) -> Ranking:
    """Rank the ``episodes`` that have votes by weighted score.

    ``tallies`` maps episode keys to their votes in scope; ``prior`` is the show's votes in
    scope (``C = prior.mean``), usually more than the episodes ranked (a season's ranking still
    pulls towards the whole show's mean). Order: higher score, then more votes, then the
    earlier episode (season, then number).
    """
    voted = _voted(episodes, tallies)
    if not voted:
        return Ranking(Source.COMMUNITY, (), unranked=len(episodes), min_votes=min_votes)
    if prior.count == 0:
        raise ValueError("the prior must include the ranked episodes' votes")
    _check_weights(voted[0][0], min_votes)  # every voted tally has v > 0: one check covers m
    prior_mean = prior.mean
    weighted = _weighted_rows(voted, prior_mean, min_votes)
    _sort_rows(weighted)
    q = prior_mean.denominator
    rows = tuple(
        CommunityRow(rank, episode, tally, numerator, q * weight)
        for rank, (numerator, weight, tally, episode) in enumerate(weighted, start=1)
    )
    return Ranking(
        Source.COMMUNITY,
        rows,
        unranked=len(episodes) - len(voted),
        prior_mean=prior_mean,
        min_votes=min_votes,
    )


@dataclass(frozen=True, slots=True)
class Standing:
    """One episode's row of a community ranking, and what explains it, without the others."""

    rank: int
    ranked: int  # how many episodes the ranking has
    score: Fraction  # the weighted score WR
    tally: Tally
    prior_mean: Fraction  # C
    min_votes: int  # m


def community_standing(
    episode_key: str,
    episodes: Sequence[Episode],
    tallies: Mapping[str, Tally],
    *,
    min_votes: int,
    prior: Tally,
) -> Standing | None:
    """Where ``episode_key`` stands in ``community_ranking(episodes, tallies, ...)``: the same
    rank and score, by counting the rows the ranking's order puts above it (no sort).
    ``None`` when it has no votes or isn't among ``episodes``.
    """
    voted = _voted(episodes, tallies)
    if not any(e.key == episode_key for _, e in voted):
        return None
    if prior.count == 0:
        raise ValueError("the prior must include the ranked episodes' votes")
    _check_weights(voted[0][0], min_votes)  # every voted tally has v > 0: one check covers m
    prior_mean = prior.mean
    weighted = _weighted_rows(voted, prior_mean, min_votes)
    mine = next(row for row in weighted if row[3].key == episode_key)
    ahead = sum(1 for row in weighted if row is not mine and _ranks_above(row, mine))
    return Standing(
        rank=ahead + 1,
        ranked=len(voted),
        score=weighted_score(mine[2], min_votes, prior_mean),
        tally=mine[2],
        prior_mean=prior_mean,
        min_votes=min_votes,
    )


def critic_ranking(episodes: Sequence[Episode], critic: CriticRanking) -> Ranking:
    """The critic's order restricted to ``episodes`` (e.g. one season)."""
    positions = {code: position for position, code in enumerate(critic.best_first, start=1)}
    listed = [e for e in episodes if e.code in positions]
    listed.sort(key=lambda e: positions[e.code])
    rows = tuple(
        CriticRow(rank=rank, episode=e, position=positions[e.code], listed=len(positions))
        for rank, e in enumerate(listed, start=1)
    )
    return Ranking(Source.CRITIC, rows, unranked=len(episodes) - len(listed))


def page_count(items: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-items // size))


def page(items: Sequence[T], number: int, size: int = PAGE_SIZE) -> Sequence[T]:
    """Page ``number`` (0-based) of ``items``; out-of-range numbers are clamped."""
    number = min(max(number, 0), page_count(len(items), size) - 1)
    return items[number * size : (number + 1) * size]
