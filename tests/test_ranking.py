import asyncio
import random
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.content.models import CriticRanking, Episode
from bot.ranking import (
    CommunityRow,
    CriticRow,
    Order,
    Scope,
    Source,
    Tally,
    choose_source,
    combined,
    community_ranking,
    critic_ranking,
    page,
    page_count,
    weighted_score,
)
from bot.storage import Storage

RELEASE = datetime(2020, 1, 1, tzinfo=UTC)


def episode(season: int, number: int, title: str | None = None) -> Episode:
    return Episode(
        show_slug="show",
        show_title="Show",
        season=season,
        number=number,
        title=title or f"Episode {season}.{number}",
        release_at=RELEASE + timedelta(days=season * 100 + number),
    )


EPISODES = [episode(s, n) for s in (1, 2, 3) for n in range(1, 7)]

tallies_strategy = st.integers(min_value=1, max_value=60).flatmap(
    lambda count: st.tuples(st.just(count), st.integers(min_value=count, max_value=10 * count)).map(
        lambda pair: Tally(*pair)
    )
)


# -- the weighted score ----------------------------------------------------------------------------


@given(
    tally=tallies_strategy,
    min_votes=st.integers(min_value=0, max_value=1000),
    prior=st.fractions(min_value=1, max_value=10),
)
def test_weighted_score_lies_between_the_show_mean_and_the_episode_mean(tally, min_votes, prior):
    score = weighted_score(tally, min_votes, prior)
    mean = Fraction(tally.total, tally.count)
    assert min(mean, prior) <= score <= max(mean, prior)
    # The documented form, computed independently.
    v, m = tally.count, min_votes
    assert score == Fraction(v, v + m) * mean + Fraction(m, v + m) * prior


@given(tally=tallies_strategy, prior=st.fractions(min_value=1, max_value=10))
def test_without_a_minimum_the_score_is_the_plain_mean(tally, prior):
    assert weighted_score(tally, 0, prior) == Fraction(tally.total, tally.count)


@given(
    tally=tallies_strategy,
    min_votes=st.integers(min_value=1, max_value=100),
    prior=st.fractions(min_value=1, max_value=10),
)
def test_more_minimum_votes_pull_harder_towards_the_show_mean(tally, min_votes, prior):
    near = weighted_score(tally, min_votes, prior)
    nearer = weighted_score(tally, min_votes + 1, prior)
    assert abs(nearer - prior) <= abs(near - prior)


def test_weighted_score_rejects_impossible_inputs():
    with pytest.raises(ValueError, match="v \\+ m"):
        weighted_score(Tally(0, 0), 0, Fraction(5))
    with pytest.raises(ValueError, match="v \\+ m"):
        weighted_score(Tally(3, 12), -1, Fraction(5))


def test_one_perfect_vote_cannot_top_a_well_liked_episode():
    lone, loved, panned = EPISODES[0], EPISODES[1], EPISODES[2]
    tallies = {lone.key: Tally(1, 10), loved.key: Tally(40, 40 * 9), panned.key: Tally(40, 200)}
    ranking = community_ranking(
        [lone, loved, panned], tallies, min_votes=5, prior=combined(tallies.values())
    )
    assert [row.episode for row in ranking.rows] == [loved, lone, panned]


# -- ordering --------------------------------------------------------------------------------------


def sort_key(row, prior, m):
    # An independent statement of the documented order.
    t = row.tally
    exact = (Fraction(t.total) + m * prior) / (t.count + m)
    return (-exact, -t.count, row.episode.season, row.episode.number)


@given(
    scores=st.lists(
        st.one_of(st.none(), tallies_strategy), min_size=len(EPISODES), max_size=len(EPISODES)
    ),
    min_votes=st.integers(min_value=1, max_value=50),
    seed=st.integers(),
)
def test_community_order_is_deterministic_and_follows_the_documented_keys(scores, min_votes, seed):
    tallies = {e.key: t for e, t in zip(EPISODES, scores, strict=True) if t is not None}
    prior = combined(tallies.values())
    if prior.count == 0:
        ranking = community_ranking(EPISODES, tallies, min_votes=min_votes, prior=prior)
        assert ranking.rows == ()
        assert ranking.unranked == len(EPISODES)
        return
    ranking = community_ranking(EPISODES, tallies, min_votes=min_votes, prior=prior)
    shuffled = list(EPISODES)
    random.Random(seed).shuffle(shuffled)
    shuffled_tallies = dict(random.Random(seed).sample(list(tallies.items()), len(tallies)))
    again = community_ranking(shuffled, shuffled_tallies, min_votes=min_votes, prior=prior)
    assert again == ranking
    assert [row.rank for row in ranking.rows] == list(range(1, len(tallies) + 1))
    assert {row.episode.key for row in ranking.rows} == set(tallies)
    assert ranking.unranked == len(EPISODES) - len(tallies)
    keys = [sort_key(row, prior.mean, min_votes) for row in ranking.rows]
    assert keys == sorted(keys)
    assert ranking.ordered(Order.WORST_FIRST) == tuple(reversed(ranking.rows))


def test_ties_go_to_more_votes_then_the_earlier_episode():
    a, b, c = episode(2, 1), episode(1, 3), episode(1, 2)
    # m = 1 and C = 5: 1 vote of 7 and 3 votes summing 19 both score exactly 6.
    tallies = {a.key: Tally(1, 7), b.key: Tally(3, 19), c.key: Tally(1, 7)}
    prior_of_five = Tally(5, 25)
    ranking = community_ranking([a, b, c], tallies, min_votes=1, prior=prior_of_five)
    assert [row.score for row in ranking.rows] == [6, 6, 6]
    assert [row.episode for row in ranking.rows] == [b, c, a]


def test_the_season_ranking_pulls_towards_the_whole_shows_mean():
    season_two = [e for e in EPISODES if e.season == 2]
    tallies = {season_two[0].key: Tally(2, 20), EPISODES[0].key: Tally(8, 8)}
    ranking = community_ranking(season_two, tallies, min_votes=2, prior=combined(tallies.values()))
    (row,) = ranking.rows
    assert isinstance(row, CommunityRow)
    assert ranking.prior_mean == Fraction(28, 10)
    assert row.score == (20 + 2 * Fraction(28, 10)) / 4
    assert ranking.unranked == len(season_two) - 1


# -- critic rankings -------------------------------------------------------------------------------


def test_critic_ranking_keeps_the_critics_order_within_a_season():
    critic = CriticRanking(
        show_slug="show",
        author="A. Critic",
        best_first=("s02e03", "s01e01", "s02e01", "s03e02", "s02e02"),
    )
    season_two = [e for e in EPISODES if e.season == 2]
    ranking = critic_ranking(season_two, critic)
    assert ranking.source is Source.CRITIC
    assert [(r.episode.code, r.rank, r.position) for r in ranking.rows] == [
        ("s02e03", 1, 1),
        ("s02e01", 2, 3),
        ("s02e02", 3, 5),
    ]
    assert all(isinstance(r, CriticRow) and r.listed == 5 for r in ranking.rows)
    assert ranking.unranked == 3
    assert [r.rank for r in ranking.ordered(Order.WORST_FIRST)] == [3, 2, 1]


# -- which source ----------------------------------------------------------------------------------


def test_community_is_preferred_once_there_are_enough_votes():
    choice = choose_source(None, votes=5, min_votes=5, has_critic=True, scope=Scope.SERVER)
    assert choice.source is Source.COMMUNITY
    assert "5 votes from this server" in choice.reason
    assert "at least the 5 needed" in choice.reason


def test_critic_is_the_fallback_below_the_minimum():
    choice = choose_source(None, votes=4, min_votes=5, has_critic=True, scope=Scope.SERVER)
    assert choice.source is Source.CRITIC
    assert choice.reason == (
        "Critic ranking: only 4 votes from this server so far, and a community ranking needs 5."
    )


def test_no_votes_at_all_are_said_plainly():
    choice = choose_source(None, votes=0, min_votes=5, has_critic=True, scope=Scope.GLOBAL)
    assert choice.source is Source.CRITIC
    assert choice.reason == (
        "Critic ranking: no votes across all servers yet, and a community ranking needs 5."
    )


def test_few_votes_and_no_critic_give_a_provisional_community_ranking():
    choice = choose_source(None, votes=1, min_votes=5, has_critic=False, scope=Scope.GLOBAL)
    assert choice.source is Source.COMMUNITY
    assert "provisional" in choice.reason
    assert "1 vote across all servers" in choice.reason


def test_nothing_to_rank_with():
    choice = choose_source(None, votes=0, min_votes=5, has_critic=False, scope=Scope.SERVER)
    assert choice.source is None
    assert "no votes from this server and no critic ranking" in choice.reason


@pytest.mark.parametrize("requested", list(Source))
def test_an_explicit_source_is_always_honoured(requested):
    for votes in (0, 3, 500):
        for has_critic in (True, False):
            choice = choose_source(
                requested, votes=votes, min_votes=5, has_critic=has_critic, scope=Scope.SERVER
            )
            assert choice.source is requested
            assert "as asked" in choice.reason


# -- pages -----------------------------------------------------------------------------------------


@given(items=st.lists(st.integers(), max_size=95), size=st.integers(min_value=1, max_value=12))
def test_pages_cover_every_item_once_in_order(items, size):
    count = page_count(len(items), size)
    assert count == max(1, -(-len(items) // size))
    joined = [x for n in range(count) for x in page(items, n, size)]
    assert joined == items
    assert list(page(items, count + 5, size)) == list(page(items, count - 1, size))
    assert list(page(items, -1, size)) == list(page(items, 0, size))


# -- totals equal a recount after any sequence of votes, changes and withdrawals -------------------

vote_ops = st.lists(
    st.tuples(
        st.sampled_from([1, 2]),  # guild
        st.integers(min_value=1, max_value=5),  # member
        st.sampled_from(["show/s01e01", "show/s01e02", "other/s01e01"]),
        st.one_of(st.none(), st.integers(min_value=1, max_value=10)),  # None = withdraw
    ),
    max_size=60,
)


async def _apply_and_check(ops, concurrently: bool) -> None:
    storage = await Storage.open("sqlite://:memory:", Path("."))
    try:

        async def run(op):
            guild, user, key, score = op
            if score is None:
                return await storage.withdraw_vote(guild, user, key)
            return await storage.cast_vote(guild, user, key, score, now=RELEASE)

        if concurrently:
            results = await asyncio.gather(*(run(op) for op in ops))
        else:
            results = [await run(op) for op in ops]
        model: dict[tuple[int, int, str], int] = {}
        for (guild, user, key, score), result in zip(ops, results, strict=True):
            assert result.old_score == model.get((guild, user, key))
            if score is None:
                model.pop((guild, user, key), None)
            else:
                model[(guild, user, key)] = score
        assert await storage.check_vote_totals() == []
        for show in ("show", "other"):
            for guild in (1, 2, None):
                expected: dict[str, Tally] = {}
                for (g, _, key), score in model.items():
                    if key.startswith(show + "/") and guild in (None, g):
                        expected[key] = expected.get(key, Tally()) + Tally(1, score)
                assert await storage.vote_tallies(show, guild) == expected
    finally:
        await storage.close()


@settings(max_examples=60, deadline=None)
@given(ops=vote_ops, concurrently=st.booleans())
def test_totals_always_equal_a_recount(ops, concurrently):
    asyncio.run(_apply_and_check(ops, concurrently))
