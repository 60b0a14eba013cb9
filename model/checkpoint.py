"""Checkpoints that rebuild their model from the file alone.

A checkpoint is `{format_version, kind, config, state_dict, metadata}` saved with `torch.save` and
read back with `weights_only=True` (no pickle of arbitrary objects). `metadata` holds what serving
and provenance need: band wavelengths, the training camera response, the data and the run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.config import GANetConfig, MSTPPConfig, VQVAEConfig, config_from_dict, config_to_dict
from model.ganet import GANet
from model.mstpp import MSTPlusPlus
from model.vqvae import VQVAE

FORMAT_VERSION = 1
BUNDLED_WEIGHTS = Path(__file__).resolve().parent / "weights" / "mcga_s2.pt"

_KINDS: dict[str, tuple[type[Any], type[nn.Module]]] = {
    "ganet": (GANetConfig, GANet),
    "vqvae": (VQVAEConfig, VQVAE),
    "mstpp": (MSTPPConfig, MSTPlusPlus),
}


class CheckpointError(ValueError):
    """A checkpoint file that cannot rebuild its model (names the file)."""


@dataclass
class Checkpoint:
    kind: str
    model: nn.Module
    metadata: dict[str, Any]
    version: str  # content hash of the file: identifies the weights a session was adapted for


def _kind_of(model: nn.Module) -> str:
    for kind, (_, cls) in _KINDS.items():
        if isinstance(model, cls):
            return kind
    raise TypeError(f"no checkpoint kind for {type(model).__name__}")


def save_checkpoint(path: str | Path, model: nn.Module, metadata: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "kind": _kind_of(model),
        "config": config_to_dict(model.cfg),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "metadata": metadata or {},
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def file_version(path: str | Path) -> str:
    """First 16 hex digits of the file's SHA-256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _load_failure(exc: Exception) -> str:
    """What torch.load said, without its advice to retry with weights_only=False (which would run
    pickled code from the file): for a refused pickle, the refusal itself ("Unsupported operand
    103", "Unsupported global: ..."), else the message's first line."""
    text = str(exc).strip()
    if text.startswith("Weights only load failed"):  # its first paragraph is the advice
        lines = [line.strip() for line in text.splitlines()[1:]]
        kept = [
            line.split("WeightsUnpickler error:", 1)[-1].strip()
            for line in lines
            if line and not line.startswith("Check the documentation")
        ]
        detail = " ".join(k for k in kept if k) or "refused by the safe loader"
        return f"not plain tensors and numbers ({detail})"
    return text.splitlines()[0] if text else type(exc).__name__


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({_load_failure(exc)})") from exc
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format {payload.get('format_version')!r}"
            if isinstance(payload, dict)
            else f"{path}: not a checkpoint"
        )
    kind = payload.get("kind")
    if kind not in _KINDS:
        raise CheckpointError(f"{path}: unknown model kind {kind!r}")
    cfg_cls, model_cls = _KINDS[kind]
    try:
        model = model_cls(config_from_dict(cfg_cls, payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return Checkpoint(kind, model.eval(), dict(payload.get("metadata", {})), file_version(path))
