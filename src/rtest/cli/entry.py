"""The `rtest` console script: answers `rtest --version` before the command machinery is imported.

Everything else goes to rtest.cli.main (typer, rich and the commands), which costs a few hundred ms
that a version query should not pay.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from rtest.version import __version__

        print(f"rtest {__version__}")
        sys.exit(0)
    from rtest.cli.main import main as run_command

    return run_command(argv)
