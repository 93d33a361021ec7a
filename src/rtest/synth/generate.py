"""Rows with a signal, from one seeded generator: the same schema, rows and seed give the same table.

A column's distribution (spread, levels, their frequencies) depends on its name only, and the rows on the
seed: training and calibration data are two samples of one population, as real loads are, so a model
trained on one scores the other.

Numeric features: log-normal amounts with per-column spread, 5% missing. Categorical: 3-8 levels with
skewed frequencies, 2% missing. The label depends on three numeric features and one categorical (so a model
learns it); every class gets at least ``min_per_class`` rows so every stratified split holds each class.
Ids are unique; dates fall in the config's date range.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from rtest.errors import RtestError
from rtest.synth.schema import DOT_TOKEN, DatasetSchema

NUMERIC_MISSING = 0.05
CATEGORICAL_MISSING = 0.02
SIGNAL_FEATURES = 3


class SynthDependencyError(RtestError):
    exit_code = 2


def _libraries():
    try:
        import numpy as np
        import pyarrow as pa
    except ImportError:
        raise SynthDependencyError(
            "Synthesized inputs need numpy and pyarrow on this machine; install them with "
            "pip install 'rtest[synth]', or give the inputs with --input NODE.NAME=PATH.") from None
    return np, pa


def derived_seed(seed: int, *parts: str) -> int:
    """One seed per dataset: training and calibration loaders get different data from one --seed."""
    text = "\0".join([str(seed), *parts]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def generate_table(schema: DatasetSchema, rows: int, seed: int):
    """A pyarrow Table in the schema's column order."""
    np, pa = _libraries()
    rng = np.random.default_rng(seed)
    numeric = [c for c in schema.columns if c.kind == "numeric"]
    categorical = [c for c in schema.columns if c.kind == "categorical"]
    arrays, score = {}, np.zeros(rows)
    for i, column in enumerate(numeric):
        shape = np.random.default_rng(derived_seed(0, column.name))  # the column's distribution: one per name
        raw = rng.lognormal(mean=shape.uniform(0, 4), sigma=shape.uniform(0.3, 1.2), size=rows)
        if i < SIGNAL_FEATURES:  # the label leans on these three
            score += (np.log(raw) - np.log(raw).mean()) / max(np.log(raw).std(), 1e-9) * (1.5 - 0.4 * i)
        values = np.round(raw, 2)
        arrays[column.name] = pa.array(values, mask=rng.random(rows) < NUMERIC_MISSING)
    for i, column in enumerate(categorical):
        shape = np.random.default_rng(derived_seed(0, column.name))
        levels = int(shape.integers(3, 9))
        weights = shape.dirichlet(np.ones(levels) * 2)
        codes = rng.choice(levels, size=rows, p=weights)
        if i == 0:
            score += (codes == 0) * 1.0 - (codes == levels - 1) * 0.8
        dictionary = pa.array([f"{column.name.rsplit(DOT_TOKEN, 1)[-1][:12]}_{j}" for j in range(levels)])
        indices = pa.array(codes.astype("int32"), mask=rng.random(rows) < CATEGORICAL_MISSING)
        arrays[column.name] = dictionary.take(indices)
    label = schema.column("label")
    if label is not None:
        arrays[label.name] = _labels(np, pa, rng, score, schema.classes, rows)
    ident = schema.column("id")
    if ident is not None:
        prefix = f"{seed % 0xFFFFFF:06x}"
        arrays[ident.name] = pa.array([f"{prefix}-{n:08d}" for n in rng.permutation(rows)])
    for column in schema.columns:
        if column.kind == "date":
            arrays[column.name] = _dates(np, pa, rng, schema.date_range, rows)
    return pa.table({c.name: arrays[c.name] for c in schema.columns})



def _labels(np, pa, rng, score, classes: list, rows: int):
    k = len(classes)
    if k == 2:
        logits = score - np.quantile(score, 0.7) if rows else score  # about 30% positives
        codes = (rng.random(rows) < 1 / (1 + np.exp(-logits))).astype(int)
    else:  # class j is likelier where the score falls in the j-th band
        bands = np.quantile(score, np.linspace(0, 1, k + 1)[1:-1]) if rows else []
        codes = np.searchsorted(bands, score + rng.normal(0, 0.5, rows))
    min_per_class = min(rows // k, 20)
    for j in range(k):  # every stratified split must see every class
        short = min_per_class - int((codes == j).sum())
        if short > 0:
            spots = rng.choice(np.flatnonzero(codes != j), size=short, replace=False)
            codes[spots] = j
    values = [classes[c] for c in codes.tolist()]
    return pa.array(values)


def _dates(np, pa, rng, date_range: tuple[str, str] | None, rows: int):
    start, end = date_range or ("2025-01-01T00:00:00", "2025-03-31T00:00:00")
    first, last = (int(datetime.fromisoformat(v.replace("Z", "")).replace(tzinfo=timezone.utc).timestamp())
                   for v in (start, end))
    seconds = rng.integers(first, max(last, first + 1), size=rows)
    stamps = seconds.astype("datetime64[s]").astype(str)  # 2025-01-02T03:04:05, as a string field holds it
    return pa.array(np.char.replace(stamps, "T", " ").tolist())
