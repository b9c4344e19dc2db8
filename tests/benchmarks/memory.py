"""Peak memory of a bot process once the catalogue and every server's settings are loaded.

Run in a child process (``python -m tests.benchmarks.memory``), because the benchmark's own
process holds the generated workload (a million votes as Python tuples) and would swamp the
figure. The child does what ``EmbargoBot`` does at start, minus logging in: content sync,
the catalogue index, every extension, then reads the settings of every server into the
settings cache, as a bot answering commands in all of them ends up doing. It prints one JSON
line: the peak RSS and the RSS at the end.

Without ``--database`` it starts from an empty one (a first start: every file parsed, the
worst peak); with it, it opens the benchmark's loaded database (a restart: nothing re-parsed).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import tempfile
import time
from pathlib import Path

from bot.client import EmbargoBot, extension_names
from bot.config import Settings
from bot.storage import Storage
from tests.benchmarks.workload import FULL, NOW, QUICK, generate_guilds, insert_guilds


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB.

    ``VmHWM`` is the peak RSS of this process's own address space. ``ru_maxrss`` is not used:
    Linux carries the parent's peak over into a child across fork and exec.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


async def measure(content_dir: Path, database: Path | None, scale_name: str) -> dict[str, object]:
    scale = FULL if scale_name == "full" else QUICK
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="embargo-mem-") as scratch:
        path = database or Path(scratch) / "embargo.db"
        storage = await Storage.open(f"sqlite:///{path}", Path(scratch))
        slugs = sorted(p.stem for p in (content_dir / "shows").glob("*.toml"))
        guilds = generate_guilds(scale, slugs)
        if database is None:
            await insert_guilds(storage, guilds)
        settings = Settings(
            discord_token=None,
            database_url=f"sqlite:///{path}",
            content_dir=content_dir,
            log_level="WARNING",
            dev_guild_id=None,
        )
        bot = EmbargoBot(settings, storage, clock=lambda: NOW)
        try:
            async with bot:
                await bot.sync_content()
                for name in extension_names():
                    await bot.load_extension(name)
                loaded = 0
                for guild in guilds:
                    settings_read = await storage.get_guild_settings(guild.guild_id)
                    loaded += settings_read.spoilers.mode.value == guild.mode
                episodes = len(bot.catalogue)
                gc.collect()
        finally:
            await storage.close()
    return {
        "peak_rss_mb": _status_mb("VmHWM"),
        "rss_end_mb": _status_mb("VmRSS"),
        "episodes": episodes,
        "guilds": len(guilds),
        "guilds_matching": loaded,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, required=True)
    parser.add_argument("--database", type=Path, help="a loaded database (default: empty)")
    parser.add_argument("--scale", choices=("full", "quick"), default="full")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(measure(args.content, args.database, args.scale))))


if __name__ == "__main__":
    main()
