"""A local stand-in for the Discord API (REST v10 and gateway) for end-to-end tests."""

from .interactions import ScenarioError, Upload
from .server import DiscordStandIn, FaultRule, InteractionRecord, RecordedRequest, StoredMessage
from .world import World, default_world

__all__ = [
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
