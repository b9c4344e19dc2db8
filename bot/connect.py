"""Logging in to Discord and serving, retrying while Discord can't be reached.

A bot started (or restarted by its supervisor) during a network outage keeps trying with a
capped exponential backoff, one log line per attempt, and comes up by itself once the network
is back. Once connected, discord.py reconnects by itself. A rejected token is not retried.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass, replace

import aiohttp
import discord

from bot.client import EmbargoBot
from bot.config import Settings
from bot.storage import Storage

log = logging.getLogger(__name__)

# What an unreachable Discord looks like to discord.py's HTTP client: no route, no DNS, a
# refused or dropped connection, a timeout, or Discord's own servers failing (5xx).
NETWORK_ERRORS = (
    aiohttp.ClientConnectionError,
    TimeoutError,
    discord.DiscordServerError,
    discord.GatewayNotFound,
)
REASON_MAX_CHARS = 200
# Gateway close code: a shard would hold more servers than Discord allows.
SHARDING_REQUIRED = 4011


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds to wait after the n-th failed attempt: ``first``, doubling, never above ``cap``.

    Hand-written rather than a retry library: it is one line of arithmetic, and the loop
    around it must distinguish a bad token (stop) from a network error (retry) anyway.
    """

    first: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.first * 2.0 ** min(attempt - 1, 32))


BACKOFF = Backoff()


def describe(error: BaseException) -> str:
    """One short line saying why Discord could not be reached."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, TimeoutError) and not str(error):
        text = "timed out"
    return text if len(text) <= REASON_MAX_CHARS else text[: REASON_MAX_CHARS - 1] + "…"


async def serve(
    settings: Settings, storage: Storage, token: str, *, force_sync: bool = False
) -> None:
    """Log in (retrying while Discord is unreachable), then serve until closed.

    With ``force_sync`` only log in, which registers the commands (setup_hook), and return.
    Each attempt builds a fresh bot, so a start-up interrupted halfway (say, by a failed
    command sync) never leaves half-loaded extensions behind for the next one.
    """
    attempt = 0
    while True:
        async with EmbargoBot(settings, storage, force_sync=force_sync) as bot:
            try:
                await bot.login(token)
            except discord.LoginFailure:
                # Retrying can't help: say what to do and stop at once.
                print(
                    "embargo: Discord rejected DISCORD_TOKEN: copy a fresh token from the "
                    "developer portal (Bot -> Reset Token) into .env",
                    file=sys.stderr,
                )
                raise SystemExit(2) from None
            except NETWORK_ERRORS as error:
                attempt += 1
                delay = BACKOFF.delay(attempt)
                log.warning(
                    "can't reach Discord (%s): attempt %d failed, trying again in %gs",
                    describe(error),
                    attempt,
                    delay,
                )
            else:
                if attempt:
                    log.info("reached Discord after %d failed attempt(s)", attempt)
                if force_sync:
                    return
                try:
                    await connect_until_signalled(bot)
                    return
                except discord.PrivilegedIntentsRequired:
                    if not settings.message_guard:
                        raise
                    # Gateway close 4014: the guard's intent is not ticked in the portal.
                    log.error(
                        "Discord refused the Message Content intent (MESSAGE_GUARD=on): "
                        "tick it in the developer portal (Bot -> Privileged Gateway "
                        "Intents). Carrying on without the spoiler guard."
                    )
                    settings = replace(settings, message_guard=False)
                    continue  # a fresh bot, without the intent
                except discord.ConnectionClosed as error:
                    if error.code != SHARDING_REQUIRED:
                        raise
                    print(f"embargo: {too_few_shards(settings)}", file=sys.stderr)
                    raise SystemExit(2) from None
                except NETWORK_ERRORS as error:
                    # Lost between the login and the gateway: asking Discord for the
                    # gateway and the shard count (GET /gateway/bot) failed.
                    attempt += 1
                    delay = BACKOFF.delay(attempt)
                    log.warning(
                        "can't reach Discord's gateway (%s): attempt %d failed, trying again "
                        "in %gs",
                        describe(error),
                        attempt,
                        delay,
                    )
        await asyncio.sleep(delay)


def too_few_shards(settings: Settings) -> str:
    """What to do when Discord refuses a shard for holding too many servers."""
    if settings.shard_count is None:
        return (
            "Discord now wants more shards than it recommended a moment ago: start Embargo "
            "again to use its new recommendation"
        )
    return (
        f"Discord refused SHARD_COUNT={settings.shard_count}: a shard may hold at most 2,500 "
        "servers, so Embargo needs more shards. Raise SHARD_COUNT on every process (and "
        "spread SHARD_IDS over them), or leave both empty for Discord's recommendation"
    )


async def connect_until_signalled(bot: EmbargoBot) -> None:
    """Serve until the connection ends or Ctrl+C (SIGINT) or SIGTERM arrives.

    The gateway loop runs in a task of its own that a signal cancels; ``bot.close()`` then
    runs once that loop has stopped, so the gateway is closed with a clean close frame. The
    loop's own signal handling also wakes it whichever thread the signal lands on. Left to
    asyncio's default (cancelling the main task), a bot that had retried its login could
    ignore Ctrl+C once connected.
    """
    loop = asyncio.get_running_loop()
    serving = loop.create_task(bot.connect(reconnect=True), name="embargo-gateway")

    def stop(signum: signal.Signals) -> None:
        log.info("%s received: closing the connection to Discord", signum.name)
        serving.cancel()

    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop, signum)
        except (NotImplementedError, RuntimeError):  # no loop signal handling (Windows)
            continue
        handled.append(signum)
    try:
        await serving
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # this task itself was cancelled, not only the gateway loop by stop()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
