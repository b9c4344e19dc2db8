"""INTERACTION_CREATE payloads, built from the commands the bot actually registered.

A slash command is only sent if Discord's client would let the user send it: the command must be
registered (its ``data.id`` is the registered id), visible in that context and to that member
(``default_member_permissions``), every required option present, every value of the declared type,
within its choices and bounds. Anything else raises :class:`ScenarioError` in the test, because it
would be a test bug, not a bot bug.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .world import (
    DM_CHANNEL,
    EVERYONE_DEFAULT,
    Channel,
    Guild,
    Role,
    User,
    World,
    snowflake,
)

SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)

PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5

CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL = 0, 1, 2
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


class ScenarioError(AssertionError):
    """The scenario asks for something Discord's client would never send."""


@dataclass(frozen=True)
class Upload:
    """A file a user attaches to an ATTACHMENT option."""

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


# Stores an uploaded option file where the bot can download it: (channel id, upload) -> (id, url).
UploadStore = Callable[[int, Upload], tuple[int, str]]


def _member_payload(guild: Guild, user: User, channel: Channel | None) -> dict[str, Any]:
    member = guild.member(user.id)
    if member is None:
        raise ScenarioError(f"{user.username} is not a member of {guild.name!r}")
    payload = member.to_payload()
    perms = guild.permissions_in(user.id, channel) if channel else guild.base_permissions(user.id)
    payload["permissions"] = str(perms)
    return payload


def base_interaction(
    world: World,
    *,
    kind: int,
    user: User,
    channel: Channel,
    locale: str = "en-US",
) -> dict[str, Any]:
    """The fields every INTERACTION_CREATE carries, for a guild channel or the bot's DM."""
    app = world.application
    payload: dict[str, Any] = {
        "id": str(snowflake()),
        "application_id": str(app.id),
        "type": kind,
        "token": "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48),
        "version": 1,
        "locale": locale,
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }
    if channel.type == DM_CHANNEL:
        payload.update(
            context=CONTEXT_BOT_DM,
            # Discord's documented value for a guild-installed app used in its bot's DM.
            authorizing_integration_owners={"0": "0"},
            user=user.to_payload(),
            channel=channel.to_payload(),
            channel_id=str(channel.id),
            app_permissions=str(EVERYONE_DEFAULT),
        )
        return payload
    guild = _guild_of(world, channel)
    channel_payload = channel.to_payload()
    channel_payload["permissions"] = str(guild.permissions_in(user.id, channel))
    payload.update(
        context=CONTEXT_GUILD,
        authorizing_integration_owners={"0": str(guild.id)},
        guild_id=str(guild.id),
        guild={"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
        guild_locale=guild.preferred_locale,
        member=_member_payload(guild, user, channel),
        channel=channel_payload,
        channel_id=str(channel.id),
        app_permissions=str(guild.permissions_in(world.bot_user.id, channel)),
    )
    return payload


def _guild_of(world: World, channel: Channel) -> Guild:
    guild = world.find_guild(channel.guild_id or 0)
    if guild is None:
        raise ScenarioError(f"channel {channel.name!r} belongs to no known guild")
    return guild


def _context_of(channel: Channel) -> int:
    return CONTEXT_BOT_DM if channel.type == DM_CHANNEL else CONTEXT_GUILD


def check_visible(
    world: World,
    command: dict[str, Any],
    user: User,
    channel: Channel,
    *,
    permissions: bool = True,
) -> None:
    """Discord's client only offers a command where it is visible and, unless a server admin
    changed the command's permissions (``permissions=False``), to whom."""
    context = _context_of(channel)
    contexts = command.get("contexts")
    if contexts is None and context == CONTEXT_BOT_DM and command.get("dm_permission") is False:
        contexts = [CONTEXT_GUILD]  # the legacy switch that contexts replaced
    if contexts is not None and context not in contexts:
        where = "a DM" if context == CONTEXT_BOT_DM else "a server"
        raise ScenarioError(f"/{command['name']} is not offered in {where} (contexts={contexts})")
    if command.get("guild_id") and str(channel.guild_id) != str(command["guild_id"]):
        raise ScenarioError(f"/{command['name']} is registered for another guild only")
    required = command.get("default_member_permissions")
    if permissions and required is not None and context == CONTEXT_GUILD:
        guild = _guild_of(world, channel)
        have = guild.base_permissions(user.id)
        if int(required) == 0 or (have & int(required)) != int(required):
            raise ScenarioError(
                f"/{command['name']} is hidden from {user.username} "
                f"(default_member_permissions={required}); pass bypass_permissions=True "
                "to simulate a server admin who changed the command's permissions"
            )


def _find_option(options: list[dict[str, Any]], name: str, kinds: tuple[int, ...]) -> dict:
    for option in options:
        if option.get("name") == name and option.get("type") in kinds:
            return option
    available = [o.get("name") for o in options if o.get("type") in kinds]
    raise ScenarioError(f"no option/subcommand {name!r}; registered: {available}")


class _Resolved:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def add(self, kind: str, object_id: int, payload: dict[str, Any]) -> None:
        self.data.setdefault(kind, {})[str(object_id)] = payload


def _convert(
    world: World,
    schema: dict[str, Any],
    value: Any,
    *,
    invoker: User,
    channel: Channel,
    resolved: _Resolved,
    store_upload: UploadStore,
) -> Any:
    """Turn a test-side value into the JSON value Discord would send, checking the schema."""
    kind = schema["type"]
    name = schema["name"]
    if kind == STRING:
        if not isinstance(value, str):
            raise ScenarioError(f"option {name!r} takes a string, got {value!r}")
        low, high = schema.get("min_length", 0), schema.get("max_length", 6000)
        if not low <= len(value) <= high:
            raise ScenarioError(f"option {name!r} length must be in [{low}, {high}]")
    elif kind in (INTEGER, NUMBER):
        ok = isinstance(value, int) if kind == INTEGER else isinstance(value, int | float)
        if not ok or isinstance(value, bool):
            wanted = "an integer" if kind == INTEGER else "a number"
            raise ScenarioError(f"option {name!r} takes {wanted}, got {value!r}")
        low, high = schema.get("min_value"), schema.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ScenarioError(f"option {name!r} must be in [{low}, {high}]; got {value}")
    elif kind == BOOLEAN:
        if not isinstance(value, bool):
            raise ScenarioError(f"option {name!r} takes a bool, got {value!r}")
    elif kind in (USER, MENTIONABLE) and (isinstance(value, User) or kind == USER):
        user = world.user(value)
        resolved.add("users", user.id, user.to_payload())
        if channel.guild_id:
            guild = _guild_of(world, channel)
            if guild.member(user.id):
                member = _member_payload(guild, user, channel)
                member.pop("user")
                resolved.add("members", user.id, member)
        return str(user.id)
    elif kind in (ROLE, MENTIONABLE):
        guild = _guild_of(world, channel)
        role = value if isinstance(value, Role) else guild.role(value)
        resolved.add("roles", role.id, role.to_payload())
        return str(role.id)
    elif kind == CHANNEL:
        target = value if isinstance(value, Channel) else _guild_of(world, channel).channel(value)
        allowed = schema.get("channel_types")
        if allowed and target.type not in allowed:
            raise ScenarioError(f"option {name!r} only accepts channel types {allowed}")
        payload = target.to_payload()
        if target.guild_id:
            guild = _guild_of(world, target)
            payload["permissions"] = str(guild.permissions_in(invoker.id, target))
        resolved.add("channels", target.id, payload)
        return str(target.id)
    elif kind == ATTACHMENT:
        if not isinstance(value, Upload):
            raise ScenarioError(f"option {name!r} takes an Upload, got {value!r}")
        attachment_id, url = store_upload(channel.id, value)
        resolved.add(
            "attachments",
            attachment_id,
            {
                "id": str(attachment_id),
                "filename": value.filename,
                "size": len(value.data),
                "url": url,
                "proxy_url": url,
                "content_type": value.content_type,
                "ephemeral": True,
            },
        )
        return str(attachment_id)
    else:
        raise ScenarioError(f"option {name!r} has unsupported type {kind}")
    choices = schema.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ScenarioError(f"option {name!r} must be one of {[c['value'] for c in choices]}")
    return value


def command_interaction(
    world: World,
    command: dict[str, Any],
    *,
    user: User,
    channel: Channel,
    subcommand: str | None = None,
    options: Mapping[str, Any] | None = None,
    focused: str | None = None,
    locale: str = "en-US",
    store_upload: UploadStore,
    bypass_permissions: bool = False,
) -> dict[str, Any]:
    """A type 2 (or, with ``focused``, type 4 autocomplete) interaction for ``command``.

    ``subcommand`` is ``"sub"`` or ``"group sub"``. For autocomplete, ``options`` are what the
    user has filled in so far and ``focused`` names the option being typed; its value is sent
    as the raw typed string, as Discord does.
    """
    check_visible(world, command, user, channel, permissions=not bypass_permissions)
    options = dict(options or {})
    schema_options: list[dict[str, Any]] = command.get("options") or []
    path = subcommand.split() if subcommand else []
    wrappers: list[dict[str, Any]] = []
    for depth, part in enumerate(path):
        kinds = (SUB_COMMAND_GROUP,) if depth == 0 and len(path) == 2 else (SUB_COMMAND,)
        sub = _find_option(schema_options, part, kinds)
        wrappers.append({"type": sub["type"], "name": part, "options": []})
        schema_options = sub.get("options") or []
    if any(o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema_options):
        raise ScenarioError(f"/{command['name']} needs a subcommand")

    resolved = _Resolved()
    leaf: list[dict[str, Any]] = []
    known = {o["name"]: o for o in schema_options}
    unknown = sorted(set(options) - set(known) - ({focused} if focused else set()))
    if unknown:
        raise ScenarioError(f"unknown options {unknown}; registered: {sorted(known)}")
    for name, schema in known.items():
        if name == focused:
            if not schema.get("autocomplete"):
                raise ScenarioError(f"option {name!r} has no autocomplete")
            typed = options.get(name, "")
            leaf.append(
                {"name": name, "type": schema["type"], "value": str(typed), "focused": True}
            )
            continue
        if name not in options:
            if schema.get("required") and focused is None:
                raise ScenarioError(f"missing required option {name!r}")
            continue
        value = _convert(
            world,
            schema,
            options[name],
            invoker=user,
            channel=channel,
            resolved=resolved,
            store_upload=store_upload,
        )
        leaf.append({"name": name, "type": schema["type"], "value": value})
    if focused is not None and focused not in known:
        raise ScenarioError(f"focused option {focused!r} is not registered")

    top: list[dict[str, Any]] = leaf
    for wrapper in reversed(wrappers):
        wrapper["options"] = top
        top = [wrapper]

    data: dict[str, Any] = {
        "id": str(command["id"]),
        "name": command["name"],
        "type": command.get("type", 1),
    }
    if top:
        data["options"] = top
    if command.get("guild_id"):
        data["guild_id"] = str(command["guild_id"])
    if resolved.data:
        data["resolved"] = resolved.data
    kind = AUTOCOMPLETE if focused is not None else APPLICATION_COMMAND
    payload = base_interaction(world, kind=kind, user=user, channel=channel, locale=locale)
    payload["data"] = data
    return payload


MESSAGE_COMMAND = 3


def message_command_interaction(
    world: World,
    command: dict[str, Any],
    message: Mapping[str, Any],
    *,
    user: User,
    channel: Channel,
    locale: str = "en-US",
    bypass_permissions: bool = False,
) -> dict[str, Any]:
    """A message context-menu command (Apps → ``command``) on ``message``: Discord sends the
    message itself in ``resolved``, so the bot needs no message intent to read it."""
    if command.get("type") != MESSAGE_COMMAND:
        raise ScenarioError(f"{command['name']!r} is not a message command")
    check_visible(world, command, user, channel, permissions=not bypass_permissions)
    if str(message.get("channel_id")) != str(channel.id):
        raise ScenarioError("a message command runs in the message's own channel")
    data: dict[str, Any] = {
        "id": str(command["id"]),
        "name": command["name"],
        "type": MESSAGE_COMMAND,
        "target_id": str(message["id"]),
        "resolved": {"messages": {str(message["id"]): copy.deepcopy(dict(message))}},
    }
    if command.get("guild_id"):
        data["guild_id"] = str(command["guild_id"])
    payload = base_interaction(
        world, kind=APPLICATION_COMMAND, user=user, channel=channel, locale=locale
    )
    payload["data"] = data
    return payload


def component_interaction(
    world: World,
    message: Mapping[str, Any],
    *,
    custom_id: str,
    user: User,
    channel: Channel,
    visible_to: int | None = None,
    values: list[str] | None = None,
    locale: str = "en-US",
) -> dict[str, Any]:
    """A type 3 interaction: ``user`` clicks ``custom_id`` (or picks ``values``) on ``message``.

    ``visible_to`` is the recipient of an ephemeral message: nobody else can click on it.
    """
    component = find_component(message, custom_id)
    if component is None:
        present = [c["custom_id"] for c in walk_components(message) if "custom_id" in c]
        raise ScenarioError(
            f"message {message['id']} has no component {custom_id!r}; it has {present}"
        )
    if component.get("disabled"):
        raise ScenarioError(f"component {custom_id!r} is disabled: Discord's client won't send it")
    if visible_to is not None and visible_to != user.id:
        raise ScenarioError(f"message {message['id']} is ephemeral: only its recipient sees it")
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
    if component["type"] != 2:
        if values is None:
            raise ScenarioError(f"{custom_id!r} is a select menu: pass values=[...]")
        offered = [o["value"] for o in component.get("options") or []]
        unknown = [v for v in values if v not in offered]
        if component["type"] == 3 and unknown:
            raise ScenarioError(
                f"select {custom_id!r} offers {offered}; {unknown} are not among them"
            )
        low, high = component.get("min_values", 1), component.get("max_values", 1)
        if not low <= len(values) <= high:
            raise ScenarioError(
                f"select {custom_id!r} takes {low}..{high} values, got {len(values)}"
            )
        data["values"] = list(values)
    elif values is not None:
        raise ScenarioError(f"{custom_id!r} is a button: it has no values")
    payload = base_interaction(
        world, kind=MESSAGE_COMPONENT, user=user, channel=channel, locale=locale
    )
    payload["data"] = data
    payload["message"] = copy.deepcopy(dict(message))
    return payload


def modal_submit_interaction(
    world: World,
    modal: Mapping[str, Any],
    values: Mapping[str, str | Sequence[str]],
    *,
    user: User,
    channel: Channel,
    locale: str = "en-US",
) -> dict[str, Any]:
    """A type 5 interaction submitting the ``modal`` the bot opened, filled in from ``values``
    (by custom id: text for a text input, a list for a select); untouched inputs keep their
    prefilled value."""
    remaining = dict(values)
    submitted = [_submitted(component, remaining) for component in modal["components"]]
    if remaining:
        raise ScenarioError(f"modal {modal['custom_id']!r} has no inputs {sorted(remaining)}")
    payload = base_interaction(world, kind=MODAL_SUBMIT, user=user, channel=channel, locale=locale)
    payload["data"] = {"custom_id": modal["custom_id"], "components": submitted}
    return payload


def _submitted(
    component: Mapping[str, Any], values: dict[str, str | Sequence[str]]
) -> dict[str, Any]:
    """The modal-submit echo of one modal component, filled from ``values`` (consumed)."""
    kind = component["type"]
    if kind == 1:  # action row
        return {"type": 1, "components": [_submitted(c, values) for c in component["components"]]}
    if kind == 18:  # a label wraps one input
        return {
            "type": 18,
            "id": component.get("id"),
            "component": _submitted(component["component"], values),
        }
    if kind not in (3, 4):
        return {"type": kind, "id": component.get("id")}
    custom_id: str = component["custom_id"]  # Discord requires one on inputs and selects
    if kind == 4:  # text input
        value = values.pop(custom_id, component.get("value") or "")
        if component.get("required", True) and not value:
            raise ScenarioError(f"modal text input {custom_id!r} is required")
        return {"type": 4, "id": component.get("id"), "custom_id": custom_id, "value": value}
    picked = values.pop(custom_id, [])  # a string select
    return {"type": 3, "id": component.get("id"), "custom_id": custom_id, "values": list(picked)}


def walk_components(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every component of ``message``, nested ones too, in display order."""
    found: list[dict[str, Any]] = []
    stack = list(reversed(message.get("components") or []))
    while stack:
        component = stack.pop()
        found.append(component)
        stack.extend(reversed(component.get("components") or []))
        for key in ("component", "accessory"):
            if isinstance(component.get(key), Mapping):
                stack.append(component[key])
    return found


def find_component(message: Mapping[str, Any], custom_id: str) -> dict[str, Any] | None:
    return next((c for c in walk_components(message) if c.get("custom_id") == custom_id), None)
