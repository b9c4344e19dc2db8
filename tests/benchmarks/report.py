"""The figures of one run: targets, the printed table and the JSON file."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.benchmarks.commands import COMMANDS, CommandFigures
from tests.benchmarks.content import ContentFigures
from tests.benchmarks.ingest import IngestFigures

# The performance targets on the project's 2-core machine (docs/performance.md).
COMMAND_P99_MAX_MS = 5.0
COMMAND_RATIO_MAX = 3.0
AUTOCOMPLETE_P99_MAX_MS = 2.0
VOTES_PER_S_MIN = 5000.0
COLD_LOAD_MAX_S = 10.0
RESYNC_UNCHANGED_MAX_S = 0.5
PEAK_RSS_MAX_MB = 200.0


@dataclass(frozen=True)
class Results:
    scale: dict[str, object]
    content: ContentFigures
    commands: dict[str, CommandFigures]
    ingest: IngestFigures
    memory_cold: dict[str, Any]
    memory_warm: dict[str, Any]
    setup_s: dict[str, float]
    checks_made: int
    checks_failed: int

    @property
    def peak_rss_mb(self) -> float:
        return max(self.memory_cold["peak_rss_mb"], self.memory_warm["peak_rss_mb"])

    def to_json(self) -> dict[str, object]:
        return {
            "commands": {
                name: {
                    "p50_ms": round(figures.p50_ms, 3),
                    "p99_ms": round(figures.p99_ms, 3),
                    "ratio_p99": round(figures.ratio_p99, 2),
                }
                for name, figures in self.commands.items()
            },
            "votes_per_s": round(self.ingest.votes_per_s, 1),
            "votes_lost": self.ingest.votes_lost,
            "votes_synchronous": self.ingest.synchronous,
            "votes_per_s_normal": round(self.ingest.normal_votes_per_s, 1),
            "cold_load_s": round(self.content.cold_load_s, 3),
            "resync_unchanged_s": round(self.content.resync_unchanged_s, 3),
            "resync_one_changed_s": round(self.content.resync_one_changed_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "scale": self.scale,
        }


@dataclass(frozen=True)
class Target:
    label: str
    met: Callable[[Results], bool]


def _command_met(name: str, limit: float, results: Results) -> bool:
    timing = results.commands[name]
    return timing.p99_ms <= limit and timing.ratio_p99 <= COMMAND_RATIO_MAX


def command_targets() -> list[Target]:
    targets = []
    for name in COMMANDS:
        if name == "noop":
            continue
        limit = AUTOCOMPLETE_P99_MAX_MS if name == "autocomplete" else COMMAND_P99_MAX_MS
        targets.append(
            Target(
                f"{name}: p99 <= {limit:g} ms and <= {COMMAND_RATIO_MAX:g}x the floor",
                functools.partial(_command_met, name, limit),
            )
        )
    return targets


TARGETS = [
    *command_targets(),
    Target(
        f"vote ingestion >= {VOTES_PER_S_MIN:,.0f}/s with 0 lost",
        lambda r: r.ingest.votes_per_s >= VOTES_PER_S_MIN and r.ingest.votes_lost == 0,
    ),
    Target(
        f"cold load <= {COLD_LOAD_MAX_S:g} s", lambda r: r.content.cold_load_s <= COLD_LOAD_MAX_S
    ),
    Target(
        f"unchanged re-sync <= {RESYNC_UNCHANGED_MAX_S:g} s",
        lambda r: r.content.resync_unchanged_s <= RESYNC_UNCHANGED_MAX_S,
    ),
    Target(f"peak RSS <= {PEAK_RSS_MAX_MB:g} MB", lambda r: r.peak_rss_mb <= PEAK_RSS_MAX_MB),
]


def _runs(values: tuple[float, ...], digits: int = 2) -> str:
    return " ".join(f"{v:.{digits}f}" for v in values)


def table(results: Results) -> str:
    s = results.scale
    lines = [
        f"Embargo benchmarks, {s['name']} scale: {s['shows']} shows x {s['seasons']} seasons x "
        f"{s['episodes_per_season']} episodes = {s['episodes']:,} episodes, {s['guilds']:,} "
        f"guilds, {s['votes']:,} votes",
        f"Medians of {s['command_runs']} runs of {s['command_calls_per_run']} calls per command "
        "(handler time: interaction payload in -> response payload out; for a reply in several",
        "messages, until the last is out, and '1st msg' until the first).",
        "",
        f"{'command':<14}{'p50 ms':>9}{'p99 ms':>9}{'p99/floor':>11}{'1st msg p99':>13}"
        "   p99 of each run (ms)",
    ]
    for name in COMMANDS:
        f = results.commands[name]
        lines.append(
            f"{name:<14}{f.p50_ms:>9.3f}{f.p99_ms:>9.3f}{f.ratio_p99:>10.2f}x"
            f"{f.first_p99_ms:>13.3f}   {_runs(f.runs_p99_ms, 3)}"
        )
    c, i = results.content, results.ingest
    cold, warm = results.memory_cold, results.memory_warm
    lines += [
        "",
        f"{'figure':<34}{'value':>14}   runs",
        f"{'content cold load (s)':<34}{c.cold_load_s:>14.3f}   {_runs(c.cold_runs, 3)}",
        f"{'re-sync, nothing changed (s)':<34}{c.resync_unchanged_s:>14.3f}   "
        f"{_runs(c.unchanged_runs, 3)}",
        f"{'re-sync, one file changed (s)':<34}{c.resync_one_changed_s:>14.3f}   "
        f"{_runs(c.changed_runs, 3)}",
        f"{'catalogue index build (s)':<34}{c.catalogue_s:>14.3f}   (after a load; informational)",
        f"{'vote ingestion (votes/s)':<34}{i.votes_per_s:>14,.0f}   "
        f"{_runs(i.runs_votes_per_s, 0)}  ({s['voters']} concurrent voters, "
        f"synchronous={i.synchronous})",
        f"{'  same, synchronous=NORMAL':<34}{i.normal_votes_per_s:>14,.0f}   "
        f"{_runs(i.runs_normal_votes_per_s, 0)}  (durable only against a crash of the "
        f"process; {i.votes_per_s / i.normal_votes_per_s:.2f}x)",
        f"{'votes lost':<34}{i.votes_lost:>14}   recount of {i.votes_cast:,} cast "
        f"took {i.recount_s:.1f} s",
        f"{'peak RSS (MB)':<34}{results.peak_rss_mb:>14.1f}   first start "
        f"{cold['peak_rss_mb']:.1f}, restart {warm['peak_rss_mb']:.1f} "
        f"(RSS at end {cold['rss_end_mb']:.1f} / {warm['rss_end_mb']:.1f})",
        "",
        "set-up (not targets): "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in results.setup_s.items()),
        "",
        "targets:",
    ]
    for target in TARGETS:
        lines.append(f"  {'PASS' if target.met(results) else 'MISS'}  {target.label}")
    verdict = "all correct" if results.checks_failed == 0 else f"{results.checks_failed} FAILED"
    lines.append(f"correctness: {results.checks_made:,} checks, {verdict}")
    return "\n".join(lines)


def write_json(results: Results, path: Path) -> None:
    path.write_text(json.dumps(results.to_json(), indent=2) + "\n", encoding="utf-8")
