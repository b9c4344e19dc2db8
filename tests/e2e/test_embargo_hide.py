"""Apps → Hide as spoiler through the real ``python -m bot`` process and the stand-in server: the
webhook repost, then the original deleted. Behaviour in detail (who may, refusals, threads,
the log) is tested in-process in tests/test_hide_as_spoiler.py."""

from __future__ import annotations

import pytest

from tests.support.standin.webhooks import MANAGE_WEBHOOKS, MemberFile
from tests.support.standin.world import MANAGE_MESSAGES

from .scenario import Scenario

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture
def scenario(embargo: Scenario) -> Scenario:
    embargo.checkpoint()
    return embargo


async def test_a_moderator_hides_a_message_through_the_real_process(scenario: Scenario) -> None:
    standin = scenario.standin
    guild = scenario.world.guild
    channel = scenario.channel("general")
    bot_role = guild.role("Embargo")
    before = bot_role.permissions
    bot_role.permissions |= MANAGE_WEBHOOKS | MANAGE_MESSAGES  # as the invite grants them
    try:
        original = standin.member_message(
            channel,
            scenario.user("alice"),
            "the captain survives https://example.com",
            files=[MemberFile("still.png", b"\x89PNG\r\n\x1a\nxx")],
        )
        handle = await scenario.message_command("Hide as spoiler", original, as_user="mod")
        reply = await handle.reply(within=10)  # the deferral's "thinking…", then the result
        assert reply.ephemeral
        assert reply.content.startswith("Hidden")

        def reposted() -> list:
            return [m for m in standin.channel_messages(channel.id) if m.payload.get("webhook_id")]

        [repost] = await scenario.wait(reposted, what="the repost")
        alice = scenario.user("alice")
        assert repost.payload["author"]["username"] == (alice.global_name or alice.username)
        assert repost.payload["content"].startswith("||")
        assert repost.payload["attachments"][0]["filename"] == "SPOILER_still.png"
        assert standin.messages[int(original["id"])].deleted
        scenario.assert_clean()
    finally:
        bot_role.permissions = before
