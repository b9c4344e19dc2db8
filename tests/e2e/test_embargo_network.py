"""No network at start: one line per attempt, a capped backoff, and up by itself once it's back.

The real ``python -m bot`` is aimed (through the e2e sitecustomize) at a closed port on
127.0.0.1, which refuses connections the way an unplugged network does. Later a plain TCP
forwarder opens on that port, relaying to the stand-in: the network is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.standin import DiscordStandIn

from .embargo_content import E2EContent
from .scenario import BotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# The real entry point with a short backoff: 0.05 s doubling, capped at 0.2 s.
FAST_RETRY = (
    "import sys, bot.connect as connect; "
    "connect.BACKOFF = connect.Backoff(first=0.05, cap=0.2); "
    "from bot.__main__ import main; sys.exit(main(sys.argv[1:]))"
)
ATTEMPT = re.compile(
    r"^\[err\] \S+ \S+ WARNING +bot\.connect: can't reach Discord \(Cannot connect to host "
    r"127\.0\.0\.1:\d+ [^\n]*\): attempt (\d+) failed, trying again in ([\d.]+)s$"
)
# The only other lines a first start on a fresh database prints before it reaches Discord.
EXPECTED_OTHERS = re.compile(
    r"^\[err\] .* (bot\.storage\.sqlite\.database: applied migration |bot: stopped)"
)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound once by us, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def forwarder(port: int, target: int) -> AsyncIterator[None]:
    """Relay every TCP connection on ``port`` to ``target``: the network coming back."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", port, reuse_address=True)
    try:
        yield
    finally:
        server.close()


def through(standin: DiscordStandIn, port: int) -> dict[str, str]:
    """Aim the bot at ``port`` instead of the stand-in's own."""
    own = f"127.0.0.1:{standin.port}"
    return {
        "EMBARGO_E2E_API_BASE": standin.api_base.replace(own, f"127.0.0.1:{port}"),
        "EMBARGO_E2E_GATEWAY_URL": standin.gateway_url.replace(own, f"127.0.0.1:{port}"),
    }


def attempts(bot: BotProcess) -> list[tuple[int, float]]:
    return [(int(m[1]), float(m[2])) for line in bot.lines if (m := ATTEMPT.match(line))]


async def wait_for_attempts(standin: DiscordStandIn, bot: BotProcess, count: int) -> None:
    await standin.wait_for(
        lambda: len(attempts(bot)) >= count,
        within=30,
        what=f"{count} failed attempts",
        abort=bot.exit_reason,
    )


@pytest.fixture
def port() -> int:
    return closed_port()


@pytest_asyncio.fixture(loop_scope="module")
async def offline(standin: DiscordStandIn, content: E2EContent, tmp_path, port) -> BotProcess:
    return BotProcess(
        standin,
        argv=(sys.executable, "-c", FAST_RETRY),
        workdir=tmp_path,
        content_dir=content.root,
        env=through(standin, port),
    )


async def test_no_network_prints_one_line_per_attempt_then_comes_up_by_itself(
    standin: DiscordStandIn, offline: BotProcess, port: int
) -> None:
    start = asyncio.create_task(offline.start(within=60))
    try:
        await wait_for_attempts(standin, offline, 5)
        # Capped exponential: 0.05, 0.1, 0.2, then the cap.
        expected = [(1, 0.05), (2, 0.1), (3, 0.2), (4, 0.2), (5, 0.2)]
        assert attempts(offline)[:5] == expected, offline.tail()
        others = [line for line in offline.lines[1:] if not ATTEMPT.match(line)]
        assert all(EXPECTED_OTHERS.match(line) for line in others), offline.tail()
        assert "Traceback" not in offline.output, offline.tail()
        async with forwarder(port, standin.port):
            await start  # READY, with its guilds and registered commands
            failed = len(attempts(offline))
            assert f"reached Discord after {failed} failed attempt(s)" in offline.output
            assert "Traceback" not in offline.output, offline.tail()
            await offline.stop(within=5)  # its clean stop: the next test
    finally:
        start.cancel()
        if offline.running:
            await offline.stop()


async def test_sync_waits_for_the_network_too(
    standin: DiscordStandIn, offline: BotProcess, port: int
) -> None:
    offline.argv = (*offline.argv, "sync")
    puts = len(standin.find_requests("PUT", r"/commands$"))
    run = asyncio.create_task(offline.run_to_exit(within=60))
    try:
        await wait_for_attempts(standin, offline, 2)
        assert not run.done()
        async with forwarder(port, standin.port):
            assert await run == 0
    finally:
        run.cancel()
    assert len(standin.find_requests("PUT", r"/commands$")) == puts + 1
    assert "synced" in offline.output
    assert "Traceback" not in offline.output


async def test_a_rejected_token_exits_2_at_once_without_retrying(
    standin: DiscordStandIn, content: E2EContent, tmp_path
) -> None:
    bot = BotProcess(
        standin,
        argv=(sys.executable, "-c", FAST_RETRY),
        workdir=tmp_path,
        content_dir=content.root,
        env={"DISCORD_TOKEN": "not.the.token"},
    )
    assert await bot.run_to_exit(within=30) == 2
    errors = [line for line in bot.lines if line.startswith("[err]")]
    assert errors[-1] == (
        "[err] embargo: Discord rejected DISCORD_TOKEN: copy a fresh token from the developer "
        "portal (Bot -> Reset Token) into .env"
    )
    assert attempts(bot) == []
    assert "Traceback" not in bot.output
    assert "not.the.token" not in bot.output


async def test_a_bot_that_came_up_after_retries_stops_cleanly(
    standin: DiscordStandIn, offline: BotProcess, port: int
) -> None:
    start = asyncio.create_task(offline.start(within=60))
    try:
        await wait_for_attempts(standin, offline, 2)
        async with forwarder(port, standin.port):
            await start
            assert await offline.stop(within=15) == 0, offline.tail()
    finally:
        start.cancel()
        if offline.running:
            await offline.stop(within=1)


async def test_a_gateway_address_that_cannot_be_fetched_is_retried_like_a_login(
    standin: DiscordStandIn, content: E2EContent, tmp_path
) -> None:
    # Reached for the login, then GET /gateway/bot (the gateway's address and the shard
    # count) fails: the bot tries again, one line per attempt, and comes up.
    rule = standin.fail_next("GET", r"^/gateway/bot$", status=400, count=2)
    bot = BotProcess(
        standin, argv=(sys.executable, "-c", FAST_RETRY), workdir=tmp_path, content_dir=content.root
    )
    await bot.start(within=60, require_commands=False)
    try:
        assert len(rule.hits) == 2
        failed = [line for line in bot.lines if "can't reach Discord's gateway" in line]
        assert len(failed) == 2, bot.tail()
        assert "attempt 2 failed, trying again in 0.1s" in failed[1]
        assert "Traceback" not in bot.output, bot.tail()
    finally:
        assert await bot.stop(within=15) == 0, bot.tail()
