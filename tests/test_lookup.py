from datetime import UTC, datetime, timedelta

import pytest

from bot.content.models import Episode, Show
from bot.lookup import MAX_CHOICES, Catalogue, normalise
from bot.messages import Surface, episode_label
from bot.spoilers.policy import HIDE_SPOILING_TITLES

BASE = datetime(2025, 1, 1, tzinfo=UTC)


def make_show(slug, title, episodes):
    eps = tuple(
        Episode(slug, title, season, number, ep_title, BASE + timedelta(days=i), tuple(aliases))
        for i, (season, number, ep_title, aliases) in enumerate(episodes)
    )
    return Show(slug, title, "Net", "UTC", eps)


BLACK_MIRROR = make_show(
    "black-mirror",
    "Black Mirror",
    [
        (0, 1, "Bandersnatch", []),
        (4, 1, "USS Callister", ["callister"]),
        (7, 1, "Common People", []),
        (7, 2, "Bête Noire", []),
        (7, 6, "USS Callister: Into Infinity", ["into infinity", "callister 2"]),
    ],
)
OTHER = make_show(
    "severance",
    "Severance",
    [(1, 1, "Good News About Hell", []), (7, 6, "Made Up Finale", [])],
)


@pytest.fixture
def catalogue():
    return Catalogue([BLACK_MIRROR, OTHER])


def test_label_format():
    label = episode_label(BLACK_MIRROR.episodes[4], HIDE_SPOILING_TITLES, Surface.PLAIN)
    assert label == "Black Mirror S7E6 · USS Callister: Into Infinity"


@pytest.mark.parametrize(
    "text",
    [
        "into infinity",
        "Into Infinity",
        "bm s7e6",
        "BM S07E06",
        "black mirror s7e6",
        "black-mirror/s07e06",
        "Black Mirror S7E6 · USS Callister: Into Infinity",
        "uss callister: into infinity",
        "callister 2",
        "bm 7x06",
    ],
)
def test_free_text_resolves_the_finale(catalogue, text):
    episode = catalogue.resolve(text)
    assert episode is not None
    assert episode.key == "black-mirror/s07e06"


def test_code_alone_resolves_when_unique(catalogue):
    assert catalogue.resolve("s7e2").title == "Bête Noire"
    assert catalogue.resolve("s07e02").title == "Bête Noire"


def test_code_shared_by_two_shows_is_ambiguous(catalogue):
    assert catalogue.resolve("s7e6") is None
    keys = {e.key for e in catalogue.suggest("s7e6")}
    assert keys == {"black-mirror/s07e06", "severance/s07e06"}


def test_accents_are_ignored(catalogue):
    assert catalogue.resolve("bete noire").code == "s07e02"
    assert normalise("Bête Noire!") == "bete noire"


def test_exact_title_beats_prefix_ambiguity(catalogue):
    # "USS Callister" is both a title and a prefix of the sequel's title.
    assert catalogue.resolve("uss callister").key == "black-mirror/s04e01"


def test_search_is_word_prefix_and_ordered(catalogue):
    results = catalogue.search("call")
    assert [e.key for e in results] == ["black-mirror/s04e01", "black-mirror/s07e06"]
    assert catalogue.search("inf call") == [BLACK_MIRROR.episodes[4]]
    assert catalogue.search("zzz") == []


def test_empty_search_lists_newest_first(catalogue):
    results = catalogue.search("")
    assert results[0].release_at == max(e.release_at for e in catalogue.episodes)
    assert len(results) == len(catalogue.episodes)


def test_search_respects_discord_choice_limit():
    show = make_show("big", "Big Show", [(1, n, f"Episode {n}", []) for n in range(1, 80)])
    assert len(Catalogue([show]).search("ep")) == MAX_CHOICES


def test_long_query_words_are_checked_in_full(catalogue):
    assert catalogue.search("bandersnatchx") == []
    assert catalogue.search("bandersnatch") == [BLACK_MIRROR.episodes[0]]


def test_unknown_text_gets_close_suggestions(catalogue):
    assert catalogue.resolve("comon peeple") is None
    suggestions = catalogue.suggest("comon peeple")
    assert suggestions
    assert suggestions[0].title == "Common People"


def test_suggestions_are_capped_at_five():
    show = make_show("big", "Big Show", [(1, n, f"Episode {n}", []) for n in range(1, 30)])
    assert len(Catalogue([show]).suggest("episode")) == 5


def test_shows_resolve_by_title_slug_and_initials(catalogue):
    assert catalogue.resolve_show("Black Mirror") is BLACK_MIRROR
    assert catalogue.resolve_show("black-mirror") is BLACK_MIRROR
    assert catalogue.resolve_show("bm") is BLACK_MIRROR
    assert catalogue.resolve_show("sev") is OTHER
    assert catalogue.resolve_show("nope") is None
    assert catalogue.suggest_shows("black miror") == [BLACK_MIRROR]
