"""`rtest ARGS` in this test process: the command's exit code, stdout and stderr, without starting Python again.

The same entry point as the console script (rtest.cli.main.main, which turns errors into exit codes), with the
environment, working folder and standard streams of a child process for the call's duration. Tests about the
process itself (signals, the console script, imports on start) keep running `python -m rtest.cli.main`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock


@contextmanager
def _chdir(folder: Path):  # contextlib.chdir is Python 3.11+; rtest supports 3.10
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def rtest_here(*args: str, cwd: Path, env: dict[str, str] | None = None,
               input: str = "") -> subprocess.CompletedProcess:
    """``input``: what the command reads on stdin (not a terminal, as when piped)."""
    from rtest.cli.main import main

    out, err = _stream(), _stream()  # with a .buffer: `rtest runs logs` writes the log's bytes
    code: int | str | None = 0
    with mock.patch.dict(os.environ, env or {}), _chdir(cwd), redirect_stdout(out), redirect_stderr(err), \
            mock.patch.object(sys, "stdin", io.StringIO(input)):
        try:
            main(list(args))
        except SystemExit as exited:
            code = exited.code
    if not isinstance(code, int):  # sys.exit("message") or sys.exit(None), as a process would exit
        if code is not None:
            err.write(f"{code}\n")
        code = 0 if code is None else 1
    return subprocess.CompletedProcess([sys.executable, "-m", "rtest.cli.main", *args], code, _text(out),
                                       _text(err))


def _stream() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    return stream.buffer.getvalue().decode("utf-8", errors="replace")
