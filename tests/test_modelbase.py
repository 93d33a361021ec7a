"""rtest's pydantic models build their schemas on first use (rtest.modelbase): every model takes part, and a first
use from many threads at once (the runner's workers, the service's thread pool) validates as an eager build would."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rtest"


def test_every_model_derives_from_the_deferred_base() -> None:
    eager = [f"{path.relative_to(SRC)}: {match.group(0)}"
             for path in SRC.rglob("*.py")
             for match in re.finditer(r"^class \w+\([^)]*\bBaseModel\b[^)]*\)", path.read_text(), re.M)
             if path.name != "modelbase.py"]
    assert not eager, "derive from rtest.modelbase.Model, not pydantic.BaseModel: " + "; ".join(eager)


FIRST_USE_ON_THREADS = """
import threading
from concurrent.futures import ThreadPoolExecutor
from rtest.run.model import StepResult
from rtest.run.backends.base import StepExit

assert not StepResult.__pydantic_complete__, "the schema was built at import"
barrier = threading.Barrier(16)

def first_use(i):
    barrier.wait()
    result = StepResult.model_validate({"node": f"n{i}", "status": "failed", "exit_code": i, "failure_reason": "r"})
    exit = StepExit.model_validate({"exit_code": i})
    return result.exit_code, exit.exit_code

with ThreadPoolExecutor(16) as pool:
    print(sorted(pool.map(first_use, range(16))) == [(i, i) for i in range(16)])
"""


@pytest.mark.process  # a fresh interpreter: in the test process the schemas are long built
def test_a_first_use_from_many_threads_at_once_validates() -> None:
    done = subprocess.run([sys.executable, "-c", FIRST_USE_ON_THREADS], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
