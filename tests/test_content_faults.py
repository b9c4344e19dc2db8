"""Content faults and bounds: what can't be read is reported as ``file: problem`` and skipped,
never taken for a deletion of what was loaded before; oversized text is refused with its line.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.content.files import (
    ENDING_MAX_CHARS,
    MAX_FILE_BYTES,
    REVIEW_MAX_CHARS,
    read_file,
)
from bot.content.reload import LiveContent
from bot.content.sync import SyncReport, dry_run
from bot.storage import Storage
from tests.content_factory import episode_table, ranking_toml, review_md, show_toml, write

ALL_KEYS = ["alpha/s01e01", "alpha/s01e02"]


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    store = await Storage.open(f"sqlite:///{tmp_path}/t.db", tmp_path)
    yield store
    await store.close()


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write(root, "shows/alpha.toml", show_toml(episodes=[episode_table(1, 1), episode_table(1, 2)]))
    write(root, "reviews/alpha/s01e01.md", review_md("One."))
    write(root, "reviews/alpha/s01e02.md", review_md("Two."))
    write(root, "rankings/alpha.toml", ranking_toml(["s01e02", "s01e01"]))
    return root


async def loaded(storage: Storage, content: Path) -> LiveContent:
    live = LiveContent(storage, content)
    report = await live.reload()
    assert report.problems == ()
    return live


async def reload_within(live: LiveContent, seconds: float = 10.0) -> SyncReport:
    """A reload that must end: a fault that blocked a read would hang here instead."""
    return await asyncio.wait_for(live.reload(), seconds)


async def still_serving_everything(storage: Storage, live: LiveContent) -> None:
    assert [e.key for e in live.catalogue.episodes] == ALL_KEYS
    for key in ALL_KEYS:
        assert await storage.get_review(key) is not None
    assert await storage.get_critic_ranking("alpha") is not None


def messages(report: SyncReport) -> list[str]:
    return [str(problem) for problem in report.problems]


async def test_a_symlink_loop_is_reported_and_skipped(storage, content):
    live = await loaded(storage, content)
    (content / "reviews/alpha/again").symlink_to("..")  # reviews/alpha/again/alpha/again/...
    review = content / "reviews/alpha/s01e02.md"
    review.unlink()
    review.symlink_to(review.name)  # a link to itself: ELOOP on every open
    report = await reload_within(live)
    assert report.removed == ()
    found = messages(report)
    assert any(m.startswith("reviews/alpha/again") and "symlink loop" in m for m in found), found
    assert any(m.startswith("reviews/alpha/s01e02.md: ") and "symlink loop" in m for m in found), (
        found
    )
    await still_serving_everything(storage, live)


async def test_an_unreadable_folder_is_reported_and_its_files_kept(storage, content, monkeypatch):
    live = await loaded(storage, content)
    folder = str(content / "reviews" / "alpha")
    real_scandir = os.scandir

    def scandir(path):
        # As a folder without read permission (chmod is no test when running as root).
        if os.fspath(path) == folder:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = await reload_within(live)
    assert report.removed == ()
    assert (
        "reviews/alpha: cannot read this folder: Permission denied (skipped; what was loaded "
        "from it before keeps serving)"
    ) in messages(report)
    await still_serving_everything(storage, live)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
async def test_a_folder_without_permission_is_reported_and_its_files_kept(storage, content):
    live = await loaded(storage, content)
    folder = content / "reviews" / "alpha"
    folder.chmod(0)
    try:
        report = await reload_within(live)
    finally:
        folder.chmod(0o755)
    assert report.removed == ()
    assert any(m.startswith("reviews/alpha: cannot read this folder") for m in messages(report))
    await still_serving_everything(storage, live)


async def test_a_fifo_where_a_review_was_is_reported_not_waited_on(storage, content):
    live = await loaded(storage, content)
    review = content / "reviews/alpha/s01e01.md"
    review.unlink()
    os.mkfifo(review)
    report = await reload_within(live)
    assert report.removed == ()
    assert (
        "reviews/alpha/s01e01.md: not a regular file (a pipe, socket or device) (skipped; what "
        "was loaded from it before keeps serving)"
    ) in messages(report)
    await still_serving_everything(storage, live)


def test_reading_a_fifo_fails_at_once(tmp_path):
    # The race the listing can't see: a file replaced by a pipe between listing and reading.
    pipe = tmp_path / "s01e01.md"
    os.mkfifo(pipe)
    with pytest.raises(OSError, match="not a regular file"):
        read_file(pipe)


async def test_a_folder_where_a_file_should_be_is_reported_and_skipped(storage, content):
    live = await loaded(storage, content)
    show = content / "shows/alpha.toml"
    show.unlink()
    show.mkdir()
    write(show, "notes.txt", "someone unpacked an archive here")
    review = content / "reviews/alpha/s01e02.md"
    review.unlink()
    review.mkdir()
    report = await reload_within(live)
    assert report.removed == ()
    found = messages(report)
    assert (
        "shows/alpha.toml: this is a folder, not a file (skipped; what was loaded from it "
        "before keeps serving)"
    ) in found
    assert any(m.startswith("reviews/alpha/s01e02.md: this is a folder") for m in found)
    await still_serving_everything(storage, live)


async def test_a_missing_content_directory_removes_nothing(storage, content):
    live = await loaded(storage, content)
    content.rename(content.with_name("moved"))
    report = await reload_within(live)
    assert report.removed == ()
    assert len(report.errors) == 1
    assert "is missing or not a folder: nothing was loaded or removed" in str(report.errors[0])
    await still_serving_everything(storage, live)


async def test_a_fault_cleared_is_loaded_again(storage, content):
    live = await loaded(storage, content)
    review = content / "reviews/alpha/s01e01.md"
    review.unlink()
    os.mkfifo(review)
    await reload_within(live)
    review.unlink()
    write(content, "reviews/alpha/s01e01.md", review_md("Back, and edited."))
    report = await reload_within(live)
    assert report.problems == ()
    assert "reviews/alpha/s01e01.md" in report.loaded
    served = await storage.get_review("alpha/s01e01")
    assert served is not None
    assert served.body == "Back, and edited."


# ---- size bounds --------------------------------------------------------------------------


async def test_an_oversized_review_is_refused_with_its_line(tmp_path):
    write(tmp_path, "shows/alpha.toml", show_toml(episodes=[episode_table(1, 1)]))
    body = "word " * (REVIEW_MAX_CHARS // 5 + 10)
    write(tmp_path, "reviews/alpha/s01e01.md", review_md(body, "Fine."))
    report, served = await dry_run(tmp_path)
    assert served.reviews == {}
    (problem,) = report.errors
    assert problem.path == "reviews/alpha/s01e01.md"
    text = (tmp_path / problem.path).read_text().splitlines()
    assert text[problem.line - 2] == "+++"  # the line after the front matter
    assert f"keep the spoiler-free text to {REVIEW_MAX_CHARS:,}" in problem.message


async def test_an_oversized_ending_is_refused_at_its_heading(tmp_path):
    write(tmp_path, "shows/alpha.toml", show_toml(episodes=[episode_table(1, 1)]))
    ending = "spoiler " * (ENDING_MAX_CHARS // 8 + 10)
    write(tmp_path, "reviews/alpha/s01e01.md", review_md("Fine.", ending))
    report, served = await dry_run(tmp_path)
    assert served.reviews == {}
    (problem,) = report.errors
    lines = (tmp_path / problem.path).read_text().splitlines()
    assert lines[problem.line - 1] == "## Ending explained"
    assert f"keep it to {ENDING_MAX_CHARS:,}" in problem.message


async def test_a_review_at_the_limits_loads(tmp_path):
    write(tmp_path, "shows/alpha.toml", show_toml(episodes=[episode_table(1, 1)]))
    body, ending = "b" * REVIEW_MAX_CHARS, "e" * ENDING_MAX_CHARS
    write(tmp_path, "reviews/alpha/s01e01.md", review_md(body, ending))
    report, served = await dry_run(tmp_path)
    assert report.problems == ()
    assert served.reviews["alpha/s01e01"].ending == ending


def test_a_file_over_the_size_limit_is_not_read_past_it(tmp_path):
    huge = tmp_path / "s01e01.md"
    huge.write_bytes(b"x" * (MAX_FILE_BYTES * 3))
    with pytest.raises(OSError, match="over the 1,048,576 a content file may hold"):
        read_file(huge)


def test_check_refuses_oversized_text_and_faults_in_one_line_each(tmp_path):
    root = tmp_path / "content"
    write(root, "shows/alpha.toml", show_toml(episodes=[episode_table(1, 1)]))
    write(root, "reviews/alpha/s01e01.md", review_md("Fine.", "x" * (ENDING_MAX_CHARS + 1)))
    os.mkfifo(root / "reviews/alpha/s01e02.md")
    (root / "rankings").mkdir()
    (root / "rankings/loop").symlink_to(".")
    env = {k: v for k, v in os.environ.items() if k not in ("CONTENT_DIR", "DATABASE_URL")}
    env.update(CONTENT_DIR=str(root), DATABASE_URL=f"sqlite:///{tmp_path}/x.db")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert errors[-1] == f"3 errors in {root}"
    assert any("reviews/alpha/s01e01.md:" in line and "ending" in line for line in errors)
    assert any("reviews/alpha/s01e02.md: not a regular file" in line for line in errors)
    assert any("rankings/loop: " in line and "symlink loop" in line for line in errors)


def test_rendering_is_linear_in_text_length():
    # Far past the content limits, in a child process under a generous budget: linear
    # rendering takes a second or two here even on a loaded machine; the quadratic runs of
    # URLs this once caught took far longer than the budget.
    script = textwrap.dedent(
        """
        from bot.spoilers.render import plain_messages, spoiler_messages
        patterns = ["https://a.b/", "https://a.b/(x)))", "<https://x", "<", "|", "\\\\",
                    "a\\n", "*_~`", "word ", "x", "\\u3000", "## x\\n", "http://" + "(" * 3]
        for pattern in patterns:
            text = "a" + (pattern * (100_000 // len(pattern) + 1))[:100_000] + "b"
            spoiler_messages(text)
            plain_messages(text)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=20)
