"""Replies that repeat what a member typed stay short and safe, however long or hostile the
text: cut with an ellipsis, on one line, and unable to ping, link or break out of markup."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.messages import ECHO_LIMIT, echo, unknown_episode_text, unknown_show_text
from bot.spoilers.policy import HIDE_SPOILING_TITLES
from bot.storage import Storage
from bot.ui import DURATION_MAX_LENGTH as DURATION_LIMIT
from bot.ui import EPISODE_MAX_LENGTH as NAME_LIMIT
from tests import markdown_oracle
from tests.support import MEMBER, MODERATOR, Harness

SPECIALS = set("\\*_~`|>#[]<@")
HOSTILE = "@everyone <@123> ||spoiler|| **bold** [link](https://x.test) `code` \u202e" * 100
REPLY_LIMIT = 2000


def unescaped_specials(text: str) -> list[str]:
    return [ch for ch in re.sub(r"\\.", "", text) if ch in SPECIALS]


@settings(max_examples=300)
@given(st.text(max_size=6000))
def test_an_echo_is_short_one_line_and_shows_exactly_what_was_typed(text):
    shown = echo(text)
    assert len(shown) <= 2 * ECHO_LIMIT  # each kept character at most escaped
    assert "\n" not in shown
    assert unescaped_specials(shown) == []
    visible = markdown_oracle.unescape(shown)
    assert len(visible) <= ECHO_LIMIT
    assert all(ch.isprintable() for ch in visible)
    # Every printable character as typed, any run of spaces or line breaks as one space.
    typed = " ".join("".join(ch for ch in text if ch.isprintable() or ch.isspace()).split())
    if visible.endswith("…") and not typed.endswith("…"):
        assert typed.startswith(visible[:-1])
    else:
        assert visible == typed


def test_a_long_echo_ends_with_an_ellipsis():
    assert echo("a" * 6000) == "a" * (ECHO_LIMIT - 1) + "…"
    assert echo("short " + " " * 6000 + "tail").endswith("…")
    assert echo("short") == "short"


def test_bidi_overrides_and_invisible_characters_are_dropped():
    assert echo("abc\u202edef\u200b\x00") == "abcdef"


@pytest.mark.parametrize("text", ["x" * 6000, HOSTILE, "\n" * 6000 + "@everyone"])
def test_unknown_episode_and_show_replies_stay_well_under_the_limit(text):
    for reply in (
        unknown_episode_text(text, [], HIDE_SPOILING_TITLES),
        unknown_show_text(text, []),
    ):
        assert len(reply) < 400
        assert unescaped_specials(reply.replace("`s7e6`", "")) == []


# -- through the commands -----------------------------------------------------------------


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[Harness]:
    url = f"sqlite:///{tmp_path}/embargo.db"
    storage = await Storage.open(url, tmp_path)
    bot_settings = Settings(
        discord_token=None,
        database_url=url,
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
    )
    try:
        async with Harness(EmbargoBot(bot_settings, storage)) as h:
            yield h
    finally:
        await storage.close()


def assert_short_safe_refusal(reply) -> None:
    assert reply.ephemeral
    assert len(reply.content) < REPLY_LIMIT // 4, len(reply.content)
    assert "Something went wrong" not in reply.content
    assert "@everyone" not in markdown_oracle.unescape(reply.content) or "\\@" in reply.content
    assert reply.allowed_mentions == {"parse": []}


# The longest values Discord's client lets through (longer ones are refused unread, see
# tests/test_commands_core.py).
@pytest.mark.parametrize("text", ["x" * NAME_LIMIT, HOSTILE[:NAME_LIMIT]])
async def test_commands_refuse_the_longest_values_in_a_short_safe_reply(harness, text):
    duration = text[:DURATION_LIMIT]
    replies = [
        await harness.slash("review", as_user=MEMBER, episode=text),
        await harness.slash("rankings", as_user=MEMBER, show=text),
        await harness.slash("embargo", subcommand="window", as_user=MODERATOR, duration=duration),
        await harness.slash(
            "embargo", subcommand="show-window", as_user=MODERATOR, show=text, duration="7d"
        ),
    ]
    for reply in replies:
        assert_short_safe_refusal(reply)


async def test_an_emoji_show_is_no_show(harness):
    reply = await harness.slash(
        "embargo", subcommand="show-window", as_user=MODERATOR, show="💩", duration="30d"
    )
    assert_short_safe_refusal(reply)
    assert "I don't know a show called “💩”" in reply.content


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.text(min_size=1, max_size=NAME_LIMIT))
async def test_any_text_to_any_text_option_gets_a_clear_reply_in_time(harness, text):
    duration = text[:DURATION_LIMIT]
    calls = [
        ("review", MEMBER, {"episode": text}),
        ("ending", MEMBER, {"episode": text}),
        ("spoilers", MEMBER, {"episode": text}),
        ("vote", MEMBER, {"episode": text, "score": 5}),
        ("myvotes", MEMBER, {"show": text}),
        ("rankings", MEMBER, {"show": text}),
        ("embargo", MODERATOR, {"subcommand": "window", "duration": duration}),
        ("embargo", MODERATOR, {"subcommand": "show-window", "show": text, "duration": duration}),
    ]
    for name, user, options in calls:
        started = time.monotonic()
        reply = await harness.slash(name, as_user=user, **options)
        assert time.monotonic() - started < 3.0, name
        content = reply.content or ""
        assert "Something went wrong" not in content, (name, content)
        assert len(content) < REPLY_LIMIT
