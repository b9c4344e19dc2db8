"""Content tables (shows, episodes, reviews, critic rankings, content_files): all their SQL.

A mixin: the ``Storage`` class inherits it and provides ``self.db``, on either backend.
Queries are parameterised and portable (``INSERT ... ON CONFLICT (...) DO UPDATE`` exists in
PostgreSQL too); writes are plain statements with their rows, which the backend runs as one
transaction (on SQLite in one trip to the writer's thread). Votes live in another table keyed
by ``episode_key`` and are never touched here.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import NamedTuple, Protocol

from bot.content.models import CriticRanking, Episode, Review, Show, show_slug_of
from bot.storage.backend import Database, Params, Statement

# Recorded for a file that must be parsed again on the next sync even though its bytes did
# not change: no real sha256 equals it, so the file never counts as unchanged.
RECHECK_HASH = ""


class FileStat(NamedTuple):
    """What ``os.stat`` said of a content file: enough to notice an edit without reading it."""

    size: int
    mtime_ns: int


# What ``content_files`` remembers of one file: (sha256, size, mtime_ns, stat_checked_ns).
# sha256 is the version loaded's, or RECHECK_HASH; size and mtime_ns are the file's when its
# bytes were read, None if none was recorded; stat_checked_ns is time.time_ns() at the start
# of the sync that recorded them. A plain tuple: a sync reads one per content file (20,000 at
# full scale), and a named tuple would cost five times as much to build.
FileRecord = tuple[str, int | None, int | None, int | None]


@dataclass(frozen=True)
class ContentChanges:
    """Writes of one sync, or one part of them (see :meth:`ContentStore.apply_content_changes`).

    Rows are replaced per file: a show replaces its show row and episodes, a ranking its
    positions, a review its row. ``file_hashes`` records the files whose rows were written;
    ``file_stats`` the stat of those files and of unchanged files whose stat moved (their
    hash stays); ``forget_files`` drops the records of deleted files; ``recheck_files``
    marks files whose rows stay (the last good version) but that must be validated again
    next time.
    """

    shows: tuple[Show, ...] = ()
    rankings: tuple[CriticRanking, ...] = ()
    reviews: tuple[Review, ...] = ()
    removed_shows: tuple[str, ...] = ()  # slugs
    removed_rankings: tuple[str, ...] = ()  # slugs
    removed_reviews: tuple[str, ...] = ()  # episode keys
    file_hashes: Mapping[str, str] = field(default_factory=dict)
    file_stats: Mapping[str, FileStat] = field(default_factory=dict)
    # time.time_ns() when the sync started, before any stat in file_stats was taken.
    stats_checked_ns: int | None = None
    forget_files: tuple[str, ...] = ()
    recheck_files: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (
            self.shows
            or self.rankings
            or self.reviews
            or self.removed_shows
            or self.removed_rankings
            or self.removed_reviews
            or self.file_hashes
            or self.file_stats
            or self.forget_files
            or self.recheck_files
        )


class ContentBackend(Protocol):
    """What the content sync needs of a store: the database, or a dry run's stand-in."""

    async def content_file_records(self) -> dict[str, FileRecord]: ...

    async def load_show(self, slug: str) -> Show | None: ...

    async def apply_content_changes(self, changes: ContentChanges) -> None: ...


def _to_unix(instant: datetime) -> int:
    return int(instant.timestamp())


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


# What another process's content write changed (``bot/storage/backend.py``): the catalogue
# (show or episode rows), or reviews and critic rankings only.
CATALOGUE_CHANGED = "catalogue"
REVIEWS_CHANGED = "reviews"
# Not a change: ``python -m bot reload`` asks the leader to reload the content files.
RELOAD_REQUESTED = "reload"


class ContentStore:
    """Reads and writes of the content tables. Expects ``self.db`` to be an open Database.

    Every content write announces itself in its own transaction (``content:catalogue`` or
    ``content:reviews``), so the other processes on a shared database rebuild what they hold
    of the content once it is committed: ``content_listeners`` hear it, and hear None when
    any content may have changed unheard (see ``Storage.trust_caches``).
    """

    db: Database
    content_listeners: list[Callable[[str | None], None]]

    def _init_content_listeners(self) -> None:
        self.content_listeners = []

    def _content_changed(self, change: str | None) -> None:
        for listener in list(self.content_listeners):
            listener(change)

    # ---- reads ---------------------------------------------------------------------

    async def content_file_hashes(self) -> dict[str, str]:
        """Path (relative to the content directory) -> sha256 of the version loaded."""
        rows = await self.db.fetch_all("SELECT path, sha256 FROM content_files")
        return {row[0]: row[1] for row in rows}

    async def content_file_records(self) -> dict[str, FileRecord]:
        """Path (relative to the content directory) -> what was recorded of that file."""
        rows = await self.db.fetch_all(
            "SELECT path, sha256, size, mtime_ns, stat_checked_ns FROM content_files",
            tuples=True,  # a third of the time of sqlite3.Row
        )
        return {row[0]: row[1:] for row in rows}

    async def load_shows(self) -> list[Show]:
        """Every show with its episodes (by season, then number), shows by slug."""
        return await self._load_shows(None)

    async def load_show(self, slug: str) -> Show | None:
        shows = await self._load_shows(slug)
        return shows[0] if shows else None

    async def _load_shows(self, slug: str | None) -> list[Show]:
        show_sql = "SELECT slug, title, network, timezone FROM shows"
        episode_sql = (
            "SELECT show_slug, season, number, title, release_at, aliases, title_spoils "
            "FROM episodes"
        )
        params: tuple[str, ...] = ()
        if slug is not None:
            show_sql += " WHERE slug = ?"
            episode_sql += " WHERE show_slug = ?"
            params = (slug,)
        show_sql += " ORDER BY slug"
        episode_sql += " ORDER BY show_slug, season, number"
        show_rows = await self.db.fetch_all(show_sql, params)
        episode_rows = await self.db.fetch_all(episode_sql, params)
        titles = {row["slug"]: row["title"] for row in show_rows}
        episodes: dict[str, list[Episode]] = defaultdict(list)
        for row in episode_rows:
            show_slug = row["show_slug"]
            episodes[show_slug].append(
                Episode(
                    show_slug=show_slug,
                    show_title=titles.get(show_slug, ""),
                    season=row["season"],
                    number=row["number"],
                    title=row["title"],
                    release_at=_from_unix(row["release_at"]),
                    aliases=tuple(a for a in row["aliases"].split("\n") if a),
                    title_spoils=bool(row["title_spoils"]),
                )
            )
        return [
            Show(
                slug=row["slug"],
                title=row["title"],
                network=row["network"],
                timezone=row["timezone"],
                episodes=tuple(episodes.get(row["slug"], ())),
            )
            for row in show_rows
        ]

    async def get_review(self, episode_key: str) -> Review | None:
        rows = await self.db.read(
            "SELECT episode_key, rating, verdict, author, published, body, ending, "
            "spoiler_terms FROM reviews WHERE episode_key = ?",
            (episode_key,),
        )
        if not rows:
            return None
        row = rows[0]
        return Review(
            episode_key=row["episode_key"],
            rating=float(row["rating"]),
            verdict=row["verdict"],
            author=row["author"],
            published=date.fromisoformat(row["published"]),
            body=row["body"],
            ending=row["ending"],
            spoiler_terms=_terms(row["spoiler_terms"]),
        )

    async def episode_spoiler_terms(self) -> dict[str, tuple[str, ...]]:
        """Every review's spoiler terms, by episode key (reviews without terms left out)."""
        rows = await self.db.fetch_all(
            "SELECT episode_key, spoiler_terms FROM reviews WHERE spoiler_terms IS NOT NULL",
            tuples=True,
        )
        return {str(key): _terms(terms) for key, terms in rows if _terms(terms)}

    async def get_critic_ranking(self, show_slug: str) -> CriticRanking | None:
        rows = await self.db.read(
            "SELECT episode_code, author FROM critic_rankings WHERE show_slug = ? "
            "ORDER BY position",
            (show_slug,),
        )
        if not rows:
            return None
        return CriticRanking(
            show_slug=show_slug,
            author=rows[0]["author"],
            best_first=tuple(row["episode_code"] for row in rows),
        )

    # ---- writes --------------------------------------------------------------------

    async def apply_content_changes(self, changes: ContentChanges) -> None:
        """Write a sync's changes in short transactions, each file's rows all at once.

        One transaction per sync held the write lock, and with it every vote and setting
        waiting behind it, for as long as the whole catalogue took to write. Instead the
        changes are cut into steps of about ``TRANSACTION_BYTES`` of rows each, so a
        waiting write is delayed by one step at most. A file's rows are never split: a
        reader sees a show with all its episodes, a review whole, or the version before.
        Its record (hash and stat) is written in the same step or a later one, never an
        earlier: a sync cut short leaves rows newer than their records, which the next sync
        parses and writes again, and never a record vouching for rows that are not there.
        """
        if changes.is_empty():
            return
        batch: list[_Step] = []
        size = 0
        for step in _steps(changes):
            if batch and size + step.size > TRANSACTION_BYTES:
                await self._write_step(batch)
                batch, size = [], 0
            batch.append(step)
            size += step.size
        if batch:
            await self._write_step(batch)

    async def _write_step(self, steps: list[_Step]) -> None:
        """One transaction of a sync, announcing what it changed in the same transaction."""
        changed = {step.change for step in steps if step.change is not None}
        announced = (
            [f"content:{CATALOGUE_CHANGED}"]
            if CATALOGUE_CHANGED in changed
            else [f"content:{REVIEWS_CHANGED}"]
            if changed
            else []
        )
        await self.db.run_statements(_statements(steps), announcing=announced)


# About this many bytes of rows per write transaction: a few milliseconds of SQLite's time.
TRANSACTION_BYTES = 64 * 1024
# What a row costs beyond its text, in the same units: index updates, the statement itself
# (measured: an upsert into content_files costs about as much as a kilobyte of review text).
_ROW_BYTES = 1024


class _Step(NamedTuple):
    """Rows that must change together, roughly how many bytes they write, and what other
    processes hold that they change (None: only the records of files)."""

    size: int
    statements: tuple[Statement, ...]
    change: str | None = None


def _statements(steps: list[_Step]) -> list[Statement]:
    return [statement for step in steps for statement in step.statements]


def _executemany(sql: str, rows: Sequence[Params]) -> tuple[Statement, ...]:
    return ((sql, rows),)


def _steps(changes: ContentChanges) -> Iterator[_Step]:
    """The changes as steps, in an order that keeps storage consistent if cut short anywhere.

    Marks to check files again come first: they only cause a file to be parsed again, and
    must be in place before the show change that calls for them is committed.
    """
    if changes.recheck_files:
        marks = [(RECHECK_HASH, path) for path in changes.recheck_files]
        for chunk in _chunks(marks):
            yield _Step(
                len(chunk) * _ROW_BYTES,
                _executemany("UPDATE content_files SET sha256 = ? WHERE path = ?", chunk),
            )
    for slug in changes.removed_shows:
        yield _Step(_ROW_BYTES, _delete_show(slug), CATALOGUE_CHANGED)
    for show in changes.shows:
        yield _Step((1 + len(show.episodes)) * _ROW_BYTES, _replace_show(show), CATALOGUE_CHANGED)
    for slug in changes.removed_rankings:
        yield _Step(
            _ROW_BYTES,
            _executemany("DELETE FROM critic_rankings WHERE show_slug = ?", [(slug,)]),
            REVIEWS_CHANGED,
        )
    for ranking in changes.rankings:
        yield _Step(
            (1 + len(ranking.best_first)) * _ROW_BYTES,
            _replace_ranking(ranking),
            REVIEWS_CHANGED,
        )
    for chunk in _chunks([(key,) for key in changes.removed_reviews]):
        yield _Step(
            len(chunk) * _ROW_BYTES,
            _executemany("DELETE FROM reviews WHERE episode_key = ?", chunk),
            REVIEWS_CHANGED,
        )
    for review in changes.reviews:
        size = _ROW_BYTES + len(review.body) + len(review.ending or "") + len(review.verdict)
        yield _Step(size, _executemany(_UPSERT_REVIEW, [_review_row(review)]), REVIEWS_CHANGED)
    # Records last: after the rows they vouch for, and forgotten after the rows they owned.
    for chunk in _chunks([(path,) for path in changes.forget_files]):
        yield _Step(
            len(chunk) * _ROW_BYTES,
            _executemany("DELETE FROM content_files WHERE path = ?", chunk),
        )
    now = int(time.time())
    stats = changes.file_stats
    checked = changes.stats_checked_ns
    # content_files rows: path, sha256, loaded_at, then size, mtime_ns, stat_checked_ns if known.
    recorded: list[tuple[str, str, int, int | None, int | None, int | None]] = []
    for path, sha in changes.file_hashes.items():
        stat = stats.get(path)
        if stat is None:
            recorded.append((path, sha, now, None, None, None))
        else:
            recorded.append((path, sha, now, stat.size, stat.mtime_ns, checked))
    for chunk in _chunks(recorded):
        yield _Step(len(chunk) * _ROW_BYTES, _executemany(_UPSERT_RECORD, chunk))
    restated = [
        (stat.size, stat.mtime_ns, checked, path)
        for path, stat in stats.items()
        if path not in changes.file_hashes
    ]
    for chunk in _chunks(restated):
        yield _Step(
            len(chunk) * _ROW_BYTES,
            _executemany(
                "UPDATE content_files SET size = ?, mtime_ns = ?, stat_checked_ns = ? "
                "WHERE path = ?",
                chunk,
            ),
        )


def _chunks(rows: Sequence[Params]) -> Iterator[Sequence[Params]]:
    """Rows in runs that each fit one transaction."""
    per_chunk = max(1, TRANSACTION_BYTES // _ROW_BYTES)
    for start in range(0, len(rows), per_chunk):
        yield rows[start : start + per_chunk]


_UPSERT_REVIEW = (
    "INSERT INTO reviews (episode_key, show_slug, rating, verdict, author, "
    "published, body, ending, spoiler_terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (episode_key) DO UPDATE SET show_slug = excluded.show_slug, "
    "rating = excluded.rating, verdict = excluded.verdict, "
    "author = excluded.author, published = excluded.published, "
    "body = excluded.body, ending = excluded.ending, spoiler_terms = excluded.spoiler_terms"
)
_UPSERT_RECORD = (
    "INSERT INTO content_files (path, sha256, loaded_at, size, mtime_ns, "
    "stat_checked_ns) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, "
    "loaded_at = excluded.loaded_at, size = excluded.size, "
    "mtime_ns = excluded.mtime_ns, stat_checked_ns = excluded.stat_checked_ns"
)


def _review_row(review: Review) -> tuple[object, ...]:
    return (
        review.episode_key,
        show_slug_of(review.episode_key),
        review.rating,
        review.verdict,
        review.author,
        review.published.isoformat(),
        review.body,
        review.ending,
        json.dumps(list(review.spoiler_terms)) if review.spoiler_terms else None,
    )


def _terms(stored: str | None) -> tuple[str, ...]:
    return tuple(json.loads(stored)) if stored else ()


def _delete_show(slug: str) -> tuple[Statement, ...]:
    return (
        ("DELETE FROM episodes WHERE show_slug = ?", [(slug,)]),
        ("DELETE FROM shows WHERE slug = ?", [(slug,)]),
    )


def _replace_show(show: Show) -> tuple[Statement, ...]:
    """Upsert the show and its episodes; delete only the episodes the file no longer lists.

    Upserting rather than delete-and-reinsert keeps the rows of unchanged episodes in place,
    so nothing that refers to an episode_key sees it disappear and come back.
    """
    upsert_show = (
        "INSERT INTO shows (slug, title, network, timezone) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (slug) DO UPDATE SET title = excluded.title, "
        "network = excluded.network, timezone = excluded.timezone",
        [(show.slug, show.title, show.network, show.timezone)],
    )
    if not show.episodes:
        return upsert_show, ("DELETE FROM episodes WHERE show_slug = ?", [(show.slug,)])
    # The show's episodes found by its index, the ones still listed kept.
    keys = sorted(e.key for e in show.episodes)
    delete_gone = (
        "DELETE FROM episodes WHERE show_slug = ? "
        f"AND episode_key NOT IN ({', '.join('?' * len(keys))})",
        [(show.slug, *keys)],
    )
    upsert_episodes = (
        "INSERT INTO episodes (episode_key, show_slug, season, number, title, release_at, "
        "aliases, title_spoils) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (episode_key) DO UPDATE SET title = excluded.title, "
        "release_at = excluded.release_at, aliases = excluded.aliases, "
        "title_spoils = excluded.title_spoils",
        _episode_rows(show.episodes),
    )
    return upsert_show, delete_gone, upsert_episodes


def _episode_rows(episodes: Iterable[Episode]) -> list[tuple[object, ...]]:
    return [
        (
            e.key,
            e.show_slug,
            e.season,
            e.number,
            e.title,
            _to_unix(e.release_at),
            "\n".join(e.aliases),
            e.title_spoils,
        )
        for e in episodes
    ]


def _replace_ranking(ranking: CriticRanking) -> tuple[Statement, ...]:
    return (
        ("DELETE FROM critic_rankings WHERE show_slug = ?", [(ranking.show_slug,)]),
        (
            "INSERT INTO critic_rankings (show_slug, position, episode_code, author) "
            "VALUES (?, ?, ?, ?)",
            [
                (ranking.show_slug, position, code, ranking.author)
                for position, code in enumerate(ranking.best_first, start=1)
            ],
        ),
    )
