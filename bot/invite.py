"""The server permissions Embargo's invite link asks for: only what a feature needs, each with
the reason. The README's link carries this number (a test checks it), and the tests' Discord
stand-in gives Embargo exactly these in its servers by default."""

from __future__ import annotations

from typing import Final

import discord

# Replies to slash commands need no channel permissions: everything here is for the rest.
INVITE_PERMISSIONS: Final[int] = discord.Permissions(
    view_channel=True,  # see the channels it posts release posts in and hides messages in
    send_messages=True,  # release posts, and follow-ups such as a long ending's second part
    embed_links=True,  # reviews, rankings and release posts are embeds
    attach_files=True,  # rankings charts (PNG); a hidden message's files, reposted
    create_public_threads=True,  # each release post opens its spoiler thread
    send_messages_in_threads=True,  # the thread's greeting; follow-ups and reposts in threads
    manage_webhooks=True,  # Hide as spoiler reposts under the member's name through a webhook
    manage_messages=True,  # ...then deletes the member's original
    read_message_history=True,  # hiding fetches the message first; the guard replies to one
).value
