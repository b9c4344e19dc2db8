"""Load the content directory into storage, touching only what changed since the last sync.

Finding what changed
--------------------
``content_files`` records, for every file loaded, the sha256 of its bytes, the size and
mtime (in nanoseconds) the file had when they were read, and the moment the sync that
recorded that stat started. A sync stats every file (cheap) and then:

- a file with no record, or one marked to be checked again, is parsed;
- a file whose size and mtime are the ones recorded is unchanged, and is not even read,
  provided its mtime is more than ``RACY_NS`` older than the start of the recording sync;
- any other file is read and hashed. With the recorded hash it is unchanged (a ``touch``, a
  checkout that wrote the same bytes) and only its new stat is recorded; otherwise it is
  parsed.

The mtime condition is git's "racily clean" rule. An edit that keeps the size and lands in
the same timestamp tick as the version that was read leaves the stat exactly as recorded.
Such an edit happens after the read, so after the sync started, and a filesystem stamps it
no earlier than one tick before that moment: nanosecond filesystems (ext4, xfs, btrfs,
APFS) stamp with the kernel's coarse clock, a few milliseconds behind; others keep whole
seconds, or two for FAT. A recorded mtime more than ``RACY_NS`` (two seconds) before the
recording sync's start can therefore not be repeated by a later edit. A newer one is not
trusted: the file is hashed on the next sync, which records it again with its own start (a
file stamped in the future is hashed at every sync until its stamp is in the past).

The stat is taken before the file is read, so an edit in between leaves a recorded stat the
file no longer has, and the next sync hashes it. Not seen: an edit that keeps the size and
then sets the mtime back to the recorded one (``touch -d``, a copy that preserves times
over a file of the same size), which rsync's default quick check misses too; nor an edit
stamped with a recorded mtime because the clock was set back. Records without a stat
(from before migration 003) are hashed once, like any file whose stat moved.

Writing
-------
Changed files are parsed outside any write transaction (in a worker thread); those without
errors replace their rows. Storage writes them in short transactions (see
``ContentStore.apply_content_changes``), so votes and settings never wait for a whole
catalogue: each file changes at once, a show with all its episodes, and a sync cut short
leaves the files it had not reached to the next one. The bot swaps its in-memory catalogue
once the whole sync is written (``bot.content.reload``). Reviews, the bulk of a catalogue,
are read and parsed in batches of ``REVIEW_BATCH``, each dropped once written, the next one
parsed while the last is written: a first start holds two batches of review text at a time,
not the whole catalogue. A file with errors is reported and its last good version keeps
serving: its rows and its record stay as they were, so it is parsed again (and reported
again) next time.

Cross-file checks need a show's episodes. When the show file changed in this sync they come
from the new version; otherwise from storage (the version currently served). When a show's
episodes change, its unchanged reviews and ranking are checked again against them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.content.files import (
    ContentFile,
    ContentProblem,
    classify,
    is_blocked,
    parse_ranking_bytes,
    parse_review_bytes,
    parse_show_bytes,
    read_file,
    review_episode_problem,
    scan_content_dir,
    sha256_hex,
    unknown_show_problem,
)
from bot.content.models import CriticRanking, Review, Show
from bot.storage.content import (
    RECHECK_HASH,
    ContentBackend,
    ContentChanges,
    FileRecord,
    FileStat,
)

log = logging.getLogger(__name__)

# How much older than the start of the sync that recorded it a file's mtime must be before
# its stat alone vouches for its bytes (see the module docstring).
RACY_NS = 2_000_000_000
# Reviews parsed and written per step of a sync: about 10 MB of review text.
REVIEW_BATCH = 2000


@dataclass(frozen=True)
class SyncReport:
    loaded: tuple[str, ...]  # files whose rows were written in this sync
    unchanged: tuple[str, ...]  # files found unchanged (by their stat, or their hash)
    removed: tuple[str, ...]  # files deleted from disk whose rows were removed
    problems: tuple[ContentProblem, ...]

    @property
    def errors(self) -> tuple[ContentProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")


@dataclass
class _Scan:
    files: dict[str, ContentFile] = field(default_factory=dict)  # every content file on disk
    changed: list[ContentFile] = field(default_factory=list)  # to parse, in scan order
    unchanged: list[str] = field(default_factory=list)
    # Stats to record, taken before any read: of the changed files, and of unchanged files
    # whose stat moved or was too recent to vouch for them.
    stats: dict[str, FileStat] = field(default_factory=dict)
    restat: list[str] = field(default_factory=list)  # the unchanged files among those
    problems: list[ContentProblem] = field(default_factory=list)  # misnamed, unreadable
    unreadable: set[str] = field(default_factory=set)  # present: neither parsed nor removed
    # Folders and entries the listing could not see into: nothing under them is removed.
    blocked: list[str] = field(default_factory=list)


def _scan(content_dir: Path, base: str, recorded: Mapping[str, FileRecord]) -> _Scan:
    """List and stat every content file; read and hash only those the stat cannot vouch for.

    ``base`` is the content directory with a trailing separator: plain string paths, since
    building a Path per file costs a third of this loop.
    """
    listing = scan_content_dir(content_dir)
    scan = _Scan(problems=listing.problems, blocked=listing.blocked)
    for file in listing.files:
        rel = file.rel
        try:
            info = os.stat(base + rel)
        except FileNotFoundError:
            continue  # deleted between listing and stat: treat as absent
        except OSError as exc:
            scan.problems.append(_unreadable(rel, exc))
            scan.unreadable.add(rel)
            continue
        scan.files[rel] = file
        record = recorded.get(rel)
        if record is None:
            scan.stats[rel] = FileStat(info.st_size, info.st_mtime_ns)
            scan.changed.append(file)
            continue
        sha, size, mtime_ns, checked_ns = record
        if sha == RECHECK_HASH:
            scan.stats[rel] = FileStat(info.st_size, info.st_mtime_ns)
            scan.changed.append(file)
            continue
        # The stat alone vouches for the file under the rule in the module docstring.
        if (
            mtime_ns == info.st_mtime_ns
            and size == info.st_size
            and checked_ns is not None
            and info.st_mtime_ns < checked_ns - RACY_NS
        ):
            scan.unchanged.append(rel)
            continue
        scan.stats[rel] = FileStat(info.st_size, info.st_mtime_ns)
        try:
            data = read_file(base + rel)
        except FileNotFoundError:
            del scan.files[rel], scan.stats[rel]
            continue
        except OSError as exc:
            del scan.files[rel], scan.stats[rel]
            scan.problems.append(_unreadable(rel, exc))
            scan.unreadable.add(rel)
            continue
        if sha256_hex(data) == sha:
            scan.unchanged.append(rel)
            scan.restat.append(rel)
        else:
            scan.changed.append(file)
    return scan


def _unreadable(rel: str, exc: OSError) -> ContentProblem:
    return ContentProblem(rel, None, f"cannot read this file: {exc.strerror or exc}")


def _read(base: str, rel: str, problems: list[ContentProblem]) -> bytes | None:
    """The file's bytes, or None if it vanished or became unreadable since the scan."""
    try:
        return read_file(base + rel)
    except FileNotFoundError:
        return None  # deleted meanwhile: the next sync removes its rows
    except OSError as exc:
        problems.append(_unreadable(rel, exc))
        return None


@dataclass
class _Shows:
    """Changed show files, parsed in a worker thread."""

    shows: dict[str, Show] = field(default_factory=dict)  # by slug
    hashes: dict[str, str] = field(default_factory=dict)  # rel -> sha256 of files that loaded
    problems: list[ContentProblem] = field(default_factory=list)


def _parse_shows(base: str, changed: list[ContentFile]) -> _Shows:
    parsed = _Shows()
    for file in changed:
        data = _read(base, file.rel, parsed.problems)
        if data is None:
            continue
        show, problems = parse_show_bytes(data, file.rel)
        parsed.problems.extend(problems)
        if show is not None:
            parsed.shows[show.slug] = show
            parsed.hashes[file.rel] = sha256_hex(data)
    return parsed


@dataclass
class _Reviews:
    """One batch of changed reviews, parsed in a worker thread."""

    reviews: list[Review] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)  # rel -> sha256 of files that loaded
    problems: list[ContentProblem] = field(default_factory=list)
    orphans: dict[str, int] = field(default_factory=dict)  # slug -> reviews of no known show


def _parse_reviews(
    base: str, changed: list[ContentFile], codes: Mapping[str, frozenset[str] | None]
) -> _Reviews:
    """Parse changed reviews; ``codes`` holds each slug's episode codes, None if no show."""
    parsed = _Reviews()
    for file in changed:
        data = _read(base, file.rel, parsed.problems)
        if data is None:
            continue
        episode_codes = codes[file.slug]
        review, problems = parse_review_bytes(data, file.rel, episode_codes)
        parsed.problems.extend(problems)
        if episode_codes is None:
            parsed.orphans[file.slug] = parsed.orphans.get(file.slug, 0) + 1
        elif review is not None:
            parsed.reviews.append(review)
            parsed.hashes[file.rel] = sha256_hex(data)
    return parsed


@dataclass
class _Checked:
    """Changed rankings parsed, and the dependents of replaced shows checked again."""

    rankings: list[CriticRanking] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)  # rel -> sha256 of files that loaded
    problems: list[ContentProblem] = field(default_factory=list)  # of the changed rankings
    review_problems: list[ContentProblem] = field(default_factory=list)  # unchanged reviews
    orphans: dict[str, int] = field(default_factory=dict)  # slug -> unchanged reviews
    ranking_problems: list[ContentProblem] = field(default_factory=list)  # unchanged rankings
    recheck: list[str] = field(default_factory=list)  # unchanged files failing the checks


def _check_dependents(
    base: str,
    changed_rankings: list[ContentFile],
    recheck_reviews: list[ContentFile],
    recheck_rankings: list[ContentFile],
    shows: Mapping[str, Show | None],
    codes: Mapping[str, frozenset[str] | None],
    show_files: set[str],
) -> _Checked:
    checked = _Checked()
    for file in changed_rankings:
        data = _read(base, file.rel, checked.problems)
        if data is None:
            continue
        show = shows.get(file.slug)
        ranking, problems = parse_ranking_bytes(data, file.rel, show)
        checked.problems.extend(problems)
        if show is None:
            checked.problems.append(
                unknown_show_problem(file.slug, "ranking", 1, file.slug in show_files)
            )
        elif ranking is not None:
            checked.rankings.append(ranking)
            checked.hashes[file.rel] = sha256_hex(data)

    # An unchanged review depends on its show only through its episode code: no re-parse.
    for file in recheck_reviews:
        episode_codes = codes[file.slug]
        if episode_codes is None:
            checked.orphans[file.slug] = checked.orphans.get(file.slug, 0) + 1
            checked.recheck.append(file.rel)
            continue
        problem = review_episode_problem(file, episode_codes)
        if problem is not None:
            checked.review_problems.append(problem)
            checked.recheck.append(file.rel)

    # An unchanged ranking is parsed again: its codes and its missing-episode warning
    # depend on the show. Its rows need no rewrite if it still passes.
    for file in recheck_rankings:
        data = _read(base, file.rel, checked.ranking_problems)
        if data is None:
            continue
        show = shows.get(file.slug)
        ranking, problems = parse_ranking_bytes(data, file.rel, show)
        checked.ranking_problems.extend(problems)
        if show is None:
            checked.ranking_problems.append(
                unknown_show_problem(file.slug, "ranking", 1, file.slug in show_files)
            )
        if ranking is None or show is None:
            checked.recheck.append(file.rel)
    return checked


async def sync_content(storage: ContentBackend, content_dir: Path) -> SyncReport:
    """Bring storage in line with ``content_dir``; see the module docstring for the rules.

    File reading, hashing and parsing run in a worker thread so the event loop stays free.
    """
    # Before any stat: the moment the racy rule compares this sync's recorded mtimes with.
    started_ns = time.time_ns()
    base = os.path.join(content_dir, "")
    recorded = await storage.content_file_records()
    scan = await asyncio.to_thread(_scan, content_dir, base, recorded)
    removed = sorted(
        rel
        for rel in recorded.keys() - scan.files.keys() - scan.unreadable
        if not is_blocked(rel, scan.blocked)
    )
    del recorded  # 20,000 records at full scale: not kept through the parse
    removed_files = [f for f in map(classify, removed) if isinstance(f, ContentFile)]

    changed_shows = [f for f in scan.changed if f.kind == "show"]
    # No thread hop for no work: on a loaded machine each costs a scheduling delay.
    parsed_shows = (
        await asyncio.to_thread(_parse_shows, base, changed_shows) if changed_shows else _Shows()
    )

    # The show each slug is checked against: the new version if its file changed and
    # parsed, none if its file was deleted, otherwise the version storage serves.
    removed_show_slugs = {f.slug for f in removed_files if f.kind == "show"}
    replaced = set(parsed_shows.shows) | removed_show_slugs
    dependents = [f for f in scan.changed if f.kind != "show"]
    shows: dict[str, Show | None] = dict(parsed_shows.shows)
    shows.update(dict.fromkeys(removed_show_slugs))
    for slug in sorted({f.slug for f in dependents} - replaced):
        shows[slug] = await storage.load_show(slug)
    codes = {
        slug: None if show is None else frozenset(e.code for e in show.episodes)
        for slug, show in shows.items()
    }

    unchanged_dependents: list[ContentFile] = []
    if replaced:
        for rel in scan.unchanged:
            file = scan.files[rel]
            if file.kind != "show" and file.slug in replaced:
                unchanged_dependents.append(file)
    show_files = {f.slug for f in scan.files.values() if f.kind == "show"}
    changed_rankings = [f for f in dependents if f.kind == "ranking"]
    checked = (
        await asyncio.to_thread(
            _check_dependents,
            base,
            changed_rankings,
            [f for f in unchanged_dependents if f.kind == "review"],
            [f for f in unchanged_dependents if f.kind == "ranking"],
            shows,
            codes,
            show_files,
        )
        if changed_rankings or unchanged_dependents
        else _Checked()
    )

    first_hashes = {**parsed_shows.hashes, **checked.hashes}
    loaded = set(first_hashes)
    first = ContentChanges(
        shows=tuple(parsed_shows.shows.values()),
        rankings=tuple(checked.rankings),
        removed_shows=tuple(sorted(removed_show_slugs)),
        removed_rankings=tuple(f.slug for f in removed_files if f.kind == "ranking"),
        removed_reviews=tuple(f.episode_key for f in removed_files if f.kind == "review"),
        file_hashes=first_hashes,
        file_stats={rel: scan.stats[rel] for rel in (*first_hashes, *scan.restat)},
        stats_checked_ns=started_ns,
        forget_files=tuple(removed),
        recheck_files=tuple(checked.recheck),
    )
    changed_reviews = [f for f in scan.changed if f.kind == "review"]
    review_problems: list[ContentProblem] = []
    orphans: dict[str, int] = defaultdict(int)  # slug -> reviews of no known show
    batches = [
        changed_reviews[start : start + REVIEW_BATCH]
        for start in range(0, len(changed_reviews), REVIEW_BATCH)
    ]

    def parse_batch(index: int) -> asyncio.Future[_Reviews] | None:
        if index >= len(batches):
            return None
        return asyncio.ensure_future(asyncio.to_thread(_parse_reviews, base, batches[index], codes))

    # The next batch is parsed (in a worker thread) while this one is written (in the
    # connection's thread, which SQLite runs without holding the GIL).
    index = 0
    pending = parse_batch(index)
    try:
        await storage.apply_content_changes(first)
        while pending is not None:
            batch = await pending
            index += 1
            pending = parse_batch(index)
            await storage.apply_content_changes(
                ContentChanges(
                    reviews=tuple(batch.reviews),
                    file_hashes=batch.hashes,
                    file_stats={rel: scan.stats[rel] for rel in batch.hashes},
                    stats_checked_ns=started_ns,
                )
            )
            loaded.update(batch.hashes)
            review_problems.extend(batch.problems)
            for slug, count in batch.orphans.items():
                orphans[slug] += count
    finally:
        if pending is not None:
            pending.cancel()  # a write failed: the parse's result is not wanted
    # One problem per show for its orphaned reviews, changed and unchanged ones together.
    for slug, count in checked.orphans.items():
        orphans[slug] += count
    orphan_problems = [
        unknown_show_problem(slug, "review", count, slug in show_files)
        for slug, count in orphans.items()
    ]
    rechecked = set(checked.recheck)
    report = SyncReport(
        loaded=tuple(sorted(loaded)),
        unchanged=tuple(sorted(rel for rel in scan.unchanged if rel not in rechecked)),
        removed=tuple(removed),
        problems=tuple(
            scan.problems
            + parsed_shows.problems
            + review_problems
            + checked.problems
            + checked.review_problems
            + orphan_problems
            + checked.ranking_problems
        ),
    )
    failed = len({f.rel for f in scan.changed} - loaded) + len(rechecked)
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


class DryRun:
    """A store that records nothing and keeps what a sync would write, in memory.

    ``check`` and ``preview`` run the one sync against it, so they apply exactly the rules
    (per file and across files) that the bot applies when it loads the same directory.
    """

    def __init__(self, *, keep_reviews: bool = True) -> None:
        self.keep_reviews = keep_reviews
        self.shows: dict[str, Show] = {}
        self.reviews: dict[str, Review] = {}  # by episode key
        self.review_count = 0
        self.rankings: dict[str, CriticRanking] = {}

    async def content_file_records(self) -> dict[str, FileRecord]:
        return {}  # nothing recorded: every file is parsed

    async def load_show(self, slug: str) -> Show | None:
        return self.shows.get(slug)

    async def apply_content_changes(self, changes: ContentChanges) -> None:
        self.shows.update((show.slug, show) for show in changes.shows)
        self.rankings.update((ranking.show_slug, ranking) for ranking in changes.rankings)
        self.review_count += len(changes.reviews)
        if self.keep_reviews:
            self.reviews.update((review.episode_key, review) for review in changes.reviews)


async def dry_run(content_dir: Path, *, keep_reviews: bool = True) -> tuple[SyncReport, DryRun]:
    """The sync of ``content_dir`` into an empty store, written nowhere."""
    store = DryRun(keep_reviews=keep_reviews)
    report = await sync_content(store, content_dir)
    return report, store
