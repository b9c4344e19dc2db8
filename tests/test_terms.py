"""Tests for bot/spoilers/terms.py: folding, word boundaries, what spoiler tags hide (judged by
tests/markdown_oracle.py, the reader the renderer's property tests use), the renderer's output
never matching, linear time on hostile text, active sets per server, and spoiler_terms checks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bot.content.models import Episode
from bot.spoilers import terms
from bot.spoilers.durations import SpoilerWindow
from bot.spoilers.policy import SpoilerSettings
from bot.spoilers.render import MIN_LIMIT, spoiler_messages
from bot.spoilers.terms import (
    MAX_TERM_LENGTH,
    MAX_TERMS,
    EpisodeTerms,
    GuardIndex,
    TermMatcher,
    active_keys,
    check_spoiler_terms,
    fold,
    hidden_spans,
    is_active,
    next_change,
    visible_parts,
)
from tests import markdown_oracle as oracle
from tests.test_render import HOSTILE, SEPARATORS

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NANETTE = "black-mirror/s07e06"
SHIP = "the-expanse/s03e06"
MATCHER = TermMatcher(
    {
        NANETTE: ["Nanette", "Bête Noire", "ナネット"],
        SHIP: ["ship explodes", "Nanette"],  # a term two episodes share
    }
)


def full_width(text: str) -> str:
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def matched(text: str) -> tuple[str, ...]:
    return MATCHER.match(text)


# --- folding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("Nanette", "nanette"),
        ("NANETTE", "nanette"),
        ("Bête-Noire!", "bete noire"),
        (full_width("NANETTE"), "nanette"),
        ("ﬁnale", "finale"),  # a ligature
        ("Straße", "strasse"),  # case folding, not lowering
        ("Ålesund", "alesund"),
        ("e\u0301te\u0301", "ete"),  # decomposed accents
        ("  many   spaces\t\nand_underscores  ", "many spaces and underscores"),
        ("ﾅﾈｯﾄ", "ナ ネ ッ ト"),  # half-width katakana, one word per character
        ("死ぬ", "死 ぬ"),
        ("!!!", ""),
    ],
)
def test_fold(written, folded):
    assert fold(written) == folded


@pytest.mark.parametrize(
    "text",
    [
        "nanette dies",
        "NANETTE!",
        "so... nanette?",
        full_width("nanette"),
        "Nanétte",
        "(Nanette)",
        "_nanette_",
        "**Nanette**",
        "wait,nanette,no",
    ],
)
def test_a_term_matches_whatever_its_case_width_and_accents(text):
    assert matched(text) == (NANETTE, SHIP)


@pytest.mark.parametrize(
    "text",
    ["bete noire", "BÊTE NOIRE", "Bête-Noire", "bête   noire", "Bête\\-Noire", "bête\nnoire"],
)
def test_a_phrase_matches_across_any_run_of_separators(text):
    assert matched(text) == (NANETTE,)


@pytest.mark.parametrize(
    "text",
    ["Nanettes", "ananette", "nanette2", "nan ette", "bete", "noire bete", "ship exploded", ""],
)
def test_a_term_only_matches_as_whole_words(text):
    assert matched(text) == ()


def test_scripts_without_spaces_match_inside_a_run_of_them():
    assert matched("えっ、ナネットが死んだの\uff1f") == (NANETTE,)
    assert matched("ﾅﾈｯﾄ") == (NANETTE,)
    assert matched("ナネッ") == ()


def test_other_alphabets_fold_their_own_way():
    matcher = TermMatcher({"a/s01e01": ["Οδυσσεύς", "Наташа", "김철수"]})
    assert matcher.match("so ΟΔΥΣΣΕΥΣ!") == ("a/s01e01",)  # final sigma, no tonos
    assert matcher.match("наташа") == ("a/s01e01",)
    assert matcher.match("김철수가") == ()  # Korean is written with spaces
    assert matcher.match("김철수 가") == ("a/s01e01",)


@PROPERTY
@given(
    st.text(st.characters(categories=["Ll", "Lu", "Nd"]), min_size=2, max_size=12),
    st.sampled_from(["upper", "full width", "accents", "spaced"]),
)
def test_any_term_matches_its_own_variants(term, variant):
    if variant == "upper":
        written = term.upper()
        assume(written.casefold() == term.casefold())  # not so for a dotless i, in Unicode
    elif variant == "full width":
        written = "".join(full_width(c) if "!" <= c <= "~" else c for c in term)
    elif variant == "accents":
        written = "".join(c + "\u0301" for c in term)
    else:
        written = f"…({term})…"
    matcher = TermMatcher({"a/s01e01": [term]})
    assert matcher.match(f"well {written} then") == ("a/s01e01",), (term, written)
    if fold(written + "x") == fold(written) + "x":  # not so for "…", Thai, "Ŀ" (L and a dot)
        assert matcher.match(f"{written}x") == ()  # a longer word


def test_the_fold_table_stops_growing():
    everything = "".join(chr(code) for code in range(0x100, 0x100 + 2 * terms._FOLD_TABLE_MAX))
    fold(everything)
    assert len(terms._FOLD_TABLE) <= terms._FOLD_TABLE_MAX
    assert fold("\U0001f600 Ωμέγα \U00010400") == "ωμεγα \U00010428"  # still right after it


def test_episodes_come_in_the_order_their_first_term_ends():
    assert matched("the ship explodes after Nanette") == (SHIP, NANETTE)


def test_an_empty_matcher_matches_nothing():
    assert TermMatcher({}).match("Nanette") == ()
    assert len(TermMatcher({})) == 0


def test_terms_that_fold_alike_are_one_pattern_for_every_owner():
    matcher = TermMatcher({"a/s01e01": ["Nanette", "NANETTE"], "b/s01e01": ["nanétte"]})
    assert len(matcher) == 1
    assert matcher.match("nanette") == ("a/s01e01", "b/s01e01")


def test_a_term_without_letters_is_refused():
    with pytest.raises(ValueError, match="no letters or digits"):
        TermMatcher({"a/s01e01": ["?!"]})


# --- what spoiler tags hide ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "||Nanette||",
        "she ||Nanette|| did",
        "||the end: Nanette||",
        "||Nanette\\\\||",  # an even run of backslashes: Discord closes on the raw "||"
        "||a\nNanette\nb||",  # a member's tag over several lines hides them all
        "||Nanette|||",
        "Nan||ette||",  # "Nan" is visible, "Nanette" is not
        "`code` ||Nanette||",
        "<https://x.com> ||Nanette||",
        "|| Nanette ||",
    ],
)
def test_text_inside_spoiler_tags_is_ignored(text):
    assert matched(text) == ()


@pytest.mark.parametrize(
    "text",
    [
        "||Nanette",  # unclosed: shows as written
        "Nanette||",
        "||x|| Nanette ||y",
        "\\|\\|Nanette\\|\\|",  # escaped: no tag at all
        "\\||Nanette||",  # the first "|" is escaped, so "|Nanette" and an unpaired "||" show
        "`||Nanette||`",  # a code span wins over the tag, and code shows
        "```\n||x|| Nanette\n```",
        "||a\n> Nanette||",  # a quote line breaks a tag: Discord shows it
        "||> Nanette||",  # starts like a quote: some readings show it
        "||Nanette\\\\\\||",  # ends in an escaping backslash: escape-aware readings show it
        "https://x.com/||Nanette||",  # the bare URL swallows the pipes
        "<a:/b||Nanette||>",  # so does an autolink
        "||a||Nanette||b||",  # tags pair from the left
        "|Nanette|",
    ],
)
def test_text_a_reader_can_see_is_matched(text):
    assert matched(text) == (NANETTE, SHIP)


def test_a_term_cannot_match_across_a_hidden_part():
    assert matched("ship ||x|| explodes") == ()
    assert matched("ship explodes ||x||") == (SHIP,)


# The oracle's alphabet: every character that takes part in a rule, and word characters.
markdown_fragments = st.one_of(
    st.sampled_from([fragment for fragment in HOSTILE if "\n" not in fragment]),
    st.text("ab |\\`>*_~<:/hNt", max_size=12),
    st.sampled_from(["||", "|||", "\\|", "`", "``", "```", "http://a", "<a:/b>", " Nanette "]),
)
single_lines = (
    st.lists(markdown_fragments, max_size=25).map("".join).filter(lambda t: "\n" not in t)
)


def oracle_hidden(text: str) -> list[str]:
    return [segment for inside, segment in oracle.read(text).segments if inside]


@PROPERTY
@given(single_lines)
@example("``a`b``c``")
@example("`a``b`")
@example("\\``||x||`")
@example("<<a:/b>||x||")
@example("http://a.||x||")
def test_hidden_spans_agree_with_the_oracle_on_a_line(text):
    """On one line (where the guard and the oracle use the same rules), the tags found are
    exactly those the oracle's lazy reading hides, with the same contents."""
    ours = [oracle._inside(text[start:end])[0] for start, end in hidden_spans(text)]
    assert ours == oracle_hidden(text)


@PROPERTY
@given(st.lists(st.one_of(markdown_fragments, st.sampled_from(SEPARATORS)), max_size=25))
def test_visible_parts_and_hidden_spans_tile_the_text(parts):
    text = "".join(parts)
    pieces = visible_parts(text)
    spans = hidden_spans(text)
    assert len(pieces) == len(spans) + 1
    rebuilt = pieces[0] + "".join(
        f"||{text[start:end]}||{piece}"
        for (start, end), piece in zip(spans, pieces[1:], strict=True)
    )
    assert rebuilt == text


def reference_match(terms: dict[str, list[str]], text: str) -> set[str]:
    """Each term against the visible parts, always: no shortcut through the whole text."""
    haystack = " " + " \0 ".join(fold(part) for part in visible_parts(text)) + " "
    return {key for key, phrases in terms.items() for t in phrases if f" {fold(t)} " in haystack}


REFERENCE_TERMS = {"a/s01e01": ["ab", "a b", "b a"], "b/s01e01": ["ba", "b h"]}
REFERENCE = TermMatcher(REFERENCE_TERMS)


@PROPERTY
@given(st.lists(st.one_of(markdown_fragments, st.sampled_from(SEPARATORS)), max_size=25))
@example("a||x||b a")
@example("a\\||b||a")
def test_the_shortcut_through_the_whole_text_changes_no_answer(parts):
    text = "".join(parts)
    assert set(REFERENCE.match(text)) == reference_match(REFERENCE_TERMS, text)


secrets = st.sampled_from(["Nanette", "NANETTE", "Bête Noire", "ship explodes", "ナネット"])


@st.composite
def texts_with_terms(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(st.sampled_from(HOSTILE), st.sampled_from(SEPARATORS))))
    for _ in range(draw(st.integers(1, 4))):
        parts.insert(draw(st.integers(0, len(parts))), f" {draw(secrets)} ")
    return "".join(parts)


@PROPERTY
@given(texts_with_terms(), st.sampled_from([MIN_LIMIT, 60, 300, 2000]))
@example(" Nanette ", 2000)
@example("- Nanette\n1. ship explodes\n# Bête Noire", 2000)
@example("> Nanette `||` \\||", MIN_LIMIT)
def test_the_renderers_spoiler_wrapping_is_never_matched(text, limit):
    for message in spoiler_messages(text, limit=limit):
        assert matched(message) == (), message
    # A member pasting the whole repost at once is still covered.
    assert matched("\n".join(spoiler_messages(text, limit=limit))) == ()


def test_the_unwrapped_text_of_the_property_does_match():
    """The property above is not vacuous: the same terms match when nothing wraps them."""
    assert matched(" Nanette ") == (NANETTE, SHIP)
    assert matched("- Nanette\n1. ship explodes\n# Bête Noire") == (NANETTE, SHIP)


# --- linear time --------------------------------------------------------------------------

LINEAR_CHILD = textwrap.dedent(
    r"""
    import json, sys, time
    from bot.spoilers.terms import TermMatcher, hidden_spans
    size = int(sys.argv[1])
    # Terms that nest ("ha", "ha ha", ...) make every word end several matches at once.
    matcher = TermMatcher({"a/s01e01": [" ".join(["ha"] * n) for n in range(1, 11)] + ["x y"]})
    hostile = {
        "pipes": "|" * size,
        "unclosed tags": "||a" * (size // 3),
        "open tag then words": "||" + "ha " * (size // 3),
        "backtick runs": "".join("`" * n + "a" for n in range(1, 440)),  # 97,000 characters
        "backticks": "`" * size,
        "escaped backticks": "\\`" * (size // 2),
        "angles": "<" * size,
        "angles then colon": "<a" * (size // 2) + ":/",
        "schemes": "http://" * (size // 7),
        "failed urls": "http://." * (size // 8),
        "backslashes": "\\" * size,
        "nested terms": "ha " * (size // 3),
        "nested terms and tags": "ha ||ha|| " * (size // 10),
        "accents": "e\u0301" * (size // 2),
        "han": "死" * size,
        "every character": "".join(map(chr, range(0x100, 0x100 + size))),
        "mixed": "|`\\<h:/>ha x y ||" * (size // 19),
    }
    timings = {}
    for name, text in hostile.items():
        started = time.perf_counter()
        hidden_spans(text)
        # A term found sends the text through the tag scan; "||" forces it for every text.
        assert matcher.match(text + " || x y") == ("a/s01e01",)
        timings[name] = time.perf_counter() - started
    print(json.dumps(timings))
    """
)


def test_matching_hostile_text_takes_linear_time():
    """Each hostile text is 25 times the longest message Discord allows. Linear work finishes in
    milliseconds; quadratic work on this length (the regexes this module replaces, retried at
    every position) would take minutes. The budget is generous so a loaded machine passes."""
    size = 100_000
    child = subprocess.run(
        [sys.executable, "-c", LINEAR_CHILD, str(size)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    timings = json.loads(child.stdout)
    slow = {name: seconds for name, seconds in timings.items() if seconds > 2.0}
    assert slow == {}, timings


# --- which episodes are active where ------------------------------------------------------

RELEASE = datetime(2026, 3, 1, 20, tzinfo=UTC)


def episode(show: str, number: int, release_at: datetime = RELEASE) -> Episode:
    return Episode(show, show.title(), 1, number, f"Episode {number}", release_at)


def with_terms(item: Episode, *terms: str) -> EpisodeTerms:
    return EpisodeTerms(item, terms or (f"{item.show_slug} term{item.number}",))


WEEK = SpoilerWindow(timedelta(days=7))
DAY = SpoilerWindow(timedelta(days=1))
OFF = SpoilerWindow(timedelta(0))
FOREVER = SpoilerWindow(None)


@pytest.mark.parametrize(
    ("window", "now", "active"),
    [
        (WEEK, RELEASE - timedelta(seconds=1), False),  # not released yet
        (WEEK, RELEASE, True),  # released at exactly the instant
        (WEEK, RELEASE + timedelta(days=7) - timedelta(seconds=1), True),
        (WEEK, RELEASE + timedelta(days=7), False),  # half-open, as policy.decide
        (OFF, RELEASE, False),
        (FOREVER, RELEASE + timedelta(days=3650), True),
    ],
)
def test_an_episode_is_active_while_released_and_inside_the_window(window, now, active):
    assert is_active(episode("mirror", 1), SpoilerSettings(window=window), now) is active


def test_a_shows_own_window_overrides_the_servers():
    settings_ = SpoilerSettings(window=WEEK, show_windows=(("mirror", DAY),))
    now = RELEASE + timedelta(days=2)
    items = [with_terms(episode("mirror", 1)), with_terms(episode("expanse", 1))]
    assert active_keys(items, settings_, now) == {"expanse/s01e01"}


def test_episodes_without_terms_are_never_active():
    assert (
        active_keys([EpisodeTerms(episode("mirror", 1), ())], SpoilerSettings(), RELEASE) == set()
    )


def test_servers_with_the_same_active_set_share_one_matcher():
    items = [
        with_terms(episode("mirror", 1), "Nanette"),
        with_terms(episode("expanse", 1), "ship explodes"),
        with_terms(episode("later", 1, RELEASE + timedelta(days=30)), "not yet"),
    ]
    servers = {guild: SpoilerSettings() for guild in range(1000)}
    servers[1000] = SpoilerSettings(show_windows=(("mirror", DAY),))
    # A window for a show with no terms changes nothing: this server joins the big group.
    servers[1001] = SpoilerSettings(show_windows=(("no-terms", DAY),))
    servers[1002] = SpoilerSettings(window=OFF)
    now = RELEASE + timedelta(days=2)
    index = GuardIndex.build(items, servers, now)

    assert index.groups == {
        frozenset({"mirror/s01e01", "expanse/s01e01"}): (*range(1000), 1001),
        frozenset({"expanse/s01e01"}): (1000,),
        frozenset(): (1002,),
    }
    assert index.matcher(0) is index.matcher(999) is index.matcher(1001)
    assert index.match(5, "Nanette, then the ship explodes") == ("mirror/s01e01", "expanse/s01e01")
    assert index.match(1000, "Nanette, then the ship explodes") == ("expanse/s01e01",)
    assert index.match(1002, "Nanette, then the ship explodes") == ()
    assert index.match(424242, "Nanette") == ()  # a server the index does not know
    # The next change: the default week ends for "expanse" and "mirror" before "later" airs.
    assert index.expires_at == RELEASE + timedelta(days=7)


def test_a_rebuild_reuses_matchers_whose_set_did_not_change():
    items = [
        with_terms(episode("mirror", 1)),
        with_terms(episode("expanse", 2, RELEASE + timedelta(days=3))),
    ]
    servers = {1: SpoilerSettings(), 2: SpoilerSettings(show_windows=(("expanse", OFF),))}
    before = GuardIndex.build(items, servers, RELEASE + timedelta(days=1))
    after = GuardIndex.build(items, servers, RELEASE + timedelta(days=4), previous=before)
    assert after.matcher(1) is not before.matcher(1)  # "expanse" was released in between
    assert after.matcher(2) is before.matcher(2)  # its window there is off: nothing changed
    assert after.match(1, "expanse term2") == ("expanse/s01e02",)


def test_a_rebuild_after_a_content_reload_uses_the_new_terms():
    servers = {1: SpoilerSettings()}
    now = RELEASE + timedelta(days=1)
    before = GuardIndex.build([with_terms(episode("mirror", 1), "Nanette")], servers, now)
    reloaded = [with_terms(episode("mirror", 1), "Nanette", "Bête Noire")]
    after = GuardIndex.build(reloaded, servers, now, previous=before)
    assert after.match(1, "bete noire") == ("mirror/s01e01",)


def test_next_change_is_the_first_release_or_window_end_after_now():
    items = [
        with_terms(episode("mirror", 1)),
        with_terms(episode("expanse", 1, RELEASE + timedelta(days=10))),
    ]
    servers = [
        SpoilerSettings(),
        SpoilerSettings(show_windows=(("mirror", DAY),)),
        SpoilerSettings(window=FOREVER),
    ]
    assert next_change(items, servers, RELEASE - timedelta(days=1)) == RELEASE
    assert next_change(items, servers, RELEASE) == RELEASE + timedelta(days=1)
    assert next_change(items, servers, RELEASE + timedelta(days=1)) == RELEASE + timedelta(days=7)
    assert next_change(items, servers, RELEASE + timedelta(days=7)) == RELEASE + timedelta(days=10)
    assert next_change(items, servers, RELEASE + timedelta(days=17)) is None  # only forever left


def test_the_index_needs_an_aware_instant():
    with pytest.raises(ValueError, match="timezone-aware"):
        GuardIndex.build([], {}, datetime(2026, 1, 1))


# --- spoiler_terms in the content -------------------------------------------------------


def test_valid_terms_are_kept_in_order_and_stripped():
    assert check_spoiler_terms([" Nanette ", "Bête Noire", "ナネット"]).terms == (
        "Nanette",
        "Bête Noire",
        "ナネット",
    )
    assert check_spoiler_terms(None) == check_spoiler_terms([])
    assert check_spoiler_terms([]).problems == ()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Nanette", "must be a list of phrases"),
        ({"a": 1}, "must be a list of phrases, not dict"),
        (["Nanette", 3], "item 2 must be text, not int"),
        (["  "], "item 1 is blank"),
        (["?!"], "item 1 '?!' has no letters or digits"),
        (["a"], "item 1 'a' is too short"),
        (
            ["x" * (MAX_TERM_LENGTH + 1)],
            f"is {MAX_TERM_LENGTH + 1} characters; the most is {MAX_TERM_LENGTH}",
        ),
        (["Nanette", "NANÉTTE"], "item 2 'NANÉTTE' repeats 'Nanette'"),
        (
            [f"term {n}" for n in range(MAX_TERMS + 1)],
            f"has {MAX_TERMS + 1} terms; the most is {MAX_TERMS}",
        ),
    ],
)
def test_bad_terms_get_a_clear_problem(value, problem):
    check = check_spoiler_terms(value)
    assert any(problem in line for line in check.problems), check.problems


def test_good_terms_survive_beside_bad_ones_and_long_terms_are_cut_when_quoted():
    check = check_spoiler_terms(["Nanette", "", "y" * 500])
    assert check.terms == ("Nanette",)
    assert len(check.problems) == 2
    assert all(len(line) < 120 for line in check.problems)


def test_every_valid_term_builds_a_matcher():
    check = check_spoiler_terms(["Nanette", "Bête Noire", "ナネット", "42"])
    assert TermMatcher({"a/s01e01": check.terms}).match("the answer is 42") == ("a/s01e01",)
