"""Content tables (shows, episodes, reviews, critic rankings, content_files): all their SQL.

A mixin: the ``Storage`` class inherits it and provides ``self.db``. Queries are
parameterised and portable (``INSERT ... ON CONFLICT (...) DO UPDATE`` exists in PostgreSQL
too). Votes live in another table keyed by ``episode_key`` and are never touched here.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import NamedTuple

import aiosqlite

from bot.content.models import CriticRanking, Episode, Review, Show, show_slug_of
from bot.storage.database import Database

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
    """Writes of one sync, or one part of them (see :meth:`ContentStore.content_update`).

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


def _to_unix(instant: datetime) -> int:
    return int(instant.timestamp())


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class ContentStore:
    """Reads and writes of the content tables. Expects ``self.db`` to be an open Database."""

    db: Database

    # ---- reads ---------------------------------------------------------------------

    async def content_file_hashes(self) -> dict[str, str]:
        """Path (relative to the content directory) -> sha256 of the version loaded."""
        async with self.db.conn.execute("SELECT path, sha256 FROM content_files") as cursor:
            rows = await cursor.fetchall()
        return {row[0]: row[1] for row in rows}

    async def content_file_records(self) -> dict[str, FileRecord]:
        """Path (relative to the content directory) -> what was recorded of that file."""
        async with self.db.conn.execute(
            "SELECT path, sha256, size, mtime_ns, stat_checked_ns FROM content_files"
        ) as cursor:
            cursor.row_factory = None  # plain tuples: a third of the time of sqlite3.Row
            rows = await cursor.fetchall()
        return {row[0]: row[1:] for row in rows}

    async def load_shows(self) -> list[Show]:
        """Every show with its episodes (by season, then number), shows by slug."""
        return await self._load_shows(None)

    async def load_show(self, slug: str) -> Show | None:
        shows = await self._load_shows(slug)
        return shows[0] if shows else None

    async def _load_shows(self, slug: str | None) -> list[Show]:
        show_sql = "SELECT slug, title, network, timezone FROM shows"
        episode_sql = "SELECT show_slug, season, number, title, release_at, aliases FROM episodes"
        params: tuple[str, ...] = ()
        if slug is not None:
            show_sql += " WHERE slug = ?"
            episode_sql += " WHERE show_slug = ?"
            params = (slug,)
        show_sql += " ORDER BY slug"
        episode_sql += " ORDER BY show_slug, season, number"
        async with self.db.conn.execute(show_sql, params) as cursor:
            show_rows = await cursor.fetchall()
        async with self.db.conn.execute(episode_sql, params) as cursor:
            episode_rows = await cursor.fetchall()
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
            "SELECT episode_key, rating, verdict, author, published, body, ending "
            "FROM reviews WHERE episode_key = ?",
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
        )

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
        """Write one sync's changes atomically: readers see all of them or none."""
        if changes.is_empty():
            return
        async with self.content_update() as update:
            await update.apply(changes)

    @asynccontextmanager
    async def content_update(self) -> AsyncIterator[ContentUpdate]:
        """One transaction for a sync's writes, applied in as many parts as it takes.

        A sync streams its reviews through in batches, so that it never holds the whole
        catalogue in memory; readers still see all of the sync or none of it. If the block
        raises, nothing is written.
        """
        async with self.db.transaction() as conn:
            yield ContentUpdate(conn)


class ContentUpdate:
    """Writes into the transaction :meth:`ContentStore.content_update` opened."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def apply(self, changes: ContentChanges) -> None:
        conn = self._conn
        for slug in changes.removed_shows:
            await conn.execute("DELETE FROM episodes WHERE show_slug = ?", (slug,))
            await conn.execute("DELETE FROM shows WHERE slug = ?", (slug,))
        for show in changes.shows:
            await _replace_show(conn, show)
        for slug in changes.removed_rankings:
            await conn.execute("DELETE FROM critic_rankings WHERE show_slug = ?", (slug,))
        for ranking in changes.rankings:
            await _replace_ranking(conn, ranking)
        if changes.removed_reviews:
            await conn.executemany(
                "DELETE FROM reviews WHERE episode_key = ?",
                [(key,) for key in changes.removed_reviews],
            )
        if changes.reviews:
            await conn.executemany(
                "INSERT INTO reviews (episode_key, show_slug, rating, verdict, author, "
                "published, body, ending) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (episode_key) DO UPDATE SET show_slug = excluded.show_slug, "
                "rating = excluded.rating, verdict = excluded.verdict, "
                "author = excluded.author, published = excluded.published, "
                "body = excluded.body, ending = excluded.ending",
                [
                    (
                        r.episode_key,
                        show_slug_of(r.episode_key),
                        r.rating,
                        r.verdict,
                        r.author,
                        r.published.isoformat(),
                        r.body,
                        r.ending,
                    )
                    for r in changes.reviews
                ],
            )
        if changes.forget_files:
            await conn.executemany(
                "DELETE FROM content_files WHERE path = ?",
                [(path,) for path in changes.forget_files],
            )
        await self._record_files(changes)

    async def _record_files(self, changes: ContentChanges) -> None:
        conn = self._conn
        now = int(time.time())
        stats = changes.file_stats
        checked = changes.stats_checked_ns
        if changes.file_hashes:
            rows = []
            for path, sha in changes.file_hashes.items():
                stat = stats.get(path)
                if stat is None:
                    rows.append((path, sha, now, None, None, None))
                else:
                    rows.append((path, sha, now, stat.size, stat.mtime_ns, checked))
            await conn.executemany(
                "INSERT INTO content_files (path, sha256, loaded_at, size, mtime_ns, "
                "stat_checked_ns) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, "
                "loaded_at = excluded.loaded_at, size = excluded.size, "
                "mtime_ns = excluded.mtime_ns, stat_checked_ns = excluded.stat_checked_ns",
                rows,
            )
        restated = [
            (stat.size, stat.mtime_ns, checked, path)
            for path, stat in stats.items()
            if path not in changes.file_hashes
        ]
        if restated:
            await conn.executemany(
                "UPDATE content_files SET size = ?, mtime_ns = ?, stat_checked_ns = ? "
                "WHERE path = ?",
                restated,
            )
        if changes.recheck_files:
            await conn.executemany(
                "UPDATE content_files SET sha256 = ? WHERE path = ?",
                [(RECHECK_HASH, path) for path in changes.recheck_files],
            )


async def _replace_show(conn: aiosqlite.Connection, show: Show) -> None:
    """Upsert the show and its episodes; delete only the episodes the file no longer lists.

    Upserting rather than delete-and-reinsert keeps the rows of unchanged episodes in place,
    so nothing that refers to an episode_key sees it disappear and come back.
    """
    await conn.execute(
        "INSERT INTO shows (slug, title, network, timezone) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (slug) DO UPDATE SET title = excluded.title, "
        "network = excluded.network, timezone = excluded.timezone",
        (show.slug, show.title, show.network, show.timezone),
    )
    async with conn.execute(
        "SELECT episode_key FROM episodes WHERE show_slug = ?", (show.slug,)
    ) as cursor:
        existing = {row[0] for row in await cursor.fetchall()}
    gone = existing - {e.key for e in show.episodes}
    if gone:
        await conn.executemany(
            "DELETE FROM episodes WHERE episode_key = ?", [(key,) for key in sorted(gone)]
        )
    if show.episodes:
        await conn.executemany(
            "INSERT INTO episodes (episode_key, show_slug, season, number, title, release_at, "
            "aliases) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (episode_key) DO UPDATE SET title = excluded.title, "
            "release_at = excluded.release_at, aliases = excluded.aliases",
            _episode_rows(show.episodes),
        )


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
        )
        for e in episodes
    ]


async def _replace_ranking(conn: aiosqlite.Connection, ranking: CriticRanking) -> None:
    await conn.execute("DELETE FROM critic_rankings WHERE show_slug = ?", (ranking.show_slug,))
    await conn.executemany(
        "INSERT INTO critic_rankings (show_slug, position, episode_code, author) "
        "VALUES (?, ?, ?, ?)",
        [
            (ranking.show_slug, position, code, ranking.author)
            for position, code in enumerate(ranking.best_first, start=1)
        ],
    )
