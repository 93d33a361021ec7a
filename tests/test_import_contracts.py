"""rtest's import contracts (pyproject.toml, [tool.importlinter]) hold for its own source, and they can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"]


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts over the package found under ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "NO_COLOR": "1"}
    return subprocess.run([*LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=src, env=env, capture_output=True, text=True, timeout=120)


def test_rtest_keeps_its_import_contracts():
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_broken_contracts_are_reported_with_the_import(tmp_path):
    shutil.copytree(ROOT / "src" / "rtest", tmp_path / "rtest", ignore=shutil.ignore_patterns("__pycache__", "example"))
    (tmp_path / "rtest" / "run" / "engine_extra.py").write_text(
        "import docker\n\n\ndef write():\n    import rtest\n    from rtest.report.html import write_report_html\n")
    (tmp_path / "rtest" / "plan" / "extra.py").write_text("from rtest.cli import main\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    assert "rtest.run.engine_extra -> rtest.report.html (l.6)" in out
    assert "rtest.run.engine_extra -> rtest (l.5)" in out
    assert "rtest.run.engine_extra -> docker (l.1)" in out
    assert "rtest.plan.extra -> rtest.cli.main (l.1)" in out
    assert "4 broken" in out
