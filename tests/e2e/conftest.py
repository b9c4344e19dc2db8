"""Fixtures for end-to-end tests: one stand-in and one bot process per test module.

Async fixtures and tests here share the module's event loop (the stand-in server runs in it), so
each e2e test module sets
``pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.standin import DiscordStandIn

from .embargo_content import E2EContent, build_content
from .scenario import DEMO_ARGV, EMBARGO_ARGV, BotProcess, Scenario


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def standin() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo(
    standin: DiscordStandIn, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scenario]:
    """The throwaway demo bot, started once for the module."""
    bot = BotProcess(standin, argv=DEMO_ARGV, workdir=tmp_path_factory.mktemp("demo_bot"))
    await bot.start()
    yield Scenario(standin, bot)
    if bot.running:
        await bot.stop()


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> E2EContent:
    """A copy of data/ plus the Clockwork Test show, released relative to now."""
    return build_content(tmp_path_factory.mktemp("content") / "data")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def embargo(
    standin: DiscordStandIn, content: E2EContent, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scenario]:
    """``python -m bot`` on a fresh database and :func:`content`, started once for the module."""
    bot = BotProcess(
        standin,
        argv=EMBARGO_ARGV,
        workdir=tmp_path_factory.mktemp("embargo"),
        content_dir=content.root,
    )
    await bot.start()
    yield Scenario(standin, bot)
    if bot.running:
        await bot.stop()
