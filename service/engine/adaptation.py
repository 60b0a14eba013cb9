"""One batched pass of a group of frames with per-sample GA parameters, several steps if asked.

Semantics per sample (the state is None for frames without a session and without adaptation):
- stream (a session): the output uses the parameters the session had before this frame, then it
  takes `steps` adaptation steps on the frame (Tent-online, as `TTAAdapter.run` defines it);
- one-shot (no session, steps > 0): `steps` steps from the trained parameters, then the output with
  the adapted parameters (`TTAAdapter.adapt_one_shot`).
Every step is one forward and one backward for all samples still adapting, never one per sample.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from model.tta import GAState, Outcome, TTAAdapter

_RANK = {Outcome.NONE: 0, Outcome.DROPPED: 1, Outcome.ADAPTED: 2, Outcome.RESET: 3}


@dataclass
class PassResult:
    hsi_bchw: Tensor
    states: list[GAState | None]
    outcomes: list[Outcome]
    entropy: list[float | None]  # entropy of each frame before its first step
    tta_s: float  # time of the passes that adapted (forward and backward)
    # (B, H, W) the squared input residual the camera projection corrected (None without one)
    input_residual: Tensor | None = None


def _merge(a: Outcome, b: Outcome) -> Outcome:
    """Outcome of several steps: a reset wins, then any adapted step, then a dropped one."""
    return a if _RANK[a] >= _RANK[b] else b


def run_group(
    adapter: TTAAdapter,
    x_bchw: Tensor,
    states: Sequence[GAState | None],
    steps: Sequence[int],
    one_shot: Sequence[bool],
) -> PassResult:
    n = x_bchw.shape[0]
    if not (len(states) == len(steps) == len(one_shot) == n):
        raise ValueError("need one state, step count and mode per sample")
    if all(s is None for s in states):
        with torch.inference_mode():
            out = adapter.model(x_bchw)
        return PassResult(out.hsi, [None] * n, [Outcome.NONE] * n, [None] * n, 0.0, out.input_residual)

    tta_s = 0.0
    t0 = time.perf_counter()
    first = adapter.run(x_bchw, states, [s >= 1 for s in steps])
    if any(s >= 1 for s in steps):
        tta_s += time.perf_counter() - t0
    hsi = first.hsi
    residual = first.input_residual
    current, outcomes = list(first.states), list(first.outcomes)
    entropy: list[float | None] = [
        float(first.entropy[i]) if first.entropy is not None and steps[i] >= 1 else None for i in range(n)
    ]
    for k in range(1, max(steps, default=0)):
        idx = [i for i in range(n) if steps[i] > k and current[i] is not None]
        t0 = time.perf_counter()
        more = adapter.run(x_bchw[idx], [current[i] for i in idx], [True] * len(idx))
        tta_s += time.perf_counter() - t0
        for j, i in enumerate(idx):
            current[i], outcomes[i] = more.states[j], _merge(outcomes[i], more.outcomes[j])
    final_idx = [i for i in range(n) if one_shot[i] and current[i] is not None]
    if final_idx:
        final = adapter.run(x_bchw[final_idx], [current[i] for i in final_idx], [False] * len(final_idx))
        hsi = hsi.clone()
        hsi[final_idx] = final.hsi
        if residual is not None and final.input_residual is not None:
            residual = residual.clone()
            residual[final_idx] = final.input_residual
    return PassResult(hsi, current, outcomes, entropy, tta_s, residual)
