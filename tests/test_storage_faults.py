"""A database that can't be used: every CLI command says so in one line and exits non-zero,
without hanging and without touching the file; faults while running are specific errors that
clear by themselves, and the background checkpoint doesn't flood the log."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import PROJECT_DIR
from bot.storage import Storage
from bot.storage.errors import (
    FaultLog,
    StorageBusy,
    StorageDamaged,
    StorageError,
    StorageFull,
    StorageReadOnly,
)
from bot.storage.sqlite.database import Database, storage_fault
from tests.test_busy_database import locked_by_another_process

COMMANDS = (("check", "--apply"), ("check", "--votes"), ("run",), ("sync",))
# Root passes every permission check: for the read-only cases the CLI runs without the
# capabilities that let it (as an ordinary user would be).
_DROP_ROOT_POWERS = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search,-fowner",
    "--inh-caps=-all",
]


def unprivileged() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions can't be tested")
    return _DROP_ROOT_POWERS


@dataclass(frozen=True)
class Snapshot:
    """Every entry of a folder with its bytes and modification time (None for folders)."""

    entries: dict[str, tuple[bytes, int] | None]

    @classmethod
    def of(cls, folder: Path) -> Snapshot:
        entries: dict[str, tuple[bytes, int] | None] = {}
        for path in sorted(folder.rglob("*")):
            name = str(path.relative_to(folder))
            if path.is_file() and not path.is_symlink():
                entries[name] = (path.read_bytes(), path.stat().st_mtime_ns)
            else:
                entries[name] = None
        return cls(entries)


def run_all_commands(database: Path, *, prefix: list[str] | None = None) -> list[tuple]:
    """Every CLI command that opens the database, run at once; (args, rc, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in {"CONTENT_DIR"}}
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        # Well formed, never used: storage is opened (and fails) before any network.
        DISCORD_TOKEN="MTAx.fake.token",
    )
    started = [
        (
            args,
            subprocess.Popen(
                [*(prefix or []), sys.executable, "-m", "bot", *args],
                cwd=PROJECT_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args in COMMANDS
    ]
    results = []
    for args, process in started:
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            pytest.fail(f"`python -m bot {' '.join(args)}` hung on {database}")
        results.append((args, process.returncode, out, err))
    return results


def assert_one_clear_line(results: list[tuple], *phrases: str) -> None:
    for args, returncode, out, err in results:
        command = " ".join(args)
        assert returncode == 2, (command, returncode, out, err)
        assert "Traceback" not in err, (command, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (command, err)
        assert lines[0].startswith("embargo: "), (command, err)
        for phrase in phrases:
            assert phrase in lines[0], (command, phrase, lines[0])
        assert out == "", (command, out)


async def make_database(path: Path, votes: int = 3000) -> None:
    storage = await Storage.open(f"sqlite:///{path}", path.parent)
    try:
        async with storage.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO votes (guild_id, user_id, episode_key, show_slug, score, voted_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(1, user, "show/s01e01", "show", 1 + user % 10, 0) for user in range(votes)],
            )
    finally:
        await storage.close()


def test_a_file_that_is_not_a_database(tmp_path):
    database = tmp_path / "embargo.db"
    database.write_text("these are my notes, not a database\n" * 200)
    before = Snapshot.of(tmp_path)
    assert_one_clear_line(run_all_commands(database), str(database), "not an SQLite database")
    assert Snapshot.of(tmp_path) == before


async def test_a_database_with_damaged_pages(tmp_path):
    database = tmp_path / "embargo.db"
    await make_database(database)
    page = 4096
    assert database.stat().st_size > 8 * page
    with database.open("r+b") as file:  # the header survives; pages in the middle don't
        file.seek(3 * page)
        file.write(bytes(range(256)) * (3 * page // 256))
    before = Snapshot.of(tmp_path)
    assert_one_clear_line(run_all_commands(database), str(database), "damaged", "backup")
    assert Snapshot.of(tmp_path) == before


def test_a_folder_as_the_database(tmp_path):
    database = tmp_path / "embargo.db"
    database.mkdir()
    assert_one_clear_line(run_all_commands(database), "is a folder", "embargo.db/embargo.db")
    assert list(database.iterdir()) == []


def test_a_database_inside_a_file(tmp_path):
    parent = tmp_path / "data"
    parent.write_text("a file where a folder should be")
    before = Snapshot.of(tmp_path)
    assert_one_clear_line(run_all_commands(parent / "embargo.db"), f"{parent} is a file")
    assert Snapshot.of(tmp_path) == before


def test_a_folder_that_cant_be_created(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    database = locked / "data" / "embargo.db"
    results = run_all_commands(database, prefix=unprivileged())
    assert_one_clear_line(results, "cannot create the folder", "Permission denied")
    assert list(locked.iterdir()) == []


async def test_a_read_only_database_file(tmp_path):
    database = tmp_path / "embargo.db"
    await make_database(database)
    database.chmod(0o444)
    before = Snapshot.of(tmp_path)
    results = run_all_commands(database, prefix=unprivileged())
    assert_one_clear_line(results, str(database), "read-only")
    assert Snapshot.of(tmp_path) == before  # no -wal or -shm left beside it either


async def test_a_database_in_a_read_only_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    await make_database(folder / "embargo.db")
    folder.chmod(0o555)
    before = Snapshot.of(tmp_path)
    results = run_all_commands(folder / "embargo.db", prefix=unprivileged())
    assert_one_clear_line(results, f"the folder {folder} is read-only")
    assert Snapshot.of(tmp_path) == before
    new = run_all_commands(folder / "new.db", prefix=unprivileged())
    assert_one_clear_line(new, f"the folder {folder} is read-only")
    assert Snapshot.of(tmp_path) == before


async def test_a_failed_open_leaves_no_connection_thread_behind(tmp_path):
    """An aiosqlite connection left open keeps its (non-daemon) thread, and with it the
    process, alive: the CLI used to hang forever after the error."""
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 999")
    conn.close()
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8000)
    for database, error in ((newer, StorageError), (damaged, StorageDamaged)):
        with pytest.raises(error):
            await Storage.open(f"sqlite:///{database}", tmp_path)
        await asyncio.sleep(0.05)
        assert _connection_threads() == []


def _connection_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


# -- faults while running ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind", "member_words"),
    [
        (sqlite3.SQLITE_FULL, StorageFull, "disk is full"),
        (sqlite3.SQLITE_IOERR | (3 << 8), StorageError, "nothing was saved"),  # IOERR_WRITE
        (sqlite3.SQLITE_READONLY, StorageReadOnly, "read-only"),
        (sqlite3.SQLITE_BUSY, StorageBusy, "busy"),
        (sqlite3.SQLITE_CORRUPT, StorageDamaged, "nothing was saved"),
    ],
)
def test_sqlite_faults_become_specific_errors(code, kind, member_words):
    error = sqlite3.OperationalError("as SQLite says it")
    error.sqlite_errorcode = code
    fault = storage_fault(error, Path("/srv/embargo.db"))
    assert type(fault) is kind
    assert "/srv/embargo.db" in str(fault)
    assert "\n" not in str(fault)
    assert member_words in fault.member_message
    assert "nothing was saved" in fault.member_message.lower()


def test_bugs_are_not_storage_faults():
    error = sqlite3.IntegrityError("UNIQUE constraint failed")
    error.sqlite_errorcode = sqlite3.SQLITE_CONSTRAINT
    assert storage_fault(error, Path("x.db")) is None


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


class FailingCheckpoints:
    """Stands in for the checkpointer's connection: fails while ``failing`` is set."""

    def __init__(self, clock: FakeClock) -> None:
        self.failing = True
        self.calls = 0
        self.clock = clock
        self.target = 0
        self.reached = asyncio.Event()

    async def rounds(self, count: int) -> None:
        self.target, self.reached = self.calls + count, asyncio.Event()
        await self.reached.wait()

    async def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls >= self.target:
            self.reached.set()
        self.clock.now += 0.5  # each round is half a second later, as in production
        if self.failing:
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = sqlite3.SQLITE_FULL
            raise error


async def test_a_failing_checkpoint_warns_once_a_minute_and_once_when_it_recovers(tmp_path, caplog):
    clock = FakeClock()
    db = Database(tmp_path / "x.db", checkpoint_interval=0, faults=FaultLog(60, clock))
    conn = FailingCheckpoints(clock)
    task = asyncio.create_task(db._checkpoint_loop(conn))
    with caplog.at_level(logging.WARNING, logger="bot.storage.sqlite.database"):
        await conn.rounds(600)  # five minutes of rounds, twice a second
        conn.failing = False
        await conn.rounds(10)
    task.cancel()
    warnings = [record.getMessage() for record in caplog.records]
    failed = [message for message in warnings if "disk holding" in message]
    assert 5 <= len(failed) <= 6, warnings
    assert "more like this" in failed[1]
    assert [message for message in warnings if "works again" in message] == [
        "background WAL checkpoint works again"
    ]


# -- a real full disk ----------------------------------------------------------

_FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, os, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from bot.storage import Storage
    from bot.storage.sqlite.database import StorageError, StorageFull
    from tests.stored import stored_score

    NOW = datetime(2026, 1, 1, tzinfo=UTC)
    folder = Path(sys.argv[1])
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="LOG %(message)s")

    def fill(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)

    async def main():
        storage = await Storage.open(f"sqlite:///{folder}/embargo.db", folder)
        try:
            await exercise(storage)
        finally:
            await storage.close()

    async def exercise(storage):
        await storage.cast_vote(1, 1, "show/s01e01", 5, now=NOW)
        filler = folder / "filler"
        fill(filler)
        failure = None
        for user in range(2, 5000):  # new rows, until one needs a page there's no room for
            try:
                await storage.cast_vote(1, user, "show/s01e01", 5, now=NOW)
            except StorageError as error:
                failure = (user, error)
                break
        user, error = failure
        print("FAILED", type(error).__name__, "|", str(error), "|", error.member_message)
        print("STORED", await stored_score(storage, 1, user, "show/s01e01"))
        await asyncio.sleep(1.5)  # the checkpoint runs (and may fail) three times
        filler.unlink()
        await storage.cast_vote(1, user, "show/s01e01", 6, now=NOW)
        print("RECOVERED", await stored_score(storage, 1, user, "show/s01e01"))
        await asyncio.sleep(1.5)  # the checkpoint runs again, now with room

    asyncio.run(main())
    """
)


def test_a_disk_that_fills_up_while_running(tmp_path):
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs unshare and mount to give the test its own small disk")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    user_namespace = ["-r"] if os.geteuid() != 0 else []
    # Room for the database, its WAL and the checkpoint copying the WAL back once the filler
    # is gone: on 600 KiB, a schema a few pages larger left the checkpoint no room ever again.
    shell = (
        f"mount -t tmpfs -o size=1m tmpfs {mount_point} && "
        f'exec "{sys.executable}" -c "$0" {mount_point}'
    )
    started = time.monotonic()
    result = subprocess.run(
        ["unshare", *user_namespace, "-m", "sh", "-c", shell, _FULL_DISK_SCRIPT],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0 and "Operation not permitted" in result.stderr:
        pytest.skip(f"no mount namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    failed = next(line for line in lines if line.startswith("FAILED"))
    assert failed.startswith(f"FAILED {StorageFull.__name__} |"), failed
    assert "is full" in failed
    assert "disk is full, so nothing was saved" in failed
    assert "STORED None" in lines
    assert "RECOVERED 6" in lines
    # One warning per kind of fault in the run (well under a minute), however many rounds,
    # and one when the checkpoint works again.
    warnings = [line for line in lines if line.startswith("LOG")]
    checkpoint = [line for line in warnings if "checkpoint" in line]
    assert len(checkpoint) in (0, 2), warnings
    if checkpoint:
        assert checkpoint[1] == "LOG background WAL checkpoint works again", warnings
    assert time.monotonic() - started < 60


async def test_a_database_locked_by_another_program(tmp_path):
    database = tmp_path / "embargo.db"
    await make_database(database)
    before = Snapshot.of(tmp_path)
    started = time.monotonic()
    with locked_by_another_process(database):
        results = run_all_commands(database)
    assert_one_clear_line(results, str(database), "locked by another program")
    assert time.monotonic() - started < 30  # each waits 2 s for the lock, then says so
    assert Snapshot.of(tmp_path) == before
