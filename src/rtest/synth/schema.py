"""What a skipped data-loading step delivers, read from the pipeline's config (no code of the pipeline runs).

Cradle loading: ``output_spec`` (output_schema in order, output_format, include_header_in_s3_output,
output_file_count, keep_dot_in_output_schema), the data sources' field types and the date range in
``data_sources_spec``. Redshift and dummy loading: their configs name no columns, so a reason is given instead.
Types are refined, and the label and id found, from the pipeline's training fields (``hints.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtest.inputs.config import StepConfig
from rtest.synth.hints import Hints

DOT_TOKEN = "__DOT__"  # keep_dot_in_output_schema=false: the service writes a.b as a__DOT__b
FORMATS = {"PARQUET": "parquet", "CSV": "csv", "JSON": "json"}
NUMERIC_TYPES = {"INT", "INTEGER", "LONG", "BIGINT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "DECIMAL", "NUMBER",
                 "REAL", "NUMERIC"}
DATE_TYPES = {"DATE", "TIMESTAMP", "DATETIME"}
TEXT_TYPES = {"STRING", "VARCHAR", "CHAR", "TEXT", "BOOLEAN", "BOOL"}
WHY_NOT = {  # loader kinds whose configs cannot say what they deliver
    "RedshiftDataLoading": "its config holds a SQL query against a live database, not the columns it returns",
    "DummyDataLoading": "it re-delivers files you give it (its data_source), so there is nothing to derive",
}


@dataclass(frozen=True)
class Column:
    name: str  # as the file's header has it (after the __DOT__ rule)
    kind: str  # numeric | categorical | label | id | date
    source: str  # the config field that decided the kind


@dataclass
class DatasetSchema:
    loader: str  # the skipped node
    columns: list[Column]
    file_format: str = "csv"  # parquet | csv | json
    header: bool = True
    shards: int = 1
    classes: list[Any] = field(default_factory=lambda: [0, 1])
    date_range: tuple[str, str] | None = None
    fields: list[str] = field(default_factory=list)  # every config field read, as node:field
    warnings: list[str] = field(default_factory=list)  # finished sentences naming the field

    def column(self, kind: str) -> Column | None:
        return next((c for c in self.columns if c.kind == kind), None)

    def describe(self) -> dict[str, Any]:
        """Plain data for digests and reports."""
        return {"loader": self.loader, "format": self.file_format, "header": self.header, "shards": self.shards,
                "classes": self.classes, "date_range": self.date_range,
                "columns": [[c.name, c.kind, c.source] for c in self.columns]}


class NotDerivable(Exception):
    """The config does not say enough; the message names the missing field."""


def loader_kind(step: StepConfig) -> str | None:
    """The data-loading kind a skipped step is, or None when it is not a loader."""
    name = step.step_type
    if name in WHY_NOT or "output_spec" in step.fields or "data_sources_spec" in step.fields:
        return name
    return name if name.endswith("DataLoading") else None


def derive_schema(step: StepConfig, hints: Hints) -> DatasetSchema:
    """The dataset a loader node delivers; raises NotDerivable with a one-line reason."""
    kind = loader_kind(step)
    if kind in WHY_NOT:
        raise NotDerivable(f"{step.node} ({kind}): {WHY_NOT[kind]}")
    node, out = step.node, step.get("output_spec") or {}
    names, fields, warnings = _column_names(step)
    keep_dot = bool(out.get("keep_dot_in_output_schema", False))
    if "keep_dot_in_output_schema" in out:
        fields.append(f"{node}:output_spec.keep_dot_in_output_schema")
    written = [n if keep_dot else n.replace(".", DOT_TOKEN) for n in names]
    types = _field_types(step)
    schema = DatasetSchema(loader=node, columns=[], fields=fields, warnings=warnings)
    _read_output_spec(schema, out, node)
    dates = step.get("data_sources_spec") or {}
    if dates.get("start_date") and dates.get("end_date"):
        schema.date_range = (str(dates["start_date"]), str(dates["end_date"]))
        schema.fields.append(f"{node}:data_sources_spec.start_date/end_date")
    for original, name in zip(names, written):
        schema.columns.append(_column(original, name, types.get(original), hints, schema))
    _check_label(schema, hints)
    return schema


def _column_names(step: StepConfig) -> tuple[list[str], list[str], list[str]]:
    out = step.get("output_spec") or {}
    names = [str(n) for n in out.get("output_schema") or []]
    if names:
        return names, [f"{step.node}:output_spec.output_schema"], []
    sources = [f["field_name"] for f in _source_fields(step) if f.get("field_name")]
    if not sources:
        raise NotDerivable(f"{step.node}: output_spec.output_schema is empty and no data source lists its fields "
                           "(mds_data_source_properties.output_schema / edx schema_overrides)")
    note = (f"{step.node}: output_spec.output_schema is empty; the columns are the data sources' fields "
            "(the transform SQL may select fewer).")
    return list(dict.fromkeys(sources)), [f"{step.node}:data_sources_spec.data_sources"], [note]


def _source_fields(step: StepConfig) -> list[dict[str, Any]]:
    sources = (step.get("data_sources_spec") or {}).get("data_sources") or []
    found: list[dict[str, Any]] = []
    for source in sources if isinstance(sources, list) else []:
        for key, value in source.items():
            if key.endswith("_properties") and isinstance(value, dict):
                for list_key in ("output_schema", "schema_overrides"):
                    found += [f for f in value.get(list_key) or [] if isinstance(f, dict)]
    return found


def _field_types(step: StepConfig) -> dict[str, str]:
    return {str(f["field_name"]): str(f.get("field_type", "")).upper() for f in _source_fields(step)
            if f.get("field_name")}


def _read_output_spec(schema: DatasetSchema, out: dict[str, Any], node: str) -> None:
    if not out:
        schema.warnings.append(f"{node}: no output_spec; writing CSV with a header, one shard.")
        return
    fmt = str(out.get("output_format") or "CSV").upper()
    if fmt not in FORMATS:
        schema.warnings.append(f"{node}: output_spec.output_format {fmt} is not one rtest writes; writing CSV.")
    schema.file_format = FORMATS.get(fmt, "csv")
    schema.header = bool(out.get("include_header_in_s3_output", True))
    count = int(out.get("output_file_count") or 0)
    schema.shards = count if count > 0 else 2  # 0: the service decides; two shards prove consumers combine them
    schema.fields += [f"{node}:output_spec.{k}" for k in ("output_format", "include_header_in_s3_output",
                                                           "output_file_count") if k in out]


def _column(original: str, name: str, field_type: str | None, hints: Hints, schema: DatasetSchema) -> Column:
    if hints.label and hints.label[0] in (original, name):
        return Column(name, "label", hints.label[1])
    if hints.id_name and hints.id_name[0] in (original, name):
        return Column(name, "id", hints.id_name[1])
    if original in hints.numeric or name in hints.numeric:
        return Column(name, "numeric", hints.numeric_source or "")
    if original in hints.categorical or name in hints.categorical:
        return Column(name, "categorical", hints.categorical_source or "")
    if field_type in NUMERIC_TYPES:
        return Column(name, "numeric", f"{schema.loader}:field_type {field_type}")
    if field_type in DATE_TYPES or (field_type in TEXT_TYPES and "date" in original.lower()):
        return Column(name, "date", f"{schema.loader}:field_type {field_type} ({original})")
    if field_type in TEXT_TYPES:
        return Column(name, "categorical", f"{schema.loader}:field_type {field_type}")
    schema.warnings.append(f"{schema.loader}: column {original} has no field_type in any data source and is in "
                           "no tab_field_list/cat_field_list; written as a categorical string.")
    return Column(name, "categorical", "guess")


def _check_label(schema: DatasetSchema, hints: Hints) -> None:
    if hints.label is None:
        schema.warnings.append(f"{schema.loader}: no label_name/label_field in any step; the data has no label.")
    elif schema.column("label") is None:
        schema.warnings.append(f"{schema.loader}: label {hints.label[0]} ({hints.label[1]}) is not among "
                               "output_spec.output_schema; the data has no label.")
    if hints.classes is not None:
        schema.classes = hints.classes[0]
        schema.fields.append(hints.classes[1])
    elif schema.column("label") is not None:
        schema.warnings.append(f"{schema.loader}: no multiclass_categories, is_binary or num_classes in any step; "
                               "the label takes classes 0 and 1.")
    for hint in (hints.label, hints.id_name):
        if hint:
            schema.fields.append(hint[1])
    for source in (hints.numeric_source, hints.categorical_source):
        if source:
            schema.fields.append(source)
