"""MoC pruning: outputs on the counted images are unchanged, the MoC shrinks, misuse is refused."""

from __future__ import annotations

import pytest
import torch

from model.config import GANetConfig
from model.ganet import GANet
from model.prune import prune_moc, search_usage


def net() -> GANet:
    torch.manual_seed(0)
    cfg = GANetConfig(
        latent_dim=16, moc_sizes=(64, 96), encoder_blocks=(1, 1), decoder_blocks=(1, 1), top_t=8
    )
    return GANet(cfg).eval()


def test_pruned_net_gives_the_same_outputs_on_the_counted_images() -> None:
    full = net()
    images = [torch.rand(2, 3, 16, 20), torch.rand(1, 3, 12, 12)]
    counts = search_usage(full, images)
    assert [c.numel() for c in counts] == [64, 96] and full.usage is None
    pruned = prune_moc(full, counts)
    assert all(p < f for p, f in zip(pruned.cfg.moc_sizes, full.cfg.moc_sizes, strict=True))
    assert list(pruned.cfg.moc_sizes) == [int((c > 0).sum()) for c in counts]
    with torch.no_grad():
        for rgb in images:
            assert torch.allclose(pruned(rgb).hsi, full(rgb).hsi, atol=1e-5)


def test_every_search_is_counted() -> None:
    full = net()
    counts = search_usage(full, [torch.rand(1, 3, 16, 16)])
    # three searches per level: 3 x 256 pixels at the finest scale, 3 x 64 at the coarser one
    assert [int(c.sum()) for c in counts] == [3 * 64, 3 * 256]


def test_pruning_everything_is_refused() -> None:
    full = net()
    with pytest.raises(ValueError, match="empty"):
        prune_moc(full, [torch.zeros(64, dtype=torch.long), torch.ones(96, dtype=torch.long)])
