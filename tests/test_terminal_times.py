"""Discord timestamp tags written out for a terminal."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.messages import timestamp
from bot.terminal_times import readable_times, relative_text

NOW = datetime(2025, 5, 26, 8, 0, tzinfo=UTC)
LATER = datetime(2025, 5, 29, 8, 0, tzinfo=UTC)


def test_a_time_and_its_relative_tag_read_as_one_date_and_distance():
    text = f"until {timestamp(LATER)} ({timestamp(LATER, 'R')})."
    assert readable_times(text, NOW) == "until 2025-05-29 08:00 UTC (in 3 days)."


@pytest.mark.parametrize("style", ["t", "T", "d", "D", "f", "F"])
def test_every_absolute_style_is_the_utc_date_and_time(style):
    assert readable_times(timestamp(LATER, style), NOW) == "2025-05-29 08:00 UTC (in 3 days)"


def test_a_relative_tag_alone_keeps_its_date():
    text = f"voted {timestamp(NOW - timedelta(hours=5), 'R')}"
    assert readable_times(text, NOW) == "voted 5 hours ago (2025-05-26 03:00 UTC)"


def test_tags_of_different_instants_are_each_written_out():
    text = f"{timestamp(LATER)} ({timestamp(NOW, 'R')})"
    assert readable_times(text, NOW) == (
        "2025-05-29 08:00 UTC (in 3 days) (a few seconds ago (2025-05-26 08:00 UTC))"
    )


@pytest.mark.parametrize(
    "text", ["<t:99999999999999>", "<t:abc:R>", "<t:1748505600:x>", "no tags", "<t:", ""]
)
def test_what_is_not_a_tag_or_beyond_the_calendar_is_left_alone(text):
    assert readable_times(text, NOW) == text


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=10), "in a few seconds"),
        (timedelta(minutes=-1), "1 minute ago"),
        (timedelta(minutes=44), "in 44 minutes"),
        (timedelta(minutes=50), "in 1 hour"),
        (timedelta(hours=-21), "21 hours ago"),
        (timedelta(hours=23), "in 1 day"),
        (timedelta(days=20, hours=19), "in 21 days"),
        (timedelta(days=-60), "2 months ago"),
        (timedelta(days=400), "in 1 year"),
        (timedelta(days=-3 * 365), "3 years ago"),
    ],
)
def test_relative_words(delta, words):
    assert relative_text(NOW + delta, NOW) == words


@given(st.text(alphabet="<t:0123456789fR> ()x", max_size=300))
def test_text_around_tags_is_kept_and_no_tag_survives_whole(text):
    out = readable_times(text, NOW)
    # Anything not shaped as a tag is untouched; every well-formed tag in range is replaced.
    if "<t:" not in text:
        assert out == text
    for instant in (LATER, NOW):
        assert timestamp(instant) not in readable_times(f"{text}{timestamp(instant)}", NOW)
