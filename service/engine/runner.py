"""The runner: the only owner of torch, the weights and the device. Called from one worker thread.

It loads a GANet checkpoint, picks the device (CUDA when present unless told otherwise), warms up,
and turns a batch of `WorkItem`s into `WorkOutput`s: frames of one padded shape share a forward
pass (and one backward for the adapting ones); frames above the tile size run tiled. Session state
crosses this boundary only as bytes, and a state adapted for other weights is reset, never injected.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from model.checkpoint import CheckpointError, load_checkpoint
from model.ganet import GANet
from model.padding import pad_to_multiple
from model.tta import GAState, Outcome, TTAAdapter
from service.contracts import ModelInfo
from service.engine.adaptation import PassResult, run_group
from service.engine.codec import CodecError, decode_state, encode_state
from service.engine.physics import CameraResponse
from service.engine.tiling import centre_tile, run_tiled
from service.engine.work import WorkItem, WorkOutput
from service.errors import (
    DeadlineExceededError,
    InternalError,
    InvalidInputError,
    ModelLoadError,
    RequestCancelledError,
    ServiceError,
)
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_RANGE_TOL = 1e-3
_CPU_BATCH_PIXELS = 65_536  # 16 frames of 64^2, 4 of 128^2, 1 of 256^2


def pick_device(preference: str) -> torch.device:
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {preference!r} asked for, but CUDA is not available")
    return device


def needs_tiling(height: int, width: int, tile_size: int) -> bool:
    return height > tile_size or width > tile_size


@dataclass
class _Prepared:
    state: GAState | None
    reset: bool  # the stored state was for other weights (or unreadable): started afresh


class Runner:
    def __init__(self, settings: Settings, metrics: Metrics, weights: Path | None = None) -> None:
        self.settings, self.metrics = settings, metrics
        path = Path(weights or settings.weights)
        if settings.torch_threads:  # the process's one torch user sets the process's thread count
            torch.set_num_threads(settings.torch_threads)
        self.device = pick_device(settings.device)
        dtype = _DTYPES[settings.dtype]
        if dtype != torch.float32 and self.device.type != "cuda":
            log.warning("dtype %s needs CUDA; computing in float32 on %s", settings.dtype, self.device)
            dtype = torch.float32
        self.dtype = dtype
        on_gpu = self.device.type == "cuda"
        # Settings' 0 means "the device's default": on CPU batch 8 at 256^2 measured 0.57-0.85x the
        # throughput of batch 1, and 4 tiles of 512^2 per pass peaked a 4K frame at 5.8 GB RSS.
        self.batch_pixels = settings.max_batch_pixels or (0 if on_gpu else _CPU_BATCH_PIXELS)  # 0: no cap
        self.tile_batch = settings.tile_batch or (4 if on_gpu else 1)
        try:
            ckpt = load_checkpoint(path, map_location="cpu")
        except CheckpointError as exc:
            raise ModelLoadError(str(exc)) from exc
        if ckpt.kind != "ganet" or not isinstance(ckpt.model, GANet):
            raise ModelLoadError(f"{path}: a {ckpt.kind!r} checkpoint; the server needs a GANet")
        self.model: GANet = ckpt.model.to(self.device)
        self.version = ckpt.version
        bands = self.model.cfg.out_bands
        wavelengths = tuple(float(w) for w in ckpt.metadata.get("wavelengths_nm", ()))
        if len(wavelengths) != bands:
            raise ModelLoadError(f"{path}: metadata needs 'wavelengths_nm' with {bands} entries")
        self.wavelengths = wavelengths
        self.camera: CameraResponse | None = None
        try:
            self.camera = CameraResponse.from_metadata(ckpt.metadata.get("camera"))
        except ValueError as exc:
            log.warning("%s: no usable camera response (%s): re-projection check off", path, exc)
        if self.camera is not None and self.camera.bands != bands:
            log.warning("%s: camera response has %d bands, model %d", path, self.camera.bands, bands)
            self.camera = None
        self.adapter = TTAAdapter(self.model)
        self.multiple = self.model.cfg.multiple
        self.state_bytes = len(encode_state(self.adapter.initial_state(), self.version))
        if self.state_bytes > settings.session_max_bytes:
            raise ModelLoadError(
                f"a session of this model takes {self.state_bytes} bytes > session_max_bytes "
                f"{settings.session_max_bytes}"
            )
        self.info = ModelInfo(
            name="mcga",
            version=self.version,
            bands=self.model.cfg.out_bands,
            wavelengths_nm=self.wavelengths,
            scales=self.model.cfg.scales,
            multiple=self.multiple,
            parameters=sum(p.numel() for p in self.model.parameters()),
            camera=self.camera.name if self.camera else None,
            device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."),
        )
        log.info("loaded %s (version %s) on %s/%s", path, self.version, self.device, self.info.dtype)

    def warmup(self) -> None:
        """A plain pass and one adaptation step, so the first request pays no start-up costs."""
        side = self.settings.warmup_size
        if side == 0:
            return
        rgb = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
        plain, adapt = WorkItem(rgb), WorkItem(rgb, session=True, steps=1)
        for out in self.run([plain, adapt]):
            if isinstance(out, ServiceError):
                raise ModelLoadError(f"warm-up failed: {out.message}")

    # ---- one batch -------------------------------------------------------------------------
    def padded_shape(self, height: int, width: int) -> tuple[int, int]:
        """A frame's size in model multiples after padding: frames of one padded shape share a pass."""
        return -(-height // self.multiple), -(-width // self.multiple)

    def frames_per_pass(self, padded: tuple[int, int]) -> int:
        """Frames of one padded shape (in model multiples) per forward pass: the pixel budget's share,
        at least 1; `max_batch` where there is no budget (CUDA by default)."""
        if self.batch_pixels == 0:
            return self.settings.max_batch
        return max(1, self.batch_pixels // max(1, padded[0] * padded[1] * self.multiple**2))

    def run(self, items: Sequence[WorkItem]) -> list[WorkOutput | ServiceError]:
        """One output (or a per-item error) per item, in order; frames of one shape run together, as
        many per pass as `frames_per_pass` allows."""
        results: list[WorkOutput | ServiceError | None] = [None] * len(items)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, item in enumerate(items):
            err = item.watch.stop_reason() or self._check(item.rgb_hwc)
            if err is not None:
                results[i] = err
                continue
            H, W, _ = item.rgb_hwc.shape
            if needs_tiling(H, W, self.settings.tile_size):
                results[i] = self._isolated([item])[0]
            else:
                groups.setdefault(self.padded_shape(H, W), []).append(i)
        for shape, idx in groups.items():
            per_pass = self.frames_per_pass(shape)
            for start in range(0, len(idx), per_pass):
                chunk = idx[start : start + per_pass]
                for i, out in zip(chunk, self._isolated([items[i] for i in chunk]), strict=True):
                    results[i] = out
        self._record_memory()
        if any(r is None for r in results):
            raise RuntimeError("runner left an item without a result")
        return [r for r in results if r is not None]

    def _isolated(self, items: list[WorkItem]) -> list[WorkOutput | ServiceError]:
        """A group's outputs (one item: tiled when it needs it). When the pass fails, each frame runs
        again alone, so a frame that cannot run (a state no check caught, a device fault) fails by
        itself, not with its batch-mates; running again is safe, as a pass changes no state in place."""
        try:
            H, W, _ = items[0].rgb_hwc.shape
            if len(items) == 1 and needs_tiling(H, W, self.settings.tile_size):
                return [self._run_tiled(items[0])]
            return list(self._run_group(items))
        except (DeadlineExceededError, RequestCancelledError) as exc:  # stopped on purpose: no traceback
            log.info("a frame stopped early: %s", exc.message)
            return [exc] * len(items)
        except Exception as exc:
            if len(items) > 1:
                log.exception("a pass of %d frames failed; running them one at a time", len(items))
                return [out for item in items for out in self._isolated([item])]
            log.exception("a frame failed")
            return [exc if isinstance(exc, ServiceError) else InternalError("inference failed")]

    @staticmethod
    def _check(rgb: np.ndarray) -> InvalidInputError | None:
        if not np.isfinite(rgb).all():
            return InvalidInputError("the image holds NaN or infinite values")
        lo, hi = float(rgb.min()), float(rgb.max())
        if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
            return InvalidInputError(f"values must lie in [0, 1] (linear RGB); got [{lo:.4g}, {hi:.4g}]")
        return None

    def _prepare(self, item: WorkItem) -> _Prepared:
        if not item.session:
            return _Prepared(self.adapter.initial_state() if item.steps > 0 else None, False)
        if item.state is None:
            return _Prepared(self.adapter.initial_state(), False)
        try:
            decoded = decode_state(item.state, self.device)
        except CodecError as exc:
            log.warning("unreadable session state, reset: %s", exc)
            return _Prepared(self.adapter.initial_state(), True)
        state = decoded.state
        fits = state.params.keys() == set(self.adapter.names) and all(
            state.params[n].shape == self.adapter.trained[n].shape for n in self.adapter.names
        )
        if decoded.model_version != self.version or not fits:
            return _Prepared(GAState.fresh(self.adapter.trained, resets=state.resets + 1), True)
        return _Prepared(state, False)

    def _tensor(self, rgb_nhwc: np.ndarray) -> Tensor:
        x = torch.from_numpy(np.ascontiguousarray(rgb_nhwc, dtype=np.float32)).to(self.device)
        return x.permute(0, 3, 1, 2)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, self.dtype, enabled=self.dtype != torch.float32)

    def _pass(
        self, x: Tensor, states: list[GAState | None], steps: list[int], one_shot: list[bool]
    ) -> PassResult:
        with self._autocast():
            return run_group(self.adapter, x, states, steps, one_shot)

    def _run_group(self, items: list[WorkItem]) -> list[WorkOutput]:
        t0 = time.perf_counter()
        prepared = [self._prepare(it) for it in items]
        # Replicate-pad each frame to the model's multiple, exactly as the model pads one frame alone;
        # the batcher grouped the frames so that they all pad to one shape.
        x = torch.cat([pad_to_multiple(self._tensor(it.rgb_hwc[None]), self.multiple)[0] for it in items])
        res = self._pass(
            x,
            [p.state for p in prepared],
            [it.steps if p.state is not None else 0 for p, it in zip(prepared, items, strict=True)],
            [not it.session and it.steps > 0 for it in items],
        )
        cubes = res.hsi_bchw.float().permute(0, 2, 3, 1).cpu().numpy()
        elapsed = time.perf_counter() - t0
        outputs = []
        for b, (item, prep) in enumerate(zip(items, prepared, strict=True)):
            H, W, _ = item.rgb_hwc.shape
            cube = np.ascontiguousarray(cubes[b, :H, :W])
            # The residual over the frame's pixels, not the padding the group added around it.
            r = None if res.input_residual is None else float(res.input_residual[b, :H, :W].float().mean())
            outputs.append(self._output(item, prep, res, b, cube, elapsed, tiled=False, residual=r))
        return outputs

    def _run_tiled(self, item: WorkItem) -> WorkOutput:
        """Tiles share the frame's parameters; adaptation steps see the centre tile only."""
        t0 = time.perf_counter()
        prepared = self._prepare(item)
        state = prepared.state
        res = PassResult(torch.empty(0), [state], [Outcome.NONE], [None], 0.0)
        if state is not None and item.steps > 0:
            centre = self._tensor(centre_tile(item.rgb_hwc, self.settings.tile_size)[None])
            res = self._pass(centre, [state], [item.steps], [False])
        # A stream's output uses the parameters before this frame's steps; one-shot uses the adapted ones.
        forward_state = state if item.session else res.states[0]

        tile_residuals: list[float] = []

        def tiles_fn(rgb_nhwc: np.ndarray) -> np.ndarray:
            stop = item.watch.stop_reason()  # a large frame nobody waits for stops between tiles
            if stop is not None:
                raise stop
            n = rgb_nhwc.shape[0]
            out = self._pass(self._tensor(rgb_nhwc), [forward_state] * n, [0] * n, [False] * n)
            if out.input_residual is not None:  # tiles are never padded here: all their pixels count
                tile_residuals.extend(float(r) for r in out.input_residual.float().mean(dim=(1, 2)))
            return out.hsi_bchw.float().permute(0, 2, 3, 1).cpu().numpy()

        s = self.settings
        cube = run_tiled(
            item.rgb_hwc,
            tiles_fn,
            bands=self.model.cfg.out_bands,
            tile=s.tile_size,
            overlap=s.tile_overlap,
            tile_batch=self.tile_batch,
        )
        frame_residual = sum(tile_residuals) / len(tile_residuals) if tile_residuals else None
        return self._output(
            item, prepared, res, 0, cube, time.perf_counter() - t0, tiled=True, residual=frame_residual
        )

    def _reprojection_error(
        self, residual: float | None, cube_hwc: np.ndarray, rgb_hwc: np.ndarray
    ) -> float | None:
        """Input-contract drift: what a camera-consistent model's projection had to correct (the mean
        squared `residual` over the frame's own pixels), else the RMSE between the input and the
        output rendered through the checkpoint's camera."""
        if residual is not None:
            return math.sqrt(max(0.0, residual))
        return self.camera.reprojection_error(cube_hwc, rgb_hwc) if self.camera else None

    def _output(
        self,
        item: WorkItem,
        prepared: _Prepared,
        res: PassResult,
        b: int,
        cube_hwc: np.ndarray,
        elapsed: float,
        *,
        tiled: bool,
        residual: float | None,
    ) -> WorkOutput:
        state = res.states[b]
        outcome = Outcome.RESET if prepared.reset else res.outcomes[b]
        # Write back what changed: an adapted or reset session (a dropped step changed nothing).
        write = item.session and outcome in (Outcome.ADAPTED, Outcome.RESET)
        error = self._reprojection_error(residual, cube_hwc, item.rgb_hwc)
        return WorkOutput(
            cube_hwc=cube_hwc,
            model_version=self.version,
            wavelengths_nm=self.wavelengths,
            outcome=outcome.value,
            entropy=res.entropy[b],
            state=encode_state(state, self.version) if write and state is not None else None,
            step=state.step if item.session and state is not None else None,
            reprojection_error=error,
            inference_s=elapsed,
            tta_s=res.tta_s,
            tiled=tiled,
        )

    def _record_memory(self) -> None:
        if self.device.type == "cuda":
            self.metrics.device_memory.labels("allocated").set(torch.cuda.memory_allocated(self.device))
            self.metrics.device_memory.labels("reserved").set(torch.cuda.memory_reserved(self.device))
