"""The release calendar in the real ``python -m bot`` process, on the real clock: a release
post and its thread a few seconds after start-up, nothing posted again by a restart, and an
episode released while the bot was stopped posted once when it starts again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from tests.content_factory import episode_table, review_md, show_toml, write
from tests.support.standin import DiscordStandIn
from tests.support.standin.threads import threads_of
from tests.support.standin.world import CREATE_PUBLIC_THREADS

from .scenario import EMBARGO_ARGV, BotProcess, Scenario

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# Time to start the bot and set the announce channel before the first release.
FIRST_AFTER = timedelta(seconds=12)
# The second release falls while the bot is stopped.
SECOND_AFTER = timedelta(seconds=24)


@pytest.fixture(scope="module")
def releases() -> tuple[datetime, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now + FIRST_AFTER, now + SECOND_AFTER


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def discussion(
    standin: DiscordStandIn,
    releases: tuple[datetime, datetime],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Scenario]:
    content: Path = tmp_path_factory.mktemp("discussion") / "data"
    first, second = releases
    episodes = [
        episode_table(1, 1, "Opening Night", released=first),
        episode_table(1, 2, "Second Act", released=second),
    ]
    write(content, "shows/release-day.toml", show_toml(title="Release Day", episodes=episodes))
    write(content, "reviews/release-day/s01e01.md", review_md("Good.", "It was a dream."))
    standin.world.guild.role("Embargo").permissions |= CREATE_PUBLIC_THREADS
    bot = BotProcess(
        standin,
        argv=EMBARGO_ARGV,
        workdir=tmp_path_factory.mktemp("embargo"),
        content_dir=content,
    )
    await bot.start()
    yield Scenario(standin, bot)
    if bot.running:
        await bot.stop()


def posts(scenario: Scenario) -> list[str]:
    general = scenario.world.guild.channel("general").id
    return [
        m.payload["content"]
        for m in scenario.standin.channel_messages(general)
        if m.interaction_id is None
    ]


async def test_release_post_restart_and_down_time(
    discussion: Scenario, releases: tuple[datetime, datetime]
) -> None:
    scenario = discussion
    first, second = releases
    reply = await (
        await scenario.slash("embargo", "announce", as_user="mod", channel="general")
    ).reply()
    assert "Release posts" in reply.content
    assert datetime.now(UTC) < first, "the bot took too long to start for this test"

    await scenario.wait(lambda: posts(scenario), what="the release post", within=30.0)
    general = scenario.world.guild.channel("general").id
    await scenario.wait(
        lambda: threads_of(scenario.standin, general), what="the spoiler thread", within=10.0
    )
    (post,) = posts(scenario)
    assert "Release Day S1E1" in post
    # Within a minute of the release.
    assert datetime.now(UTC) - first < timedelta(seconds=60)

    # A restart posts nothing again.
    await scenario.bot.restart(require_commands=False)
    sent_before = len(scenario.standin.requests)
    await asyncio.sleep(2.0)  # the calendar's first wake runs as soon as the bot is ready
    assert datetime.now(UTC) < second - timedelta(seconds=3), "too slow to check before S1E2"
    assert posts(scenario) == [post]

    # Down over the second release: posted once after the next start.
    await scenario.bot.stop()
    await asyncio.sleep(max(0.0, (second - datetime.now(UTC)).total_seconds()) + 1.0)
    await scenario.bot.start(require_commands=False)
    await scenario.wait(lambda: len(posts(scenario)) >= 2, what="the catch-up", within=30.0)
    later = posts(scenario)
    assert len(later) == 2
    assert "Release Day S1E2" in later[1]
    await scenario.wait(
        lambda: len(threads_of(scenario.standin, general)) == 2, what="its thread", within=10.0
    )
    new_posts = [
        r
        for r in scenario.standin.requests[sent_before:]
        if r.method == "POST" and r.path == f"/channels/{general}/messages"
    ]
    assert len(new_posts) == 1
