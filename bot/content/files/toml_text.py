"""TOML text in content files: decoding, parsing with errors on their lines, and finding the
line of a key.

Parsed by the standard library's ``tomllib``. A hand-written parser for the plain subset
content files are written in (one ``key = value`` per line) was kept for a while as a fast
path; measured on a full-catalogue cold sync (``tests/benchmarks/content_pipeline.py``, which
still carries it to re-run the comparison) it saved a modest share of a first load, paid once
per database and off the event loop, and nothing on a reload of changed files: not worth a
second TOML parser to maintain.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path

from bot.content.files.fields import (
    unknown_keys,
)
from bot.content.files.layout import (
    SLUG,
    bad_slug_message,
)
from bot.content.files.problems import ContentProblem

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)$")


# --------------------------------------------------------------------------------------
# Locating lines. tomllib reports no positions for values, so a light scan of the text
# finds the line of a key within the root table or the N-th [[array]] table. It ignores
# multi-line strings and exotic layouts; when it cannot find a key it returns the nearest
# useful line (the table header) or None, never a wrong guess from another table.
# --------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


class TomlLines:
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


def decode(data: bytes, rel: str) -> tuple[str | None, list[ContentProblem]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [ContentProblem(rel, line, "the file is not valid UTF-8: save it as UTF-8")]
    return text.removeprefix("\ufeff"), []


def load_toml(
    text: str, rel: str, first_line: int = 1
) -> tuple[dict[str, object] | None, list[ContentProblem]]:
    """tomllib.loads, with its error turned into a problem on the right line."""
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


def open_named_toml(
    data: bytes, rel: str, known_keys: Collection[str]
) -> tuple[str, dict[str, object], TomlLines, list[ContentProblem]] | list[ContentProblem]:
    """Shared start of show and ranking files: the slug from the file name, decoding, TOML,
    and warnings for unknown keys. Returns the problems alone when the file can't be read."""
    slug = Path(rel).stem
    if not SLUG.match(slug):
        return [ContentProblem(rel, None, bad_slug_message(slug))]
    text, problems = decode(data, rel)
    if text is None:
        return problems
    doc, problems = load_toml(text, rel)
    if doc is None:
        return problems
    lines = TomlLines(text)
    problems.extend(
        ContentProblem(rel, lines.key_line(key), f"unknown key {key!r} (ignored)", "warning")
        for key in unknown_keys(doc, known_keys)
    )
    return slug, doc, lines, problems
