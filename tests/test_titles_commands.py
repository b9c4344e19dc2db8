"""A title that spoils, through discord.py and the stand-in: before the episode's window ends in
a server, no payload the bot sends shows it outside spoiler tags (message content, embeds,
autocomplete choices, charts); once the window has ended, it shows like any other title."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.client import EmbargoBot
from bot.config import Settings
from bot.storage import Storage
from tests.spoiling_titles import (
    ALIAS,
    KEY,
    OPEN_TITLE,
    RELEASE,
    SHOW,
    SLUG,
    Seen,
    seen_in,
    tour,
    write_show,
)
from tests.support import MODERATOR, Harness

SECRET = "Marlowe Poisons the Crew"
LATER_SECRET = "Everyone Drowns"
WORDS = ("Marlowe", "Poisons", "Drowns", ALIAS)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    harness: Harness
    clock: Clock


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    content = tmp_path / "content"
    write_show(content, SECRET, LATER_SECRET)
    url = f"sqlite:///{tmp_path}/embargo.db"
    storage = await Storage.open(url, tmp_path)
    settings = Settings(
        discord_token=None,
        database_url=url,
        content_dir=content,
        log_level="INFO",
        dev_guild_id=None,
    )
    clock = Clock(RELEASE + timedelta(days=2))
    try:
        async with Harness(EmbargoBot(settings, storage, clock=clock)) as harness:
            yield World(harness, clock)
    finally:
        await storage.close()


def assert_nothing_shows(seen: Seen) -> None:
    assert seen.hazards == []
    leaked = [word for word in WORDS if seen.shows(word)]
    assert leaked == [], [part for part in seen.visible if any(w in part for w in leaked)]


async def test_a_spoiling_title_shows_nowhere_while_the_window_runs(world: World):
    seen = seen_in(await tour(world.harness))
    assert_nothing_shows(seen)
    # The tour did reach the episode everywhere: its code and the open title are on show,
    # the hidden title is inside tags where tags work, and the chart images were sent.
    assert seen.shows(f"{SHOW} S2E9 · title hidden")  # choice names, embed titles
    assert seen.shows(f"{SHOW} S2E9 · *title hidden*")  # embeds: /spoilers, rankings, /myvotes
    assert seen.shows(OPEN_TITLE)
    assert seen.hides(SECRET)  # /ending's heading, /vote's reply, the suggestions
    assert seen.hides(LATER_SECRET)  # the unreleased one's /ending and /vote refusals
    assert len(seen.files) == 2


async def test_the_title_shows_once_the_window_has_ended(world: World):
    world.clock.now = RELEASE + timedelta(days=7)  # the default window, half-open
    seen = seen_in(await tour(world.harness))
    assert seen.hazards == []
    assert seen.shows(f"{SHOW} S2E9 · {SECRET}")  # choices and the /review embed title
    assert seen.shows(f"`S2E9` {SECRET}")  # ranking and /myvotes rows
    assert seen.shows(f"**{SHOW} S2E9 · {SECRET}**")  # /ending, /vote
    assert not seen.hides(SECRET)
    # The unreleased episode's window has not even started.
    assert not seen.shows(LATER_SECRET)
    assert seen.hides(LATER_SECRET)


async def test_found_by_title_only_once_the_window_has_ended(world: World):
    hidden = await world.harness.autocomplete("review", "episode", "marlowe")
    assert hidden == []
    by_alias = await world.harness.slash("review", episode=ALIAS)
    assert by_alias.content is not None
    assert by_alias.content.startswith("I couldn't find an episode matching")
    by_code = await world.harness.autocomplete("review", "episode", "pact s2e9")
    assert by_code == [{"name": f"{SHOW} S2E9 · title hidden", "value": KEY}]

    world.clock.now = RELEASE + timedelta(days=7)
    shown = await world.harness.autocomplete("review", "episode", "marlowe")
    assert shown == [{"name": f"{SHOW} S2E9 · {SECRET}", "value": KEY}]
    assert (await world.harness.slash("review", episode=ALIAS)).embeds


async def test_each_place_follows_its_own_window(world: World):
    world.clock.now = RELEASE + timedelta(days=10)
    # This server keeps the show's spoilers for 30 days; DMs use the default 7.
    await world.harness.slash(
        "embargo", subcommand="show-window", as_user=MODERATOR, show=SLUG, duration="30d"
    )
    assert_nothing_shows(seen_in(await tour(world.harness)))
    in_dm = seen_in(await tour(world.harness, in_dm=True))
    assert in_dm.shows(f"{SHOW} S2E9 · {SECRET}")

    # A server without a window shows it from release; one whose window is forever, never.
    await world.harness.slash(
        "embargo", subcommand="show-window", as_user=MODERATOR, show=SLUG, duration="off"
    )
    world.clock.now = RELEASE
    assert seen_in(await tour(world.harness)).shows(f"{SHOW} S2E9 · {SECRET}")
    await world.harness.slash(
        "embargo", subcommand="show-window", as_user=MODERATOR, show=SLUG, duration="forever"
    )
    world.clock.now = RELEASE + timedelta(days=3650)
    assert_nothing_shows(seen_in(await tour(world.harness)))
