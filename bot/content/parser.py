"""Parse and validate the content directory: show files, reviews and critic rankings.

Pure: nothing here touches storage or the network, and the only I/O is reading the files
it is given (or, for :func:`scan_content_dir`, listing the content directory). Every
problem becomes a :class:`ContentProblem` naming the file and, where it can be found, the
line, so an editor can fix a file without reading Python.

Layout of the content directory (paths below are relative to it):

- ``shows/<slug>.toml``: one show and its episodes.
- ``reviews/<slug>/sSSeEE.md``: TOML front matter between ``+++`` lines, the spoiler-free
  review, then an optional ``## Ending explained`` section holding the spoilers.
- ``rankings/<slug>.toml``: one critic's ranking of a show's episodes.

A file with any error yields no model at all: callers never see a half-valid show.
"""

from __future__ import annotations

import difflib
import errno
import functools
import hashlib
import math
import os
import re
import stat
import tomllib
import zoneinfo
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Literal, NamedTuple

from bot.content.models import (
    CriticRanking,
    Episode,
    RankingOrder,
    Review,
    Show,
    episode_code,
)

Severity = Literal["error", "warning"]
FileKind = Literal["show", "review", "ranking"]

SHOWS_DIR = "shows"
REVIEWS_DIR = "reviews"
RANKINGS_DIR = "rankings"

VERDICT_MAX_CHARS = 256
# Content limits (the README lists them). A review's spoiler-free text is shown in one
# embed, whose description holds 4,096 characters; an ending is posted as messages of up to
# 2,000, so this one is at most about a dozen. No file may be bigger than MAX_FILE_BYTES,
# which is never read past.
REVIEW_MAX_CHARS = 4000
ENDING_MAX_CHARS = 20_000
MAX_FILE_BYTES = 1 << 20

# Open without waiting for a writer if the path is a named pipe (Windows has no pipes there).
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_REVIEW_STEM = re.compile(r"^s(\d+)e(\d+)$")
# reviews/<slug>/<code>.md with the code exactly as episode_code() writes it.
_CANONICAL_REVIEW = re.compile(
    r"reviews/([a-z0-9]+(?:-[a-z0-9]+)*)/(s(?:\d{2}|[1-9]\d{2,})e(?:\d{2}|[1-9]\d{2,}))\.md"
)
# Rankings accept "s07e06", "S7E6", "s7e06"...; stored and compared in canonical form.
_LOOSE_CODE = re.compile(r"^\s*s(\d+)\s*e(\d+)\s*$", re.IGNORECASE)
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)$")
# The whole of one line (see _find_ending_heading).
_ENDING_HEADING = re.compile(r"[ \t]*##[ \t]+ending[ \t]+explained[ \t]*#*[ \t]*", re.IGNORECASE)
# Anything that looks like the ending heading but is not exactly it (wrong level, a colon,
# bold text...). Left alone, its spoilers would be served as the spoiler-free review.
_NEAR_ENDING_HEADING = re.compile(
    r"^[ \t]*(?:(?:#{1,6}|\*\*|__)[ \t]*ending[ \t]*explained\b.*"
    r"|ending[ \t]*explained[ \t:.*_]*)$",
    re.IGNORECASE,
)
_FRONT_MATTER_FENCE = "+++"


@dataclass(frozen=True)
class ContentProblem:
    """One thing wrong (or worth a look) in a content file."""

    path: str  # relative to the content directory, '/' separated
    line: int | None
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


class ContentFile(NamedTuple):
    """A content file identified by its path: what it holds and which rows it owns.

    A named tuple: every sync builds one per file on disk (20,000 at full scale), and a
    tuple costs a third of a frozen dataclass to build.
    """

    rel: str
    kind: FileKind
    slug: str
    code: str | None = None  # reviews only: the canonical episode code from the file name

    @property
    def episode_key(self) -> str:
        if self.code is None:
            raise ValueError(f"{self.rel} is not a review file")
        return f"{self.slug}/{self.code}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_file(path: Path | str) -> bytes:
    """A file's bytes, with plain os calls; OSError for anything that is not a regular file
    of at most ``MAX_FILE_BYTES``.

    ``Path.read_bytes`` goes through the buffered io stack and costs about twice as much per
    file; with tens of thousands of small reviews hashed on every start, that is most of the
    time an unchanged sync takes. Opened without blocking, so a named pipe put where a
    file was is refused at once instead of waiting forever for a writer.
    """
    fd = os.open(path, os.O_RDONLY | _O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe, socket or device)")
        chunks = []
        size = 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise OSError(errno.EFBIG, _too_big(max(size, info.st_size)))
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_big(size: int) -> str:
    return (
        f"the file is {size:,} bytes, over the {MAX_FILE_BYTES:,} a content file may hold "
        "(see the content limits in the README)"
    )


def classify(rel: str) -> ContentFile | ContentProblem | None:
    """Say what a path (relative to the content directory) is.

    Returns a :class:`ContentFile` for a well-named content file, a problem for a file that
    sits where content goes but is named wrongly, and ``None`` for anything that is not
    content at all (the database file, hidden files, a README at the top level...).
    """
    # Fast path for the common case, tens of thousands of well-named reviews.
    canonical = _CANONICAL_REVIEW.fullmatch(rel)
    if canonical:
        return ContentFile(rel, "review", canonical.group(1), canonical.group(2))
    parts = rel.split("/")
    if any(part.startswith(".") for part in parts):
        return None  # editors' swap and backup files, .gitkeep, .DS_Store
    top = parts[0]
    if top in (SHOWS_DIR, RANKINGS_DIR):
        kind: FileKind = "show" if top == SHOWS_DIR else "ranking"
        if len(parts) != 2 or not parts[1].endswith(".toml"):
            return ContentProblem(
                rel, None, f"ignored: only <slug>.toml files belong in {top}/", "warning"
            )
        slug = parts[1].removesuffix(".toml")
        if not _SLUG.match(slug):
            return ContentProblem(rel, None, _bad_slug_message(slug))
        return ContentFile(rel, kind, slug)
    if top == REVIEWS_DIR:
        if len(parts) != 3 or not parts[2].endswith(".md"):
            return ContentProblem(
                rel, None, "ignored: reviews belong in reviews/<show-slug>/sSSeEE.md", "warning"
            )
        slug, stem = parts[1], parts[2].removesuffix(".md")
        if not _SLUG.match(slug):
            return ContentProblem(rel, None, _bad_slug_message(slug))
        match = _REVIEW_STEM.match(stem)
        if match is None:
            return ContentProblem(
                rel, None, "review files are named by episode code, like s07e06.md"
            )
        code = episode_code(int(match.group(1)), int(match.group(2)))
        if code != stem:
            return ContentProblem(rel, None, f"rename this file to {code}.md")
        return ContentFile(rel, "review", slug, code)
    return None


def _bad_slug_message(slug: str) -> str:
    return (
        f"{slug!r} is not a valid slug: use lowercase letters, digits and single hyphens, "
        "like 'black-mirror'"
    )


class Scan(NamedTuple):
    """What listing the content directory found."""

    files: list[ContentFile]  # well-named content files, sorted
    problems: list[ContentProblem]  # misnamed files, and what could not be listed
    # Paths (files, or folders and everything under them) that could not be seen: what was
    # loaded from them before is not deleted, it keeps serving.
    blocked: list[str]


def scan_content_dir(content_dir: Path) -> Scan:
    """List the content files under ``content_dir``; what can't be listed is a problem."""
    scan = Scan([], [], [])
    if not os.path.isdir(content_dir):
        scan.problems.append(
            ContentProblem(
                ".",
                None,
                f"the content directory {content_dir} is missing or not a folder: nothing was "
                "loaded or removed (set CONTENT_DIR in .env)",
            )
        )
        scan.blocked.append("")
        return scan
    visited: set[tuple[int, int]] = set()
    for sub in (SHOWS_DIR, REVIEWS_DIR, RANKINGS_DIR):
        rels: list[str] = []
        _walk(os.path.join(content_dir, sub), sub, rels, scan, visited)
        rels.sort()
        for rel in rels:
            found = classify(rel)
            if isinstance(found, ContentFile):
                scan.files.append(found)
            elif isinstance(found, ContentProblem):
                scan.problems.append(found)
    return scan


def is_blocked(rel: str, blocked: Collection[str]) -> bool:
    """Whether ``rel`` is, or lies under, a path the scan could not see."""
    return any(b == "" or rel == b or rel.startswith(b + "/") for b in blocked)


_SKIPPED = "skipped; what was loaded from it before keeps serving"


def _walk(
    directory: str, rel_prefix: str, found: list[str], scan: Scan, visited: set[tuple[int, int]]
) -> None:
    """Every regular file below ``directory`` into ``found`` as a '/' separated path.

    ``os.scandir`` because its entries carry their type, so listing tens of thousands of
    reviews needs no stat call per file. Hidden entries (.git, editors' files) are skipped.
    Whatever cannot be listed or is not a file (a folder that can't be read, a symlink loop,
    a pipe, a folder named like a file) is a problem and is added to ``scan.blocked``.
    """
    try:
        info = os.stat(directory)
        if (info.st_dev, info.st_ino) in visited:
            scan.problems.append(
                ContentProblem(
                    rel_prefix, None, f"a symlink loop: this folder is already read ({_SKIPPED})"
                )
            )
            scan.blocked.append(rel_prefix)
            return
        visited.add((info.st_dev, info.st_ino))
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return  # no such folder: nothing in it
    except OSError as exc:
        scan.problems.append(ContentProblem(rel_prefix, None, _fault("folder", exc)))
        scan.blocked.append(rel_prefix)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        rel = f"{rel_prefix}/{entry.name}"
        try:
            is_dir = entry.is_dir()
            is_file = not is_dir and entry.is_file()
            dangling = not (is_dir or is_file) and entry.is_symlink()
        except OSError as exc:  # a symlink to itself (ELOOP), a folder we may not stat
            scan.problems.append(ContentProblem(rel, None, _fault("entry", exc)))
            scan.blocked.append(rel)
            continue
        if is_file:
            found.append(rel)
        elif is_dir:
            if isinstance(classify(rel), ContentFile):
                scan.problems.append(
                    ContentProblem(rel, None, f"this is a folder, not a file ({_SKIPPED})")
                )
                scan.blocked.append(rel)
            else:
                _walk(entry.path, rel, found, scan, visited)
        else:
            what = (
                "a symlink to nothing"
                if dangling
                else "not a regular file (a pipe, socket or device)"
            )
            scan.problems.append(ContentProblem(rel, None, f"{what} ({_SKIPPED})"))
            scan.blocked.append(rel)


def _fault(what: str, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:
        reason = "a symlink loop"
    return f"cannot read this {what}: {reason} ({_SKIPPED})"


# --------------------------------------------------------------------------------------
# Locating lines. tomllib reports no positions for values, so a light scan of the text
# finds the line of a key within the root table or the N-th [[array]] table. It ignores
# multi-line strings and exotic layouts; when it cannot find a key it returns the nearest
# useful line (the table header) or None, never a wrong guess from another table.
# --------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


class _TomlLines:
    """Line lookups in one TOML text; built lazily, since only files with errors need them."""

    def __init__(self, text: str, first_line: int = 1) -> None:
        self.text = text
        self.first_line = first_line  # file line number of the text's first line

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @functools.cached_property
    def _headers(self) -> list[tuple[int, str, bool]]:
        """(index, name, is_array) of every table header, in order."""
        headers = []
        for index, line in enumerate(self.lines):
            match = _HEADER.match(line)
            if match:
                name = match.group(2).replace('"', "").replace("'", "").replace(" ", "")
                headers.append((index, name, match.group(1) == "[["))
        return headers

    @functools.cached_property
    def _array_tables(self) -> dict[str, list[int]]:
        """Table name -> positions in ``_headers`` of its ``[[name]]`` headers."""
        tables: dict[str, list[int]] = defaultdict(list)
        for position, (_, name, is_array) in enumerate(self._headers):
            if is_array:
                tables[name].append(position)
        return tables

    def _line_no(self, index: int) -> int:
        return self.first_line + index

    def _span(self, table: str | None, nth: int) -> tuple[int, int] | None:
        """Line index range (start, end) of the root table or the nth ``[[table]]``."""
        headers = self._headers
        if table is None:
            return 0, headers[0][0] if headers else len(self.lines)
        positions = self._array_tables.get(table, [])
        if nth >= len(positions):
            return None
        position = positions[nth]
        end = headers[position + 1][0] if position + 1 < len(headers) else len(self.lines)
        return headers[position][0], end

    def header_line(self, table: str, nth: int) -> int | None:
        span = self._span(table, nth)
        return None if span is None else self._line_no(span[0])

    def key_line(self, key: str, table: str | None = None, nth: int = 0) -> int | None:
        """Line of ``key = ...`` in the root table or the nth ``[[table]]``.

        Falls back to the table's header line (for a missing key in an array table), or
        None for a missing root key.
        """
        span = self._span(table, nth)
        if span is None:
            return None
        escaped = re.escape(key)
        pattern = re.compile(rf"^\s*(?:{escaped}|\"{escaped}\"|'{escaped}')\s*=")
        for index in range(*span):
            if pattern.match(self.lines[index]):
                return self._line_no(index)
        return None if table is None else self._line_no(span[0])

    def literal_line(self, after_line: int | None, literal: str, occurrence: int = 0) -> int | None:
        """Line of the ``occurrence``-th quoted ``literal`` at or after file line ``after_line``."""
        if after_line is None:
            return None
        quoted = re.compile(rf"[\"']{re.escape(literal)}[\"']")
        seen = 0
        for index in range(after_line - self.first_line, len(self.lines)):
            for _ in quoted.finditer(self.lines[index]):
                if seen == occurrence:
                    return self._line_no(index)
                seen += 1
        return after_line


def _decode(data: bytes, rel: str) -> tuple[str | None, list[ContentProblem]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [ContentProblem(rel, line, "the file is not valid UTF-8: save it as UTF-8")]
    return text.removeprefix("\ufeff"), []


# --------------------------------------------------------------------------------------
# A fast path for plain TOML. tomllib is pure Python: parsing the front matter of 20,000
# reviews and 200 show files with it was a quarter of a cold load. Content files are nearly
# always written one statement per line, ``key = value`` with a bare key and a plain value,
# plus ``[[table]]`` headers. _plain_toml parses exactly that subset, and returns None for
# anything else (an escape in a string, a multi-line array, a dotted key, a duplicate key,
# a value it does not know...): the caller then runs tomllib, which also words the errors
# and finds their lines. For every text it accepts, it returns what tomllib.loads returns
# (tests/test_content_parser.py compares the two on generated documents).
# --------------------------------------------------------------------------------------

# Control characters TOML allows in no string and no comment (a tab is allowed). Lines
# never hold a '\n': the text is split on it.
_CTRL = r"\x00-\x08\x0a-\x1f\x7f"
_BASIC = rf'"[^"\\{_CTRL}]*"'  # a basic string without escapes
_LITERAL = rf"'[^'{_CTRL}]*'"
_STRING_ITEM = re.compile(rf'"([^"\\{_CTRL}]*)"|\'([^\'{_CTRL}]*)\'')
_PLAIN_LINE = re.compile(
    r"[ \t]*(?:"
    r"\[\[[ \t]*(?P<table>[A-Za-z0-9_-]+)[ \t]*\]\]"
    r"|(?P<key>[A-Za-z0-9_-]+)[ \t]*=[ \t]*(?:"
    rf'"(?P<basic>[^"\\{_CTRL}]*)"'
    rf"|'(?P<literal>[^'{_CTRL}]*)'"
    # Decimal numbers only, short enough that int() never meets its digit limit.
    r"|(?P<int>[+-]?(?:0|[1-9][0-9]{0,17}))(?P<frac>\.[0-9]{1,17})?"
    r"|(?P<bool>true|false)"
    r"|(?P<date>(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2}))"
    r"(?:[Tt](?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})(?:\.(?P<us>[0-9]{1,6}))?"
    r"(?:(?P<zulu>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))?)?"
    rf"|(?P<array>\[)[ \t]*(?P<items>(?:{_BASIC}|{_LITERAL})"
    rf"(?:[ \t]*,[ \t]*(?:{_BASIC}|{_LITERAL}))*[ \t]*,?[ \t]*)?\]"
    r"))?"
    rf"[ \t]*(?:#[^{_CTRL}]*)?"
)


def _plain_value(match: re.Match[str]) -> object:
    """The value of a key line _PLAIN_LINE matched; raises ValueError if tomllib would
    refuse it (an impossible date, an offset out of range)."""
    if match["basic"] is not None:
        return match["basic"]
    if match["literal"] is not None:
        return match["literal"]
    if match["int"] is not None:
        if match["frac"] is not None:
            return float(match["int"] + match["frac"])
        return int(match["int"])
    if match["bool"] is not None:
        return match["bool"] == "true"
    if match["array"] is not None:
        items = match["items"] or ""
        return [basic or literal for basic, literal in _STRING_ITEM.findall(items)]
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    if match["h"] is None:
        return date(year, month, day)
    offset: tzinfo | None = None
    if match["zulu"] is not None:
        offset = UTC
    elif match["sign"] is not None:
        offset = _utc_offset(match["sign"], match["oh"], match["om"])
    return datetime(
        year,
        month,
        day,
        int(match["h"]),
        int(match["mi"]),
        int(match["s"]),
        int(match["us"].ljust(6, "0")) if match["us"] else 0,
        tzinfo=offset,
    )


@functools.cache
def _utc_offset(sign: str, hours: str, minutes: str) -> tzinfo:
    """A fixed offset; cached, as a show file repeats the same one for every episode."""
    if int(hours) > 23 or int(minutes) > 59:  # tomllib's limits, tighter than timedelta's
        raise ValueError("offset out of range")
    factor = 1 if sign == "+" else -1
    return dt_timezone(timedelta(hours=factor * int(hours), minutes=factor * int(minutes)))


def _plain_toml(text: str) -> dict[str, object] | None:
    """``tomllib.loads(text)`` for plain TOML (see above), or None to say "use tomllib"."""
    root: dict[str, object] = {}
    arrays: dict[str, list[dict[str, object]]] = {}  # the root keys [[table]] headers made
    table = root
    # tomllib reads "\r\n" as a newline; a lone "\r" fails _PLAIN_LINE (a control char).
    for line in text.replace("\r\n", "\n").split("\n"):
        match = _PLAIN_LINE.fullmatch(line)
        if match is None:
            return None
        name = match["table"]
        if name is not None:
            if name not in arrays:
                if name in root:
                    return None  # tomllib refuses to turn a value into an array of tables
                root[name] = arrays[name] = []
            table = {}
            arrays[name].append(table)
            continue
        key = match["key"]
        if key is None:
            continue  # a blank or comment line
        if key in table:
            return None  # a duplicate: tomllib reports it
        try:
            table[key] = _plain_value(match)
        except ValueError:
            return None
    return root


def _load_toml(
    text: str, rel: str, first_line: int = 1
) -> tuple[dict[str, object] | None, list[ContentProblem]]:
    """tomllib.loads, with its error turned into a problem on the right line."""
    plain = _plain_toml(text)
    if plain is not None:
        return plain, []
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        line: int | None = None
        position = _TOML_POSITION.search(message)
        if position:
            line = first_line - 1 + int(position.group(1))
            reason = message[: position.start()]
            detail = f"{reason} (column {position.group(2)})"
        else:
            at_end = _TOML_AT_END.search(message)
            if at_end:
                line = first_line - 1 + max(1, len(text.splitlines()))
                message = message[: at_end.start()] + " at the end of the file"
            detail = message
        hint = ""
        if "Invalid date or datetime" in message:
            hint = ": dates look like 2025-04-10, times like 2025-04-10T21:00:00Z"
        return None, [ContentProblem(rel, line, f"not valid TOML: {detail}{hint}")]


def _has_errors(problems: Iterable[ContentProblem]) -> bool:
    return any(p.severity == "error" for p in problems)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text_field(value: object) -> str | None:
    """A non-empty single string value, stripped; None if it is anything else."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _unknown_keys(table: Mapping[str, object], known: Iterable[str]) -> list[str]:
    allowed = set(known)
    return [key for key in table if key not in allowed]


def _timezone_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "'timezone' must be an IANA time zone name like 'Europe/London'"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        by_lower = {zone.lower(): zone for zone in zoneinfo.available_timezones()}
        close = difflib.get_close_matches(name.lower(), by_lower, n=1)
        suggestion = f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
        return (
            f"unknown timezone {name!r}{suggestion}: use an IANA name like 'Europe/London' "
            "or 'America/New_York'"
        )
    return None


def release_instant(value: date | datetime, timezone: str) -> datetime:
    """The UTC instant of a ``released`` value.

    A date alone means midnight at the start of that day in the show's time zone, so the
    same date lands on a different UTC hour in summer and winter. Whole seconds only,
    because storage keeps Unix seconds and a reloaded episode must equal the parsed one.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a local datetime has no instant")
        instant = value
    else:
        instant = datetime.combine(value, time(0), tzinfo=zoneinfo.ZoneInfo(timezone))
    return instant.astimezone(UTC).replace(microsecond=0)


# --------------------------------------------------------------------------------------
# Shows
# --------------------------------------------------------------------------------------

_SHOW_KEYS = ("title", "network", "timezone", "episodes")
_EPISODE_KEYS = ("season", "number", "title", "released", "aliases")


def parse_show(path: Path, rel: str) -> tuple[Show | None, list[ContentProblem]]:
    """Parse ``shows/<slug>.toml`` (the slug is the file's stem)."""
    return parse_show_bytes(read_file(path), rel)


def _open_named_toml(
    data: bytes, rel: str, known_keys: Collection[str]
) -> tuple[str, dict[str, object], _TomlLines, list[ContentProblem]] | list[ContentProblem]:
    """Shared start of show and ranking files: the slug from the file name, decoding, TOML,
    and warnings for unknown keys. Returns the problems alone when the file can't be read."""
    slug = Path(rel).stem
    if not _SLUG.match(slug):
        return [ContentProblem(rel, None, _bad_slug_message(slug))]
    text, problems = _decode(data, rel)
    if text is None:
        return problems
    doc, problems = _load_toml(text, rel)
    if doc is None:
        return problems
    lines = _TomlLines(text)
    problems.extend(
        ContentProblem(rel, lines.key_line(key), f"unknown key {key!r} (ignored)", "warning")
        for key in _unknown_keys(doc, known_keys)
    )
    return slug, doc, lines, problems


def parse_show_bytes(data: bytes, rel: str) -> tuple[Show | None, list[ContentProblem]]:
    opened = _open_named_toml(data, rel, _SHOW_KEYS)
    if isinstance(opened, list):
        return None, opened
    slug, doc, lines, problems = opened

    def error(message: str, line: int | None) -> None:
        problems.append(ContentProblem(rel, line, message))

    title = _text_field(doc.get("title"))
    if title is None:
        error(
            "'title' must be the show's name, like title = \"Black Mirror\"",
            lines.key_line("title"),
        )
    network = _text_field(doc.get("network"))
    if network is None:
        error(
            "'network' must be a non-empty string, like network = \"Netflix\"",
            lines.key_line("network"),
        )
    timezone = doc.get("timezone")
    tz_problem = _timezone_problem(timezone)
    if tz_problem:
        error(tz_problem, lines.key_line("timezone"))

    raw_episodes = doc.get("episodes", [])
    if not isinstance(raw_episodes, list) or not all(isinstance(e, dict) for e in raw_episodes):
        error("'episodes' must be a list of [[episodes]] tables", lines.key_line("episodes"))
        raw_episodes = []
    elif not raw_episodes:
        problems.append(ContentProblem(rel, None, "no [[episodes]] yet", "warning"))

    episodes: list[Episode] = []
    first_seen: dict[tuple[int, int], int] = {}  # (season, number) -> index of its table
    for index, raw in enumerate(raw_episodes):
        episode = _parse_episode(
            raw,
            index,
            rel,
            slug,
            title or "",
            timezone if tz_problem is None and isinstance(timezone, str) else None,
            lines,
            problems,
        )
        # Duplicates are found from the raw numbers, so an episode with another error
        # still counts as a first listing.
        season, number = raw.get("season"), raw.get("number")
        if (
            _is_int(season)
            and _is_int(number)
            and isinstance(season, int)
            and isinstance(number, int)
        ):
            where = (season, number)
            if where in first_seen:
                earlier = lines.header_line("episodes", first_seen[where])
                also = f" (first listed on line {earlier})" if earlier is not None else ""
                error(
                    f"episode {episode_code(*where)} is listed twice{also}",
                    lines.header_line("episodes", index),
                )
                continue
            first_seen[where] = index
        if episode is not None:
            episodes.append(episode)

    if _has_errors(problems) or title is None or network is None or not isinstance(timezone, str):
        return None, problems
    episodes.sort(key=lambda e: (e.season, e.number))
    return Show(slug, title, network, timezone, tuple(episodes)), problems


def _parse_episode(
    raw: dict[str, object],
    index: int,
    rel: str,
    slug: str,
    show_title: str,
    timezone: str | None,
    lines: _TomlLines,
    problems: list[ContentProblem],
) -> Episode | None:
    """One [[episodes]] table; appends its problems and returns None if it has errors."""
    problems_before = len(problems)

    def line(key: str) -> int | None:
        return lines.key_line(key, "episodes", index)

    season, number = raw.get("season"), raw.get("number")
    season_ok = _is_int(season) and isinstance(season, int) and season >= 0
    number_ok = _is_int(number) and isinstance(number, int) and number >= 1
    if season_ok and number_ok and isinstance(season, int) and isinstance(number, int):
        label = f"episode {episode_code(season, number)}"
    else:
        label = f"episode #{index + 1}"

    def error(message: str, key: str) -> None:
        problems.append(ContentProblem(rel, line(key), f"{label}: {message}"))

    if not season_ok:
        error(f"'season' must be a whole number, 0 for specials, got {season!r}", "season")
    if not number_ok:
        error(f"'number' must be a whole number from 1, got {number!r}", "number")
    title = _text_field(raw.get("title"))
    if title is None:
        error("'title' must be the episode's name (a non-empty string)", "title")

    released = raw.get("released")
    release_at: datetime | None = None
    if released is None:
        error("'released' is missing: add a date like released = 2025-04-10", "released")
    elif isinstance(released, datetime):
        if released.tzinfo is None:
            error(
                f"'released' {released.isoformat()} has no UTC offset: add Z for UTC or an "
                f"offset, like {released.isoformat()}Z or {released.isoformat()}-05:00",
                "released",
            )
        else:
            release_at = release_instant(released, "UTC")
    elif isinstance(released, date):
        if timezone is not None:
            release_at = release_instant(released, timezone)
    elif isinstance(released, str):
        error(
            f"'released' must be a TOML date, written without quotes: released = {released}",
            "released",
        )
    else:
        error(
            "'released' must be a date like 2025-04-10 or a time with an offset like "
            f"2025-04-10T21:00:00Z, got {released!r}",
            "released",
        )

    aliases_raw = raw.get("aliases", [])
    aliases: list[str] = []
    if not isinstance(aliases_raw, list):
        error("'aliases' must be a list of strings, like aliases = [\"Callister 2\"]", "aliases")
    else:
        for alias in aliases_raw:
            text = _text_field(alias)
            if text is None or "\n" in text or "\r" in text:
                error(f"each alias must be a non-empty one-line string, got {alias!r}", "aliases")
            else:
                aliases.append(text)

    for key in _unknown_keys(raw, _EPISODE_KEYS):
        problems.append(
            ContentProblem(rel, line(key), f"{label}: unknown key {key!r} (ignored)", "warning")
        )

    if (
        _has_errors(problems[problems_before:])
        or release_at is None
        or title is None
        or not (season_ok and number_ok and isinstance(season, int) and isinstance(number, int))
    ):
        return None
    return Episode(
        show_slug=slug,
        show_title=show_title,
        season=season,
        number=number,
        title=title,
        release_at=release_at,
        aliases=tuple(aliases),
    )


# --------------------------------------------------------------------------------------
# Reviews
# --------------------------------------------------------------------------------------

_REVIEW_KEYS = ("rating", "verdict", "author", "published")


def parse_review(path: Path, rel: str, show: Show) -> tuple[Review | None, list[ContentProblem]]:
    """Parse ``reviews/<slug>/sSSeEE.md`` and check its episode is in ``show``."""
    review, problems = parse_review_bytes(
        read_file(path), rel, frozenset(e.code for e in show.episodes)
    )
    found = classify(rel)
    if isinstance(found, ContentFile) and found.slug != show.slug:
        problems.append(
            ContentProblem(
                rel, None, f"this review is filed under {found.slug!r}, not {show.slug!r}"
            )
        )
        review = None
    return review, problems


def parse_review_bytes(
    data: bytes, rel: str, episode_codes: Collection[str] | None
) -> tuple[Review | None, list[ContentProblem]]:
    """Parse a review of the show whose episodes have ``episode_codes``.

    With ``episode_codes=None`` (the show is unknown) only the file itself is checked.
    """
    found = classify(rel)
    if not isinstance(found, ContentFile) or found.kind != "review":
        message = (
            found.message
            if isinstance(found, ContentProblem)
            else "reviews belong in reviews/<show-slug>/sSSeEE.md"
        )
        return None, [ContentProblem(rel, None, message)]
    review, problems = _parse_review_text(data, rel, found)
    if episode_codes is not None:
        mismatch = review_episode_problem(found, episode_codes)
        if mismatch is not None:
            problems.append(mismatch)
    if _has_errors(problems):
        return None, problems
    return review, problems


def review_episode_problem(
    file: ContentFile, episode_codes: Collection[str]
) -> ContentProblem | None:
    """The cross-file check: a review must be for an episode its show file lists."""
    if file.code in episode_codes:
        return None
    return ContentProblem(
        file.rel,
        None,
        f"episode {file.code} is not in {SHOWS_DIR}/{file.slug}.toml: add it there, or "
        "fix this file's name",
    )


def _parse_review_text(
    data: bytes, rel: str, file: ContentFile
) -> tuple[Review | None, list[ContentProblem]]:
    text, problems = _decode(data, rel)
    if text is None:
        return None, problems
    lines = text.splitlines()
    if not lines or lines[0].strip() != _FRONT_MATTER_FENCE:
        return None, [
            ContentProblem(rel, 1, "a review starts with TOML front matter between two '+++' lines")
        ]
    closing = next(
        (i for i in range(1, len(lines)) if lines[i].strip() == _FRONT_MATTER_FENCE), None
    )
    if closing is None:
        return None, [
            ContentProblem(rel, 1, "the front matter opened here is never closed by a '+++' line")
        ]
    front_text = "\n".join(lines[1:closing])
    front, toml_problems = _load_toml(front_text, rel, first_line=2)
    if front is None:
        return None, toml_problems
    where = _TomlLines(front_text, first_line=2)

    def error(message: str, key: str) -> None:
        problems.append(ContentProblem(rel, where.key_line(key) or 1, message))

    rating = front.get("rating")
    rating_ok = (
        isinstance(rating, int | float)
        and not isinstance(rating, bool)
        and math.isfinite(rating)
        and 0 <= rating <= 5
        and float(rating * 2).is_integer()
    )
    if not rating_ok:
        shown = "nothing" if rating is None else f"{rating!r}"
        error(f"rating must be between 0 and 5 in half steps, got {shown}", "rating")

    verdict = front.get("verdict")
    if not isinstance(verdict, str) or not verdict.strip():
        error("'verdict' must be a one-line summary (a non-empty string)", "verdict")
    elif "\n" in verdict or "\r" in verdict:
        error("'verdict' must be one line: remove the line break", "verdict")
    elif len(verdict.strip()) > VERDICT_MAX_CHARS:
        error(
            f"'verdict' is {len(verdict.strip())} characters long: keep it to {VERDICT_MAX_CHARS}",
            "verdict",
        )

    author = _text_field(front.get("author"))
    if author is None:
        error("'author' must be the reviewer's name (a non-empty string)", "author")

    published = front.get("published")
    if not isinstance(published, date) or isinstance(published, datetime):
        error(
            f"'published' must be a date like published = 2025-04-12, got {published!r}",
            "published",
        )

    for key in _unknown_keys(front, _REVIEW_KEYS):
        problems.append(
            ContentProblem(rel, where.key_line(key), f"unknown key {key!r} (ignored)", "warning")
        )

    body_start = closing + 1  # index into lines of the first body line
    body_text = "\n".join(lines[body_start:])
    heading = _find_ending_heading(body_text)
    body = body_text[: heading[0]] if heading else body_text
    ending = body_text[heading[1] :].strip() if heading else None
    body_line = body_start + 1  # file line number of the body's first line
    heading_line = body_line + body.count("\n") if heading else None

    # A near-miss heading in the spoiler-free part would serve spoilers unhidden.
    for offset, body_line_text in enumerate(body.splitlines() if _may_hold_near(body) else ()):
        if _NEAR_ENDING_HEADING.match(body_line_text):
            problems.append(
                ContentProblem(
                    rel,
                    body_line + offset,
                    f"{body_line_text.strip()!r} looks like the spoiler heading but is not "
                    "'## Ending explained' (exactly two #): as written, the text under it "
                    "would be shown as spoiler-free",
                )
            )
    if len(body.strip()) > REVIEW_MAX_CHARS:
        problems.append(
            ContentProblem(
                rel,
                body_line,
                f"the review is {len(body.strip()):,} characters long: keep the spoiler-free "
                f"text to {REVIEW_MAX_CHARS:,} (it is shown in one embed)",
            )
        )
    if ending is not None and len(ending) > ENDING_MAX_CHARS:
        problems.append(
            ContentProblem(
                rel,
                heading_line,
                f"the ending explained is {len(ending):,} characters long: keep it to "
                f"{ENDING_MAX_CHARS:,} (about ten Discord messages)",
            )
        )
    if not body.strip():
        problems.append(
            ContentProblem(
                rel,
                heading_line or body_line,
                "the review has no spoiler-free text: write the review before '## Ending "
                "explained'",
            )
        )
    if heading is not None and not ending:
        problems.append(
            ContentProblem(
                rel,
                heading_line,
                "'## Ending explained' has no text under it: write the ending or remove the "
                "heading",
            )
        )

    if (
        _has_errors(problems)
        or not rating_ok
        or not isinstance(rating, int | float)
        or not isinstance(verdict, str)
        or author is None
        or not isinstance(published, date)
    ):
        return None, problems
    return (
        Review(
            episode_key=file.episode_key,
            rating=float(rating),
            verdict=verdict.strip(),
            author=author,
            published=published,
            body=body.strip(),
            ending=ending,
        ),
        problems,
    )


def _find_ending_heading(text: str) -> tuple[int, int] | None:
    """Start and end of the first line of ``text`` that is the ending heading, if any.

    Only lines holding "##" can be it, and ``str.find`` skips to them far faster than a
    multi-line regex search tries every position of a review.
    """
    found = text.find("##")
    while found != -1:
        start = text.rfind("\n", 0, found) + 1
        end = text.find("\n", found)
        if end == -1:
            end = len(text)
        if _ENDING_HEADING.fullmatch(text, start, end):
            return start, end
        found = text.find("##", end)
    return None


def _may_hold_near(text: str) -> bool:
    """False when no line of ``text`` can match _NEAR_ENDING_HEADING, checked cheaply.

    Every match holds "explained" in some case. For ASCII text, that means the lowercased
    text holds "explained"; beyond ASCII the regex's case folding has more equivalents
    (a dotless i), so such text is always checked line by line.
    """
    return not text.isascii() or "explained" in text.lower()


def normalise_code(text: str) -> str | None:
    """``"S7E6"`` -> ``"s07e06"``; None if ``text`` is not an episode code."""
    match = _LOOSE_CODE.match(text)
    if match is None:
        return None
    return episode_code(int(match.group(1)), int(match.group(2)))


# --------------------------------------------------------------------------------------
# Rankings
# --------------------------------------------------------------------------------------

_RANKING_KEYS = ("author", "order", "episodes")
_ORDERS = ", ".join(f"{o.value!r}" for o in RankingOrder)


def parse_ranking(
    path: Path, rel: str, show: Show
) -> tuple[CriticRanking | None, list[ContentProblem]]:
    """Parse ``rankings/<slug>.toml`` against ``show``'s episodes."""
    return parse_ranking_bytes(read_file(path), rel, show)


def parse_ranking_bytes(
    data: bytes, rel: str, show: Show | None
) -> tuple[CriticRanking | None, list[ContentProblem]]:
    """Parse a ranking; with ``show=None`` its codes are checked for form only."""
    opened = _open_named_toml(data, rel, _RANKING_KEYS)
    if isinstance(opened, list):
        return None, opened
    slug, doc, lines, problems = opened

    def error(message: str, line: int | None) -> None:
        problems.append(ContentProblem(rel, line, message))

    author = _text_field(doc.get("author"))
    if author is None:
        error("'author' must be the critic's name (a non-empty string)", lines.key_line("author"))
    order_raw = doc.get("order")
    order: RankingOrder | None = None
    try:
        order = RankingOrder(order_raw)
    except ValueError:
        error(f"'order' must be one of {_ORDERS}, got {order_raw!r}", lines.key_line("order"))

    listed = doc.get("episodes")
    episodes_line = lines.key_line("episodes")
    codes: list[str] = []
    if not isinstance(listed, list) or not listed:
        error(
            '\'episodes\' must list episode codes, like episodes = ["s01e02", "s01e01"]',
            episodes_line,
        )
        listed = []
    known = {e.code for e in show.episodes} if show is not None else None
    # Lines are looked up only for problems: finding them costs a scan per item.
    first_seen: dict[str, tuple[str, int]] = {}  # code -> (literal, occurrence) first listed
    occurrences: dict[str, int] = {}
    for item in listed:
        raw = item if isinstance(item, str) else repr(item)
        nth = occurrences.get(raw, 0)
        occurrences[raw] = nth + 1
        code = normalise_code(item) if isinstance(item, str) else None
        if code is None:
            error(
                f'{raw!r} is not an episode code like "s07e06"',
                lines.literal_line(episodes_line, raw, nth),
            )
            continue
        if code in first_seen:
            earlier = lines.literal_line(episodes_line, *first_seen[code])
            also = f" (first on line {earlier})" if earlier is not None else ""
            error(
                f"episode {code} is ranked twice{also}", lines.literal_line(episodes_line, raw, nth)
            )
            continue
        first_seen[code] = (raw, nth)
        if known is not None and code not in known:
            error(
                f"episode {code} is not in {SHOWS_DIR}/{slug}.toml",
                lines.literal_line(episodes_line, raw, nth),
            )
            continue
        codes.append(code)

    if show is not None:
        # Specials (season 0) are often left out of a ranking on purpose: no warning for them.
        missing = [e.code for e in show.episodes if e.season > 0 and e.code not in first_seen]
        if missing:
            shown = ", ".join(missing[:10]) + (
                f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            )
            problems.append(
                ContentProblem(
                    rel, episodes_line, f"{len(missing)} episode(s) not ranked: {shown}", "warning"
                )
            )

    if _has_errors(problems) or author is None or order is None:
        return None, problems
    best_first = tuple(reversed(codes)) if order is RankingOrder.WORST_TO_BEST else tuple(codes)
    return CriticRanking(show_slug=slug, author=author, best_first=best_first), problems


# --------------------------------------------------------------------------------------
# The whole directory
# --------------------------------------------------------------------------------------


def unknown_show_problem(
    slug: str, kind: FileKind, count: int, show_file_exists: bool
) -> ContentProblem:
    """One problem for files of a show that has no loadable show file.

    Reported once per show rather than once per review, so a misnamed review folder of
    hundreds of files gives one readable line.
    """
    show_rel = f"{SHOWS_DIR}/{slug}.toml"
    if kind == "ranking":
        path, what = f"{RANKINGS_DIR}/{slug}.toml", "this ranking was not loaded"
    else:
        noun = "review" if count == 1 else "reviews"
        path, what = f"{REVIEWS_DIR}/{slug}", f"{count} {noun} not loaded"
    if show_file_exists:
        reason = f"{show_rel} did not load (see its errors)"
    else:
        reason = f"there is no show file {show_rel}"
    return ContentProblem(path, None, f"{what}: {reason}")
