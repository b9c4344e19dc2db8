"""The guard's matcher: does a member's message show an active episode's spoiler terms?

Pure: terms, text, settings and instants in; episode keys out.

What counts as a match
    A term matches when its words appear, in order and as whole words, in text a reader can see:
    outside spoiler tags. Both sides are folded the same way: compatibility decomposition (NFKD,
    so full-width letters and ligatures read as plain letters), case folding, and every
    combining mark removed (``Bête`` is ``bete``; Japanese voicing marks go too). Anything that
    is not a letter or a digit separates words, and a run of separators counts as one, so the
    term ``Bête Noire`` matches ``bete-noire``, ``BÊTE NOIRE!`` and ``Bête\\-Noire``, but
    ``Nanette`` does not match ``Nanettes``. Scripts written without spaces (Chinese, Japanese
    kana, Thai, Lao, Khmer, Myanmar) have a word boundary between every two characters, so a
    term in them matches anywhere in a run of them.

What is hidden
    Spoiler tags are found as Discord's client finds them, the reading that tests/markdown_oracle.py
    models and the renderer is judged by: one position at a time, a backslash escape, then a code
    span, then a lazy ``||…||`` on the raw text (a backslash inside does not stop ``||`` closing),
    then a ``<…:/…>`` autolink, then a bare URL (which swallows pipes), else one character. An
    escaped ``\\|\\|`` opens nothing; an unclosed ``||`` hides nothing. Code spans and blocks hide
    nothing from readers, so text in code counts. Where Discord's readings disagree the text
    counts as visible, as the oracle reports it: a tag whose content starts like a quote (``>``)
    or ends in an escaping backslash. One deliberate difference from the oracle, which must
    refuse any tag crossing a line in Embargo's own output: a member's tag over several lines
    hides them all (as Discord shows it) unless one of its lines starts like a quote, where
    Discord breaks it.

Speed
    The guard sees every message in every server. ``TermMatcher`` compiles all the active terms
    of one set into a single Aho-Corasick automaton (ahocorasick-rs, in Rust) over the folded
    text, with each term padded by spaces so that plain substring search enforces the word
    boundaries. Measured on the guard's benchmark (``python -m tests.benchmarks.guard``) against
    a trie-shaped stdlib regex alternation and pyahocorasick over the same folded text, it was the
    fastest, and unlike a regex it cannot backtrack: it is linear in the text. Folding (a byte
    translation for ASCII text) costs more than the search, so a message is folded once, whole,
    and only when a term is found in a message that has ``||`` are its tags worked out and its
    visible parts searched again (tags only ever remove matches: they sit on ``|`` characters,
    which separate words). Finding the tags is one linear scan (see ``hidden_spans``). So the
    work for any message is linear in its length plus the matches found, at most one per term
    ending at each word (only terms nested in one another end together); the tests feed hostile
    text far longer than Discord's longest message.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import ahocorasick_rs

from bot.content.models import Episode
from bot.spoilers.durations import SpoilerWindow
from bot.spoilers.policy import SpoilerSettings, window_end

MAX_TERMS = 50  # per episode
MAX_TERM_LENGTH = 100  # characters, as written
MIN_TERM_LENGTH = 2  # characters once folded: a one-letter term would flag everything

# A barrier between the visible parts of a message: a "word" no folded term can contain, so no
# term matches across a hidden part.
_BARRIER = b"\x00"

# ASCII folding as one byte translation: letters lowered, digits kept, everything else a space.
_ASCII_TABLE = bytes(
    (byte | 0x20 if chr(byte).isalpha() else byte) if chr(byte).isalnum() else 0x20
    for byte in range(128)
) + bytes(range(128, 256))
# Scripts written without spaces between words: each of their characters is a word of its own.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff\u31f0-\u31ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"  # Han
)
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")

# Discord's markdown, as tests/markdown_oracle.py reads it (see ``hidden_spans``).
_TRIGGER = re.compile(r"[\\`|<]|(?i:https?://)")
_URL = re.compile(r"https?://[^\s<]+[^<.,:;\"')\]\s]", re.IGNORECASE)
_TICKS = re.compile(r"`+")
_AUTOLINK_STOP = re.compile(r"[: >]")
_AUTOLINK_END = re.compile(r"[ >]")


# --- folding -------------------------------------------------------------------------------


class _FoldTable(dict[int, str | None]):
    """What ``str.translate`` makes of each non-ASCII character once the text is decomposed and
    case-folded: a combining mark is dropped, a character of a script written without spaces
    becomes a word of its own, anything else that is not a letter or a digit a space, and a
    letter or digit stays. Worked out the first time a character is seen, then looked up in C;
    the table stops growing at ``_FOLD_TABLE_MAX`` entries (rare characters past that are
    worked out each time), so text made of every character there is cannot bloat it."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        folded: str | None
        if unicodedata.category(char).startswith("M"):
            folded = None
        elif _UNSPACED.match(char):
            folded = f" {char} "
        elif char.isalnum():
            folded = char
        else:
            folded = " "
        if len(self) < _FOLD_TABLE_MAX:
            self[code] = folded
        return folded


_FOLD_TABLE_MAX = 50_000
_FOLD_TABLE = _FoldTable()


def folded_words(text: str) -> list[bytes]:
    """The folded words of ``text`` as UTF-8.

    ASCII is folded by one byte translation. Other text is decomposed and case-folded whole,
    then only its runs of non-ASCII characters (an emoji or two in most chat) are translated.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
        text = _NON_ASCII.sub(_fold_run, text)
    return text.encode().translate(_ASCII_TABLE).split()


def _fold_run(run: re.Match[str]) -> str:
    return run[0].translate(_FOLD_TABLE)


def fold(text: str) -> str:
    """``text`` as the matcher compares it: folded words joined by single spaces.

    ``fold("Bête-NOIRE!") == "bete noire"``; ``fold("ナネット") == "ナ ネ ッ ト"``.
    """
    return b" ".join(folded_words(text)).decode()


# --- what a reader can see -----------------------------------------------------------------


def hidden_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each spoiler tag's content in ``text``, in order, as Discord
    hides it (see the module's docstring for the reading).

    One pass, linear in the length of ``text`` whatever it holds: each rule is tried only where
    it can start, and the searches that could repeat over the same stretch (for a closing
    ``||``, the end of an autolink, a closing run of backticks) remember what they found.
    """
    spans: list[tuple[int, int]] = []
    length = len(text)
    no_tag_from = length + 1  # no "||" starts at or after this index
    ticks: _Ticks | None = None
    autolink = _Autolinks(text)
    pos = 0
    while match := _TRIGGER.search(text, pos):
        start = match.start()
        char = text[start]
        if char == "\\":
            escaped = start + 1 < length and _escapable(text[start + 1])
            pos = start + 2 if escaped else start + 1
        elif char == "`":
            ticks = ticks or _Ticks(text)
            pos = ticks.code_end(start)
        elif char == "|":
            if not text.startswith("||", start):
                pos = start + 1
                continue
            close = text.find("||", start + 3) if start + 3 < no_tag_from else -1
            if close < 0:  # an unpaired "||" shows as written
                no_tag_from = min(no_tag_from, start + 3)
                pos = start + 2
                continue
            if not _shows_anyway(text[start + 2 : close]):
                spans.append((start + 2, close))
            pos = close + 2
        elif char == "<":
            pos = autolink.end(start)
        else:
            url = _URL.match(text, start)
            pos = url.end() if url else start + 1
    return spans


def visible_parts(text: str) -> list[str]:
    """The stretches of ``text`` outside spoiler tags, as written (markup included)."""
    parts: list[str] = []
    pos = 0
    for start, end in hidden_spans(text):
        parts.append(text[pos : start - 2])
        pos = end + 2
    parts.append(text[pos:])
    return parts


def _escapable(char: str) -> bool:
    return not (char.isascii() and char.isalnum()) and not char.isspace()


def _shows_anyway(content: str) -> bool:
    """Whether a tag's content shows in some reading of Discord's markdown (see the module's
    docstring): it starts like a quote, a line in it does, or it ends in an escaping backslash."""
    if (len(content) - len(content.rstrip("\\"))) % 2:
        return True
    return any(line.lstrip().startswith(">") for line in content.split("\n"))


class _Ticks:
    """Code spans, read as ``(`+)([\\s\\S]*?[^`])\\1(?!`)`` at a position: the longest opening
    run that has a closing run of exactly its length later on, and the first such closing run.

    The regex retries every shorter opening and scans to the end each time; here the maximal
    runs are listed once, by length, with a pointer per length that only moves forward.
    """

    def __init__(self, text: str) -> None:
        runs = [match.span() for match in _TICKS.finditer(text)]
        self._starts = [start for start, _ in runs]
        self._ends = [end for _, end in runs]
        self._by_length: dict[int, list[int]] = {}
        for start, end in runs:
            self._by_length.setdefault(end - start, []).append(start)
        self._next: dict[int, int] = dict.fromkeys(self._by_length, 0)

    def code_end(self, pos: int) -> int:
        """Where reading resumes after a backtick at ``pos``: past the code span it opens, or
        past its run of backticks when it opens none (no shorter opening can then either)."""
        run_end = self._ends[bisect_right(self._starts, pos) - 1]
        for size in range(run_end - pos, 0, -1):
            starts = self._by_length.get(size)
            if starts is None:
                continue
            index = self._next[size]
            while index < len(starts) and starts[index] <= run_end:
                index += 1
            self._next[size] = index
            if index < len(starts):
                return starts[index] + size
        return run_end


class _Autolinks:
    """``<([^: >]+:/[^ >]+)>`` at a ``<``: the searches for its ``:`` and its ``>`` are shared
    by every ``<`` before the same stop, so a run of ``<`` costs one scan, not one each."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._stop = -1  # the first ":", " " or ">" after the last "<" asked about
        self._close = -1  # the first " " or ">" after that stop's ":/"

    def end(self, start: int) -> int:
        text = self._text
        if self._stop <= start:
            found = _AUTOLINK_STOP.search(text, start + 1)
            self._stop = found.start() if found else len(text)
            self._close = -1
        stop = self._stop
        if stop == start + 1 or not text.startswith(":/", stop):
            return start + 1
        if self._close < 0:
            found = _AUTOLINK_END.search(text, stop + 2)
            self._close = found.start() if found else len(text)
        close = self._close
        if close == stop + 2 or not text.startswith(">", close):
            return start + 1
        return close + 1


# --- the matcher ---------------------------------------------------------------------------


class TermMatcher:
    """Every term of a set of episodes, compiled once; ``match`` tells which episodes a
    message shows terms of. Immutable: build a new one when the set changes."""

    def __init__(self, terms: Mapping[str, Iterable[str]]) -> None:
        """``terms`` maps an episode key to its spoiler terms (already validated)."""
        self.terms: dict[str, tuple[str, ...]] = {key: tuple(ps) for key, ps in terms.items()}
        owners: dict[bytes, list[str]] = {}
        for key, phrases in self.terms.items():
            for phrase in phrases:
                words = folded_words(phrase)
                if not words:
                    raise ValueError(f"spoiler term {phrase!r} of {key} has no letters or digits")
                keys = owners.setdefault(b" " + b" ".join(words) + b" ", [])
                if key not in keys:
                    keys.append(key)
        self.keys: frozenset[str] = frozenset(self.terms)
        self._owners: list[tuple[str, ...]] = [tuple(keys) for keys in owners.values()]
        self._automaton = ahocorasick_rs.BytesAhoCorasick(list(owners)) if owners else None

    def __len__(self) -> int:
        """The number of distinct folded terms."""
        return len(self._owners)

    def match(self, text: str) -> tuple[str, ...]:
        """The keys of the episodes whose terms ``text`` shows outside spoiler tags, in the
        order their first term ends in the text."""
        if self._automaton is None:
            return ()
        found = self._search(folded_words(text))
        if found and "||" in text:
            words: list[bytes] = []
            for index, part in enumerate(visible_parts(text)):
                if index:
                    words.append(_BARRIER)
                words += folded_words(part)
            found = self._search(words)
        return found

    def _search(self, words: list[bytes]) -> tuple[str, ...]:
        assert self._automaton is not None
        haystack = b" " + b" ".join(words) + b" "
        matches = self._automaton.find_matches_as_indexes(haystack, overlapping=True)
        if not matches:
            return ()
        found: dict[str, None] = {}
        for pattern, _, _ in matches:
            found.update(dict.fromkeys(self._owners[pattern]))
        return tuple(found)


# --- which episodes are guarded where ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EpisodeTerms:
    """An episode and its spoiler terms, as the content declares them."""

    episode: Episode
    terms: tuple[str, ...]


def is_active(episode: Episode, settings: SpoilerSettings, now: datetime) -> bool:
    """Released and inside this server's spoiler window for the show: the same half-open
    ``[release, release + window)`` as ``policy.decide``."""
    if now < episode.release_at:
        return False
    window = settings.window_for(episode.show_slug)
    if window.is_off:
        return False
    ends_at = window_end(episode.release_at, window)
    return ends_at is None or now < ends_at


def active_keys(
    episodes: Iterable[EpisodeTerms], settings: SpoilerSettings, now: datetime
) -> frozenset[str]:
    """The keys of the episodes with terms that are active under ``settings`` at ``now``."""
    return frozenset(
        item.episode.key
        for item in episodes
        if item.terms and is_active(item.episode, settings, now)
    )


@dataclass(frozen=True)
class GuardIndex:
    """Which terms each server guards against at one instant.

    Servers whose settings give the same active set share one matcher, so thousands of servers
    on the default window cost one automaton. ``expires_at`` is the next instant any server's
    set changes (a release, or a window ending), when the index must be rebuilt; None if never.
    """

    built_at: datetime
    expires_at: datetime | None
    groups: Mapping[frozenset[str], tuple[int, ...]]  # active keys -> the servers with that set
    _by_guild: Mapping[int, TermMatcher] = field(repr=False)
    _empty: TermMatcher = field(repr=False, default_factory=lambda: TermMatcher({}))

    @classmethod
    def build(
        cls,
        episodes: Sequence[EpisodeTerms],
        settings_by_guild: Mapping[int, SpoilerSettings],
        now: datetime,
        *,
        previous: GuardIndex | None = None,
    ) -> GuardIndex:
        """Work out each server's active set at ``now`` and compile one matcher per distinct
        set, reusing ``previous``'s matchers for sets whose episodes and terms did not change."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        episodes = [item for item in episodes if item.terms]
        terms_by_key = {item.episode.key: item.terms for item in episodes}
        guarded_shows = {item.episode.show_slug for item in episodes}
        # Only the windows of shows that have terms matter: servers that agree on them agree
        # on the active set, so the episodes are checked once per distinct set of windows.
        keys_by_windows: dict[object, frozenset[str]] = {}
        members: dict[frozenset[str], list[int]] = {}
        for guild_id, settings in settings_by_guild.items():
            windows = (
                settings.window,
                tuple(
                    (slug, window)
                    for slug, window in settings.show_windows  # by slug already
                    if slug in guarded_shows
                ),
            )
            keys = keys_by_windows.get(windows)
            if keys is None:
                keys = keys_by_windows[windows] = active_keys(episodes, settings, now)
            members.setdefault(keys, []).append(guild_id)
        reusable = previous._matchers() if previous is not None else {}
        by_guild: dict[int, TermMatcher] = {}
        for keys, guild_ids in members.items():
            terms = {key: terms_by_key[key] for key in keys}
            matcher = reusable.get(keys)
            if matcher is None or matcher.terms != terms:  # new, or the content was reloaded
                matcher = TermMatcher(terms)
            by_guild.update(dict.fromkeys(guild_ids, matcher))
        return cls(
            built_at=now,
            expires_at=next_change(episodes, settings_by_guild.values(), now),
            groups={keys: tuple(guild_ids) for keys, guild_ids in members.items()},
            _by_guild=by_guild,
        )

    def matcher(self, guild_id: int) -> TermMatcher:
        """The server's matcher (one that matches nothing for a server not in the index)."""
        return self._by_guild.get(guild_id, self._empty)

    def match(self, guild_id: int, text: str) -> tuple[str, ...]:
        return self.matcher(guild_id).match(text)

    def _matchers(self) -> dict[frozenset[str], TermMatcher]:
        return {matcher.keys: matcher for matcher in self._by_guild.values()}


def next_change(
    episodes: Iterable[EpisodeTerms], settings: Iterable[SpoilerSettings], now: datetime
) -> datetime | None:
    """The first instant after ``now`` when an episode with terms is released or leaves a
    server's spoiler window, or None when no set will ever change."""
    windows: set[SpoilerWindow] = set()
    show_windows: dict[str, set[SpoilerWindow]] = {}
    for server in settings:
        windows.add(server.window)
        for slug, window in server.show_windows:
            show_windows.setdefault(slug, set()).add(window)
    soonest: datetime | None = None
    for item in episodes:
        if not item.terms:
            continue
        release = item.episode.release_at
        instants = [release]
        for window in windows | show_windows.get(item.episode.show_slug, set()):
            if not window.is_off and (ends := window_end(release, window)) is not None:
                instants.append(ends)
        for instant in instants:
            if instant > now and (soonest is None or instant < soonest):
                soonest = instant
    return soonest


# --- the content's spoiler_terms field -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class TermsCheck:
    terms: tuple[str, ...]  # the valid terms, as written (stripped), in their order
    problems: tuple[str, ...]  # one friendly line each; empty when all is well


def check_spoiler_terms(value: object) -> TermsCheck:
    """Validate an episode's ``spoiler_terms`` as read from its front matter: a list of
    phrases, each non-blank, at most ``MAX_TERM_LENGTH`` characters, at least
    ``MIN_TERM_LENGTH`` once folded, not a repeat of another once folded, at most ``MAX_TERMS``.

    Problems quote a term cut to a readable length. Valid terms are returned even when others
    have problems, so a caller can report everything at once.
    """
    if value is None:
        return TermsCheck((), ())
    if isinstance(value, str):
        return TermsCheck((), ('spoiler_terms must be a list of phrases, e.g. ["Nanette"]',))
    if not isinstance(value, list | tuple):
        return TermsCheck(
            (), (f"spoiler_terms must be a list of phrases, not {type(value).__name__}",)
        )
    problems: list[str] = []
    if len(value) > MAX_TERMS:
        problems.append(f"spoiler_terms has {len(value)} terms; the most is {MAX_TERMS}")
    terms: list[str] = []
    seen: dict[str, str] = {}
    for position, item in enumerate(value[:MAX_TERMS], start=1):
        where = f"spoiler_terms item {position}"
        if not isinstance(item, str):
            problems.append(f"{where} must be text, not {type(item).__name__}")
            continue
        term = item.strip()
        shown = _quote(term)
        if not term:
            problems.append(f"{where} is blank")
        elif len(term) > MAX_TERM_LENGTH:
            problems.append(
                f"{where} {shown} is {len(term)} characters; the most is {MAX_TERM_LENGTH}"
            )
        elif not (folded := fold(term)):
            problems.append(f"{where} {shown} has no letters or digits to match")
        elif len(folded.replace(" ", "")) < MIN_TERM_LENGTH:
            problems.append(f"{where} {shown} is too short to match safely")
        elif folded in seen:
            problems.append(
                f"{where} {shown} repeats {_quote(seen[folded])} "
                "(the same once case and accents are ignored)"
            )
        else:
            seen[folded] = term
            terms.append(term)
    return TermsCheck(tuple(terms), tuple(problems))


def _quote(term: str, limit: int = 40) -> str:
    return repr(term if len(term) <= limit else term[: limit - 1] + "…")
