"""The files a data-loading step leaves: DATA shards, SIGNATURE and METADATA, byte-identical for one seed.

Shards are named as Spark names them (``part-00000-<uuid>-c000.<ext>``; the uuid comes from the seed).
Parquet is written uncompressed, so the name has no ``.snappy`` infix: a consumer that globs both
``part-*.parquet`` and ``part-*.snappy.parquet`` would read a snappy shard twice (atoz's preprocessing does).
SIGNATURE: one file ``signature``, the header's column names comma-joined; METADATA: one file ``metadata``,
the JSON the framework's dummy-loading script writes (version, data_info, column_info per column).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from rtest.synth.schema import DatasetSchema

EXTENSIONS = {"parquet": "parquet", "csv": "csv", "json": "json"}
PREVIEW_ROWS = 5
PANDAS_DTYPES = {"double": "float64", "int64": "int64", "string": "object", "large_string": "object"}


def shard_names(schema: DatasetSchema, seed: int) -> list[str]:
    token = uuid.UUID(bytes=hashlib.sha256(f"{seed}:{schema.loader}".encode()).digest()[:16], version=4)
    return [f"part-{i:05d}-{token}-c000.{EXTENSIONS[schema.file_format]}" for i in range(schema.shards)]


def write_dataset(schema: DatasetSchema, table, folder: Path, seed: int) -> dict[str, Path]:
    """Write data/, signature/ and metadata/ under ``folder``; returns the three folders by output name."""
    data, signature, metadata = folder / "data", folder / "signature", folder / "metadata"
    for sub in (data, signature, metadata):
        sub.mkdir(parents=True, exist_ok=True)
    names = shard_names(schema, seed)
    rows = table.num_rows
    bounds = [rows * i // len(names) for i in range(len(names) + 1)]
    for name, start, stop in zip(names, bounds, bounds[1:]):
        _write_shard(schema, table.slice(start, stop - start), data / name)
    (signature / "signature").write_text(",".join(table.column_names), encoding="utf-8")
    (metadata / "metadata").write_text(json.dumps(metadata_of(table), indent=2), encoding="utf-8")
    return {"DATA": data, "SIGNATURE": signature, "METADATA": metadata}


def _write_shard(schema: DatasetSchema, table, path: Path) -> None:
    if schema.file_format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path, compression="none")
    elif schema.file_format == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path, pcsv.WriteOptions(include_header=schema.header))
    else:  # JSON lines, nulls left out, as Spark writes them
        with path.open("w", encoding="utf-8") as out:
            for row in table.to_pylist():
                out.write(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n")


def metadata_of(table) -> dict[str, Any]:
    """The dummy loader's metadata JSON; memory figures approximate pandas' deep counts (8 bytes a pointer,
    49 + length per string)."""
    import pyarrow.compute as pc

    info: dict[str, Any] = {}
    for name in table.column_names:
        column = table.column(name)
        kind = PANDAS_DTYPES.get(str(column.type), str(column.type))
        nulls = column.null_count
        if kind == "object":
            lengths = pc.sum(pc.utf8_length(column)).as_py() or 0
            memory = 8 * len(column) + 49 * (len(column) - nulls) + lengths
        else:
            memory = column.nbytes
        item = {"data_type": kind, "null_count": nulls, "memory_usage": int(memory),
                "unique_count": pc.count_distinct(column).as_py()}
        if kind in ("float64", "int64"):
            item.update({"min": _num(pc.min(column)), "max": _num(pc.max(column)), "mean": _num(pc.mean(column)),
                         "std": _num(pc.stddev(column, ddof=1))})
        info[name] = item
    return {"version": "1.0",
            "data_info": {"total_rows": table.num_rows, "total_columns": table.num_columns,
                          "memory_usage_bytes": sum(i["memory_usage"] for i in info.values())},
            "column_info": info}


def _num(scalar) -> float | None:
    value = scalar.as_py()
    return None if value is None else float(value)


def preview(table) -> dict[str, Any]:
    """Schema and a few rows, as strings, for the plan and the reports."""
    head = table.slice(0, PREVIEW_ROWS).to_pylist()
    return {"columns": [[name, PANDAS_DTYPES.get(str(t), str(t))] for name, t in zip(table.column_names,
                                                                                       table.schema.types)],
            "rows": [["" if v is None else str(v) for v in row.values()] for row in head]}
