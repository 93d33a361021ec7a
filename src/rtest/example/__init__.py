"""The bundled example: a small tabular fraud-model pipeline and its synthetic data.

The pipeline folder holds a DAG, a cursus-style config, one interface per step
type and real SageMaker-style scripts under ``dockers/fraud_model``. Relative
paths in the config resolve against the config's own folder, so that folder is
the example's source root.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

LABEL_FIELD = "is_fraud"
ID_FIELD = "transaction_id"
NUMERIC_FIELDS = (
    "amount",
    "account_age_days",
    "num_prev_txn",
    "avg_txn_amount",
    "distance_from_home",
    "hour_of_day",
    "n_devices",
    "failed_logins_24h",
    "velocity_1h",
    "credit_limit",
)
CATEGORICAL_FIELDS = ("merchant_category",)
DEMO_PACKAGE_VERSION = "0.1.0"  # vendor/rtest_demo_report, pinned by the DataQuality and MetricsReport steps
COLUMNS = (ID_FIELD, *NUMERIC_FIELDS, *CATEGORICAL_FIELDS, LABEL_FIELD)

# Category -> shift of the fraud log-odds; gives the categorical column real signal.
_MERCHANT_RISK = {
    "grocery": -0.7,
    "fuel": -0.3,
    "restaurant": -0.2,
    "travel": 0.5,
    "electronics": 0.9,
    "gaming": 1.1,
}


@dataclass(frozen=True)
class ExamplePaths:
    dag: Path
    config: Path
    interfaces: Path
    source_root: Path
    wheelhouse: Path | None = None  # the vendored demo package as a wheel (only in a copy): offline installs


def example_dir() -> Path:
    """The bundled pipeline folder (DAG, config, interfaces, scripts)."""
    return Path(__file__).resolve().parent / "pipeline"


def example_paths(copy_to: Path | None = None) -> ExamplePaths:
    """Paths of the example; with ``copy_to``, of a fresh copy there.

    Runs use a copy under the workdir: the container engine must see the scripts at a host
    path, which an installed package inside `docker compose run` does not have.
    """
    root = example_dir()
    wheelhouse = None
    if copy_to is not None:
        root = _fresh_copy(root, Path(copy_to))
        wheelhouse = build_example_wheels(root)
    return ExamplePaths(
        dag=root / "dag.json",
        config=root / "config.json",
        interfaces=root / "interfaces",
        source_root=root,
        wheelhouse=wheelhouse,
    )


def example_location(user, workspace, *, generate_data: bool = True):
    """(user spec, location) for a run of the example: its DAG, config, interfaces and source root, with
    its wheelhouse and generated sample data filled into ``user`` where the user set none.

    Shared by `--example` on the CLI and by the service, so both run the same example the same way.
    """
    from rtest.plan.userspec import parse_input_flags

    paths = example_paths(copy_to=workspace.example_dir if generate_data else None)
    if paths.wheelhouse and not user.wheelhouse:  # the example's own wheels: its dependency steps stay offline
        user.wheelhouse = str(paths.wheelhouse)
    if generate_data:  # sample data is the one thing the example cannot ship as config
        generated = generate_example_inputs(workspace.example_data_dir)
        user = parse_input_flags([f"{key}={path}" for key, path in generated.items()]).merged_with(user)
    where = {"dag": str(paths.dag), "config": paths.config, "interfaces": [paths.interfaces],
             "source_root": paths.source_root}
    return user, where


def build_example_wheels(root: Path) -> Path | None:
    """The two dependency steps need rtest-demo-report; its source ships in vendor/ and becomes a wheel
    here, on the host, so the example needs no package index (the run passes this folder as its wheelhouse)."""
    from rtest.deps.wheelbuild import build_pure_wheel

    wheelhouse = root / "wheelhouse"
    if not (root / "vendor" / "rtest_demo_report").is_dir():  # a copy made by an older rtest has no dependency steps
        return None
    if not (wheelhouse / f"rtest_demo_report-{DEMO_PACKAGE_VERSION}-py3-none-any.whl").is_file():
        build_pure_wheel(root / "vendor" / "rtest_demo_report", "rtest-demo-report", DEMO_PACKAGE_VERSION, wheelhouse)
    return wheelhouse


def _fresh_copy(source: Path, target: Path) -> Path:
    """Copy the example once per bundled version of it; a copy of the same files is reused, edits and all.

    Stamped with a digest of the bundled files, not rtest's version number: a development checkout
    changes the example without changing the number, and a stale copy would run yesterday's pipeline.
    """
    stamp = target / ".rtest-example-version"
    digest = _example_digest(source)
    if not (stamp.is_file() and stamp.read_text() == digest):
        shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        stamp.write_text(digest)
    return target.resolve()


def _example_digest(source: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def generate_example_inputs(target_dir: Path, *, rows: int = 2000, seed: int = 7) -> dict[str, Path]:
    """Write synthetic transactions under ``target_dir``; return user inputs keyed ``NODE.INPUT``.

    Training data gets ``rows`` rows in two part files; calibration data gets
    half as many. The same ``seed`` always gives byte-identical files.
    """
    if rows < 20:
        raise ValueError(f"rows must be at least 20 so every split gets data, got {rows}")
    target_dir = Path(target_dir)
    inputs: dict[str, Path] = {}
    plans = (("training", rows, seed, 2), ("calibration", max(rows // 2, 20), seed + 1, 1))
    for job_type, *_ in plans:
        inputs[f"Preprocess_{job_type}.DATA"] = target_dir / job_type / "data"
        inputs[f"Preprocess_{job_type}.SIGNATURE"] = target_dir / job_type / "signature"
    stamp, recipe = target_dir / ".rtest-generated", _recipe(rows, seed)
    if _still_generated(stamp, recipe, target_dir):  # every cached rerun of the example: nothing to write
        return inputs
    for job_type, count, job_seed, parts in plans:
        data_dir, signature_dir = inputs[f"Preprocess_{job_type}.DATA"], inputs[f"Preprocess_{job_type}.SIGNATURE"]
        data_dir.mkdir(parents=True, exist_ok=True)
        signature_dir.mkdir(parents=True, exist_ok=True)
        records = _transactions(random.Random(job_seed), count, id_offset=0 if job_type == "training" else 10**6)
        _write_parts(data_dir, records, parts)
        (signature_dir / "signature").write_text(",".join(COLUMNS) + "\n", encoding="utf-8")
    stamp.write_text(json.dumps({"recipe": recipe, "files": _file_digests(target_dir)}), encoding="utf-8")
    return inputs


def _recipe(rows: int, seed: int) -> str:
    """What the files are made from: the generator's own source (a development checkout edits it) and its knobs."""
    return hashlib.sha256(Path(__file__).read_bytes() + f"\0{rows}\0{seed}".encode()).hexdigest()[:16]


def _still_generated(stamp: Path, recipe: str, target_dir: Path) -> bool:
    """The stamp's recipe, and every file as it was written: an edited or extra file means write them again."""
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and recorded.get("recipe") == recipe and \
        recorded.get("files") == _file_digests(target_dir)


def _file_digests(target_dir: Path) -> dict[str, str]:
    return {str(path.relative_to(target_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(target_dir.rglob("*")) if path.is_file() and path.name != ".rtest-generated"}


def _write_parts(data_dir: Path, records: list[list[str]], parts: int) -> None:
    size = math.ceil(len(records) / parts)
    for index in range(parts):
        chunk = records[index * size : (index + 1) * size]
        with open(data_dir / f"part-{index:05d}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(chunk)


def _transactions(rng: random.Random, count: int, *, id_offset: int) -> list[list[str]]:
    return [_transaction(rng, id_offset + index) for index in range(count)]


def _transaction(rng: random.Random, txn_id: int) -> list[str]:
    avg_amount = rng.lognormvariate(3.6, 0.6)
    amount = avg_amount * rng.lognormvariate(0.0, 0.8)
    account_age = rng.randint(1, 3650)
    failed_logins = min(int(rng.expovariate(2.5)), 6)
    velocity = min(int(rng.expovariate(0.6)), 15)
    hour = rng.randint(0, 23)
    distance = rng.expovariate(1 / 25)
    merchant = rng.choice(sorted(_MERCHANT_RISK))
    log_odds = (
        -3.6
        + 2.0 * math.log(amount / avg_amount)
        + 1.2 * failed_logins
        + 0.35 * velocity
        - 0.0007 * account_age
        + (1.2 if hour < 5 else 0.0)
        + (0.9 if distance > 60 else 0.0)
        + 1.5 * _MERCHANT_RISK[merchant]
    )
    is_fraud = int(rng.random() < 1 / (1 + math.exp(-log_odds)))
    # About 1% of distances are missing, as real feeds have gaps the model must tolerate.
    distance_text = "" if rng.random() < 0.01 else f"{distance:.2f}"
    return [
        str(txn_id),
        f"{amount:.2f}",
        str(account_age),
        str(rng.randint(0, 400)),
        f"{avg_amount:.2f}",
        distance_text,
        str(hour),
        str(rng.randint(1, 5)),
        str(failed_logins),
        str(velocity),
        str(rng.choice((500, 1000, 2500, 5000, 10000))),
        merchant,
        str(is_fraud),
    ]
