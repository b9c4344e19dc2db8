"""Live reload: the one sync, then a swap of the catalogue; the last good version keeps serving."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.content import sync as sync_module
from bot.content.reload import LiveContent
from bot.content.reload_signal import PidFile, ReloadError, pid_file_for, signal_reload
from bot.content.watch import watch_content
from bot.spoilers.durations import parse_window
from bot.storage import Storage
from bot.storage import content as content_store_module
from tests.content_factory import episode_table, review_md, show_toml, write

GUILD = 42


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    store = await Storage.open(f"sqlite:///{tmp_path}/t.db", tmp_path)
    yield store
    await store.close()


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write(root, "shows/alpha.toml", show_toml(title="Alpha", episodes=[episode_table(1, 1)]))
    write(root, "reviews/alpha/s01e01.md", review_md("First version."))
    return root


async def test_reload_swaps_in_the_new_catalogue_whole(storage, content):
    live = LiveContent(storage, content)
    await live.reload()
    before = live.catalogue
    assert [e.key for e in before.episodes] == ["alpha/s01e01"]

    write(
        content,
        "shows/alpha.toml",
        show_toml(title="Alpha", episodes=[episode_table(1, 1), episode_table(1, 2, "New")]),
    )
    report = await live.reload()

    assert report.loaded == ("shows/alpha.toml",)
    assert [e.key for e in live.catalogue.episodes] == ["alpha/s01e01", "alpha/s01e02"]
    # The old catalogue object is untouched: a command holding it sees one version.
    assert [e.key for e in before.episodes] == ["alpha/s01e01"]


async def test_a_review_edit_is_served_without_rebuilding_the_catalogue(storage, content):
    live = LiveContent(storage, content)
    await live.reload()
    catalogue = live.catalogue
    write(content, "reviews/alpha/s01e01.md", review_md("Second version."))
    await live.reload()
    review = await storage.get_review("alpha/s01e01")
    assert review is not None
    assert review.body == "Second version."
    assert live.catalogue is catalogue  # no show file changed: nothing to re-index


async def test_a_broken_file_keeps_its_last_good_version(storage, content):
    live = LiveContent(storage, content)
    await live.reload()
    write(content, "shows/alpha.toml", show_toml(title="Alpha", timezone="Mars/Olympus"))
    write(content, "reviews/alpha/s01e01.md", review_md("Edited.", rating=11))

    report = await live.reload()

    assert {(p.path, p.line) for p in report.errors} == {
        ("shows/alpha.toml", 3),
        ("reviews/alpha/s01e01.md", 2),
    }
    assert [e.key for e in live.catalogue.episodes] == ["alpha/s01e01"]
    review = await storage.get_review("alpha/s01e01")
    assert review is not None
    assert review.body == "First version."


async def test_a_failed_reload_keeps_serving_and_is_logged(storage, content, monkeypatch, caplog):
    live = LiveContent(storage, content)
    await live.reload()
    catalogue = live.catalogue
    write(content, "shows/alpha.toml", show_toml(title="Renamed", episodes=[episode_table(1, 1)]))

    async def broken_load_shows():
        raise OSError("disk gone")

    monkeypatch.setattr(storage, "load_shows", broken_load_shows)
    with caplog.at_level(logging.ERROR, logger="bot.content.reload"):
        assert await live.reload_and_log("test") is None
    assert live.catalogue is catalogue
    assert "still serving the last good content" in caplog.text

    monkeypatch.undo()
    write(content, "shows/alpha.toml", show_toml(title="Again", episodes=[episode_table(1, 1)]))
    await live.reload()
    assert live.catalogue.shows[0].title == "Again"


async def test_reloads_never_overlap_and_a_burst_costs_two_syncs_at_most(
    storage, content, monkeypatch
):
    live = LiveContent(storage, content)
    running = 0
    most = 0
    syncs = 0
    real_sync = sync_module.sync_content

    async def counting_sync(*args):
        nonlocal running, most, syncs
        running += 1
        syncs += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.01)
            return await real_sync(*args)
        finally:
            running -= 1

    monkeypatch.setattr("bot.content.reload.sync_content", counting_sync)
    reports = await asyncio.gather(*(live.reload() for _ in range(10)))
    assert most == 1
    assert syncs == 2  # the first, then one for every request made while it ran
    assert all(report is not None for report in reports)


async def test_votes_and_settings_are_written_between_the_steps_of_a_full_reload(
    storage, tmp_path, monkeypatch
):
    # Many reviews, each transaction a few of them: a settings write issued while the
    # reload runs is committed before the reload ends, not after it.
    root = tmp_path / "big"
    episodes = [episode_table(1, n) for n in range(1, 61)]
    write(root, "shows/big.toml", show_toml(episodes=episodes))
    for n in range(1, 61):
        write(root, f"reviews/big/s01e{n:02d}.md", review_md("Text. " * 200))
    monkeypatch.setattr(content_store_module, "TRANSACTION_BYTES", 4096)
    monkeypatch.setattr(sync_module, "REVIEW_BATCH", 10)
    live = LiveContent(storage, root)
    reload = asyncio.create_task(live.reload())
    await asyncio.sleep(0)
    await storage.set_spoiler_window(GUILD, parse_window("3d"))
    assert not reload.done()
    report = await reload
    assert len(report.loaded) == 61
    assert (await storage.get_guild_settings(GUILD)).spoilers.window == parse_window("3d")


# ---- the file watcher -------------------------------------------------------------------


async def test_the_watcher_reloads_after_a_content_file_changes_and_ignores_the_rest(tmp_path):
    root = tmp_path / "data"
    write(root, "reviews/alpha/s01e01.md", review_md())
    calls: list[float] = []
    changed = asyncio.Event()

    async def reload() -> None:
        calls.append(asyncio.get_running_loop().time())
        changed.set()

    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_content(root, reload, stop))
    try:
        await asyncio.sleep(0.5)  # the watch is in place
        # The database beside the content, and hidden files, start nothing.
        (root / "embargo.db-wal").write_bytes(b"x" * 100)
        write(root, "reviews/alpha/.s01e01.md.swp", "editor")
        await asyncio.sleep(1.0)  # over three times the watcher's quiet period
        assert calls == []
        # A burst of edits is one reload.
        for n in range(1, 4):
            write(root, f"reviews/alpha/s01e0{n}.md", review_md(f"Edit {n}."))
        await asyncio.wait_for(changed.wait(), timeout=10)
        await asyncio.sleep(1)
        assert len(calls) == 1
    finally:
        stop.set()
        await asyncio.wait_for(watcher, timeout=10)


async def test_the_watcher_on_a_missing_directory_warns_and_ends(tmp_path, caplog):
    async def reload() -> None:
        raise AssertionError("nothing to reload")

    with caplog.at_level(logging.WARNING, logger="bot.content.watch"):
        await asyncio.wait_for(
            watch_content(tmp_path / "absent", reload, asyncio.Event()), timeout=10
        )
    assert "python -m bot reload" in caplog.text


# ---- python -m bot reload: SIGHUP to the pid beside the database -------------------------


async def test_reload_signals_the_process_holding_the_pid_file(tmp_path):
    pid_file = pid_file_for(tmp_path / "embargo.db")
    assert pid_file.name == "embargo.db.pid"
    received = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, received.set)
    holder = PidFile(pid_file)
    try:
        assert holder.acquire()
        assert not PidFile(pid_file).acquire()  # a second bot on the same database
        assert signal_reload(pid_file) == os.getpid()
        await asyncio.wait_for(received.wait(), timeout=5)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        holder.release()
    assert not pid_file.exists()


def test_reload_without_a_running_bot_says_so(tmp_path):
    pid_file = tmp_path / "embargo.db.pid"
    with pytest.raises(ReloadError, match="not running"):
        signal_reload(pid_file)
    # A pid file left by a crash is not held: no signal goes to whoever has that pid now.
    pid_file.write_text(f"{os.getppid()}\n")
    with pytest.raises(ReloadError, match="not running"):
        signal_reload(pid_file)
