"""Property: whatever a spoiling title is, nothing Embargo sends shows it while the episode's
window runs. The show file is rewritten with a random title (markup, pipes, backslashes, URLs,
mentions, line breaks, emoji...), the bot reloads its content, and every command that names
episodes runs through discord.py and the stand-in (tests/spoiling_titles.py). What any member
sees (message content outside spoiler tags, embeds, autocomplete choices, chart images) must
be exactly what it is for another title: the hidden title changes nothing anyone can see.

One bot serves every example (a reload per example, as a content edit would), on an event loop
of this module's own, since hypothesis drives examples from a synchronous test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.client import EmbargoBot
from bot.config import Settings
from bot.storage import Storage
from tests.spoiling_titles import RELEASE, Seen, seen_in, tour, write_show
from tests.support import Harness

REFERENCE = "Nothing Happens Here"
LATER = "Later Title"
# Pieces that have broken spoiler tags or leaked text before (see tests/test_render.py).
HOSTILE = [
    "|", "||", "|||", "\\", "\\|", "\\||", "`", "```", "> ", ">>> ", "# ", "-# ", "- ", "1. ",
    "**", "__", "~~", "*", "_", "[x](https://e.com)", "<", ">", "https://example.com/a",
    "HTTPS://UPPER.EXAMPLE/P", "https://", "<https://x.co/>", "<@123>", "<@&45>", "<#6>",
    "<t:1:R>", "@everyone", "@here", ":smile:", "😀", "👨\u200d👩\u200d👧", "e\u0301",
    "\u200b", "\u2028", "\ufeff", "\r\n", "\n", "\t", "  ", "日本語",
]  # fmt: skip
TITLES = st.lists(
    st.one_of(
        st.sampled_from(HOSTILE),
        # Any character TOML can carry in a string (no control characters, no surrogates).
        st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12),
    ),
    min_size=1,
    max_size=12,
).map("".join)


@dataclass(repr=False)
class Bot:
    loop: asyncio.AbstractEventLoop
    harness: Harness
    content: Path

    def run(self, title: str) -> Seen:
        async def show() -> Seen:
            write_show(self.content, title, LATER)
            bot = self.harness.bot
            assert isinstance(bot, EmbargoBot)
            report = await bot.content.reload()
            assert not [p for p in report.problems if p.severity == "error"], report.problems
            return seen_in(await tour(self.harness))

        return self.loop.run_until_complete(show())


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    root = tmp_path_factory.mktemp("titles")
    content = root / "content"
    write_show(content, REFERENCE, LATER)
    url = f"sqlite:///{root}/embargo.db"
    loop = asyncio.new_event_loop()
    storage = loop.run_until_complete(Storage.open(url, root))
    settings_ = Settings(
        discord_token=None,
        database_url=url,
        content_dir=content,
        log_level="INFO",
        dev_guild_id=None,
    )
    harness = Harness(EmbargoBot(settings_, storage, clock=lambda: RELEASE + timedelta(days=2)))
    loop.run_until_complete(harness.__aenter__())
    try:
        running = Bot(loop, harness, content)
        # Votes change what /vote answers the first time round; from the second they repeat.
        running.run(REFERENCE)
        yield running
    finally:
        loop.run_until_complete(harness.__aexit__(None, None, None))
        loop.run_until_complete(storage.close())
        loop.close()


@pytest.fixture(scope="module")
def reference(bot: Bot) -> Seen:
    seen = bot.run(REFERENCE)
    assert seen.hazards == []
    assert seen.hides(REFERENCE)
    return seen


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(title=TITLES)
@example(title="The Pact S2E9 · title hidden")  # looks like what is shown instead
@example(title="reckoning s2e9 pact")  # the alias, the code and the show's words
@example(title="x" * 400)
@example(title="\\")  # once crashed /ending: its header looked like an unclosed tag
def test_no_hidden_title_changes_what_anyone_sees(bot: Bot, reference: Seen, title: str) -> None:
    if not title.strip():
        return  # not a title: check refuses it (tests/test_content_parser.py)
    seen = bot.run(title)
    assert seen.hazards == []
    assert seen.visible == reference.visible
    assert seen.files == reference.files  # the charts, byte for byte
    assert seen.hidden != reference.hidden or " ".join(title.split()) == REFERENCE
