"""The guard's matcher at community scale: ``python -m tests.benchmarks.guard [--quick]``.

Every server guards 200 shows' worth of active spoiler terms (30 per episode), over 2,000
servers whose settings differ (per-show windows, longer windows, windows off), against typical
200-character chat messages: mostly English with no spoiler, a few with an emoji, an accent, a
link or a mention, an occasional term in plain sight and an occasional one inside spoiler tags.

Measured in one run, one core, on the same messages:

* the guard: ``GuardIndex.match`` (the server's shared matcher: fold once, one Aho-Corasick pass,
  the tag scan only when a term is found in a message with ``||``): messages per second and the
  p50 and p99 of single calls;
* the naive matcher peers use, as the baseline of the ratio: the same folding and tag handling,
  then each of the server's terms checked in turn;
* the search step alone with other engines over the same folded text (a trie-shaped stdlib regex
  alternation, and pyahocorasick when it is installed), which is what chose Aho-Corasick in Rust.

Every answer is checked: the guard and the naive matcher agree on every message the naive one
sees, every term put in plain sight is found, and no episode outside a server's active set is.
Exit status 1 when a check fails; targets missed are reported, not failed.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import ahocorasick_rs

from bot.content.models import Episode
from bot.spoilers.durations import SpoilerWindow
from bot.spoilers.policy import SpoilerSettings
from bot.spoilers.terms import EpisodeTerms, GuardIndex, folded_words, visible_parts
from tests.benchmarks.checks import Checks

# The targets for one core.
MESSAGES_PER_S_MIN = 50_000.0
P99_MAX_US = 50.0

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class GuardScale:
    name: str
    servers: int
    shows: int
    terms_per_episode: int
    messages: int  # timed through the guard
    naive_messages: int  # timed through the naive matcher (it is slow), the first ones
    runs: int  # the guard's messages/s is the median of this many passes
    seed: int = 12

    def describe(self) -> str:
        return (
            f"{self.servers:,} servers, {self.shows} shows x {self.terms_per_episode} terms active,"
            f" {self.messages:,} messages ({self.naive_messages:,} through the naive matcher)"
        )


FULL = GuardScale("full", 2000, 200, 30, 100_000, 2_000, 5)
QUICK = GuardScale("quick", 2000, 200, 30, 20_000, 400, 3)


# --- the workload -------------------------------------------------------------------------

_SYLLABLES_TEXT = (
    "ka ri no ve tal mor sen da lu bex tor an el quin zi pa ron ith osh ul mira dax "
    "fen gor hal jin kel mun nar pol rus sab tev vor wyn yas zor"
)
_SYLLABLES = _SYLLABLES_TEXT.split()
_NOUNS_TEXT = "ship station reactor crown letter bridge vault engine tower ring"
_NOUNS = _NOUNS_TEXT.split()
_PHRASES = (
    "{a} dies",
    "{a} is the killer",
    "{a} survives",
    "{a} betrays {b}",
    "{a} and {b} kiss",
    "the {n} of {a} explodes",
    "{a} was the traitor",
    "{a} leaves",
    "death of {a}",
    "{a} returns",
)
_CHAT_TEXT = (
    "lol ok so did anyone else watch the new episode last night i cant believe what they did "
    "with the pacing honestly the first half was slow but the music was great and the acting "
    "too i think next week will be better because the trailer looked amazing anyway who is "
    "hosting the watch party this weekend my cat sat on the remote again haha same here we "
    "should order pizza for the finale does anyone know when it airs in europe i am still "
    "catching up on season two no spoilers please i heard the writers changed a lot of things "
    "from the books which is fine by me the cinematography in that scene was wild"
)
_CHAT = _CHAT_TEXT.split()
_EXTRAS = (
    "😂",
    "🔥",
    "👀",
    "café",
    "déjà vu",
    "naïve",
    "<@123456789012345678>",
    "https://example.com/clip",
)


@dataclass(frozen=True)
class Message:
    guild_id: int
    text: str
    must_match: frozenset[str]  # episodes whose term was put in plain sight


@dataclass(frozen=True)
class GuardWorld:
    episodes: list[EpisodeTerms]
    settings: dict[int, SpoilerSettings]
    messages: list[Message]


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(3)).title()


def _terms(rng: random.Random, count: int) -> tuple[str, ...]:
    names = [_name(rng) for _ in range(6)]
    terms: dict[str, None] = dict.fromkeys(names[:3])  # bare names are terms too
    while len(terms) < count:
        phrase = rng.choice(_PHRASES).format(
            a=rng.choice(names), b=rng.choice(names), n=rng.choice(_NOUNS)
        )
        terms.setdefault(phrase)
    return tuple(terms)


def generate(scale: GuardScale) -> GuardWorld:
    """Deterministic: shows whose latest episode (with terms) aired within the week, each with an
    older episode (with terms) that only longer windows still guard; servers on the default
    window, on a month, with windows off, or with a few shows' windows changed."""
    rng = random.Random(scale.seed)
    episodes: list[EpisodeTerms] = []
    slugs = [f"show-{index:03d}" for index in range(scale.shows)]
    for slug in slugs:
        aired = NOW - timedelta(hours=rng.randint(1, 6 * 24))
        for number, release in ((1, aired - timedelta(days=21)), (2, aired)):
            episode = Episode(slug, slug.title(), 1, number, f"Episode {number}", release)
            episodes.append(EpisodeTerms(episode, _terms(rng, scale.terms_per_episode)))
    month = SpoilerWindow(timedelta(days=30))
    off = SpoilerWindow(timedelta(0))
    # Servers that change a show's window pick from a few common choices, as communities do.
    palette = [tuple((s, off) for s in sorted(rng.sample(slugs, 3))) for _ in range(10)] + [
        tuple((s, month) for s in sorted(rng.sample(slugs, 5))) for _ in range(10)
    ]
    settings: dict[int, SpoilerSettings] = {}
    for guild_id in range(1, scale.servers + 1):
        roll = rng.random()
        if roll < 0.75:
            settings[guild_id] = SpoilerSettings()
        elif roll < 0.85:
            settings[guild_id] = SpoilerSettings(show_windows=rng.choice(palette))
        elif roll < 0.95:
            settings[guild_id] = SpoilerSettings(window=month)
        else:
            settings[guild_id] = SpoilerSettings(window=off)
    index = GuardIndex.build(episodes, settings, NOW)
    terms_by_key = {item.episode.key: item.terms for item in episodes}
    active = {
        guild_id: sorted(keys) for keys, guild_ids in index.groups.items() for guild_id in guild_ids
    }
    guild_ids = list(settings)
    messages: list[Message] = []
    for _ in range(scale.messages):
        guild_id = rng.choice(guild_ids)
        words: list[str] = []
        length = 0
        while length < 190:
            word = rng.choice(_CHAT)
            words.append(word)
            length += len(word) + 1
        if rng.random() < 0.15:
            words.insert(rng.randrange(len(words)), rng.choice(_EXTRAS))
        must: set[str] = set()
        roll = rng.random()
        if active[guild_id] and roll < 0.04:
            key = rng.choice(active[guild_id])
            term = rng.choice(terms_by_key[key])
            if roll < 0.02:  # in plain sight
                words.insert(rng.randrange(len(words)), term.upper() if roll < 0.005 else term)
                must.add(key)
            else:  # tagged, as members are asked to
                words.insert(rng.randrange(len(words)), f"||{term}||")
        text = " ".join(words).capitalize() + rng.choice((".", "!", "?", "", " lol"))
        messages.append(Message(guild_id, text, frozenset(must)))
    return GuardWorld(episodes, settings, messages)


# --- the naive matcher: each term in turn -------------------------------------------------


def _haystack(words: Sequence[bytes]) -> bytes:
    return b" " + b" ".join(words) + b" "


class NaiveMatcher:
    """What peers do: each term checked in turn against the message. Same folding, word
    boundaries and tag handling as the guard, so the two must give the same answers."""

    def __init__(self, terms: dict[str, Sequence[str]]) -> None:
        self._terms = [
            (key, _haystack(folded_words(term)))
            for key, phrases in terms.items()
            for term in phrases
        ]

    def match(self, text: str) -> frozenset[str]:
        found = self._search(_haystack(folded_words(text)))
        if found and "||" in text:
            words: list[bytes] = []
            for index, part in enumerate(visible_parts(text)):
                if index:
                    words.append(b"\x00")
                words += folded_words(part)
            found = self._search(_haystack(words))
        return found

    def _search(self, haystack: bytes) -> frozenset[str]:
        return frozenset(key for key, term in self._terms if term in haystack)


# --- other search engines over the same folded text ---------------------------------------


def _trie_regex(patterns: list[bytes]) -> re.Pattern[bytes]:
    """One alternation shaped as a trie, so the regex engine does not try every term at every
    position (a flat ``a|b|c`` of thousands of terms is far slower still)."""
    trie: dict = {}
    for pattern in patterns:
        node = trie
        for byte in pattern:
            node = node.setdefault(byte, {})
        node[None] = True

    def build(node: dict) -> bytes:
        branches = [
            re.escape(bytes([byte])) + build(child)
            for byte, child in node.items()
            if byte is not None
        ]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        return b"(?:" + body + b")?" if None in node else body

    # A lookahead lets matches overlap (terms share the spaces around them), as the automaton's do.
    return re.compile(b"(?=(" + build(trie) + b"))")


def _engines(patterns: list[bytes]) -> dict[str, Callable[[bytes], object]]:
    automaton = ahocorasick_rs.BytesAhoCorasick(patterns)
    engines: dict[str, Callable[[bytes], object]] = {
        "ahocorasick-rs (chosen)": lambda haystack: automaton.find_matches_as_indexes(
            haystack, overlapping=True
        ),
        "stdlib re, trie-shaped": _trie_regex(patterns).findall,
    }
    try:
        import ahocorasick  # pyahocorasick: optional, for the comparison only
    except ImportError:
        return engines
    python_automaton = ahocorasick.Automaton()
    for index, pattern in enumerate(patterns):
        python_automaton.add_word(pattern.decode(), index)
    python_automaton.make_automaton()
    engines["pyahocorasick"] = lambda haystack: list(python_automaton.iter(haystack.decode()))
    return engines


# --- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardFigures:
    build_s: float  # the whole index: active sets for every server, every matcher compiled
    active_sets: int
    terms_common_set: int  # distinct terms in the set most servers share
    terms_largest_set: int
    messages_per_s: float
    runs_per_s: tuple[float, ...]
    p50_us: float
    p99_us: float
    naive_per_s: float
    naive_p99_us: float
    engines_us: dict[str, float]  # the search step alone, mean per message (median of runs)
    hits: int  # messages the guard matched

    @property
    def ratio(self) -> float:
        return self.messages_per_s / self.naive_per_s


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _per_call_us(call: Callable[[int, str], object], messages: Sequence[Message]) -> list[float]:
    clock = time.perf_counter_ns
    samples = []
    for message in messages:
        started = clock()
        call(message.guild_id, message.text)
        samples.append((clock() - started) / 1000)
    return samples


def _throughput(call: Callable[[int, str], object], messages: Sequence[Message]) -> float:
    started = time.perf_counter()
    for message in messages:
        call(message.guild_id, message.text)
    return len(messages) / (time.perf_counter() - started)


def measure(world: GuardWorld, scale: GuardScale, checks: Checks) -> GuardFigures:
    started = time.perf_counter()
    index = GuardIndex.build(world.episodes, world.settings, NOW)
    build_s = time.perf_counter() - started
    terms_by_key = {item.episode.key: item.terms for item in world.episodes}
    active_of = {guild: keys for keys, guilds in index.groups.items() for guild in guilds}
    naive_by_set = {
        keys: NaiveMatcher({key: terms_by_key[key] for key in keys}) for keys in index.groups
    }

    def naive(guild_id: int, text: str) -> frozenset[str]:
        return naive_by_set[active_of[guild_id]].match(text)

    # Answers first (untimed): a fast wrong matcher must fail the run.
    hits = 0
    for position, message in enumerate(world.messages):
        found = set(index.match(message.guild_id, message.text))
        hits += bool(found)
        checks.expect(message.must_match <= found, f"missed {message.must_match}: {message.text!r}")
        checks.expect(found <= active_of[message.guild_id], f"inactive episode: {message.text!r}")
        if position < scale.naive_messages:
            expected = naive(message.guild_id, message.text)
            checks.expect(found == expected, f"guard {found} != naive {expected}: {message.text!r}")

    common = max(index.groups, key=lambda keys: len(index.groups[keys]))
    largest = max(index.groups, key=len)
    patterns = sorted({_haystack(folded_words(t)) for key in common for t in terms_by_key[key]})
    engines = _engines(patterns)
    haystacks = [_haystack(folded_words(message.text)) for message in world.messages]
    engine_sample = haystacks[: max(1, len(haystacks) // 5)]
    naive_messages = world.messages[: scale.naive_messages]
    runs: list[float] = []
    naive_runs: list[float] = []
    engine_runs: dict[str, list[float]] = {name: [] for name in engines}
    gc.collect()
    gc.disable()  # a collection landing in one call is not the matcher's cost
    try:
        # Interleaved, so that other work on a shared machine weighs on every contender alike.
        for _ in range(scale.runs):
            runs.append(_throughput(index.match, world.messages))
            naive_runs.append(_throughput(naive, naive_messages))
            for name, search in engines.items():
                begun = time.perf_counter()
                for haystack in engine_sample:
                    search(haystack)
                engine_runs[name].append((time.perf_counter() - begun) / len(engine_sample) * 1e6)
        samples = _per_call_us(index.match, world.messages)
        naive_samples = _per_call_us(naive, naive_messages)
    finally:
        gc.enable()
    return GuardFigures(
        build_s=build_s,
        active_sets=len(index.groups),
        terms_common_set=len(index.matcher(index.groups[common][0])),
        terms_largest_set=len(index.matcher(index.groups[largest][0])),
        messages_per_s=statistics.median(runs),
        runs_per_s=tuple(runs),
        p50_us=_percentile(samples, 0.50),
        p99_us=_percentile(samples, 0.99),
        naive_per_s=statistics.median(naive_runs),
        naive_p99_us=_percentile(naive_samples, 0.99),
        engines_us={name: statistics.median(us) for name, us in engine_runs.items()},
        hits=hits,
    )


def table(figures: GuardFigures, scale: GuardScale) -> str:
    def met(ok: bool) -> str:
        return "met" if ok else "MISSED"

    lines = [
        f"guard matcher: {scale.describe()}",
        f"  index build: {figures.build_s:.2f} s for {figures.active_sets} distinct active sets"
        f" ({figures.terms_common_set:,} distinct terms in the one most servers share,"
        f" {figures.terms_largest_set:,} in the largest)",
        f"  guard: {figures.messages_per_s:,.0f} messages/s (runs: "
        + ", ".join(f"{run:,.0f}" for run in figures.runs_per_s)
        + f"), p50 {figures.p50_us:.1f} us, p99 {figures.p99_us:.1f} us;"
        f" {figures.hits:,} messages matched",
        f"  naive (each term in turn): {figures.naive_per_s:,.0f} messages/s,"
        f" p99 {figures.naive_p99_us:.1f} us",
        f"  ratio: the guard is {figures.ratio:,.0f}x the naive matcher's throughput",
        "  search step alone over the same folded text, the shared set's terms, mean per message:",
        *(f"    {name:<26}{us:8.2f} us" for name, us in figures.engines_us.items()),
        f"  target >= {MESSAGES_PER_S_MIN:,.0f} messages/s: "
        f"{met(figures.messages_per_s >= MESSAGES_PER_S_MIN)}",
        f"  target p99 <= {P99_MAX_US:g} us: {met(figures.p99_us <= P99_MAX_US)}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.guard",
        description="The guard's term matcher at community scale, against the naive matcher.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer messages (a few seconds)")
    parser.add_argument("--messages", type=int, help="messages to time through the guard")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    if args.messages:
        scale = replace(scale, messages=args.messages)
    checks = Checks()
    world = generate(scale)
    figures = measure(world, scale, checks)
    print(table(figures, scale))
    for failure in checks.failures:
        print(f"  FAILED: {failure}")
    return 0 if checks.ok else 1


if __name__ == "__main__":
    sys.exit(main())
