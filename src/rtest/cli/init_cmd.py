"""`rtest init [DIR]` and `rtest init --new DIR` (issue 16 point 2); the logic lives in rtest.init."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

out = Console()


def init(
    folder: Annotated[Path, typer.Argument(help="The project folder (default: here).")] = Path("."),
    new: Annotated[Optional[Path], typer.Option(
        "--new", help="Write a minimal runnable pipeline (DAG, config, two interfaces, two scripts, sample data) "
                      "into this new folder.")] = None,
    spec_name: Annotated[str, typer.Option("--spec-name", help="The spec file to write, in the project folder.")]
    = "rtest-spec.yaml",
    run: Annotated[Optional[bool], typer.Option(
        "--run/--no-run", help="Run the pipeline afterwards without asking (default: ask).")] = None,
    workdir: Annotated[Path, typer.Option("--workdir", help="Where the check and the run keep their files.")]
    = Path(".rtest"),
) -> int:
    """Find the DAG, config and interfaces here, ask only for what is missing, write a spec file, offer to run.

    Answers may come on standard input, one per line (empty line: the default shown in brackets)."""
    from rtest.init.ask import Asker
    from rtest.logs import configure_logging

    configure_logging("text", "warning")  # planning's debug lines are not for a dialogue
    asker = Asker(out)
    if new is not None:
        from rtest.init.scaffold import scaffold

        written = scaffold(new)
        out.print(f"[green]Wrote a minimal pipeline into {new}[/] ({len(written)} files):", highlight=False)
        for path in written:
            out.print(f"  {path}", highlight=False)
        spec = new / "rtest-spec.yaml"
    else:
        from rtest.init.dialogue import run_init

        folder = folder.resolve()
        spec = run_init(folder, asker, out, folder / spec_name, workdir)
    if run is None:
        run = asker.confirm("Run it now?", default=True)
    if not run:
        out.print(f"Later: rtest sandbox run --spec {spec}", highlight=False)
        return 0
    # The run is rtest's own command, in a child process: its progress, reports and exit code as ever.
    return subprocess.call([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--spec", str(spec),
                            "--workdir", str(workdir)])
