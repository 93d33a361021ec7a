"""The layering rules of scripts/import_graph.py hold for rtest's own source, and the check can fail."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)


def test_rtest_keeps_its_layering():
    arrows, broken = import_graph.scan()
    assert broken == []
    assert ("run", "report") not in arrows and ("run", "imagebuild") not in arrows
    assert ("session", "run") in arrows and ("session", "report") in arrows  # reports are written above run/


def test_a_broken_rule_is_reported(tmp_path):
    (tmp_path / "rtest" / "run").mkdir(parents=True)
    (tmp_path / "rtest" / "__init__.py").write_text("")
    (tmp_path / "rtest" / "run" / "engine.py").write_text(
        "def write():\n    from rtest.report.html import write_report_html\n")
    (tmp_path / "rtest" / "cli.py").write_text("import rtest\n")
    _, broken = import_graph.scan(tmp_path)
    assert len(broken) == 2
    assert "rtest/run/engine.py:2" in broken[1] and "run -> report is not allowed" in broken[1]
    assert "rtest/cli.py:1: rtest.cli imports the package root" in broken[0]
