"""``python -m tests.benchmarks.content_pipeline [--quick] [--runs N]``

Two questions about the content pipeline, each answered side by side in one run:

1. Would the hand-written TOML fast path the parser once had earn its keep? A
   full-catalogue cold sync (the bot's first start) and a dry run (``check``), with stdlib
   ``tomllib`` alone (what the parser uses) and with the fast path in front of it
   (``tests/benchmarks/plain_toml.py``), runs alternated so both see the same machine.
2. How long does a full reload keep a vote or a settings write waiting? A writer commits a
   server setting every couple of milliseconds while a cold sync loads the whole catalogue;
   each write's wait is recorded, next to the same writer with no reload running, and next
   to the reload with its transactions unbounded (each parse batch written as one).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tomllib
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from bot.content.files import toml_text
from bot.content.sync import dry_run, sync_content
from bot.spoilers.durations import parse_window
from bot.storage import Storage
from bot.storage import content as content_store_module
from bot.storage.backend import Statement
from bot.storage.sqlite import database as sqlite_database
from tests.benchmarks.content import remove_database
from tests.benchmarks.plain_toml import plain_toml
from tests.benchmarks.workload import FULL, QUICK, generate_content

WRITE_EVERY_S = 0.002


@contextmanager
def with_fast_path() -> Iterator[None]:
    """Every TOML text goes to the hand-written parser first, tomllib when it steps aside."""
    fast = types.SimpleNamespace(
        loads=lambda text: plain_toml(text) or tomllib.loads(text),
        TOMLDecodeError=tomllib.TOMLDecodeError,
    )
    with mock.patch.object(toml_text, "tomllib", fast):
        yield


@contextmanager
def transaction_bytes(limit: int) -> Iterator[None]:
    real = content_store_module.TRANSACTION_BYTES
    content_store_module.TRANSACTION_BYTES = limit
    try:
        yield
    finally:
        content_store_module.TRANSACTION_BYTES = real


async def cold_sync(content: Path, workdir: Path) -> float:
    database = workdir / "bench.db"
    remove_database(database)
    storage = await Storage.open(f"sqlite:///{database}", workdir)
    try:
        started = time.perf_counter()
        report = await sync_content(storage, content)
        elapsed = time.perf_counter() - started
        assert not report.problems, report.problems[:3]
        return elapsed
    finally:
        await storage.close()


async def timed_dry_run(content: Path) -> float:
    started = time.perf_counter()
    report, _ = await dry_run(content, keep_reviews=False)
    assert not report.problems, report.problems[:3]
    return time.perf_counter() - started


async def toml_comparison(content: Path, workdir: Path, runs: int) -> None:
    figures: dict[str, list[float]] = {
        "cold sync, fast path": [],
        "cold sync, tomllib": [],
        "dry run, fast path": [],
        "dry run, tomllib": [],
    }
    for _ in range(runs):
        with with_fast_path():
            figures["cold sync, fast path"].append(await cold_sync(content, workdir))
        figures["cold sync, tomllib"].append(await cold_sync(content, workdir))
        with with_fast_path():
            figures["dry run, fast path"].append(await timed_dry_run(content))
        figures["dry run, tomllib"].append(await timed_dry_run(content))
    print(f"\nTOML: median of {runs} run(s), seconds")
    for label, values in figures.items():
        print(f"  {label:24} {statistics.median(values):7.3f}   runs: {_runs(values)}")
    for what in ("cold sync", "dry run"):
        fast = statistics.median(figures[f"{what}, fast path"])
        slow = statistics.median(figures[f"{what}, tomllib"])
        print(f"  {what}: tomllib alone takes {slow / fast:.2f}x the fast path's time")


def toml_cpu(content: Path) -> None:
    """The TOML parsing alone, in CPU time (best of five): steadier than a whole sync on a
    busy machine."""
    texts = []
    for path in sorted(content.rglob("*")):
        if path.suffix == ".toml":
            texts.append(path.read_text(encoding="utf-8"))
        elif path.suffix == ".md":
            texts.append(path.read_text(encoding="utf-8").split("+++")[1])
    parsers = {
        "tomllib": tomllib.loads,
        "fast path": lambda text: plain_toml(text) or tomllib.loads(text),
    }
    print(f"\nTOML alone: {len(texts):,} documents, CPU seconds (best of 5)")
    for label, parse in parsers.items():
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            for text in texts:
                parse(text)
            best = min(best, time.process_time() - started)
        print(f"  {label:24} {best:7.3f}")


async def write_waits(storage: Storage, stop: asyncio.Event) -> list[float]:
    """Commit a setting every WRITE_EVERY_S until ``stop``; each commit's time, in seconds."""
    waits: list[float] = []
    windows = [parse_window("3d"), parse_window("5d")]
    while not stop.is_set():
        started = time.perf_counter()
        await storage.set_spoiler_window(1, windows[len(waits) % 2])
        waits.append(time.perf_counter() - started)
        await asyncio.sleep(WRITE_EVERY_S)
    return waits


@contextmanager
def timed_transactions(held: list[float]) -> Iterator[None]:
    """Record how long each of the sync's write transactions runs on the writer's thread:
    the time it holds the write lock that votes and settings wait for (plus BEGIN/COMMIT)."""
    real = sqlite_database._executemanys  # the sync's statements, on the writer's thread

    def timed(statements: Sequence[Statement], conn: sqlite3.Connection) -> None:
        started = time.perf_counter()
        try:
            real(statements, conn)
        finally:
            held.append(time.perf_counter() - started)

    with mock.patch.object(sqlite_database, "_executemanys", timed):
        yield


async def blocking(content: Path, workdir: Path) -> None:
    rows = []
    held_rows = []
    for label, limit, reload in (
        ("no reload running", None, False),
        ("full reload, bounded transactions", None, True),
        ("full reload, one transaction per batch", 1 << 40, True),
    ):
        database = workdir / "bench.db"
        remove_database(database)
        storage = await Storage.open(f"sqlite:///{database}", workdir)
        try:
            stop = asyncio.Event()
            writer = asyncio.create_task(write_waits(storage, stop))
            started = time.perf_counter()
            if reload:
                held: list[float] = []
                limit_context = transaction_bytes(limit) if limit is not None else _nothing()
                with limit_context, timed_transactions(held):
                    await sync_content(storage, content)
                held.sort()
                held_rows.append((label, len(held), held[int(len(held) * 0.99)], held[-1]))
            else:
                await asyncio.sleep(5)
            elapsed = time.perf_counter() - started
            stop.set()
            waits = await writer
        finally:
            await storage.close()
        waits.sort()
        p99 = waits[int(len(waits) * 0.99)]
        rows.append((label, elapsed, len(waits), statistics.median(waits), p99, waits[-1]))
    print("\nThe reload's write transactions: how long each holds the write lock (ms)")
    print(f"  {'':40} {'count':>7} {'p99':>8} {'max':>8}")
    for label, count, p99, most in held_rows:
        print(f"  {label:40} {count:7d} {p99 * 1000:8.2f} {most * 1000:8.2f}")
    print(
        "\nSetting writes while the catalogue loads, end to end (ms per write; includes the "
        "GIL the parse thread holds)"
    )
    print(f"  {'':40} {'for s':>7} {'writes':>7} {'median':>8} {'p99':>8} {'max':>8}")
    for label, elapsed, count, median, p99, most in rows:
        print(
            f"  {label:40} {elapsed:7.2f} {count:7d} {median * 1000:8.2f} {p99 * 1000:8.2f} "
            f"{most * 1000:8.2f}"
        )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _runs(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


async def main_async(quick: bool, runs: int, workdir: Path) -> None:
    scale = QUICK if quick else FULL
    print(f"generating the {scale.name} catalogue ({scale.episodes:,} episodes)", file=sys.stderr)
    world = generate_content(workdir / "content", scale)
    print(f"catalogue: {world.files:,} files, {scale.episodes:,} episodes")
    await toml_comparison(world.content_dir, workdir, runs)
    toml_cpu(world.content_dir)
    await blocking(world.content_dir, workdir)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.content_pipeline")
    parser.add_argument("--quick", action="store_true", help="a tenth of the full catalogue")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="embargo-content-bench-"))
    try:
        asyncio.run(main_async(args.quick, args.runs, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
