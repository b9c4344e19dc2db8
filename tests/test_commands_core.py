"""/review, /ending, /spoilers and /embargo through discord.py's real app-command tree.

Interactions are built from the commands the bot registered with the project's one Discord
stand-in (tests/support/standin), which records and answers every HTTP call, so option parsing,
checks and response payloads are discord.py's own. This is the home of these commands'
behaviour; tests/e2e keeps what needs the real ``python -m bot`` process.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
import pytest

from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.guild_settings import DEFAULT_GUILD_SETTINGS
from bot.spoilers.durations import parse_window
from bot.spoilers.policy import SpoilerMode
from bot.storage import Storage
from cogs.reviews import ending_view
from tests.support import (
    DEFAULT_GUILD_ID,
    EPISODE_TALK,
    GENERAL,
    MEMBER,
    MODERATOR,
    ChannelSpec,
    GuildSpec,
    Harness,
    HarnessError,
    Recorded,
    reading,
)
from tests.support.reading import EPHEMERAL, SUPPRESS_EMBEDS, header, ts

FINALE = "black-mirror/s07e06"
FINALE_LABEL = "Black Mirror S7E6 · USS Callister: Into Infinity"
README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
FINALE_RELEASE = datetime(2025, 4, 10, 7, 0, tzinfo=UTC)
TODAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TV_CATEGORY = ChannelSpec(
    id=1_300_000_000_000_000_210, name="TV talk", type=discord.ChannelType.category
)
IN_CATEGORY = ChannelSpec(id=1_300_000_000_000_000_211, name="finales", parent_id=TV_CATEGORY.id)
GUILD = GuildSpec(channels=(GENERAL, EPISODE_TALK, TV_CATEGORY, IN_CATEGORY))


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Embargo:
    harness: Harness
    storage: Storage
    clock: Clock
    db_url: str

    async def moderator(self, subcommand: str, **options: Any) -> Recorded:
        return await self.harness.slash(
            "embargo", subcommand=subcommand, as_user=MODERATOR, **options
        )


@pytest.fixture
async def embargo(tmp_path) -> AsyncIterator[Embargo]:
    db_url = f"sqlite:///{tmp_path}/embargo.db"
    storage = await Storage.open(db_url, tmp_path)
    settings = Settings(
        discord_token=None,
        database_url=db_url,
        content_dir=PROJECT_DIR / "data",
        log_level="INFO",
        dev_guild_id=None,
    )
    clock = Clock(TODAY)
    try:
        async with Harness(EmbargoBot(settings, storage, clock=clock), guild=GUILD) as harness:
            yield Embargo(harness, storage, clock, db_url)
    finally:
        await storage.close()


async def finale_ending_text(storage: Storage) -> str:
    review = await storage.get_review(FINALE)
    assert review is not None
    assert review.ending
    return review.ending


def sent_contents(reply: Recorded) -> list[str]:
    return [message.get("content") or "" for message in reply.sent]


def assert_safe_delivery(reply: Recorded) -> None:
    assert not reply.errors, reply.describe()
    reading.assert_safe_delivery(reply.sent)


def assert_all_hidden(reply: Recorded, ending: str) -> None:
    reading.assert_all_hidden(sent_contents(reply), ending)


def assert_plain(reply: Recorded, ending: str) -> None:
    reading.assert_plain(sent_contents(reply), ending)


def assert_reveals_nothing(reply: Recorded, ending: str) -> None:
    """Unlike the e2e show's, the finale's ending shares words with its title and with
    Embargo's own sentences ("this server", "the ending explained")."""
    embeds = str([message.get("embeds") for message in reply.sent])
    shared = reading.words(FINALE_LABEL) | {"server", "ending"}
    reading.assert_reveals_nothing(sent_contents(reply), embeds, ending, shared=shared)


REFUSAL = (
    "Only members with the **Manage Server** permission can change Embargo's settings. "
    "Nothing was changed."
)


async def settings_fields(embargo: Embargo) -> dict[str, str]:
    reply = await embargo.moderator("settings")
    assert reply.ephemeral
    (embed,) = reply.embeds
    assert embed["title"] == "Embargo settings"
    return {field["name"]: field["value"] for field in embed["fields"]}


# -- /review -------------------------------------------------------------------------------------


def readme_section(heading: str) -> str:
    start = README.index(heading)
    end = README.find("\n### ", start + len(heading))
    return README[start : end if end != -1 else None]


def readme_review_example() -> dict[str, str]:
    block = re.search(r"```\n(.*?)```", readme_section("### `/review episode:`"), re.DOTALL)
    assert block, "the README's /review example is gone"
    lines = block[1].splitlines()
    rating = re.search(r"Rating\s+(\S+ \S+)", block[1])
    verdict = re.search(r"Verdict\s+(.+)", block[1])
    footer = re.search(r"(Review by .+?)\s{2,}\[(.+)\]", block[1])
    assert rating, "no Rating line"
    assert verdict, "no Verdict line"
    assert footer, "no 'Review by ... [button]' line"
    return {
        "title": lines[0],
        "rating": rating[1],
        "verdict": verdict[1].strip(),
        "footer": footer[1],
        "button": footer[2],
    }


def readme_free_text_examples() -> list[str]:
    sentence = re.search(r"also accepts free text: (.*?)\. An unknown", README, re.DOTALL)
    assert sentence, "the README no longer lists free-text examples"
    examples = re.findall(r"`([^`]+)`", sentence[1])
    assert len(examples) >= 5
    return examples


async def test_review_embed_and_button_match_the_readme(embargo):
    expected = readme_review_example()
    reply = await embargo.harness.slash("review", episode="into infinity")
    assert_safe_delivery(reply)
    assert reply.flags == 0  # public, and its own embed shown
    assert reply.message is not None
    assert reply.message["channel_id"] == str(GENERAL.id)
    (embed,) = reply.embeds
    assert (
        embed["title"] == expected["title"] == "Black Mirror · S7E6 · USS Callister: Into Infinity"
    )
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert list(fields) == ["Rating", "Released", "Verdict"]
    assert fields["Rating"] == expected["rating"]
    # The README abridges the verdict: same opening, same star of the episode.
    readme_verdict = expected["verdict"].rstrip(".").split()
    assert fields["Verdict"].startswith(" ".join(readme_verdict[:3]))
    assert " ".join(readme_verdict[-2:]) in fields["Verdict"]
    released = int(FINALE_RELEASE.timestamp())
    assert fields["Released"] == f"{ts(released, 'D')} ({ts(released, 'R')})"
    assert embed["footer"]["text"] == expected["footer"]
    assert len(embed["description"]) > 500
    (button,) = [c for row in reply.components for c in row["components"]]
    emoji, label = expected["button"].split(" ", 1)
    assert (button["label"], button["emoji"]["name"]) == (label, emoji)
    assert reply.custom_ids == [f"embargo:ending:{FINALE}"]
    # Nothing of the ending reaches the review embed (which discusses the same episode, so
    # shares words with it): none of its sentences.
    ending = await finale_ending_text(embargo.storage)
    pieces = [piece.strip()[:30] for piece in re.split(r"[.!?]\s", ending)]
    assert not [piece for piece in pieces if len(piece) == 30 and piece in str(embed)]


@pytest.mark.parametrize(
    "text", ["into infinity", "callister 2", FINALE, *readme_free_text_examples()]
)
async def test_review_accepts_free_text(embargo, text):
    reply = await embargo.harness.slash("review", episode=text)
    assert reply.embeds, (text, reply.content)
    assert reply.embeds[0]["title"].endswith("USS Callister: Into Infinity")


@pytest.mark.parametrize("command", ["review", "ending", "spoilers"])
async def test_unknown_episode_lists_closest_matches_privately(embargo, command):
    reply = await embargo.harness.slash(command, episode="into infinty and beyond")
    assert reply.flags == EPHEMERAL | SUPPRESS_EMBEDS
    assert_safe_delivery(reply)
    assert reply.content.startswith(
        "I couldn't find an episode matching “into infinty and beyond”. Did you mean:"
    )
    suggestions = re.findall(r"^- (.+)$", reply.content, re.MULTILINE)
    assert 1 <= len(suggestions) <= 5
    assert FINALE_LABEL in suggestions


async def test_episode_without_review_says_so(embargo):
    reply = await embargo.harness.slash("review", episode="the national anthem")
    assert reply.ephemeral
    assert_safe_delivery(reply)
    assert reply.content.startswith(
        "There's no review of **Black Mirror S1E1 · The National Anthem** yet."
    )
    assert reply.components == []


async def test_autocomplete_offers_labelled_episodes(embargo):
    for command in ("review", "ending", "spoilers"):
        choices = await embargo.harness.autocomplete(command, "episode", "into infinity")
        assert choices[0] == {"name": FINALE_LABEL, "value": FINALE}, command
    in_dm = await embargo.harness.autocomplete("ending", "episode", "into infinity", in_dm=True)
    assert in_dm[0] == {"name": FINALE_LABEL, "value": FINALE}
    everything = await embargo.harness.autocomplete("ending", "episode", "")
    assert len(everything) == 25  # Discord's maximum, and there are more episodes than that
    assert all(0 < len(choice["name"]) <= 100 for choice in everything)
    assert len({choice["value"] for choice in everything}) == 25


# -- the reveal button ---------------------------------------------------------------------------


async def test_reveal_button_is_private_and_follows_the_rules(embargo):
    ending = await finale_ending_text(embargo.storage)
    await embargo.moderator("window", duration="1000d")
    review = await embargo.harness.slash("review", episode=FINALE)
    clicked = await embargo.harness.click(
        f"embargo:ending:{FINALE}", message=review.message, as_user=MEMBER
    )
    assert clicked.callback_type == 4  # a new private message, not an edit of the review
    assert all(r.message_id != int(review.message["id"]) for r in clicked.requests)
    assert_safe_delivery(clicked)
    assert all(message.get("flags", 0) & EPHEMERAL for message in clicked.sent)
    assert_all_hidden(clicked, ending)

    # The same rules as /ending: refused while the window runs, plain once it is over.
    await embargo.moderator("mode", mode="refuse")
    refusal = await embargo.harness.click(
        f"embargo:ending:{FINALE}", message=review.message, as_user=MODERATOR
    )
    assert refusal.ephemeral
    assert refusal.content.startswith("This server doesn't post spoilers for")
    assert_reveals_nothing(refusal, ending)
    await embargo.moderator("window", duration="off")
    plain = await embargo.harness.click(
        f"embargo:ending:{FINALE}", message=review.message, as_user=MEMBER
    )
    assert all(message.get("flags", 0) & EPHEMERAL for message in plain.sent)
    assert_plain(plain, ending)


async def test_reveal_button_on_an_old_message_survives_restarts(embargo):
    # A persistent button: its episode lives in the custom id, not in a live View object.
    old = embargo.harness.bot_message(view=ending_view(FINALE))
    clicked = await embargo.harness.click(f"embargo:ending:{FINALE}", message=old)
    assert clicked.ephemeral
    assert clicked.sent[0]["content"].startswith(f"## Ending explained: **{FINALE_LABEL}**")
    assert_plain(clicked, await finale_ending_text(embargo.storage))


# -- /ending -------------------------------------------------------------------------------------


async def test_unreleased_episode_reveals_nothing_whatever_the_settings(embargo):
    embargo.clock.now = FINALE_RELEASE - timedelta(minutes=1)
    ending = await finale_ending_text(embargo.storage)
    await embargo.moderator("window", duration="off")
    await embargo.moderator("channel", channel=EPISODE_TALK, policy="spoilers-ok")
    release = int(FINALE_RELEASE.timestamp())
    for where in ({"in_channel": GENERAL}, {"in_channel": EPISODE_TALK}, {"in_dm": True}):
        reply = await embargo.harness.slash("ending", episode=FINALE, **where)
        assert reply.ephemeral, where
        assert_safe_delivery(reply)
        assert reply.content == (
            f"**{FINALE_LABEL}** isn't out yet: it's released {ts(release, 'f')} "
            f"({ts(release, 'R')}). The ending explained unlocks then."
        )
        assert_reveals_nothing(reply, ending)


async def test_default_window_is_tagged_right_after_release(embargo):
    embargo.clock.now = FINALE_RELEASE + timedelta(hours=1)
    reply = await embargo.harness.slash("ending", episode=FINALE)
    assert_safe_delivery(reply)
    assert not reply.ephemeral
    week_later = int((FINALE_RELEASE + timedelta(days=7)).timestamp())
    assert reply.sent[0]["content"].splitlines()[:2] == header(FINALE_LABEL, week_later)
    assert_all_hidden(reply, await finale_ending_text(embargo.storage))


async def test_after_the_window_the_ending_is_plain(embargo):
    await embargo.moderator("mode", mode="refuse")  # refuse only applies inside the window
    reply = await embargo.harness.slash("ending", episode=FINALE)  # TODAY: 7 days long past
    assert_safe_delivery(reply)
    assert not reply.ephemeral
    assert reply.sent[0]["content"].splitlines()[0] == f"## Ending explained: **{FINALE_LABEL}**"
    assert_plain(reply, await finale_ending_text(embargo.storage))


async def test_refuse_mode_says_when_the_window_ends(embargo):
    await embargo.moderator("window", duration="1000d")
    await embargo.moderator("mode", mode="refuse")
    reply = await embargo.harness.slash("ending", episode="s7e6 into infinity")
    assert reply.ephemeral
    assert_safe_delivery(reply)
    end = int((FINALE_RELEASE + timedelta(days=1000)).timestamp())
    assert reply.content == (
        f"This server doesn't post spoilers for **{FINALE_LABEL}** yet. Spoilers stay hidden "
        f"here until {ts(end, 'f')} ({ts(end, 'R')}). Ask again then, or in a spoilers-ok channel."
    )
    assert_reveals_nothing(reply, await finale_ending_text(embargo.storage))


async def test_window_off_is_plain_and_forever_hides_for_good(embargo):
    ending = await finale_ending_text(embargo.storage)
    embargo.clock.now = FINALE_RELEASE + timedelta(hours=1)
    await embargo.moderator("window", duration="off")
    plain = await embargo.harness.slash("ending", episode=FINALE)
    assert_safe_delivery(plain)
    assert_plain(plain, ending)
    embargo.clock.now = TODAY
    await embargo.moderator("window", duration="forever")
    tagged = await embargo.harness.slash("ending", episode=FINALE)
    assert tagged.sent[0]["content"].splitlines()[:2] == header(FINALE_LABEL, None)
    assert_all_hidden(tagged, ending)


async def test_spoilers_ok_channel_is_plain_inside_the_window(embargo):
    ending = await finale_ending_text(embargo.storage)
    await embargo.moderator("window", duration="forever")
    await embargo.moderator("channel", channel=EPISODE_TALK, policy="spoilers-ok")
    there = await embargo.harness.slash("ending", episode=FINALE, in_channel=EPISODE_TALK)
    here = await embargo.harness.slash("ending", episode=FINALE, in_channel=GENERAL)
    assert_plain(there, ending)
    assert_all_hidden(here, ending)


async def test_a_spoilers_ok_category_covers_its_channels(embargo):
    ending = await finale_ending_text(embargo.storage)
    await embargo.moderator("window", duration="forever")
    await embargo.moderator("channel", channel=TV_CATEGORY, policy="spoilers-ok")
    inside = await embargo.harness.slash("ending", episode=FINALE, in_channel=IN_CATEGORY)
    outside = await embargo.harness.slash("ending", episode=FINALE, in_channel=GENERAL)
    assert_plain(inside, ending)
    assert_all_hidden(outside, ending)


async def test_per_show_window_overrides_the_server(embargo):
    ending = await finale_ending_text(embargo.storage)
    changed = await embargo.moderator("show-window", show="Black Mirror", duration="forever")
    assert changed.content == (
        "Spoiler window for Black Mirror: **server default** → **forever**. Saved."
    )
    tagged = await embargo.harness.slash("ending", episode=FINALE)
    assert tagged.sent[0]["content"].splitlines()[:2] == header(FINALE_LABEL, None)
    assert_all_hidden(tagged, ending)
    restored = await embargo.moderator("show-window", show="black-mirror", duration="default")
    assert "**forever** → **server default**" in restored.content
    plain = await embargo.harness.slash("ending", episode=FINALE)
    assert_plain(plain, ending)
    # A per-show "off" opens the show even while the server's window runs.
    embargo.clock.now = FINALE_RELEASE + timedelta(hours=1)
    await embargo.moderator("show-window", show="Black Mirror", duration="off")
    assert_plain(await embargo.harness.slash("ending", episode=FINALE), ending)


async def test_dms_use_the_default_window(embargo):
    ending = await finale_ending_text(embargo.storage)
    await embargo.moderator("window", duration="off")  # server settings; DMs ignore them
    await embargo.moderator("mode", mode="refuse")
    embargo.clock.now = FINALE_RELEASE + timedelta(days=6)
    reply = await embargo.harness.slash("ending", episode=FINALE, in_dm=True)
    world = embargo.harness.world
    member = world.user_by_id(MEMBER.id)
    assert member is not None
    assert reply.message is not None
    assert reply.message["channel_id"] == str(world.dm_channel(member).id)
    week_later = int((FINALE_RELEASE + timedelta(days=7)).timestamp())
    assert reply.sent[0]["content"].splitlines()[:2] == header(FINALE_LABEL, week_later)
    assert_all_hidden(reply, ending)
    embargo.clock.now = FINALE_RELEASE + timedelta(days=7)
    later = await embargo.harness.slash("ending", episode=FINALE, in_dm=True)
    assert_plain(later, ending)


# -- moderators decide how endings are delivered; nobody else changes anything -----------------


async def test_moderator_controls_how_the_finale_ending_is_delivered(embargo):
    ending = await finale_ending_text(embargo.storage)

    changed = await embargo.moderator("window", duration="1000d")
    assert "1 week" in changed.content
    assert "1000 days" in changed.content
    tagged = await embargo.harness.slash("ending", episode="s7e6 into infinity")
    assert not tagged.ephemeral
    assert_all_hidden(tagged, ending)

    await embargo.moderator("mode", mode="private")
    private = await embargo.harness.slash("ending", episode=FINALE)
    assert all(message.get("flags", 0) & EPHEMERAL for message in private.sent)
    assert_all_hidden(private, ending)

    await embargo.moderator("window", duration="off")
    plain = await embargo.harness.slash("ending", episode=FINALE)
    assert_plain(plain, ending)


@pytest.mark.parametrize(
    ("subcommand", "options"),
    [
        ("window", {"duration": "off"}),
        ("mode", {"mode": "private"}),
        ("show-window", {"show": "Black Mirror", "duration": "off"}),
        ("channel", {"channel": GENERAL, "policy": "spoilers-ok"}),
        ("min-votes", {"count": 9}),
        ("min-member-days", {"days": 9}),
        ("settings", {}),
    ],
)
async def test_members_without_manage_server_change_nothing(embargo, subcommand, options):
    # Discord's client hides the group from them (tests/e2e checks the registered permission);
    # a server admin may re-enable it for everyone: Embargo's own check still holds.
    await embargo.moderator("window", duration="1000d")
    before = await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID)
    view_before = await settings_fields(embargo)
    reply = await embargo.harness.slash("embargo", subcommand=subcommand, as_user=MEMBER, **options)
    assert reply.ephemeral
    assert reply.content == REFUSAL
    assert_safe_delivery(reply)
    embargo.storage._settings_cache.clear()  # read what is really stored
    assert await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID) == before
    assert await settings_fields(embargo) == view_before


# -- /embargo --------------------------------------------------------------------------------


async def committed(embargo: Embargo):
    """The server's settings as committed, read through a second connection."""
    other = await Storage.open(embargo.db_url, PROJECT_DIR)
    try:
        return await other.get_guild_settings(DEFAULT_GUILD_ID)
    finally:
        await other.close()


async def test_changes_are_committed_before_the_reply(embargo):
    reply = await embargo.moderator("window", duration="36h")
    assert "1 day 12 hours" in reply.content
    assert (await committed(embargo)).spoilers.window == parse_window("36h")
    await embargo.moderator("mode", mode="refuse")
    assert (await committed(embargo)).spoilers.mode is SpoilerMode.REFUSE
    await embargo.moderator("window", duration="forever")
    assert (await committed(embargo)).spoilers.window == parse_window("forever")


@pytest.mark.parametrize("duration", ["soon", "7", "3651d", "-1d", "7d7d", "1 fortnight"])
async def test_bad_duration_is_refused_with_examples_and_changes_nothing(embargo, duration):
    await embargo.moderator("window", duration="2w")
    before = await committed(embargo)
    for subcommand, options in (
        ("window", {"duration": duration}),
        ("show-window", {"show": "Black Mirror", "duration": duration}),
    ):
        reply = await embargo.moderator(subcommand, **options)
        assert reply.ephemeral
        assert_safe_delivery(reply)
        assert reply.content.endswith("Nothing was changed."), reply.content
        # Examples of what works, or the limit that was crossed.
        assert "`7d`, `36h`, `2w`, `1d12h`, `off`" in reply.content or "3650 days" in reply.content
        assert await committed(embargo) == before
    fields = await settings_fields(embargo)
    assert fields["Spoiler window"] == "**2 weeks** after release"
    assert fields["Per-show windows"] == "none"


async def test_show_window_for_an_unknown_show_is_refused(embargo):
    reply = await embargo.moderator("show-window", show="Black Miror", duration="2d")
    assert reply.ephemeral
    assert reply.content.startswith(
        "I don't know a show called “Black Miror”. Did you mean: Black Mirror"
    )
    settings = await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID)
    assert settings.spoilers.show_windows == ()


async def test_every_reply_shows_the_old_and_the_new_value(embargo):
    await embargo.moderator("window", duration="2w")
    expected = [
        ("window", {"duration": "1d12h"}, "Spoiler window: 2 weeks → 1 day 12 hours. Saved."),
        (
            "window",
            {"duration": "36h"},
            "Spoiler window was already 1 day 12 hours; nothing changed.",
        ),
        ("mode", {"mode": "refuse"}, "Spoiler mode: tagged → refuse. Saved."),
        ("mode", {"mode": "refuse"}, "Spoiler mode was already refuse; nothing changed."),
        (
            "channel",
            {"channel": EPISODE_TALK, "policy": "spoilers-ok"},
            f"Policy for <#{EPISODE_TALK.id}>: default → spoilers-ok. Saved.",
        ),
        (
            "channel",
            {"channel": GENERAL, "policy": "spoilers-ok"},
            f"Policy for <#{GENERAL.id}>: default → spoilers-ok. Saved.",
        ),
        (
            "channel",
            {"channel": GENERAL, "policy": "default"},
            f"Policy for <#{GENERAL.id}>: spoilers-ok → default. Saved.",
        ),
        (
            "show-window",
            {"show": "black mirror", "duration": "forever"},
            "Spoiler window for Black Mirror: server default → forever. Saved.",
        ),
        (
            "show-window",
            {"show": "Black Mirror", "duration": "default"},
            "Spoiler window for Black Mirror: forever → server default. Saved.",
        ),
        ("min-votes", {"count": 12}, "Minimum votes: 5 → 12. Saved."),
        ("min-member-days", {"days": 30}, "Member age to vote: 0 days → 30 days. Saved."),
    ]
    for subcommand, options, text in expected:
        reply = await embargo.moderator(subcommand, **options)
        assert reply.ephemeral
        assert reply.content.replace("**", "") == text
        assert_safe_delivery(reply)
    stored = await committed(embargo)
    assert stored.spoilers.mode is SpoilerMode.REFUSE
    assert stored.spoilers.spoilers_ok_channels == {EPISODE_TALK.id}
    assert (stored.min_votes, stored.min_member_days) == (12, 30)


async def test_settings_view_shows_everything(embargo):
    await embargo.moderator("window", duration="2w")
    await embargo.moderator("mode", mode="private")
    await embargo.moderator("show-window", show="Black Mirror", duration="forever")
    await embargo.moderator("channel", channel=EPISODE_TALK, policy="spoilers-ok")
    await embargo.moderator("min-votes", count=12)
    await embargo.moderator("min-member-days", days=3)
    await embargo.moderator("announce", channel=GENERAL)
    assert await settings_fields(embargo) == {
        "Spoiler window": "**2 weeks** after release",
        "Mode": "**private**",
        "Per-show windows": "Black Mirror: forever",
        "Spoilers-ok channels": f"<#{EPISODE_TALK.id}>",
        "Minimum votes (m)": "12",
        "Member age to vote": "3 days",
        "Release posts": f"Default: <#{GENERAL.id}>",
        "Guard": "**off**",
        "Guard ignores": "none",
        "Spoiler helpers": "none",
        "Spoiler log": "off",
        "Watch roles": "none",
    }


@pytest.mark.parametrize(
    ("subcommand", "option", "valid", "value", "message"),
    [
        ("min-votes", "count", 5, 0, "Minimum votes must be between 1 and 1000."),
        ("min-votes", "count", 5, 1001, "Minimum votes must be between 1 and 1000."),
        ("min-member-days", "days", 0, -1, "Member age must be between 0 and 3650 days."),
        ("min-member-days", "days", 0, 3651, "Member age must be between 0 and 3650 days."),
    ],
)
async def test_out_of_range_settings_are_refused_server_side_too(
    embargo, subcommand, option, valid, value, message
):
    with pytest.raises(HarnessError, match="must be in"):  # Discord's client won't send it
        await embargo.moderator(subcommand, **{option: value})
    before = await committed(embargo)
    # A modified client can still send it.
    payload = await forged(embargo, subcommand, {option: valid}, option, value)
    reply = await embargo.harness.dispatch(payload)
    assert reply.ephemeral
    assert reply.content == message
    assert_safe_delivery(reply)
    assert await committed(embargo) == before


async def forged(
    embargo,
    subcommand: str | None,
    options: dict,
    name: str,
    value: object,
    *,
    command: str = "embargo",
    user=MODERATOR,
) -> dict:
    """A payload whose option ``name`` holds a value Discord's client never sends (another
    type, a choice it doesn't offer, more than the declared length): a modified client's."""
    payload = await embargo.harness.build_slash(
        command, subcommand=subcommand, as_user=user, **options
    )
    sent = payload["data"]["options"]
    for option in sent[0]["options"] if subcommand else sent:
        if option["name"] == name:
            option["value"] = value
    return payload


@pytest.mark.parametrize(
    ("subcommand", "options", "name", "allowed"),
    [
        ("mode", {"mode": "private"}, "mode", "`tagged`, `private`, `refuse`"),
        (
            "channel",
            {"channel": EPISODE_TALK, "policy": "default"},
            "policy",
            "`spoilers-ok`, `default`",
        ),
    ],
)
async def test_unknown_choice_is_refused_and_changes_nothing(
    embargo, subcommand, options, name, allowed
):
    await embargo.moderator("mode", mode="private")
    await embargo.moderator("channel", channel=EPISODE_TALK, policy="spoilers-ok")
    before = await committed(embargo)
    view_before = await settings_fields(embargo)
    # Only a modified client sends a value that is not among the registered choices.
    payload = await forged(embargo, subcommand, options, name, "loud")
    reply = await embargo.harness.dispatch(payload)
    assert reply.ephemeral
    assert reply.content == f"That value isn't one of {allowed}. Nothing was changed."
    assert_safe_delivery(reply)  # no error logged either
    assert await committed(embargo) == before
    assert await settings_fields(embargo) == view_before


async def test_a_stale_client_command_gets_a_reload_hint(embargo):
    payload = await embargo.harness.build_slash("review", episode=FINALE)
    payload["data"]["options"] = [{"type": 1, "name": "old-subcommand", "options": []}]
    reply = await embargo.harness.dispatch(payload)
    assert reply.ephemeral
    assert "Reload Discord" in reply.content


# -- option lengths ----------------------------------------------------------------------------

# Ideographic spaces normalise to nothing, and a long run of them once cost lookups dearly.
LONG = "x" + "\u3000" * 5998 + "x"


@pytest.mark.parametrize(
    ("subcommand", "options", "name", "limit"),
    [
        ("window", {"duration": "3d"}, "duration", 40),
        ("show-window", {"show": "Black Mirror", "duration": "3d"}, "show", 100),
        ("show-window", {"show": "Black Mirror", "duration": "3d"}, "duration", 40),
    ],
)
async def test_over_long_settings_text_is_refused_and_changes_nothing(
    embargo, subcommand, options, name, limit
):
    payload = await forged(embargo, subcommand, options, name, LONG)
    reply = await embargo.harness.dispatch(payload)
    assert reply.ephemeral
    assert reply.content == (
        f"That's too long for a {'show' if name == 'show' else 'duration'}: at most {limit} "
        "characters, and this has 6,000. Nothing was changed."
    )
    assert await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID) == DEFAULT_GUILD_SETTINGS


async def test_over_long_episode_text_is_refused_before_any_lookup(embargo, monkeypatch):
    def unexpected(*args: object, **kwargs: object) -> None:
        raise AssertionError("looked up an over-long value")

    catalogue = embargo.harness.bot.catalogue
    for method in ("resolve", "suggest", "search"):
        monkeypatch.setattr(catalogue, method, unexpected)
    for command in ("review", "ending", "spoilers"):
        payload = await forged(
            embargo, None, {"episode": FINALE}, "episode", LONG, command=command, user=MEMBER
        )
        reply = await embargo.harness.dispatch(payload)
        assert reply.ephemeral, command
        assert reply.content.startswith("That's too long for an episode: at most 100"), command
        assert "\u3000" not in reply.content  # the value isn't echoed
    assert await embargo.harness.autocomplete("review", "episode", LONG) == []


async def test_text_at_the_declared_length_is_accepted(embargo):
    at_limit = "black mirror" + " " * 84 + "s7e6"
    assert len(at_limit) == 100
    reply = await embargo.harness.slash("review", episode=at_limit)
    assert reply.embeds[0]["title"].endswith("USS Callister: Into Infinity")
    duration = "1 week 2 days" + " " * 27
    assert len(duration) == 40
    reply = await embargo.moderator("window", duration=duration)
    assert "9 days" in reply.content
    with pytest.raises(HarnessError, match="must be in"):  # as Discord's client would refuse
        await embargo.moderator("window", duration=duration + " ")


# -- /spoilers -----------------------------------------------------------------------------------


async def test_spoilers_shows_rules_and_episode_opening(embargo):
    await embargo.moderator("window", duration="1000d")
    await embargo.moderator("mode", mode="private")
    await embargo.moderator("channel", channel=EPISODE_TALK, policy="spoilers-ok")
    await embargo.moderator("show-window", show="Black Mirror", duration="36h")
    embargo.clock.now = FINALE_RELEASE + timedelta(hours=1)
    reply = await embargo.harness.slash("spoilers", episode=FINALE, as_user=MEMBER)
    assert reply.ephemeral
    assert_safe_delivery(reply)
    (embed,) = reply.embeds
    assert embed["title"] == "Spoiler rules"
    opens = int((FINALE_RELEASE + timedelta(hours=36)).timestamp())
    assert embed["description"] == (
        f"**{FINALE_LABEL}**: spoilers stay hidden here until {ts(opens, 'f')} "
        f"({ts(opens, 'R')}).\n\nHow Embargo hides endings in this server."
    )
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields == {
        "Spoiler window": "**1000 days** after release",
        "Mode": "**private**",
        "Per-show windows": "Black Mirror: 1 day 12 hours",
        "Spoilers-ok channels": f"<#{EPISODE_TALK.id}>",
        "Release posts": "Default: off",
    }
    there = await embargo.harness.slash("spoilers", episode=FINALE, in_channel=EPISODE_TALK)
    assert (
        "spoilers are open here (this channel is marked spoilers-ok)"
        in there.embeds[0]["description"]
    )


async def test_spoilers_in_dms_shows_the_defaults(embargo):
    await embargo.moderator("window", duration="off")  # server settings; DMs ignore them
    await embargo.moderator("mode", mode="refuse")
    reply = await embargo.harness.slash("spoilers", in_dm=True)
    (embed,) = reply.embeds
    assert embed["description"] == (
        "How Embargo hides endings in direct messages (the default rules)."
    )
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Spoiler window"] == "**1 week** after release"
    assert fields["Mode"] == "**tagged**"
