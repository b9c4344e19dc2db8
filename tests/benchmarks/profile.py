"""Profile one benchmarked path with pyinstrument, on the benchmark's own workload.

    python -m pip install pyinstrument      # a profiling tool, not a project dependency
    python -m tests.benchmarks.profile ending [--full] [--calls 300] [--html ending.html]

Targets: ``review``, ``ending``, ``rankings``, ``vote``, ``autocomplete``, ``noop`` (that
many calls through the same path as the benchmark, every reply checked), ``ingest`` (one run
of concurrent voters), ``cold-load`` and ``resync`` (content sync into an empty database, and
with nothing changed). Quick scale unless ``--full``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.content.sync import sync_content
from bot.storage import Storage
from tests.benchmarks.checks import Checks
from tests.benchmarks.commands import COMMANDS, command_bench
from tests.benchmarks.content import remove_database
from tests.benchmarks.ingest import measure_ingestion
from tests.benchmarks.workload import FULL, QUICK, Scale, World, generate_content, load_community

TARGETS = (*COMMANDS, "ingest", "cold-load", "resync")


async def _synced(world: World, database: Path, workdir: Path) -> None:
    storage = await Storage.open(f"sqlite:///{database}", workdir)
    try:
        await sync_content(storage, world.content_dir)
    finally:
        await storage.close()


async def profile(target: str, scale: Scale, calls: int, workdir: Path, profiler: Any) -> Checks:
    checks = Checks()
    world = generate_content(workdir / "content", scale)
    database = workdir / "embargo.db"
    remove_database(database)

    async def timed(work: Callable[[], Awaitable[object]]) -> None:
        profiler.start()
        try:
            await work()
        finally:
            profiler.stop()

    if target == "cold-load":
        storage = await Storage.open(f"sqlite:///{database}", workdir)
        try:
            await timed(lambda: sync_content(storage, world.content_dir))
        finally:
            await storage.close()
        return checks
    await _synced(world, database, workdir)
    if target == "resync":
        storage = await Storage.open(f"sqlite:///{database}", workdir)
        try:
            await timed(lambda: sync_content(storage, world.content_dir))
        finally:
            await storage.close()
        return checks
    community = await load_community(world, scale, database, workdir, checks)
    if target == "ingest":
        await timed(
            lambda: measure_ingestion(
                world,
                community.guilds,
                database,
                workdir,
                voters=scale.voters,
                votes_per_voter=scale.votes_per_voter,
                runs=1,
                seed=scale.seed,
                checks=checks,
            )
        )
        return checks
    async with command_bench(
        world, community.votes, community.guilds, database, workdir, checks, scale.seed
    ) as bench:
        for index in range(20):  # warm-up, not profiled
            await bench.run_one(bench.next_call(target, index))

        async def calls_of_target() -> None:
            for index in range(20, 20 + calls):
                await bench.run_one(bench.next_call(target, index))

        await timed(calls_of_target)
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.profile")
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--full", action="store_true", help="full scale (default: quick)")
    parser.add_argument("--calls", type=int, default=300, help="profiled calls of a command")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report")
    args = parser.parse_args()
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed: python -m pip install pyinstrument", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    # Async mode follows awaits: time spent waiting (SQLite's thread, HTTP) shows as await.
    profiler = Profiler(interval=0.0005, async_mode="enabled")
    with tempfile.TemporaryDirectory(prefix="embargo-profile-") as workdir:
        checks = asyncio.run(
            profile(args.target, FULL if args.full else QUICK, args.calls, Path(workdir), profiler)
        )
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html is not None:
        args.html.write_text(profiler.output_html(), encoding="utf-8")
    if not checks.ok:
        print("\n".join(f"FAILED: {failure}" for failure in checks.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
