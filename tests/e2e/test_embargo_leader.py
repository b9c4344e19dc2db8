"""Two real ``python -m bot`` processes on one PostgreSQL database: one leads the shared work
(content sync, command sync, release posts), the other follows; ``kill -9`` of the leader
hands it all to the other, which then makes the release post, once."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from tests.content_factory import episode_table, review_md, show_toml, write
from tests.postgres_server import PostgresServer
from tests.support.standin import DiscordStandIn

from .scenario import EMBARGO_ARGV, BotProcess, Scenario

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# Time to start both processes, set release posts up and kill the leader before the release.
RELEASE_AFTER = timedelta(seconds=30)
LEADING = "leading the shared work"


@pytest.fixture(scope="module")
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(scope="module")
def release() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + RELEASE_AFTER


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def two_processes(
    standin: DiscordStandIn,
    postgres_database: str,
    release: datetime,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Scenario, BotProcess, BotProcess]]:
    content: Path = tmp_path_factory.mktemp("leader") / "data"
    episodes = [episode_table(1, 1, "Opening Night", released=release)]
    write(content, "shows/release-day.toml", show_toml(title="Release Day", episodes=episodes))
    write(content, "reviews/release-day/s01e01.md", review_md("Good.", "It was a dream."))
    processes = [
        BotProcess(
            standin,
            argv=EMBARGO_ARGV,
            workdir=tmp_path_factory.mktemp(name),
            content_dir=content,
            env={"DATABASE_URL": postgres_database},
        )
        for name in ("first", "second")
    ]
    first, second = processes
    await first.start()
    # The stand-in sends interactions to the newest session: the follower's.
    await second.start(require_commands=False)
    yield Scenario(standin, second), first, second
    for process in processes:
        if process.running:
            await process.stop()


def release_posts(scenario: Scenario) -> list[str]:
    general = scenario.world.guild.channel("general").id
    return [
        m.payload["content"]
        for m in scenario.standin.channel_messages(general)
        if m.interaction_id is None
    ]


def command_syncs(standin: DiscordStandIn) -> int:
    return sum(1 for r in standin.requests if r.method == "PUT" and r.path.endswith("/commands"))


async def test_one_process_leads_and_the_other_takes_over_when_it_is_killed(
    two_processes: tuple[Scenario, BotProcess, BotProcess], release: datetime
) -> None:
    scenario, first, second = two_processes
    assert LEADING in first.output
    assert LEADING not in second.output
    # The content was loaded once, by the leader; the commands were registered once.
    assert "content: 2 file(s) loaded" in first.output
    assert "file(s) loaded" not in second.output
    assert command_syncs(scenario.standin) == 1

    reply = await (
        await scenario.slash("embargo", "announce", as_user="mod", channel="general")
    ).reply()
    assert "Release posts" in reply.content  # answered by the follower
    assert datetime.now(UTC) < release - timedelta(seconds=5), "too slow to start for this test"

    killed = time.monotonic()
    await first.stop(signum=signal.SIGKILL)
    await scenario.wait(
        lambda: LEADING in second.output, what="the follower to take the lead", within=10.0
    )
    print(f"takeover after kill -9: {(time.monotonic() - killed) * 1000:.0f} ms")
    # It catches up with the files (unchanged: nothing loaded) and the commands.
    await scenario.wait(
        lambda: "content reload (now leading): 0 file(s) loaded" in second.output,
        what="the new leader's content sync",
        within=10.0,
    )
    assert datetime.now(UTC) < release, "the takeover came after the release"

    await scenario.wait(lambda: release_posts(scenario), what="the release post", within=60.0)
    (post,) = release_posts(scenario)
    assert "Release Day S1E1" in post
    assert command_syncs(scenario.standin) == 1  # the commands had not changed
    assert "Traceback" not in second.output
