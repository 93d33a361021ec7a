"""Reading YAML with libyaml's parser when PyYAML has it.

``yaml.safe_load`` always takes the pure-Python parser, which costs about ten times more per file:
a plan reads every interface file, and the cursus catalogue has dozens. The C loader builds the same
safe types and raises the same ``MarkedYAMLError`` family, so callers keep their error sentences.
"""

from __future__ import annotations

from typing import Any

import yaml

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, through libyaml when it is there."""
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader, only faster


def compose_yaml(text: str) -> yaml.Node | None:
    """``yaml.compose(text)`` (nodes with their line marks, no objects built), through libyaml when it is there."""
    return yaml.compose(text, Loader=_SAFE_LOADER)


def dump_yaml(data: Any, **options: Any) -> str:
    """``yaml.safe_dump(data, **options)``, through libyaml when it is there."""
    return yaml.dump(data, Dumper=_SAFE_DUMPER, **options)
