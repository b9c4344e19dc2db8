"""``python -m tests.benchmarks [--quick] [--json FILE] [--workdir DIR]``

Exit status: 0 when every answer measured was correct (targets missed are reported in the
table, not as a failure), 1 when any correctness check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.config import PROJECT_DIR
from tests.benchmarks.checks import Checks
from tests.benchmarks.commands import measure_commands
from tests.benchmarks.content import measure_content
from tests.benchmarks.ingest import measure_ingestion
from tests.benchmarks.progress import measure_progress, progress_table
from tests.benchmarks.report import Results, table, write_json
from tests.benchmarks.workload import FULL, QUICK, Scale, generate_content, load_community

_STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


async def _memory(content: Path, database: Path | None, scale: Scale) -> dict[str, Any]:
    """Peak RSS measured in a fresh child process (see ``tests/benchmarks/memory.py``)."""
    args = [sys.executable, "-m", "tests.benchmarks.memory", "--content", str(content)]
    args += ["--scale", scale.name]
    if database is not None:
        args += ["--database", str(database)]
    child = await asyncio.create_subprocess_exec(
        *args, cwd=PROJECT_DIR, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the memory child process failed ({child.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


async def run(scale: Scale, workdir: Path) -> tuple[Results, Checks]:
    checks = Checks()
    setup: dict[str, float] = {}

    progress(f"writing the {scale.name} catalogue ({scale.episodes:,} episodes)")
    world = generate_content(workdir / "content", scale)
    setup["content generation"] = world.generate_s

    progress("content sync: cold loads, unchanged and one-file re-syncs")
    content, database = await measure_content(world, workdir, scale, checks)

    progress(f"loading {scale.guilds:,} guilds and {scale.votes:,} votes")
    community = await load_community(world, scale, database, workdir, checks)
    guilds, votes = community.guilds, community.votes
    setup["guild and vote generation"] = community.generate_s
    setup["bulk load"] = community.load_s
    setup["recount after bulk load"] = community.recount_s

    progress("peak RSS: first start and restart, each in a child process")
    memory_cold = await _memory(world.content_dir, None, scale)
    memory_warm = await _memory(world.content_dir, database, scale)
    for label, memory in (("first start", memory_cold), ("restart", memory_warm)):
        checks.expect(
            memory["episodes"] == scale.episodes and memory["guilds_matching"] == scale.guilds,
            f"memory ({label}): {memory}",
        )

    progress(f"commands: {scale.command_runs} runs x {scale.command_calls} calls per command")
    commands = await measure_commands(
        world,
        votes,
        guilds,
        database,
        workdir,
        scale.command_calls,
        scale.command_runs,
        checks,
        scale.seed,
    )

    progress(f"vote ingestion: {scale.voters} concurrent voters, {scale.ingest_runs} runs")
    ingest = await measure_ingestion(
        world,
        guilds,
        database,
        workdir,
        voters=scale.voters,
        votes_per_voter=scale.votes_per_voter,
        runs=scale.ingest_runs,
        seed=scale.seed,
        checks=checks,
    )
    progress(f"watch progress: {scale.progress_members:,} members with progress")
    watch_load, watch = await measure_progress(
        world,
        votes,
        guilds,
        database,
        workdir,
        members=scale.progress_members,
        calls=scale.command_calls,
        runs=scale.command_runs,
        checks=checks,
        seed=scale.seed,
    )
    print(progress_table(watch_load, watch))
    progress("done")
    return Results(
        scale=scale.describe(),
        content=content,
        commands=commands,
        ingest=ingest,
        memory_cold=memory_cold,
        memory_warm=memory_warm,
        setup_s=setup,
        checks_made=checks.made,
        checks_failed=checks.failed,
    ), checks


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="Embargo's speed and memory at community scale.",
    )
    parser.add_argument("--quick", action="store_true", help="a scaled-down run (about a minute)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--workdir", type=Path, help="keep the generated content and database here")
    args = parser.parse_args()
    # Embargo and discord.py log every start-up step at INFO; only problems matter here.
    logging.basicConfig(level=logging.WARNING)
    scale = QUICK if args.quick else FULL
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="embargo-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        results, checks = asyncio.run(run(scale, workdir))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))
    for failure in checks.failures:
        print(f"  FAILED: {failure}")
    if args.json is not None:
        write_json(results, args.json)
    return 0 if checks.ok else 1


if __name__ == "__main__":
    sys.exit(main())
