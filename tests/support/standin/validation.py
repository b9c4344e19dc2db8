"""Discord's documented limits, checked the way the API checks them.

Each checker returns a list of ``(field path, message)`` problems; an empty list means Discord would
accept the payload. The server turns problems into Discord's "Invalid Form Body" (code 50035)
error, so a bot that overflows a limit sees the same failure it would see in production.
"""

from __future__ import annotations

import re
from typing import Any

Problems = list[tuple[str, str]]

IS_COMPONENTS_V2 = 1 << 15
MESSAGE_FLAGS_SETTABLE = (1 << 2) | (1 << 6) | (1 << 12) | IS_COMPONENTS_V2
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$", re.UNICODE)


def check_length(problems: Problems, path: str, value: Any, maximum: int, minimum: int = 0) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        problems.append((path, "Must be a string."))
        return
    if not minimum <= len(value) <= maximum:
        problems.append((path, f"Must be between {minimum} and {maximum} in length."))


def _embed_text_length(embed: dict[str, Any]) -> int:
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    for embed_field in embed.get("fields") or []:
        total += len(embed_field.get("name") or "") + len(embed_field.get("value") or "")
    return total


def check_embeds(embeds: list[dict[str, Any]]) -> Problems:
    problems: Problems = []
    if len(embeds) > 10:
        problems.append(("embeds", "Must be 10 or fewer in length."))
    for i, embed in enumerate(embeds):
        path = f"embeds.{i}"
        check_length(problems, f"{path}.title", embed.get("title"), 256)
        check_length(problems, f"{path}.description", embed.get("description"), 4096)
        check_length(problems, f"{path}.footer.text", (embed.get("footer") or {}).get("text"), 2048)
        check_length(problems, f"{path}.author.name", (embed.get("author") or {}).get("name"), 256)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append((f"{path}.fields", "Must be 25 or fewer in length."))
        for j, embed_field in enumerate(fields):
            check_length(problems, f"{path}.fields.{j}.name", embed_field.get("name"), 256, 1)
            check_length(problems, f"{path}.fields.{j}.value", embed_field.get("value"), 1024, 1)
    if sum(_embed_text_length(e) for e in embeds) > 6000:
        problems.append(("embeds", "Embed size exceeds maximum size of 6000"))
    return problems


def _walk_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for component in components:
        found.append(component)
        for key in ("components",):
            found.extend(_walk_components(component.get(key) or []))
        accessory = component.get("accessory")
        if accessory:
            found.append(accessory)
    return found


def check_components(components: list[dict[str, Any]], flags: int) -> Problems:
    problems: Problems = []
    everything = _walk_components(components)
    custom_ids = [c["custom_id"] for c in everything if "custom_id" in c]
    duplicates = sorted({cid for cid in custom_ids if custom_ids.count(cid) > 1})
    if duplicates:
        problems.append(("components", f"Component custom id cannot be duplicated: {duplicates}"))
    for i, cid in enumerate(custom_ids):
        check_length(problems, f"components.custom_id[{i}]", cid, 100, 1)
    if flags & IS_COMPONENTS_V2:
        if len(everything) > 40:
            problems.append(("components", "Must be 40 or fewer in total."))
        return problems
    if len(components) > 5:
        problems.append(("components", "Must be 5 or fewer in length."))
    for i, row in enumerate(components):
        path = f"components.{i}"
        if row.get("type") != 1:
            problems.append((f"{path}.type", "Top-level components must be action rows (type 1)."))
            continue
        children = row.get("components") or []
        if not 1 <= len(children) <= 5:
            problems.append((f"{path}.components", "Must be between 1 and 5 in length."))
        selects = [c for c in children if c.get("type") in (3, 5, 6, 7, 8)]
        if selects and len(children) > 1:
            problems.append((f"{path}.components", "A select menu must be alone in its row."))
        for j, child in enumerate(children):
            cpath = f"{path}.components.{j}"
            if child.get("type") == 2:
                check_length(problems, f"{cpath}.label", child.get("label"), 80)
                if child.get("style") == 5:
                    if not child.get("url") or "custom_id" in child:
                        problems.append((cpath, "Link buttons need a url and no custom_id."))
                elif child.get("style") != 6 and "custom_id" not in child:
                    problems.append((f"{cpath}.custom_id", "This field is required"))
            if child.get("type") == 3:
                options = child.get("options") or []
                if not 1 <= len(options) <= 25:
                    problems.append((f"{cpath}.options", "Must be between 1 and 25 in length."))
                for k, option in enumerate(options):
                    check_length(
                        problems, f"{cpath}.options.{k}.label", option.get("label"), 100, 1
                    )
                    check_length(
                        problems, f"{cpath}.options.{k}.value", option.get("value"), 100, 1
                    )
    return problems


def check_message(payload: dict[str, Any]) -> Problems:
    """Check the fields of a create or edit message body (emptiness is :func:`has_body`)."""
    problems: Problems = []
    flags = int(payload.get("flags") or 0)
    content = payload.get("content")
    check_length(problems, "content", content, 2000)
    embeds = payload.get("embeds") or []
    problems.extend(check_embeds(embeds))
    components = payload.get("components") or []
    problems.extend(check_components(components, flags))
    if flags & ~MESSAGE_FLAGS_SETTABLE:
        problems.append(("flags", "Contains flags a bot cannot set."))
    if flags & IS_COMPONENTS_V2 and (content or embeds):
        problems.append(("content", "Cannot send content or embeds with IS_COMPONENTS_V2."))
    mentions = payload.get("allowed_mentions")
    if mentions:
        parse = mentions.get("parse") or []
        for kind in ("users", "roles"):
            if kind in parse and mentions.get(kind):
                problems.append(
                    (f"allowed_mentions.{kind}", f"parse:[{kind}] and {kind}: [ids] conflict.")
                )
    return problems


def has_body(message: dict[str, Any]) -> bool:
    """Whether a (resulting) message shows anything; Discord refuses empty ones with 50006."""
    return bool(
        message.get("content")
        or message.get("embeds")
        or message.get("components")
        or message.get("attachments")
        or message.get("sticker_ids")
        or message.get("poll")
    )


def check_choices(choices: list[dict[str, Any]]) -> Problems:
    problems: Problems = []
    if len(choices) > 25:
        problems.append(("data.choices", "Must be 25 or fewer in length."))
    for i, choice in enumerate(choices):
        check_length(problems, f"data.choices.{i}.name", choice.get("name"), 100, 1)
        value = choice.get("value")
        if isinstance(value, str):
            check_length(problems, f"data.choices.{i}.value", value, 100)
        elif not isinstance(value, int | float) or isinstance(value, bool):
            problems.append((f"data.choices.{i}.value", "Must be a string or a number."))
    return problems


def check_command(command: dict[str, Any], path: str = "") -> Problems:
    """Registration limits for one application command (chat input, user or message)."""
    problems: Problems = []
    kind = command.get("type", 1)
    name = command.get("name")
    if kind == 1:
        if not isinstance(name, str) or not COMMAND_NAME.match(name) or name != name.lower():
            problems.append((f"{path}name", f"Invalid chat input command name {name!r}."))
        check_length(problems, f"{path}description", command.get("description"), 100, 1)
    else:
        check_length(problems, f"{path}name", name, 32, 1)
    problems.extend(_check_options(command.get("options") or [], f"{path}options"))
    return problems


def _check_options(options: list[dict[str, Any]], path: str) -> Problems:
    problems: Problems = []
    if len(options) > 25:
        problems.append((path, "Must be 25 or fewer in length."))
    names = [o.get("name") for o in options]
    if len(set(names)) != len(names):
        problems.append((path, "Option names must be unique."))
    seen_optional = False
    for i, option in enumerate(options):
        opath = f"{path}.{i}"
        name = option.get("name")
        if not isinstance(name, str) or not COMMAND_NAME.match(name) or name != name.lower():
            problems.append((f"{opath}.name", f"Invalid option name {name!r}."))
        check_length(problems, f"{opath}.description", option.get("description"), 100, 1)
        if option.get("type") in (1, 2):
            problems.extend(_check_options(option.get("options") or [], f"{opath}.options"))
            continue
        if option.get("required"):
            if seen_optional:
                problems.append((opath, "Required options must be placed before non-required."))
        else:
            seen_optional = True
        choices = option.get("choices") or []
        if choices and option.get("autocomplete"):
            problems.append((opath, "Autocomplete cannot be used with choices."))
        problems.extend((f"{opath}.{p}", m) for p, m in check_choices(choices))
    return problems


def form_error(problems: Problems) -> dict[str, Any]:
    """Discord's nested ``errors`` object for an Invalid Form Body response."""
    errors: dict[str, Any] = {}
    for path, message in problems:
        node = errors
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": "BASE_TYPE_INVALID", "message": message})
    return {"message": "Invalid Form Body", "code": 50035, "errors": errors}
