"""Points discord.py at the local Discord stand-in, from outside the bot under test.

Python imports ``sitecustomize`` at start-up from ``sys.path``; the end-to-end launcher puts this
directory on ``PYTHONPATH`` of the bot process only, with the stand-in's addresses in the
environment. The bot's own code is unchanged and has no test hooks.

discord.py 2.7 has exactly two hard-coded Discord hosts a bot talks to:

- ``discord.http.Route.BASE`` (``https://discord.com/api/v10``): every REST call, including the
  interaction callbacks and webhook followups (``discord/webhook/async_.py`` reuses ``Route``);
- ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (``wss://gateway.discord.gg/``): a plain
  ``Client``/``Bot`` connects there directly (only ``AutoShardedClient`` asks GET /gateway/bot);
  after READY it uses ``resume_gateway_url``, which the stand-in points back at itself.

Discord's pacing of logins is kept by the bot itself (``bot/shards.py``: one IDENTIFY per
session-start bucket every 5 s, plus a margin), and it holds across restarts: a bot restarted on
the same database waits for its turn. With ``EMBARGO_E2E_IDENTIFY_SPACING_S`` set (the launcher
sets a short one unless a test asks for Discord's own), the turns are that many seconds apart
instead, so the many restarts of the end-to-end tests don't each wait out Discord's interval.

Asset URLs (cdn.discordapp.com) only matter if the bot downloads avatars or attachments; the
stand-in's attachment objects already carry its own URLs.
"""

import os
import sys

_API_BASE = os.environ.get("EMBARGO_E2E_API_BASE")
_GATEWAY_URL = os.environ.get("EMBARGO_E2E_GATEWAY_URL")

if _API_BASE and _GATEWAY_URL:
    try:
        import yarl
        from discord import http as _discord_http
        from discord.gateway import DiscordWebSocket as _DiscordWebSocket

        _discord_http.Route.BASE = _API_BASE
        _DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(_GATEWAY_URL)
    except Exception as error:
        # Python would print a warning and start the bot anyway, aimed at the real Discord.
        sys.stderr.write(f"e2e sitecustomize could not redirect discord.py: {error!r}\n")
        os._exit(97)

_IDENTIFY_SPACING_S = os.environ.get("EMBARGO_E2E_IDENTIFY_SPACING_S")

if _IDENTIFY_SPACING_S:
    try:
        # Before anything imports it: bot.client takes the value at its own import.
        from bot import shards as _shards

        _shards.IDENTIFY_SPACING_S = float(_IDENTIFY_SPACING_S)
    except Exception as error:
        sys.stderr.write(f"e2e sitecustomize could not set the login spacing: {error!r}\n")
        os._exit(97)
