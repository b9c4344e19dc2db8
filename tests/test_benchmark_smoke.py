"""The benchmark keeps working: its own code, on a tiny workload, in the default test run.

``python -m tests.benchmarks`` is run on demand, not by CI, so a change that broke its
transport, its timing or one of its answer checks would go unnoticed until someone next
measured. This runs the same steps (content sync, community load, every timed command with
its reply checked, vote ingestion and recount) on ten small shows; it times nothing that matters.
"""

import dataclasses
import re
import subprocess
import sys

from bot.config import PROJECT_DIR
from bot.storage.postgres.database import POOL_SIZE
from tests.benchmarks.checks import Checks
from tests.benchmarks.commands import COMMANDS, measure_commands
from tests.benchmarks.content import measure_content
from tests.benchmarks.ingest import measure_ingestion
from tests.benchmarks.progress import PROGRESS_COMMANDS, measure_progress, progress_table
from tests.benchmarks.workload import QUICK, generate_content, load_community

SMOKE = dataclasses.replace(
    QUICK,
    name="smoke",
    shows=10,  # every tenth show's finale is still unreleased, which the benchmark needs
    seasons=2,
    episodes_per_season=3,
    guilds=12,
    votes=3000,
    command_calls=8,
    command_runs=1,
    cold_runs=1,
    resync_runs=1,
    voters=20,
    votes_per_voter=5,
    ingest_runs=1,
    long_ending_share=0.3,
)


async def test_the_benchmark_runs_on_a_tiny_workload_and_checks_every_answer(tmp_path):
    checks = Checks()
    world = generate_content(tmp_path / "content", SMOKE)
    _, database = await measure_content(world, tmp_path, SMOKE, checks)
    community = await load_community(world, SMOKE, database, tmp_path, checks)
    figures = await measure_commands(
        world,
        community.votes,
        community.guilds,
        database,
        tmp_path,
        SMOKE.command_calls,
        SMOKE.command_runs,
        checks,
        SMOKE.seed,
    )
    ingest = await measure_ingestion(
        world,
        community.guilds,
        database,
        tmp_path,
        voters=SMOKE.voters,
        votes_per_voter=SMOKE.votes_per_voter,
        runs=SMOKE.ingest_runs,
        seed=SMOKE.seed,
        checks=checks,
    )
    assert checks.failures == []
    # Every timed call was checked (warm-up calls too), and every command was timed.
    assert checks.made >= len(COMMANDS) * SMOKE.command_calls
    assert set(figures) == set(COMMANDS)
    assert all(f.p50_ms > 0 and f.p99_ms >= f.p50_ms for f in figures.values())
    assert ingest.votes_lost == 0
    # Each run is made twice: with the storage's own durability (FULL) and with NORMAL.
    assert ingest.votes_cast == 2 * SMOKE.ingest_runs * SMOKE.voters * SMOKE.votes_per_voter
    assert ingest.synchronous == "FULL"
    assert len(ingest.runs_votes_per_s) == len(ingest.runs_normal_votes_per_s) == 1


def test_the_backends_benchmark_runs_on_both_backends(postgres_server):
    """``python -m tests.benchmarks.backends`` (SQLite beside PostgreSQL, one and several
    processes), tiny: it starts a server of its own, so this one only decides the skip."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.backends",
            *("--voters", "4", "--votes", "3", "--runs", "1", "--processes", "2"),
            *("--tiny", "--changes", "20"),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("SQLite, 1 process", "PostgreSQL, 1 process", "PostgreSQL, 2 processes"):
        (line,) = [line for line in lines if name in line]
        assert "lost 0; totals drift 0" in line
    # Each PostgreSQL voting process held its pool's connection and its listener's.
    held = [line for line in lines if "connections open (" in line]
    assert [line.split("(")[-1] for line in held] == ["2 per process)", "2 per process)"]
    # Every command timed on both backends, every answer checked (a wrong one fails the run).
    for command in COMMANDS:
        (row,) = [line for line in lines if line.split()[:1] == [command] and " ms / " in line]
        assert row.count(" ms / ") == 2
    # The bot's process: its listener and at least one pooled connection, never more than
    # the pool holds plus the leader lock's (how many depends on what its start-up tasks read
    # at once).
    (bot,) = re.findall(r"at most (\d+) connections open by the bot's process", result.stdout)
    assert 2 <= int(bot) <= POOL_SIZE + 2
    assert any(line.startswith("cache invalidation across processes") for line in lines)


def test_the_leader_benchmark_runs(postgres_server):
    """``python -m tests.benchmarks.leader``, tiny: takeovers and a catalogue change reach the
    other process (it starts a server of its own, so this one only decides the skip)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.leader", "--runs", "2", "--scale", "quick"],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("kill -9", "pg_terminate_backend", "clean stop", "other hearing", "serving"):
        (line,) = [line for line in lines if name in line]
        assert "p50" in line


async def test_the_watch_progress_benchmark_runs_and_checks_every_answer(tmp_path):
    checks = Checks()
    world = generate_content(tmp_path / "content", SMOKE)
    _, database = await measure_content(world, tmp_path, SMOKE, checks)
    community = await load_community(world, SMOKE, database, tmp_path, checks)
    loaded, figures = await measure_progress(
        world,
        community.votes,
        community.guilds,
        database,
        tmp_path,
        members=300,
        calls=SMOKE.command_calls,
        runs=SMOKE.command_runs,
        checks=checks,
        seed=SMOKE.seed,
    )
    assert checks.ok, checks.failures
    assert checks.made > 4 * SMOKE.command_calls  # every reply was checked
    assert loaded.members == 300
    assert loaded.rows > 300
    assert set(figures) == set(PROGRESS_COMMANDS)
    assert "watched-through" in progress_table(loaded, figures)
