"""Content sync timings: cold load into an empty database, re-sync with nothing changed,
re-sync with one review changed. Each run is checked against what was generated."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bot.content.sync import sync_content
from bot.lookup import Catalogue
from bot.storage import Storage
from tests.benchmarks.checks import Checks
from tests.benchmarks.workload import Scale, World


@dataclass(frozen=True)
class ContentFigures:
    cold_load_s: float
    resync_unchanged_s: float
    resync_one_changed_s: float
    catalogue_s: float  # building the in-memory lookup index after a load (informational)
    cold_runs: tuple[float, ...]
    unchanged_runs: tuple[float, ...]
    changed_runs: tuple[float, ...]


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


async def measure_content(
    world: World, workdir: Path, scale: Scale, checks: Checks
) -> tuple[ContentFigures, Path]:
    """Run the content timings; returns them and the database left loaded by the last cold
    load, which the rest of the benchmark builds on."""
    cold: list[float] = []
    catalogue: list[float] = []
    database = workdir / "embargo.db"
    for _ in range(scale.cold_runs):
        remove_database(database)
        storage = await Storage.open(f"sqlite:///{database}", workdir)
        try:
            started = time.perf_counter()
            report = await sync_content(storage, world.content_dir)
            cold.append(time.perf_counter() - started)
            checks.expect(
                len(report.loaded) == world.files and not report.problems,
                f"cold load: {len(report.loaded)} of {world.files} files loaded, "
                f"problems: {[str(p) for p in report.problems[:3]]}",
            )
            started = time.perf_counter()
            index = Catalogue(await storage.load_shows())
            catalogue.append(time.perf_counter() - started)
            checks.expect(
                len(index) == scale.episodes,
                f"cold load: {len(index)} episodes served, {scale.episodes} written",
            )
        finally:
            await storage.close()

    storage = await Storage.open(f"sqlite:///{database}", workdir)
    try:
        unchanged: list[float] = []
        for _ in range(scale.resync_runs):
            started = time.perf_counter()
            report = await sync_content(storage, world.content_dir)
            unchanged.append(time.perf_counter() - started)
            checks.expect(
                not report.loaded and len(report.unchanged) == world.files,
                f"unchanged re-sync loaded {len(report.loaded)} file(s), "
                f"{len(report.unchanged)} unchanged of {world.files}",
            )

        # An edit to one review's ending: only that file is parsed and written. The long
        # endings (the /ending benchmark's) and every review body stay as generated.
        edited = next(key for key in world.episodes if key not in set(world.long_endings))
        slug, code = edited.split("/")
        rel = f"reviews/{slug}/{code}.md"
        path = world.content_dir / rel
        original = path.read_text(encoding="utf-8")
        changed: list[float] = []
        for run in range(scale.resync_runs):
            marker = f"Edited in run {run} of the benchmark."
            path.write_text(original.rstrip("\n") + f"\n\n{marker}\n", encoding="utf-8")
            started = time.perf_counter()
            report = await sync_content(storage, world.content_dir)
            changed.append(time.perf_counter() - started)
            review = await storage.get_review(edited)
            checks.expect(
                report.loaded == (rel,) and not report.problems,
                f"one-file re-sync loaded {report.loaded[:3]}, expected only {rel}",
            )
            checks.expect(
                review is not None and (review.ending or "").endswith(marker),
                f"one-file re-sync: {edited} does not serve the edited ending",
            )
        path.write_text(original, encoding="utf-8")
        await sync_content(storage, world.content_dir)
    finally:
        await storage.close()

    figures = ContentFigures(
        cold_load_s=statistics.median(cold),
        resync_unchanged_s=statistics.median(unchanged),
        resync_one_changed_s=statistics.median(changed),
        catalogue_s=statistics.median(catalogue),
        cold_runs=tuple(cold),
        unchanged_runs=tuple(unchanged),
        changed_runs=tuple(changed),
    )
    return figures, database
