"""Frozen, typed hyperparameters for every network; each checkpoint stores its config.

The defaults follow `shared/design/MODEL.md` (MCGA-S2: d = 32, S = 2, K = 512, T = 64).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

AttentionKind = Literal["quantized", "full"]


@dataclass(frozen=True)
class DatasetSpec:
    """One HSI source of stage 1: its name and its band centres in nanometres."""

    name: str
    wavelengths_nm: tuple[float, ...]

    @property
    def bands(self) -> int:
        return len(self.wavelengths_nm)


CAVE_WAVELENGTHS: tuple[float, ...] = tuple(float(400 + 10 * i) for i in range(31))


@dataclass(frozen=True)
class VQVAEConfig:
    """Stage 1: one shared multi-scale VQ-VAE trunk with per-dataset heads and codebooks."""

    datasets: tuple[DatasetSpec, ...] = (DatasetSpec("cave", CAVE_WAVELENGTHS),)
    latent_dim: int = 32
    scales: int = 2
    codebook_size: int = 512
    # MODEL.md's band masking (0.5) measured worse on CAVE's validation scenes, HSI -> codes -> HSI
    # after 1,500 steps: MRAE>=0.01 2.02 masked vs 0.56 unmasked (l2-normalised codes). Off by default.
    mask_ratio: float = 0.0
    commitment: float = 0.25
    normalized: bool = True  # l2-normalised features and codewords (see vqvae.py)
    # With `normalized`: the decoder reads codeword x feature norm (shape-gain VQ). Measured as above,
    # straight-through decoder input: MRAE>=0.01 0.375 / RMSE 0.0376 without, 0.323 / 0.0290 with.
    shape_gain: bool = True
    charbonnier_eps: float = 1e-6
    recon_loss: str = "charbonnier"  # or "relative" (model/losses.py)

    def __post_init__(self) -> None:
        if self.scales < 1:
            raise ValueError("scales must be >= 1")
        if not self.datasets:
            raise ValueError("stage 1 needs at least one dataset")
        if self.recon_loss not in ("charbonnier", "relative"):
            raise ValueError(f"recon_loss must be 'charbonnier' or 'relative', not {self.recon_loss!r}")
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names must be unique: {names}")

    def dataset_index(self, name: str) -> int:
        for i, spec in enumerate(self.datasets):
            if spec.name == name:
                return i
        raise KeyError(f"unknown dataset {name!r}; known: {[d.name for d in self.datasets]}")


@dataclass(frozen=True)
class GANetConfig:
    """Stage 2: the Grayscale-Aware U-Net that maps RGB into the MoC and decodes with stage 1's decoder."""

    in_channels: int = 3
    out_bands: int = 31
    latent_dim: int = 32
    scales: int = 2
    moc_sizes: tuple[int, ...] = (1024, 1024)
    normalized: bool = True  # searches on l2-normalised vectors; must match the stage 1 it decodes with
    shape_gain: bool = True  # latents keep their norm (must match stage 1, like `normalized`)
    # In eval mode, project the output onto the cubes that render to the input through the stored
    # camera response (model/layers/consistency.py); training sees many cameras, so it is off there.
    camera_consistency: bool = False
    encoder_blocks: tuple[int, ...] = (1, 2)
    decoder_blocks: tuple[int, ...] = (1, 2)
    head_dim: int = 32
    top_t: int = 64
    attention: AttentionKind = "quantized"
    full_attention_max_pixels: int = 64 * 64
    ffn_expansion: int = 2
    ga_eps: float = 1e-6
    # softmax(-D / tau) of the TTA entropy. MODEL.md chose 1; on unit-norm codewords (D <= 4) that
    # softmax is nearly flat. Chosen on 8 CAVE training scenes at -10% brightness, one-shot 10 steps
    # (README, "Results"): MRAE 0.337 plain, 0.343 at tau 1, 0.328 at 0.1, 0.333 at 0.05.
    tta_tau: float = 0.1
    # Pixels per search entering the TTA entropy (a strided subsample above it). 4096 measured the same
    # TTA as 16384 (8 CAVE training scenes, -10%, 10 steps: MRAE 0.32833 vs 0.32835; d = 16, tau 1:
    # 0.39466 vs 0.39451) at 0.81x the adapting frame's time at 128^2 (README, "Results").
    entropy_max_pixels: int = 4096
    search_chunk: int = 4096

    def __post_init__(self) -> None:
        if len(self.encoder_blocks) != self.scales or len(self.decoder_blocks) != self.scales:
            raise ValueError("encoder_blocks and decoder_blocks need one entry per scale")
        if len(self.moc_sizes) != self.scales:
            raise ValueError("moc_sizes needs one entry per scale (coarsest first)")
        if self.attention not in ("quantized", "full"):
            raise ValueError(f"attention must be 'quantized' or 'full', not {self.attention!r}")

    @property
    def multiple(self) -> int:
        """Inputs are padded to a multiple of this (2^S covers the U-Net and the codebook scales)."""
        return 2**self.scales


@dataclass(frozen=True)
class MSTPPConfig:
    """MST++ (Cai et al., CVPR-W 2022) at its published defaults: 1.62 M parameters, 31 bands."""

    in_channels: int = 3
    out_channels: int = 31
    n_feat: int = 31
    stages: int = 3


@dataclass(frozen=True)
class TTAConfig:
    """Test-time adaptation: Adam on the GA parameters, entropy of codebook queries as the loss."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    window: int = 8
    reset_ratio: float = 1.2


ConfigT = VQVAEConfig | GANetConfig | MSTPPConfig | TTAConfig


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config dataclass (tuples become lists)."""
    return asdict(cfg)


def _coerce(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_coerce(v) for v in value)
    if isinstance(value, dict) and {"name", "wavelengths_nm"} <= set(value):
        return DatasetSpec(value["name"], tuple(float(w) for w in value["wavelengths_nm"]))
    return value


def config_from_dict(cls: type[Any], data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from `config_to_dict` output, ignoring nothing silently."""
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    return cls(**{k: _coerce(v) for k, v in data.items()})


__all__ = [
    "CAVE_WAVELENGTHS",
    "AttentionKind",
    "ConfigT",
    "DatasetSpec",
    "GANetConfig",
    "MSTPPConfig",
    "TTAConfig",
    "VQVAEConfig",
    "config_from_dict",
    "config_to_dict",
]
