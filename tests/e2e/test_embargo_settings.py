"""/embargo (the moderators' settings) through the real ``python -m bot`` process.

One bot on a fresh database serves the module: the first test sees a new server's defaults.
What stays here needs the real process and the registered commands: a new server's defaults,
who Discord's client offers the group to, payloads only a modified client sends. Each setting's
replies, refusals and bad input are command behaviour, tested in-process in
tests/test_commands_core.py.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest

from .embargo_checks import assert_safe_delivery, moderator
from .scenario import REPO_ROOT, Scenario, ScenarioError

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


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


# Runs first: a new server's defaults and the README's example reply.
async def test_new_server_defaults_and_the_readme_example_change(scenario: Scenario) -> None:
    assert await settings_fields(scenario) == {
        "Spoiler window": "**1 week** after release",
        "Mode": "**tagged**",
        "Per-show windows": "none",
        "Spoilers-ok channels": "none",
        "Minimum votes (m)": "5",
        "Member age to vote": "0 days",
        "Release posts": "Default: off",
        "Guard": "**off**",
        "Guard ignores": "none",
        "Spoiler helpers": "none",
        "Spoiler log": "off",
        "Watch roles": "none",
    }
    example = re.search(r"\(`(Spoiler window: .+? Saved\.)`\)", README)
    assert example, "the README's example reply is gone"
    change = re.search(r": (.+) → (.+)\. Saved", example[1])
    assert change, example[1]
    old, new = change.groups()
    assert old == "1 week"  # the README's "a new server starts at 7 days"
    reply = await moderator(scenario, "window", duration=new.replace(" days", "d"))
    assert unbold(reply.content) == example[1]
    assert_safe_delivery([reply])
    scenario.assert_clean()


async def test_members_without_manage_server_do_not_see_the_group(scenario: Scenario) -> None:
    for user in ("alice", "bob", "newbie"):
        with pytest.raises(ScenarioError, match=f"hidden from {user}"):
            await scenario.slash("embargo", "settings", as_user=user)
    for user in ("mod", "admin", "owner"):  # Manage Server, Administrator, the owner
        reply = await (await scenario.slash("embargo", "settings", as_user=user)).reply()
        assert reply.embeds[0]["title"] == "Embargo settings", user


async def test_moderators_and_admins_may_change_settings(scenario: Scenario) -> None:
    for user, duration in (("mod", "3d"), ("admin", "4d"), ("owner", "5d")):
        handle = await scenario.slash("embargo", "window", as_user=user, duration=duration)
        reply = await handle.reply()
        assert reply.content.endswith("Saved."), (user, reply.content)
        assert f"**{duration[0]} days**" in reply.content
    scenario.assert_clean()


# -- bad input -------------------------------------------------------------------------------


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
