"""What the core hands the device worker for one frame, and what comes back (plain data)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from service.errors import DeadlineExceededError, RequestCancelledError, ServiceError


@dataclass
class Watch:
    """Whether anyone still waits for a frame: set on the event loop, read by the device thread before
    a frame starts and between the tiles of a large one, so that abandoned work stops early."""

    deadline: float = math.inf  # on the time.monotonic clock
    abandoned: bool = False  # the caller went away (or its own deadline timer fired)

    def stop_reason(self) -> ServiceError | None:
        if self.abandoned:
            return RequestCancelledError("nobody waits for this frame any more")
        if time.monotonic() >= self.deadline:
            return DeadlineExceededError("the deadline passed while the frame was running")
        return None


@dataclass(frozen=True)
class WorkItem:
    """One frame. `session`: start from `state` (or fresh when None) and return the new state.
    Without a session, `steps > 0` is one-shot adaptation from the trained parameters."""

    rgb_hwc: np.ndarray  # (H, W, 3) float32 in [0, 1]
    session: bool = False
    state: bytes | None = None
    steps: int = 0
    watch: Watch = field(default_factory=Watch, compare=False)


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
