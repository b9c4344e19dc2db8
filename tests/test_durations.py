from datetime import timedelta

import pytest

from bot.spoilers.durations import (
    DEFAULT_SPOILER_WINDOW,
    DurationError,
    SpoilerWindow,
    format_timedelta,
    parse_window,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("36h", timedelta(hours=36)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1d 12h", timedelta(days=1, hours=12)),
        ("1 day 12 hours", timedelta(days=1, hours=12)),
        ("90m", timedelta(minutes=90)),
        ("  3 Weeks ", timedelta(weeks=3)),
        ("1000d", timedelta(days=1000)),
        ("3650d", timedelta(days=3650)),
        ("0d", timedelta(0)),
    ],
)
def test_parses_durations(text, expected):
    assert parse_window(text).length == expected


@pytest.mark.parametrize("text", ["off", "OFF", "none", "0"])
def test_off_means_no_window(text):
    window = parse_window(text)
    assert window.is_off
    assert window.seconds == 0
    assert window.describe() == "off"


@pytest.mark.parametrize("text", ["forever", "Forever", "always"])
def test_forever_has_no_end(text):
    window = parse_window(text)
    assert window.is_forever
    assert window.seconds is None
    assert window.describe() == "forever"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "7",
        "d",
        "7x",
        "seven days",
        "7d7d",
        "-3d",
        "7d banana",
        "1.5d",
        "3651d",
        "522w",
        "99999999999999999999d",
    ],
)
def test_rejects_bad_durations_with_examples(text):
    with pytest.raises(DurationError) as info:
        parse_window(text)
    message = str(info.value)
    assert "`7d`" in message or "3650" in message


def test_maximum_is_ten_years():
    with pytest.raises(DurationError, match="3650 days"):
        parse_window("3651d")


def test_default_window_is_seven_days():
    assert DEFAULT_SPOILER_WINDOW.length == timedelta(days=7)


@pytest.mark.parametrize(
    ("length", "text"),
    [
        (timedelta(days=7), "1 week"),
        (timedelta(days=14), "2 weeks"),
        (timedelta(days=1, hours=12), "1 day 12 hours"),
        (timedelta(hours=36), "1 day 12 hours"),
        (timedelta(days=1000), "1000 days"),
        (timedelta(minutes=90), "1 hour 30 minutes"),
    ],
)
def test_formats_durations(length, text):
    assert format_timedelta(length) == text


def test_round_trips_through_seconds():
    for text in ["7d", "off", "forever", "1d12h"]:
        window = parse_window(text)
        assert SpoilerWindow.from_seconds(window.seconds) == window
