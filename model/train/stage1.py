"""Stage 1: train the shared VQ-VAE trunk over every source at once, then assemble the pruned MoC.

Each step draws one batch per source and sums their losses (each source through its own input
conv, codebooks and output conv), so the shared latent space is shaped by all of them.
Dead codes: after 25 and 100 steps and then every `restart_every` steps, codes no sample used in
that window are moved onto random current encoder features (a data-dependent restart; the early
ones matter most, since N(0, 1) codewords start far from the small initial encoder features).
MODEL.md asks for loss-trained codebooks from N(0, 1) and warns that collapse is the usual failure;
the log records per-source perplexity and dead counts, and `restart_every=0` turns restarts off.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from model.config import VQVAEConfig
from model.data import HSIPatchDataset
from model.layers.vq import CodebookUsage, UsageCounter
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
from model.train.sources import Source
from model.vqvae import VQVAE, VQOutput


class AllSources(nn.Module):
    """One forward over one batch per source (a single DDP forward per step)."""

    def __init__(self, vq: VQVAE) -> None:
        super().__init__()
        self.vq = vq

    def forward(self, batches: list[Tensor]) -> list[VQOutput]:
        return [self.vq(x, i) for i, x in enumerate(batches)]


@torch.no_grad()
def restart_dead_codes(
    vq: VQVAE, counters: list[list[UsageCounter]], outs: list[VQOutput], gen: torch.Generator
) -> int:
    """Move codes unused in the window onto random encoder features of the last batch; returns how many."""
    moved = 0
    for ds, per_scale in enumerate(counters):
        for scale, counter in enumerate(per_scale):
            dead = (counter.counts == 0).nonzero().flatten()
            if dead.numel() == 0:
                continue
            f = outs[ds].features[scale]
            pool = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
            pick = torch.randint(0, pool.shape[0], (dead.numel(),), generator=gen)
            noise = 0.01 * torch.randn(dead.numel(), pool.shape[1], generator=gen)
            vq.codebooks.data[ds, scale, dead.to(vq.codebooks.device)] = pool[
                pick.to(pool.device)
            ] + noise.to(pool.device)
            moved += dead.numel()
    return moved


def train_stage1(
    sources: list[Source], cfg: VQVAEConfig, loop: LoopConfig, out: Path, d: Dist, restart_every: int = 200
) -> VQVAE:
    torch.manual_seed(loop.seed)
    vq = VQVAE(cfg).to(d.device)
    step_module: nn.Module = AllSources(vq)
    if d.world > 1:
        step_module = DistributedDataParallel(step_module)
    opt = torch.optim.AdamW(vq.parameters(), lr=loop.lr, weight_decay=loop.weight_decay)
    data = [
        HSIPatchDataset(list(s.cubes), i, loop.patch, length=1 << 30, seed=loop.seed)
        for i, s in enumerate(sources)
    ]
    state_path = out / "stage1.state.pt"
    start, extra = load_state(state_path, vq, opt) if state_path.exists() else (0, {})
    run = RunLog(
        out, "stage1", loop.steps, start, d, {"loop": loop_config_dict(loop), "restart_every": restart_every}
    )
    counters = [[UsageCounter(cfg.codebook_size) for _ in range(cfg.scales)] for _ in sources]
    gen = torch.Generator().manual_seed(loop.seed)
    if "gen" in extra:  # a resumed run restarts dead codes as the uninterrupted one would
        gen.set_state(extra["gen"])
        for per_scale, saved in zip(counters, extra["counts"], strict=True):
            for counter, counts in zip(per_scale, saved, strict=True):
                counter.counts = counts
    for step in range(start, loop.steps):
        torch.manual_seed(loop.seed * 1_000_003 + step * d.world + d.rank)  # band masks, per rank and step
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, loop.steps, loop.lr, loop.warmup)
        batches = [batch_at(ds, loop.batch, step, d)[0].to(d.device) for ds in data]
        outs: list[VQOutput] = step_module(batches)
        loss = torch.stack([o.loss for o in outs]).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for ds_counters, o in zip(counters, outs, strict=True):
            for counter, idx in zip(ds_counters, o.idx, strict=True):
                counter.update(idx)
        metrics = {"loss": loss.item(), "lr": opt.param_groups[0]["lr"]}
        for s, o in zip(sources, outs, strict=True):
            metrics[f"{s.spec.name}_recon"] = o.recon_loss.item()
        if restart_every and ((step + 1) in (25, 100) or (step + 1) % restart_every == 0):
            for s, per_scale in zip(sources, counters, strict=True):
                usage = per_scale[-1].usage()
                metrics[f"{s.spec.name}_perplexity"], metrics[f"{s.spec.name}_dead"] = (
                    usage.perplexity,
                    usage.dead,
                )
            if step + 1 < loop.steps * 3 // 4:  # let the codebooks settle before the end
                if d.main:
                    metrics["restarted"] = restart_dead_codes(vq, counters, outs, gen)
                if d.world > 1:
                    dist.broadcast(vq.codebooks.data, src=0)
            counters = [[UsageCounter(cfg.codebook_size) for _ in range(cfg.scales)] for _ in sources]
        run.step(step, metrics, loop.log_every)
        if d.main and ((step + 1) % loop.ckpt_every == 0 or step + 1 == loop.steps):
            # With the dead-code window's counts and the restarts' generator: both steer the
            # restarts after a resume (without them a resumed run drew other codes).
            counts = [[c.counts for c in per_scale] for per_scale in counters]
            save_state(state_path, step + 1, vq, opt, {"counts": counts, "gen": gen.get_state()})
    run.close({"steps": loop.steps}, vq)
    return vq


@torch.no_grad()
def code_usage(vq: VQVAE, sources: list[Source], seed: int = 0) -> list[list[Tensor]]:
    """Per source and scale, how often each code is chosen over the source's full training cubes,
    both as trained (band-masked) and unmasked."""
    gen = torch.Generator().manual_seed(seed)
    counts = []
    for i, src in enumerate(sources):
        per_scale = [UsageCounter(vq.cfg.codebook_size) for _ in range(vq.cfg.scales)]
        for cube in src.cubes:
            x = torch.from_numpy(cube.data).unsqueeze(0)
            for inp in (x, vq.mask_bands(x, gen)):
                qz = vq.quantize(inp.to(vq.codebooks.device), i)
                for counter, idx in zip(per_scale, qz.idx, strict=True):
                    counter.update(idx)
        counts.append([c.counts for c in per_scale])
    return counts


def assemble_moc(vq: VQVAE, counts: list[list[Tensor]]) -> tuple[list[Tensor], dict[str, object]]:
    """MoC per scale (coarsest first): every source's codes used on its training data, concatenated.

    Codes never chosen on the training data can never win a search on it either; dropping them
    shrinks the nearest-codeword search, GANet's largest cost (MODEL.md, "Where inference time goes").
    """
    moc: list[Tensor] = []
    report: dict[str, object] = {}
    for scale in range(vq.cfg.scales):
        parts = []
        for ds, spec in enumerate(vq.cfg.datasets):
            used = counts[ds][scale] > 0
            parts.append(vq.codebooks[ds, scale][used.to(vq.codebooks.device)].detach().cpu())
            usage = CodebookUsage.from_counts(counts[ds][scale])
            report[f"{spec.name}_scale{scale}"] = {
                "used": int(used.sum()),
                "perplexity": round(usage.perplexity, 1),
            }
        moc.append(torch.cat(parts))
    return moc, report
