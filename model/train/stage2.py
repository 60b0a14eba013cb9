"""Stage 2 (and the learned baselines): train an RGB -> HSI network on rendered CAVE patches.

GANet is built on stage 1's frozen MoC, Algorithm-2 decoder and CAVE output conv; its decoder-side
latents are gradually replaced by their codewords (`a` ramps 0 -> 1 over the first half). MST++
trains through the same loop, data, loss and budget, so the comparison is like for like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from model.config import GANetConfig
from model.data import RGBHSIPatchDataset
from model.ganet import GANet
from model.losses import DEFAULT_LOSS, LOSSES
from model.train.loop import (
    Dist,
    LoopConfig,
    RunLog,
    batch_at,
    cosine_lr,
    load_state,
    loop_config_dict,
    save_state,
)
from model.vqvae import VQVAE

Predict = Callable[..., Tensor]  # (model, rgb, *whatever else the dataset yields) -> hsi


def build_ganet(vq: VQVAE, moc: list[Tensor], dataset: str, base: GANetConfig) -> GANet:
    """A GANet whose frozen parts are stage 1's MoC, decoder and the output conv of `dataset`."""
    ds = vq.cfg.dataset_index(dataset)
    cfg = replace(
        base,
        latent_dim=vq.cfg.latent_dim,
        scales=vq.cfg.scales,
        moc_sizes=tuple(m.shape[0] for m in moc),
        out_bands=vq.cfg.datasets[ds].bands,
        normalized=vq.cfg.normalized,
        shape_gain=vq.cfg.shape_gain,
    )
    net = GANet(cfg)
    net.load_stage1(moc, vq.decoder, vq.out_convs[ds])
    return net


def predict_ganet(model: nn.Module, rgb: Tensor, response: Tensor | None = None) -> Tensor:
    """GANet's output; projected through each sample's camera when the data yields responses."""
    out: Tensor = model(rgb, response=response).hsi
    return out


def predict_tensor(model: nn.Module, rgb: Tensor) -> Tensor:
    out: Tensor = model(rgb)
    return out


def train_rgb2hsi(
    model: nn.Module,
    predict: Predict,
    data: RGBHSIPatchDataset,
    loop: LoopConfig,
    out: Path,
    d: Dist,
    name: str,
    loss_name: str = DEFAULT_LOSS,
) -> nn.Module:
    """`LOSSES[loss_name]`, AdamW with warm-up + cosine schedule, resumable; DDP when `d.world` > 1."""
    loss_fn = LOSSES[loss_name]
    model = model.to(d.device).to(memory_format=torch.channels_last).train()  # type: ignore[call-overload]
    wrapped: nn.Module = DistributedDataParallel(model) if d.world > 1 else model
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=loop.lr, weight_decay=loop.weight_decay)
    state_path = out / f"{name}.state.pt"
    start = load_state(state_path, model, opt)[0] if state_path.exists() else 0
    run = RunLog(out, name, loop.steps, start, d, {"loop": loop_config_dict(loop), "loss": loss_name})
    skipped = 0
    for step in range(start, loop.steps):
        if isinstance(model, GANet):
            model.set_replacement(step / max(1, loop.steps // 2))
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, loop.steps, loop.lr, loop.warmup)
        rgb, hsi, *extra = (t.to(d.device) for t in batch_at(data, loop.batch, step, d))
        loss = loss_fn(predict(wrapped, rgb, *extra), hsi)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        if torch.isfinite(loss) and torch.isfinite(grad_norm):
            opt.step()
        else:  # a non-finite step would poison Adam's moments: skip it and count it
            skipped += 1
        run.step(
            step, {"loss": loss.item(), "lr": opt.param_groups[0]["lr"], "skipped": skipped}, loop.log_every
        )
        if d.main and ((step + 1) % loop.ckpt_every == 0 or step + 1 == loop.steps):
            save_state(state_path, step + 1, model, opt)
    if isinstance(model, GANet):
        model.set_replacement(1.0)
    run.close({"steps": loop.steps}, model)
    return model.eval()
