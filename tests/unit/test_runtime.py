"""`shoal.runtime.tune_gc`: entry points collect less often and freeze their start-up objects.

It changes process-wide state, so it runs in a child process, as the entry points run it.
"""

from __future__ import annotations

import subprocess
import sys

from shoal.runtime import YOUNG_THRESHOLD

_PROBE = """
import gc
from shoal.runtime import tune_gc
before = gc.get_freeze_count()
tune_gc()
print(gc.get_threshold()[0], before, gc.get_freeze_count())
"""


def test_tune_gc_raises_the_young_threshold_and_freezes_start_up() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    threshold, before, after = map(int, done.stdout.split())
    assert threshold == YOUNG_THRESHOLD > 700
    assert before == 0 and after > 1000


def test_importing_shoal_leaves_the_collector_alone() -> None:
    probe = "import gc, shoal.sdk, shoal.server; print(gc.get_threshold()[0])"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert int(done.stdout) == 700  # only `shoal server` and `shoal worker` tune it
