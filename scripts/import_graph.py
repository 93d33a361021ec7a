"""Print the arrows between rtest's packages and check the layering rules; exit 1 when one is broken.

    python scripts/import_graph.py [--quiet]

Every import counts, also the ones inside functions (lazy imports are still dependencies).
Rules: run/ imports neither report/ nor imagebuild; jobs/ imports none of plan/, run/, report/,
inputs/; no module imports the package root
(`import rtest`, `from rtest import ...`); the package root itself may re-export.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
FORBIDDEN = {("run", "report"), ("run", "imagebuild"), ("run", "cli"), ("run", "session"), ("run", "factory"),
             ("plan", "run"), ("plan", "report"), ("inputs", "plan"), ("inputs", "run"), ("report", "cli"),
             ("serve", "cli"),  # the service is a front door beside the CLI, never behind it
             # the options model and the one run path sit below every front door
             ("options", "cli"), ("options", "serve"), ("options", "factory"), ("located", "cli"),
             ("located", "serve"), ("located", "factory"), ("session", "cli"),
             ("session", "serve"), ("session", "factory"),
             ("jobs", "plan"), ("jobs", "run"), ("jobs", "report"), ("jobs", "inputs")}  # job kinds sit below all


def unit(module: str) -> str:
    """rtest.run.backends.docker -> run; rtest.catalog -> catalog; rtest -> (root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def imports_of(path: Path, src: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "rtest":  # `from rtest import x`: x may be a submodule, else the root
                found += [(f"rtest.{a.name}" if (src / "rtest" / a.name).exists() or
                           (src / "rtest" / f"{a.name}.py").exists() else "rtest", node.lineno) for a in node.names]
            else:
                found.append((node.module, node.lineno))
    return [(name, line) for name, line in found if name == "rtest" or name.startswith("rtest.")]


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def scan(src: Path = SRC) -> tuple[dict[tuple[str, str], set[str]], list[str]]:
    """(package -> package arrows with the importing modules, broken rules) of the tree under ``src``."""
    arrows: dict[tuple[str, str], set[str]] = defaultdict(set)
    broken: list[str] = []
    for path in sorted((src / "rtest").rglob("*.py")):
        if "example" in path.relative_to(src).parts[1:2]:
            continue  # the bundled example pipeline's scripts run in containers, not in rtest
        module = module_name(path, src)
        for target, line in imports_of(path, src):
            where = f"{path.relative_to(src.parent)}:{line}"
            if target == "rtest" and module != "rtest":
                broken.append(f"{where}: {module} imports the package root; import the module it needs")
            source_unit, target_unit = unit(module), unit(target)
            if source_unit != target_unit:
                arrows[(source_unit, target_unit)].add(module)
                if (source_unit, target_unit) in FORBIDDEN:
                    broken.append(f"{where}: {module} imports {target} ({source_unit} -> {target_unit} is not allowed)")
    return arrows, broken


def main(argv: list[str]) -> int:
    arrows, broken = scan()
    if "--quiet" not in argv:
        for (source, target), modules in sorted(arrows.items()):
            print(f"{source:>10} -> {target:<10} ({len(modules)} module{'s' if len(modules) > 1 else ''})")
    for problem in broken:
        print(f"BROKEN {problem}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
