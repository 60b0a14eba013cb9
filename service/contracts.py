"""What the front ends hand the inference core and what they get back (no torch here).

The edges decode bytes into a linear-RGB float32 array (H, W, 3) in [0, 1] and encode the
result's cube (H, W, C) float32; everything in between is the core's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class TTAOutcome(StrEnum):
    """What test-time adaptation did for one frame (returned with the response, counted in metrics)."""

    NONE = "none"  # no adaptation asked for
    ADAPTED = "adapted"  # one (or `tta_steps`) steps applied and stored
    DROPPED = "dropped"  # a non-finite loss or gradient: the step was discarded
    RESET = "reset"  # the safety rule, or a model change, put the session back to the trained parameters
    SKIPPED_STORE_UNAVAILABLE = "skipped_store_unavailable"  # store down, fallback "skip": trained params
    KEPT_LOCAL = "kept_local"  # store down: adapted on this replica's copy, written back when it returns
    SKIPPED_CONFLICT = "skipped_conflict"  # lost every compare-and-set race: this frame's step not stored


@dataclass(frozen=True)
class ReconstructRequest:
    rgb: np.ndarray  # (H, W, 3) float32, linear camera RGB in [0, 1]
    session_id: str | None = None  # enables per-session TTA (one stream = one session)
    tta_steps: int | None = None  # session: steps per frame (default from settings); none: one-shot steps
    timeout_s: float | None = None  # the client's deadline, capped by the server's


@dataclass(frozen=True)
class Timings:
    queue_s: float  # waiting for a batch (and for the session's previous frame)
    inference_s: float  # the forward pass(es) of this frame's batch
    tta_s: float  # adaptation steps, included in inference_s
    total_s: float


@dataclass(frozen=True)
class ReconstructResult:
    cube: np.ndarray  # (H, W, C) float32, same H, W as the input
    wavelengths_nm: tuple[float, ...]
    model_version: str
    tta: TTAOutcome
    session_step: int | None  # the session's adaptation step count after this frame
    entropy: float | None  # codebook-query entropy of this frame (when it adapted)
    reprojection_error: float | None  # RMSE input vs cube (before projection) seen by the training camera
    tiled: bool
    timings: Timings


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    version: int  # the store's compare-and-set version
    step: int
    resets: int
    model_version: str
    current_model: bool  # False: adapted for other weights, reset on its next frame
    mean_first_entropy: float | None
    mean_recent_entropy: float | None
    size_bytes: int
    source: str  # "store" or "local" (kept on this replica while the store is down)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    bands: int
    wavelengths_nm: tuple[float, ...]
    scales: int
    multiple: int
    parameters: int
    camera: str | None
    device: str
    dtype: str
