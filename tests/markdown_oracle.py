"""An independent, conservative model of how Discord's client reads spoiler tags.

tests/test_render.py judges rendered messages with this module *and* with discord-markdown-py
(``discord_markdown``). Neither is used alone, because the library does not model the reading that
matters most. Findings about discord-markdown-py 0.13.0, checked by hand:

* It reads backslash escapes before spoiler tags: ``||a\\||b||`` is one spoiler ``a||b`` and
  ``||a\\|||`` one spoiler ``a|``. Discord's client matches ``\\|\\|([\\s\\S]+?)\\|\\|`` lazily on
  the raw text, so it closes the first after ``a\\`` and shows ``b``.
* It lets a code span win over a tag: ``||`a||``` is text ``||`` then code ``a||``, and a code
  span inside a tag may contain ``||``. A lazy raw match reads both the other way round.
* It ends a tag at a line break and reopens it on the next line (``||a\\nb||`` is two spoilers),
  and sees block markup through an opening tag (``||> q||`` is a quote, ``||# h||`` a heading).
* It only links lower-case ``http(s)://``; ``HTTPS://X.COM`` is plain text to it.
* It does model: spoilers, escapes (``\\`` before any non-alphanumeric, non-space character), code
  spans and fences, ``<url>`` autolinks, bare URLs (which absorb ``|``), mentions, lists, quotes.

This module reads a message the way a simple-markdown rule list does (one position at a time:
escape, code span, spoiler, ``<autolink>``, bare URL, else one character) with the raw lazy spoiler
match, and it is conservative: anything whose meaning depends on which parser reads it is reported
as a *hazard* rather than guessed at. Hazards:

* a tag whose content crosses a line break (Discord breaks it at a quote line);
* content ending in an odd run of backslashes (escape-aware readings do not close there);
* content starting with ``>`` (some readings make it a quote);
* an unescaped backtick inside a tag (parsers disagree on whether code beats the tag, and an
  unpaired one can pair with a backtick outside);
* a code span outside tags that contains ``||``;
* a ``||`` left unpaired;
* a bare URL anywhere, inside a tag or not (it unfurls; Discord's URL rule also swallows ``||``);
* disagreement with the variant that closes only on a ``||`` not followed by ``|`` (used by some
  Discord-style renderers).
A message a renderer produces must come out with no hazards at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LAZY = re.compile(r"\|\|([\s\S]+?)\|\|")
_LAZY_LOOKAHEAD = re.compile(r"\|\|([\s\S]+?)\|\|(?!\|)")
_ESCAPE = re.compile(r"\\([^0-9A-Za-z\s])")
_CODE = re.compile(r"(`+)([\s\S]*?[^`])\1(?!`)")
_AUTOLINK = re.compile(r"<([^: >]+:/[^ >]+)>")
# Discord's URL rule, made case-insensitive to err on the side of seeing a link.
_URL = re.compile(r"https?://[^\s<]+[^<.,:;\"')\]\s]", re.IGNORECASE)
_TAG = re.compile(r"\|\|")
_ANY = re.compile(r"[\s\S]")


@dataclass(frozen=True)
class Reading:
    segments: tuple[tuple[bool, str], ...]  # (inside a spoiler, text as displayed), in order
    hazards: tuple[str, ...]

    @property
    def visible(self) -> str:
        return "".join(text for inside, text in self.segments if not inside)

    @property
    def hidden(self) -> str:
        return "".join(text for inside, text in self.segments if inside)


def unescape(text: str) -> str:
    """What Discord shows for ``text`` outside code: each escape pair becomes its character."""
    return _ESCAPE.sub(r"\1", text)


def read(message: str) -> Reading:
    """Read ``message`` with the lazy rule; add a hazard if the look-ahead variant differs."""
    lazy = _read(message, _LAZY)
    other = _read(message, _LAZY_LOOKAHEAD)
    if lazy.segments != other.segments:
        return Reading(lazy.segments, (*lazy.hazards, "tag readings disagree"))
    return lazy


def _read(message: str, spoiler: re.Pattern[str]) -> Reading:
    segments: list[tuple[bool, str]] = []
    hazards: list[str] = []
    pos = 0
    while pos < len(message):
        if match := _ESCAPE.match(message, pos):
            segments.append((False, match[1]))
        elif match := _CODE.match(message, pos):
            if "||" in match[2]:
                hazards.append(f"code span swallows a tag: {match[0]!r}")
            segments.append((False, match[2]))
        elif match := spoiler.match(message, pos):
            content = match[1]
            broken = _broken(content)
            if broken:
                hazards.extend(broken)
                segments.append((False, unescape(match[0])))
            else:
                text, inner = _inside(content)
                hazards.extend(inner)
                segments.append((True, text))
        elif match := _AUTOLINK.match(message, pos):
            segments.append((False, match[1]))
        elif match := _URL.match(message, pos):
            hazards.append(f"bare URL: {match[0]!r}")
            segments.append((False, match[0]))
        elif message.startswith("||", pos):
            hazards.append(f"unpaired tag at {pos}")
            match = _TAG.match(message, pos)
            segments.append((False, "||"))
        else:
            match = _ANY.match(message, pos)
            segments.append((False, message[pos]))
        assert match is not None
        pos = match.end()
    return Reading(tuple(segments), tuple(hazards))


def _broken(content: str) -> list[str]:
    found = []
    if "\n" in content:
        found.append(f"tag crosses a line: {content!r}")
    if (len(content) - len(content.rstrip("\\"))) % 2:
        found.append(f"tag content ends in an escaping backslash: {content!r}")
    if content.lstrip().startswith(">"):
        found.append(f"tag content starts like a quote: {content!r}")
    return found


def _inside(content: str) -> tuple[str, list[str]]:
    """The displayed text of a tag's content, and its hazards."""
    text: list[str] = []
    hazards: list[str] = []
    pos = 0
    while pos < len(content):
        if (match := _ESCAPE.match(content, pos)) or (match := _AUTOLINK.match(content, pos)):
            text.append(match[1])
        elif match := _URL.match(content, pos):
            hazards.append(f"bare URL in a tag: {match[0]!r}")
            text.append(match[0])
        else:
            match = _ANY.match(content, pos)
            if content[pos] == "`":
                hazards.append(f"unescaped backtick in a tag: {content!r}")
            text.append(content[pos])
        assert match is not None
        pos = match.end()
    return "".join(text), hazards
