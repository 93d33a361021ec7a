"""How many examples a hypothesis property test tries: its own count, or a tenth in the fast tier.

`HYPOTHESIS_PROFILE=fast` (see docs/development.md, the fast tier) loads the profile registered in conftest.py;
CI and a plain `pytest` run every test's own count."""

from __future__ import annotations

import os

FAST_SHARE = 10


def examples(count: int) -> int:
    if os.environ.get("HYPOTHESIS_PROFILE") == "fast":
        return max(10, count // FAST_SHARE)
    return count
