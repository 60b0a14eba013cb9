"""SplitPointwise: a 1x1 conv over a concatenation, computed part by part without building it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from model.layers.blocks import SplitPointwise


@pytest.mark.parametrize("channels_last", [True, False])
def test_equals_a_conv_over_the_concatenation_in_value_and_gradient(channels_last: bool) -> None:
    torch.manual_seed(0)
    layer = SplitPointwise((3, 5, 2), 4)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xs = [torch.randn(2, c, 6, 7).contiguous(memory_format=fmt).requires_grad_() for c in (3, 5, 2)]
    got = layer(*xs)
    want = F.conv2d(torch.cat(xs, dim=1), layer.weight, layer.bias)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert layer.bias is not None
    params = [*xs, layer.weight, layer.bias]
    g_got = torch.autograd.grad(got.square().sum(), params)
    g_want = torch.autograd.grad(want.square().sum(), params)
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_wrong_parts_are_an_error() -> None:
    layer = SplitPointwise((3, 5), 4)
    with pytest.raises(ValueError, match="expected maps"):
        layer(torch.randn(1, 3, 4, 4), torch.randn(1, 4, 4, 4))
