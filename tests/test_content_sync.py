"""Content sync: only changed files are parsed, bad edits never replace the served version."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import pytest

from bot.content import sync as sync_module
from bot.content.files import read_file
from bot.content.models import CriticRanking, Review, Show
from bot.content.sync import dry_run, sync_content
from bot.storage import Storage
from bot.storage import content as content_store_module
from bot.storage.content import RECHECK_HASH, ContentChanges, ContentStore
from bot.storage.migrations import migrations, statements
from tests.content_factory import (
    episode_table,
    ranking_toml,
    review_md,
    show_toml,
    write,
    write_broken_tree,
)

INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[Storage]:
    storage = await Storage.open(database_url, tmp_path)
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Storage]:
    """For tests that read the SQLite file through a connection of their own."""
    storage = await Storage.open(f"sqlite:///{tmp_path}/t.db", tmp_path)
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """Two shows, three reviews and a ranking."""
    root = tmp_path / "data"
    write(
        root,
        "shows/alpha.toml",
        show_toml(
            title="Alpha",
            timezone="Europe/London",
            episodes=[
                episode_table(1, 1, "Pilot", date(2025, 7, 1), ["first one"]),
                episode_table(1, 2, "Second", datetime(2025, 7, 8, 20, 0, tzinfo=UTC)),
                episode_table(1, 3, "Third", date(2025, 1, 15)),
            ],
        ),
    )
    write(root, "shows/beta.toml", show_toml(title="Beta", episodes=[episode_table(1, 1)]))
    write(root, "reviews/alpha/s01e01.md", review_md("Good start.", "It was a dream."))
    write(root, "reviews/alpha/s01e02.md", review_md("Better.", rating=4.5))
    write(root, "reviews/beta/s01e01.md", review_md("Fine."))
    write(
        root,
        "rankings/alpha.toml",
        ranking_toml(["s01e03", "s01e01", "s01e02"], order="worst-to-best"),
    )
    return root


ALL_FILES = (
    "rankings/alpha.toml",
    "reviews/alpha/s01e01.md",
    "reviews/alpha/s01e02.md",
    "reviews/beta/s01e01.md",
    "shows/alpha.toml",
    "shows/beta.toml",
)


# An mtime long before any sync in these tests: a stat this old vouches for its file.
OLD_NS = 1_700_000_000 * 10**9


def _age(root: Path, mtime_ns: int = OLD_NS) -> None:
    """Give every file under ``root`` the same mtime, long before the next sync starts."""
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(mtime_ns, mtime_ns))


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every file the sync reads from now on, as its last two path parts."""
    reads: list[str] = []
    real_read = read_file  # what the sync calls, until replaced below

    def counting_read(path):
        reads.append("/".join(Path(path).parts[-2:]))
        return real_read(path)

    monkeypatch.setattr(sync_module, "read_file", counting_read)
    return reads


def _same_size_edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` with ``new`` (same length) in the file, keeping its mtime."""
    assert len(old) == len(new)
    info = path.stat()
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    assert path.stat().st_size == info.st_size
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _shows(store: ContentStore) -> dict[str, Show]:
    return {show.slug: show for show in await store.load_shows()}


def _version_before(migration: str) -> int:
    """The schema version just before the SQLite migration whose name contains ``migration``."""
    return next(number for number, name, _ in migrations("sqlite") if migration in name) - 1


def _database_at(version: int, path: Path, root: Path) -> None:
    """A SQLite database at schema ``version`` (migrations applied by hand, as Embargo applied
    them then) that has loaded ``root``: show alpha with episode s01e01, and every file under
    ``root`` recorded as loaded as it is on disk now. For upgrade tests."""
    with sqlite3.connect(path) as old:
        for number, _, script in migrations("sqlite")[:version]:
            for statement in statements(script):
                old.execute(statement)
            old.execute(f"PRAGMA user_version = {number}")
        old.execute("INSERT INTO shows VALUES ('alpha', 'Alpha', 'Test Network', 'Europe/London')")
        old.execute(
            "INSERT INTO episodes (episode_key, show_slug, season, number, title, release_at) "
            "VALUES ('alpha/s01e01', 'alpha', 1, 1, 'Episode 1.1', 0)"
        )
        for file in sorted(item for item in root.rglob("*") if item.is_file()):
            info = file.stat()
            old.execute(
                "INSERT INTO content_files (path, sha256, loaded_at, size, mtime_ns, "
                "stat_checked_ns) VALUES (?, ?, 0, ?, ?, ?)",
                (
                    file.relative_to(root).as_posix(),
                    _sha(file),
                    info.st_size,
                    info.st_mtime_ns,
                    time.time_ns(),
                ),
            )
    old.close()


async def test_cold_load_stores_exactly_what_the_parser_reads(store, content):
    report = await sync_content(store, content)

    assert report.loaded == ALL_FILES
    assert report.unchanged == ()
    assert report.removed == ()
    assert report.problems == ()
    _, parsed = await dry_run(content)
    assert await store.load_shows() == [parsed.shows[slug] for slug in sorted(parsed.shows)]
    for review in parsed.reviews.values():
        assert await store.get_review(review.episode_key) == review
    assert await store.get_critic_ranking("alpha") == CriticRanking(
        "alpha", "A. Critic", ("s01e02", "s01e01", "s01e03")
    )
    assert await store.get_critic_ranking("beta") is None
    assert await store.get_review("beta/s09e09") is None
    hashes = await store.content_file_hashes()
    assert hashes == {rel: _sha(content / rel) for rel in ALL_FILES}


async def test_release_times_survive_storage(store, content):
    await sync_content(store, content)
    alpha = (await _shows(store))["alpha"]
    assert [e.release_at for e in alpha.episodes] == [
        datetime(2025, 6, 30, 23, 0, tzinfo=UTC),  # London midnight in summer (BST)
        datetime(2025, 7, 8, 20, 0, tzinfo=UTC),
        datetime(2025, 1, 15, 0, 0, tzinfo=UTC),  # London midnight in winter (GMT)
    ]
    assert alpha.episodes[0].aliases == ("first one",)
    assert alpha.episodes[1].aliases == ()


async def test_unchanged_resync_loads_nothing(store, content):
    await sync_content(store, content)
    report = await sync_content(store, content)
    assert report.loaded == ()
    assert report.unchanged == ALL_FILES
    assert report.problems == ()


async def test_touching_a_file_without_changing_it_loads_nothing(store, content):
    await sync_content(store, content)
    path = content / "shows/alpha.toml"
    path.write_bytes(path.read_bytes())
    report = await sync_content(store, content)
    assert report.loaded == ()


async def test_one_changed_review_reloads_only_it(store, content):
    await sync_content(store, content)
    write(content, "reviews/alpha/s01e02.md", review_md("Rewritten.", "New twist.", rating=2))
    report = await sync_content(store, content)
    assert report.loaded == ("reviews/alpha/s01e02.md",)
    assert len(report.unchanged) == len(ALL_FILES) - 1
    review = await store.get_review("alpha/s01e02")
    assert review is not None
    assert (review.body, review.ending, review.rating) == ("Rewritten.", "New twist.", 2.0)


async def test_changed_show_replaces_its_episodes(store, content):
    await sync_content(store, content)
    write(
        content,
        "shows/beta.toml",
        show_toml(title="Beta!", episodes=[episode_table(1, 1, "Renamed"), episode_table(1, 2)]),
    )
    report = await sync_content(store, content)
    assert report.loaded == ("shows/beta.toml",)
    beta = (await _shows(store))["beta"]
    assert beta.title == "Beta!"
    assert [(e.code, e.title, e.show_title) for e in beta.episodes] == [
        ("s01e01", "Renamed", "Beta!"),
        ("s01e02", "Episode 1.2", "Beta!"),
    ]


async def test_title_spoils_survives_storage_and_a_change_to_it_alone_is_loaded(store, content):
    path = content / "shows/alpha.toml"
    marked = show_toml(
        title="Alpha",
        episodes=[{**episode_table(1, 1, "Pilot"), "title_spoils": True}, episode_table(1, 2)],
    )
    path.write_text(marked)
    await sync_content(store, content)
    alpha = (await _shows(store))["alpha"]
    assert [e.title_spoils for e in alpha.episodes] == [True, False]

    path.write_text(marked.replace("title_spoils = true", "title_spoils = false"))
    report = await sync_content(store, content)
    assert report.loaded == ("shows/alpha.toml",)
    alpha = (await _shows(store))["alpha"]
    assert [e.title_spoils for e in alpha.episodes] == [False, False]


async def test_show_files_loaded_before_title_spoils_existed_are_loaded_again(tmp_path):
    """A file that already said ``title_spoils = true`` (ignored then, as an unknown key) is
    unchanged on disk after the upgrade, yet must be loaded again to take the mark."""
    root = tmp_path / "data"
    marked = show_toml(title="Alpha", episodes=[{**episode_table(1, 1), "title_spoils": True}])
    write(root, "shows/alpha.toml", marked)
    write(root, "reviews/alpha/s01e01.md", review_md("Fine."))
    _age(root)
    path = tmp_path / "before.db"
    _database_at(_version_before("title_spoils"), path, root)
    store = await Storage.open(f"sqlite:///{path}", tmp_path)
    try:
        report = await sync_content(store, root)
        # The review too: a later migration reads review files again for their spoiler terms.
        assert report.loaded == ("reviews/alpha/s01e01.md", "shows/alpha.toml")
        [episode] = (await _shows(store))["alpha"].episodes
        assert episode.title_spoils
    finally:
        await store.close()


async def test_review_files_loaded_before_spoiler_terms_existed_are_loaded_again(tmp_path):
    """A review that already listed ``spoiler_terms`` (ignored then, as an unknown key) is
    unchanged on disk after the upgrade, yet must be loaded again for the guard to know them."""
    root = tmp_path / "data"
    write(root, "shows/alpha.toml", show_toml(title="Alpha", episodes=[episode_table(1, 1)]))
    write(root, "reviews/alpha/s01e01.md", review_md("Fine.", spoiler_terms=["the butler"]))
    _age(root)
    path = tmp_path / "before.db"
    _database_at(_version_before("member_spoilers"), path, root)
    store = await Storage.open(f"sqlite:///{path}", tmp_path)
    try:
        report = await sync_content(store, root)
        assert report.loaded == ("reviews/alpha/s01e01.md",)
        assert report.unchanged == ("shows/alpha.toml",)
        assert await store.episode_spoiler_terms() == {"alpha/s01e01": ("the butler",)}
    finally:
        await store.close()


async def test_bad_show_edit_keeps_the_last_good_version(store, content):
    await sync_content(store, content)
    before = await _shows(store)
    good_hash = (await store.content_file_hashes())["shows/alpha.toml"]
    text = (content / "shows/alpha.toml").read_text()
    bad = text.replace('title = "Second"', 'title = "Second (edited)"').replace(
        "released = 2025-01-15", "released = 2025-01-15T21:00:00"
    )
    write(content, "shows/alpha.toml", bad)

    report = await sync_content(store, content)

    assert report.loaded == ()
    [problem] = report.errors
    line = next(i for i, row in enumerate(bad.splitlines(), 1) if "2025-01-15T21" in row)
    assert str(problem).startswith(f"shows/alpha.toml:{line}: episode s01e03: 'released'")
    assert await _shows(store) == before  # the edited title did not half-load either
    assert (await store.content_file_hashes())["shows/alpha.toml"] == good_hash

    # Still reported on the next sync: a broken file is never taken as up to date.
    again = await sync_content(store, content)
    assert [str(p) for p in again.errors] == [str(problem)]

    write(content, "shows/alpha.toml", bad.replace("2025-01-15T21:00:00", "2025-01-15T21:00:00Z"))
    fixed = await sync_content(store, content)
    assert fixed.loaded == ("shows/alpha.toml",)
    assert (await _shows(store))["alpha"].episodes[1].title == "Second (edited)"


async def test_bad_review_edit_keeps_the_last_good_review(store, content):
    await sync_content(store, content)
    before = await store.get_review("alpha/s01e01")
    write(content, "reviews/alpha/s01e01.md", review_md("New body.", rating=7))
    report = await sync_content(store, content)
    assert report.loaded == ()
    assert [str(p) for p in report.errors] == [
        "reviews/alpha/s01e01.md:2: 'rating' must be between 0 and 5 in half steps, like "
        "rating = 4.5, got 7"
    ]
    assert await store.get_review("alpha/s01e01") == before


async def test_deleted_files_remove_their_rows(store, content):
    await sync_content(store, content)
    (content / "reviews/alpha/s01e02.md").unlink()
    (content / "rankings/alpha.toml").unlink()
    report = await sync_content(store, content)
    assert report.removed == ("rankings/alpha.toml", "reviews/alpha/s01e02.md")
    assert report.loaded == ()
    assert await store.get_review("alpha/s01e02") is None
    assert await store.get_review("alpha/s01e01") is not None
    assert await store.get_critic_ranking("alpha") is None
    assert "reviews/alpha/s01e02.md" not in await store.content_file_hashes()


async def test_deleted_show_removes_it_and_flags_its_remaining_reviews(store, content):
    await sync_content(store, content)
    (content / "shows/beta.toml").unlink()
    report = await sync_content(store, content)
    assert report.removed == ("shows/beta.toml",)
    assert set(await _shows(store)) == {"alpha"}
    assert [str(p) for p in report.errors] == [
        "reviews/beta: 1 review not loaded: there is no show file shows/beta.toml"
    ]
    assert "reviews/beta/s01e01.md" not in report.unchanged
    # The orphan keeps being reported until it is fixed, then goes quiet.
    assert [str(p) for p in (await sync_content(store, content)).errors] == [str(report.errors[0])]
    (content / "reviews/beta/s01e01.md").unlink()
    final = await sync_content(store, content)
    assert final.removed == ("reviews/beta/s01e01.md",)
    assert final.problems == ()
    assert await store.get_review("beta/s01e01") is None


async def test_review_before_its_show(store, tmp_path):
    root = tmp_path / "data"
    write(root, "reviews/gamma/s01e01.md", review_md("Early review."))
    first = await sync_content(store, root)
    assert first.loaded == ()
    assert [str(p) for p in first.errors] == [
        "reviews/gamma: 1 review not loaded: there is no show file shows/gamma.toml"
    ]
    assert await store.get_review("gamma/s01e01") is None

    write(root, "shows/gamma.toml", show_toml(title="Gamma", episodes=[episode_table(1, 1)]))
    second = await sync_content(store, root)
    assert second.loaded == ("reviews/gamma/s01e01.md", "shows/gamma.toml")
    assert second.problems == ()
    review = await store.get_review("gamma/s01e01")
    assert review is not None
    assert review.body == "Early review."


async def test_review_checked_against_the_stored_show_when_the_show_is_unchanged(store, content):
    await sync_content(store, content)
    write(content, "reviews/beta/s01e07.md", review_md())
    report = await sync_content(store, content)
    assert [str(p) for p in report.errors] == [
        "reviews/beta/s01e07.md: episode s01e07 is not in shows/beta.toml: add it there, or "
        "fix this file's name"
    ]
    # A broken show file still serves its last good episodes to check reviews against.
    write(content, "shows/beta.toml", "title = [broken\n")
    write(content, "reviews/beta/s01e01.md", review_md("Edited while the show is broken."))
    report = await sync_content(store, content)
    assert report.loaded == ("reviews/beta/s01e01.md",)


async def test_show_dropping_a_reviewed_episode_flags_the_review(store, content):
    await sync_content(store, content)
    write(content, "shows/beta.toml", show_toml(title="Beta", episodes=[episode_table(1, 2)]))
    report = await sync_content(store, content)
    assert report.loaded == ("shows/beta.toml",)
    assert [p.path for p in report.errors] == ["reviews/beta/s01e01.md"]
    assert (await store.content_file_hashes())["reviews/beta/s01e01.md"] == RECHECK_HASH
    # Reported again until fixed; fixed by restoring the episode.
    assert [p.path for p in (await sync_content(store, content)).errors] == [
        "reviews/beta/s01e01.md"
    ]
    write(content, "shows/beta.toml", show_toml(title="Beta", episodes=[episode_table(1, 1)]))
    report = await sync_content(store, content)
    assert report.problems == ()
    assert report.loaded == ("reviews/beta/s01e01.md", "shows/beta.toml")


async def test_show_dropping_a_ranked_episode_flags_the_ranking(store, content):
    await sync_content(store, content)
    write(
        content,
        "shows/alpha.toml",
        show_toml(title="Alpha", episodes=[episode_table(1, 1), episode_table(1, 2)]),
    )
    report = await sync_content(store, content)
    ranking_errors = [p for p in report.errors if p.path == "rankings/alpha.toml"]
    assert [p.message for p in ranking_errors] == ["episode s01e03 is not in shows/alpha.toml"]
    # The last good ranking keeps serving meanwhile.
    ranking = await store.get_critic_ranking("alpha")
    assert ranking is not None
    assert ranking.best_first == ("s01e02", "s01e01", "s01e03")


async def test_show_and_ranking_changed_together(store, content):
    await sync_content(store, content)
    write(
        content, "shows/beta.toml", show_toml(episodes=[episode_table(1, 1), episode_table(1, 2)])
    )
    write(content, "rankings/beta.toml", ranking_toml(["s01e02", "s01e01"]))
    report = await sync_content(store, content)
    assert report.loaded == ("rankings/beta.toml", "shows/beta.toml")
    ranking = await store.get_critic_ranking("beta")
    assert ranking is not None
    assert ranking.best_first == ("s01e02", "s01e01")


async def test_sync_never_touches_votes(store, content):
    # The votes table arrives in a later migration; a stand-in with the same key proves
    # that replacing and deleting content rows leaves rows keyed by episode_key alone.
    async with store.db.transaction() as tx:
        await tx.execute("CREATE TABLE votes_probe (episode_key TEXT, user_id BIGINT)")
        await tx.execute("INSERT INTO votes_probe VALUES ('beta/s01e01', 1), ('alpha/s01e02', 2)")
    await sync_content(store, content)
    write(content, "shows/beta.toml", show_toml(episodes=[episode_table(1, 2)]))
    (content / "reviews/alpha/s01e02.md").unlink()
    await sync_content(store, content)
    rows = [
        tuple(row)
        for row in await store.db.fetch_all("SELECT episode_key, user_id FROM votes_probe")
    ]
    assert sorted(rows) == [("alpha/s01e02", 2), ("beta/s01e01", 1)]


async def test_misnamed_files_are_reported_every_sync(store, content):
    write(content, "reviews/alpha/S1E3.md", review_md())
    write(content, "shows/notes.txt", "scratch")
    for _ in range(2):
        report = await sync_content(store, content)
        assert sorted((p.path, p.severity) for p in report.problems) == [
            ("reviews/alpha/S1E3.md", "error"),
            ("shows/notes.txt", "warning"),
        ]


async def test_a_failed_write_never_leaves_a_record_vouching_for_missing_rows(store, monkeypatch):
    # One step per transaction: the show commits, then the review's write fails.
    monkeypatch.setattr(content_store_module, "TRANSACTION_BYTES", 1)
    show = Show("delta", "Delta", "N", "UTC")
    bad_review = Review("delta/s01e01", 3.0, "ok", None, date(2024, 1, 1), "Body.", None)
    changes = ContentChanges(
        shows=(show,),
        reviews=(bad_review,),
        file_hashes={"shows/delta.toml": "abc", "reviews/delta/s01e01.md": "def"},
    )
    with pytest.raises(INTEGRITY_ERRORS, match=r"(?i)not.null"):
        await store.apply_content_changes(changes)
    assert [s.slug for s in await store.load_shows()] == ["delta"]
    assert await store.get_review("delta/s01e01") is None
    # Records come after the rows: the next sync parses both files again.
    assert await store.content_file_hashes() == {}


async def test_unreadable_file_is_reported_and_keeps_serving(store, content, monkeypatch):
    await sync_content(store, content)
    real_read = read_file  # what the sync calls, until replaced below

    def failing_read(path):
        if str(path).endswith("shows/beta.toml"):
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(sync_module, "read_file", failing_read)
    # A new mtime: the sync must read the file, whatever the stat rule would allow.
    os.utime(content / "shows/beta.toml", ns=(OLD_NS, OLD_NS))
    report = await sync_content(store, content)
    assert [str(p) for p in report.errors] == [
        "shows/beta.toml: cannot read this file: Permission denied"
    ]
    assert report.removed == ()
    assert "beta" in await _shows(store)


# ---- what the stat of a file tells the sync -------------------------------------------


async def test_files_whose_stat_vouches_for_them_are_not_read(store, content, monkeypatch):
    _age(content)
    await sync_content(store, content)
    reads = _count_reads(monkeypatch)
    report = await sync_content(store, content)
    assert report.loaded == ()
    assert report.unchanged == ALL_FILES
    assert reads == []


async def test_same_size_edit_with_a_new_mtime_is_loaded(store, content, monkeypatch):
    _age(content)
    await sync_content(store, content)
    path = content / "reviews/alpha/s01e01.md"
    _same_size_edit(path, "It was a dream.", "It was a cloud.")
    os.utime(path, ns=(OLD_NS, OLD_NS + 1))  # one nanosecond later, the size unchanged
    reads = _count_reads(monkeypatch)
    report = await sync_content(store, content)
    assert report.loaded == ("reviews/alpha/s01e01.md",)
    review = await store.get_review("alpha/s01e01")
    assert review is not None
    assert review.ending == "It was a cloud."
    # Hashed by the scan, then parsed; nothing else read.
    assert reads == ["alpha/s01e01.md", "alpha/s01e01.md"]


async def test_touched_file_is_hashed_once_and_its_new_stat_recorded(store, content, monkeypatch):
    _age(content)
    await sync_content(store, content)
    before = await store.content_file_records()
    os.utime(content / "shows/alpha.toml", ns=(OLD_NS, OLD_NS + 5 * 10**9))
    reads = _count_reads(monkeypatch)

    touched = await sync_content(store, content)
    assert touched.loaded == ()
    assert touched.unchanged == ALL_FILES
    assert reads == ["shows/alpha.toml"]
    after = await store.content_file_records()
    sha_before, *_ = before["shows/alpha.toml"]
    sha_after, _, mtime_ns_after, _ = after["shows/alpha.toml"]
    assert sha_after == sha_before
    assert mtime_ns_after == OLD_NS + 5 * 10**9

    reads.clear()
    again = await sync_content(store, content)
    assert again.loaded == ()
    assert reads == []


async def test_same_size_edit_in_the_recorded_mtime_tick_is_caught(store, content):
    """The racy case: an edit that leaves size and mtime as recorded (a filesystem with
    whole-second stamps, two writes in the same second) is still loaded, because the
    recorded mtime was too close to the moment the sync read the file to vouch for it."""
    path = content / "reviews/alpha/s01e01.md"
    tick = time.time_ns() // 10**9 * 10**9  # this second, as a one-second filesystem stamps
    os.utime(path, ns=(tick, tick))
    await sync_content(store, content)
    _, size, mtime_ns, _ = (await store.content_file_records())["reviews/alpha/s01e01.md"]
    assert (size, mtime_ns) == (path.stat().st_size, tick)

    _same_size_edit(path, "It was a dream.", "It was a cloud.")
    os.utime(path, ns=(tick, tick))
    report = await sync_content(store, content)
    assert report.loaded == ("reviews/alpha/s01e01.md",)
    review = await store.get_review("alpha/s01e01")
    assert review is not None
    assert review.ending == "It was a cloud."


async def test_a_stat_older_than_the_racy_margin_is_trusted(store, content, monkeypatch):
    """The other side of the rule: once the recorded mtime is more than RACY_NS older than
    the sync that recorded it, the stat alone decides, and the file is not read."""
    path = content / "reviews/alpha/s01e01.md"
    stamp = time.time_ns() - sync_module.RACY_NS - 10**9
    os.utime(path, ns=(stamp, stamp))
    await sync_content(store, content)
    reads = _count_reads(monkeypatch)
    await sync_content(store, content)
    assert "alpha/s01e01.md" not in reads
    assert "beta/s01e01.md" in reads  # written just now: too recent to vouch for itself


async def test_records_without_a_stat_are_hashed_once(store, content, monkeypatch):
    """Rows recorded before migration 003 have no stat: each file is hashed once more."""
    _age(content)
    await sync_content(store, content)
    async with store.db.transaction() as tx:
        await tx.execute(
            "UPDATE content_files SET size = NULL, mtime_ns = NULL, stat_checked_ns = NULL"
        )
    reads = _count_reads(monkeypatch)
    report = await sync_content(store, content)
    assert report.loaded == ()
    assert report.unchanged == ALL_FILES
    assert len(reads) == len(ALL_FILES)
    reads.clear()
    await sync_content(store, content)
    assert reads == []


# ---- reviews in batches, written in short transactions ------------------------------------


async def test_reviews_in_batches_load_like_one(store, content, monkeypatch):
    monkeypatch.setattr(sync_module, "REVIEW_BATCH", 2)  # three reviews: two batches
    report = await sync_content(store, content)
    assert report.loaded == ALL_FILES
    assert report.problems == ()
    _, parsed = await dry_run(content)
    for review in parsed.reviews.values():
        assert await store.get_review(review.episode_key) == review


async def test_readers_see_whole_files_and_no_record_ahead_of_its_rows(
    sqlite_store, content, tmp_path, monkeypatch
):
    store = sqlite_store
    monkeypatch.setattr(sync_module, "REVIEW_BATCH", 1)
    monkeypatch.setattr(content_store_module, "TRANSACTION_BYTES", 1)
    real_parse = sync_module._parse_reviews
    seen: list[tuple[dict[str, int | None], set[str], set[str]]] = []

    def parse_and_look(*args):
        # Runs between batches, while the sync is writing: another connection sees every
        # show with all its episodes, and a review's record only once its row is there.
        with sqlite3.connect(tmp_path / "t.db") as reader:
            shows = dict.fromkeys(row[0] for row in reader.execute("SELECT slug FROM shows"))
            shows.update(
                reader.execute(
                    "SELECT show_slug, COUNT(*) FROM episodes GROUP BY show_slug"
                ).fetchall()
            )
            reviews = {row[0] for row in reader.execute("SELECT episode_key FROM reviews")}
            recorded = {
                row[0].removeprefix("reviews/").removesuffix(".md")
                for row in reader.execute(
                    "SELECT path FROM content_files WHERE path LIKE 'reviews/%'"
                )
            }
        seen.append((shows, reviews, recorded))
        return real_parse(*args)

    monkeypatch.setattr(sync_module, "_parse_reviews", parse_and_look)
    report = await sync_content(store, content)
    assert report.loaded == ALL_FILES
    assert len(seen) == 3
    for shows, reviews, recorded in seen:
        # Show -> its episodes as seen: each show that is there has all of them.
        assert shows.items() <= {("alpha", 3), ("beta", 1)}
        assert recorded <= reviews


async def test_a_sync_cut_short_is_finished_by_the_next(store, content, monkeypatch):
    monkeypatch.setattr(sync_module, "REVIEW_BATCH", 1)
    real_parse = sync_module._parse_reviews
    calls = 0

    def fail_on_the_third(*args):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk gone")
        return real_parse(*args)

    monkeypatch.setattr(sync_module, "_parse_reviews", fail_on_the_third)
    with pytest.raises(OSError, match="disk gone"):
        await sync_content(store, content)
    written = set(await store.content_file_hashes())
    assert "reviews/beta/s01e01.md" not in written  # the third batch never landed

    monkeypatch.setattr(sync_module, "_parse_reviews", real_parse)
    report = await sync_content(store, content)
    assert set(report.loaded) == set(ALL_FILES) - written
    assert report.problems == ()
    assert await store.get_review("beta/s01e01") is not None
    assert set(await store.content_file_hashes()) == set(ALL_FILES)


# ---- check is a dry run of this sync ------------------------------------------------------


async def test_check_and_the_sync_report_the_same_problems(store, tmp_path):
    root = tmp_path / "broken"
    write_broken_tree(root)
    checked, _ = await dry_run(root)
    synced = await sync_content(store, root)
    assert checked.problems == synced.problems
    assert checked.loaded == synced.loaded
    # The tree holds each rule, within a file and across files, so the comparison means
    # something: a rule only one side applied would show here.
    found = {(p.path, p.message.split(":")[0]) for p in checked.problems}
    assert {
        ("reviews/good/s01e05.md", "episode s01e05 is not in shows/good.toml"),
        ("reviews/broken", "1 review not loaded"),
        ("reviews/ghost", "2 reviews not loaded"),
        ("rankings/ghost.toml", "this ranking was not loaded"),
        ("rankings/good.toml", "episode s09e09 is not in shows/good.toml"),
        ("rankings/good.toml", "episode s01e02 is ranked twice (first on line 4)"),
        ("reviews/good/S1E3.md", "review files are named by episode code, like s07e06.md"),
        ("shows/notes.txt", "ignored"),
    } <= found
    assert any(p.path == "shows/broken.toml" and p.line for p in checked.errors)
    assert any(p.path == "reviews/good/s01e02.md" and p.line for p in checked.errors)
