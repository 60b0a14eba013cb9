"""Drop the MoC codewords a trained GANet never chooses on its training images.

Every search in GANet is an exact nearest-codeword search over the MoC, so removing a codeword that
no search picked on a set of images leaves every search, and so every output, on those images
unchanged (the winner is still there). On other images a removed codeword might have won; the
validation figures of the bundled weights are measured after pruning. The MoC of the bundled
weights holds every stage-1 source's used codes, most of which a CAVE-trained GANet never picks,
and the full-resolution searches are GANet's largest single cost (MODEL.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import torch
from torch import Tensor

from model.ganet import GANet
from model.layers.vq import UsageCounter


@torch.no_grad()
def search_usage(net: GANet, images: Iterable[Tensor]) -> list[Tensor]:
    """How often each MoC codeword won a search over (B, 3, H, W) images, per scale (coarsest first)."""
    S = net.cfg.scales
    net.usage = [UsageCounter(net.codebook(j).shape[0]) for j in range(S)]
    try:
        for rgb in images:
            net(rgb)
        by_level = [c.counts.clone() for c in net.usage]
    finally:
        net.usage = None
    return [by_level[S - 1 - i] for i in range(S)]


def prune_moc(net: GANet, counts: list[Tensor], min_count: int = 1) -> GANet:
    """A copy of `net` whose MoC keeps, per scale, the codewords chosen at least `min_count` times."""
    keep = [c >= min_count for c in counts]
    if any(int(k.sum()) == 0 for k in keep):
        raise ValueError("pruning would leave a MoC scale empty: count usage on more images")
    cfg = replace(net.cfg, moc_sizes=tuple(int(k.sum()) for k in keep))
    state = net.state_dict()
    for i, k in enumerate(keep):
        state[f"moc.{i}"] = state[f"moc.{i}"][k.to(state[f"moc.{i}"].device)]
    pruned = GANet(cfg)
    pruned.load_state_dict(state)
    return pruned.train(net.training)
