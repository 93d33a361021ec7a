"""What the pipeline's training side says about the data: numeric and categorical fields, label, classes, id.

Read from every step's config fields and ``hyperparameters`` (the framework's shape), then, for what is still
unknown, from the hyperparameter JSON a training script ships in its source folder
(``hyperparams/hyperparameters_<region>.json`` or ``hyperparameters.json``): read as JSON, never run.
Each value keeps where it came from (``node:field`` or ``node:file:field``).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rtest.inputs.config import PipelineConfig

HYPERPARAMETER_FILES = ("hyperparams/hyperparameters_{region}.json", "hyperparams/hyperparameters.json",
                        "hyperparameters.json")
MAX_HYPERPARAMETER_BYTES = 2_000_000


@dataclass
class Hints:
    numeric: set[str] = field(default_factory=set)
    numeric_source: str | None = None
    categorical: set[str] = field(default_factory=set)
    categorical_source: str | None = None
    label: tuple[str, str] | None = None  # (name, where)
    id_name: tuple[str, str] | None = None
    classes: tuple[list[Any], str] | None = None

    def complete(self) -> bool:
        return None not in (self.numeric_source, self.categorical_source, self.label, self.id_name, self.classes)

    def take(self, values: dict[str, Any], where: str) -> None:
        """Fill what is still unknown from one mapping of fields; ``where`` prefixes each field's name."""
        numeric = _names(values.get("tab_field_list"))
        if self.numeric_source is None and numeric:
            self.numeric, self.numeric_source = set(numeric), f"{where}tab_field_list"
        if self.categorical_source is None and _names(values.get("cat_field_list")) is not None \
                and "cat_field_list" in values:
            self.categorical = set(_names(values["cat_field_list"]) or [])
            self.categorical_source = f"{where}cat_field_list"
        for key in ("label_name", "label_field"):
            if self.label is None and isinstance(values.get(key), str) and values[key]:
                self.label = (values[key], f"{where}{key}")
        if self.id_name is None and isinstance(values.get("id_name"), str) and values["id_name"]:
            self.id_name = (values["id_name"], f"{where}id_name")
        if self.classes is None:
            self.classes = _classes(values, where)


def gather_hints(config: PipelineConfig, nodes: Iterable[str], source_dirs: Iterable[Path]) -> Hints:
    """Hints from ``nodes``' configs (downstream first, as given), then from hyperparameter files in ``source_dirs``."""
    hints = Hints()
    for node in nodes:
        step = config.step_config(node)
        if step is None:
            continue
        hyper = step.get("hyperparameters")
        if isinstance(hyper, dict):
            hints.take(hyper, f"{node}:hyperparameters.")
        hints.take(step.fields, f"{node}:")
    region = str(config.shared.get("region") or "")
    for folder in dict.fromkeys(source_dirs):
        if hints.complete():
            break
        for pattern in HYPERPARAMETER_FILES:
            path = folder / pattern.format(region=region)
            values = _read_json(path)
            if values is not None:  # named from the source folder on, e.g. dockers/hyperparams/hyperparameters_NA.json
                hints.take(values, f"{folder.name}/{pattern.format(region=region)}:")
                break
    return hints


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_HYPERPARAMETER_BYTES:
            return None
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return values if isinstance(values, dict) else None


def _names(value: Any) -> list[str] | None:
    """A field list as the framework stores it: a list, or a list written as a string ("['a', 'b']")."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return None


def _classes(values: dict[str, Any], where: str) -> tuple[list[Any], str] | None:
    categories = values.get("multiclass_categories")
    if isinstance(categories, str):
        categories = _names(categories)
    if isinstance(categories, (list, tuple)) and len(categories) >= 2:
        return list(categories), f"{where}multiclass_categories"
    if values.get("is_binary") is True:
        return [0, 1], f"{where}is_binary"
    count = values.get("num_classes")
    if isinstance(count, int) and not isinstance(count, bool) and count >= 2:
        return list(range(count)), f"{where}num_classes"
    return None
