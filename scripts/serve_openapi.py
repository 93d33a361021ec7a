"""Write (or, with --check, compare) docs/serve-openapi.json: the OpenAPI schema of `rtest serve`.

    python scripts/serve_openapi.py          # regenerate after changing the API
    python scripts/serve_openapi.py --check  # exit 1 if the checked-in schema is stale (tests do this)
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "serve-openapi.json"


def current_schema() -> str:
    from rtest.serve.app import create_app
    from rtest.serve.manager import RunManager
    from rtest.testing import FakeBackend

    with tempfile.TemporaryDirectory() as workdir:
        manager = RunManager(Path(workdir), slots=1, backend=FakeBackend())
        try:
            app = create_app(manager, token=None, server_id="-", metrics=None)
            return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
        finally:
            manager.shutdown()


def main(argv: list[str]) -> int:
    text = current_schema()
    if "--check" in argv:
        if not SCHEMA.is_file() or SCHEMA.read_text() != text:
            print(f"{SCHEMA} is stale: run python scripts/serve_openapi.py", file=sys.stderr)
            return 1
        return 0
    SCHEMA.write_text(text)
    print(f"wrote {SCHEMA}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
