"""Watch progress at community scale: ``/watched through:`` on a show's last episode (a fresh
member each call, so every call writes the whole show), ``/progress`` for one member with
2,000 watched episodes across 40 shows, and ``/ending`` for a member who marked the episode
watched, side by side with the ``/noop`` floor in the same rounds.

The database is the community benchmark's (guilds and votes), plus ``members`` members with
progress, bulk-loaded here. Timing and checks go through ``CommandBench.run_one``: the same
dispatch path, the same subtraction of the stand-in's own time, every reply checked.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.benchmarks.checks import Checks
from tests.benchmarks.commands import (
    EPHEMERAL,
    WARMUP_CALLS,
    CommandBench,
    CommandFigures,
    _Call,
    _hidden_text,
    _label,
    _percentile,
    _text,
    command_bench,
)
from tests.benchmarks.workload import NOW, USER_ID_BASE, GuildRow, Votes, World

PROGRESS_COMMANDS = ("watched-through", "progress", "ending-watcher", "noop")
BENCH_MEMBER_SHOWS = 40
BENCH_MEMBER_WATCHED = 2000
FRESH_MEMBER_BASE = USER_ID_BASE + 900_000_000  # ids no generated voter has


@dataclass(frozen=True)
class ProgressLoad:
    members: int
    rows: int
    load_s: float


def load_progress(database: Path, world: World, members: int, seed: int) -> ProgressLoad:
    """Bulk-load ``members`` members' progress: each watched one show from its first episode
    through a random one (what ``/watched through:`` stores). Plain SQL in one transaction:
    this is setup, not what is measured."""
    rng = random.Random(seed)
    shows = [sorted(s.episodes, key=lambda e: (e.season, e.number)) for s in world.shows]
    started = time.perf_counter()
    rows = 0
    with sqlite3.connect(database) as conn:
        for member in range(members):
            episodes = rng.choice(shows)
            through = rng.randrange(1, min(len(episodes), 20) + 1)
            batch = [
                (USER_ID_BASE + member, e.show_slug, e.key, int(NOW.timestamp()))
                for e in episodes[:through]
            ]
            conn.executemany("INSERT OR IGNORE INTO watched_episodes VALUES (?, ?, ?, ?)", batch)
            rows += len(batch)
    return ProgressLoad(members, rows, time.perf_counter() - started)


class ProgressCalls:
    """The timed calls and their oracles."""

    def __init__(self, bench: CommandBench, member_id: int) -> None:
        self.bench = bench
        self.member_id = member_id
        released_shows = [
            s for s in bench.world.shows if all(e.release_at <= NOW for e in s.episodes)
        ]
        self.through_show = max(released_shows, key=lambda s: len(s.episodes))
        self.through_last = max(self.through_show.episodes, key=lambda e: (e.season, e.number))
        self.fresh = itertools.count(FRESH_MEMBER_BASE)
        self.shows_watched = 0
        self.ending_keys: list[str] = []  # long endings in the bench member's shows

    def _payload(self, template: str, options: list[dict[str, Any]], user_id: int) -> dict:
        payload = self.bench._payload(template, options)
        member = dict(payload["member"])
        member["user"] = {**member["user"], "id": str(user_id)}
        payload["member"] = member
        return payload

    def call(self, command: str, index: int) -> _Call:
        if command == "noop":
            return self.bench.next_call("noop", index)
        return getattr(self, "_" + command.replace("-", "_"))(index)

    def _watched_through(self, index: int) -> _Call:
        episode = self.through_last
        count = len(self.through_show.episodes)
        expected = f"Marked watched: {count} episodes, up to **{_label(episode)}**. Saved."

        def check(sent: list[dict[str, Any]]) -> str | None:
            if len(sent) != 1 or not sent[0].get("flags", 0) & EPHEMERAL:
                return f"/watched through: expected one private reply, got {sent!r:.300}"
            first = (sent[0].get("content") or "").splitlines()[0]
            return None if first == expected else f"/watched through: {first!r}"

        options = [_text("episode", episode.key), {"type": 5, "name": "through", "value": True}]
        payload = self._payload("watched", options, next(self.fresh))
        return _Call("watched-through", payload, check)

    def _progress(self, index: int) -> _Call:
        shows = self.shows_watched

        def check(sent: list[dict[str, Any]]) -> str | None:
            if len(sent) != 1 or len(sent[0].get("embeds") or []) != 1:
                return f"/progress: expected one embed, got {sent!r:.300}"
            footer = sent[0]["embeds"][0].get("footer", {}).get("text", "")
            pages = -(-shows // 5)
            ok = footer.startswith(f"Page 1 of {pages} · {shows} show(s)")
            return None if ok else f"/progress: footer {footer!r}"

        return _Call("progress", self._payload("progress", [], self.member_id), check)

    def _ending_watcher(self, index: int) -> _Call:
        keys = self.ending_keys
        key = keys[index % len(keys)]
        ending = " ".join(self.bench.world.endings[key].split())

        def check(sent: list[dict[str, Any]]) -> str | None:
            contents = [m.get("content") or "" for m in sent]
            if not contents or _hidden_text(contents) != ending:
                return f"/ending {key} (watcher): the revealed text is not the ending"
            return None

        payload = self._payload("ending", [_text("episode", key)], self.member_id)
        return _Call("ending-watcher", payload, check)


async def measure_progress(
    world: World,
    votes: Votes,
    guilds: list[GuildRow],
    database: Path,
    workdir: Path,
    *,
    members: int,
    calls: int,
    runs: int,
    checks: Checks,
    seed: int,
) -> tuple[ProgressLoad, dict[str, CommandFigures]]:
    loaded = load_progress(database, world, members, seed)
    async with command_bench(world, votes, guilds, database, workdir, checks, seed) as bench:
        member_id = USER_ID_BASE + members + 1  # the one with 2,000 episodes
        progress_calls = ProgressCalls(bench, member_id)
        await _prepare(bench, progress_calls, member_id)
        samples = await _rounds(progress_calls, calls, runs)
    return loaded, _figures(samples)


async def _prepare(bench: CommandBench, calls: ProgressCalls, member_id: int) -> None:
    """Record the templates, and give the bench member 2,000 watched episodes across 40 shows
    (the ending episodes among them) through the storage."""
    h = bench.harness
    storage = h.bot.storage  # type: ignore[attr-defined]
    # The 40 shows with the most long endings, so the watcher's /ending calls stay inside them.
    endings: dict[str, list[str]] = {}
    for key in bench.ending_keys:
        endings.setdefault(key.split("/")[0], []).append(key)
    shows = sorted(bench.world.shows, key=lambda s: (-len(endings.get(s.slug, [])), s.slug))
    shows = shows[:BENCH_MEMBER_SHOWS]
    per_show = max(1, BENCH_MEMBER_WATCHED // len(shows))
    keys: list[str] = []
    for show in shows:
        own = endings.get(show.slug, [])[:per_show]
        ordered = sorted(show.episodes, key=lambda e: (e.season, e.number))
        first = [e.key for e in ordered if e.release_at <= NOW and e.key not in own]
        keys += own + first[: per_show - len(own)]
    calls.ending_keys = [key for show in shows for key in endings.get(show.slug, [])]
    await storage.mark_watched(member_id, keys, now=NOW)
    watched = await storage.watched_keys(member_id)
    calls.shows_watched = len({key.split("/")[0] for key in watched})
    bench.checks.expect(watched == set(keys), "the bench member's progress was not stored")
    bench.checks.expect(bool(calls.ending_keys), "no long ending among the bench member's shows")
    episode = calls.through_last
    templates = {
        "watched": await h.slash("watched", episode=episode.key, through=True),
        "progress": await h.slash("progress"),
    }
    for name, recorded in templates.items():
        bench.checks.expect(
            not recorded.errors and recorded.acknowledged,
            f"template call /{name} failed: {recorded.describe()[:400]}",
        )
        bench.templates[name] = recorded.payload


Samples = dict[str, list[list[float]]]


async def _rounds(calls: ProgressCalls, count: int, runs: int) -> Samples:
    for index in range(WARMUP_CALLS):
        for command in PROGRESS_COMMANDS:
            await calls.bench.run_one(calls.call(command, index))
    samples: Samples = {command: [] for command in PROGRESS_COMMANDS}
    counter = itertools.count(WARMUP_CALLS)
    for _ in range(runs):
        run: dict[str, list[float]] = {command: [] for command in PROGRESS_COMMANDS}
        for _ in range(count):
            index = next(counter)
            for command in PROGRESS_COMMANDS:
                last, _first = await calls.bench.run_one(calls.call(command, index))
                run[command].append(last)
        for command in PROGRESS_COMMANDS:
            samples[command].append(run[command])
    return samples


def _figures(samples: Samples) -> dict[str, CommandFigures]:
    def per_run(runs: list[list[float]], fraction: float) -> tuple[float, ...]:
        return tuple(_percentile(run, fraction) * 1000 for run in runs)

    floor = statistics.median(per_run(samples["noop"], 0.99))
    figures = {}
    for command, runs in samples.items():
        p50s, p99s = per_run(runs, 0.50), per_run(runs, 0.99)
        p99 = statistics.median(p99s)
        figures[command] = CommandFigures(
            p50_ms=statistics.median(p50s),
            p99_ms=p99,
            ratio_p99=p99 / floor,
            runs_p50_ms=p50s,
            runs_p99_ms=p99s,
            first_p99_ms=p99,
        )
    return figures


def progress_table(loaded: ProgressLoad, figures: dict[str, CommandFigures]) -> str:
    lines = [
        f"Watch progress ({loaded.members:,} members with progress, {loaded.rows:,} rows, "
        f"loaded in {loaded.load_s:.1f}s)",
        f"{'command':<18}{'p50 ms':>10}{'p99 ms':>10}{'p99 / noop p99':>16}",
    ]
    for command, figure in figures.items():
        lines.append(
            f"{command:<18}{figure.p50_ms:>10.2f}{figure.p99_ms:>10.2f}{figure.ratio_p99:>16.1f}"
        )
    return "\n".join(lines)
