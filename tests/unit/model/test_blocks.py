"""SplitPointwise (a 1x1 conv over a concatenation, computed part by part) and GA-FFN's convs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from model.layers.blocks import GAFFN, SplitPointwise
from tests.support import assert_same_function


@pytest.mark.parametrize("channels_last", [True, False])
def test_equals_a_conv_over_the_concatenation_in_value_and_gradient(channels_last: bool) -> None:
    torch.manual_seed(0)
    layer = SplitPointwise((3, 5, 2), 4)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xs = [torch.randn(2, c, 6, 7).contiguous(memory_format=fmt).requires_grad_() for c in (3, 5, 2)]
    got = layer(*xs)
    want = F.conv2d(torch.cat(xs, dim=1), layer.weight, layer.bias)
    assert layer.bias is not None
    assert_same_function(got, want, [*xs, layer.weight, layer.bias], rtol=1e-5, atol=1e-5)


def test_wrong_parts_are_an_error() -> None:
    layer = SplitPointwise((3, 5), 4)
    with pytest.raises(ValueError, match="expected maps"):
        layer(torch.randn(1, 3, 4, 4), torch.randn(1, 4, 4, 4))


@pytest.mark.parametrize("channels_last", [True, False])
def test_ga_ffn_convs_equal_the_grouped_conv_they_replace(channels_last: bool) -> None:
    """GA-FFN runs `dw(inp(x))` as a widened 1x1 conv and a plain depthwise conv: same function."""
    torch.manual_seed(0)
    ffn = GAFFN(4)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 4, 6, 7).contiguous(memory_format=fmt).requires_grad_()

    def reference(x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(ffn.dw(ffn.inp(x)))
        h1, h2 = h.chunk(2, dim=1)
        return ffn.out(ffn.ga_log(h1), ffn.ga_gamma(h2), h)

    assert_same_function(ffn(x), reference(x), [x, *ffn.parameters()], rtol=1e-5, atol=1e-6)
