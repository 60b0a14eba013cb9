"""Camera consistency: the cube nearest the network's output (L2, per pixel) that renders to the input.

The camera sees a cube `s` (bands) as `rgb = R^T s`, with `R` its (bands, 3) response. Three of a
spectrum's degrees of freedom are therefore known exactly from the input; the network only has to
guess the other `bands - 3`. `s' = s + R (R^T R)^-1 (rgb - R^T s)` keeps the network's guess in the
camera's null space and takes the rest from the input (Lin and Finlayson, "Physically plausible
spectral reconstruction", 2020). Negative values the projection may create are clamped to zero.

Measured on the CAVE validation scenes with the CIE 1964 camera (GANet-S2, shape-gain stage 1,
1,500 stage-2 steps): MRAE>=0.01 0.573 -> 0.381 and RMSE 0.0528 -> 0.0379 from this layer alone.

At inference a pixel that renders brighter than the input is first scaled down as a whole, by the
least-squares gain `g = <rgb, R^T s> / ||R^T s||^2` clamped to [0, 1], so that its null-space part
shrinks with it: the projection alone leaves that part at the network's level, which on near-black
pixels is a floor of a few thousandths (relative errors of 10x and more). Chosen on the CAVE
training scenes (bundled GANet-S2; MRAE / MRAE>=0.01 / RMSE): projection alone 0.356 / 0.251 /
0.0383; gain clamped to [0, 1] 0.279 / 0.219 / 0.0392; unclamped (brightening too) 0.314 / 0.252 /
0.0443. Training projects without it (`project`), as the bundled weights were trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CameraConsistency(nn.Module):
    """Project (B, bands, H, W) onto the cubes that render to (B, 3, H, W) through the stored response."""

    render_w: Tensor
    lift_w: Tensor

    def __init__(self, bands: int) -> None:
        super().__init__()
        self.register_buffer("render_w", torch.zeros(3, bands, 1, 1))
        self.register_buffer("lift_w", torch.zeros(bands, 3, 1, 1))

    @torch.no_grad()
    def set_response(self, response_b3: Tensor) -> None:
        """Store a camera response (bands, 3); it must have rank 3."""
        r = response_b3.to(torch.float64)
        if r.ndim != 2 or r.shape != (self.lift_w.shape[0], 3) or not torch.isfinite(r).all():
            raise ValueError(f"response must be finite ({self.lift_w.shape[0]}, 3), got {tuple(r.shape)}")
        if torch.linalg.matrix_rank(r) < 3:
            raise ValueError("camera response has rank < 3: the projection is undefined")
        lift = r @ torch.linalg.inv(r.T @ r)
        self.render_w.copy_(r.T[:, :, None, None].to(self.render_w.dtype))
        self.lift_w.copy_(lift[:, :, None, None].to(self.lift_w.dtype))

    def correct(self, hsi: Tensor, rgb: Tensor, darken: bool = True) -> tuple[Tensor, Tensor]:
        """The projection with the stored camera (after the darkening gain, see the module), and per
        pixel (B, H, W) the squared difference between the input and `hsi` rendered through that
        camera, averaged over channels: the drift signal of an input that no longer matches the
        camera (the projected cube always matches, up to clamping). Per pixel, so that a caller that
        padded its frames averages over each frame's own pixels."""
        rendered = F.conv2d(hsi, self.render_w.to(hsi.dtype))
        drift = (rgb - rendered).detach().square().mean(dim=1)
        if darken:
            gain = darkening_gain(rendered, rgb)
            hsi, rendered = hsi * gain, rendered * gain  # rendering is linear
        projected = (hsi + F.conv2d(rgb - rendered, self.lift_w.to(hsi.dtype))).clamp_min(0.0)
        return projected, drift

    def response(self) -> Tensor:
        return self.render_w[:, :, 0, 0].T.clone()

    def forward(self, hsi: Tensor, rgb: Tensor, response_bk3: Tensor | None = None) -> Tensor:
        """Project with the stored response (darkening first), or with one response per sample
        (B, bands, 3) and no darkening: training renders every patch through its own camera."""
        if response_bk3 is None:
            return self.correct(hsi, rgb)[0]
        return project(hsi, rgb, response_bk3)


def darkening_gain(rendered: Tensor, rgb: Tensor) -> Tensor:
    """Per pixel, (B, 1, H, W): the least-squares scale of `rendered` onto `rgb`, clamped to [0, 1].

    In float32 whatever the compute dtype: a near-black pixel's squared norm underflows half floats.
    """
    r = rendered.float()
    num = (rgb.float() * r).sum(1, keepdim=True)
    den = r.square().sum(1, keepdim=True)
    return (num / den.clamp_min(torch.finfo(torch.float32).tiny)).clamp(0.0, 1.0).to(rendered.dtype)


def project(hsi: Tensor, rgb: Tensor, response_bk3: Tensor) -> Tensor:
    """The projection with a response per sample, (B, bands, 3); differentiable in `hsi`."""
    r = response_bk3.to(hsi.dtype)
    lift = r @ torch.linalg.inv(r.transpose(1, 2) @ r)  # (B, bands, 3)
    error = rgb - torch.einsum("bkhw,bkc->bchw", hsi, r)
    return (hsi + torch.einsum("bkc,bchw->bkhw", lift, error)).clamp_min(0.0)
