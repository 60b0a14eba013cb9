"""`keep_freed_memory`: a worker thread's freed activations are reused, not mapped and faulted again."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

CHURN = textwrap.dedent(
    """
    import json, resource
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np
    from model.runtime import keep_freed_memory

    applied = keep_freed_memory()

    def churn():  # activations of a forward: several tens of MiB alive at once, then freed
        faults = []
        for _ in range(3):
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            live = [np.ones(mb << 18, dtype=np.float32) for mb in (8, 32, 24, 40, 16, 32)]
            del live
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        return faults

    print(json.dumps({"applied": applied, "faults": ThreadPoolExecutor(1).submit(churn).result()}))
    """
)


def churn() -> dict[str, object]:
    """Run CHURN in a fresh process: mallopt settings are process-wide."""
    out = subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_a_worker_threads_freed_memory_is_reused_without_page_faults() -> None:
    result = churn()
    if not result["applied"]:
        pytest.skip("not glibc: mallopt is unavailable")
    faults = result["faults"]
    assert isinstance(faults, list)
    first, again = int(faults[0]), [int(f) for f in faults[1:]]
    assert first > 1000  # 152 MiB touched for the first time
    assert max(again) < first // 20, result  # one thread arena's heaps were unmapped: ~1,600 faults
