"""A session's TTA state as bytes: safetensors (raw little-endian tensors + a JSON header), no pickle.

Tensors: `p/<name>` GA parameters, `m/<name>` and `v/<name>` Adam moments, all float32 on CPU.
Header metadata: format, the model version the state was adapted for, step, resets and the entropy
histories the safety rule needs. The store's compare-and-set version lives beside the blob, not in it.
Torch is involved, so encoding and decoding run in the device worker thread.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from model.tta import GAState

FORMAT = "mcga-ga-state/1"
_PREFIXES = ("p/", "m/", "v/")


class CodecError(ValueError):
    """Bytes that are not a session state of this format."""


@dataclass
class DecodedState:
    state: GAState
    model_version: str


def encode_state(state: GAState, model_version: str) -> bytes:
    tensors: dict[str, torch.Tensor] = {}
    for prefix, group in zip(_PREFIXES, (state.params, state.exp_avg, state.exp_avg_sq), strict=True):
        for name, t in group.items():
            tensors[prefix + name] = t.detach().to("cpu", torch.float32).contiguous()
    meta = {
        "format": FORMAT,
        "model_version": model_version,
        "step": str(state.step),
        "resets": str(state.resets),
        "first_entropies": json.dumps(state.first_entropies),
        "recent_entropies": json.dumps(state.recent_entropies),
    }
    return st_save(tensors, metadata=meta)


def _header(blob: bytes) -> dict[str, str]:
    """The safetensors metadata, read from the header alone."""
    if len(blob) < 8:
        raise CodecError("too short for a safetensors header")
    n = int.from_bytes(blob[:8], "little")
    if n > len(blob) - 8:
        raise CodecError("header length beyond the data")
    try:
        meta = json.loads(blob[8 : 8 + n]).get("__metadata__", {})
    except (ValueError, AttributeError) as exc:
        raise CodecError(f"unreadable header: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CodecError(f"not a {FORMAT} blob")
    return {str(k): str(v) for k, v in meta.items()}


def decode_state(blob: bytes, device: torch.device | str = "cpu") -> DecodedState:
    meta = _header(blob)
    try:
        tensors = st_load(blob)
        groups: list[dict[str, torch.Tensor]] = [{}, {}, {}]
        for key, t in tensors.items():
            groups[_PREFIXES.index(key[:2])][key[2:]] = t.to(device, torch.float32)
        state = GAState(
            params=groups[0],
            exp_avg=groups[1],
            exp_avg_sq=groups[2],
            step=int(meta["step"]),
            first_entropies=[float(x) for x in json.loads(meta["first_entropies"])],
            recent_entropies=[float(x) for x in json.loads(meta["recent_entropies"])],
            resets=int(meta["resets"]),
        )
        version = meta["model_version"]
    except (SafetensorError, KeyError, ValueError, TypeError) as exc:
        raise CodecError(f"corrupt session state: {exc}") from exc
    _check(state)
    return DecodedState(state, version)


def _check(state: GAState) -> None:
    """What an Adam step on this state needs: moments shaped as their parameters, finite values, a
    non-negative second moment. Anything else came from corruption, never from `TTAAdapter`, whose
    steps drop non-finite gradients."""
    if not (state.params.keys() == state.exp_avg.keys() == state.exp_avg_sq.keys()):
        raise CodecError("parameters and moments name different tensors")
    for name, p in state.params.items():
        if state.exp_avg[name].shape != p.shape or state.exp_avg_sq[name].shape != p.shape:
            raise CodecError(f"moments of {name!r} are not shaped as the parameter {tuple(p.shape)}")
    groups = (state.params, state.exp_avg, state.exp_avg_sq)
    if not all(bool(torch.isfinite(t).all()) for g in groups for t in g.values()):
        raise CodecError("non-finite values in the state")
    if any(bool((v < 0).any()) for v in state.exp_avg_sq.values()):
        raise CodecError("a negative second moment")
    history = state.first_entropies + state.recent_entropies
    if not all(math.isfinite(e) for e in history) or state.step < 0 or state.resets < 0:
        raise CodecError("non-finite entropy history or a negative step or reset count")
