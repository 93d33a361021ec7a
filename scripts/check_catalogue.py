"""Load a whole interface catalogue (every file, every variant) and print errors, warnings and figures.

    .venv/bin/python scripts/check_catalogue.py /work/cursus/src/cursus/steps/interfaces
"""

from __future__ import annotations

import sys
from collections import Counter

from rtest.errors import InterfaceError
from rtest.inputs.interfaces import load_interfaces


def main(folder: str) -> int:
    registry = load_interfaces([folder])
    errors = 0
    variants = 0
    for step_type in registry.step_types():
        try:
            interface = registry.get(step_type)
            for job_type in interface.variants:
                registry.get(step_type, job_type)
                variants += 1
        except InterfaceError as exc:
            errors += 1
            print(f"ERROR {exc}")
    for warning in registry.warnings:
        print(f"WARNING {warning.message}")
    loaded = [registry.get(t) for t in registry.step_types() if errors == 0]
    skipped = Counter(i.skip_reason.split(":")[0] for i in loaded if i.skip_reason)
    print(f"{len(registry.files)} files, {len(registry)} step types, {variants} variants: "
          f"{errors} errors, {len(registry.warnings)} warnings; "
          f"{sum(i.runnable for i in loaded)} runnable, {sum(not i.runnable for i in loaded)} skipped")
    for reason, count in skipped.items():
        print(f"  skipped x{count}: {reason}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/work/cursus/src/cursus/steps/interfaces"))
