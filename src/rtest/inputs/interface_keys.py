"""Keys of an interface file that the schema does not declare: found anywhere, named with a suggestion."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from rtest.inputs.interface_schema import StepInterface


def unknown_keys(model: BaseModel, location: str = "") -> list[tuple[str, str]]:
    """(dotted location, key) of every key the schema does not declare, anywhere in the interface."""
    found = [(f"{location}{name}", name) for name in (model.model_extra or {})]
    for name in type(model).model_fields:
        found += _unknown_in(getattr(model, name), f"{location}{name}.")
    return found


def _unknown_in(value: Any, location: str) -> list[tuple[str, str]]:
    if isinstance(value, BaseModel):
        return unknown_keys(value, location)
    if isinstance(value, dict):
        return [hit for key, item in value.items() for hit in _unknown_in(item, f"{location}{key}.")]
    if isinstance(value, list):
        return [hit for i, item in enumerate(value) for hit in _unknown_in(item, f"{location}{i}.")]
    return []


def unknown_key_message(path: Path, location: str, name: str) -> str:
    parent = location[: -len(name)].rstrip(".")
    known = _known_keys_at(parent)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"Interface file {path}: key {location} is not part of the interface schema{hint}; rtest ignores it"


def _known_keys_at(parent: str) -> list[str]:
    """Field names of the section found at a dotted location (map keys and list indexes stepped over)."""
    current: Any = StepInterface
    parts = [part for part in parent.split(".") if part]
    index = 0
    while index < len(parts) and current is not None:
        field_info = current.model_fields.get(parts[index])
        current, in_container = _section_of(field_info.annotation if field_info else None)
        index += 2 if in_container else 1  # a map key or list index follows a container field
    return list(current.model_fields) if current is not None else []


def _section_of(annotation: Any) -> tuple[Any, bool]:
    """(section class, whether it sits in a dict/list) for annotations like ``dict[str, InputDecl] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = get_args(annotation)
    if get_origin(annotation) in (dict, list) and args:
        return _section_of(args[-1])[0], True
    for arg in args:
        model, in_container = _section_of(arg)
        if model is not None:
            return model, in_container
    return None, False
