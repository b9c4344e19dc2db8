"""``python -m tests.benchmarks.discussion [--servers N] [--limit R] [--rest S]``: one release
fanned out to N servers through the Discord stand-in, with Discord's global rate limit enforced.

Every server announces the show in its own channel, so at the release instant Embargo owes
each a release post, a thread started from it and the thread's first message. Printed, side
by side from one run: the fan-out's total time against the floor the global limit sets (the
requests it needed ÷ R a second), the 429s Discord answered, and ``/review``'s p50 and p99
while the fan-out runs against the same at rest.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.client import EmbargoBot
from bot.config import Settings
from bot.storage import Storage
from tests.content_factory import episode_table, review_md, show_toml, write
from tests.support import ChannelSpec, GuildSpec, Harness
from tests.support.specs import world_from_spec
from tests.support.standin.rest import RecordedRequest
from tests.support.standin.world import snowflake

RELEASE = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
EPISODE = "fan-out/s01e01"
# The bot starts this long before the release, measuring /review at rest meanwhile: long
# enough for a p99 of a few hundred samples, not the slowest of a few dozen.
REST_S = 20.0


class MovingClock:
    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class _Counter:
    """The fan-out's successful posts so far, counted as requests arrive: the stand-in shares
    the bot's event loop, so rescanning every request on each change would itself slow the
    commands being measured."""

    def __init__(self, requests: list[RecordedRequest], start: int) -> None:
        self.requests = requests
        self.seen = start
        self.made = 0

    def count(self) -> int:
        # The stand-in answers a request as it records it, so every one seen has its status.
        for request in self.requests[self.seen :]:
            self.seen += 1
            if request.interaction_id is None and request.status < 300 and request.method == "POST":
                self.made += 1
        return self.made


class _FullCollections:
    """The pauses of the garbage collector's full (oldest-generation) collections, timed
    from its own callbacks, while installed."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)

    def __enter__(self) -> _FullCollections:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)


class _StandInAnswers:
    """The time the stand-in, on the bot's own event loop, spends answering requests (its
    routing and bookkeeping; not aiohttp's parsing and encoding around it), while installed:
    loop time a real Discord would not take from the bot."""

    def __init__(self, standin: Any) -> None:
        self.standin = standin
        self.spans: list[float] = []

    def __enter__(self) -> _StandInAnswers:
        answer = self.standin.answer

        def timed(request: RecordedRequest) -> Any:
            started = time.perf_counter()
            try:
                return answer(request)
            finally:
                self.spans.append(time.perf_counter() - started)

        self.standin.answer = timed
        return self

    def __exit__(self, *_: object) -> None:
        del self.standin.answer


async def _review_latencies(harness: Harness, stop: asyncio.Event, out: list[float]) -> None:
    """``/review`` every 50 ms until ``stop``: the time from dispatch to the bot's answer."""
    while not stop.is_set():
        started = time.perf_counter()
        reply = await harness.slash("review", episode=EPISODE)
        if not reply.acknowledged:
            raise RuntimeError(f"/review went unanswered:\n{reply.describe()}")
        out.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)


async def measure(
    servers: int, limit: int, workdir: Path, *, rest_s: float = REST_S
) -> dict[str, int | float]:
    content = workdir / "content"
    shows = show_toml(title="Fan Out", episodes=[episode_table(1, 1, "Wide", released=RELEASE)])
    write(content, "shows/fan-out.toml", shows)
    write(content, "reviews/fan-out/s01e01.md", review_md("Fine.", "It ends."))
    db_url = f"sqlite:///{workdir}/embargo.db"
    storage = await Storage.open(db_url, workdir)
    clock = MovingClock(RELEASE - timedelta(seconds=rest_s))
    settings = Settings(
        discord_token=None,
        database_url=db_url,
        content_dir=content,
        log_level="WARNING",
        dev_guild_id=None,
    )
    try:
        harness = Harness(EmbargoBot(settings, storage, clock=clock))
        channels = [harness.world.guild.channel("general").id]
        for _ in range(servers - 1):
            channel = ChannelSpec(id=snowflake(), name="episodes")
            spec = GuildSpec(id=snowflake(), channels=(channel,), members=())
            world = world_from_spec(spec, app_id=harness.app_id, bot_role_id=snowflake())
            harness.world.guilds.append(world.guilds[0])
            channels.append(channel.id)
        for guild, channel_id in zip(harness.world.guilds, channels, strict=True):
            await storage.set_announce(guild.id, channel_id, None, now=clock() - timedelta(days=1))
        harness.standin.global_limit = limit
        async with harness:
            # Setting up many servers takes a while: the release is rest_s from now.
            clock.offset = RELEASE - timedelta(seconds=rest_s) - datetime.now(UTC)
            harness.mark_ready()
            assert isinstance(harness.bot, EmbargoBot)
            # The servers' cache is full: what READY's handlers do then (settling the heap).
            await harness.bot.on_ready()
            cog = harness.bot.get_cog("Discussion")
            assert cog is not None
            rest: list[float] = []
            stop = asyncio.Event()
            until = RELEASE - timedelta(seconds=0.5)
            resting = asyncio.create_task(_review_latencies(harness, stop, rest))
            with _FullCollections() as rest_gc:
                await asyncio.sleep(max(0.0, (until - clock()).total_seconds()))
                stop.set()
                await resting
            before = len(harness.standin.requests)
            during: list[float] = []
            stop = asyncio.Event()
            busy = asyncio.create_task(_review_latencies(harness, stop, during))
            await asyncio.sleep(max(0.0, (RELEASE - clock()).total_seconds()))
            started = time.perf_counter()
            expected = 3 * servers  # post, thread, the thread's first message
            made = _Counter(harness.standin.requests, before)
            with _FullCollections() as fan_out_gc, _StandInAnswers(harness.standin) as answers:
                await harness.standin.wait_for(
                    lambda: made.count() >= expected,
                    within=expected / limit * 3 + 60,
                    what="every post, thread and first message",
                )
                total = time.perf_counter() - started
                stop.set()
                await busy
            fan_out = [
                r
                for r in harness.standin.requests[before:]
                if r.interaction_id is None and not r.path.startswith("/interactions/")
            ]
            limited = len(harness.standin.globally_limited)
    finally:
        await storage.close()
        gc.unfreeze()  # READY's settling of the heap ends with the benchmark
    floor = expected / limit
    return {
        "servers": servers,
        "requests": len(fan_out),
        "floor_s": floor,
        "total_s": total,
        "ratio": total / floor,
        "429s": limited,
        "review_p50_rest_ms": percentile(rest, 0.5) * 1000,
        "review_p99_rest_ms": percentile(rest, 0.99) * 1000,
        "review_p50_fanout_ms": percentile(during, 0.5) * 1000,
        "review_p99_fanout_ms": percentile(during, 0.99) * 1000,
        "review_samples_rest": len(rest),
        "review_samples_fanout": len(during),
        "review_mean_fanout_ms": statistics.fmean(during) * 1000,
        "full_gcs_rest": len(rest_gc.pauses),
        "full_gc_max_rest_ms": max(rest_gc.pauses, default=0.0) * 1000,
        "full_gcs_fanout": len(fan_out_gc.pauses),
        "full_gc_max_fanout_ms": max(fan_out_gc.pauses, default=0.0) * 1000,
        "standin_answering_fanout_s": sum(answers.spans),
        "standin_answer_max_fanout_ms": max(answers.spans, default=0.0) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=50, help="global requests a second")
    parser.add_argument("--rest", type=float, default=REST_S, help="seconds measured at rest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        result = asyncio.run(measure(args.servers, args.limit, Path(directory), rest_s=args.rest))
    for name, value in result.items():
        print(f"{name:>24}: {value:,.2f}" if isinstance(value, float) else f"{name:>24}: {value}")
    p99_ratio = result["review_p99_fanout_ms"] / result["review_p99_rest_ms"]
    print(f"{'fan-out ÷ floor':>24}: {result['ratio']:.2f}x (target ≤ 1.2x)")
    print(f"{'/review p99 fan-out ÷ rest':>24}: {p99_ratio:.2f}x (target ≤ 2x)")
    sys.exit(0)


if __name__ == "__main__":
    main()
