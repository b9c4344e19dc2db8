"""The one local stand-in for Discord the tests use: REST v10 and the gateway, on 127.0.0.1.

``world`` models Discord's objects (users, guilds, roles, channels, permissions), ``rest``
answers the REST API over that world, ``interactions`` builds the INTERACTION_CREATE payloads a
user's client would send, ``server`` serves it all over HTTP and a websocket gateway (a
session per shard, events routed to their server's shard: see its docstring). Two
drivers use it: ``tests.support.harness`` (a bot in the test's own process) and
``tests.e2e.scenario`` (the real ``python -m bot`` process).
"""

from .interactions import ScenarioError, Upload
from .rest import DiscordApi, FaultRule, InteractionRecord, RecordedRequest, StoredMessage
from .server import DiscordStandIn
from .world import World, default_world

__all__ = [
    "DiscordApi",
    "DiscordStandIn",
    "FaultRule",
    "InteractionRecord",
    "RecordedRequest",
    "ScenarioError",
    "StoredMessage",
    "Upload",
    "World",
    "default_world",
]
