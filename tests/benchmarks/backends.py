"""``python -m tests.benchmarks.backends``: SQLite and PostgreSQL side by side in one run.

- Vote ingestion through the same code (``Storage.cast_vote``, the path ``/vote`` takes), on
  SQLite, on PostgreSQL with one process, and with several processes writing to one database
  at once; with the most connections each PostgreSQL setup held open at any moment.
- Command handler times (``tests/benchmarks/commands.py``: the same workload, calls, checks
  and ``/noop`` floor) on an SQLite database and on a PostgreSQL copy of it (``migrate-to``).
- The delay from a setting's commit in one process to another process serving it.

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
import copy
import dataclasses
import json
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import asyncpg

from bot.config import PROJECT_DIR
from bot.storage import Storage
from bot.storage.migrate_to import migrate_to
from tests.benchmarks.checks import Checks
from tests.benchmarks.commands import COMMANDS, CommandFigures, measure_commands
from tests.benchmarks.content import measure_content
from tests.benchmarks.workload import QUICK, generate_content, load_community
from tests.postgres_server import PostgresServer

NOW_TS = 1_767_225_600  # 2026-01-01, as the votes' time
GUILDS = 20  # per process
# The command timings' workload: the quick benchmark's catalogue, fewer servers and votes
# (they are copied into PostgreSQL too); ``--tiny``: a few shows, for the smoke test.
COMMANDS_SCALE = dataclasses.replace(
    QUICK, name="backends", guilds=200, votes=20_000, cold_runs=1, resync_runs=1
)
TINY_SCALE = dataclasses.replace(
    QUICK,
    name="tiny",
    shows=10,  # every tenth show's finale is still unreleased, which the commands need
    seasons=2,
    episodes_per_season=3,
    guilds=12,
    votes=3000,
    command_calls=8,
    command_runs=1,
    cold_runs=1,
    resync_runs=1,
    long_ending_share=0.3,
)


class ConnectionCounter:
    """The most connections Embargo held open to one PostgreSQL database at any moment
    (``pg_stat_activity``: the pools', the listeners' and the leader locks'; sampled every
    10 ms by a thread of its own) while in use."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._sample()))

    def __enter__(self) -> ConnectionCounter:
        if self.url is not None:
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    async def _sample(self) -> None:
        conn = await asyncpg.connect(self.url)  # not named "embargo": not counted
        try:
            while not self._stop.is_set():
                counted = await conn.fetchval(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name "
                    "IN ('embargo', 'embargo-leader') AND datname = current_database()"
                )
                self.peak = max(self.peak, counted)
                await asyncio.sleep(0.01)
        finally:
            await conn.close()


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
    with ConnectionCounter(None if server_data is None else url) as connections:
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
        "connections": connections.peak,
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


async def compare_commands(
    workdir: Path, postgres_url: str, tiny: bool
) -> tuple[dict[str, CommandFigures], dict[str, CommandFigures], int, Checks]:
    """The command benchmark's workload on SQLite, copied into PostgreSQL with
    ``migrate-to``, then timed on each (figures per backend), with the most connections the
    PostgreSQL run held open at once."""
    scale = TINY_SCALE if tiny else COMMANDS_SCALE
    checks = Checks()
    world = generate_content(workdir / "content", scale)
    _, database = await measure_content(world, workdir, scale, checks)
    community = await load_community(world, scale, database, workdir, checks)
    # Both runs start from the same data and the same answers' oracle, and make the same
    # calls (votes included): the copy is made, and the oracle kept, before the first.
    await migrate_to(f"sqlite:///{database}", postgres_url, workdir)
    oracles = {None: community.votes, postgres_url: copy.deepcopy(community.votes)}

    async def measure(url: str | None) -> dict[str, CommandFigures]:
        return await measure_commands(
            world,
            oracles[url],
            community.guilds,
            database,
            workdir,
            scale.command_calls,
            scale.command_runs,
            checks,
            scale.seed,
            database_url=url,
        )

    on_sqlite = await measure(None)
    with ConnectionCounter(postgres_url) as counter:
        on_postgres = await measure(postgres_url)
    return on_sqlite, on_postgres, counter.peak, checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voters", type=int, default=200)
    parser.add_argument("--votes", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument(
        "--tiny", action="store_true", help="a tiny command workload (for the smoke test)"
    )
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, process, voters, votes, seed = args.child
        result = asyncio.run(voters_run(url, int(process), int(voters), int(votes), int(seed)))
        print(json.dumps(result))
        return 0
    # Embargo logs every start-up step at INFO; only problems matter here.
    logging.basicConfig(level=logging.WARNING)

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
                connections = 0
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
                    connections = max(connections, result["connections"])
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
                held = (
                    f"; at most {connections} connections open ({connections / processes:g} "
                    "per process)"
                    if server_data is not None
                    else ""
                )
                print(
                    f"  {'':<26} CPU per vote: voting processes {client_s / votes * 1e6:.0f} "
                    f"us, PostgreSQL {server_s / votes * 1e6:.0f} us; cores busy "
                    f"{statistics.median(busy):.0%}{held}"
                )

            sqlite_figures, postgres_figures, connections, checks = asyncio.run(
                compare_commands(Path(folder), server.create_database(), args.tiny)
            )
            failed |= not checks.ok
            scale = TINY_SCALE if args.tiny else COMMANDS_SCALE
            print(
                f"commands: handler time, {scale.command_runs} runs x {scale.command_calls} "
                f"calls each (median of runs), the same {scale.episodes:,}-episode catalogue "
                f"and {scale.votes:,} votes in each database; ratio = p99 / the /noop floor's p99"
            )
            head = ("SQLite p50 / p99 / ratio", "PostgreSQL p50 / p99 / ratio")
            print(f"  {'command':<14}{head[0]:>30}{head[1]:>34}")
            for command in COMMANDS:
                cells = [
                    f"{f.p50_ms:7.2f} / {f.p99_ms:6.2f} ms / {f.ratio_p99:4.1f}x"
                    for f in (sqlite_figures[command], postgres_figures[command])
                ]
                print(f"  {command:<14}{cells[0]:>30}{cells[1]:>34}")
            print(f"  PostgreSQL: at most {connections} connections open by the bot's process")
            for failure in checks.failures:
                print(f"  FAILED: {failure}")

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
