"""The benchmark's workload: its scales, and deterministic generators for content, guilds and
votes, with what each generator wrote kept in memory so the benchmark can check answers.

Content files are written with the format helpers of ``tests/content_factory.py``; the text is
generated here because the benchmark needs endings of given sizes (including long ones that
must be split into several messages) and varied titles, so that a 3-letter autocomplete prefix
matches a realistic handful of episodes rather than all of them.

Guilds and votes are bulk-inserted with ``executemany`` inside the storage's own
``Database.transaction()``: going through ``cast_vote`` a million times would take minutes of
set-up. The totals tables are filled from a recount done here in Python, so the storage's own
``check_vote_totals()`` (which recounts in SQL) is an independent check of the load.
"""

from __future__ import annotations

import itertools
import random
import time
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

from bot.content.models import Episode, episode_code
from bot.guild_settings import GuildSettings
from bot.ranking import Tally
from bot.storage import Storage
from tests.benchmarks.checks import Checks
from tests.content_factory import episode_table, ranking_toml, review_md, show_toml, write

# The clock every measured command sees. Content is dated relative to it.
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
DAY = 86400
GUILD_ID_BASE = 1_400_000_000_000_000_000
USER_ID_BASE = 1_500_000_000_000_000_000
CHANNEL_ID_BASE = 1_600_000_000_000_000_000
# The guild the command benchmarks run in (guild index 0, the biggest by votes).
BENCH_MIN_VOTES = 5
BENCH_WINDOW_S = 90 * DAY


@dataclass(frozen=True)
class Scale:
    """How big one benchmark run is, and how many times each figure is measured."""

    name: str
    shows: int
    seasons: int
    episodes_per_season: int
    guilds: int
    votes: int
    command_calls: int  # timed calls per command in each run
    command_runs: int
    cold_runs: int
    resync_runs: int
    voters: int
    votes_per_voter: int  # in each ingestion run
    ingest_runs: int
    review_bytes: int = 3000
    ending_bytes: int = 2000
    long_ending_bytes: tuple[int, int] = (10_500, 14_000)
    long_ending_share: float = 0.02
    show_overrides: tuple[int, int] = (0, 8)  # per-show windows per guild (min, max)
    progress_members: int = 200_000  # members with watch progress, besides the voters
    seed: int = 2026

    @property
    def episodes(self) -> int:
        return self.shows * self.seasons * self.episodes_per_season

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "shows": self.shows,
            "seasons": self.seasons,
            "episodes_per_season": self.episodes_per_season,
            "episodes": self.episodes,
            "review_bytes": self.review_bytes,
            "ending_bytes": self.ending_bytes,
            "long_ending_bytes": list(self.long_ending_bytes),
            "guilds": self.guilds,
            "votes": self.votes,
            "command_calls_per_run": self.command_calls,
            "command_runs": self.command_runs,
            "cold_runs": self.cold_runs,
            "resync_runs": self.resync_runs,
            "voters": self.voters,
            "votes_per_voter": self.votes_per_voter,
            "ingest_runs": self.ingest_runs,
            "seed": self.seed,
        }


FULL = Scale(
    name="full",
    shows=200,
    seasons=10,
    episodes_per_season=10,
    guilds=2000,
    votes=1_000_000,
    command_calls=1000,
    command_runs=5,
    cold_runs=3,
    resync_runs=5,
    voters=200,
    votes_per_voter=100,
    ingest_runs=3,
)

QUICK = Scale(
    name="quick",
    shows=20,
    seasons=10,
    episodes_per_season=10,
    guilds=2000,
    votes=100_000,
    command_calls=150,
    command_runs=3,
    cold_runs=2,
    resync_runs=3,
    voters=200,
    votes_per_voter=25,
    ingest_runs=3,
    progress_members=20_000,
)


# -- text ----------------------------------------------------------------------------------------


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    """Pronounceable made-up words (letters only, so no Markdown escaping ever applies)."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.randint(2, 3)
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))
        if rng.random() < 0.3:
            word += rng.choice(consonants)
        words.add(word)
    return sorted(words)


class Prose:
    """Paragraphs of made-up sentences, sized in characters; fast enough for 20,000 reviews."""

    def __init__(self, rng: random.Random, vocabulary: list[str]) -> None:
        self.rng = rng
        self.sentences = [
            " ".join(rng.choice(vocabulary) for _ in range(rng.randint(8, 18))).capitalize() + "."
            for _ in range(3000)
        ]

    def text(self, size: int, opener: str) -> str:
        """About ``size`` characters: the (unique) opener, then paragraphs of 4-7 sentences."""
        paragraphs: list[str] = []
        current = [opener]
        length = len(opener)
        while length < size:
            sentence = self.rng.choice(self.sentences)
            current.append(sentence)
            length += len(sentence) + 1
            if len(current) >= self.rng.randint(4, 7):
                paragraphs.append(" ".join(current))
                current = []
                length += 1
        if current:
            paragraphs.append(" ".join(current))
        return "\n\n".join(paragraphs)


# -- content -------------------------------------------------------------------------------------


@dataclass
class ShowSpec:
    slug: str
    title: str
    timezone: str
    episodes: list[Episode]


@dataclass
class World:
    """The generated content, as written to disk and as the bot should serve it."""

    content_dir: Path
    shows: list[ShowSpec]
    episodes: dict[str, Episode]  # by key
    bodies: dict[str, str]  # review body by episode key
    endings: dict[str, str]
    long_endings: list[str]  # keys of released episodes whose ending is over 10 KB
    quality: dict[str, float]  # the mean score voters give an episode
    vocabulary: list[str]
    files: int
    total_bytes: int
    generate_s: float

    def released(self, now: datetime = NOW) -> list[Episode]:
        return [e for e in self.episodes.values() if e.release_at <= now]

    def show(self, slug: str) -> ShowSpec:
        return next(s for s in self.shows if s.slug == slug)


def generate_content(root: Path, scale: Scale) -> World:
    """Write the catalogue for ``scale`` under ``root``; deterministic for ``scale.seed``."""
    started = time.perf_counter()
    rng = random.Random(scale.seed)
    vocabulary = _vocabulary(rng, 1500)
    prose = Prose(rng, vocabulary)
    timezones = ("Europe/London", "America/New_York", "Asia/Tokyo", "UTC")
    per_show = scale.seasons * scale.episodes_per_season
    shows: list[ShowSpec] = []
    episodes: dict[str, Episode] = {}
    bodies: dict[str, str] = {}
    endings: dict[str, str] = {}
    long_endings: list[str] = []
    quality: dict[str, float] = {}
    titles: set[str] = set()
    files = 0
    total = 0
    # Long endings only in the last season (recent episodes, inside a spoiler window).
    long_chance = min(1.0, scale.long_ending_share * scale.seasons)
    for s in range(scale.shows):
        title = " ".join(w.capitalize() for w in rng.sample(vocabulary, 2))
        while title in titles:
            title = " ".join(w.capitalize() for w in rng.sample(vocabulary, 2))
        titles.add(title)
        slug = title.lower().replace(" ", "-")
        tz = timezones[s % len(timezones)]
        # Every 10th show has its finale announced but not out yet.
        last = NOW + timedelta(days=7) if s % 10 == 9 else NOW - timedelta(days=s % 40, hours=3)
        spec = ShowSpec(slug, title, tz, [])
        tables = []
        codes = []
        for k in range(per_show):
            season, number = k // scale.episodes_per_season + 1, k % scale.episodes_per_season + 1
            released = (last - timedelta(weeks=per_show - 1 - k)).replace(microsecond=0)
            words = rng.randint(2, 3)
            ep_title = " ".join(w.capitalize() for w in rng.sample(vocabulary, words))
            aliases = (" ".join(rng.sample(vocabulary, 2)),) if rng.random() < 0.1 else ()
            episode = Episode(slug, title, season, number, ep_title, released, aliases)
            spec.episodes.append(episode)
            episodes[episode.key] = episode
            quality[episode.key] = rng.uniform(3.0, 9.0)
            tables.append(episode_table(season, number, ep_title, released, list(aliases)))
            code = episode_code(season, number)
            codes.append(code)
            is_long = season == scale.seasons and released <= NOW and rng.random() < long_chance
            ending_size = rng.randint(*scale.long_ending_bytes) if is_long else scale.ending_bytes
            if is_long:
                long_endings.append(episode.key)
            body = prose.text(scale.review_bytes, f"Our review of {ep_title} from {title}.")
            ending = prose.text(ending_size, f"The ending of {ep_title} explained.")
            bodies[episode.key] = body
            endings[episode.key] = ending
            text = review_md(
                body,
                ending,
                rating=rng.randint(0, 10) / 2,
                verdict=f"A verdict on {ep_title}.",
                author="Bench Critic",
                published=released.date(),
            )
            write(root, f"reviews/{slug}/{code}.md", text)
            total += len(text.encode())
            files += 1
        text = show_toml(title, "Synthetic", tz, tables)
        write(root, f"shows/{slug}.toml", text)
        total += len(text.encode())
        shuffled = codes[:]
        rng.shuffle(shuffled)
        text = ranking_toml(shuffled, order="best-to-worst", author="Bench Critic")
        write(root, f"rankings/{slug}.toml", text)
        total += len(text.encode())
        files += 2
        shows.append(spec)
    return World(
        content_dir=root,
        shows=shows,
        episodes=episodes,
        bodies=bodies,
        endings=endings,
        long_endings=long_endings,
        quality=quality,
        vocabulary=vocabulary,
        files=files,
        total_bytes=total,
        generate_s=time.perf_counter() - started,
    )


# -- guilds --------------------------------------------------------------------------------------

WINDOWS: tuple[int | None, ...] = (DAY, 7 * DAY, 14 * DAY, 30 * DAY, 90 * DAY, 0, None)
MODES = ("tagged", "private", "refuse")


@dataclass(frozen=True)
class GuildRow:
    guild_id: int
    window_s: int | None  # None = forever, 0 = off
    mode: str
    min_votes: int
    min_member_days: int
    show_windows: dict[str, int | None]
    channels: frozenset[int]


def generate_guilds(scale: Scale, show_slugs: list[str]) -> list[GuildRow]:
    """``scale.guilds`` servers' settings; the first is the command benchmarks' server:
    tagged mode, a 90-day window (every last-season episode is inside it), and per-show
    overrides that keep spoilers hidden for good, so every released ending is tagged there."""
    rng = random.Random(scale.seed + 1)
    show_slugs = sorted(show_slugs)  # the same guilds whatever order the caller lists shows in
    rows = [
        GuildRow(
            guild_id=GUILD_ID_BASE,
            window_s=BENCH_WINDOW_S,
            mode="tagged",
            min_votes=BENCH_MIN_VOTES,
            min_member_days=7,
            show_windows=dict.fromkeys(rng.sample(show_slugs, min(5, len(show_slugs)))),
            channels=frozenset({CHANNEL_ID_BASE}),
        )
    ]
    for index in range(1, scale.guilds):
        overrides = rng.randint(*scale.show_overrides)
        rows.append(
            GuildRow(
                guild_id=GUILD_ID_BASE + index,
                window_s=rng.choice(WINDOWS),
                mode=rng.choice(MODES),
                min_votes=rng.randint(1, 20),
                min_member_days=rng.choice((0, 0, 0, 7, 30)),
                show_windows={
                    slug: rng.choice(WINDOWS)
                    for slug in rng.sample(show_slugs, min(overrides, len(show_slugs)))
                },
                channels=frozenset(
                    CHANNEL_ID_BASE + index * 10 + c for c in range(rng.randint(0, 3))
                ),
            )
        )
    return rows


async def insert_guilds(storage: Storage, guilds: list[GuildRow]) -> None:
    now = int(NOW.timestamp())
    async with storage.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO guild_settings (guild_id, spoiler_window_s, spoiler_mode, min_votes, "
            "min_member_days, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(g.guild_id, g.window_s, g.mode, g.min_votes, g.min_member_days, now) for g in guilds],
        )
        await conn.executemany(
            "INSERT INTO show_windows (guild_id, show_slug, spoiler_window_s) VALUES (?, ?, ?)",
            [(g.guild_id, slug, w) for g in guilds for slug, w in g.show_windows.items()],
        )
        await conn.executemany(
            "INSERT INTO spoiler_channels (guild_id, channel_id) VALUES (?, ?)",
            [(g.guild_id, c) for g in guilds for c in sorted(g.channels)],
        )


def settings_problems(row: GuildRow, loaded: GuildSettings) -> list[str]:
    """How the settings storage returned for a guild differ from what was inserted."""
    spoilers = loaded.spoilers
    seen = {
        "window": spoilers.window.seconds,
        "mode": spoilers.mode.value,
        "min_votes": loaded.min_votes,
        "min_member_days": loaded.min_member_days,
        "show_windows": {k: v.seconds for k, v in spoilers.show_windows},
        "channels": set(spoilers.spoilers_ok_channels),
    }
    wanted = {
        "window": row.window_s,
        "mode": row.mode,
        "min_votes": row.min_votes,
        "min_member_days": row.min_member_days,
        "show_windows": row.show_windows,
        "channels": set(row.channels),
    }
    return [
        f"guild {row.guild_id} {name}: stored {wanted[name]!r}, read {seen[name]!r}"
        for name in wanted
        if wanted[name] != seen[name]
    ]


# -- votes ---------------------------------------------------------------------------------------

VoteRow = tuple[int, int, str, str, int, int]  # guild, user, episode key, show slug, score, time


TallyKey = TypeVar("TallyKey")


def _add_to_tally(table: dict[TallyKey, list[int]], key: TallyKey, count: int, delta: int) -> None:
    entry = table.setdefault(key, [0, 0])
    entry[0] += count
    entry[1] += delta
    if entry[0] == 0:
        del table[key]


@dataclass
class Votes:
    """The bulk-loaded votes, and the tallies a correct storage must hold for them."""

    rows: list[VoteRow]
    per_guild: dict[tuple[int, str], list[int]] = field(default_factory=dict)  # [count, sum]
    pooled: dict[str, list[int]] = field(default_factory=dict)

    def tally(self, guild_id: int | None, key: str) -> Tally:
        found = self.pooled.get(key) if guild_id is None else self.per_guild.get((guild_id, key))
        return Tally(found[0], found[1]) if found else Tally()

    def change(self, guild_id: int, key: str, old: int | None, new: int | None) -> None:
        """Apply one vote, change or withdrawal to the expected tallies."""
        count = (new is not None) - (old is not None)
        delta = (new or 0) - (old or 0)
        _add_to_tally(self.per_guild, (guild_id, key), count, delta)
        _add_to_tally(self.pooled, key, count, delta)


def _zipf_counts(total: int, buckets: int, exponent: float) -> list[int]:
    weights = [1 / (rank + 1) ** exponent for rank in range(buckets)]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    for index in range(total - sum(counts)):
        counts[index % buckets] += 1
    return counts


def score_for(quality: float, rng: random.Random) -> int:
    noise = (rng.random() + rng.random() + rng.random() - 1.5) * 3
    return max(1, min(10, round(quality + noise)))


def generate_votes(world: World, guilds: list[GuildRow], scale: Scale) -> Votes:
    """``scale.votes`` distinct votes: guild sizes and show popularity both Zipf-like, members
    voting on released episodes with scores around each episode's quality."""
    rng = random.Random(scale.seed + 2)
    released_by_show = [
        [e.key for e in show.episodes if e.release_at <= NOW] for show in world.shows
    ]
    slugs = [show.slug for show in world.shows]
    show_order = list(range(len(world.shows)))
    rng.shuffle(show_order)  # popularity is not alphabetical
    popularity = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(show_order))))
    top = popularity[-1]
    now = int(NOW.timestamp())
    rows: list[VoteRow] = []
    votes = Votes(rows)
    for guild, count in zip(guilds, _zipf_counts(scale.votes, len(guilds), 1.1), strict=True):
        members = max(3, count // 12)
        seen: set[tuple[int, str]] = set()
        while len(seen) < count:
            show_index = show_order[bisect_left(popularity, rng.random() * top)]
            candidates = released_by_show[show_index]
            key = candidates[int(rng.random() * len(candidates))]
            user = USER_ID_BASE + int(rng.random() * members)
            if (user, key) in seen:
                continue
            seen.add((user, key))
            score = score_for(world.quality[key], rng)
            rows.append((guild.guild_id, user, key, slugs[show_index], score, now - len(rows)))
            votes.change(guild.guild_id, key, None, score)
    rows.sort()
    return votes


async def insert_votes(storage: Storage, votes: Votes) -> None:
    """Load ``votes`` and their totals in one transaction (set-up only; see module docstring)."""
    async with storage.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO votes (guild_id, user_id, episode_key, show_slug, score, voted_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            votes.rows,
        )
        await conn.executemany(
            "INSERT INTO vote_totals (guild_id, episode_key, show_slug, vote_count, score_sum) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (guild_id, key, key.split("/", 1)[0], count, total)
                for (guild_id, key), (count, total) in votes.per_guild.items()
            ],
        )
        await conn.executemany(
            "INSERT INTO vote_totals_global (episode_key, show_slug, vote_count, score_sum) "
            "VALUES (?, ?, ?, ?)",
            [
                (key, key.split("/", 1)[0], count, total)
                for key, (count, total) in votes.pooled.items()
            ],
        )


# -- the ranking oracle --------------------------------------------------------------------------


def expected_ranking(
    show: ShowSpec, votes: Votes, guild_id: int | None, min_votes: int
) -> list[tuple[Episode, Fraction, Tally]]:
    """The community ranking as the README defines it, computed from the generated votes:
    weighted score (S + m·C)/(v + m) with C the show's mean in scope, ties broken by more
    votes, then the earlier episode. Released episodes with votes only."""
    tallies = {e.key: votes.tally(guild_id, e.key) for e in show.episodes}
    prior = Tally(sum(t.count for t in tallies.values()), sum(t.total for t in tallies.values()))
    if prior.count == 0:
        return []
    mean = Fraction(prior.total, prior.count)
    scored = [
        (e, (tallies[e.key].total + min_votes * mean) / (tallies[e.key].count + min_votes))
        for e in show.episodes
        if e.release_at <= NOW and tallies[e.key].count > 0
    ]
    scored.sort(
        key=lambda item: (-item[1], -tallies[item[0].key].count, item[0].season, item[0].number)
    )
    return [(e, score, tallies[e.key]) for e, score in scored]


def popular_shows(world: World, votes: Votes, guild_id: int, count: int) -> list[ShowSpec]:
    """The shows with the most votes in ``guild_id``: their rankings fill every page."""
    per_show: dict[str, int] = defaultdict(int)
    for (guild, key), (voted, _) in votes.per_guild.items():
        if guild == guild_id:
            per_show[key.split("/", 1)[0]] += voted
    ranked = sorted(world.shows, key=lambda s: -per_show.get(s.slug, 0))
    return ranked[:count]


@dataclass
class Community:
    """The servers and votes loaded into the benchmark's database."""

    guilds: list[GuildRow]
    votes: Votes
    generate_s: float
    load_s: float
    recount_s: float


async def load_community(
    world: World, scale: Scale, database: Path, workdir: Path, checks: Checks
) -> Community:
    """Generate and bulk-load the guilds and votes, then check them through the storage:
    a sample of settings read back, and the storage's own recount of every vote."""
    started = time.perf_counter()
    guilds = generate_guilds(scale, [show.slug for show in world.shows])
    votes = generate_votes(world, guilds, scale)
    generate_s = time.perf_counter() - started
    storage = await Storage.open(f"sqlite:///{database}", workdir)
    try:
        started = time.perf_counter()
        await insert_guilds(storage, guilds)
        await insert_votes(storage, votes)
        load_s = time.perf_counter() - started
        for guild in random.Random(scale.seed).sample(guilds, min(200, len(guilds))):
            problems = settings_problems(guild, await storage.get_guild_settings(guild.guild_id))
            checks.expect(not problems, "; ".join(problems))
        started = time.perf_counter()
        drift = await storage.check_vote_totals()
        recount_s = time.perf_counter() - started
        checks.expect(not drift, f"bulk load: totals drift {[d.describe() for d in drift[:3]]}")
    finally:
        await storage.close()
    # Only the oracle of the rankings stays: pooled tallies and the command guild's own.
    votes.rows.clear()
    bench_guild = guilds[0].guild_id
    votes.per_guild = {k: v for k, v in votes.per_guild.items() if k[0] == bench_guild}
    return Community(guilds, votes, generate_s, load_s, recount_s)
