"""`python tests/fake_serve.py serve ...`: the real service process, with steps played by FakeBackend.

For API tests where containers are not the point. RTEST_FAKE_STEP_S sets every step's duration;
RTEST_FAKE_FAIL names nodes that exit 1, RTEST_FAKE_SLOW nodes that run 10 minutes (until cancelled);
RTEST_FAKE_FAIL_FILE names a file listing more failing nodes, read at each step (a step that fails only later).
"""

from __future__ import annotations

import os
import sys


def fake_backend(env=os.environ):
    """``env``: where the RTEST_FAKE_* settings are read, at each step (an in-process service passes its own)."""
    from rtest.testing import FakeBackend, FakeStep

    class _EveryStep(dict):  # FakeBackend asks steps.get(node, default): answer for any node
        def __bool__(self) -> bool:
            return True

        def get(self, node, default=None):
            failing = set(filter(None, env.get("RTEST_FAKE_FAIL", "").split(",")))
            fail_file = env.get("RTEST_FAKE_FAIL_FILE")
            if fail_file and os.path.isfile(fail_file):
                failing |= set(open(fail_file).read().split())
            slow = set(filter(None, env.get("RTEST_FAKE_SLOW", "").split(",")))
            return FakeStep(duration_s=600.0 if node in slow else float(env.get("RTEST_FAKE_STEP_S", "0")),
                            exit_code=1 if node in failing else 0)

    return FakeBackend(_EveryStep())


if __name__ == "__main__":
    from rtest.cli.main import main
    from rtest.run.backends import register_backend

    register_backend("fake", fake_backend)
    main(sys.argv[1:])
