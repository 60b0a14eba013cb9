"""The stage-2 losses: the relative loss weighs an error by the value it is made on."""

from __future__ import annotations

import pytest
import torch

from model.train.stage2 import LOSSES, relative_l1


def test_relative_l1_matches_hand_computed_values() -> None:
    target = torch.tensor([0.0, 0.09, 0.99])
    pred = torch.tensor([0.01, 0.10, 1.00])
    # |0.01| / 0.01 = 1, 0.01 / 0.1 = 0.1, 0.01 / 1.0 = 0.01 -> mean 1.11 / 3.
    assert float(relative_l1(pred, target)) == pytest.approx(1.11 / 3)


def test_relative_l1_weighs_dark_errors_more_than_charbonnier_does() -> None:
    target = torch.tensor([0.02, 0.8])
    dark, bright = torch.tensor([0.03, 0.8]), torch.tensor([0.02, 0.81])
    assert float(relative_l1(dark, target)) > 10 * float(relative_l1(bright, target))
    charb = LOSSES["charbonnier"]
    assert float(charb(dark, target)) == pytest.approx(float(charb(bright, target)))


def test_relative_l1_has_finite_gradients_on_black_targets() -> None:
    pred = torch.zeros(4, requires_grad=True)
    relative_l1(pred, torch.zeros(4)).backward()
    assert pred.grad is not None and bool(torch.isfinite(pred.grad).all())
