"""Camera consistency: outputs render back to the input, the change is minimal, checkpoints keep it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.ganet import GANet
from model.layers.consistency import CameraConsistency, darkening_gain
from tests.support import camera_response, tiny_ganet


def response(seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(camera_response(seed)).float()


def layer(seed: int = 0) -> CameraConsistency:
    out = CameraConsistency(31)
    out.set_response(response(seed))
    return out


def render(cube: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return torch.einsum("bchw,ck->bkhw", cube, r)


def test_projected_cube_renders_to_the_input() -> None:
    torch.manual_seed(0)
    cube = 0.3 + 0.4 * torch.rand(2, 31, 5, 7)  # far from zero: no clamping
    rgb = render(cube, response()) * (1 + 0.05 * torch.randn(2, 3, 5, 7))
    out = layer()(cube, rgb)
    assert torch.allclose(render(out, response()), rgb, atol=1e-5)


def test_a_consistent_cube_is_left_alone_and_the_change_is_minimal() -> None:
    torch.manual_seed(1)
    r = response()
    cube = 0.3 + 0.4 * torch.rand(1, 31, 4, 4)
    assert torch.allclose(layer()(cube, render(cube, r)), cube, atol=1e-5)
    rgb = render(cube, r) + 0.01
    change = (layer()(cube, rgb) - cube).permute(0, 2, 3, 1).reshape(-1, 31).double()
    # the smallest change that fixes the rendering lies in the span of the response's columns
    basis, _ = torch.linalg.qr(r.double())
    assert torch.allclose(change @ basis @ basis.T, change, atol=1e-6)


def test_a_cube_rendering_too_bright_is_scaled_down_whole_and_one_too_dark_is_not_scaled_up() -> None:
    torch.manual_seed(3)
    r = response()
    cube = 0.3 + 0.4 * torch.rand(1, 31, 3, 4)
    rgb = render(cube, r)
    out, drift = layer().correct(2 * cube, rgb)
    torch.testing.assert_close(out, cube, rtol=1e-5, atol=1e-6)  # null-space part halved too
    torch.testing.assert_close(drift, rgb.square().mean(dim=1))  # per pixel, measured on the raw cube
    plain, _ = layer().correct(0.5 * cube, rgb, darken=False)
    torch.testing.assert_close(layer().correct(0.5 * cube, rgb)[0], plain)
    assert not torch.allclose(plain, cube, atol=1e-3)


def test_a_black_input_gives_a_black_cube() -> None:
    out = layer()(0.01 + torch.rand(1, 31, 2, 2), torch.zeros(1, 3, 2, 2))
    assert out.abs().max() == 0


def test_negative_values_are_clamped() -> None:
    out = layer()(torch.zeros(1, 31, 2, 2), torch.full((1, 3, 2, 2), -0.5))
    assert out.min() == 0


def test_rank_deficient_or_misshaped_responses_are_refused() -> None:
    flat = torch.ones(31, 3)
    with pytest.raises(ValueError, match="rank"):
        CameraConsistency(31).set_response(flat)
    with pytest.raises(ValueError, match="31, 3"):
        CameraConsistency(31).set_response(torch.rand(30, 3))


def tiny(consistent: bool) -> GANet:
    """The shared tiny net (its projection uses `response()`), in train mode."""
    return tiny_ganet(0, consistent).train()


def test_ganet_projects_in_eval_mode_only_and_checkpoints_keep_the_camera(tmp_path: Path) -> None:
    net, plain = tiny(True), tiny(False)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("consistency.")})
    rgb = 0.2 + 0.5 * torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        raw = plain.eval()(rgb).hsi
        projected = net.eval()(rgb).hsi
        assert torch.allclose(projected, layer()(raw, rgb), atol=1e-6)
        assert torch.allclose(net.train()(rgb).hsi, plain.train()(rgb).hsi)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.pt", net.eval(), {})).model
    assert isinstance(loaded, GANet) and loaded.consistency is not None
    assert torch.allclose(loaded.consistency.response(), response(), atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(loaded(rgb).hsi, projected, atol=1e-6)


def test_per_sample_responses_match_the_stored_one_and_train_the_net() -> None:
    torch.manual_seed(2)
    cube, rgb = torch.rand(2, 31, 4, 6), torch.rand(2, 3, 4, 6)
    same = layer()(cube, rgb, response().expand(2, 31, 3))
    assert torch.allclose(same, layer().correct(cube, rgb, darken=False)[0], atol=1e-5)
    mixed = layer()(cube, rgb, torch.stack([response(0), response(1)]))
    assert torch.allclose(mixed[1:], layer(1).correct(cube[1:], rgb[1:], darken=False)[0], atol=1e-5)
    net, plain = tiny(True).train(), tiny(False).train()
    responses = torch.stack([response(0), response(1)])
    out = net(rgb, response=responses).hsi
    assert torch.allclose(out, layer()(plain(rgb).hsi, rgb, responses), atol=1e-5)
    out.sum().backward()
    assert net.stem.weight.grad is not None and net.stem.weight.grad.abs().sum() > 0


def test_the_darkening_gain_of_near_black_half_precision_pixels_is_computed_in_float32() -> None:
    rgb = torch.full((1, 3, 1, 2), 1e-3)
    rendered = torch.tensor([2e-3, 5e-4]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    gain = darkening_gain(rendered.half(), rgb)
    assert gain.dtype == torch.float16
    torch.testing.assert_close(gain.float(), torch.tensor([0.5, 1.0]).view(1, 1, 1, 2), rtol=2e-3, atol=0)
