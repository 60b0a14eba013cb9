"""GA operations: output ranges, the defining formulas, and per-sample parameters."""

from __future__ import annotations

import torch

from model.layers.ga import GAGamma, GALog, minmax_normalise
from tests.support import assert_same_function


def reference_log(op: GALog, y: torch.Tensor) -> torch.Tensor:
    yn = (y - y.amin((2, 3), keepdim=True)) / (
        y.amax((2, 3), keepdim=True) - y.amin((2, 3), keepdim=True) + op.eps
    )
    a = torch.softmax(y.mean((2, 3)) @ op.weight.t() + op.bias, dim=1)
    a1 = 1 + 4 * (a - a.amin(1, keepdim=True)) / (a.amax(1, keepdim=True) - a.amin(1, keepdim=True) + op.eps)
    a1 = a1[:, :, None, None]
    return torch.log1p(a1 * yn) / torch.log1p(a1)


def test_minmax_normalise_range() -> None:
    y = torch.randn(2, 5, 7, 9).contiguous(memory_format=torch.channels_last)
    yn = minmax_normalise(y, 1e-6)
    assert torch.allclose(yn.amin((2, 3)), torch.zeros(2, 5), atol=1e-6)
    assert torch.allclose(yn.amax((2, 3)), torch.ones(2, 5), atol=1e-5)


def test_ga_log_matches_formula_and_stays_in_unit_range() -> None:
    torch.manual_seed(0)
    op = GALog(6)
    y = torch.randn(3, 6, 8, 8)
    out = op(y)
    torch.testing.assert_close(out, reference_log(op, y), rtol=1e-5, atol=1e-6)
    assert out.min() >= -1e-6 and out.max() <= 1 + 1e-5


def test_ga_gamma_mean_exponent_one_at_uniform_weights() -> None:
    op = GAGamma(4)
    with torch.no_grad():
        op.weight.zero_()
        op.bias.zero_()
    y = torch.rand(1, 4, 5, 5)
    torch.testing.assert_close(op(y), minmax_normalise(y, op.eps) + op.eps, rtol=1e-5, atol=1e-6)


def test_per_sample_parameters_match_shared_ones() -> None:
    torch.manual_seed(0)
    op = GALog(4)
    y = torch.randn(2, 4, 6, 6)
    shared = op(y)
    with torch.no_grad():
        w, b = op.weight.detach().clone(), op.bias.detach().clone()
    del op.weight, op.bias
    op.weight = torch.stack([w, w])  # type: ignore[assignment]
    op.bias = torch.stack([b, b])  # type: ignore[assignment]
    torch.testing.assert_close(op(y), shared)


def test_ga_log_gradient_matches_formula_on_channels_last_maps() -> None:
    """TTA backpropagates through the min-max normalisation: its gradient must be the formula's too."""
    torch.manual_seed(1)
    op = GALog(6)
    y = torch.randn(2, 6, 9, 7).contiguous(memory_format=torch.channels_last).requires_grad_()
    (got,) = torch.autograd.grad(op(y).square().sum(), [y])
    (want,) = torch.autograd.grad(reference_log(op, y).square().sum(), [y])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_ga_gamma_matches_the_power_formula_in_value_and_gradient() -> None:
    """GA_gamma computes `(Y_n + eps)^g` as exp(g log(.)): same value, same gradients, TTA's included."""
    torch.manual_seed(2)
    op = GAGamma(6)
    y = torch.randn(2, 6, 9, 7).contiguous(memory_format=torch.channels_last).requires_grad_()
    g = (op.channels * op.channel_weights(y)).clamp(0.1, 10.0)[:, :, None, None]
    want = (minmax_normalise(y, op.eps) + op.eps).pow(g)
    assert_same_function(op(y), want, [y, op.weight, op.bias], rtol=1e-5, atol=1e-6)
