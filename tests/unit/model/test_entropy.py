"""The chunked query entropy equals the plain softmax formula in value and gradient."""

from __future__ import annotations

import pytest
import torch

from model.layers import entropy
from model.layers.entropy import query_entropy


def reference(z_bnd: torch.Tensor, cb_kd: torch.Tensor, tau: float) -> torch.Tensor:
    """MODEL.md's loss as written: softmax over negative squared distances, entropy, mean over pixels."""
    d = torch.cdist(z_bnd, cb_kd.expand(z_bnd.shape[0], -1, -1)) ** 2
    logp = torch.log_softmax(-d / tau, dim=2)
    return -(logp.exp() * logp).sum(2).mean(1)


@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_value_and_gradients_match_the_plain_formula(monkeypatch: pytest.MonkeyPatch, tau: float) -> None:
    monkeypatch.setattr(entropy, "_CHUNK_ELEMENTS", 37 * 50)  # many chunks, the last one partial
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 301, 8, generator=g, dtype=torch.float64, requires_grad=True)
    cb = torch.randn(37, 8, generator=g, dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)  # each sample's own upstream gradient
    got = query_entropy(z, cb, tau)
    (gz, gcb) = torch.autograd.grad((got * weights).sum(), [z, cb])
    want = reference(z, cb, tau)
    (wz, wcb) = torch.autograd.grad((want * weights).sum(), [z, cb])
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(gz, wz)
    torch.testing.assert_close(gcb, wcb)


def test_gradcheck_and_float32_against_float64() -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 9, 4, generator=g, dtype=torch.float64, requires_grad=True)
    cb = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: query_entropy(a, b, 0.5), (z, cb))
    z32, cb32 = z.detach().float(), cb.detach().float()
    torch.testing.assert_close(
        query_entropy(z32, cb32).double(), reference(z, cb, 1.0).detach(), rtol=1e-5, atol=1e-5
    )


def test_strided_channels_last_input_and_frozen_codebook() -> None:
    """GANet passes a subsampled view of a channels-last map and a codebook without gradient."""
    g = torch.Generator().manual_seed(2)
    fmap = (
        torch.randn(2, 8, 16, 16, generator=g).contiguous(memory_format=torch.channels_last).requires_grad_()
    )
    cb = torch.nn.functional.normalize(torch.randn(40, 8, generator=g), dim=1)
    z = fmap.permute(0, 2, 3, 1).reshape(2, -1, 8)[:, ::3]
    (got,) = torch.autograd.grad(query_entropy(z, cb).sum(), [fmap])
    (want,) = torch.autograd.grad(reference(z, cb, 1.0).sum(), [fmap])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_far_queries_stay_finite() -> None:
    z = torch.full((1, 4, 3), 1e3, requires_grad=True)
    cb = torch.eye(3)
    out = query_entropy(z, cb, tau=0.01)
    (gz,) = torch.autograd.grad(out.sum(), [z])
    assert torch.isfinite(out).all() and torch.isfinite(gz).all()


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected"):
        query_entropy(torch.zeros(1, 4, 3), torch.zeros(5, 2))


def test_queries_far_from_every_codeword_take_the_shifted_path_and_stay_exact() -> None:
    """exp(-D / tau) underflows to 0 for every codeword (D / tau > 2,000 here, beyond even float64's
    range): the chunk is redone with its largest logit shifted out, and matches the plain formula."""
    g = torch.Generator().manual_seed(4)
    z = (10.0 + torch.randn(2, 50, 3, generator=g, dtype=torch.float64)).requires_grad_()
    cb = torch.nn.functional.normalize(torch.randn(7, 3, generator=g, dtype=torch.float64), dim=1)
    got = query_entropy(z, cb, 0.1)
    want = reference(z, cb, 0.1)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(
        torch.autograd.grad(got.sum(), [z])[0], torch.autograd.grad(want.sum(), [z])[0]
    )
