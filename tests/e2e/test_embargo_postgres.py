"""The real ``python -m bot`` process on PostgreSQL: it migrates a new database, answers
/vote, keeps the vote across a restart, and ``check --votes`` agrees with what it stored.

The same storage code is tested on both backends in-process (tests/test_*_storage.py); this
proves the process itself starts, serves and stops on ``DATABASE_URL=postgresql://...``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.postgres_server import PostgresServer
from tests.support.standin import DiscordStandIn

from .embargo_content import E2EContent
from .scenario import EMBARGO_ARGV, REPO_ROOT, BotProcess, Scenario

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

FINALE = "black-mirror/s07e06"
FINALE_LABEL = "Black Mirror S7E6 · USS Callister: Into Infinity"


@pytest.fixture(scope="module")
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def on_postgres(
    standin: DiscordStandIn,
    content: E2EContent,
    postgres_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Scenario]:
    bot = BotProcess(
        standin,
        argv=EMBARGO_ARGV,
        workdir=tmp_path_factory.mktemp("embargo-postgres"),
        content_dir=content.root,
        env={"DATABASE_URL": postgres_database},
    )
    await bot.start()
    yield Scenario(standin, bot)
    if bot.running:
        await bot.stop()


def check_votes(postgres_database: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DISCORD_TOKEN", "DATABASE_URL"}}
    env.update(DISCORD_TOKEN="", DATABASE_URL=postgres_database, LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "bot", "check", "--votes"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


async def test_votes_are_served_kept_across_a_restart_and_recounted(
    on_postgres: Scenario, postgres_database: str
) -> None:
    bot = on_postgres.bot
    assert "applied migration 001_core.postgres.sql" in bot.output
    first = await (
        await on_postgres.slash("vote", as_user="alice", episode=FINALE, score=7)
    ).reply()
    assert first.content.splitlines()[0] == f"Saved: **7/10** for **{FINALE_LABEL}**."

    await bot.restart(require_commands=False)
    assert "applied migration" not in bot.last_run_output
    again = await (
        await on_postgres.slash("vote", as_user="alice", episode=FINALE, score=9)
    ).reply()
    assert "changed from 7 to 9" in again.content.splitlines()[0], again.content

    checked = await asyncio.to_thread(check_votes, postgres_database)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok:")
    on_postgres.assert_clean()
