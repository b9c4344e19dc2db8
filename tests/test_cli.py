"""The command line, run as a real subprocess the way a server owner runs it."""

import os
import re
import shlex
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


def test_check_refuses_a_title_spoils_that_is_not_a_boolean(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(DATA, content, ignore=shutil.ignore_patterns("*.db*"))
    show = content / "shows" / "black-mirror.toml"
    lines = show.read_text(encoding="utf-8").splitlines()
    target = next(i for i, line in enumerate(lines) if line == 'title = "Eulogy"')
    lines.insert(target + 1, 'title_spoils = "yes"')
    show.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("check", env={"CONTENT_DIR": str(content)})
    assert result.returncode == 1
    assert (
        f"black-mirror.toml:{target + 2}: episode s07e05: 'title_spoils' must be true or false"
        in result.stderr
    ), result.stderr

    lines[target + 1] = "title_spoils = true"
    show.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run_cli("check", env={"CONTENT_DIR": str(content)}).returncode == 0


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
    assert any("shows/notes.txt: warning: ignored" in line for line in problems)
    assert "reviews/ghost: 2 reviews not loaded" in checked.stderr


def _copy_data(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(DATA, content, ignore=shutil.ignore_patterns("*.db*"))
    return content


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


REVIEW = Path("reviews") / "black-mirror" / "s07e06.md"


@pytest.mark.parametrize("kind", ["review", "ending"])
def test_preview_of_a_review_check_rejects_names_it_and_points_to_check(tmp_path, kind):
    content = _copy_data(tmp_path)
    _edit(content / REVIEW, "rating = 4.0", "rating = 9")
    # An unknown key is a warning: counted, but not what stops the file loading.
    _edit(content / REVIEW, "+++\n", "+++\nmood = 'grim'\n")
    result = run_cli("preview", kind, "s7e6", env={"CONTENT_DIR": str(content)})
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{content / REVIEW} has 1 error, 1 warning, so Black Mirror S7E6")
    assert "python -m bot check" in line
    assert result.stdout == ""  # not "no review yet": nothing is previewed
    assert "unknown episode" not in result.stderr


def test_preview_of_a_misnamed_review_names_that_file(tmp_path):
    content = _copy_data(tmp_path)
    misnamed = content / "reviews" / "black-mirror" / "S7E6.md"
    (content / REVIEW).rename(misnamed)
    result = run_cli("preview", "review", "into infinity", env={"CONTENT_DIR": str(content)})
    assert result.returncode == 1
    assert result.stderr.startswith(f"{misnamed} has 1 error")


def test_preview_of_an_episode_whose_show_check_rejects_names_the_show_file(tmp_path):
    content = _copy_data(tmp_path)
    show = content / "shows" / "black-mirror.toml"
    _edit(show, 'timezone = "Europe/London"', 'timezone = "Europe/Londn"')
    result = run_cli("preview", "ending", "into infinity", env={"CONTENT_DIR": str(content)})
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("unknown episode 'into infinity'")
    assert lines[1].startswith(f"{show} has 1 error, so none of its episodes can be previewed")
    assert "python -m bot check" in lines[1]


def test_preview_with_only_warnings_still_previews(tmp_path):
    content = _copy_data(tmp_path)
    _edit(content / REVIEW, "+++\n", "+++\nmood = 'grim'\n")
    result = run_cli("preview", "review", "s7e6", env={"CONTENT_DIR": str(content)})
    assert result.returncode == 0, result.stderr
    assert "[field] Verdict" in result.stdout


def test_preview_prints_times_in_utc_relative_to_now_and_no_tags():
    now = ("--now", "2025-04-20T12:00Z")
    review = run_cli("preview", "review", "s7e6", *now)
    ending = run_cli("preview", "ending", "s7e6", "--window", "30d", *now)
    refused = run_cli("preview", "ending", "s7e6", "--window", "30d", "--mode", "refuse", *now)
    for result in (review, ending, refused):
        assert result.returncode == 0, result.stderr
        assert "<t:" not in result.stdout
    # Released 2025-04-10T07:00:00Z; the 30-day window ends 2025-05-10 07:00 UTC.
    assert "[field] Released: 2025-04-10 07:00 UTC (10 days ago)" in review.stdout
    assert "hidden here until 2025-05-10 07:00 UTC (in 20 days)." in ending.stdout
    assert "hidden here until 2025-05-10 07:00 UTC (in 20 days)." in refused.stdout


@pytest.mark.parametrize("bad", ["yesterday", "2025-13-01", "29/05/2025", "x" * 5000])
def test_bad_now_is_one_line_with_an_example(bad):
    result = run_cli("preview", "review", "s7e6", "--now", bad)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"embargo: --now {bad[:20]!r}"[:-1])
    assert "2025-05-29T08:00Z" in line
    assert len(line) < 300  # a pasted paragraph is not echoed whole
    assert result.stdout == ""


def test_check_labels_warnings_and_counts_them_apart(tmp_path):
    content = tmp_path / "content"
    write_broken_tree(content)
    result = run_cli("check", env={"CONTENT_DIR": str(content)})
    assert result.returncode == 1
    problems = [*result.stdout.splitlines(), *result.stderr.splitlines()[:-1]]
    warnings = [line for line in problems if ": warning: " in line]
    errors = [line for line in problems if ": warning: " not in line]
    # Warnings go to stdout, errors to stderr, and each is counted as what it is.
    assert warnings == result.stdout.splitlines()
    assert warnings
    assert len(errors) > 1
    assert result.stderr.splitlines()[-1] == (
        f"{len(errors)} errors, {len(warnings)} warning{'s' if len(warnings) > 1 else ''} "
        f"in {content}"
    )


def test_check_with_only_warnings_passes_and_counts_them(tmp_path):
    content = _copy_data(tmp_path)
    _edit(content / REVIEW, "+++\n", "+++\nmood = 'grim'\n")
    result = run_cli("check", env={"CONTENT_DIR": str(content)})
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.splitlines()[0]
        == f"{content / REVIEW}:2: warning: unknown key 'mood' (ignored)"
    )
    assert result.stdout.splitlines()[-1].endswith("critic ranking(s) (1 warning)")


def test_help_is_plain_text_that_explains_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    text = result.stdout
    assert text.startswith("usage: python -m bot")
    for command in ("run", "check", "preview", "reload", "sync", "backup"):
        assert re.search(rf"^  {command} +\S", text, re.MULTILINE), command
    for command in ("run", "check", "preview", "reload", "sync", "backup"):
        sub = run_cli(command, "--help")
        assert sub.returncode == 0
        assert sub.stdout.startswith(f"usage: python -m bot {command}")
        text += sub.stdout
    # No docstring or markdown markup, and argparse's {a,b,c} list of commands is not shown.
    for artefact in ("``", "**", "{run,", ":func:", ":class:"):
        assert artefact not in text


def _readme_examples():
    """The console examples of the README: each command and the lines shown for its output."""
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```console\n(.*?)```", readme, re.DOTALL):
        command, *shown = block.splitlines()
        assert command.startswith("$ python -m bot ")
        yield shlex.split(command.removeprefix("$ python -m bot ")), shown


def _matches(shown, printed):
    """Whether ``printed`` reads as ``shown``: "…" alone stands for any lines, and a line
    ending in "…" for any line that starts with what comes before it."""
    if not shown:
        return not printed
    first, rest = shown[0], shown[1:]
    if first == "…":
        return any(_matches(rest, printed[skip:]) for skip in range(len(printed) + 1))
    if not printed:
        return False
    line = printed[0]
    fits = line.startswith(first[:-1]) if first.endswith("…") else line == first
    return fits and _matches(rest, printed[1:])


def test_readme_examples_print_what_the_readme_shows():
    examples = list(_readme_examples())
    assert examples  # the "Adding a show" preview at least
    for args, shown in examples:
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        assert _matches(shown, result.stdout.splitlines()), (shown, result.stdout[:2000])
