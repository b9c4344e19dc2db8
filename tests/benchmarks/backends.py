"""``python -m tests.benchmarks.backends``: vote ingestion on SQLite and on PostgreSQL through
the same code (``Storage.cast_vote``, the path ``/vote`` takes), side by side in one run, and
on PostgreSQL with one process and with several processes writing to one database at once.

Each process runs ``--voters`` concurrent voters, each casting ``--votes`` votes one after
another on random episodes (some go back to an episode voted on before). Each process votes in
servers of its own, as a sharded deployment routes a server's interactions to the one process
running its shard; the pooled (global) totals are shared by all. The processes open their
storage and plan their votes first, then start voting together, so the time measured is
voting only, not one process's start-up beside another's votes. Both databases keep their
durable settings: SQLite ``synchronous=FULL`` (the storage's own), PostgreSQL ``fsync=on,
synchronous_commit=on`` (its defaults), on the same disk. Besides votes per second, each setup
prints where the CPU went (the voting processes' own CPU time and the PostgreSQL server's, per
vote) and how busy the machine's cores were. Every run is checked: each reply names the score
it replaced, every vote is stored with its last score, and the running totals equal a
recount (``check_vote_totals``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.config import PROJECT_DIR
from bot.storage import Storage
from tests.postgres_server import PostgresServer

NOW_TS = 1_767_225_600  # 2026-01-01, as the votes' time
GUILDS = 20  # per process
EPISODES = [f"show-{show}/s01e{number:02d}" for show in range(10) for number in range(1, 11)]


async def voters_run(url: str, process: int, voters: int, votes: int, seed: int) -> dict:
    """One process's share: ``voters`` concurrent voters, started when a line arrives on
    stdin; returns counts, timing, CPU time and problems."""
    now = datetime.fromtimestamp(NOW_TS, UTC)
    rng = random.Random(seed * 1000 + process)
    storage = await Storage.open(url, PROJECT_DIR)
    problems: list[str] = []
    expected: dict[tuple[int, int, str], int] = {}
    plans = []
    for voter in range(voters):
        guild = process * GUILDS + rng.randrange(GUILDS) + 1
        user = (seed * 100 + process) * 100_000 + voter
        keys = rng.sample(EPISODES, votes)
        plan = []
        for index, key in enumerate(keys):
            if index and rng.random() < 0.1:
                key = keys[rng.randrange(index)]
            plan.append((key, rng.randint(1, 10)))
        plans.append((guild, user, plan))

    async def vote(guild: int, user: int, plan: list[tuple[str, int]]) -> None:
        mine: dict[str, int] = {}
        for key, score in plan:
            change = await storage.cast_vote(guild, user, key, score, now=now)
            if change.old_score != mine.get(key):
                problems.append(f"{guild}/{user}/{key}: replaced {change.old_score}")
            mine[key] = score
        for key, score in mine.items():
            expected[(guild, user, key)] = score

    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        cpu_before = _own_cpu_s()
        started = time.time()
        await asyncio.gather(*(vote(*plan) for plan in plans))
        ended = time.time()
        cpu_s = _own_cpu_s() - cpu_before
        # The parent reads the CPU counters now, before the checks below add their reads.
        print("voted", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        for (guild, user, key), score in expected.items():
            rows = await storage.db.read(
                "SELECT score FROM votes WHERE guild_id = ? AND user_id = ? AND episode_key = ?",
                (guild, user, key),
            )
            if not rows or rows[0][0] != score:
                problems.append(f"{guild}/{user}/{key}: stored {rows[0][0] if rows else None}")
        batches = storage._vote_committer().batches
    finally:
        await storage.close()
    return {
        "votes": voters * votes,
        "started": started,
        "ended": ended,
        "batches": batches,
        "cpu_s": cpu_s,
        "problems": problems[:5],
        "lost": len(problems),
    }


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_cpu() -> tuple[int, int]:
    """Clock ticks since boot over all cores: (all, idle and waiting for I/O)."""
    ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def _server_cpu_s(data_dir: Path | None) -> float:
    """CPU seconds used so far by the PostgreSQL server's processes (those whose command
    line names ``data_dir``, and their children: the backends), 0 without one."""
    if data_dir is None:
        return 0.0
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    roots = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
        if str(data_dir).encode() in command:
            roots.add(pid)
    owned = {pid for pid in ticks if pid in roots or parents.get(pid) in roots}
    return sum(ticks[pid] for pid in owned) / os.sysconf("SC_CLK_TCK")


def run_processes(
    url: str,
    processes: int,
    voters: int,
    votes: int,
    seed: int,
    server_data: Path | None = None,
) -> dict:
    """``processes`` child processes voting on one database at once, started together once
    all are ready; total votes per second from the first start to the last end, and the
    CPU time spent (``server_data``: the PostgreSQL server's data folder, to count its CPU)."""
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.benchmarks.backends",
                "--child",
                url,
                str(process),
                str(voters),
                str(votes),
                str(seed),
            ],
            cwd=PROJECT_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for process in range(processes)
    ]
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"a voting process failed to start ({child.wait()})")
    machine_before, server_before = _machine_cpu(), _server_cpu_s(server_data)
    results = []
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "voted":
            raise RuntimeError(f"a voting process failed ({child.wait()})")
    machine_after, server_after = _machine_cpu(), _server_cpu_s(server_data)
    for child in children:
        out, _ = child.communicate("check\n", timeout=600)
        if child.returncode != 0:
            raise RuntimeError(f"a voting process failed ({child.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    total = sum(result["votes"] for result in results)
    elapsed = max(r["ended"] for r in results) - min(r["started"] for r in results)
    all_ticks = machine_after[0] - machine_before[0]
    return {
        "votes": total,
        "votes_per_s": total / elapsed,
        # Includes the children's exits after voting: a slight overestimate of busy.
        "machine_busy": 1 - (machine_after[1] - machine_before[1]) / max(1, all_ticks),
        "client_cpu_s": sum(r["cpu_s"] for r in results),
        "server_cpu_s": server_after - server_before,
        "batches": sum(r["batches"] for r in results),
        "lost": sum(r["lost"] for r in results),
        "problems": [p for r in results for p in r["problems"]][:5],
    }


async def invalidation_delays(url: str, changes: int) -> list[float]:
    """Seconds from a setting's commit in one process until another process, which had the
    old value cached, serves the new one (its cache dropped on hearing the announcement)."""
    writer = await Storage.open(url, PROJECT_DIR)
    reader = await Storage.open(url, PROJECT_DIR)
    loop = asyncio.get_running_loop()
    delays = []
    try:
        for change in range(changes):
            await reader.get_guild_settings(1)  # cached
            await writer.set_min_votes(1, 2 + change % 2)
            committed = loop.time()
            while (await reader.get_guild_settings(1)).min_votes != 2 + change % 2:
                if loop.time() - committed > 5:
                    raise RuntimeError("a change was not heard within 5 s")
                await asyncio.sleep(0)
            delays.append(loop.time() - committed)
    finally:
        await writer.close()
        await reader.close()
    return delays


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def totals_drift(url: str) -> int:
    storage = await Storage.open(url, PROJECT_DIR)
    try:
        return len(await storage.check_vote_totals())
    finally:
        await storage.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voters", type=int, default=200)
    parser.add_argument("--votes", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, process, voters, votes, seed = args.child
        result = asyncio.run(voters_run(url, int(process), int(voters), int(votes), int(seed)))
        print(json.dumps(result))
        return 0

    server = PostgresServer.start(durable=True)
    failed = False
    try:
        with tempfile.TemporaryDirectory(prefix="embargo-bench-") as folder:
            data = server.folder / "data"
            setups = [
                ("SQLite, 1 process", f"sqlite:///{folder}/votes.db", 1, None),
                ("PostgreSQL, 1 process", server.create_database(), 1, data),
                (
                    f"PostgreSQL, {args.processes} processes",
                    server.create_database(),
                    args.processes,
                    data,
                ),
            ]
            print(
                f"vote ingestion: {args.voters} concurrent voters per process x {args.votes} "
                f"votes each, {args.runs} runs, median (all runs); CPU per vote in the voting "
                f"processes and in PostgreSQL, and the machine's {os.cpu_count()} cores' use"
            )
            for name, url, processes, server_data in setups:
                rates, busy, batches, lost, client_s, server_s = [], [], 0, 0, 0.0, 0.0
                for run in range(args.runs):
                    result = run_processes(
                        url, processes, args.voters, args.votes, run, server_data
                    )
                    rates.append(result["votes_per_s"])
                    busy.append(result["machine_busy"])
                    batches += result["batches"]
                    lost += result["lost"]
                    client_s += result["client_cpu_s"]
                    server_s += result["server_cpu_s"]
                    for problem in result["problems"]:
                        print(f"  problem: {problem}")
                drift = asyncio.run(totals_drift(url))
                failed |= bool(lost or drift)
                votes = args.runs * processes * args.voters * args.votes
                print(
                    f"  {name:<26} {statistics.median(rates):>8,.0f} votes/s  "
                    f"({', '.join(f'{rate:,.0f}' for rate in rates)}); "
                    f"{votes / batches:.1f} votes per commit; lost {lost}; totals drift {drift}"
                )
                print(
                    f"  {'':<26} CPU per vote: voting processes {client_s / votes * 1e6:.0f} "
                    f"us, PostgreSQL {server_s / votes * 1e6:.0f} us; cores busy "
                    f"{statistics.median(busy):.0%}"
                )
            delays = asyncio.run(invalidation_delays(server.create_database(), args.changes))
            p50, p99 = (percentile(delays, fraction) * 1000 for fraction in (0.5, 0.99))
            print(
                f"cache invalidation across processes (PostgreSQL, {len(delays)} setting "
                f"changes): commit to the other process serving the new value p50 {p50:.2f} "
                f"ms, p99 {p99:.2f} ms, max {max(delays) * 1000:.2f} ms"
            )
    finally:
        server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
