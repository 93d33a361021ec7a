"""The step cache key: everything that can change a step's outputs changes the key, nothing else does.

The docker cache test only edits a script; these check the other promised parts of the key without a container.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtest.plan.model import InputSpec, JobArgument, OutputSpec
from rtest.run.cache import step_key, tree_digest
from test_layout import _v, processing_spec

SETTINGS = {"network": "none", "limits": True, "pack_model": True, "timeout": None}
KEY_PARTS = dict(image_id="sha256:aaa", source_digest="src-1", input_digests={"data": "in-1"}, settings=SETTINGS)


def _spec(**fields):
    return processing_spec(Path("/code"), **fields)


def _key(spec=None, **parts) -> str:
    return step_key(spec or _spec(), **{**KEY_PARTS, **parts})


def test_same_material_gives_the_same_key():
    assert _key() == _key(_spec(), settings=dict(reversed(list(SETTINGS.items()))))


@pytest.mark.parametrize("parts", [
    {"image_id": "sha256:bbb"},
    {"source_digest": "src-2"},
    {"input_digests": {"data": "in-2"}},
    {"settings": {**SETTINGS, "network": "bridge"}},
    {"settings": {**SETTINGS, "limits": False}},
    {"settings": {**SETTINGS, "pack_model": False}},
], ids=["image", "source", "input", "network", "limits", "pack_model"])
def test_run_material_changes_the_key(parts):
    assert _key(**parts) != _key()


@pytest.mark.parametrize("fields", [
    {"environment": {"LABEL_FIELD": _v("target")}},
    {"job_arguments": [JobArgument(flag="--job_type", value=_v("calibration"))]},
    {"hyperparameters": {"max_depth": _v(7)}},
    {"instance_type": _v("ml.m5.4xlarge")},
    {"instance_count": 2},
    {"entry_point": "other.py"},
    {"outputs": {"processed": OutputSpec(name="processed", container_path="/opt/ml/processing/output/elsewhere")}},
    {"inputs": {"data": InputSpec(name="data", container_path="/opt/ml/processing/input/moved")}},
], ids=["env", "argv", "hyperparameters", "instance_type", "instance_count", "entry_point", "output_path", "input_path"])
def test_spec_changes_change_the_key(fields):
    assert _key(_spec(**fields)) != _key()


def test_tree_digest_follows_content_names_and_modes_but_not_bytecode(tmp_path):
    (tmp_path / "pkg").mkdir()
    script = tmp_path / "pkg" / "main.py"
    script.write_text("print(1)\n")
    first = tree_digest(tmp_path)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x00")
    assert tree_digest(tmp_path) == first
    script.write_text("print(2)\n")
    assert tree_digest(tmp_path) != first
    script.write_text("print(1)\n")
    assert tree_digest(tmp_path) == first
    os.chmod(script, 0o755)
    assert tree_digest(tmp_path) != first
    os.chmod(script, 0o644)
    script.rename(tmp_path / "pkg" / "renamed.py")
    assert tree_digest(tmp_path) != first
