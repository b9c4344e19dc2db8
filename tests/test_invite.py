"""The invite link's permissions: the README's link carries ``bot.invite``'s number, and that
number is exactly what Embargo's features check for (ask only for what a feature needs)."""

from __future__ import annotations

import re

import discord

from bot.config import PROJECT_DIR
from bot.discussion_messages import announce_permissions
from bot.hiding_messages import HIDE_PERMISSION_NAMES, HIDE_PERMISSIONS
from bot.invite import INVITE_PERMISSIONS
from bot.messages import OutgoingMessage, permissions_needed
from tests.support.specs import GuildSpec

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")


def test_the_readme_invite_link_asks_for_embargos_permissions():
    [value] = re.findall(r"&permissions=(\d+)`", README)
    assert int(value) == INVITE_PERMISSIONS
    # The sum spelled out under the link names each permission once, with its value.
    sum_line = README[README.index(f"`{value}` = ") :].split("\n\n")[0]
    parts = [int(n) for n in re.findall(r"\((\d+)\)", sum_line)]
    assert all(part.bit_count() == 1 for part in parts), parts
    assert len(set(parts)) == len(parts)
    assert sum(parts) == INVITE_PERMISSIONS


def test_the_invite_asks_for_exactly_what_the_features_check():
    # Replies and follow-ups (an embed, a chart, a second message, in a thread or not), release
    # posts and their threads (text channels and forums), and hiding a message as a spoiler.
    replies = [OutgoingMessage("a", embeds=({"title": "t"},)), OutgoingMessage("b")]
    checked = {
        *permissions_needed(replies, with_file=True, in_thread=False),
        *permissions_needed(replies, with_file=True, in_thread=True),
        *announce_permissions(forum=False),
        *announce_permissions(forum=True),
        *HIDE_PERMISSIONS,
        *HIDE_PERMISSION_NAMES,  # every permission hiding may report missing
    }
    # As a value: discord.py lists View Channel under its old name, read_messages.
    assert discord.Permissions(**dict.fromkeys(checked, True)).value == INVITE_PERMISSIONS


def test_the_standin_servers_give_embargo_what_the_invite_asks_for():
    assert GuildSpec().bot_permissions.value == INVITE_PERMISSIONS
