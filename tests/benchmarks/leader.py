"""``python -m tests.benchmarks.leader``: the shared work's leader and the catalogue across
processes, on PostgreSQL (a server of its own, as in ``backends``).

- **Takeover**: a child process holds the leader lock and is killed with SIGKILL; the time
  from the kill to this process leading. Then the same after ``pg_terminate_backend`` of the
  leader's session, and after a clean stop (the lock released).
- **Catalogue**: one process syncs a changed show file; from the moment its commit returned,
  the time to the other process hearing of it (negative: heard before the writer's call
  returned) and to that process serving the rebuilt catalogue (built from the database: the
  whole catalogue is read and indexed again, as the writer does for itself).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg

from bot.config import PROJECT_DIR
from bot.content.reload import LiveContent
from bot.leader import Leadership
from bot.storage import Storage
from bot.storage.postgres.leader import LEADER_SESSION, LEADER_SESSION_ARGS, AdvisoryLeaderLock
from tests.benchmarks.backends import percentile
from tests.benchmarks.workload import FULL, QUICK, generate_content
from tests.postgres_server import PostgresServer

HOLDING = "holding the leader lock"


async def hold_lock(url: str) -> None:
    """The child: take the lock, say so, and keep it until killed."""
    lock = AdvisoryLeaderLock(url)
    if not await lock.acquire(wait=False):
        raise SystemExit("the lock was taken")
    print(HOLDING, flush=True)
    await lock.lost()


async def until(check: Callable[[], bool], within_s: float = 10.0) -> float:
    """Seconds until ``check()`` held."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > within_s:
            raise RuntimeError(f"not within {within_s} s")
        await asyncio.sleep(0.0005)
    return time.perf_counter() - start


async def kill_takeovers(url: str, runs: int) -> list[float]:
    delays = []
    for _ in range(runs):
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.benchmarks.leader",
            "--hold",
            url,
            cwd=PROJECT_DIR,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 30)
        assert line.decode().strip() == HOLDING, line
        follower = Leadership(AdvisoryLeaderLock(url))
        await follower.start()
        await asyncio.sleep(0.05)  # waiting in pg_advisory_lock
        assert not follower.leading
        killed = time.perf_counter()
        child.send_signal(signal.SIGKILL)
        await until(lambda: follower.leading)  # noqa: B023 (awaited in the loop)
        delays.append(time.perf_counter() - killed)
        await child.wait()
        await follower.stop()
    return delays


async def terminate_takeovers(url: str, runs: int, *, clean: bool) -> list[float]:
    one = Leadership(AdvisoryLeaderLock(url))
    other = Leadership(AdvisoryLeaderLock(url))
    await one.start()
    await other.start()
    delays = []
    admin = await asyncpg.connect(url)
    try:
        for _ in range(runs):
            leader, follower = (one, other) if one.leading else (other, one)
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            if clean:
                await leader.stop()
            else:
                await admin.execute(
                    f"SELECT pg_terminate_backend(pid) FROM ({LEADER_SESSION}) leader",
                    *LEADER_SESSION_ARGS,
                )
            await until(lambda: follower.leading)  # noqa: B023 (awaited in the loop)
            delays.append(time.perf_counter() - started)
            if clean:
                await leader.start()  # back in line
    finally:
        await admin.close()
        await one.stop()
        await other.stop()
    return delays


async def catalogue_delays(
    url: str, content: Path, runs: int
) -> tuple[list[float], list[float], int]:
    """(commit to notice, commit to serving the rebuilt catalogue) per run, and the
    catalogue's episode count."""
    writer = await Storage.open(url, PROJECT_DIR)
    reader = await Storage.open(url, PROJECT_DIR)
    leading = LiveContent(writer, content)
    following = LiveContent(reader, content)
    await leading.reload()
    await following.load()
    heard: list[float] = []
    swapped: list[float] = []
    reader.content_listeners.append(lambda _change: heard.append(time.perf_counter()))
    reader.content_listeners.append(following.changed_elsewhere)
    following.swap_listeners.append(lambda: swapped.append(time.perf_counter()))
    follow = asyncio.create_task(following.follow())
    committed: list[float] = []
    run_statements = writer.db.run_statements

    async def timed(*args: object, **kwargs: object) -> None:
        await run_statements(*args, **kwargs)  # type: ignore[arg-type]
        if kwargs.get("announcing"):  # the transaction that tells the other processes
            committed.append(time.perf_counter())

    writer.db.run_statements = timed  # type: ignore[method-assign]
    show_file = sorted((content / "shows").glob("*.toml"))[0]
    original = show_file.read_text(encoding="utf-8")
    to_notice: list[float] = []
    to_swap: list[float] = []
    try:
        for run in range(runs):
            heard.clear()
            swapped.clear()
            committed.clear()
            # A retitled show: its file's rows are written again in one transaction.
            show_file.write_text(
                re.sub(r'^title = "(.*)"', rf'title = "\1 {run}"', original, count=1),
                encoding="utf-8",
            )
            await leading.reload()
            await until(lambda: bool(swapped))
            await asyncio.sleep(0.05)  # any further rebuild of this change
            to_notice.append(heard[0] - committed[-1])
            to_swap.append(swapped[-1] - committed[-1])
        episodes = len(following.catalogue.episodes)
    finally:
        follow.cancel()
        await asyncio.gather(follow, return_exceptions=True)
        await writer.close()
        await reader.close()
    return to_notice, to_swap, episodes


def summary(delays: list[float]) -> str:
    p50, p99 = (percentile(delays, fraction) * 1000 for fraction in (0.5, 0.99))
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(delays) * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scale", choices=("quick", "full"), default="full")
    parser.add_argument("--hold", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold:
        asyncio.run(hold_lock(args.hold))
        return 0
    server = PostgresServer.start(durable=True)
    workdir = Path(tempfile.mkdtemp(prefix="embargo-bench-leader-"))
    try:
        url = server.create_database()
        print(f"leader takeover ({args.runs} runs each)")
        killed = asyncio.run(kill_takeovers(url, args.runs))
        print(f"  after kill -9 of the leader:        {summary(killed)}")
        terminated = asyncio.run(terminate_takeovers(url, args.runs, clean=False))
        print(f"  after pg_terminate_backend:         {summary(terminated)}")
        stopped = asyncio.run(terminate_takeovers(url, args.runs, clean=True))
        print(f"  after a clean stop:                 {summary(stopped)}")
        world = generate_content(workdir / "content", FULL if args.scale == "full" else QUICK)
        notice, swap, episodes = asyncio.run(
            catalogue_delays(server.create_database(), world.content_dir, args.runs)
        )
        print(f"catalogue across processes ({episodes:,} episodes, one show file changed)")
        print(f"  commit returned to the other hearing: {summary(notice)}")
        print(f"  commit returned to it serving it:     {summary(swap)}")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
