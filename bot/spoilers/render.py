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
from bisect import bisect_right
from dataclasses import dataclass
from enum import Enum, auto
from itertools import accumulate

DISCORD_MESSAGE_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_TITLE_LIMIT = 256
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000

# The smallest limit a split is guaranteed to fit: the longest list prefix (11), the two tags (4),
# an escaped ">" and a closing pad (2), and the longest unit that cannot be cut (9, "https\://").
MIN_LIMIT = 32

_SCHEME_PATTERN = r"(?i:https?://)"
_SCHEME = re.compile(_SCHEME_PATTERN)
# A URL's body ends where a second scheme starts (a second URL, wrapped on its own). Matched
# here, not by cutting a longer match afterwards: that rescanned the rest of a run of
# URLs with no space between them once per URL, quadratic in the run's length.
_URL_BODY = re.compile(rf"(?:(?!{_SCHEME_PATTERN})[^\s<>|\\`])*")
# Discord's own URL rule does not end a link on these, so neither do we.
_URL_TRAIL = frozenset(".,:;\"')]")
_LIST_PREFIX = re.compile(r"( {0,6}(?:-#|[-*]|\d{1,3}\.)) +(?=\S)")
_HEADING = re.compile(r"#{1,3} +(?=\S)")
# CJK full stop, exclamation and question marks end a sentence with no space after them.
_CJK_STOP = frozenset("\u3002\uff01\uff1f")
_SENTENCE_END = frozenset(".!?\u2026") | _CJK_STOP
_CLOSERS = frozenset("\"')]*_~\u201d\u2019")  # may follow a sentence's final stop
_ZWJ = "\u200d"
_PAIRED = ("||", "**", "__", "~~", "`")  # markup a truncation should not leave open

# The units of a line, tried in this order at each position (see _units). Only the schemes ignore
# case: "[A-Za-z]" under re.IGNORECASE would also match non-ASCII letters (the long s, the Kelvin
# sign, dotted and dotless i), while a scheme must match "\u017f" as "s", as _SCHEME does.
_TOKEN = re.compile(
    rf"(?P<url>{_SCHEME_PATTERN})"
    r"|(?P<word>[A-Za-z0-9]+)"  # cut short where needed: see _word_end
    r"|(?P<space>\s+)"
    # A URL the author wrapped, or a mention, channel, custom emoji or timestamp.
    rf"|(?P<atom><(?:{_SCHEME_PATTERN}[^\s<>|\\`]+|@[!&]?\d+|#\d+|a?:\w+:\d+|t:-?\d+(?::[A-Za-z])?)>)"
    r"|(?P<escape>\\[^0-9A-Za-z\s])"
    r"|(?P<backslash>\\)"
    r"|(?P<markup>[|`])"
    r"|(?P<char>.)",
    re.DOTALL,
)
# What a line without "<" or a ZWJ can hold that does not render as written (see _body).
# Characters that start markup, links, mentions or spoilers in literal text; ':' and '-' are
# safe mid-line, where such text always sits.
_LITERAL_SPECIAL = re.compile(r"([\\*_~`|>#\[\]<@])")
_SPOILER_SPECIAL = re.compile(rf"\\(?:[^0-9A-Za-z\s])?|[|`]|{_SCHEME_PATTERN}")
_PLAIN_SPECIAL = re.compile(rf"\\(?:[^0-9A-Za-z\s])?|{_SCHEME_PATTERN}")


class _Kind(Enum):
    SPACE = auto()  # a run of whitespace, a word boundary; dropped at the edges of a piece
    WORD = auto()  # a run of ASCII letters and digits; a hard split may fall inside it
    TEXT = auto()  # one character (with its combining marks), or an escape pair
    ATOM = auto()  # a URL or mention, kept whole unless it cannot fit a message


_SPACE, _WORD, _TEXT, _ATOM = _Kind.SPACE, _Kind.WORD, _Kind.TEXT, _Kind.ATOM
# (as rendered, as written, kind). Plain tuples: a long line that has to split makes thousands of
# units, and a tuple costs a fraction of a dataclass instance. The source cuts an oversized atom.
_Unit = tuple[str, str, _Kind]
_BOLD: _Unit = ("**", "", _TEXT)


@dataclass(frozen=True, slots=True)
class _Line:
    prefix: str  # block markup kept outside the spoiler tag
    content: str  # as written, after the prefix or heading marker
    body: str  # the content rendered, without tags
    bold: bool  # a heading: its content goes between "**"


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


def escape_inline(text: str) -> str:
    """Literal one-line text (titles, names, authors) to show as written, never as markup: on one
    line, with every character that starts markup, a link, a mention or a spoiler escaped."""
    return _LITERAL_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def spoiler_inline(text: str) -> str:
    """Literal one-line text (a title that spoils) as a single spoiler tag, to sit mid-line.

    Escaped as :func:`escape_inline` does, so no character can close the tag or turn into
    markup, and a URL's scheme is broken (``https\\://``) so nothing inside links or unfurls.
    Raises ValueError for text with nothing visible.
    """
    body = _SCHEME.sub(lambda scheme: scheme[0].replace(":", "\\:"), escape_inline(text))
    if not body:
        raise ValueError("text has nothing visible to render")
    return _render("", body, _SPOILER)


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
    cutter = _Cutter(_rstrip(_units(text, _EMBED)))
    cutter.explode(budget, _EMBED)
    kept = _balance(_rstrip(cutter.take(budget)))
    while (len(kept) - len(kept.rstrip("\\"))) % 2:
        # A lone backslash would escape the ellipsis. Dropping it and the space before it can
        # bare another one ("a\\ \\"), so go on until none is left.
        kept = kept[:-1].rstrip()
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
    # Escaped backticks (as in a tagged title) are literal, as they are in the body.
    leftover = re.sub(r"\\[\\`]", "_", header)
    leftover = re.sub(r"`[^`\n]+`", "", leftover)
    # A tag may hold single pipes (escaped ones, "\|"), never two in a row.
    leftover = re.sub(r"\|\|(?:[^|\n]|\|(?!\|))+\|\|", "", leftover)
    if "`" in leftover or "||" in leftover:
        raise ValueError("header has an unclosed code span or spoiler tag")


# --- from text to lines and units ---------------------------------------------------------


def _paragraphs(text: str, style: _Style) -> list[list[_Line]]:
    """Lines grouped by blank lines; a run of blank lines counts as one break."""
    paragraphs: list[list[_Line]] = []
    current: list[_Line] = []
    for raw in text.splitlines():  # every line break Unicode knows, CRLF included
        line = _line(raw, style)
        if line is not None:
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def _line(raw: str, style: _Style) -> _Line | None:
    """A rendered line, or None for a blank one. Spoiler lines keep list markers out of the tag
    (extra spaces after the marker are dropped) and turn heading text bold."""
    if style.spoiler and (marker := _LIST_PREFIX.match(raw)):
        content = raw[marker.end() :]
        return _Line(marker[1] + " ", content, _body(content, style), bold=False)
    if style.spoiler and (heading := _HEADING.match(raw)):
        content = raw[heading.end() :]
        return _Line("", content, f"**{_body(content, style)}**", bold=True)
    if not raw or raw.isspace():
        return None
    return _Line("", raw, _body(raw, style), bold=False)


def _line_units(line: _Line, style: _Style) -> list[_Unit]:
    """The units of a line that has to be split; their texts join up to ``line.body``."""
    units = _rstrip(_units(line.content, style))
    return [_BOLD, *units, _BOLD] if line.bold else units


def _body(source: str, style: _Style) -> str:
    """The units of ``source`` rendered and joined, without trailing whitespace.

    Most lines fit their message whole, and for those cutting units would be wasted work: here
    only the characters that do not render as written are visited. A ``<`` (its escape depends on
    the units after it) or a ZWJ (which can take the whitespace after it into a cluster, where it
    is no longer a boundary) sends the line through the units instead.
    """
    if "<" in source or _ZWJ in source:
        return "".join([text for text, _, _ in _rstrip(_units(source, style))])
    special = _SPOILER_SPECIAL if style.spoiler else _PLAIN_SPECIAL
    source = source.rstrip()
    out: list[str] = []
    pos = 0
    while match := special.search(source, pos):
        start, end = match.span()
        out.append(source[pos:start])
        token = match[0]
        if token == "\\":
            out.append(_lone_backslash(source, end, style))
        elif token[0] == "\\":
            out.append(token)  # the author's escape
        elif token in ("|", "`"):
            out.append("\\" + token)
        else:
            unit, end = _scheme_unit(source, start, end, style, atoms=True)
            out.append(unit[0])
        pos = end
    out.append(source[pos:])
    return "".join(out)


def _units(source: str, style: _Style, *, atoms: bool = True) -> list[_Unit]:
    """Cut a line into the smallest pieces a split may fall between, each already rendered.

    Letters and digits come in runs (a hard split cuts a run where it must), so a line of prose
    costs one unit per word, space and punctuation mark rather than one per character.
    With ``atoms`` off (to cut an oversized atom), URLs and mentions become single characters,
    and a URL's scheme has its colon escaped so that no fragment of it reads as a link.
    """
    units: list[_Unit] = []
    append = units.append
    n = len(source)
    tokens = _TOKEN.finditer(source)
    resumed = True
    while resumed:
        resumed = False
        for match in tokens:
            start, end = found = match.span()
            group, token = match.lastgroup, match[0]
            if group == "word":
                if end < n and (source[end] == ":" or not source[end].isascii()):
                    end = _word_end(source, start, end)
                    token = source[start:end]
                if end > start:
                    append((token, token, _WORD))
                else:  # one letter, which may carry combining marks
                    end = _cluster_end(source, start) if atoms else start + 1
                    append((source[start:end], source[start:end], _TEXT))
            elif group == "space":
                append((token, token, _SPACE))
            elif group == "url":
                unit, end = _scheme_unit(source, start, end, style, atoms=atoms)
                append(unit)
            elif group == "atom" and atoms:
                append((token, token, _ATOM))
            elif group == "escape":
                append((token, token, _TEXT))  # the author's escape
            elif group == "backslash":
                append((_lone_backslash(source, end, style), token, _TEXT))
            elif group == "markup" and style.spoiler:
                append(("\\" + token, token, _TEXT))
            else:  # one character (a "<" that opens no atom too), and its combining marks
                end = start + 1
                if atoms and end < n and not source[end].isascii():
                    end = _cluster_end(source, start)
                append((source[start:end], source[start:end], _TEXT))
            if end != found[1]:  # the unit is not the token the pattern found: go on after it
                tokens = _TOKEN.finditer(source, end)
                resumed = True
                break
    return _escape_open_angles(units) if style.wrap_urls and "<" in source else units


def _word_end(source: str, start: int, end: int) -> int:
    """Where the run of letters and digits ``start:end`` ends as a unit: before a scheme that
    starts in it (so the URL is found), else before its last letter when a non-ASCII character
    follows (which may be a combining mark belonging to that letter)."""
    # The run can end in "https" or "http" before a colon, or in "http" before a long s (which
    # the scheme reads as "s"); a scheme cannot start the run, or it would have matched first.
    for back in (5, 4):
        if end - back > start and _SCHEME.match(source, end - back):
            return end - back
    return end - 1 if not source[end].isascii() else end


def _scheme_unit(
    source: str, start: int, end: int, style: _Style, *, atoms: bool
) -> tuple[_Unit, int]:
    """The unit for a scheme at ``start:end`` (a whole URL, or the scheme escaped), and its end."""
    scheme = source[start:end]
    body = _url_body(source, end)
    if atoms and body:
        url = scheme + body
        return (f"<{url}>" if style.wrap_urls else url, url, _ATOM), end + len(body)
    return (scheme.replace(":", "\\:"), scheme, _TEXT), end


def _lone_backslash(source: str, after: int, style: _Style) -> str:
    """A backslash that escapes nothing, as rendered.

    Doubled (which shows the same) inside a tag, where it could escape the closing "||", and before
    a URL we wrap, where it would escape the "<". Plain text keeps it otherwise: in a code span
    both would show.
    """
    double = style.spoiler or (style.wrap_urls and _SCHEME.match(source, after))
    return "\\\\" if double else "\\"


def _escape_open_angles(units: list[_Unit]) -> list[_Unit]:
    """Escape an author's ``<`` that could open an autolink.

    Discord reads ``<[^: >]+:/[^ >]+>`` as an autolink and shows its text raw, backslashes
    included. So ``<|https://x`` would become ``<\\|<https://x>``, one autolink from the first
    ``<`` to the ``>`` of the URL we wrap; ``<https://>`` would become ``<https\\://>`` once we
    escape the bare scheme's colon; and ``<h•ttps://`>`` (any letters before ``:/``) shows the
    backslash we put before its backtick. Any ``<`` followed by ``:/`` before a space or a
    ``>`` (a tab or a newline does not stop the rule) is escaped, which shows the same ``<``
    and opens nothing.
    """
    opened: list[int] = []  # every "<" since the last space or ">": any of them could pair
    after_colon = False  # the text so far ends in ":" (a "/" next completes ":/")
    for index, (text, source, kind) in enumerate(units):
        if ":/" in source or (after_colon and source.startswith("/")):
            for position in opened:
                units[position] = ("\\<", "<", _TEXT)
            opened = []
        after_colon = source.endswith(":")
        if text == "<" and kind is _TEXT:
            opened.append(index)
        elif " " in source or ">" in text:
            # Only a plain space ends the run: the rule's [^: >] takes tabs and newlines.
            opened = []
    return units


def _url_body(source: str, start: int) -> str:
    match = _URL_BODY.match(source, start)
    end = match.end() if match else start
    opens = closes = -1  # parentheses in source[start:end], counted when first needed
    while end > start and source[end - 1] in _URL_TRAIL:
        if source[end - 1] == ")":
            if opens < 0:
                opens, closes = source.count("(", start, end), source.count(")", start, end)
            if opens >= closes:
                break  # a balanced parenthesis belongs to the URL (Wikipedia-style paths)
            closes -= 1
        end -= 1
    return source[start:end]


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
    while end and units[end - 1][2] is _SPACE:
        end -= 1
    return units[:end]


# --- from units to messages ---------------------------------------------------------------


def _render(prefix: str, body: str, style: _Style) -> str:
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
        lines = [_render(line.prefix, line.body, style) for line in paragraph]
        whole = "\n".join(lines)
        if has_body and not fits(whole, "\n\n"):
            flush()
        if fits(whole, "\n\n"):
            add(whole, "\n\n")
            continue
        for index, (line, rendered) in enumerate(zip(paragraph, lines, strict=True)):
            between = "\n\n" if index == 0 else "\n"
            if has_body and not fits(rendered, between):
                flush()
            if fits(rendered, between):
                add(rendered, between)
                continue
            prefix, cutter = line.prefix, _Cutter(_line_units(line, style))
            while not cutter.done:
                room = limit - len(current) - len(separator(between)) - len(prefix)
                room -= _overhead(style)
                piece = cutter.take(room)
                if not piece and current:
                    flush()  # only the header is here, and not even one unit fits after it
                    continue
                if not piece:
                    front = cutter.front
                    if not cutter.explode(room, style):
                        raise ValueError(f"limit {limit} is too small for {front!r}")
                    continue
                body = "".join([text for text, _, _ in _rstrip(piece)])
                add(_render(prefix, body, style), between)
                prefix = ""
                if not cutter.done:
                    flush()
    if current:
        messages.append(current)
    return messages


class _Cutter:
    """Cuts a line's units into pieces, front to back.

    The offsets of the units and the boundaries a piece may end at are worked out once per line,
    so choosing a piece is a few binary searches rather than a walk over the units it holds.
    """

    def __init__(self, units: list[_Unit]) -> None:
        self._reset(units)

    def _reset(self, units: list[_Unit]) -> None:
        self._units = units
        texts = [text for text, _, _ in units]
        kinds = [kind for _, _, kind in units]
        # Where each unit starts, and the end of the last.
        self._ends = [0, *accumulate(map(len, texts))]
        # Word boundaries: a space after something else.
        self._words = [
            index
            for index, kind in enumerate(kinds)
            if kind is _SPACE and index and kinds[index - 1] is not _SPACE
        ]
        # Sentence boundaries, each with the unit holding its stop. A boundary only counts for a
        # piece that starts at or before that stop (the stop must be inside the piece).
        stops: list[tuple[int, int]] = []
        for word in self._words:
            stop = word - 1
            while stop >= 0 and texts[stop] in _CLOSERS:
                stop -= 1
            if stop >= 0 and texts[stop] in _SENTENCE_END:
                stops.append((word, stop))
        if not _CJK_STOP.isdisjoint(texts):
            stops += [
                (index, index - 1)
                for index in range(1, len(units))
                if texts[index - 1] in _CJK_STOP and kinds[index] is not _SPACE
            ]
        stops.sort()
        self._stops = [boundary for boundary, _ in stops]
        self._stop_at = [stop for _, stop in stops]
        self._start = 0
        self._skip_spaces()

    @property
    def done(self) -> bool:
        return self._start == len(self._units)

    @property
    def front(self) -> str:
        return self._units[self._start][0]

    def take(self, budget: int) -> list[_Unit]:
        """The next piece, of at most ``budget`` characters.

        All that is left if it fits. Otherwise up to the last sentence end, if that keeps at least
        half the budget; else the last word boundary; else as much as fits, cutting a run of
        letters if need be (nothing if not even one character fits).
        """
        units, start, ends = self._units, self._start, self._ends
        reach = ends[start] + budget  # where the piece must end by
        if ends[-1] <= reach:
            self._start = len(units)
            return units[start:]
        # The first unit that does not fit. Boundaries up to and including it may end the piece.
        over = max(bisect_right(ends, reach, start) - 1, start)
        sentence = self._last_stop(start, over)
        last_word = bisect_right(self._words, over) - 1
        word = self._words[last_word] if last_word >= 0 else 0
        if sentence and 2 * (ends[sentence] - ends[start]) >= budget:
            end = sentence
        elif word > start:
            end = word
        else:
            end = over
            room = reach - ends[over]
            text, _, kind = units[over]
            if kind is _WORD and room > 0:
                head, tail = text[:room], text[room:]
                units[over] = (tail, tail, _WORD)
                ends[over] += room
                self._start = over
                return [*units[start:over], (head, head, _WORD)]
        self._start = end
        self._skip_spaces()
        return units[start:end]

    def _last_stop(self, start: int, over: int) -> int:
        """The last sentence boundary after ``start`` and up to ``over`` (0 if there is none)."""
        index = bisect_right(self._stops, over) - 1
        while index >= 0 and self._stops[index] > start:
            if self._stop_at[index] >= start:
                return self._stops[index]
            index -= 1
        return 0

    def explode(self, budget: int, style: _Style) -> bool:
        """Cut the front unit into characters while it is longer than ``budget``; False if it
        cannot be cut."""
        rest = self._units[self._start :]
        smaller = _explode(rest, budget, style)
        if smaller is rest:
            return False
        self._reset(smaller)
        return True

    def _skip_spaces(self) -> None:
        while self._start < len(self._units) and self._units[self._start][2] is _SPACE:
            self._start += 1


def _explode(units: list[_Unit], budget: int, style: _Style) -> list[_Unit]:
    """Cut leading units longer than ``budget`` into characters, as far as they can be cut.
    Returns ``units`` itself if nothing could be cut."""
    while units and len(units[0][0]) > budget:
        smaller = _units(units[0][1], style, atoms=False)
        if len(smaller) <= 1:
            break
        units = smaller + units[1:]
    return units


def _balance(units: list[_Unit]) -> str:
    """Render the units, backing off before the last unpaired marker while text remains."""
    while True:
        # Escapes and atoms (URLs, mentions) cannot open or close a pair: blank them out.
        masked = "".join(
            "\0" * len(text) if kind is _ATOM or text.startswith("\\") else text
            for text, _, kind in units
        )
        unpaired = [masked.rfind(marker) for marker in _PAIRED if masked.count(marker) % 2]
        if not unpaired:
            break
        cut, length, kept = max(unpaired), 0, []
        for unit in units:
            length += len(unit[0])
            if length > cut:
                break
            kept.append(unit)
        kept = _rstrip(kept)
        if not kept:
            break  # the text opens with the marker: keeping it beats returning nothing
        units = kept
    return "".join(text for text, _, _ in units)
