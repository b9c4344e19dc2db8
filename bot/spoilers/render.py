"""Spoiler-safe message contents for Discord, and splitting of long Markdown.

This module is where Embargo's leak rules live. It is pure: strings in, strings out.

How Discord finds a spoiler decides everything here. Its client matches ``||(.+?)||`` lazily on
the raw text, before anything inside is parsed, so backslashes do not protect a ``||`` (``\\||``
still closes the tag). Other parsers (and some Discord clients) read escapes first, or let a code
span win over the tag, or only close on a ``||`` that is not followed by another ``|``. Output here
is built so that every one of those readings finds exactly the same tags:

* Every ``|`` of the author's text is written ``\\|``, so no two pipes are ever adjacent inside a
  tag. If the content would end with a pipe, a space goes before the closing ``||``: ``\\|||`` is
  read differently by the lazy and the escape-aware readings.
* A tag never crosses a line: every line (or piece of a long line) is wrapped on its own. Block
  markup that carries no words stays outside the tag (``- ||item||``, ``1. ||item||``,
  ``-# ||small||``); headings become bold inside the tag (``||**Title**||``) so that a heading's
  text is never outside one.
* Backticks are escaped (``\\```). Code spans and fences are neutralised rather than kept because
  an unclosed backtick or fence pairs with one outside the tag and swallows the ``||``, and parsers
  disagree on whether a code span beats a spoiler. The text stays readable; only its code styling
  is lost.
* A ``>`` starting a tag's content is escaped (``\\>``), since some readings take ``||> x||`` for a
  quote line.
* Lone backslashes (ones that escape nothing) are doubled, which shows the same character but can
  never escape the closing ``||``. The author's own escapes (``\\*``) are kept, and a split never
  falls between a backslash and the character it escapes.
* URLs are wrapped as ``<url>`` so they cannot unfurl (the caller also suppresses embeds). A URL
  stops at whitespace, ``<``, ``>``, ``|``, a backtick, a backslash or another ``http(s)://``, so
  it never absorbs a tag, and no scheme shows inside ``<...>`` but at its start. A scheme with
  nothing after it, or a URL too long for one message, has its colon escaped
  (``https\\://``) so no parser sees a link at all.

Lengths are counted in code points, as Discord's API counts them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum, auto

DISCORD_MESSAGE_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_TOTAL_LIMIT = 6000

# The smallest limit a split is guaranteed to fit: the longest list prefix (11), the two tags (4),
# an escaped ">" and a closing pad (2), and the longest unit that cannot be cut (9, "https\://").
MIN_LIMIT = 32

_SCHEME = re.compile(r"https?://", re.IGNORECASE)
_URL_BODY = re.compile(r"[^\s<>|\\`]*")
# Discord's own URL rule does not end a link on these, so neither do we.
_URL_TRAIL = frozenset(".,:;\"')]")
_WRAPPED_URL = re.compile(r"<https?://[^\s<>|\\`]+>", re.IGNORECASE)
_MENTION = re.compile(r"<(?:@[!&]?\d+|#\d+|a?:\w+:\d+|t:-?\d+(?::[A-Za-z])?)>")
_LIST_PREFIX = re.compile(r"( {0,6}(?:-#|[-*]|\d{1,3}\.)) +(?=\S)")
_HEADING = re.compile(r"#{1,3} +(?=\S)")
# CJK full stop, exclamation and question marks end a sentence with no space after them.
_CJK_STOP = frozenset("\u3002\uff01\uff1f")
_SENTENCE_END = frozenset(".!?\u2026") | _CJK_STOP
_CLOSERS = frozenset("\"')]*_~\u201d\u2019")  # may follow a sentence's final stop
_ZWJ = "\u200d"
_SPOILER_ESCAPED = frozenset("|`")
_PAIRED = ("||", "**", "__", "~~", "`")  # markup a truncation should not leave open


class _Kind(Enum):
    SPACE = auto()  # a word boundary; dropped at the edges of a piece
    TEXT = auto()  # one character (with its combining marks), or an escape pair
    ATOM = auto()  # a URL or mention, kept whole unless it cannot fit a message


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str  # as rendered
    source: str  # as written, to cut an oversized atom into characters
    kind: _Kind = _Kind.TEXT


@dataclass(frozen=True, slots=True)
class _Line:
    prefix: str  # block markup kept outside the spoiler tag
    units: list[_Unit]


@dataclass(frozen=True, slots=True)
class _Style:
    spoiler: bool  # wrap content in tags and escape what could break them
    wrap_urls: bool  # write URLs as <url> so they do not unfurl


_SPOILER = _Style(spoiler=True, wrap_urls=True)
_MESSAGE = _Style(spoiler=False, wrap_urls=True)
_EMBED = _Style(spoiler=False, wrap_urls=False)  # links in embeds never unfurl


def spoiler_messages(
    text: str, *, header: str = "", limit: int = DISCORD_MESSAGE_LIMIT
) -> list[str]:
    """Render spoiler Markdown as one or more message contents, each <= ``limit`` characters.

    Every visible character of ``text`` is inside a spoiler tag; only list markers sit outside.
    The first message starts with ``header`` (plain Markdown from the caller) and a newline.
    Long text splits at paragraph, then line, then sentence, then word boundaries, and only as a
    last resort inside a word, never inside an escape; each piece is wrapped on its own.
    Raises ValueError for text with nothing visible, a limit under ``MIN_LIMIT``, or a header
    that could pair with the tags after it.
    """
    _check_header(header)
    return _messages(text, header=header, limit=limit, style=_SPOILER)


def plain_messages(text: str, *, header: str = "", limit: int = DISCORD_MESSAGE_LIMIT) -> list[str]:
    """Split text that may be shown in plain sight, as ``spoiler_messages`` does, without tags.

    URLs are wrapped as ``<url>`` so they do not unfurl. Raises ValueError for blank text.
    """
    return _messages(text, header=header, limit=limit, style=_MESSAGE)


def split_plain(text: str, limit: int) -> list[str]:
    """Split spoiler-free Markdown into pieces <= ``limit`` at paragraph, line, sentence, word
    boundaries, for embed descriptions and field values. Blank text gives no pieces."""
    _check_limit(limit)
    return _pack(_paragraphs(text, _EMBED), limit=limit, header="", style=_EMBED)


def truncate(text: str, limit: int, *, ellipsis: str = "…") -> str:
    """Cut plain text to <= ``limit`` characters at a sentence or word boundary, ending with
    ``ellipsis``. Text that fits is returned unchanged. The cut never leaves a dangling escape
    backslash, and backs off before an unpaired ``**``, ``__``, ``~~``, ``||`` or backtick when
    that still leaves some text."""
    if len(text) <= limit:
        return text
    budget = limit - len(ellipsis)
    if budget < 1:
        raise ValueError(f"limit {limit} leaves no room for text before {ellipsis!r}")
    units = _explode(_strip(_units(text, _EMBED)), budget, _EMBED)
    kept = _balance(_rstrip(units[: _take(units, budget)]))
    if (len(kept) - len(kept.rstrip("\\"))) % 2:
        kept = kept[:-1].rstrip()  # a lone backslash would escape the ellipsis
    return kept + ellipsis


def _messages(text: str, *, header: str, limit: int, style: _Style) -> list[str]:
    _check_limit(limit)
    paragraphs = _paragraphs(text, style)
    if not paragraphs:
        raise ValueError("text has nothing visible to render")
    if len(header) > limit:
        raise ValueError(f"header is {len(header)} characters, over the limit of {limit}")
    return _pack(paragraphs, limit=limit, header=header, style=style)


def _check_limit(limit: int) -> None:
    if limit < MIN_LIMIT:
        raise ValueError(f"limit {limit} is below the minimum of {MIN_LIMIT}")


def _check_header(header: str) -> None:
    """Refuse a header that could pair with the markup after it.

    The header is the caller's already-safe Markdown, but a stray ``||`` in it would pair with our
    first opening tag, and an unclosed backtick would pair with an escaped one in the body (the
    lazy code rule reads raw text too) and swallow tags.
    """
    leftover = re.sub(r"`[^`\n]+`", "", header)
    leftover = re.sub(r"\|\|[^|\n]+\|\|", "", leftover)
    if "`" in leftover or "||" in leftover:
        raise ValueError("header has an unclosed code span or spoiler tag")


# --- from text to units -------------------------------------------------------------------


def _paragraphs(text: str, style: _Style) -> list[list[_Line]]:
    """Lines grouped by blank lines; a run of blank lines counts as one break."""
    paragraphs: list[list[_Line]] = []
    current: list[_Line] = []
    for raw in text.splitlines():  # every line break Unicode knows, CRLF included
        line = _line(raw, style)
        if line.units:
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def _line(raw: str, style: _Style) -> _Line:
    """A line's units; a blank line has none. Spoiler lines keep list markers out of the tag
    (extra spaces after the marker are dropped) and turn heading text bold."""
    if style.spoiler and (marker := _LIST_PREFIX.match(raw)):
        return _Line(marker[1] + " ", _rstrip(_units(raw[marker.end() :], style)))
    if style.spoiler and (heading := _HEADING.match(raw)):
        bold = _Unit("**", "")
        return _Line("", [bold, *_rstrip(_units(raw[heading.end() :], style)), bold])
    return _Line("", _rstrip(_units(raw, style)))


def _units(source: str, style: _Style, *, atoms: bool = True) -> list[_Unit]:
    """Cut a line into the smallest pieces a split may fall between, each already rendered.

    With ``atoms`` off (to cut an oversized atom), URLs and mentions become single characters,
    and a URL's scheme has its colon escaped so that no fragment of it reads as a link.
    """
    units: list[_Unit] = []
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if (
            atoms
            and char == "<"
            and (match := _WRAPPED_URL.match(source, i) or _MENTION.match(source, i))
        ):
            units.append(_Unit(match[0], match[0], _Kind.ATOM))
            i = match.end()
        elif char in "hH" and (scheme := _SCHEME.match(source, i)):
            body = _url_body(source, scheme.end())
            url = source[i : scheme.end() + len(body)]
            if atoms and body:
                units.append(_Unit(f"<{url}>" if style.wrap_urls else url, url, _Kind.ATOM))
                i += len(url)
            else:
                units.append(_Unit(scheme[0].replace(":", "\\:"), scheme[0]))
                i = scheme.end()
        elif char == "\\":
            follower = source[i + 1 : i + 2]
            if (
                follower
                and not (follower.isascii() and follower.isalnum())
                and not (follower.isspace())
            ):
                units.append(_Unit(source[i : i + 2], source[i : i + 2]))  # the author's escape
                i += 2
            else:
                # A backslash that escapes nothing. Doubled (which shows the same) inside a tag,
                # where it could escape the closing "||", and before a URL we wrap, where it would
                # escape the "<". Plain text keeps it otherwise: in a code span both would show.
                before_url = style.wrap_urls and _SCHEME.match(source, i + 1)
                double = style.spoiler or before_url
                units.append(_Unit("\\\\" if double else "\\", "\\"))
                i += 1
        elif char.isspace():
            units.append(_Unit(char, char, _Kind.SPACE))
            i += 1
        elif style.spoiler and char in _SPOILER_ESCAPED:
            units.append(_Unit("\\" + char, char))
            i += 1
        else:
            end = _cluster_end(source, i) if atoms else i + 1
            units.append(_Unit(source[i:end], source[i:end]))
            i = end
    return _escape_open_angles(units) if style.wrap_urls else units


def _escape_open_angles(units: list[_Unit]) -> list[_Unit]:
    """Escape an author's ``<`` that the ``>`` of a URL we wrap would close.

    ``<|https://x`` would otherwise become ``<\\|<https://x>``, one autolink from the first ``<``
    (Discord's rule is ``<[^: >]+:/[^ >]+>``) that shows a stray backslash.
    """
    opened: list[int] = []  # every "<" since the last space or ">": any of them could pair
    for index, unit in enumerate(units):
        if unit.kind is _Kind.ATOM and _SCHEME.match(unit.text, 1):
            for position in opened:
                units[position] = _Unit("\\<", "<")
        if unit.text == "<" and unit.kind is _Kind.TEXT:
            opened.append(index)
        elif unit.kind is _Kind.SPACE or ">" in unit.text:
            opened = []
    return units


def _url_body(source: str, start: int) -> str:
    match = _URL_BODY.match(source, start)
    body = match[0] if match else ""
    if nested := _SCHEME.search(body):
        body = body[: nested.start()]  # a second scheme starts a second URL, wrapped on its own
    while body and body[-1] in _URL_TRAIL:
        if body[-1] == ")" and body.count("(") >= body.count(")"):
            break  # a balanced parenthesis belongs to the URL (Wikipedia-style paths)
        body = body[:-1]
    return body


def _cluster_end(source: str, i: int) -> int:
    """Keep combining marks, emoji modifiers and ZWJ sequences with their base character, so a
    hard split never strands an accent at the start of a piece."""
    end = i + 1
    while end < len(source):
        char = source[end]
        if unicodedata.category(char) in ("Mn", "Mc", "Me", "Sk") and not char.isascii():
            end += 1
        elif char == _ZWJ and end + 1 < len(source) and not source[end + 1].isascii():
            end += 2
        else:
            break
    return end


def _rstrip(units: list[_Unit]) -> list[_Unit]:
    end = len(units)
    while end and units[end - 1].kind is _Kind.SPACE:
        end -= 1
    return units[:end]


def _strip(units: list[_Unit]) -> list[_Unit]:
    start = 0
    while start < len(units) and units[start].kind is _Kind.SPACE:
        start += 1
    return _rstrip(units[start:])


# --- from units to messages ---------------------------------------------------------------


def _render(prefix: str, units: list[_Unit], style: _Style) -> str:
    body = "".join(unit.text for unit in units)
    if not style.spoiler:
        return prefix + body
    stripped = body.lstrip()
    if stripped.startswith(">"):
        body = body[: len(body) - len(stripped)] + "\\" + stripped
    if body.endswith("|"):
        body += " "  # "\|||" closes early under the lazy reading; "\| ||" under none
    piece = f"{prefix}||{body}||"
    if "||" in body or "\n" in body:  # cannot happen by construction; guards future edits
        raise AssertionError(f"spoiler content would break its tag: {piece!r}")
    return piece


def _overhead(style: _Style) -> int:
    return 6 if style.spoiler else 0  # two tags, an escaped ">" and a closing pad


def _pack(paragraphs: list[list[_Line]], *, limit: int, header: str, style: _Style) -> list[str]:
    """Fill messages greedily, breaking between paragraphs where possible, then between lines,
    and splitting a line only when it cannot fit a message of its own."""
    messages: list[str] = []
    current = header
    has_body = False

    def separator(between: str) -> str:
        if not current:
            return ""
        return between if has_body else "\n"

    def fits(piece: str, between: str) -> bool:
        return len(current) + len(separator(between)) + len(piece) <= limit

    def add(piece: str, between: str) -> None:
        nonlocal current, has_body
        current += separator(between) + piece
        has_body = True

    def flush() -> None:
        nonlocal current, has_body
        messages.append(current)
        current, has_body = "", False

    for paragraph in paragraphs:
        whole = "\n".join(_render(line.prefix, line.units, style) for line in paragraph)
        if has_body and not fits(whole, "\n\n"):
            flush()
        if fits(whole, "\n\n"):
            add(whole, "\n\n")
            continue
        for index, line in enumerate(paragraph):
            between = "\n\n" if index == 0 else "\n"
            rendered = _render(line.prefix, line.units, style)
            if has_body and not fits(rendered, between):
                flush()
            if fits(rendered, between):
                add(rendered, between)
                continue
            prefix, units = line.prefix, _strip(line.units)
            while units:
                room = limit - len(current) - len(separator(between)) - len(prefix)
                room -= _overhead(style)
                count = _take(units, room)
                if count == 0 and current:
                    flush()  # only the header is here, and not even one unit fits after it
                    continue
                if count == 0:
                    smaller = _explode(units, room, style)
                    if smaller == units:
                        raise ValueError(f"limit {limit} is too small for {units[0].text!r}")
                    units = smaller
                    continue
                add(_render(prefix, _rstrip(units[:count]), style), between)
                prefix, units = "", _strip(units[count:])
                if units:
                    flush()
    if current:
        messages.append(current)
    return messages


def _take(units: list[_Unit], budget: int) -> int:
    """How many leading units make the next piece of at most ``budget`` characters.

    All of them if they fit. Otherwise the last sentence end, if that keeps at least half the
    budget; else the last word boundary; else as many units as fit (0 if not even one does).
    """
    total = fit = 0
    sentence = sentence_length = word = 0
    for index, unit in enumerate(units):
        if index and unit.kind is _Kind.SPACE and units[index - 1].kind is not _Kind.SPACE:
            word = index
            if _ends_sentence(units, index):
                sentence, sentence_length = index, total
        elif index and unit.kind is not _Kind.SPACE and units[index - 1].text in _CJK_STOP:
            sentence, sentence_length = index, total
        total += len(unit.text)
        if total > budget:
            break
        fit = index + 1
    else:
        return len(units)
    if sentence and 2 * sentence_length >= budget:
        return sentence
    return word or fit


def _ends_sentence(units: list[_Unit], end: int) -> bool:
    index = end - 1
    while index > 0 and units[index].text in _CLOSERS:
        index -= 1
    return units[index].text in _SENTENCE_END


def _explode(units: list[_Unit], budget: int, style: _Style) -> list[_Unit]:
    """Cut leading units longer than ``budget`` into characters, as far as they can be cut."""
    while units and len(units[0].text) > budget:
        smaller = _units(units[0].source, style, atoms=False)
        if len(smaller) <= 1:
            break
        units = smaller + units[1:]
    return units


def _balance(units: list[_Unit]) -> str:
    """Render the units, backing off before the last unpaired marker while text remains."""
    while True:
        # Escapes and atoms (URLs, mentions) cannot open or close a pair: blank them out.
        masked = "".join(
            "\0" * len(unit.text)
            if unit.kind is _Kind.ATOM or unit.text.startswith("\\")
            else unit.text
            for unit in units
        )
        unpaired = [masked.rfind(marker) for marker in _PAIRED if masked.count(marker) % 2]
        if not unpaired:
            break
        cut, length, kept = max(unpaired), 0, []
        for unit in units:
            length += len(unit.text)
            if length > cut:
                break
            kept.append(unit)
        kept = _rstrip(kept)
        if not kept:
            break  # the text opens with the marker: keeping it beats returning nothing
        units = kept
    return "".join(unit.text for unit in units)
