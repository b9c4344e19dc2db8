"""Load the content directory into storage, touching only what changed since the last sync.

Every content file is hashed (sha256 of its bytes) and compared with the hash recorded in
``content_files`` when it was last loaded. Unchanged files are not parsed. Changed files
are parsed; those without errors replace their rows, and every replacement of one sync is
written in a single transaction, so a reader never sees a show without its episodes. A
file with errors is reported and its last good version keeps serving: its rows and its
recorded hash stay as they were, so it is parsed again (and reported again) next time.

Cross-file checks need a show's episodes. When the show file changed in this sync they come
from the new version; otherwise from storage (the version currently served). When a show's
episodes change, its unchanged reviews and ranking are checked again against them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.content.models import CriticRanking, Review, Show
from bot.content.parser import (
    ContentFile,
    ContentProblem,
    classify,
    parse_ranking_bytes,
    parse_review_bytes,
    parse_show_bytes,
    read_file,
    review_episode_problem,
    scan_content_dir,
    sha256_hex,
    unknown_show_problem,
)
from bot.storage.content import ContentChanges, ContentStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncReport:
    loaded: tuple[str, ...]  # files whose rows were written in this sync
    unchanged: tuple[str, ...]  # files skipped because their hash matched
    removed: tuple[str, ...]  # files deleted from disk whose rows were removed
    problems: tuple[ContentProblem, ...]

    @property
    def errors(self) -> tuple[ContentProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")


@dataclass(frozen=True)
class _Scan:
    files: dict[str, ContentFile]  # rel -> file, for every content file on disk
    hashes: dict[str, str]  # rel -> sha256
    problems: list[ContentProblem]  # misnamed and unreadable files
    unreadable: set[str]  # present but not readable: neither parsed nor removed


def _scan(content_dir: Path) -> _Scan:
    files, problems = scan_content_dir(content_dir)
    hashes: dict[str, str] = {}
    found: dict[str, ContentFile] = {}
    unreadable: set[str] = set()
    # Plain string paths: building a Path per file costs a third of this loop.
    base = os.path.join(content_dir, "")
    for file in files:
        try:
            hashes[file.rel] = sha256_hex(read_file(base + file.rel))
        except FileNotFoundError:
            continue  # deleted between listing and reading: treat as absent
        except OSError as exc:
            problems.append(_unreadable(file.rel, exc))
            unreadable.add(file.rel)
            continue
        found[file.rel] = file
    return _Scan(found, hashes, problems, unreadable)


def _unreadable(rel: str, exc: OSError) -> ContentProblem:
    return ContentProblem(rel, None, f"cannot read this file: {exc.strerror or exc}")


@dataclass
class _Parsed:
    """What the parse steps (run in a worker thread) hand back to the async side."""

    shows: dict[str, tuple[Show, str, str]]  # slug -> (show, rel, sha of bytes parsed)
    reviews: list[tuple[Review, str, str]]
    rankings: list[tuple[CriticRanking, str, str]]
    problems: list[ContentProblem]
    recheck: list[str]  # unchanged files that no longer pass cross-file checks


def _read(content_dir: Path, rel: str, problems: list[ContentProblem]) -> bytes | None:
    """The file's bytes, or None if it vanished or became unreadable since the scan."""
    try:
        return read_file(content_dir / rel)
    except FileNotFoundError:
        return None  # deleted meanwhile: the next sync removes its rows
    except OSError as exc:
        problems.append(_unreadable(rel, exc))
        return None


def _parse_shows(content_dir: Path, changed: list[ContentFile]) -> _Parsed:
    parsed = _Parsed({}, [], [], [], [])
    for file in changed:
        data = _read(content_dir, file.rel, parsed.problems)
        if data is None:
            continue
        show, problems = parse_show_bytes(data, file.rel)
        parsed.problems.extend(problems)
        if show is not None:
            parsed.shows[show.slug] = (show, file.rel, sha256_hex(data))
    return parsed


def _parse_dependents(
    content_dir: Path,
    parsed: _Parsed,
    changed: list[ContentFile],
    recheck_reviews: list[ContentFile],
    recheck_rankings: list[ContentFile],
    shows: Mapping[str, Show | None],
    show_files: set[str],
) -> None:
    """Parse changed reviews and rankings, and re-check dependents of replaced shows."""
    orphans: dict[str, int] = defaultdict(int)
    codes = {
        slug: frozenset(e.code for e in show.episodes)
        for slug, show in shows.items()
        if show is not None
    }
    for file in changed:
        data = _read(content_dir, file.rel, parsed.problems)
        if data is None:
            continue
        show = shows.get(file.slug)
        if file.kind == "review":
            review, problems = parse_review_bytes(data, file.rel, codes.get(file.slug))
            parsed.problems.extend(problems)
            if show is None:
                orphans[file.slug] += 1
            elif review is not None:
                parsed.reviews.append((review, file.rel, sha256_hex(data)))
        else:
            ranking, problems = parse_ranking_bytes(data, file.rel, show)
            parsed.problems.extend(problems)
            if show is None:
                parsed.problems.append(
                    unknown_show_problem(file.slug, "ranking", 1, file.slug in show_files)
                )
            elif ranking is not None:
                parsed.rankings.append((ranking, file.rel, sha256_hex(data)))

    # An unchanged review depends on its show only through its episode code: no re-parse.
    for file in recheck_reviews:
        show = shows.get(file.slug)
        if show is None:
            orphans[file.slug] += 1
            parsed.recheck.append(file.rel)
            continue
        problem = review_episode_problem(file, codes[file.slug])
        if problem is not None:
            parsed.problems.append(problem)
            parsed.recheck.append(file.rel)
    parsed.problems.extend(
        unknown_show_problem(slug, "review", count, slug in show_files)
        for slug, count in orphans.items()
    )

    # An unchanged ranking is parsed again: its codes and its missing-episode warning
    # depend on the show. Its rows need no rewrite if it still passes.
    for file in recheck_rankings:
        data = _read(content_dir, file.rel, parsed.problems)
        if data is None:
            continue
        show = shows.get(file.slug)
        ranking, problems = parse_ranking_bytes(data, file.rel, show)
        parsed.problems.extend(problems)
        if show is None:
            parsed.problems.append(
                unknown_show_problem(file.slug, "ranking", 1, file.slug in show_files)
            )
        if ranking is None or show is None:
            parsed.recheck.append(file.rel)


async def sync_content(storage: ContentStore, content_dir: Path) -> SyncReport:
    """Bring storage in line with ``content_dir``; see the module docstring for the rules.

    File reading, hashing and parsing run in a worker thread so the event loop stays free.
    """
    scan = await asyncio.to_thread(_scan, content_dir)
    recorded = await storage.content_file_hashes()

    changed = [f for rel, f in scan.files.items() if recorded.get(rel) != scan.hashes[rel]]
    unchanged = [rel for rel in scan.files if recorded.get(rel) == scan.hashes[rel]]
    removed = sorted(
        rel for rel in recorded if rel not in scan.files and rel not in scan.unreadable
    )
    removed_files = [f for f in map(classify, removed) if isinstance(f, ContentFile)]

    changed_shows = [f for f in changed if f.kind == "show"]
    parsed = await asyncio.to_thread(_parse_shows, content_dir, changed_shows)

    # The show each slug is checked against: the new version if its file changed and
    # parsed, none if its file was deleted, otherwise the version storage serves.
    removed_show_slugs = {f.slug for f in removed_files if f.kind == "show"}
    replaced = set(parsed.shows) | removed_show_slugs
    dependents = [f for f in changed if f.kind != "show"]
    shows: dict[str, Show | None] = {slug: entry[0] for slug, entry in parsed.shows.items()}
    shows.update(dict.fromkeys(removed_show_slugs))
    for slug in sorted({f.slug for f in dependents} - replaced):
        shows[slug] = await storage.load_show(slug)

    changed_rels = {f.rel for f in changed}
    unchanged_dependents = [
        scan.files[rel]
        for rel in unchanged
        if scan.files[rel].kind != "show" and scan.files[rel].slug in replaced
    ]
    show_files = {f.slug for f in scan.files.values() if f.kind == "show"}
    await asyncio.to_thread(
        _parse_dependents,
        content_dir,
        parsed,
        dependents,
        [f for f in unchanged_dependents if f.kind == "review"],
        [f for f in unchanged_dependents if f.kind == "ranking"],
        shows,
        show_files,
    )

    file_hashes = {rel: sha for _, rel, sha in parsed.shows.values()}
    file_hashes.update({rel: sha for _, rel, sha in parsed.reviews})
    file_hashes.update({rel: sha for _, rel, sha in parsed.rankings})
    changes = ContentChanges(
        shows=tuple(entry[0] for entry in parsed.shows.values()),
        rankings=tuple(entry[0] for entry in parsed.rankings),
        reviews=tuple(entry[0] for entry in parsed.reviews),
        removed_shows=tuple(sorted(removed_show_slugs)),
        removed_rankings=tuple(f.slug for f in removed_files if f.kind == "ranking"),
        removed_reviews=tuple(f.episode_key for f in removed_files if f.kind == "review"),
        file_hashes=file_hashes,
        forget_files=tuple(removed),
        recheck_files=tuple(parsed.recheck),
    )
    await storage.apply_content_changes(changes)

    rechecked = set(parsed.recheck)
    report = SyncReport(
        loaded=tuple(sorted(file_hashes)),
        unchanged=tuple(sorted(rel for rel in unchanged if rel not in rechecked)),
        removed=tuple(removed),
        problems=tuple(scan.problems + parsed.problems),
    )
    failed = len(changed_rels - set(file_hashes)) + len(rechecked)
    # DEBUG: callers (the bot, the CLI) log or print their own summary of the report.
    log.debug(
        "content sync: %d loaded, %d unchanged, %d removed, %d not loaded (%d errors)",
        len(report.loaded),
        len(report.unchanged),
        len(report.removed),
        failed,
        len(report.errors),
    )
    return report
