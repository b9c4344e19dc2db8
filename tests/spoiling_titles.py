"""A show with a title that spoils, and a tour of every command that names episodes, for the tests
of spoiler-safe titles through the in-process harness (tests/test_titles_commands.py and
tests/test_titles_property.py).

What a member sees is read from every request the bot sent to the stand-in: message content
through tests/markdown_oracle.py (text inside spoiler tags is hidden), and every other string
Discord shows (embeds, autocomplete choice names, button labels) as it is, since none of them
can hide text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests import markdown_oracle as oracle
from tests.content_factory import episode_table, ranking_toml, review_md, show_toml, write
from tests.support import MEMBER, Harness, RecordedRequest, UserSpec

SLUG = "the-pact"
SHOW = "The Pact"
RELEASE = datetime(2026, 3, 5, 21, 0, tzinfo=UTC)
KEY = f"{SLUG}/s02e09"  # released, its title spoils
UNRELEASED_KEY = f"{SLUG}/s02e10"  # not out yet, its title spoils too
OPEN_TITLE = "Opening Night"
ALIAS = "the reckoning"
ENDING = "The crew scatters, and the pact is broken for good."
VOTER = UserSpec(id=1_300_000_000_000_020_001, name="voter")
# Strings whose meaning is not shown to anyone: a choice's value (an episode key) and ids.
_UNSHOWN_KEYS = frozenset({"custom_id", "id", "nonce", "type", "flags", "color"})


def write_show(root: Path, title: str, unreleased_title: str) -> None:
    """The show file (and a review and a critic ranking) with ``title`` on s02e09, which
    spoils, and ``unreleased_title`` on s02e10, which spoils and is not out yet."""
    episodes = [
        episode_table(1, 1, OPEN_TITLE, released=RELEASE - timedelta(days=400)),
        {
            **episode_table(2, 9, title, released=RELEASE, aliases=[ALIAS]),
            "title_spoils": True,
        },
        {
            **episode_table(2, 10, unreleased_title, released=RELEASE + timedelta(days=60)),
            "title_spoils": True,
        },
    ]
    write(root, f"shows/{SLUG}.toml", show_toml(title=SHOW, timezone="UTC", episodes=episodes))
    write(root, f"reviews/{SLUG}/s02e09.md", review_md("Tense and well made.", ENDING))
    write(root, f"rankings/{SLUG}.toml", ranking_toml(["s02e09", "s01e01"]))


@dataclass
class Seen:
    """What members were shown, over a run of requests."""

    visible: list[str] = field(default_factory=list)  # outside spoiler tags, anywhere
    hidden: list[str] = field(default_factory=list)  # inside spoiler tags, in message content
    hazards: list[str] = field(default_factory=list)
    files: list[bytes] = field(default_factory=list)

    def __repr__(self) -> str:  # hypothesis prints the fixtures of a failing example
        return f"<Seen {len(self.visible)} visible, {len(self.hidden)} hidden parts>"

    def shows(self, text: str) -> bool:
        return any(text.casefold() in part.casefold() for part in self.visible)

    def hides(self, text: str) -> bool:
        return any(text.casefold() in part.casefold() for part in self.hidden)


def seen_in(requests: Iterable[RecordedRequest]) -> Seen:
    seen = Seen()
    for request in requests:
        if request.method not in ("POST", "PATCH", "PUT"):
            continue
        _walk(request.json, seen, None)
        seen.files += [upload.data for upload in request.files]
    return seen


def _walk(value: Any, seen: Seen, key: str | None) -> None:
    if isinstance(value, dict):
        for name, item in value.items():
            if name == "choices" and isinstance(item, list):
                # Autocomplete choices: members see the name; the value is the key sent back.
                seen.visible += [str(choice.get("name", "")) for choice in item]
            elif name not in _UNSHOWN_KEYS:
                _walk(item, seen, name)
    elif isinstance(value, list):
        for item in value:
            _walk(item, seen, key)
    elif isinstance(value, str):
        if key == "content":
            reading = oracle.read(value)
            seen.visible.append(reading.visible)
            seen.hidden.append(reading.hidden)
            seen.hazards += [f"{hazard}: {value!r}" for hazard in reading.hazards]
        else:
            seen.visible.append(value)


async def tour(harness: Harness, *, in_dm: bool = False) -> list[RecordedRequest]:
    """Every command that names an episode, as a member would use them, around the spoiling
    episodes; returns the requests the bot sent meanwhile. Commands for servers only are left
    out in DMs."""
    start = len(harness.requests)
    where: dict[str, Any] = {"in_dm": in_dm}
    for command in ("review", "ending", "spoilers", *(() if in_dm else ("vote",))):
        for typed in ("", "pact", "s2e9", "pact s2e", "reckoning", "pact s2e10"):
            await harness.autocomplete(command, "episode", typed, **where)
    for typed in (KEY, "the pact s2e9", "s02e09"):
        await harness.slash("review", episode=typed, **where)
    await harness.slash("ending", episode=KEY, **where)
    await harness.slash("spoilers", episode=KEY, **where)
    await harness.slash("spoilers", episode=UNRELEASED_KEY, **where)
    await harness.slash("ending", episode=UNRELEASED_KEY, **where)
    # Unknown, with the spoiling episodes among the closest matches.
    await harness.slash("review", episode="the pact s2e", **where)
    await harness.slash("review", episode="reckoning", **where)
    await harness.slash("rankings", show=SLUG, source="critic", chart=True, **where)
    if not in_dm:
        await harness.slash("vote", episode=UNRELEASED_KEY, score=7)
        await harness.slash("vote", episode=KEY, score=9, as_user=MEMBER)
        await harness.slash("vote", episode=KEY, score=6, as_user=VOTER)
        await harness.slash("vote", episode=KEY, score=8, as_user=VOTER)
        await harness.slash("unvote", episode=KEY, as_user=VOTER)
        await harness.slash("vote", episode=KEY, score=5, as_user=VOTER)
        await harness.slash("myvotes")
        await harness.slash("myvotes", show=SLUG)
        await harness.slash("rankings", show=SLUG, source="community", chart=True)
        # Every server's votes, shown here: this server's window still decides.
        await harness.slash("rankings", show=SLUG, source="community", scope="global")
    return harness.requests[start:]
