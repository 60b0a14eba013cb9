"""Nearest-codeword search: the faiss path equals the torch path; usage statistics."""

from __future__ import annotations

import torch

from model.layers.vq import CodebookUsage, UsageCounter, nearest_codeword, nearest_codeword_torch


def test_search_paths_agree_and_are_exact() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 1000, 8, generator=g)
    cb = torch.randn(37, 8, generator=g)
    brute = torch.cdist(z, cb.expand(2, -1, -1)).argmin(2)
    assert torch.equal(nearest_codeword(z, cb), brute)
    assert torch.equal(nearest_codeword_torch(z, cb, chunk=128), brute)


def test_usage_perplexity_and_dead_codes() -> None:
    usage = CodebookUsage.from_indices(torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]), size=8)
    assert abs(usage.perplexity - 4.0) < 1e-9 and usage.dead == 4
    counter = UsageCounter(4)
    counter.update(torch.tensor([0, 0]))
    counter.update(torch.tensor([1]))
    assert counter.counts.tolist() == [2, 1, 0, 0] and counter.usage().dead == 2
