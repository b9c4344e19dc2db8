"""The command line, run as a real subprocess the way a server owner runs it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import PROJECT_DIR
from tests.content_factory import write_broken_tree

DATA = PROJECT_DIR / "data"


def run_cli(*args, env=None, cwd=None):
    base = {k: v for k, v in os.environ.items() if k not in {"DISCORD_TOKEN", "CONTENT_DIR"}}
    # An empty value stops python-dotenv from filling it in from a developer's own .env.
    base["DISCORD_TOKEN"] = ""
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=base,
        cwd=cwd or PROJECT_DIR,
        timeout=60,
        check=False,
    )


def test_missing_token_is_one_clear_line(tmp_path):
    result = run_cli(env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "DISCORD_TOKEN" in lines[0]
    assert ".env" in lines[0]


def test_check_passes_on_shipped_data():
    result = run_cli("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok:" in result.stdout
    assert "Black Mirror" not in result.stderr


def test_check_names_file_and_line_of_a_broken_file(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(DATA, content, ignore=shutil.ignore_patterns("*.db*"))
    show = content / "shows" / "black-mirror.toml"
    lines = show.read_text(encoding="utf-8").splitlines()
    target = next(i for i, line in enumerate(lines) if line.startswith("season = 7"))
    lines[target] = "season = seven"
    show.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("check", env={"CONTENT_DIR": str(content)})
    assert result.returncode == 1
    assert f"black-mirror.toml:{target + 1}" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("window", "needle", "absent"),
    [("1000d", "||", None), ("off", "Ending explained", "||")],
)
def test_preview_ending(window, needle, absent):
    result = run_cli("preview", "ending", "into infinity", "--window", window)
    assert result.returncode == 0, result.stderr
    assert needle in result.stdout
    if absent:
        assert absent not in result.stdout


def test_preview_review_shows_embed_and_button():
    result = run_cli("preview", "review", "s7e6")
    assert result.returncode == 0, result.stderr
    assert "[embed] Black Mirror · S7E6 · USS Callister: Into Infinity" in result.stdout
    assert "[field] Verdict" in result.stdout
    assert "[button] Ending explained" in result.stdout


def test_preview_unknown_episode_suggests(tmp_path):
    result = run_cli("preview", "review", "into infinty")
    assert result.returncode == 1
    assert "USS Callister: Into Infinity" in result.stderr


def test_check_apply_loads_into_the_database(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/apply.db"}
    first = run_cli("check", "--apply", env=env)
    assert first.returncode == 0, first.stderr
    second = run_cli("check", "--apply", env=env)
    assert second.returncode == 0
    assert "loaded 0 file(s)" in second.stdout
    assert Path(tmp_path / "apply.db").exists()


def test_check_reports_what_the_sync_reports(tmp_path):
    content = tmp_path / "content"
    write_broken_tree(content)
    env = {"CONTENT_DIR": str(content), "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    checked = run_cli("check", env=env)
    applied = run_cli("check", "--apply", env=env)
    assert checked.returncode == applied.returncode == 1
    # Every problem line, errors and warnings alike, is the same; only the summary differs
    # (and the log lines of creating the fresh database).
    assert checked.stderr.splitlines() == [
        line for line in applied.stderr.splitlines() if "applied migration" not in line
    ]
    problems = checked.stdout.splitlines()
    assert problems == applied.stdout.splitlines()
    assert any("shows/notes.txt: ignored" in line for line in problems)
    assert "reviews/ghost: 2 reviews not loaded" in checked.stderr
