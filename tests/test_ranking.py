import asyncio
import random
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.content.models import CriticRanking, Episode, Show
from bot.messages import OutgoingMessage
from bot.ranking import (
    CommunityRow,
    CriticRow,
    Order,
    Scope,
    Source,
    Standing,
    Tally,
    combined,
    community_ranking,
    community_standing,
    critic_ranking,
    page,
    page_count,
    weighted_score,
)
from bot.ranking_choice import (
    RankingAnswer,
    RankingRefused,
    RankingRequest,
    Refusal,
    SourceReason,
    choose_source,
    needs_critic,
    rank_show,
)
from bot.ranking_messages import LazyPages, ranking_pages, source_reason_text, vote_message
from bot.spoilers.policy import HIDE_SPOILING_TITLES
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
    assert "5 votes from this server" in source_reason_text(choice)
    assert "at least the 5 needed" in source_reason_text(choice)


def test_critic_is_the_fallback_below_the_minimum():
    choice = choose_source(None, votes=4, min_votes=5, has_critic=True, scope=Scope.SERVER)
    assert choice.source is Source.CRITIC
    assert source_reason_text(choice) == (
        "Critic ranking: only 4 votes from this server so far, and a community ranking needs 5."
    )


def test_no_votes_at_all_are_said_plainly():
    choice = choose_source(None, votes=0, min_votes=5, has_critic=True, scope=Scope.GLOBAL)
    assert choice.source is Source.CRITIC
    assert source_reason_text(choice) == (
        "Critic ranking: no votes across all servers yet, and a community ranking needs 5."
    )


def test_few_votes_and_no_critic_give_a_provisional_community_ranking():
    choice = choose_source(None, votes=1, min_votes=5, has_critic=False, scope=Scope.GLOBAL)
    assert choice.source is Source.COMMUNITY
    assert "provisional" in source_reason_text(choice)
    assert "1 vote across all servers" in source_reason_text(choice)


def test_nothing_to_rank_with():
    choice = choose_source(None, votes=0, min_votes=5, has_critic=False, scope=Scope.SERVER)
    assert choice.source is None
    assert "no votes from this server and no critic ranking" in source_reason_text(choice)


@pytest.mark.parametrize("requested", list(Source))
def test_an_explicit_source_is_always_honoured(requested):
    for votes in (0, 3, 500):
        for has_critic in (True, False):
            choice = choose_source(
                requested, votes=votes, min_votes=5, has_critic=has_critic, scope=Scope.SERVER
            )
            assert choice.source is requested
            assert "as asked" in source_reason_text(choice)


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


# -- exact integer ordering and the one-episode standing ---------------------------------------

big_tallies = st.integers(min_value=1, max_value=2_000_000).flatmap(
    lambda count: st.tuples(st.just(count), st.integers(min_value=count, max_value=10 * count)).map(
        lambda pair: Tally(*pair)
    )
)


@settings(max_examples=200)
@given(
    scores=st.lists(
        st.one_of(st.none(), tallies_strategy, big_tallies),
        min_size=len(EPISODES),
        max_size=len(EPISODES),
    ),
    min_votes=st.integers(min_value=0, max_value=500),
)
def test_rows_carry_the_exact_weighted_score_in_order(scores, min_votes):
    # Counts up to millions (every server pooled): the integer keys stay exact at any size.
    tallies = {e.key: t for e, t in zip(EPISODES, scores, strict=True) if t is not None}
    prior = combined(tallies.values())
    if prior.count == 0:
        return
    ranking = community_ranking(EPISODES, tallies, min_votes=min_votes, prior=prior)
    for row in ranking.rows:
        assert row.score == weighted_score(row.tally, min_votes, prior.mean)
    keys = [sort_key(row, prior.mean, min_votes) for row in ranking.rows]
    assert keys == sorted(keys)


def test_the_order_is_exact_where_floats_would_tie():
    # Means of 10 - 8/(v+1) and 10 - 9/(v+2) for v = 10**17: they differ by about 1e-34, far
    # below a float's resolution. Compared as floats they would tie and the one with more
    # votes would go first; exactly, the one with fewer votes is higher.
    a, b = episode(1, 1), episode(1, 2)
    v = 10**17
    tallies = {a.key: Tally(v + 2, 10 * (v + 2) - 9), b.key: Tally(v + 1, 10 * (v + 1) - 8)}
    ranking = community_ranking([a, b], tallies, min_votes=0, prior=combined(tallies.values()))
    assert float(ranking.rows[0].score) == float(ranking.rows[1].score)
    assert ranking.rows[0].score > ranking.rows[1].score
    assert [row.episode for row in ranking.rows] == [b, a]
    standing = community_standing(
        a.key, [a, b], tallies, min_votes=0, prior=combined(tallies.values())
    )
    assert standing is not None
    assert standing.rank == 2


@settings(max_examples=150)
@given(
    scores=st.lists(
        st.one_of(st.none(), tallies_strategy, big_tallies),
        min_size=len(EPISODES),
        max_size=len(EPISODES),
    ),
    min_votes=st.integers(min_value=0, max_value=50),
    season=st.sampled_from([None, 1, 2, 3]),
    tie=st.booleans(),
)
def test_standing_is_the_episodes_row_of_the_whole_ranking(scores, min_votes, season, tie):
    if tie:  # identical tallies: the ranks must follow the tie-breaks exactly
        scores = [None if t is None else Tally(3, 21) for t in scores]
    tallies = {e.key: t for e, t in zip(EPISODES, scores, strict=True) if t is not None}
    prior = combined(tallies.values())
    if prior.count == 0:
        return
    ranked = [e for e in EPISODES if season is None or e.season == season]
    ranking = community_ranking(ranked, tallies, min_votes=min_votes, prior=prior)
    rows = {row.episode.key: row for row in ranking.rows}
    for e in EPISODES:
        standing = community_standing(e.key, ranked, tallies, min_votes=min_votes, prior=prior)
        row = rows.get(e.key)
        if row is None:
            assert standing is None
            continue
        assert isinstance(row, CommunityRow)
        assert standing == Standing(
            rank=row.rank,
            ranked=len(ranking.rows),
            score=row.score,
            tally=row.tally,
            prior_mean=ranking.prior_mean,
            min_votes=min_votes,
        )


def test_standing_refuses_what_the_ranking_refuses():
    key = EPISODES[0].key
    tallies = {key: Tally(2, 12)}
    with pytest.raises(ValueError, match="prior"):
        community_standing(key, EPISODES, tallies, min_votes=5, prior=Tally())
    with pytest.raises(ValueError, match="m >= 0"):
        community_standing(key, EPISODES, tallies, min_votes=-1, prior=Tally(2, 12))
    with pytest.raises(ValueError, match="m >= 0"):
        community_ranking(EPISODES, tallies, min_votes=-1, prior=Tally(2, 12))


@given(
    requested=st.sampled_from([None, *Source]),
    votes=st.integers(min_value=0, max_value=30),
    min_votes=st.integers(min_value=0, max_value=30),
    scope=st.sampled_from(list(Scope)),
)
def test_the_critic_ranking_is_read_whenever_the_choice_depends_on_it(
    requested, votes, min_votes, scope
):
    with_critic, without = (
        choose_source(requested, votes=votes, min_votes=min_votes, has_critic=has, scope=scope)
        for has in (True, False)
    )
    if with_critic != without or with_critic.source is Source.CRITIC:
        assert needs_critic(requested, votes=votes, min_votes=min_votes)
    if not needs_critic(requested, votes=votes, min_votes=min_votes):
        assert with_critic.source is Source.COMMUNITY


# -- the replies' numbers --------------------------------------------------------------------------


@given(tally=st.one_of(tallies_strategy, big_tallies), min_votes=st.integers(0, 40))
def test_vote_reply_numbers_are_the_exact_values_rounded(tally, min_votes):
    ep = EPISODES[4]
    prior = Tally(tally.count + 7, tally.total + 30)  # the show's other votes too
    standing = community_standing(
        ep.key, EPISODES, {ep.key: tally}, min_votes=min_votes, prior=prior
    )
    assert standing is not None
    text = vote_message(ep, None, 5, standing, HIDE_SPOILING_TITLES).content
    mean = Fraction(tally.total, tally.count)
    score = weighted_score(tally, min_votes, prior.mean)
    assert f"**{float(score):.2f}** from " in text
    assert f"(average {float(mean):.1f})" in text
    assert f"average here ({float(prior.mean):.2f})" in text


def test_lazy_pages_build_each_page_once_when_first_read():
    built: list[int] = []

    def build(number: int) -> OutgoingMessage:
        built.append(number)
        return OutgoingMessage(content=f"page {number}")

    pages = LazyPages(3, build)
    assert len(pages) == 3
    assert built == []
    last = pages[-1]
    assert last.content == "page 2"
    assert pages[2] is last
    assert built == [2]
    for outside in (3, -4):
        with pytest.raises(IndexError):
            pages[outside]
    assert [p.content for p in pages[0:10]] == ["page 0", "page 1", "page 2"]
    assert [p.content for p in pages] == ["page 0", "page 1", "page 2"]
    assert built == [2, 0, 1]


def test_ranking_pages_show_every_row_in_the_order_asked():
    tallies = {e.key: Tally(n + 1, 7 * (n + 1) + n % 3) for n, e in enumerate(EPISODES)}
    ranking = community_ranking(EPISODES, tallies, min_votes=3, prior=combined(tallies.values()))
    show = Show(slug="show", title="Show", network="N", timezone="UTC", episodes=tuple(EPISODES))
    request = RankingRequest(show=show, season=None, order=Order.WORST_FIRST, scope=Scope.GLOBAL)
    pages = ranking_pages(request, ranking, "Because.", HIDE_SPOILING_TITLES)
    assert len(pages) == 2  # 18 rows
    lines = [
        line
        for page_ in pages
        for line in page_.embeds[0]["description"].split("\n\n", 1)[1].splitlines()
    ]
    worst_first = list(reversed(ranking.rows))
    assert len(lines) == len(worst_first)
    for line, row in zip(lines, worst_first, strict=True):
        assert line.startswith(f"**{row.rank}.** `{row.episode.short_code}` ")
        assert f"**{float(row.score):.2f}** · {row.tally.count} vote" in line
        assert line.endswith(f"avg {float(row.tally.mean):.1f}")
    assert pages[0].embeds[0]["footer"]["text"].startswith("Page 1 of 2 · all servers · worst")
    assert pages[1].embeds[0]["footer"]["text"].startswith("Page 2 of 2 · all servers · worst")


# -- what /rankings answers ------------------------------------------------------------------------


class Reads:
    """The two reads a ranking may need, recorded."""

    def __init__(self, tallies: dict[str, Tally], critic: CriticRanking | None) -> None:
        self.tallies = tallies
        self.critic = critic
        self.calls: list[str] = []

    async def vote_tallies(self, show_slug: str, guild_id: int | None) -> dict[str, Tally]:
        self.calls.append(f"tallies {guild_id}")
        return self.tallies

    async def get_critic_ranking(self, show_slug: str) -> CriticRanking | None:
        self.calls.append("critic")
        return self.critic


RANKED_SHOW = Show(slug="show", title="Show", network="N", timezone="UTC", episodes=tuple(EPISODES))


async def ask(reads: Reads, **given: Any) -> RankingAnswer:
    options: dict[str, Any] = {
        "show": RANKED_SHOW,
        "season": None,
        "requested_source": None,
        "order": Order.BEST_FIRST,
        "requested_scope": None,
        "guild_id": 7,
        "min_votes": 3,
        "now": RELEASE + timedelta(days=10_000),
        **given,
    }
    return await rank_show(reads, **options)


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        ({"guild_id": None, "requested_scope": Scope.SERVER}, Refusal.NO_SERVER),
        ({"season": 99}, Refusal.NO_SUCH_SEASON),
        ({"requested_source": Source.CRITIC}, Refusal.NO_CRITIC),
    ],
)
async def test_rankings_refusals(given, refusal):
    reads = Reads({}, None)
    with pytest.raises(RankingRefused) as refused:
        await ask(reads, **given)
    assert refused.value.refusal is refusal
    if refusal is not Refusal.NO_CRITIC:
        assert reads.calls == []  # refused before reading anything


async def test_rankings_answers_pick_a_source_and_read_only_what_they_need():
    tallies = {e.key: Tally(2, 14) for e in EPISODES[:2]}
    critic = CriticRanking(show_slug="show", author="A. Critic", best_first=(EPISODES[1].code,))
    few = Reads(tallies, critic)
    answer = await ask(few, min_votes=5)
    assert few.calls == ["tallies 7", "critic"]
    assert answer.choice.source is Source.CRITIC
    assert answer.critic_author == "A. Critic"
    assert answer.ranking is not None
    assert [row.episode for row in answer.ranking.rows] == [EPISODES[1]]

    pooled = Reads(tallies, critic)
    answer = await ask(pooled, guild_id=None, min_votes=4)
    assert pooled.calls == ["tallies None"]  # enough votes: the critic isn't read
    assert answer.request.scope is Scope.GLOBAL
    assert answer.choice.source is Source.COMMUNITY
    assert answer.ranking is not None
    assert len(answer.ranking.rows) == 2

    nothing = Reads({}, None)
    answer = await ask(nothing)
    assert answer.ranking is None
    assert answer.choice.reason is SourceReason.NOTHING
