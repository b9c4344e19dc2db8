"""/review, /ending, /spoilers and /embargo through discord.py's real app-command tree.

Interactions are built from Discord-shaped payloads and every HTTP call is recorded by the
loopback stand-in in tests/support, so option parsing, checks and response payloads are
discord.py's own.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import discord
import pytest

from bot.client import EmbargoBot
from bot.config import PROJECT_DIR, Settings
from bot.guild_settings import DEFAULT_GUILD_SETTINGS
from bot.spoilers.durations import parse_window
from bot.spoilers.policy import SpoilerMode
from bot.storage import Storage
from cogs.reviews import ending_view
from tests import markdown_oracle
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
)

FINALE = "black-mirror/s07e06"
FINALE_RELEASE = datetime(2025, 4, 10, 7, 0, tzinfo=UTC)
TODAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EPHEMERAL = 1 << 6
SUPPRESS_EMBEDS = 1 << 2
NO_MENTIONS = {"parse": []}
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

    async def moderator(self, subcommand: str, **options: object) -> Recorded:
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
    """Every message: no pings, and no link previews on text-only messages."""
    assert reply.sent, reply.describe()
    assert not reply.errors, reply.describe()
    for message in reply.sent:
        assert message.get("allowed_mentions") == NO_MENTIONS
        if not message.get("embeds"):
            assert message.get("flags", 0) & SUPPRESS_EMBEDS


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]{6,}", text)


def sentences(text: str) -> list[str]:
    """Distinctive pieces of the ending: the first 30 characters of each sentence."""
    return [piece.strip()[:30] for piece in re.split(r"[.!?]\s", text) if len(piece.strip()) >= 30]


HEADER_LINE = re.compile(r"^(## Ending explained: .*|-# .*)$", re.MULTILINE)
# Markup that may stay outside the tags: list markers, heading marks, whitespace.
MARKUP_ONLY = re.compile(r"[\s\-*\d.#>]*")


def assert_all_hidden(reply: Recorded, ending: str) -> None:
    """Read each message like Discord's client (tests/markdown_oracle.py): apart from our
    header, nothing is visible outside spoiler tags but list and heading markers, and every
    word of the ending is inside a tag."""
    hidden = ""
    for index, content in enumerate(sent_contents(reply)):
        reading = markdown_oracle.read(content)
        assert not reading.hazards, (reading.hazards, content)
        visible = reading.visible
        if index == 0:
            assert HEADER_LINE.match(visible), visible
            visible = HEADER_LINE.sub("", visible)
        assert MARKUP_ONLY.fullmatch(visible), visible
        hidden += reading.hidden
    assert set(words(ending)) <= set(words(hidden))


# -- /review -------------------------------------------------------------------------------------


async def test_review_embed_fields_and_reveal_button(embargo):
    reply = await embargo.harness.slash("review", episode="into infinity")
    assert_safe_delivery(reply)
    assert not reply.ephemeral
    (embed,) = reply.embeds
    assert embed["title"] == "Black Mirror · S7E6 · USS Callister: Into Infinity"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert "4/5" in fields["Rating"]
    assert "Cristin Milioti" in fields["Verdict"]
    assert f"<t:{int(FINALE_RELEASE.timestamp())}:D>" in fields["Released"]
    assert embed["footer"]["text"].startswith("Review by ")
    assert len(embed["description"]) > 500
    assert reply.custom_ids == [f"embargo:ending:{FINALE}"]
    # Nothing of the ending reaches the review embed.
    ending = await finale_ending_text(embargo.storage)
    first_ending_sentence = ending.strip().split(". ")[0]
    assert first_ending_sentence not in str(embed)


@pytest.mark.parametrize("text", ["into infinity", "bm s7e6", "s07e06", "callister 2", FINALE])
async def test_review_accepts_free_text(embargo, text):
    reply = await embargo.harness.slash("review", episode=text)
    assert reply.embeds[0]["title"].endswith("USS Callister: Into Infinity")


async def test_unknown_episode_lists_closest_matches_privately(embargo):
    reply = await embargo.harness.slash("review", episode="into infinty and beyond")
    assert reply.ephemeral
    assert_safe_delivery(reply)
    assert "couldn't find" in reply.content
    assert "USS Callister: Into Infinity" in reply.content
    assert reply.content.count("\n- ") <= 5


async def test_episode_without_review_says_so(embargo):
    reply = await embargo.harness.slash("review", episode="the national anthem")
    assert reply.ephemeral
    assert "no review" in reply.content
    assert not reply.custom_ids


async def test_autocomplete_offers_labelled_episodes(embargo):
    choices = await embargo.harness.autocomplete("review", "episode", "into")
    assert {"name": "Black Mirror S7E6 · USS Callister: Into Infinity", "value": FINALE} in choices
    everything = await embargo.harness.autocomplete("ending", "episode", "")
    assert len(everything) == 25
    assert all(len(choice["name"]) <= 100 for choice in everything)


async def test_reveal_button_is_private_and_follows_the_rules(embargo):
    await embargo.storage.set_spoiler_window(DEFAULT_GUILD_ID, parse_window("1000d"))
    review = await embargo.harness.slash("review", episode=FINALE)
    clicked = await embargo.harness.click(
        f"embargo:ending:{FINALE}", message=review.message, as_user=MEMBER
    )
    assert_safe_delivery(clicked)
    assert all(message.get("flags", 0) & EPHEMERAL for message in clicked.sent)
    assert_all_hidden(clicked, await finale_ending_text(embargo.storage))


async def test_reveal_button_on_an_old_message_survives_restarts(embargo):
    # A persistent button: its episode lives in the custom id, not in a live View object.
    old = embargo.harness.bot_message(view=ending_view(FINALE))
    clicked = await embargo.harness.click(f"embargo:ending:{FINALE}", message=old)
    assert clicked.ephemeral
    assert "Ending explained" in clicked.sent[0]["content"]


# -- /ending -------------------------------------------------------------------------------------


async def test_unreleased_episode_reveals_nothing(embargo):
    embargo.clock.now = FINALE_RELEASE - timedelta(minutes=1)
    reply = await embargo.harness.slash("ending", episode=FINALE)
    assert_safe_delivery(reply)
    assert reply.ephemeral
    assert f"<t:{int(FINALE_RELEASE.timestamp())}:R>" in reply.content
    ending = await finale_ending_text(embargo.storage)
    assert not [piece for piece in sentences(ending) if piece in reply.content]
    assert "||" not in reply.content


async def test_default_window_is_tagged_right_after_release(embargo):
    embargo.clock.now = FINALE_RELEASE + timedelta(hours=1)
    reply = await embargo.harness.slash("ending", episode=FINALE)
    assert_safe_delivery(reply)
    assert not reply.ephemeral
    assert_all_hidden(reply, await finale_ending_text(embargo.storage))


async def test_after_the_default_window_the_ending_is_plain(embargo):
    reply = await embargo.harness.slash("ending", episode=FINALE)  # TODAY: 7 days long past
    assert_safe_delivery(reply)
    assert "||" not in "".join(sent_contents(reply))
    assert not reply.ephemeral


async def test_refuse_mode_says_when_the_window_ends(embargo):
    await embargo.moderator("window", duration="1000d")
    await embargo.moderator("mode", mode="refuse")
    reply = await embargo.harness.slash("ending", episode=FINALE)
    assert reply.ephemeral
    end = FINALE_RELEASE + timedelta(days=1000)
    assert f"<t:{int(end.timestamp())}:f>" in reply.content
    assert "||" not in reply.content


async def test_spoilers_ok_channel_is_plain_inside_the_window(embargo):
    await embargo.moderator("window", duration="forever")
    await embargo.moderator("channel", channel=EPISODE_TALK, policy="spoilers-ok")
    there = await embargo.harness.slash("ending", episode=FINALE, in_channel=EPISODE_TALK)
    here = await embargo.harness.slash("ending", episode=FINALE, in_channel=GENERAL)
    assert "||" not in "".join(sent_contents(there))
    assert_all_hidden(here, await finale_ending_text(embargo.storage))


async def test_a_spoilers_ok_category_covers_its_channels(embargo):
    await embargo.moderator("window", duration="forever")
    await embargo.moderator("channel", channel=TV_CATEGORY, policy="spoilers-ok")
    inside = await embargo.harness.slash("ending", episode=FINALE, in_channel=IN_CATEGORY)
    outside = await embargo.harness.slash("ending", episode=FINALE, in_channel=GENERAL)
    assert "||" not in "".join(sent_contents(inside))
    assert_all_hidden(outside, await finale_ending_text(embargo.storage))


async def test_per_show_window_overrides_the_server(embargo):
    await embargo.moderator("show-window", show="Black Mirror", duration="1000d")
    tagged = await embargo.harness.slash("ending", episode=FINALE)
    assert_all_hidden(tagged, await finale_ending_text(embargo.storage))
    await embargo.moderator("show-window", show="black-mirror", duration="default")
    plain = await embargo.harness.slash("ending", episode=FINALE)
    assert "||" not in "".join(sent_contents(plain))


async def test_dms_use_the_default_window(embargo):
    await embargo.moderator("window", duration="off")  # a server setting; DMs ignore it
    embargo.clock.now = FINALE_RELEASE + timedelta(days=6)
    reply = await embargo.harness.slash("ending", episode=FINALE, in_dm=True)
    assert_all_hidden(reply, await finale_ending_text(embargo.storage))
    embargo.clock.now = FINALE_RELEASE + timedelta(days=7)
    later = await embargo.harness.slash("ending", episode=FINALE, in_dm=True)
    assert "||" not in "".join(sent_contents(later))


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
    text = "".join(sent_contents(plain))
    assert "||" not in text
    assert ending.split()[0] in text


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
    await embargo.moderator("window", duration="1000d")
    before = await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID)
    reply = await embargo.harness.slash("embargo", subcommand=subcommand, as_user=MEMBER, **options)
    assert reply.ephemeral
    assert "Manage Server" in reply.content
    assert reply.allowed_mentions == NO_MENTIONS
    embargo.storage._settings_cache.clear()  # read what is really stored
    assert await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID) == before


# -- /embargo --------------------------------------------------------------------------------


async def test_changes_are_committed_before_the_reply(embargo):
    reply = await embargo.moderator("window", duration="36h")
    assert "1 day 12 hours" in reply.content
    other = await Storage.open(embargo.db_url, PROJECT_DIR)  # a second connection
    try:
        stored = await other.get_guild_settings(DEFAULT_GUILD_ID)
    finally:
        await other.close()
    assert stored.spoilers.window == parse_window("36h")


@pytest.mark.parametrize("duration", ["soon", "7", "3651d", "-1d", "7d7d"])
async def test_bad_duration_is_refused_with_examples_and_changes_nothing(embargo, duration):
    await embargo.moderator("window", duration="2w")
    reply = await embargo.moderator("window", duration=duration)
    assert reply.ephemeral
    assert "Nothing was changed" in reply.content
    assert "`7d`" in reply.content or "3650" in reply.content
    settings = await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID)
    assert settings.spoilers.window == parse_window("2w")


async def test_show_window_for_an_unknown_show_is_refused(embargo):
    reply = await embargo.moderator("show-window", show="Black Miror", duration="2d")
    assert reply.ephemeral
    assert "Black Mirror" in reply.content  # the suggestion
    settings = await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID)
    assert settings.spoilers.show_windows == ()


async def test_mode_and_channel_replies_show_old_and_new(embargo):
    mode = await embargo.moderator("mode", mode="refuse")
    assert "**tagged** → **refuse**" in mode.content
    again = await embargo.moderator("mode", mode="refuse")
    assert "already" in again.content
    channel = await embargo.moderator("channel", channel=EPISODE_TALK, policy="spoilers-ok")
    assert "**default** → **spoilers-ok**" in channel.content
    stored = await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID)
    assert stored.spoilers.mode is SpoilerMode.REFUSE
    assert stored.spoilers.spoilers_ok_channels == {EPISODE_TALK.id}


async def test_settings_view_shows_everything(embargo):
    await embargo.moderator("window", duration="2w")
    await embargo.moderator("show-window", show="Black Mirror", duration="forever")
    await embargo.moderator("channel", channel=EPISODE_TALK, policy="spoilers-ok")
    await embargo.moderator("min-votes", count=12)
    reply = await embargo.moderator("settings")
    assert reply.ephemeral
    fields = {field["name"]: field["value"] for field in reply.embeds[0]["fields"]}
    assert "2 weeks" in fields["Spoiler window"]
    assert "Black Mirror: forever" in fields["Per-show windows"]
    assert f"<#{EPISODE_TALK.id}>" in fields["Spoilers-ok channels"]
    assert fields["Minimum votes (m)"] == "12"


async def test_out_of_range_settings_are_refused_server_side_too(embargo):
    command = embargo.harness.bot.tree.get_command("embargo").get_command("min-votes")
    assert (command.parameters[0].min_value, command.parameters[0].max_value) == (1, 1000)
    # Discord's client enforces the range; a modified client can still send 0.
    payload = forged(embargo, "min-votes", {"count": 5}, "count", 0)
    reply = await embargo.harness._send(payload, MODERATOR)
    assert reply.ephemeral
    assert "between 1 and 1000" in reply.content
    assert (await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID)).min_votes == 5


def forged(
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
    harness = embargo.harness
    data = harness._command_data(
        command, subcommand, dm=False, user=user, options=options, focused=None
    )
    sent = data["options"][0]["options"] if subcommand else data["options"]
    for option in sent:
        if option["name"] == name:
            option["value"] = value
    return harness._interaction(2, data, user=user, channel=GENERAL, dm=False, locale="en-US")


async def test_unknown_choice_is_refused_and_changes_nothing(embargo):
    await embargo.moderator("channel", channel=EPISODE_TALK, policy="spoilers-ok")
    valid = {"channel": EPISODE_TALK, "policy": "default"}
    payload = forged(embargo, "channel", valid, "policy", "loud")
    reply = await embargo.harness._send(payload, MODERATOR)
    assert reply.ephemeral
    assert "`spoilers-ok`" in reply.content
    assert reply.content.endswith("Nothing was changed.")
    stored = await embargo.storage.get_guild_settings(DEFAULT_GUILD_ID)
    assert stored.spoilers.spoilers_ok_channels == {EPISODE_TALK.id}


async def test_a_stale_client_command_gets_a_reload_hint(embargo):
    harness = embargo.harness
    data = harness._command_data(
        "review", None, dm=False, user=MEMBER, options={"episode": FINALE}, focused=None
    )
    data["options"] = [{"type": 1, "name": "old-subcommand", "options": []}]
    payload = harness._interaction(2, data, user=MEMBER, channel=GENERAL, dm=False, locale="en-US")
    reply = await harness._send(payload, MEMBER)
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
    payload = forged(embargo, subcommand, options, name, LONG)
    reply = await embargo.harness._send(payload, MODERATOR)
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
        payload = forged(
            embargo, None, {"episode": FINALE}, "episode", LONG, command=command, user=MEMBER
        )
        reply = await embargo.harness._send(payload, MEMBER)
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
    reply = await embargo.harness.slash("spoilers", episode=FINALE, as_user=MEMBER)
    assert reply.ephemeral
    (embed,) = reply.embeds
    end = FINALE_RELEASE + timedelta(days=1000)
    assert f"<t:{int(end.timestamp())}:f>" in embed["description"]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert "1000 days" in fields["Spoiler window"]


async def test_spoilers_in_dms_shows_the_defaults(embargo):
    reply = await embargo.harness.slash("spoilers", in_dm=True)
    fields = {field["name"]: field["value"] for field in reply.embeds[0]["fields"]}
    assert "1 week" in fields["Spoiler window"]
    assert "direct messages" in reply.embeds[0]["description"]
