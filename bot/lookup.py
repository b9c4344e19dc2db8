"""Finding episodes and shows from what members type: autocomplete, free text, suggestions.

Pure and in memory: the index is rebuilt from the content whenever it is (re)loaded, so a
keystroke never touches the database. Word-prefix postings keep autocomplete fast on a
20,000-episode catalogue.

Everything here takes text straight from members, so every step is linear in its length: no
pattern can backtrack over a long input, and only the first ``MAX_QUERY`` characters are
looked at in any case. Text that normalises to nothing (emoji, control characters) matches
nothing; only genuinely blank text lists everything (an autocomplete before any typing).

An episode whose title spoils is found by its show and code only while the ``TitleRule`` of
the request hides its title: a match on the title or an alias would confirm a member's guess.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

from bot.content.models import Episode, Show
from bot.spoilers.policy import HIDE_SPOILING_TITLES, TitleRule

MAX_CHOICES = 25  # Discord's limit on autocomplete choices
MAX_PREFIX = 12  # longer query words are checked against the full word list
# Longer text is no episode or show anyone types; autocomplete and suggestions use its start.
MAX_QUERY = 200
# Matched with .search() on normalised text (single spaces): every part is bounded, so each
# start position costs a few steps and the whole search is linear. A lazy ``^(.*?)\s*s...``
# prefix, as these once were, retries the whitespace run from every start: quadratic.
_CODE = re.compile(r"s(?P<season>\d{1,3}) ?e(?P<number>\d{1,4})$")
_ALT_CODE = re.compile(r"(?P<season>\d{1,3})x(?P<number>\d{1,4})$")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    """Casefold, strip accents and punctuation: ``Bête Noire!`` -> ``bete noire``."""
    if text.isascii():  # the common case, without a pass per character
        return _NON_WORD.sub(" ", text.lower()).strip()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", stripped).strip()


def _initials(title: str) -> str:
    return "".join(word[0] for word in normalise(title).split())


@lru_cache(maxsize=65536)
def prefixes_of(word: str) -> tuple[str, ...]:
    """Every prefix of a word up to MAX_PREFIX characters; words repeat across a catalogue."""
    return tuple(word[:length] for length in range(1, min(len(word), MAX_PREFIX) + 1))


def _code_words(season: int, number: int) -> tuple[str, ...]:
    return (f"s{season}e{number}", f"s{season:02d}e{number:02d}", f"{season}x{number:02d}")


class Catalogue:
    """An immutable index over every show and episode currently loaded."""

    def __init__(self, shows: Sequence[Show]) -> None:
        self.shows: tuple[Show, ...] = tuple(sorted(shows, key=lambda s: normalise(s.title)))
        self.episodes: tuple[Episode, ...] = tuple(
            episode
            for show in self.shows
            for episode in sorted(show.episodes, key=lambda e: (e.season, e.number))
        )
        self.by_key: dict[str, Episode] = {episode.key: episode for episode in self.episodes}
        self.shows_by_slug: dict[str, Show] = {show.slug: show for show in self.shows}
        self._by_label: dict[str, Episode] = {}
        self._by_show_code: dict[tuple[str, int, int], Episode] = {}
        self._by_code: dict[tuple[int, int], list[Episode]] = defaultdict(list)
        self._by_name: dict[str, list[Episode]] = defaultdict(list)
        self._postings: dict[str, list[int]] = defaultdict(list)
        self._words: list[frozenset[str]] = []
        # Episodes whose title spoils, by position: the words they match while it is hidden.
        self._code_only_words: dict[int, frozenset[str]] = {}
        position = 0
        for show in self.shows:
            # Everything about the show is worked out once, not once per episode.
            show_name = normalise(show.title)
            show_words = {*show_name.split(), _initials(show.title), show.slug}
            for episode in sorted(show.episodes, key=lambda e: (e.season, e.number)):
                names = [normalise(name) for name in (episode.title, *episode.aliases)]
                code = f"s{episode.season}e{episode.number}"
                label = " ".join(part for part in (show_name, code, names[0]) if part)
                self._by_label[label] = episode
                self._by_show_code[(show.slug, episode.season, episode.number)] = episode
                self._by_code[(episode.season, episode.number)].append(episode)
                for name in names:
                    self._by_name[name].append(episode)
                words = frozenset(
                    show_words.union(*(name.split() for name in names)).union(
                        _code_words(episode.season, episode.number)
                    )
                )
                self._words.append(words)
                if episode.title_spoils:
                    self._code_only_words[position] = frozenset(
                        show_words.union(_code_words(episode.season, episode.number))
                    )
                for prefix in set().union(*(prefixes_of(word) for word in words)):
                    self._postings[prefix].append(position)
                position += 1
        self._show_names: dict[str, Show] = {}
        for show in self.shows:
            for name in (show.title, show.slug.replace("-", " "), _initials(show.title)):
                self._show_names.setdefault(normalise(name), show)
        # Names of episodes whose title spoils are offered only while it is shown: otherwise
        # a hidden name could take a place among the closest and change what is suggested.
        self._suggest_names = [
            name for name, named in self._by_name.items() if not all(e.title_spoils for e in named)
        ]
        self._spoiling_names = [
            (name, named)
            for name, named in self._by_name.items()
            if all(e.title_spoils for e in named)
        ]
        self._show_words = [
            (show, _initials(show.title), normalise(f"{show.title} {show.slug}").split())
            for show in self.shows
        ]
        # Empty query: the newest episodes first, which is what members usually want.
        self._newest = sorted(
            range(len(self.episodes)), key=lambda i: self.episodes[i].release_at, reverse=True
        )

    def __len__(self) -> int:
        return len(self.episodes)

    # -- episodes ---------------------------------------------------------------------------

    def _hidden(self, episode: Episode, titles: TitleRule) -> bool:
        return episode.title_spoils and not titles.shows(episode)

    def search(
        self, text: str, limit: int = MAX_CHOICES, *, titles: TitleRule = HIDE_SPOILING_TITLES
    ) -> list[Episode]:
        """Episodes whose words start with every word typed, in catalogue order; one whose title
        ``titles`` hides, only on its show's words and its code."""
        raw = _bounded(text)
        if not raw:
            return [self.episodes[i] for i in self._newest[:limit]]
        tokens = list(dict.fromkeys(normalise(raw).split()))
        if not tokens:
            return []
        # Start from the rarest prefix so the candidate list is as short as possible.
        postings = sorted((self._postings.get(token[:MAX_PREFIX], []) for token in tokens), key=len)
        if not postings[0]:
            return []
        long_tokens = [token for token in tokens if len(token) > MAX_PREFIX]
        others = [set(p) for p in postings[1:]] if len(postings) > 1 else []
        found: list[Episode] = []
        for position in postings[0]:
            if any(position not in other for other in others):
                continue
            if long_tokens and not all(
                any(word.startswith(token) for word in self._words[position])
                for token in long_tokens
            ):
                continue
            episode = self.episodes[position]
            code_only = self._code_only_words.get(position)
            if (
                code_only is not None
                and self._hidden(episode, titles)
                and not all(any(word.startswith(t) for word in code_only) for t in tokens)
            ):
                continue
            found.append(episode)
            if len(found) >= limit:
                break
        return found

    def resolve(self, text: str, *, titles: TitleRule = HIDE_SPOILING_TITLES) -> Episode | None:
        """The one episode the text means, or None when it is unknown or ambiguous. An episode
        whose title ``titles`` hides is meant only by its key or its code."""
        raw = text.strip()
        if raw in self.by_key:  # an autocomplete choice's value
            return self.by_key[raw]
        if len(raw) > MAX_QUERY:
            return None
        query = normalise(raw)
        if not query:
            return None
        labelled = self._by_label.get(query)
        if labelled is not None and not self._hidden(labelled, titles):
            return labelled
        by_code = self._resolve_code(query)
        if by_code is not None:
            return by_code
        named = [e for e in self._by_name.get(query, ()) if not self._hidden(e, titles)]
        if len(named) == 1:
            return named[0]
        matches = self.search(raw, limit=2, titles=titles)
        return matches[0] if len(matches) == 1 else None

    def _resolve_code(self, query: str) -> Episode | None:
        """``bm s07e06``, ``s7 e6``, ``black mirror 7x06``: a code at the end of normalised
        text, after an optional show."""
        match = _CODE.search(query) or _ALT_CODE.search(query)
        if match is None:
            return None
        season, number = int(match.group("season")), int(match.group("number"))
        show_text = query[: match.start()].strip()
        if show_text:
            show = self.resolve_show(show_text)
            if show is None:
                return None
            return self._by_show_code.get((show.slug, season, number))
        candidates = self._by_code.get((season, number), [])
        return candidates[0] if len(candidates) == 1 else None

    def suggest(
        self, text: str, limit: int = 5, *, titles: TitleRule = HIDE_SPOILING_TITLES
    ) -> list[Episode]:
        """Closest episodes for an error message: prefix matches first, then fuzzy titles (never
        a title ``titles`` hides)."""
        raw = _bounded(text)
        query = normalise(raw)
        if not query:
            return []
        found = self.search(raw, limit=limit, titles=titles)
        if len(found) < limit:
            seen = {episode.key for episode in found}
            names = self._suggest_names
            if self._spoiling_names:
                names = names + [
                    name
                    for name, named in self._spoiling_names
                    if not all(self._hidden(episode, titles) for episode in named)
                ]
            for name in difflib.get_close_matches(query, names, n=limit, cutoff=0.4):
                for episode in self._by_name[name]:
                    if self._hidden(episode, titles):
                        continue
                    if episode.key not in seen and len(found) < limit:
                        seen.add(episode.key)
                        found.append(episode)
        return found

    # -- shows ------------------------------------------------------------------------------

    def resolve_show(self, text: str) -> Show | None:
        """The one show the text means, or None when it is unknown or ambiguous."""
        raw = text.strip()
        if raw in self.shows_by_slug:
            return self.shows_by_slug[raw]
        if len(raw) > MAX_QUERY:
            return None
        query = normalise(raw)
        if not query:
            return None
        if query in self._show_names:
            return self._show_names[query]
        matches = self.search_shows(raw, limit=2)
        return matches[0] if len(matches) == 1 else None

    def search_shows(self, text: str, limit: int = MAX_CHOICES) -> list[Show]:
        raw = _bounded(text)
        if not raw:
            return list(self.shows[:limit])
        query = normalise(raw)
        tokens = list(dict.fromkeys(query.split()))
        if not tokens:
            return []
        found = []
        for show, initials, words in self._show_words:
            if query == initials or all(
                any(word.startswith(token) for word in words) for token in tokens
            ):
                found.append(show)
                if len(found) >= limit:
                    break
        return found

    def suggest_shows(self, text: str, limit: int = 5) -> list[Show]:
        raw = _bounded(text)
        query = normalise(raw)
        if not query:
            return []
        found = self.search_shows(raw, limit=limit)
        if found:
            return found
        names = difflib.get_close_matches(query, list(self._show_names), n=limit, cutoff=0.4)
        unique: dict[str, Show] = {}
        for name in names:
            unique.setdefault(self._show_names[name].slug, self._show_names[name])
        return list(unique.values())


def _bounded(text: str) -> str:
    """The part of a member's text that searches look at: stripped, at most MAX_QUERY long."""
    return text.strip()[:MAX_QUERY]
