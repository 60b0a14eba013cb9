"""What the core hands the device worker for one frame, and what comes back (plain data)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WorkItem:
    """One frame. `session`: start from `state` (or fresh when None) and return the new state.
    Without a session, `steps > 0` is one-shot adaptation from the trained parameters."""

    rgb_hwc: np.ndarray  # (H, W, 3) float32 in [0, 1]
    session: bool = False
    state: bytes | None = None
    steps: int = 0


@dataclass(frozen=True)
class WorkOutput:
    cube_hwc: np.ndarray  # (H, W, C) float32
    model_version: str
    wavelengths_nm: tuple[float, ...]
    outcome: str  # a `model.tta.Outcome` value
    entropy: float | None
    state: bytes | None  # the session's new state to write back; None: nothing changed
    step: int | None  # the session's step count after this frame
    reprojection_error: float | None
    inference_s: float
    tta_s: float
    tiled: bool
