"""The content parser: good files become models, bad ones become problems with file:line."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.content.files import (
    ContentProblem,
    classify,
    normalise_code,
    parse_ranking_bytes,
    parse_review_bytes,
    parse_show_bytes,
)
from bot.content.files.reviews import (
    _NEAR_ENDING_HEADING,
    _find_ending_heading,
    _may_hold_near,
)
from bot.content.models import CriticRanking, Show
from bot.content.sync import dry_run
from tests.content_factory import (
    episode_table,
    ranking_toml,
    review_md,
    show_toml,
    write,
    write_catalogue,
)

SHOW_REL = "shows/test-show.toml"


def parse_show(path: Path, rel: str):
    return parse_show_bytes(path.read_bytes(), rel)


def parse_review(path: Path, rel: str, show: Show):
    return parse_review_bytes(path.read_bytes(), rel, frozenset(e.code for e in show.episodes))


def parse_ranking(path: Path, rel: str, show: Show):
    return parse_ranking_bytes(path.read_bytes(), rel, show)


def _show(tmp_path: Path, text: str, rel: str = SHOW_REL) -> tuple[Show | None, list]:
    return parse_show(write(tmp_path, rel, text), rel)


def _errors(problems: list[ContentProblem]) -> list[ContentProblem]:
    return [p for p in problems if p.severity == "error"]


def _line_of(text: str, needle: str, occurrence: int = 0) -> int:
    """1-based line number of the occurrence-th line containing ``needle``."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[occurrence]


def _a_show(tmp_path: Path, episodes: int = 3, slug: str = "test-show") -> Show:
    text = show_toml(episodes=[episode_table(1, n) for n in range(1, episodes + 1)])
    show, problems = _show(tmp_path, text, f"shows/{slug}.toml")
    assert show is not None, problems
    return show


# ---- shows ---------------------------------------------------------------------------


def test_good_show_parses_to_models(tmp_path):
    text = show_toml(
        title="Black Mirror",
        network="Netflix",
        timezone="Europe/London",
        episodes=[
            episode_table(7, 6, "USS Callister: Into Infinity", date(2025, 4, 10), ["Callister 2"]),
            episode_table(7, 1, "Common People", datetime(2025, 4, 10, 8, 0, tzinfo=UTC)),
            episode_table(0, 1, "Special", date(2025, 12, 24)),
        ],
    )
    show, problems = _show(tmp_path, text, "shows/black-mirror.toml")
    assert problems == []
    assert show is not None
    assert (show.slug, show.title, show.network, show.timezone) == (
        "black-mirror",
        "Black Mirror",
        "Netflix",
        "Europe/London",
    )
    # Sorted by season then number, whatever the file order.
    assert [e.code for e in show.episodes] == ["s00e01", "s07e01", "s07e06"]
    callister = show.episodes[2]
    assert callister.key == "black-mirror/s07e06"
    assert callister.title == "USS Callister: Into Infinity"
    assert callister.show_title == "Black Mirror"
    assert callister.aliases == ("Callister 2",)
    assert show.episodes[1].release_at == datetime(2025, 4, 10, 8, 0, tzinfo=UTC)


def test_offset_datetime_is_converted_to_utc(tmp_path):
    text = show_toml(episodes=[episode_table(1, 1)]).replace(
        "released = 2024-01-01", "released = 2025-04-10T21:00:00-04:00"
    )
    show, problems = _show(tmp_path, text)
    assert problems == []
    assert show is not None
    assert show.episodes[0].release_at == datetime(2025, 4, 11, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("released", "expected_utc"),
    [
        # British Summer Time (UTC+1): local midnight is 23:00 UTC the day before.
        (date(2025, 7, 1), datetime(2025, 6, 30, 23, 0, tzinfo=UTC)),
        # Greenwich Mean Time (UTC+0) in winter.
        (date(2025, 1, 15), datetime(2025, 1, 15, 0, 0, tzinfo=UTC)),
        # The day the clocks go forward (at 01:00): midnight is still GMT.
        (date(2025, 3, 30), datetime(2025, 3, 30, 0, 0, tzinfo=UTC)),
        # The day after: BST.
        (date(2025, 3, 31), datetime(2025, 3, 30, 23, 0, tzinfo=UTC)),
    ],
)
def test_date_only_release_is_midnight_in_the_show_timezone(tmp_path, released, expected_utc):
    text = show_toml(timezone="Europe/London", episodes=[episode_table(1, 1, released=released)])
    show, problems = _show(tmp_path, text)
    assert problems == []
    assert show is not None
    assert show.episodes[0].release_at == expected_utc
    assert show.episodes[0].release_at.utcoffset().total_seconds() == 0


def test_same_date_differs_by_timezone(tmp_path):
    london, _ = _show(
        tmp_path,
        show_toml(
            timezone="Europe/London", episodes=[episode_table(1, 1, released=date(2025, 1, 15))]
        ),
        "shows/a.toml",
    )
    new_york, _ = _show(
        tmp_path,
        show_toml(
            timezone="America/New_York", episodes=[episode_table(1, 1, released=date(2025, 1, 15))]
        ),
        "shows/b.toml",
    )
    assert london is not None
    assert new_york is not None
    gap = new_york.episodes[0].release_at - london.episodes[0].release_at
    assert gap.total_seconds() == 5 * 3600


def test_local_datetime_without_offset_is_an_error_on_its_line(tmp_path):
    episodes = [episode_table(1, 1), episode_table(1, 2), episode_table(1, 3)]
    text = show_toml(episodes=episodes)
    # Only the second episode's release lacks an offset.
    lines = text.splitlines()
    target = _line_of(text, "released", occurrence=1)
    lines[target - 1] = "released = 2025-04-10T21:00:00"
    text = "\n".join(lines) + "\n"
    show, problems = _show(tmp_path, text)
    assert show is None
    [problem] = problems
    assert problem.path == SHOW_REL
    assert problem.line == target
    assert problem.message.startswith("episode s01e02: 'released' 2025-04-10T21:00:00 has no UTC")
    assert "add Z" in problem.message
    assert str(problem) == f"{SHOW_REL}:{target}: {problem.message}"


def test_unknown_timezone_is_reported_on_its_line_with_a_suggestion(tmp_path):
    text = show_toml(timezone="Europe/Londn", episodes=[episode_table(1, 1)])
    show, problems = _show(tmp_path, text)
    assert show is None
    [problem] = problems
    assert problem.line == _line_of(text, "timezone")
    assert 'unknown timezone "Europe/Londn"' in problem.message
    assert 'did you mean "Europe/London"?' in problem.message


@pytest.mark.parametrize("zone", ["Europe", "../etc/passwd", ""])
def test_timezone_that_is_not_a_zone_is_an_error(tmp_path, zone):
    show, problems = _show(tmp_path, show_toml(timezone=zone, episodes=[episode_table(1, 1)]))
    assert show is None
    assert [p.line for p in problems] == [3]


def test_duplicate_episode_is_reported_at_the_second_listing(tmp_path):
    text = show_toml(
        episodes=[episode_table(1, 1), episode_table(1, 2), episode_table(1, 1, "Again")]
    )
    show, problems = _show(tmp_path, text)
    assert show is None
    [problem] = problems
    first, second = _line_of(text, "[[episodes]]", 0), _line_of(text, "[[episodes]]", 2)
    assert problem.line == second
    assert problem.message == f"episode s01e01 is listed twice (first listed on line {first})"


def test_duplicate_is_found_even_when_the_first_listing_has_errors(tmp_path):
    text = show_toml(episodes=[episode_table(1, 1, released="oops"), episode_table(1, 1)])
    _, problems = _show(tmp_path, text)
    assert [p.line for p in problems] == [
        _line_of(text, "oops"),
        _line_of(text, "[[episodes]]", 1),
    ]
    assert problems[1].message.startswith("episode s01e01 is listed twice")


def test_toml_syntax_error_surfaces_its_line_and_column(tmp_path):
    text = (
        'title = "Broken"\nnetwork = "N"\ntimezone = "UTC"\n\n[[episodes]]\nseason = 1\nnumber = \n'
    )
    show, problems = _show(tmp_path, text)
    assert show is None
    [problem] = problems
    assert problem.line == 7
    assert problem.message.startswith("not valid TOML: Invalid value")
    assert "(column 10)" in problem.message


def test_invalid_toml_date_gets_a_hint(tmp_path):
    text = show_toml(episodes=[episode_table(1, 1)]).replace("2024-01-01", "2024-02-30")
    show, problems = _show(tmp_path, text)
    assert show is None
    [problem] = problems
    assert problem.line == _line_of(text, "2024-02-30")
    assert "dates look like 2025-04-10" in problem.message


def test_bad_season_and_number_are_reported_per_key(tmp_path):
    text = show_toml(episodes=[episode_table(1, 1), episode_table(-1, 0)])
    show, problems = _show(tmp_path, text)
    assert show is None
    by_line = {p.line: p.message for p in problems}
    assert by_line == {
        _line_of(text, "season = -1"): "episode #2: 'season' must be a whole number, 0 for "
        "specials, got -1",
        _line_of(text, "number = 0"): "episode #2: 'number' must be a whole number from 1, got 0",
    }


def test_boolean_is_not_a_number(tmp_path):
    text = show_toml(
        episodes=[{"season": True, "number": 1, "title": "x", "released": date(2024, 1, 1)}]
    )
    show, problems = _show(tmp_path, text)
    assert show is None
    assert "'season' must be a whole number" in problems[0].message


def test_missing_release_points_at_the_episode_header(tmp_path):
    text = show_toml(episodes=[episode_table(1, 1), {"season": 1, "number": 2, "title": "No date"}])
    show, problems = _show(tmp_path, text)
    assert show is None
    [problem] = problems
    assert problem.line == _line_of(text, "[[episodes]]", 1)
    assert problem.message.startswith("episode s01e02: 'released' is missing")


def test_quoted_release_date_is_an_error_with_the_fix(tmp_path):
    text = show_toml(episodes=[episode_table(1, 1, released="2025-04-10")])
    show, problems = _show(tmp_path, text)
    assert show is None
    assert "written without quotes: released = 2025-04-10" in problems[0].message
    assert problems[0].line == _line_of(text, "released")


def test_missing_top_level_fields(tmp_path):
    show, problems = _show(
        tmp_path, "[[episodes]]\nseason = 1\nnumber = 1\ntitle = 'x'\nreleased = 2024-01-01\n"
    )
    assert show is None
    messages = [p.message for p in problems]
    assert any(m.startswith("'title' must be") for m in messages)
    assert any(m.startswith("'network' must be") for m in messages)
    assert (
        "'timezone' is missing: it must be an IANA time zone name, like "
        'timezone = "Europe/London"'
    ) in messages


def test_alias_with_a_newline_is_an_error(tmp_path):
    text = show_toml(episodes=[episode_table(1, 1, aliases=["ok", "two\nlines"])])
    show, problems = _show(tmp_path, text)
    assert show is None
    assert problems[0].line == _line_of(text, "aliases")


def test_title_spoils_marks_an_episode_and_defaults_to_false(tmp_path):
    text = show_toml(
        episodes=[
            {**episode_table(1, 1, "The Twist"), "title_spoils": True},
            {**episode_table(1, 2), "title_spoils": False},
            episode_table(1, 3),
        ]
    )
    show, problems = _show(tmp_path, text)
    assert show is not None, problems
    assert problems == []
    assert [e.title_spoils for e in show.episodes] == [True, False, False]


@pytest.mark.parametrize(
    ("value", "shown"), [("yes", '"yes"'), ("true", '"true"'), (1, "1"), ([True], "[true]")]
)
def test_title_spoils_must_be_a_boolean_on_its_line(tmp_path, value, shown):
    text = show_toml(episodes=[episode_table(1, 1), {**episode_table(1, 2), "title_spoils": value}])
    show, problems = _show(tmp_path, text)
    assert show is None
    [problem] = problems
    assert problem.severity == "error"
    assert problem.line == _line_of(text, "title_spoils")
    assert problem.message == (
        "episode s01e02: 'title_spoils' must be true or false, without quotes, like "
        f"title_spoils = true, got {shown}"
    )


def test_unknown_key_is_a_warning_and_the_show_still_loads(tmp_path):
    text = show_toml(episodes=[{**episode_table(1, 1), "relased": date(2024, 1, 1)}])
    show, problems = _show(tmp_path, text)
    assert show is not None
    [problem] = problems
    assert problem.severity == "warning"
    assert problem.line == _line_of(text, "relased")
    assert problem.message == "episode s01e01: unknown key 'relased' (ignored)"


def test_show_without_episodes_loads_with_a_warning(tmp_path):
    show, problems = _show(tmp_path, show_toml())
    assert show is not None
    assert show.episodes == ()
    assert [p.severity for p in problems] == ["warning"]


def test_not_utf8_is_reported(tmp_path):
    path = tmp_path / SHOW_REL
    path.parent.mkdir(parents=True)
    path.write_bytes(b'title = "caf\xe9"\n')
    show, problems = parse_show(path, SHOW_REL)
    assert show is None
    assert problems == [
        ContentProblem(SHOW_REL, 1, "the file is not valid UTF-8: save it as UTF-8")
    ]


# ---- reviews -------------------------------------------------------------------------

REVIEW_REL = "reviews/test-show/s01e02.md"


def _review(tmp_path: Path, text: str, show: Show, rel: str = REVIEW_REL):
    return parse_review(write(tmp_path, rel, text), rel, show)


def test_review_splits_body_and_ending(tmp_path):
    show = _a_show(tmp_path)
    text = (
        '+++\nrating = 4.5\nverdict = "Sharp."\nauthor = "Ann"\npublished = 2024-01-03\n+++\n\n'
        "The setup is great.\n\n##   ENDING explained  \n\nThe butler did it.\n"
    )
    review, problems = _review(tmp_path, text, show)
    assert problems == []
    assert review is not None
    assert review.episode_key == "test-show/s01e02"
    assert review.rating == 4.5
    assert (review.verdict, review.author, review.published) == ("Sharp.", "Ann", date(2024, 1, 3))
    assert review.body == "The setup is great."
    assert review.ending == "The butler did it."


def test_everything_after_the_heading_is_ending(tmp_path):
    show = _a_show(tmp_path)
    text = review_md("Safe.", "Twist one.\n\n## Aftermath\n\nTwist two.")
    review, _ = _review(tmp_path, text, show)
    assert review is not None
    assert review.body == "Safe."
    assert review.ending == "Twist one.\n\n## Aftermath\n\nTwist two."


def test_review_without_heading_has_no_ending(tmp_path):
    show = _a_show(tmp_path)
    review, problems = _review(tmp_path, review_md("Just the review."), show)
    assert problems == []
    assert review is not None
    assert review.ending is None
    assert review.body == "Just the review."


@pytest.mark.parametrize(
    ("rating", "shown"), [(7, "7"), (4.3, "4.3"), (-0.5, "-0.5"), ("4", '"4"'), (True, "true")]
)
def test_rating_out_of_range_or_not_a_half_step(tmp_path, rating, shown):
    show = _a_show(tmp_path)
    text = review_md(rating=rating)
    review, problems = _review(tmp_path, text, show)
    assert review is None
    [problem] = problems
    assert problem.line == _line_of(text, "rating")
    assert problem.message == (
        f"'rating' must be between 0 and 5 in half steps, like rating = 4.5, got {shown}"
    )


@pytest.mark.parametrize("rating", [0, 0.5, 3, 5.0])
def test_valid_ratings(tmp_path, rating):
    show = _a_show(tmp_path)
    review, problems = _review(tmp_path, review_md(rating=rating), show)
    assert problems == []
    assert review is not None
    assert review.rating == float(rating)


def test_multiline_verdict_is_an_error(tmp_path):
    show = _a_show(tmp_path)
    text = review_md().replace('verdict = "Worth your evening."', 'verdict = """Two\nlines"""')
    review, problems = _review(tmp_path, text, show)
    assert review is None
    assert problems[0].line == _line_of(text, "verdict")
    assert "must be one line" in problems[0].message


def test_long_verdict_is_an_error(tmp_path):
    show = _a_show(tmp_path)
    review, problems = _review(tmp_path, review_md(verdict="x" * 257), show)
    assert review is None
    assert "257 characters long: keep it to 256" in problems[0].message
    review, problems = _review(tmp_path, review_md(verdict="x" * 256), show)
    assert review is not None


def test_published_must_be_a_date(tmp_path):
    show = _a_show(tmp_path)
    text = review_md(published=datetime(2024, 1, 2, 10, 0, tzinfo=UTC))
    review, problems = _review(tmp_path, text, show)
    assert review is None
    assert problems[0].line == _line_of(text, "published")


@pytest.mark.parametrize("body", ["", "   \n\n  "])
def test_empty_body_is_an_error(tmp_path, body):
    show = _a_show(tmp_path)
    review, problems = _review(tmp_path, review_md(body), show)
    assert review is None
    assert "no spoiler-free text" in problems[0].message


def test_body_only_under_the_ending_heading_is_an_error(tmp_path):
    show = _a_show(tmp_path)
    text = review_md("", "All spoilers.")
    review, problems = _review(tmp_path, text, show)
    assert review is None
    assert "no spoiler-free text" in problems[0].message
    assert problems[0].line == _line_of(text, "## Ending explained")


def test_heading_with_nothing_under_it_is_an_error(tmp_path):
    show = _a_show(tmp_path)
    text = review_md("Fine.", "")
    review, problems = _review(tmp_path, text, show)
    assert review is None
    assert problems[0].line == _line_of(text, "## Ending explained")


@pytest.mark.parametrize(
    "heading",
    [
        "### Ending explained",
        "# Ending Explained",
        "## Ending explained:",
        "**Ending explained**",
        "## Ending explained: " + "and more " * 400,
    ],
)
def test_near_miss_heading_would_leak_spoilers_so_it_is_an_error(tmp_path, heading):
    show = _a_show(tmp_path)
    text = review_md(f"Safe part.\n\n{heading}\n\nThe twist.")
    review, problems = _review(tmp_path, text, show)
    assert review is None
    [problem] = problems
    assert problem.line == _line_of(text, heading)
    assert "would be shown as spoiler-free" in problem.message
    # The line is quoted, cut short if long.
    assert problem.message.startswith(f'"{heading[:20]}')
    assert len(problem.message) < 250


def test_prose_mentioning_the_ending_is_not_a_heading(tmp_path):
    show = _a_show(tmp_path)
    review, problems = _review(tmp_path, review_md("The ending explained nothing, sadly."), show)
    assert problems == []
    assert review is not None


def test_front_matter_toml_error_has_the_file_line(tmp_path):
    show = _a_show(tmp_path)
    text = '+++\nrating = 4\nverdict = "ok\nauthor = "A"\n+++\nBody\n'
    review, problems = _review(tmp_path, text, show)
    assert review is None
    [problem] = problems
    assert problem.line == 3  # the unterminated string, counting the opening +++ as line 1
    assert problem.message.startswith("not valid TOML")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Just text\n", "a review starts with TOML front matter"),
        ("+++\nrating = 4\nBody\n", "never closed"),
    ],
)
def test_missing_or_unclosed_front_matter(tmp_path, text, message):
    show = _a_show(tmp_path)
    review, problems = _review(tmp_path, text, show)
    assert review is None
    assert problems[0].line == 1
    assert message in problems[0].message


def test_review_for_an_episode_not_in_the_show(tmp_path):
    show = _a_show(tmp_path, episodes=2)
    rel = "reviews/test-show/s01e09.md"
    review, problems = _review(tmp_path, review_md(), show, rel)
    assert review is None
    [problem] = problems
    assert problem.path == rel
    assert problem.message.startswith("episode s01e09 is not in shows/test-show.toml")


@pytest.mark.parametrize(
    ("rel", "message"),
    [
        ("reviews/test-show/s1e2.md", "rename this file to s01e02.md"),
        ("reviews/test-show/pilot.md", "named by episode code"),
        ("reviews/Test_Show/s01e02.md", "not a valid slug"),
    ],
)
def test_misnamed_review_files(rel, message):
    problem = classify(rel)
    assert isinstance(problem, ContentProblem)
    assert problem.severity == "error"
    assert message in problem.message


def test_classify_ignores_non_content_and_warns_on_strays():
    assert classify("embargo.db") is None
    assert classify("shows/.black-mirror.toml.swp") is None
    stray = classify("shows/notes.txt")
    assert isinstance(stray, ContentProblem)
    assert stray.severity == "warning"


# ---- rankings ------------------------------------------------------------------------

RANKING_REL = "rankings/test-show.toml"


def _ranking(tmp_path: Path, text: str, show: Show):
    return parse_ranking(write(tmp_path, RANKING_REL, text), RANKING_REL, show)


def test_worst_to_best_is_stored_best_first_and_codes_are_normalised(tmp_path):
    show = _a_show(tmp_path)
    text = ranking_toml(["S1E2", "s01e03", "s1e01"], order="worst-to-best", author="Ann")
    ranking, problems = _ranking(tmp_path, text, show)
    assert problems == []
    assert ranking == CriticRanking("test-show", "Ann", ("s01e01", "s01e03", "s01e02"))


def test_best_to_worst_keeps_its_order(tmp_path):
    show = _a_show(tmp_path)
    ranking, _ = _ranking(tmp_path, ranking_toml(["s01e02", "s01e03", "s01e01"]), show)
    assert ranking is not None
    assert ranking.best_first == ("s01e02", "s01e03", "s01e01")


def test_unknown_and_duplicate_codes_are_errors_on_their_lines(tmp_path):
    show = _a_show(tmp_path)
    text = ranking_toml(["s01e01", "s01e09", "s01e02", "S1E1", "s01e03"])
    ranking, problems = _ranking(tmp_path, text, show)
    assert ranking is None
    first = _line_of(text, '"s01e01"')
    assert [(p.line, p.message) for p in _errors(problems)] == [
        (_line_of(text, '"s01e09"'), "episode s01e09 is not in shows/test-show.toml"),
        (
            _line_of(text, '"S1E1"'),
            f"episode s01e01 is ranked twice (first on line {first})",
        ),
    ]


def test_same_literal_twice_points_at_the_second(tmp_path):
    show = _a_show(tmp_path)
    text = ranking_toml(["s01e01", "s01e02", "s01e01", "s01e03"])
    _, problems = _ranking(tmp_path, text, show)
    [problem] = _errors(problems)
    assert problem.line == _line_of(text, '"s01e01"', occurrence=1)


def test_missing_episodes_are_a_warning_but_specials_are_not(tmp_path):
    text = show_toml(episodes=[episode_table(0, 1), *(episode_table(1, n) for n in (1, 2, 3))])
    show, _ = _show(tmp_path, text)
    assert show is not None
    ranking, problems = _ranking(tmp_path, ranking_toml(["s01e02"]), show)
    assert ranking is not None
    [problem] = problems
    assert problem.severity == "warning"
    assert problem.message == "2 episode(s) not ranked: s01e01, s01e03"


def test_bad_order_and_non_code_entries(tmp_path):
    show = _a_show(tmp_path)
    text = ranking_toml(["s01e01", "pilot"], order="ascending")
    ranking, problems = _ranking(tmp_path, text, show)
    assert ranking is None
    messages = {p.line: p.message for p in _errors(problems)}
    assert messages[_line_of(text, "order")].startswith(
        '\'order\' must be one of "worst-to-best" or "best-to-worst", got "'
    )
    assert messages[_line_of(text, '"pilot"')] == '"pilot" is not an episode code like "s07e06"'


def test_normalise_code():
    assert normalise_code("S7E6") == "s07e06"
    assert normalise_code("s100e12") == "s100e12"
    assert normalise_code("7x06") is None


# ---- the whole directory -------------------------------------------------------------


async def test_content_dir_cross_file_checks(tmp_path):
    write(
        tmp_path, "shows/good.toml", show_toml(episodes=[episode_table(1, 1), episode_table(1, 2)])
    )
    write(tmp_path, "reviews/good/s01e01.md", review_md("Fine.", "Twist."))
    write(tmp_path, "reviews/good/s01e05.md", review_md())
    write(tmp_path, "reviews/ghost/s01e01.md", review_md())
    write(tmp_path, "reviews/ghost/s01e02.md", review_md())
    write(tmp_path, "rankings/good.toml", ranking_toml(["s01e02", "s01e01"]))
    write(tmp_path, "rankings/ghost.toml", ranking_toml(["s01e01"]))
    write(tmp_path, "embargo.db", "not content")

    report, loaded = await dry_run(tmp_path)

    assert list(loaded.shows) == ["good"]
    assert list(loaded.reviews) == ["good/s01e01"]
    assert list(loaded.rankings) == ["good"]
    assert sorted((p.path, p.message.split(":")[0]) for p in report.errors) == [
        ("rankings/ghost.toml", "this ranking was not loaded"),
        ("reviews/ghost", "2 reviews not loaded"),
        ("reviews/good/s01e05.md", "episode s01e05 is not in shows/good.toml"),
    ]
    assert "reviews/ghost: 2 reviews not loaded: there is no show file shows/ghost.toml" in {
        str(p) for p in report.errors
    }
    assert report.loaded == ("rankings/good.toml", "reviews/good/s01e01.md", "shows/good.toml")


async def test_reviews_of_a_broken_show_say_so(tmp_path):
    write(
        tmp_path,
        "shows/broken.toml",
        show_toml(timezone="Mars/Olympus", episodes=[episode_table(1, 1)]),
    )
    write(tmp_path, "reviews/broken/s01e01.md", review_md())
    report, loaded = await dry_run(tmp_path)
    assert loaded.reviews == {}
    assert [str(p) for p in report.errors][1] == (
        "reviews/broken: 1 review not loaded: shows/broken.toml did not load (see its errors)"
    )


async def test_synthetic_catalogue_is_valid(tmp_path):
    catalogue = write_catalogue(tmp_path, shows=3, episodes_per_show=12, review_bytes=600)
    report, loaded = await dry_run(tmp_path)
    assert report.problems == ()
    assert len(loaded.shows) == 3
    assert len(loaded.reviews) == loaded.review_count == catalogue.reviews == 36
    assert all(r.ending for r in loaded.reviews.values())
    assert len(loaded.rankings) == 3


# ---- the fast path is exact ------------------------------------------------------------
# The ending heading is found without a multi-line regex search. It must give exactly what
# the regex gives, on anything.

_OLD_ENDING_HEADING = re.compile(
    r"^[ \t]*##[ \t]+ending[ \t]+explained[ \t]*#*[ \t]*$", re.IGNORECASE | re.MULTILINE
)
_HEADING_LINES = (
    "## Ending explained",
    "##ending explained",
    "  ## ENDING   EXPLAINED ##",
    "### Ending explained",
    "text ## Ending explained",
    "## Ending explained:",
    "## Ending expla\u0131ned",
    "##\tEnding\texplained\t",
    "**Ending explained**",
    "ending explained:",
    "end\u0131ng expla\u0131ned",
    "# Ending Explained",
    "##",
    "## ##",
    "",
    "Prose that mentions the ending, explained later.",
)


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(_HEADING_LINES), max_size=6))
def test_heading_search_and_near_miss_check_match_the_regexes(lines):
    text = "\n".join(lines)
    old = _OLD_ENDING_HEADING.search(text)
    assert _find_ending_heading(text) == (old.span() if old else None)
    if any(_NEAR_ENDING_HEADING.match(line) for line in text.splitlines()):
        assert _may_hold_near(text)


# Values a message quotes are written as TOML, so an owner can paste them back.
_toml_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.dates()
    | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_toml_scalars, st.lists(_toml_scalars, max_size=3)))
def test_quoted_values_are_toml_that_reads_back(value):
    from bot.content.files.fields import SHOWN_VALUE_CHARS, toml_value

    shown = toml_value(value)
    assert len(shown) <= SHOWN_VALUE_CHARS
    if not shown.endswith("…"):
        assert tomllib.loads(f"v = {shown}")["v"] == value


def test_quoted_values_are_bounded():
    from bot.content.files.fields import SHOWN_VALUE_CHARS, toml_value

    assert len(toml_value("x" * 100_000)) == SHOWN_VALUE_CHARS
    assert len(toml_value(list(range(100_000)))) == SHOWN_VALUE_CHARS


def test_missing_values_say_missing_and_wrong_ones_are_quoted_as_toml(tmp_path):
    text = (
        'title = "T"\nnetwork = "N"\ntimezone = "UTC"\n'
        "[[episodes]]\nnumber = true\ntitle = 'x'\nreleased = 2024-01-01\n"
        "[[episodes]]\nseason = 1\nnumber = 2\ntitle = 'y'\nreleased = 2024-01-01T08:00:00\n"
        "[[episodes]]\nseason = 1\nnumber = 3\ntitle = 'z'\nreleased = 'last tuesday'\n"
    )
    _, problems = _show(tmp_path, text)
    messages = [p.message for p in problems]
    assert messages == [
        "episode #1: 'season' is missing: it must be a whole number, 0 for specials",
        "episode #1: 'number' must be a whole number from 1, got true",
        "episode s01e02: 'released' 2024-01-01T08:00:00 has no UTC offset: add Z for UTC or an "
        "offset, like released = 2024-01-01T08:00:00Z or released = 2024-01-01T08:00:00-05:00",
        "episode s01e03: 'released' must be a TOML date, written without quotes, like "
        'released = 2025-04-10, got "last tuesday"',
    ]
    assert not any("None" in m or "True" in m for m in messages)
    # Every suggested line is TOML that reads as the kind of value asked for.
    for fix in re.findall(r"released = [-0-9T:Z]+", " ".join(messages)):
        assert isinstance(tomllib.loads(fix)["released"], datetime | date)


def test_review_and_ranking_values_missing_or_python_typed(tmp_path):
    show = _a_show(tmp_path)
    text = "+++\nverdict = 'v'\nauthor = 'a'\npublished = 2025-04-12T00:00:00\n+++\nBody.\n"
    review, problems = _review(tmp_path, text, show)
    assert review is None
    assert [p.message for p in problems] == [
        "'rating' is missing: it must be between 0 and 5 in half steps, like rating = 4.5",
        "'published' must be a date, like published = 2025-04-12, got 2025-04-12T00:00:00",
    ]
    path = write(tmp_path, "rankings/test-show.toml", "author = 'a'\nepisodes = ['s01e01', 5]\n")
    _, problems = parse_ranking(path, "rankings/test-show.toml", show)
    messages = [p.message for p in problems if p.severity == "error"]
    assert messages == [
        '\'order\' is missing: it must be one of "worst-to-best" or "best-to-worst"',
        '5 is not an episode code like "s07e06"',
    ]


def test_spoiler_terms_are_read_from_the_front_matter(tmp_path):
    show = _a_show(tmp_path)
    text = (
        '+++\nrating = 4\nverdict = "Sharp."\nauthor = "Ann"\npublished = 2024-01-03\n'
        'spoiler_terms = ["Bête Noire", "  the butler  "]\n+++\n\nThe setup is great.\n'
    )
    review, problems = _review(tmp_path, text, show)
    assert problems == []
    assert review is not None
    assert review.spoiler_terms == ("Bête Noire", "the butler")


def test_bad_spoiler_terms_are_errors_on_their_line(tmp_path):
    show = _a_show(tmp_path)
    text = (
        '+++\nrating = 4\nverdict = "Sharp."\nauthor = "Ann"\npublished = 2024-01-03\n'
        'spoiler_terms = ["butler", "BUTLER", "x"]\n+++\n\nThe setup is great.\n'
    )
    review, problems = _review(tmp_path, text, show)
    assert review is None
    assert [p.line for p in problems] == [_line_of(text, "spoiler_terms")] * 2
    assert "repeats 'butler'" in problems[0].message
    assert "too short" in problems[1].message
