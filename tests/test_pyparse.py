"""rtest parses Python in threads (cache keys, the dependency scan): every parse goes through one lock,
because CPython 3.11's AST constructor is not thread-safe (python/cpython#106905; it failed a step here)."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "rtest"


def test_no_module_calls_ast_parse_except_through_the_lock():
    direct = [f"{path.relative_to(SRC)}:{number}"
              for path in sorted(SRC.rglob("*.py")) if path.name != "pyparse.py"
              for number, line in enumerate(path.read_text().splitlines(), 1)
              if re.search(r"\bast\.parse\(|\bfrom ast import\b.*\bparse\b", line)]
    assert direct == [], f"use rtest.pyparse.parse_module instead of ast.parse at {direct}"
