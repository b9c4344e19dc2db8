"""Titles that spoil: the rule (may this title be shown here now?), how a label is written on
each surface, and how the catalogue matches an episode whose title is hidden. All pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.content.models import Episode, Show
from bot.lookup import Catalogue
from bot.messages import HIDDEN_TITLE, Surface, episode_label, episode_title
from bot.spoilers.durations import SpoilerWindow, parse_window
from bot.spoilers.policy import (
    HIDE_SPOILING_TITLES,
    SpoilerSettings,
    TitleRule,
    title_open,
    title_visible,
)
from tests import markdown_oracle as oracle

RELEASE = datetime(2025, 4, 10, 7, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
WEEK = timedelta(days=7)
SECRET = "Ashford Betrays Everyone"


def episode(
    title: str = SECRET,
    *,
    spoils: bool = True,
    show: str = "the-pact",
    show_title: str = "The Pact",
    season: int = 2,
    number: int = 9,
    release: datetime = RELEASE,
    aliases: tuple[str, ...] = (),
) -> Episode:
    return Episode(show, show_title, season, number, title, release, aliases, title_spoils=spoils)


def visible(settings: SpoilerSettings, now: datetime, ep: Episode | None = None) -> bool:
    return title_visible(ep or episode(), settings, now)


# -- the rule ------------------------------------------------------------------------------------


def test_a_title_that_does_not_spoil_is_always_visible():
    plain = episode(spoils=False)
    forever = SpoilerSettings(window=SpoilerWindow(None))
    assert visible(forever, RELEASE - WEEK, plain)
    assert visible(forever, RELEASE + 100 * WEEK, plain)


def test_a_spoiling_title_is_hidden_until_the_window_ends_half_open():
    settings = SpoilerSettings(window=parse_window("3d"))
    ends = RELEASE + timedelta(days=3)
    assert not visible(settings, RELEASE - WEEK)  # not out yet
    assert not visible(settings, RELEASE)
    assert not visible(settings, ends - SECOND)
    assert visible(settings, ends)  # open at the instant the window ends, like the ending
    assert visible(settings, ends + WEEK)


def test_dms_and_a_server_that_changed_nothing_use_the_default_window():
    defaults = SpoilerSettings()
    assert not visible(defaults, RELEASE + WEEK - SECOND)
    assert visible(defaults, RELEASE + WEEK)


def test_a_per_show_window_decides_for_that_show_only():
    settings = SpoilerSettings(
        window=parse_window("1d"), show_windows=(("the-pact", parse_window("30d")),)
    )
    other_show = episode(show="other", show_title="Other")
    ten_days = RELEASE + timedelta(days=10)
    assert not visible(settings, ten_days)  # the show's own 30 days still run
    assert visible(settings, ten_days, other_show)  # the server's 1 day is over
    assert visible(settings, RELEASE + timedelta(days=30))


def test_window_off_opens_the_title_at_release_and_forever_never():
    off = SpoilerSettings(window=parse_window("off"))
    assert not visible(off, RELEASE - SECOND)
    assert visible(off, RELEASE)
    forever = SpoilerSettings(window=parse_window("forever"))
    assert not visible(forever, RELEASE + 500 * WEEK)


def test_spoilers_ok_channels_do_not_open_a_title():
    # A title reaches places that belong to no channel (autocomplete, a member's own votes),
    # so only the server's window decides.
    settings = SpoilerSettings(spoilers_ok_channels=frozenset({1}))
    assert not visible(settings, RELEASE + timedelta(days=1))


def test_title_open_is_the_same_rule_from_a_window_end():
    assert title_open(title_spoils=False, window_ends_at=None, now=RELEASE)
    assert not title_open(title_spoils=True, window_ends_at=None, now=RELEASE + 500 * WEEK)
    assert not title_open(title_spoils=True, window_ends_at=RELEASE, now=RELEASE - SECOND)
    assert title_open(title_spoils=True, window_ends_at=RELEASE, now=RELEASE)


@pytest.mark.parametrize("days", [0, 1, 7, 30])
def test_a_title_rule_is_the_function_for_one_place_and_instant(days):
    settings = SpoilerSettings(window=parse_window("7d"))
    now = RELEASE + timedelta(days=days)
    assert TitleRule(settings, now).shows(episode()) == visible(settings, now)


def test_where_no_rules_apply_every_spoiling_title_is_hidden():
    hidden = episode(release=datetime(2000, 1, 1, tzinfo=UTC))
    assert not HIDE_SPOILING_TITLES.shows(hidden)
    assert HIDE_SPOILING_TITLES.shows(episode(spoils=False))


# -- labels --------------------------------------------------------------------------------------

HIDDEN = TitleRule(SpoilerSettings(), RELEASE + SECOND)
OPEN = TitleRule(SpoilerSettings(), RELEASE + WEEK)


def test_an_open_title_is_written_as_is_or_escaped_where_markdown_renders():
    ep = episode("A *Bold* | Move")
    assert episode_label(ep, OPEN, Surface.PLAIN) == "The Pact S2E9 · A *Bold* | Move"
    escaped = "The Pact S2E9 · A \\*Bold\\* \\| Move"
    assert episode_label(ep, OPEN, Surface.CONTENT) == escaped
    assert episode_label(ep, OPEN, Surface.EMBED) == escaped


def test_a_hidden_title_is_tagged_in_content_and_left_out_everywhere_else():
    ep = episode()
    assert episode_label(ep, HIDDEN, Surface.PLAIN) == f"The Pact S2E9 · {HIDDEN_TITLE}"
    assert episode_label(ep, HIDDEN, Surface.EMBED) == f"The Pact S2E9 · *{HIDDEN_TITLE}*"
    content = episode_label(ep, HIDDEN, Surface.CONTENT)
    reading = oracle.read(f"**{content}**")
    assert reading.hazards == ()
    assert reading.visible == "**The Pact S2E9 · **"
    assert reading.hidden == SECRET


def test_the_title_is_bounded_on_every_surface():
    long = episode("word " * 200, spoils=False)
    for surface in Surface:
        assert len(episode_title(long, shown=True, surface=surface)) <= 200
    assert len(oracle.read(episode_title(long, shown=False, surface=Surface.CONTENT)).hidden) <= 200


# -- matching ------------------------------------------------------------------------------------

OPEN_EPISODE = episode(
    "The First Meeting", spoils=False, number=1, release=RELEASE - WEEK, aliases=("meeting",)
)
SPOILER = episode(aliases=("the betrayal",))
CATALOGUE = Catalogue([Show("the-pact", "The Pact", "Net", "UTC", (OPEN_EPISODE, SPOILER))])


@pytest.mark.parametrize("text", ["ashford", "betrays everyone", "the betrayal", "pact ashford"])
def test_a_hidden_title_or_alias_matches_nothing(text):
    assert CATALOGUE.search(text, titles=HIDDEN) == []
    assert CATALOGUE.resolve(text, titles=HIDDEN) is None
    assert SPOILER not in CATALOGUE.suggest(text, titles=HIDDEN)
    # The same words find it once the window has ended.
    assert CATALOGUE.search(text, titles=OPEN) == [SPOILER]
    assert CATALOGUE.resolve(text, titles=OPEN) == SPOILER


def test_the_full_label_with_a_hidden_title_resolves_to_nothing():
    assert CATALOGUE.resolve(f"The Pact S2E9 {SECRET}", titles=HIDDEN) is None
    assert CATALOGUE.resolve(f"The Pact S2E9 {SECRET}", titles=OPEN) == SPOILER


@pytest.mark.parametrize(
    "text", ["s2e9", "s02e09", "2x09", "pact s2e9", "the pact s02e09", "tp s2e9"]
)
def test_a_hidden_episode_is_still_found_by_its_show_and_code(text):
    assert CATALOGUE.resolve(text, titles=HIDDEN) == SPOILER
    assert SPOILER in CATALOGUE.search(text, titles=HIDDEN)


def test_the_show_lists_a_hidden_episode_and_its_key_resolves():
    assert CATALOGUE.search("the pact", titles=HIDDEN) == [OPEN_EPISODE, SPOILER]
    assert CATALOGUE.search("", titles=HIDDEN) == [SPOILER, OPEN_EPISODE]  # newest first
    assert CATALOGUE.resolve(SPOILER.key, titles=HIDDEN) == SPOILER


def test_open_titles_match_as_before():
    assert CATALOGUE.resolve("meeting", titles=HIDDEN) == OPEN_EPISODE
    assert CATALOGUE.search("first", titles=HIDDEN) == [OPEN_EPISODE]


def test_without_a_rule_spoiling_titles_never_match():
    assert CATALOGUE.search("ashford") == []
    assert CATALOGUE.resolve("the betrayal") is None
    assert CATALOGUE.resolve("s2e9") == SPOILER


def test_each_server_matches_by_its_own_window():
    long_window = TitleRule(SpoilerSettings(window=parse_window("30d")), RELEASE + 2 * WEEK)
    short_window = TitleRule(SpoilerSettings(window=parse_window("1d")), RELEASE + 2 * WEEK)
    assert CATALOGUE.search("ashford", titles=long_window) == []
    assert CATALOGUE.search("ashford", titles=short_window) == [SPOILER]


def test_a_fuzzy_suggestion_never_offers_a_hidden_title():
    # "ashfrod betrays" is close to the hidden title alone.
    assert CATALOGUE.suggest("ashfrod betrays everyone", titles=HIDDEN) == []
    assert CATALOGUE.suggest("ashfrod betrays everyone", titles=OPEN) == [SPOILER]


def test_a_hidden_title_takes_no_place_among_the_closest_suggestions():
    names = ("Winters", "Wintry", "Winner", "Writer", "Wintered")
    opened = [episode(name, spoils=False, number=n) for n, name in enumerate(names, start=1)]
    hidden = episode("Wintre", number=9)
    catalogue = Catalogue([Show("the-pact", "The Pact", "Net", "UTC", (*opened, hidden))])
    assert set(catalogue.suggest("wintre", titles=HIDDEN)) == set(opened)
    assert hidden in catalogue.suggest("wintre", titles=OPEN)
