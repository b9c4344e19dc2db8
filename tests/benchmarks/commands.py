"""Per-command handler time through discord.py's own app-command dispatch.

The real ``EmbargoBot`` is logged into the stand-in of ``tests/support`` (the same ``Harness``
the command tests use), with an extra ``/noop`` command added to its tree here, so the floor
goes through exactly the same path as every measured command. Once the bot is logged in and
its commands are synced, its HTTP is recorded instead of sent (``transport``): each request
discord.py packs goes straight to the stand-in in-process, not over a loopback socket.

What one sample measures is handler time as the performance targets define it (interaction
payload in, response payload out): from handing the ``INTERACTION_CREATE`` payload to the bot's
gateway parser to the moment discord.py hands the last message payload answering it to the
transport. Discord.py builds the ``Interaction``, resolves options, runs the command and packs
the payload. A reply in several messages (a long ending) counts discord.py's handling of the
answers to its earlier messages, since a followup can only be sent after the previous one was
answered, but not the stand-in's own work producing those answers: each exchange is stamped on
both sides and the stand-in's spans are subtracted. The harness's bookkeeping around a call
(finding the tasks the parser started) is excluded exactly too: it runs synchronously between
the parse and the first await, and that span is subtracted.

Every sample's reply is checked against an answer computed independently from the generated
workload (review text, ending text inside spoiler tags, ranking order from the generated votes,
vote replies, autocomplete choices), so a fast wrong answer fails the run.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import random
import re
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from bot.client import EmbargoBot
from bot.config import Settings
from bot.content.models import Episode
from bot.storage import Storage
from tests.benchmarks.checks import Checks
from tests.benchmarks.transport import RecordingSession, record_in_process
from tests.benchmarks.workload import (
    BENCH_MIN_VOTES,
    BENCH_WINDOW_S,
    NOW,
    GuildRow,
    Votes,
    World,
    expected_ranking,
    popular_shows,
)
from tests.support import GuildSpec, Harness

COMMANDS = ("review", "ending", "rankings", "vote", "autocomplete", "noop")
NOOP_REPLY = "noop"
WARMUP_CALLS = 20
EPHEMERAL = 1 << 6
_ROW_CODE = re.compile(r"^\*\*(\d+)\.\*\* `(S\d+E\d+)`", re.MULTILINE)


def _label(episode: Episode) -> str:
    """The label replies show for the benchmark's episodes (none has a title that spoils)."""
    return f"{episode.show_title} {episode.short_code} · {episode.title}"


def noop_command() -> app_commands.Command[Any, ..., None]:
    async def noop(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(NOOP_REPLY)

    return app_commands.Command(
        name="noop", description="Benchmark floor: answers at once.", callback=noop
    )


@dataclass(frozen=True)
class CommandFigures:
    p50_ms: float
    p99_ms: float
    ratio_p99: float
    runs_p50_ms: tuple[float, ...]
    runs_p99_ms: tuple[float, ...]
    # Until the first message of the reply was out (the same as p99_ms for one message).
    first_p99_ms: float


@dataclass
class _Call:
    """One timed call: its payload, and how to check what the bot sent back."""

    command: str
    payload: dict[str, Any]
    check: Callable[[list[dict[str, Any]]], str | None]  # reply payloads -> problem or None


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def _hidden_text(contents: list[str]) -> str:
    """The ending as a reader who reveals every spoiler reads it, whitespace-normalised,
    after the header lines of the first message."""
    body = "\n".join(contents)
    lines = [
        line
        for line in body.splitlines()
        if not line.startswith("## Ending explained:") and not line.startswith("-# ")
    ]
    return " ".join(" ".join(lines).replace("||", " ").split())


@dataclass
class CommandBench:
    """Builds the calls, runs them round-robin and checks every reply."""

    world: World
    votes: Votes
    bench_guild: GuildRow
    checks: Checks
    rng: random.Random
    harness: Harness
    transport: RecordingSession
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    member_votes: dict[str, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1 << 60))

    def __post_init__(self) -> None:
        released = [e for e in self.world.episodes.values() if e.release_at <= NOW]
        self.review_keys = [e.key for e in self.rng.sample(released, min(500, len(released)))]
        self.ending_keys = [key for key in self.world.long_endings if self._tagged(key)]
        self.ranked_shows = popular_shows(self.world, self.votes, self.bench_guild.guild_id, 20)
        self.vote_episodes = [
            e for show in self.ranked_shows for e in show.episodes if e.release_at <= NOW
        ]
        self.prefixes = sorted({word[:3] for word in self.world.vocabulary})
        self.rng.shuffle(self.prefixes)
        self._words = self._autocomplete_words()
        self._expected_choices: dict[str, list[str]] = {}

    # -- oracles ----------------------------------------------------------------------------

    def _tagged(self, key: str) -> bool:
        """Whether the bench guild's policy hides this released episode's ending in tags."""
        episode = self.world.episodes[key]
        # A per-show override (None: hidden for good) wins over the server's window.
        window = self.bench_guild.show_windows.get(episode.show_slug, BENCH_WINDOW_S)
        if window == 0:
            return False
        return window is None or episode.release_at.timestamp() + window > NOW.timestamp()

    def _autocomplete_words(self) -> list[tuple[Episode, frozenset[str]]]:
        """Catalogue order (shows by title, episodes by season and number) and, per episode,
        the words the README promises to match: show and episode titles, aliases, codes,
        the show's initials and its id."""
        ordered = []
        for show in sorted(self.world.shows, key=lambda s: s.title.lower()):
            initials = "".join(word[0] for word in show.title.lower().split())
            for e in sorted(show.episodes, key=lambda e: (e.season, e.number)):
                words = set(f"{e.show_title} {e.title} {' '.join(e.aliases)}".lower().split())
                words |= {
                    f"s{e.season}e{e.number}",
                    f"s{e.season:02d}e{e.number:02d}",
                    f"{e.season}x{e.number:02d}",
                    initials,
                    show.slug,
                }
                ordered.append((e, frozenset(words)))
        return ordered

    def expected_choices(self, prefix: str) -> list[str]:
        if prefix not in self._expected_choices:
            found = [e.key for e, words in self._words if any(w.startswith(prefix) for w in words)]
            self._expected_choices[prefix] = found[:25]
        return self._expected_choices[prefix]

    # -- payloads ---------------------------------------------------------------------------

    def _payload(
        self, template: str, options: list[dict[str, Any]], kind: int = 2
    ) -> dict[str, Any]:
        base = self.templates[template]
        interaction_id = next(self._ids)
        token = f"bench-{interaction_id}"
        payload = {
            **base,
            "id": str(interaction_id),
            "token": token,
            "type": kind,
            "data": {**base["data"], "options": options},
        }
        self.harness.standin.expect_interaction(payload)
        return payload

    def next_call(self, command: str, index: int) -> _Call:
        return getattr(self, f"_call_{command}")(index)

    def _call_noop(self, index: int) -> _Call:
        def check(sent: list[dict[str, Any]]) -> str | None:
            ok = len(sent) == 1 and sent[0].get("content") == NOOP_REPLY
            return None if ok else f"/noop sent {sent!r}"

        return _Call("noop", self._payload("noop", []), check)

    def _call_review(self, index: int) -> _Call:
        key = self.review_keys[index % len(self.review_keys)]
        episode = self.world.episodes[key]
        body = self.world.bodies[key]

        def check(sent: list[dict[str, Any]]) -> str | None:
            if len(sent) != 1 or len(sent[0].get("embeds") or []) != 1:
                return f"/review {key}: expected one message with one embed, got {sent!r:.300}"
            embed = sent[0]["embeds"][0]
            title = f"{episode.show_title} · S{episode.season}E{episode.number} · {episode.title}"
            if embed.get("title") != title:
                return f"/review {key}: embed title {embed.get('title')!r}, expected {title!r}"
            if embed.get("description", "").strip() != body.strip():
                return f"/review {key}: the embed does not carry the review body"
            ids = [
                c.get("custom_id")
                for row in sent[0].get("components") or []
                for c in row.get("components") or []
            ]
            if ids != [f"embargo:ending:{key}"]:
                return f"/review {key}: buttons {ids}"
            return None

        return _Call("review", self._payload("review", [_text("episode", key)]), check)

    def _call_ending(self, index: int) -> _Call:
        key = self.ending_keys[index % len(self.ending_keys)]
        episode = self.world.episodes[key]
        ending = " ".join(self.world.endings[key].split())

        def check(sent: list[dict[str, Any]]) -> str | None:
            contents = [m.get("content") or "" for m in sent]
            if len(contents) < 2:
                return f"/ending {key}: a long ending came in {len(contents)} message(s)"
            if not contents[0].startswith(f"## Ending explained: **{_label(episode)}**\n-# "):
                return f"/ending {key}: first message starts {contents[0][:120]!r}"
            if any(len(c) > 2000 or "||" not in c for c in contents):
                return f"/ending {key}: a message is over 2000 characters or not tagged"
            if any(m.get("flags", 0) & EPHEMERAL for m in sent):
                return f"/ending {key}: tagged mode must post in the channel"
            for content in contents:
                outside = re.sub(r"\|\|.*?\|\|", "", content)
                outside = "\n".join(
                    line
                    for line in outside.splitlines()
                    if not line.startswith(("## Ending explained:", "-# "))
                )
                if outside.strip():
                    return f"/ending {key}: text outside spoiler tags: {outside.strip()[:80]!r}"
            if _hidden_text(contents) != ending:
                return f"/ending {key}: the revealed text is not the ending"
            return None

        return _Call("ending", self._payload("ending", [_text("episode", key)]), check)

    def _call_rankings(self, index: int) -> _Call:
        show = self.ranked_shows[index % len(self.ranked_shows)]
        scope = "global" if index % 2 else "server"
        guild_id = None if scope == "global" else self.bench_guild.guild_id
        expected = expected_ranking(show, self.votes, guild_id, BENCH_MIN_VOTES)
        first_page = [e.short_code for e, _, _ in expected[:10]]
        pages = max(1, math.ceil(len(expected) / 10))
        options = [
            _text("show", show.slug),
            _text("source", "community"),
            _text("scope", scope),
        ]

        def check(sent: list[dict[str, Any]]) -> str | None:
            if len(sent) != 1 or len(sent[0].get("embeds") or []) != 1:
                return f"/rankings {show.slug}: expected one embed, got {sent!r:.300}"
            embed = sent[0]["embeds"][0]
            if embed.get("title") != f"{show.title} · Community ranking":
                return f"/rankings {show.slug}: title {embed.get('title')!r}"
            codes = [code for _, code in _ROW_CODE.findall(embed.get("description", ""))]
            if codes != first_page:
                return f"/rankings {show.slug} {scope}: rows {codes}, expected {first_page}"
            footer = embed.get("footer", {}).get("text", "")
            if not footer.startswith(f"Page 1 of {pages} · "):
                return f"/rankings {show.slug}: footer {footer[:60]!r}, expected {pages} pages"
            return None

        return _Call("rankings", self._payload("rankings", options), check)

    def _call_vote(self, index: int) -> _Call:
        episode = self.rng.choice(self.vote_episodes)
        score = self.rng.randint(1, 10)
        guild_id = self.bench_guild.guild_id
        old = self.member_votes.get(episode.key)
        # The expected state after this vote, for this check and every later ranking check.
        self.member_votes[episode.key] = score
        self.votes.change(guild_id, episode.key, old, score)
        show = self.world.show(episode.show_slug)
        ranking = expected_ranking(show, self.votes, guild_id, BENCH_MIN_VOTES)
        rank = next(i for i, (e, _, _) in enumerate(ranking, start=1) if e.key == episode.key)
        heading = f"**{_label(episode)}**"
        if old is None:
            first = f"Saved: **{score}/10** for {heading}."
        elif old == score:
            first = f"Your vote for {heading} was already **{score}/10**; it stands."
        else:
            first = f"Saved: your vote for {heading} changed from {old} to {score}."
        standing = f"Community standing here: **#{rank} of {len(ranking)}** ranked"

        def check(sent: list[dict[str, Any]]) -> str | None:
            if len(sent) != 1 or not sent[0].get("flags", 0) & EPHEMERAL:
                return f"/vote {episode.key}: expected one ephemeral reply, got {sent!r:.300}"
            lines = (sent[0].get("content") or "").splitlines()
            if not lines or lines[0] != first:
                return f"/vote {episode.key}: {lines[:1]}, expected {first!r}"
            if len(lines) < 2 or not lines[1].startswith(standing):
                return f"/vote {episode.key}: {lines[1:2]}, expected {standing!r}"
            return None

        options = [_text("episode", episode.key), {"type": 4, "name": "score", "value": score}]
        return _Call("vote", self._payload("vote", options), check)

    def _call_autocomplete(self, index: int) -> _Call:
        prefix = self.prefixes[index % len(self.prefixes)]
        expected = self.expected_choices(prefix)

        def check(callbacks: list[dict[str, Any]]) -> str | None:
            # The callback (type 8) carries the choices, not a message payload.
            if len(callbacks) != 1 or callbacks[0].get("type") != 8:
                return f"autocomplete {prefix!r}: expected one choices callback"
            values = [c["value"] for c in callbacks[0]["data"]["choices"]]
            if values != expected:
                return f"autocomplete {prefix!r}: {values[:5]}..., expected {expected[:5]}..."
            return None

        focused = [{"type": 3, "name": "episode", "value": prefix, "focused": True}]
        return _Call("autocomplete", self._payload("review", focused, kind=4), check)

    # -- running ----------------------------------------------------------------------------

    async def run_one(self, call: _Call) -> tuple[float, float]:
        """Dispatch one call; returns its handler time in seconds (see module docstring) until
        the last and until the first message of the reply was out."""
        bot = self.harness.bot
        exchanges = self.transport.exchanges
        exchanges.clear()
        # The gateway's own table of event parsers, as the harness uses it (no gateway here).
        parse = bot._connection.parsers["INTERACTION_CREATE"]
        before = asyncio.all_tasks()
        t0 = time.perf_counter()
        parse(call.payload)
        t1 = time.perf_counter()
        tasks = asyncio.all_tasks() - before
        t2 = time.perf_counter()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
            errors = [t.exception() for t in done if not t.cancelled() and t.exception()]
        else:
            pending, errors = set(), []
        interaction_id = int(call.payload["id"])
        mine = [x for x in exchanges if x.request.interaction_id == interaction_id]
        problem = None
        if pending or errors or not mine:
            problem = (
                f"/{call.command}: pending={len(pending)} errors={errors} requests={len(mine)}"
            )
        elif any(x.request.status >= 300 for x in mine):
            refused = [x.request for x in mine]
            problem = f"/{call.command}: the stand-in refused {refused!r:.400}"
        else:
            if call.command == "autocomplete":
                sent = [x.request.json for x in mine]
            else:
                payloads = (x.request.message_payload for x in mine)
                sent = [p for p in payloads if p is not None]
            problem = call.check(sent)
        self.checks.expect(problem is None, problem or "")
        if mine:
            last_out, first_out = mine[-1].handed_over, mine[0].handed_over
        else:
            last_out = first_out = math.inf
        # The stand-in's own time answering requests handed over before the last one.
        stand_in = sum(x.answered - x.handed_over for x in exchanges if x.handed_over < last_out)
        last = (t1 - t0) + (last_out - t2) - stand_in
        first = (t1 - t0) + (first_out - t2)
        # Keep the stand-in's memory flat: nothing recorded is needed after the check.
        exchanges.clear()
        self.harness.standin.requests.clear()
        self.harness.standin.messages.clear()
        self.harness.standin.forget_interaction(interaction_id)
        return last, first


def _text(name: str, value: str) -> dict[str, Any]:
    return {"type": 3, "name": name, "value": value}


@asynccontextmanager
async def command_bench(
    world: World,
    votes: Votes,
    guilds: list[GuildRow],
    database: Path,
    workdir: Path,
    checks: Checks,
    seed: int,
    database_url: str | None = None,
) -> AsyncIterator[CommandBench]:
    """The real bot on ``database`` (or on ``database_url``, a copy of it in another
    backend), logged into the stand-in with ``/noop`` added, its call templates recorded and
    request arrivals stamped: ready for ``run_one``."""
    # The benchmark's own data (the generated catalogue, the vote oracle) is frozen out of
    # the garbage collector before the bot starts: a full collection walking a few million
    # oracle objects would pause whichever command happened to trigger it, a cost the bot's
    # own process never pays. Everything the bot allocates from here on is collected as usual.
    gc.collect()
    gc.freeze()
    url = database_url or f"sqlite:///{database}"
    storage = await Storage.open(url, workdir)
    settings = Settings(
        discord_token=None,
        database_url=url,
        content_dir=world.content_dir,
        log_level="WARNING",
        dev_guild_id=None,
    )
    bot = EmbargoBot(settings, storage, clock=lambda: NOW)
    bot.tree.add_command(noop_command())
    bench_guild = guilds[0]
    try:
        async with Harness(bot, guild=GuildSpec(id=bench_guild.guild_id)) as harness:
            before = asyncio.all_tasks()
            transport = record_in_process(bot, harness.standin)
            bench = CommandBench(
                world, votes, bench_guild, checks, random.Random(seed), harness, transport
            )
            await _record_templates(bench)
            try:
                yield bench
            finally:
                # Pager views wait 10 minutes to grey out their buttons; a bot shutting down
                # drops them, and so does the benchmark before closing the bot's session.
                leftovers = asyncio.all_tasks() - before - {asyncio.current_task()}
                for task in leftovers:
                    task.cancel()
                await asyncio.gather(*leftovers, return_exceptions=True)
    finally:
        await storage.drain_votes()
        await storage.close()
        gc.unfreeze()


async def measure_commands(
    world: World,
    votes: Votes,
    guilds: list[GuildRow],
    database: Path,
    workdir: Path,
    calls: int,
    runs: int,
    checks: Checks,
    seed: int,
    database_url: str | None = None,
) -> dict[str, CommandFigures]:
    async with command_bench(
        world, votes, guilds, database, workdir, checks, seed, database_url
    ) as bench:
        samples = await _run_rounds(bench, calls, runs)
    return _figures(samples)


async def _record_templates(bench: CommandBench) -> None:
    """One real call per command through the harness's own API: its payloads become the
    templates of the timed calls (same member, channel and guild; fresh ids and options)."""
    h = bench.harness
    episode = bench.world.episodes[bench.ending_keys[0]]
    show = bench.ranked_shows[0]
    first = {
        "noop": await h.slash("noop"),
        "review": await h.slash("review", episode=episode.key),
        "ending": await h.slash("ending", episode=episode.key),
        "rankings": await h.slash("rankings", show=show.slug),
    }
    # A first vote would change the expected tallies: vote on an unreleased episode, which
    # the bot refuses without storing anything.
    unreleased = next(e for e in bench.world.episodes.values() if e.release_at > NOW)
    first["vote"] = await h.slash("vote", episode=unreleased.key, score=5)
    for name, recorded in first.items():
        bench.checks.expect(
            not recorded.errors and recorded.acknowledged,
            f"template call /{name} failed: {recorded.describe()[:400]}",
        )
        bench.templates[name] = recorded.payload
    choices = await h.autocomplete("review", "episode", bench.prefixes[0])
    values = [c["value"] for c in choices]
    bench.checks.expect(
        values == bench.expected_choices(bench.prefixes[0]),
        f"autocomplete template: {values[:5]}",
    )


Samples = dict[str, list[list[tuple[float, float]]]]  # command -> runs -> (last, first)


async def _run_rounds(bench: CommandBench, calls: int, runs: int) -> Samples:
    """Warm up, then ``runs`` rounds of ``calls`` calls per command, round-robin so that noise
    on a shared machine falls on every command alike."""
    for index in range(WARMUP_CALLS):
        for command in COMMANDS:
            await bench.run_one(bench.next_call(command, index))
    samples: Samples = {command: [] for command in COMMANDS}
    counter = itertools.count(WARMUP_CALLS)
    for _ in range(runs):
        gc.collect()
        run: dict[str, list[tuple[float, float]]] = {command: [] for command in COMMANDS}
        for _ in range(calls):
            index = next(counter)
            for command in COMMANDS:
                call = bench.next_call(command, index)
                run[command].append(await bench.run_one(call))
        for command in COMMANDS:
            samples[command].append(run[command])
    return samples


def _figures(samples: Samples) -> dict[str, CommandFigures]:
    def per_run(
        runs: list[list[tuple[float, float]]], which: int, fraction: float
    ) -> tuple[float, ...]:
        return tuple(
            _percentile([sample[which] for sample in run], fraction) * 1000 for run in runs
        )

    floor = statistics.median(per_run(samples["noop"], 0, 0.99))
    figures = {}
    for command, runs in samples.items():
        p50s, p99s = per_run(runs, 0, 0.50), per_run(runs, 0, 0.99)
        p99 = statistics.median(p99s)
        figures[command] = CommandFigures(
            p50_ms=statistics.median(p50s),
            p99_ms=p99,
            ratio_p99=p99 / floor,
            runs_p50_ms=p50s,
            runs_p99_ms=p99s,
            first_p99_ms=statistics.median(per_run(runs, 1, 0.99)),
        )
    return figures
