"""Where content lives: the directory layout, naming rules, listing and reading files.

Layout of the content directory (paths below are relative to it):

- ``shows/<slug>.toml``: one show and its episodes.
- ``reviews/<slug>/sSSeEE.md``: TOML front matter between ``+++`` lines, the spoiler-free
  review, then an optional ``## Ending explained`` section holding the spoilers.
- ``rankings/<slug>.toml``: one critic's ranking of a show's episodes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Collection
from pathlib import Path
from typing import Literal, NamedTuple

from bot.content.files.problems import ContentProblem
from bot.content.models import (
    episode_code,
)

FileKind = Literal["show", "review", "ranking"]

SHOWS_DIR = "shows"
REVIEWS_DIR = "reviews"
RANKINGS_DIR = "rankings"
# No content file is bigger than this, and none is read past it.
MAX_FILE_BYTES = 1 << 20

# Open without waiting for a writer if the path is a named pipe (Windows has no pipes there).
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_REVIEW_STEM = re.compile(r"^s(\d+)e(\d+)$")
# reviews/<slug>/<code>.md with the code exactly as episode_code() writes it.
_CANONICAL_REVIEW = re.compile(
    r"reviews/([a-z0-9]+(?:-[a-z0-9]+)*)/(s(?:\d{2}|[1-9]\d{2,})e(?:\d{2}|[1-9]\d{2,}))\.md"
)


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
        if not SLUG.match(slug):
            return ContentProblem(rel, None, bad_slug_message(slug))
        return ContentFile(rel, kind, slug)
    if top == REVIEWS_DIR:
        if len(parts) != 3 or not parts[2].endswith(".md"):
            return ContentProblem(
                rel, None, "ignored: reviews belong in reviews/<show-slug>/sSSeEE.md", "warning"
            )
        slug, stem = parts[1], parts[2].removesuffix(".md")
        if not SLUG.match(slug):
            return ContentProblem(rel, None, bad_slug_message(slug))
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


def bad_slug_message(slug: str) -> str:
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
