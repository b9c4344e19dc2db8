"""``python -m bot reload``: tell the running bot to reload its content, with SIGHUP.

The bot records its pid in a file next to its database (``embargo.db.pid``) and holds a lock
on that file for as long as it runs; ``reload`` reads the pid and sends SIGHUP.

Why a signal and not a row the bot watches: SQLite tells a connection about its own writes
only, so watching a row means polling it, waking the bot every few seconds forever and
delaying each reload by up to that interval. A signal costs nothing until it is sent and is
handled at once; it is also the convention operators already script against (systemd's
``ExecReload=kill -HUP $MAINPID``, nginx, sshd), so ``reload`` is a convenience, not the only
way. The lock makes a stale pid file harmless: if no process holds it, the bot is not
running, and ``reload`` says so instead of signalling whatever process got that pid since.
A signal reaches one process on one machine: on a shared PostgreSQL database, ``reload``
sends a notice to the leading process instead (``bot/storage/postgres/leader.py``). Windows
has no SIGHUP: there, the file watcher is the trigger.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


class ReloadError(Exception):
    """The running bot could not be asked to reload; the message says why."""


def pid_file_for(database: Path) -> Path:
    return database.with_name(database.name + ".pid")


class PidFile:
    """The running bot's pid, next to its database, locked while the bot runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Record this process; False if another live process holds the file."""
        import fcntl  # POSIX only; the bot skips the pid file where it is missing

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        # Removed while still locked: nobody can find the file and take it for a live bot.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def signal_reload(pid_file: Path) -> int:
    """Send SIGHUP to the bot that holds ``pid_file``; returns its pid."""
    import fcntl

    not_running = (
        f"Embargo is not running with this database ({pid_file} is not held by a live "
        "process): start it with `python -m bot`, which loads the content as it starts"
    )
    try:
        fd = os.open(pid_file, os.O_RDONLY)
    except FileNotFoundError:
        raise ReloadError(not_running) from None
    except OSError as error:
        raise ReloadError(f"cannot read {pid_file}: {error.strerror or error}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: the bot is alive
        else:
            raise ReloadError(not_running)
        text = os.read(fd, 64).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if not text.isdigit():
        raise ReloadError(f"{pid_file} does not hold a process id: is another program using it?")
    pid = int(text)
    try:
        os.kill(pid, signal.SIGHUP)
    except PermissionError:
        raise ReloadError(
            f"not allowed to signal Embargo's process {pid}: run this as the user the bot runs as"
        ) from None
    except ProcessLookupError:
        raise ReloadError(not_running) from None
    return pid
