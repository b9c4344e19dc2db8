"""Live content reload through the real ``python -m bot`` process.

The bot watches its content directory: an edit is served by the next /review without a
restart, a broken edit leaves the last good version serving and the log naming file and
line, and ``python -m bot reload`` makes the running bot reload at once. This module edits
its own copy of the content (the ``content`` fixture is per module).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from tests.content_factory import review_md, write

from .embargo_content import REVIEW_AUTHOR, SHOW_SLUG, E2EContent
from .scenario import REPO_ROOT, Scenario

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# The watcher waits for a quiet moment (bot/content/watch.py), then the sync runs: generous
# for a loaded machine, and polled, so a fast reload passes fast.
RELOAD_WITHIN = 30.0


@pytest.fixture
def scenario(embargo: Scenario) -> Scenario:
    embargo.checkpoint()
    return embargo


def review_rel(content: E2EContent) -> str:
    return f"reviews/{SHOW_SLUG}/s01e{content.old.number:02d}.md"


def write_review(content: E2EContent, body: str, *, rating: float = 3.5) -> None:
    old = content.old
    text = review_md(body, old.ending, rating=rating, verdict=old.verdict, author=REVIEW_AUTHOR)
    write(content.root, review_rel(content), text)


async def review_text(scenario: Scenario, content: E2EContent) -> str:
    handle = await scenario.slash("review", episode=content.old.key, as_user="bob")
    return (await handle.reply()).text()


async def served_within(scenario: Scenario, content: E2EContent, needle: str) -> str:
    """Ask /review until it shows ``needle``; fail with the last answer after RELOAD_WITHIN."""
    deadline = time.monotonic() + RELOAD_WITHIN
    while True:
        text = await review_text(scenario, content)
        if needle in text or time.monotonic() > deadline:
            assert needle in text, f"{text}\n{scenario.bot.tail()}"
            return text
        await asyncio.sleep(0.5)


async def test_an_edited_review_is_served_by_the_next_review(
    scenario: Scenario, content: E2EContent
) -> None:
    assert content.old.body in await review_text(scenario, content)
    write_review(content, "Rewritten while the bot runs: the pilot grows on you.")
    text = await served_within(scenario, content, "Rewritten while the bot runs")
    assert content.old.body not in text
    assert "content reload (files changed): 1 file(s) loaded" in scenario.bot.output


async def test_a_broken_edit_keeps_the_last_good_version_and_logs_file_and_line(
    scenario: Scenario, content: E2EContent
) -> None:
    write_review(content, "Good version before the break.")
    await served_within(scenario, content, "Good version before the break.")
    write_review(content, "A broken edit that must not be served.", rating=11)
    show_rel = f"shows/{SHOW_SLUG}.toml"
    show = content.root / show_rel
    show.write_text(show.read_text(encoding="utf-8") + "\n[[episodes]\n", encoding="utf-8")
    rel = review_rel(content)
    await scenario.wait(
        lambda: (
            f"{rel}:2: 'rating' must be between 0 and 5" in scenario.bot.output
            and f"{show_rel}:" in scenario.bot.output
        ),
        what="the log to name the broken files and their lines",
        within=RELOAD_WITHIN,
    )
    text = await review_text(scenario, content)
    assert "Good version before the break." in text
    assert "A broken edit" not in text
    # The broken show file keeps its episodes served: autocomplete still finds them.
    choices = await scenario.autocomplete("review", "episode", "pendulum origins", as_user="bob")
    assert content.old.label in [choice["name"] for choice in choices]


async def test_python_m_bot_reload_signals_the_running_bot(
    scenario: Scenario, content: E2EContent
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "reload",
        cwd=REPO_ROOT,
        env=scenario.bot.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith("asked Embargo (process ")
    await scenario.wait(
        lambda: "content reload (SIGHUP):" in scenario.bot.output,
        what="the bot to reload on SIGHUP",
        within=RELOAD_WITHIN,
    )


async def test_a_pipe_where_a_review_was_is_reported_and_the_last_good_version_serves(
    scenario: Scenario, content: E2EContent
) -> None:
    write_review(content, "The version served before the fault.")
    await served_within(scenario, content, "The version served before the fault.")
    review = content.root / review_rel(content)
    review.unlink()
    os.mkfifo(review)
    await scenario.wait(
        lambda: f"content: {review_rel(content)}: not a regular file" in scenario.bot.output,
        what="the log to name the pipe",
        within=RELOAD_WITHIN,
    )
    assert "The version served before the fault." in await review_text(scenario, content)
    assert "Traceback" not in scenario.bot.output
    review.unlink()
    write_review(content, "Fixed after the fault.")
    await served_within(scenario, content, "Fixed after the fault.")


async def test_reload_after_the_bot_stopped_says_it_is_not_running(
    scenario: Scenario,
) -> None:
    await scenario.bot.stop()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "reload",
        cwd=REPO_ROOT,
        env=scenario.bot.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1
    assert "Embargo is not running" in lines[0]
