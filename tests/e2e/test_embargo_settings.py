"""/embargo (the moderators' settings) through the real ``python -m bot`` process.

One bot on a fresh database serves the module: the first test sees a new server's defaults.
What is stored is read back through ``/embargo settings`` and, to check that a change is
committed before its reply, straight from the bot's SQLite file (read-only).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest

from .embargo_checks import NO_MENTIONS, assert_safe_delivery, moderator
from .embargo_content import SHOW_TITLE
from .scenario import REPO_ROOT, Scenario, ScenarioError, SentMessage

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
REFUSAL = (
    "Only members with the **Manage Server** permission can change Embargo's settings. "
    "Nothing was changed."
)
# Valid options for each subcommand, for the "who may" tests.
SUBCOMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("window", {"duration": "off"}),
    ("show-window", {"show": "Black Mirror", "duration": "off"}),
    ("mode", {"mode": "private"}),
    ("channel", {"channel": "general", "policy": "spoilers-ok"}),
    ("min-votes", {"count": 9}),
    ("min-member-days", {"days": 9}),
    ("settings", {}),
]


@pytest.fixture
def scenario(embargo: Scenario) -> Scenario:
    embargo.checkpoint()
    return embargo


async def settings_fields(scenario: Scenario) -> dict[str, str]:
    reply = await (await scenario.slash("embargo", "settings", as_user="mod")).reply()
    assert reply.ephemeral
    (embed,) = reply.embeds
    assert embed["title"] == "Embargo settings"
    return {f["name"]: f["value"] for f in embed["fields"]}


def stored_row(scenario: Scenario) -> dict[str, Any] | None:
    """The server's settings row as committed in the bot's database (read-only connection)."""
    uri = f"file:{scenario.bot.database_path}?mode=ro"
    with sqlite3.connect(uri, uri=True) as connection:
        connection.row_factory = sqlite3.Row
        row = connection.execute(
            "SELECT * FROM guild_settings WHERE guild_id = ?", (scenario.world.guild.id,)
        ).fetchone()
    return dict(row) if row else None


def unbold(text: str) -> str:
    return text.replace("**", "")


async def send_out_of_range(
    scenario: Scenario, subcommand: str, option: str, valid: int, value: object
) -> SentMessage:
    """What a modified client can send: Discord's own client enforces the registered range."""
    payload = scenario.build_slash("embargo", subcommand, as_user="mod", **{option: valid})
    payload["data"]["options"][0]["options"][0]["value"] = value
    return await (await scenario.send_raw_interaction(payload)).reply()


# Runs first: a new server's defaults and the README's example reply.
async def test_new_server_defaults_and_the_readme_example_change(scenario: Scenario) -> None:
    assert await settings_fields(scenario) == {
        "Spoiler window": "**1 week** after release",
        "Mode": "**tagged**",
        "Per-show windows": "none",
        "Spoilers-ok channels": "none",
        "Minimum votes (m)": "5",
        "Member age to vote": "0 days",
    }
    example = re.search(r"\(`(Spoiler window: .+? Saved\.)`\)", README)
    assert example, "the README's example reply is gone"
    old, new = re.search(r": (.+) → (.+)\. Saved", example[1]).groups()  # type: ignore[union-attr]
    assert old == "1 week"  # the README's "a new server starts at 7 days"
    reply = await moderator(scenario, "window", duration=new.replace(" days", "d"))
    assert unbold(reply.content) == example[1]
    assert_safe_delivery([reply])
    scenario.assert_clean()


async def test_changes_are_committed_before_the_reply(scenario: Scenario) -> None:
    await moderator(scenario, "window", duration="36h")
    row = stored_row(scenario)
    assert row is not None
    assert row["spoiler_window_s"] == 36 * 3600
    await moderator(scenario, "mode", mode="refuse")
    assert stored_row(scenario)["spoiler_mode"] == "refuse"  # type: ignore[index]
    await moderator(scenario, "window", duration="forever")
    assert stored_row(scenario)["spoiler_window_s"] is None  # type: ignore[index]
    await moderator(scenario, "mode", mode="tagged")


async def test_every_reply_shows_the_old_and_the_new_value(scenario: Scenario) -> None:
    await moderator(scenario, "window", duration="2w")
    await moderator(scenario, "mode", mode="tagged")
    spoilers = scenario.channel("spoilers")
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
            {"channel": "spoilers", "policy": "spoilers-ok"},
            f"Policy for {spoilers.mention}: default → spoilers-ok. Saved.",
        ),
        (
            "channel",
            {"channel": "spoilers", "policy": "default"},
            f"Policy for {spoilers.mention}: spoilers-ok → default. Saved.",
        ),
        (
            "show-window",
            {"show": "clockwork", "duration": "forever"},
            f"Spoiler window for {SHOW_TITLE}: server default → forever. Saved.",
        ),
        (
            "show-window",
            {"show": SHOW_TITLE, "duration": "default"},
            f"Spoiler window for {SHOW_TITLE}: forever → server default. Saved.",
        ),
        ("min-votes", {"count": 12}, "Minimum votes: 5 → 12. Saved."),
        ("min-member-days", {"days": 30}, "Member age to vote: 0 days → 30 days. Saved."),
    ]
    for subcommand, options, text in expected:
        reply = await moderator(scenario, subcommand, **options)
        assert unbold(reply.content) == text
        assert reply.allowed_mentions == NO_MENTIONS
        assert reply.suppress_embeds
    await moderator(scenario, "min-votes", count=5)
    await moderator(scenario, "min-member-days", days=0)
    await moderator(scenario, "mode", mode="tagged")
    scenario.assert_clean()


async def test_settings_view_shows_everything(scenario: Scenario) -> None:
    await moderator(scenario, "window", duration="2w")
    await moderator(scenario, "mode", mode="private")
    await moderator(scenario, "show-window", show="Black Mirror", duration="forever")
    await moderator(scenario, "channel", channel="spoilers", policy="spoilers-ok")
    await moderator(scenario, "min-votes", count=12)
    await moderator(scenario, "min-member-days", days=3)
    assert await settings_fields(scenario) == {
        "Spoiler window": "**2 weeks** after release",
        "Mode": "**private**",
        "Per-show windows": "Black Mirror: forever",
        "Spoilers-ok channels": scenario.channel("spoilers").mention,
        "Minimum votes (m)": "12",
        "Member age to vote": "3 days",
    }
    await moderator(scenario, "show-window", show="Black Mirror", duration="default")
    await moderator(scenario, "channel", channel="spoilers", policy="default")
    await moderator(scenario, "min-votes", count=5)
    await moderator(scenario, "min-member-days", days=0)
    scenario.assert_clean()


async def test_members_without_manage_server_do_not_see_the_group(scenario: Scenario) -> None:
    for user in ("alice", "bob", "newbie"):
        with pytest.raises(ScenarioError, match=f"hidden from {user}"):
            await scenario.slash("embargo", "settings", as_user=user)
    for user in ("mod", "admin", "owner"):  # Manage Server, Administrator, the owner
        reply = await (await scenario.slash("embargo", "settings", as_user=user)).reply()
        assert reply.embeds[0]["title"] == "Embargo settings", user


@pytest.mark.parametrize(("subcommand", "options"), SUBCOMMANDS)
async def test_every_subcommand_refuses_members_without_manage_server(
    scenario: Scenario, subcommand: str, options: dict[str, Any]
) -> None:
    # A server admin re-enabled the group for everyone: Embargo's own check still holds.
    await moderator(scenario, "window", duration="1000d")
    before = await settings_fields(scenario)
    row_before = stored_row(scenario)
    handle = await scenario.slash(
        "embargo", subcommand, as_user="alice", bypass_permissions=True, **options
    )
    (reply,) = await handle.messages()
    assert reply.ephemeral
    assert reply.content == REFUSAL
    assert_safe_delivery([reply])
    assert stored_row(scenario) == row_before
    assert await settings_fields(scenario) == before
    scenario.assert_clean()


async def test_moderators_and_admins_may_change_settings(scenario: Scenario) -> None:
    for user, duration in (("mod", "3d"), ("admin", "4d"), ("owner", "5d")):
        handle = await scenario.slash("embargo", "window", as_user=user, duration=duration)
        reply = await handle.reply()
        assert reply.content.endswith("Saved."), (user, reply.content)
        assert f"**{duration[0]} days**" in reply.content
    scenario.assert_clean()


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("duration", ["soon", "7", "3651d", "-1d", "7d7d", "1 fortnight"])
async def test_bad_duration_is_refused_with_examples_and_changes_nothing(
    scenario: Scenario, duration: str
) -> None:
    await moderator(scenario, "window", duration="2w")
    row_before = stored_row(scenario)
    for subcommand, options in (
        ("window", {"duration": duration}),
        ("show-window", {"show": "Black Mirror", "duration": duration}),
    ):
        handle = await scenario.slash("embargo", subcommand, as_user="mod", **options)
        (reply,) = await handle.messages()
        assert reply.ephemeral
        assert_safe_delivery([reply])
        assert reply.content.endswith("Nothing was changed."), reply.content
        # Examples of what works, or the limit that was crossed.
        assert "`7d`, `36h`, `2w`, `1d12h`, `off`" in reply.content or "3650 days" in reply.content
        assert stored_row(scenario) == row_before
    fields = await settings_fields(scenario)
    assert fields["Spoiler window"] == "**2 weeks** after release"
    assert fields["Per-show windows"] == "none"


async def test_show_window_for_an_unknown_show_suggests_and_changes_nothing(
    scenario: Scenario,
) -> None:
    handle = await scenario.slash(
        "embargo", "show-window", as_user="mod", show="Black Miror", duration="2d"
    )
    (reply,) = await handle.messages()
    assert reply.ephemeral
    assert reply.content.startswith(
        "I don't know a show called “Black Miror”. Did you mean: Black Mirror"
    )
    assert (await settings_fields(scenario))["Per-show windows"] == "none"
    scenario.assert_clean()


@pytest.mark.parametrize(
    ("subcommand", "option", "valid", "value", "message"),
    [
        ("min-votes", "count", 5, 0, "Minimum votes must be between 1 and 1000."),
        ("min-votes", "count", 5, 1001, "Minimum votes must be between 1 and 1000."),
        ("min-member-days", "days", 0, -1, "Member age must be between 0 and 3650 days."),
        ("min-member-days", "days", 0, 3651, "Member age must be between 0 and 3650 days."),
    ],
)
async def test_out_of_range_numbers_are_refused_by_the_bot_too(
    scenario: Scenario, subcommand: str, option: str, valid: int, value: int, message: str
) -> None:
    with pytest.raises(ScenarioError, match="must be"):  # Discord's client won't send it
        await scenario.slash("embargo", subcommand, as_user="mod", **{option: value})
    row_before = stored_row(scenario)
    reply = await send_out_of_range(scenario, subcommand, option, valid, value)
    assert reply.ephemeral
    assert reply.content == message
    assert stored_row(scenario) == row_before
    scenario.assert_clean()


async def test_a_value_of_the_wrong_type_changes_nothing(scenario: Scenario) -> None:
    # Discord itself never delivers a string for an integer option; a malformed payload
    # must still get an answer and leave the settings alone.
    row_before = stored_row(scenario)
    payload = scenario.build_slash("embargo", "min-votes", as_user="mod", count=5)
    payload["data"]["options"][0]["options"][0]["value"] = "twelve"
    (reply,) = await (await scenario.send_raw_interaction(payload)).messages()
    assert reply.ephemeral
    assert_safe_delivery([reply])
    assert stored_row(scenario) == row_before
    assert scenario.bot.running


async def send_unknown_choice(scenario: Scenario, subcommand: str, **options: str) -> SentMessage:
    """A choice that is not among the registered ones (only a modified client sends it)."""
    name, value = next((k, v) for k, v in options.items() if v == "loud")
    valid = {"mode": "private", "policy": "default"}[name]
    payload = scenario.build_slash("embargo", subcommand, as_user="mod", **{**options, name: valid})
    for option in payload["data"]["options"][0]["options"]:
        if option["name"] == name:
            option["value"] = value
    (reply,) = await (await scenario.send_raw_interaction(payload)).messages()
    return reply


@pytest.mark.parametrize(
    ("subcommand", "options", "allowed"),
    [
        ("mode", {"mode": "loud"}, "`tagged`, `private`, `refuse`"),
        ("channel", {"channel": "spoilers", "policy": "loud"}, "`spoilers-ok`, `default`"),
    ],
)
async def test_an_unknown_choice_is_refused_and_changes_nothing(
    scenario: Scenario, subcommand: str, options: dict[str, str], allowed: str
) -> None:
    await moderator(scenario, "mode", mode="private")
    await moderator(scenario, "channel", channel="spoilers", policy="spoilers-ok")
    before = await settings_fields(scenario)
    row_before = stored_row(scenario)
    output_before = len(scenario.bot.lines)
    reply = await send_unknown_choice(scenario, subcommand, **options)
    assert reply.ephemeral
    assert reply.content == f"That value isn't one of {allowed}. Nothing was changed."
    assert_safe_delivery([reply])
    assert stored_row(scenario) == row_before
    assert await settings_fields(scenario) == before
    assert "Traceback" not in "\n".join(scenario.bot.lines[output_before:])
    await moderator(scenario, "channel", channel="spoilers", policy="default")
    scenario.assert_clean()


async def test_the_group_refuses_dms_on_the_bot_side_too(scenario: Scenario) -> None:
    # A stale client that still offers /embargo in a DM: Embargo answers, changes nothing.
    payload = scenario.build_slash("embargo", "window", as_user="mod", duration="off")
    dm = scenario.channel("dm", scenario.user("mod"))
    in_dm = scenario.build_slash("spoilers", as_user="mod", in_channel=dm)
    in_dm["data"] = payload["data"]
    row_before = stored_row(scenario)
    (reply,) = await (await scenario.send_raw_interaction(in_dm)).messages()
    assert reply.ephemeral
    assert reply.content == "This command only works in a server, not in direct messages."
    assert stored_row(scenario) == row_before
    scenario.assert_clean()
