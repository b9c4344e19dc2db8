"""deploy/: the systemd unit and the container recipe, checked as far as this machine allows."""

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot import chart
from bot.config import DEFAULT_DATABASE_URL, PROJECT_DIR
from bot.storage import Storage
from bot.storage.sqlite.database import sqlite_path_from_url

DEPLOY = PROJECT_DIR / "deploy"
UNIT = DEPLOY / "embargo.service"
CONTAINERFILE = DEPLOY / "Containerfile"
INSTALL_DIR = "/opt/embargo"


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every key of the unit with its values in order (keys such as SystemCallFilter repeat)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def one(settings: dict[str, list[str]], key: str) -> str:
    (value,) = settings[key]
    return value


def test_the_unit_runs_the_bot_as_a_restarting_unprivileged_service():
    unit = unit_settings(UNIT.read_text(encoding="utf-8"))
    assert one(unit, "User") not in ("root", "0")
    assert one(unit, "Restart") == "on-failure"
    assert one(unit, "RestartPreventExitStatus") == "2"  # a configuration mistake
    assert one(unit, "KillSignal") == "SIGINT"  # the clean shutdown path
    workdir = one(unit, "WorkingDirectory")
    assert workdir == INSTALL_DIR
    assert one(unit, "EnvironmentFile") == f"{workdir}/.env"
    assert one(unit, "ExecStart") == f"{workdir}/.venv/bin/python -m bot"


def test_the_unit_is_read_only_except_where_the_database_lives():
    unit = unit_settings(UNIT.read_text(encoding="utf-8"))
    assert one(unit, "ProtectSystem") == "strict"
    assert one(unit, "NoNewPrivileges") == "yes"
    assert one(unit, "CapabilityBoundingSet") == ""
    database = sqlite_path_from_url(DEFAULT_DATABASE_URL, Path(one(unit, "WorkingDirectory")))
    assert isinstance(database, Path)
    # SQLite creates -wal and -shm beside the database: the folder must be writable.
    assert str(database.parent) in one(unit, "ReadWritePaths").split()
    assert one(unit, "LogsDirectory") == "embargo"  # /var/log/embargo, for LOG_FILE


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_accepts_the_unit(tmp_path):
    # systemd-analyze checks that ExecStart exists: aim the unit at this checkout.
    text = UNIT.read_text(encoding="utf-8")
    text = text.replace(f"{INSTALL_DIR}/.venv/bin/python", sys.executable)
    text = text.replace(INSTALL_DIR, str(PROJECT_DIR))
    unit = tmp_path / "embargo.service"
    unit.write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # It exits 0 on unknown keys and bad values too, but names the unit when it complains.
    complaints = [line for line in result.stderr.splitlines() if "embargo.service" in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []


def containerfile() -> str:
    # Joined continuation lines: one instruction per line.
    return CONTAINERFILE.read_text(encoding="utf-8").replace("\\\n", " ")


def instructions(name: str) -> list[str]:
    return [
        line[len(name) :].strip()
        for line in containerfile().splitlines()
        if line.startswith(name + " ")
    ]


def container_database() -> str:
    (env,) = instructions("ENV")
    url = re.search(r"DATABASE_URL=(\S+)", env)
    assert url
    path = sqlite_path_from_url(url[1], Path("/app"))
    assert isinstance(path, Path)
    return str(path)


def test_the_container_keeps_the_database_in_its_volume_and_runs_unprivileged():
    (volume,) = instructions("VOLUME")
    assert str(Path(container_database()).parent) == volume
    (user,) = instructions("USER")
    assert user not in ("root", "0")
    assert instructions("STOPSIGNAL") == ["SIGINT"]
    assert instructions("CMD")[-1] == '["python", "-m", "bot"]'
    # Nothing secret or local is copied: only named sources.
    copied = [line.split()[0] for line in instructions("COPY")]
    assert ".env" not in copied
    assert "." not in copied
    ignored = (DEPLOY / "Containerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored


def test_the_container_installs_the_font_the_chart_looks_for_first():
    (install,) = [line for line in instructions("RUN") if "apt-get install" in line]
    assert "fonts-dejavu-core" in install.split()
    assert chart.REGULAR_FONTS[0] == "DejaVuSans.ttf"
    assert chart.BOLD_FONTS[0] == "DejaVuSans-Bold.ttf"
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg not found: can't check which package holds the fonts")
    owners = subprocess.run(
        ["dpkg", "-S", chart.REGULAR_FONTS[0], chart.BOLD_FONTS[0]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if owners.returncode != 0:
        pytest.skip("the DejaVu fonts are not installed here")
    assert {line.split(":")[0] for line in owners.stdout.splitlines()} == {"fonts-dejavu-core"}


def health_command() -> list[str]:
    (healthcheck,) = instructions("HEALTHCHECK")
    command = re.search(r"CMD (\[.*\])$", healthcheck)
    assert command
    return json.loads(command[1])


async def test_the_health_check_passes_on_a_live_database_and_fails_without_one(tmp_path):
    argv = health_command()
    assert argv[:2] == ["python", "-c"]
    assert container_database() in argv[2]
    live = tmp_path / "embargo.db"

    def check() -> int:
        code = argv[2].replace(container_database(), str(live))
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, timeout=60
        ).returncode

    assert check() != 0  # no database yet (a missing volume)
    await (await Storage.open(f"sqlite:///{live}", tmp_path)).close()
    assert check() == 0
    with sqlite3.connect(live) as conn:
        conn.execute("PRAGMA user_version = 0")  # not an Embargo database
    conn.close()
    assert check() != 0


def container_engine() -> str | None:
    for engine in ("podman", "docker"):
        if shutil.which(engine) is None:
            continue
        info = subprocess.run([engine, "info"], capture_output=True, timeout=60, check=False)
        if info.returncode == 0:
            return engine
    return None


def test_the_image_builds():
    engine = container_engine()
    if engine is None:
        pytest.skip("no working container engine (podman or docker with a running daemon)")
    result = subprocess.run(
        [engine, "build", "-f", str(CONTAINERFILE), "-t", "embargo-test", str(PROJECT_DIR)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
