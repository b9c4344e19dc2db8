import io
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image, ImageFont

from bot import chart
from bot.chart import (
    BAR,
    BEST_BAR,
    Bar,
    chart_size,
    fit,
    fold_to_ascii,
    ranking_bars,
    ranking_chart,
    render_chart,
)
from bot.content.models import CriticRanking, Episode
from bot.ranking import Order, Tally, combined, community_ranking, critic_ranking
from bot.spoilers.policy import HIDE_SPOILING_TITLES, SpoilerSettings, TitleRule

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# None of these episodes has a title that spoils: every title is drawn.
ALL = HIDE_SPOILING_TITLES


def episode(season, number, title):
    return Episode(
        show_slug="black-mirror",
        show_title="Black Mirror",
        season=season,
        number=number,
        title=title,
        release_at=datetime(2025, 4, 10, 7, tzinfo=UTC),
    )


SEASON_7 = [
    episode(7, 1, "Common People"),
    episode(7, 2, "Bête Noire"),
    episode(7, 3, "Hotel Reverie"),
    episode(7, 4, "Plaything"),
    episode(7, 5, "Eulogy"),
    episode(7, 6, "USS Callister: Into Infinity"),
]


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image.convert("RGB")


def bar_ends(image: Image.Image, count: int) -> list[tuple[int, tuple[int, int, int]]]:
    """For each row, the rightmost x of the bar on the row's middle line, and its colour."""
    found = []
    left = chart.PADDING + chart.LABEL_WIDTH
    for index in range(count):
        y = chart.HEADER_HEIGHT + chart.ROW_HEIGHT * index + chart.ROW_HEIGHT // 2
        colour = image.getpixel((left + 2, y))
        assert colour in (BAR, BEST_BAR), f"row {index} has no bar at its start"
        x = left + 2
        while image.getpixel((x + 1, y)) == colour:
            x += 1
        found.append((x, colour))
    return found


def season_ranking():
    scores = {1: (30, 201), 2: (30, 240), 3: (30, 255), 4: (30, 180), 5: (30, 246), 6: (30, 270)}
    tallies = {e.key: Tally(*scores[e.number]) for e in SEASON_7}
    return community_ranking(SEASON_7, tallies, min_votes=5, prior=combined(tallies.values()))


def test_chart_is_a_png_of_the_documented_size():
    bars = [Bar("S7E1", "Common People", 7.5, "7.50"), Bar("S7E2", "Bête Noire", 6.0, "6.00")]
    image = open_png(render_chart("Title", "Subtitle", bars, maximum=10))
    assert image.size == chart_size(2) == (800, 66 + 2 * 32 + 40 + 10)


def test_bars_are_drawn_in_the_ranking_order_with_lengths_matching_their_scores():
    ranking = season_ranking()
    for order in Order:
        rows = ranking.ordered(order)
        image = open_png(ranking_chart(ranking, order, "Black Mirror", "Season 7", ALL))
        assert image.size == chart_size(6)
        ends = bar_ends(image, len(rows))
        span = chart.WIDTH - 2 * chart.PADDING - chart.LABEL_WIDTH - chart.VALUE_WIDTH
        left = chart.PADDING + chart.LABEL_WIDTH
        for (x, colour), row in zip(ends, rows, strict=True):
            assert abs(x - (left + span * float(row.score) / 10)) <= 1.5
            assert (colour == BEST_BAR) == (row.rank == 1)
        lengths = [x for x, _ in ends]
        if order is Order.BEST_FIRST:
            assert lengths == sorted(lengths, reverse=True)
        else:
            assert lengths == sorted(lengths)


def test_bars_follow_the_rows_they_chart():
    ranking = season_ranking()
    bars = ranking_bars(ranking, Order.BEST_FIRST, ALL)
    assert [b.code for b in bars] == [r.episode.short_code for r in ranking.rows]
    assert [b.title for b in bars] == [r.episode.title for r in ranking.rows]
    assert [b.value_text for b in bars] == [f"{float(r.score):.2f}" for r in ranking.rows]
    worst_first = ranking_bars(ranking, Order.WORST_FIRST, ALL)
    assert [b.code for b in worst_first] == [b.code for b in reversed(bars)]


def test_critic_chart_bars_grow_with_the_critics_place():
    critic = CriticRanking(
        show_slug="black-mirror",
        author="Critic",
        best_first=("s07e06", "s07e03", "s07e05", "s07e02", "s07e01", "s07e04"),
    )
    ranking = critic_ranking(SEASON_7, critic)
    image = open_png(ranking_chart(ranking, Order.BEST_FIRST, "Black Mirror", "critic", ALL))
    lengths = [x for x, _ in bar_ends(image, 6)]
    assert lengths == sorted(lengths, reverse=True)
    assert len(set(lengths)) == 6
    assert [b.value_text for b in ranking_bars(ranking, Order.BEST_FIRST, ALL)] == [
        "#1",
        "#2",
        "#3",
        "#4",
        "#5",
        "#6",
    ]


def test_background_is_discords_dark_theme():
    image = open_png(render_chart("T", "S", [Bar("S1E1", "A", 5, "5")], maximum=10))
    assert image.getpixel((chart.WIDTH - 3, 3)) == chart.BACKGROUND
    assert sum(chart.TEXT) > 3 * 200  # light text on the dark background


def test_100_episodes_render_well_under_a_second():
    bars = [
        Bar(
            f"S{n // 10 + 1}E{n % 10 + 1}",
            f"A fairly long episode title number {n}",
            9 - n / 20,
            f"{9 - n / 20:.2f}",
        )
        for n in range(100)
    ]
    render_chart("warm-up", "", bars[:1], maximum=10)  # font loading is a one-off
    started = time.perf_counter()
    data = render_chart("Show", "all", bars, maximum=10, ticks=range(0, 11, 2), caption="score")
    elapsed = time.perf_counter() - started
    assert open_png(data).size == chart_size(100)
    assert elapsed < 0.5, f"100 bars took {elapsed:.3f}s"


def test_without_system_fonts_text_is_folded_to_ascii_and_still_renders():
    bars = [Bar("S7E2", "Bête Noire — part…", 6, "6.00")]
    image = open_png(render_chart("Bête", "Noire", bars, maximum=10, use_system_fonts=False))
    assert image.size == chart_size(1)
    assert fold_to_ascii("Bête Noire — part… “quoted” 日") == 'Bete Noire - part... "quoted" ?'


def test_fit_shortens_long_labels_to_the_room_given():
    font = ImageFont.load_default(17)
    long = "USS Callister: Into Infinity and Beyond the Final Frontier"
    fitted = fit(long, font, 150, "...")
    assert fitted.endswith("...")
    assert long.startswith(fitted[:-3])
    assert font.getlength(fitted) <= 150
    assert fit("Eulogy", font, 150) == "Eulogy"


def test_a_chart_needs_bars_and_a_positive_maximum():
    with pytest.raises(ValueError, match="at least one bar"):
        render_chart("T", "S", [], maximum=10)
    with pytest.raises(ValueError, match="positive"):
        render_chart("T", "S", [Bar("S1E1", "A", 1, "1")], maximum=0)


def test_a_hidden_title_is_not_drawn_and_an_open_one_is():
    """An image can't hide text: the chart of a hidden title is the same image whatever the
    title is, and once the window has ended it draws the title."""

    def chart_with(title: str, titles: TitleRule) -> bytes:
        finale = replace(SEASON_7[5], title=title, title_spoils=True)
        episodes = [*SEASON_7[:5], finale]
        tallies = {e.key: Tally(10, 80 + e.number) for e in episodes}
        ranking = community_ranking(
            episodes, tallies, min_votes=5, prior=combined(tallies.values())
        )
        return ranking_chart(ranking, Order.BEST_FIRST, "Black Mirror", "Season 7", titles)

    release = SEASON_7[5].release_at
    hidden = TitleRule(SpoilerSettings(), release + timedelta(days=1))
    assert chart_with("Nanette Dies", hidden) == chart_with("Everyone Lives", hidden)
    opened = TitleRule(SpoilerSettings(), release + timedelta(days=7))
    assert chart_with("Nanette Dies", opened) != chart_with("Everyone Lives", opened)
    # Titles that don't spoil are drawn whatever the rule.
    drawn = {bar.title for bar in ranking_bars(season_ranking(), Order.BEST_FIRST, hidden)}
    assert drawn == {e.title for e in SEASON_7}
