"""`mcga bench model`: the GMAC count includes the split 1x1 convs' in-place accumulations, and the
models take turns run by run."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from model.bench import gmacs, latencies_ms
from model.layers.blocks import SplitPointwise


class TwoBranches(nn.Module):
    """Two 1x1 convs (3 -> 2 channels each) fused by a SplitPointwise (2 + 2 -> 4), channels-last."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 1)
        self.fuse = SplitPointwise((2, 2), 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        out: torch.Tensor = self.fuse(self.a(x), self.b(x))
        return out


def test_every_gemm_is_counted() -> None:
    size = 8
    want = (3 * 2 + 3 * 2 + 4 * 4) * size * size  # MACs per pixel of the three 1x1 convs
    assert round(gmacs(TwoBranches(), size) * 1e9) == want


def test_models_take_turns_run_by_run() -> None:
    calls: list[str] = []
    fns = {name: partial(calls.append, name) for name in ("a", "b")}
    ms = latencies_ms(fns, warmup=1, repeats=3)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds
    assert set(ms) == {"a", "b"} and all(v >= 0 for v in ms.values())
