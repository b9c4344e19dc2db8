"""One leader for the shared work: the state machine over a lock the test controls, then the
real locks: SQLite leads at once, and on PostgreSQL two processes' leaderships on one database
(separate connections) hand the lead over when the leader's session ends."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from bot.config import PROJECT_DIR
from bot.leader import Leadership, LeaderWork
from bot.storage import Storage, StorageError
from bot.storage.postgres.database import redacted
from bot.storage.postgres.leader import (
    LEADER_SESSION,
    LEADER_SESSION_ARGS,
    AdvisoryLeaderLock,
    ask_leader,
)


class ControlledLock:
    """A leader lock the test hands out and takes back."""

    def __init__(self, *, free: bool = True) -> None:
        self.free = free
        self.held = False
        self.granted = asyncio.Event()
        self.taken_back = asyncio.Event()
        self.failures: list[StorageError] = []
        self.waits = 0
        self.released = 0

    async def acquire(self, *, wait: bool) -> bool:
        if self.failures and wait:
            raise self.failures.pop(0)
        if self.free:
            self.free, self.held = False, True
            return True
        if not wait:
            return False
        self.waits += 1
        self.granted.clear()
        await self.granted.wait()
        self.held = True
        return True

    async def lost(self) -> None:
        self.taken_back.clear()
        await self.taken_back.wait()
        self.held = False

    async def release(self) -> None:
        self.released += 1
        self.held = False

    def grant(self) -> None:
        self.granted.set()

    def take_back(self) -> None:
        self.taken_back.set()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def until(check, within_s: float = 1.0) -> float:
    """Seconds until ``check()`` held (fails the test past ``within_s``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within_s:
            raise AssertionError(f"not within {within_s} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


async def test_a_free_lock_makes_the_process_leader_before_start_returns(caplog):
    caplog.set_level(logging.INFO, logger="bot.leader")
    lock = ControlledLock()
    leadership = Leadership(lock)
    heard: list[bool] = []
    leadership.subscribe(heard.append)
    await leadership.start()
    assert leadership.leading
    assert heard == [True]
    assert [r.getMessage() for r in caplog.records if "leading" in r.getMessage()] == [
        "leading the shared work: content sync, command sync and release posts run in this process"
    ]
    await leadership.stop()
    assert not leadership.leading
    assert heard == [True, False]
    assert lock.released == 1


async def test_a_follower_waits_then_leads_and_a_lost_lock_stops_it_until_regained(caplog):
    caplog.set_level(logging.INFO, logger="bot.leader")
    lock = ControlledLock(free=False)
    leadership = Leadership(lock)
    heard: list[bool] = []
    leadership.subscribe(heard.append)
    await leadership.start()
    await settle()
    assert not leadership.leading
    assert heard == []
    assert lock.waits == 1
    lock.grant()
    await settle()
    assert leadership.leading
    assert heard == [True]
    lock.take_back()
    await settle()
    assert heard == [True, False]
    assert lock.waits == 2  # waiting for the lock again, not polling it
    assert any(
        "no longer leading the shared work (its lock on the database was lost)" in r.getMessage()
        for r in caplog.records
    )
    lock.grant()
    await settle()
    assert heard == [True, False, True]
    await leadership.stop()
    assert heard == [True, False, True, False]


async def test_an_unreachable_database_at_start_ends_the_start():
    class Unreachable(ControlledLock):
        async def acquire(self, *, wait: bool) -> bool:
            raise StorageError("cannot reach PostgreSQL")

    leadership = Leadership(Unreachable())
    with pytest.raises(StorageError):
        await leadership.start()
    assert not leadership.leading


async def test_an_unreachable_database_is_retried_with_one_warning(caplog):
    lock = ControlledLock(free=False)
    lock.failures = [StorageError("cannot reach PostgreSQL") for _ in range(3)]
    leadership = Leadership(lock, retry_delays_s=(0.001,))
    await leadership.start()
    await until(lambda: lock.waits == 1)
    assert not leadership.leading
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cannot reach PostgreSQL" in warnings[0].getMessage()
    lock.grant()
    await until(lambda: leadership.leading)
    await leadership.stop()


async def test_a_failure_watching_the_lock_lets_it_go_and_waits_again(caplog):
    class Failing(ControlledLock):
        async def lost(self) -> None:
            raise RuntimeError("a bug")

    lock = Failing()
    leadership = Leadership(lock)
    await leadership.start()
    await until(lambda: lock.waits == 1)  # gave up the lead and waits for it again
    assert not leadership.leading
    assert lock.released == 1
    assert "watching the lock of the shared work failed" in caplog.text
    await leadership.stop()


async def test_leader_work_runs_only_while_leading_and_stops_at_once_on_loss():
    lock = ControlledLock(free=False)
    leadership = Leadership(lock)
    runs: list[str] = []
    cancelled = asyncio.Event()

    async def work() -> None:
        runs.append("started")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            runs.append("cancelled")
            cancelled.set()
            raise

    job = LeaderWork(leadership, work, name="test-work")
    await leadership.start()
    job.start()  # as in cog_load
    await settle()
    assert runs == []
    assert not job.running
    lock.grant()
    await settle()
    assert runs == ["started"]
    assert job.running
    lock.take_back()
    await asyncio.wait_for(cancelled.wait(), 1)
    assert runs == ["started", "cancelled"]
    assert not job.running
    lock.grant()
    await settle()
    assert runs == ["started", "cancelled", "started"]
    await job.stop()  # as in cog_unload: no longer runs, whoever leads
    assert runs[-1] == "cancelled"
    assert not job.running
    lock.take_back()
    await settle()
    lock.grant()
    await settle()
    assert runs.count("started") == 2
    await leadership.stop()


async def test_leader_work_started_while_leading_runs_at_once():
    lock = ControlledLock()
    leadership = Leadership(lock)
    started = asyncio.Event()

    async def work() -> None:
        started.set()

    await leadership.start()
    job = LeaderWork(leadership, work, name="test-work")
    job.start()
    await asyncio.wait_for(started.wait(), 1)
    await job.stop()
    await leadership.stop()


async def test_sqlite_leads_at_once(tmp_path: Path):
    storage = await Storage.open(f"sqlite:///{tmp_path}/t.db", tmp_path)
    leadership = Leadership(storage.db.leader_lock())
    try:
        await leadership.start()
        assert leadership.leading
    finally:
        await leadership.stop()
        await storage.close()


# -- PostgreSQL ---------------------------------------------------------------------------------


async def leader_session_pid(url: str) -> int:
    """The server process of the session holding the leader lock."""
    admin = await asyncpg.connect(url)
    try:
        return int(await admin.fetchval(LEADER_SESSION, *LEADER_SESSION_ARGS))
    finally:
        await admin.close()


async def terminate(url: str, pid: int) -> None:
    admin = await asyncpg.connect(url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_on_postgres_one_of_two_leads_and_a_terminated_leader_hands_over(postgres_url):
    one = Leadership(AdvisoryLeaderLock(postgres_url))
    other = Leadership(AdvisoryLeaderLock(postgres_url))
    one_heard: list[bool] = []
    other_heard: list[bool] = []
    one.subscribe(one_heard.append)
    other.subscribe(other_heard.append)
    try:
        await one.start()
        await other.start()
        assert one.leading
        assert not other.leading
        await asyncio.sleep(0.2)  # the follower waits; nothing changes meanwhile
        assert one.leading
        assert not other.leading
        pid = await leader_session_pid(postgres_url)
        start = time.monotonic()
        await terminate(postgres_url, pid)
        await until(lambda: other.leading and not one.leading, within_s=1.0)
        took = time.monotonic() - start
        assert one_heard == [True, False]
        assert other_heard == [True]
        print(f"takeover after pg_terminate_backend: {took * 1000:.0f} ms")
        # The old leader waits for the lock again: it leads once the new one stops.
        await other.stop()
        await until(lambda: one.leading, within_s=1.0)
        assert one_heard == [True, False, True]
    finally:
        await one.stop()
        await other.stop()


async def test_on_postgres_a_clean_stop_hands_over_at_once(postgres_url):
    one = Leadership(AdvisoryLeaderLock(postgres_url))
    other = Leadership(AdvisoryLeaderLock(postgres_url))
    try:
        await one.start()
        await other.start()
        assert one.leading
        assert not other.leading
        await one.stop()
        await until(lambda: other.leading, within_s=1.0)
        assert not one.leading
    finally:
        await one.stop()
        await other.stop()


async def lock_sessions(url: str) -> int:
    admin = await asyncpg.connect(url)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                "'embargo-leader' AND datname = current_database()"
            )
        )
    finally:
        await admin.close()


async def test_on_postgres_a_stopped_follower_stops_waiting(postgres_url):
    leader = AdvisoryLeaderLock(postgres_url)
    follower = Leadership(AdvisoryLeaderLock(postgres_url))
    try:
        assert await leader.acquire(wait=False)
        await follower.start()
        await asyncio.sleep(0.1)
        assert await lock_sessions(postgres_url) == 2
        await asyncio.wait_for(follower.stop(), 2)
        deadline = time.monotonic() + 1.0
        while await lock_sessions(postgres_url) != 1:
            assert time.monotonic() < deadline, "the follower's session is still there"
            await asyncio.sleep(0.01)
    finally:
        await leader.release()


async def test_reload_request_finds_the_leader_or_says_none_runs(postgres_url, postgres_server):
    # A leader on another database of the server is another deployment's.
    elsewhere = postgres_server.create_database()
    other_deployment = AdvisoryLeaderLock(elsewhere)
    try:
        assert await other_deployment.acquire(wait=False)
        assert await ask_leader(postgres_url, "content:reload") is None
    finally:
        await other_deployment.release()
        postgres_server.drop_database(elsewhere)
    storage = await Storage.open(postgres_url, Path("."))
    heard: list[str] = []
    storage.content_listeners.append(heard.append)
    leadership = Leadership(storage.db.leader_lock())
    try:
        await leadership.start()
        assert await ask_leader(postgres_url, "content:reload") == "this machine (a Unix socket)"
        await until(lambda: heard == ["reload"], within_s=1.0)
    finally:
        await leadership.stop()
        await storage.close()


async def test_python_m_bot_reload_on_postgres_reaches_the_leader_or_says_none_runs(
    postgres_url,
):
    async def reload_cli() -> tuple[int, str, str]:
        # A process of its own, as an operator runs it (on another machine, as far as it
        # knows: it finds the leader through the database).
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "reload",
            env={**os.environ, "DATABASE_URL": postgres_url, "DISCORD_TOKEN": ""},
            cwd=PROJECT_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(cli.communicate(), 60)
        assert cli.returncode is not None
        return cli.returncode, out.decode(), err.decode()

    code, out, err = await reload_cli()
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"embargo: Embargo is not running on {redacted(postgres_url)} (no process leads "
        "there): start it with `python -m bot`, which loads the content as it starts"
    ]
    storage = await Storage.open(postgres_url, Path("."))
    heard: list[str] = []
    storage.content_listeners.append(heard.append)
    leadership = Leadership(storage.db.leader_lock())
    try:
        await leadership.start()
        code, out, err = await reload_cli()
        assert (code, err) == (0, "")
        assert out.startswith("asked the leading Embargo process (connected from ")
        await until(lambda: heard == ["reload"], within_s=1.0)
    finally:
        await leadership.stop()
        await storage.close()


async def test_on_postgres_an_unreachable_server_is_one_storage_error(tmp_path):
    lock = AdvisoryLeaderLock(f"postgresql://nobody@/embargo?host={tmp_path}")
    with pytest.raises(StorageError, match="cannot reach PostgreSQL"):
        await lock.acquire(wait=False)


async def test_on_postgres_a_leader_whose_session_stops_answering_stops_leading_first(
    postgres_url, monkeypatch
):
    """A silent connection (the server's process frozen, as a network fault looks): the
    heartbeat goes unanswered and the leader stops leading, while the server still holds
    the lock for it; the other process leads only once the session really ends."""
    from bot.storage.postgres import leader as postgres_leader

    monkeypatch.setattr(postgres_leader, "HEARTBEAT_S", 0.1)
    monkeypatch.setattr(postgres_leader, "HEARTBEAT_TIMEOUT_S", 0.2)
    one = Leadership(AdvisoryLeaderLock(postgres_url))
    other = Leadership(AdvisoryLeaderLock(postgres_url))
    await one.start()
    await other.start()
    pid = await leader_session_pid(postgres_url)
    try:
        os.kill(pid, signal.SIGSTOP)
    except PermissionError:
        await one.stop()
        await other.stop()
        pytest.skip("the server runs as another user: its processes can't be frozen here")
    try:
        stopped = await until(lambda: not one.leading, within_s=2.0)
        print(f"a silent leader stopped leading after {stopped * 1000:.0f} ms")
        await asyncio.sleep(0.3)
        assert not other.leading  # the frozen session still holds the lock
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        await until(lambda: one.leading or other.leading, within_s=5.0)
        assert one.leading != other.leading
    finally:
        await one.stop()
        await other.stop()
