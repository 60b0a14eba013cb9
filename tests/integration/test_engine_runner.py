"""The runner on a real (tiny) GANet: batched equals one at a time, per-session adaptation inside a
mixed batch equals each session alone, stale sessions reset, tiled frames keep their shape."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from model.checkpoint import load_checkpoint
from model.ganet import GANet
from model.tta import TTAAdapter
from service.engine.codec import decode_state, encode_state
from service.engine.runner import Runner
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
from tests.support import write_weights

Frames = Callable[..., list[np.ndarray]]


@pytest.fixture(scope="module")
def runner(tiny_weights: Path) -> Runner:
    return Runner(
        Settings(weights=tiny_weights, warmup_size=0, tile_size=64, tile_overlap=8, torch_threads=1),
        Metrics(),
    )


def ok(out: WorkOutput | ServiceError) -> WorkOutput:
    assert isinstance(out, WorkOutput), out
    return out


def one(runner: Runner, item: WorkItem) -> WorkOutput:
    return ok(runner.run([item])[0])


def test_batched_equals_one_at_a_time(runner: Runner, frames: Frames) -> None:
    # 16x16 and 15x13 pad to the same shape and share a pass; 9x20 runs in a group of its own.
    rgbs = [*frames(2, 16, 16), *frames(1, 15, 13, seed=1), *frames(1, 9, 20, seed=2)]
    batched = [ok(o) for o in runner.run([WorkItem(x) for x in rgbs])]
    for rgb, out in zip(rgbs, batched, strict=True):
        alone = one(runner, WorkItem(rgb))
        assert out.cube_hwc.shape == (*rgb.shape[:2], 31)
        np.testing.assert_allclose(out.cube_hwc, alone.cube_hwc, rtol=1e-4, atol=1e-5)
        assert out.outcome == "none" and out.state is None and out.reprojection_error is not None


def adapted_blob(runner: Runner, rgb: np.ndarray, steps: int) -> bytes:
    blob: bytes | None = None
    for _ in range(steps):
        blob = one(runner, WorkItem(rgb, session=True, state=blob, steps=1)).state
    assert blob is not None
    return blob


def test_mixed_batch_adapts_each_session_as_alone(runner: Runner, frames: Frames) -> None:
    rgbs = frames(5, 16, 16, seed=3)
    a = adapted_blob(runner, rgbs[0], 2)
    items = [
        WorkItem(rgbs[0], session=True, state=a, steps=1),  # a session with history
        WorkItem(rgbs[1]),  # no session
        WorkItem(rgbs[2], session=True, state=None, steps=2),  # a new session, two steps
        WorkItem(rgbs[3], steps=2),  # one-shot adaptation
        WorkItem(rgbs[4], session=True, state=a, steps=0),  # a session used without adapting
    ]
    batched = [ok(o) for o in runner.run(items)]
    assert [o.outcome for o in batched] == ["adapted", "none", "adapted", "adapted", "none"]
    assert [o.step for o in batched] == [3, None, 2, None, 2]
    assert batched[4].state is None and batched[3].state is None
    for item, out in zip(items, batched, strict=True):
        alone = one(runner, item)
        np.testing.assert_allclose(out.cube_hwc, alone.cube_hwc, rtol=1e-4, atol=1e-5)
        assert out.outcome == alone.outcome and out.step == alone.step
        if out.state is not None:
            assert alone.state is not None
            mine, theirs = decode_state(out.state).state, decode_state(alone.state).state
            # Adam divides by the gradient's own size, so float noise in a near-zero gradient moves
            # a parameter by up to a few percent of one step (lr 1e-3): the tolerance is 1e-4.
            for name, value in mine.params.items():
                torch.testing.assert_close(value, theirs.params[name], rtol=1e-4, atol=1e-4)


def test_session_output_uses_its_parameters(runner: Runner, frames: Frames) -> None:
    rgb = frames(1, 16, 16, seed=4)[0]
    net = load_checkpoint(runner.settings.weights).model
    assert isinstance(net, GANet)
    adapter = TTAAdapter(net)
    state = adapter.initial_state()
    for _ in range(3):
        next_state = adapter.run(torch.from_numpy(rgb).permute(2, 0, 1)[None], [state], [True]).states[0]
        assert next_state is not None
        state = next_state
    # The output is decoded from codewords, so small parameter moves rarely change it: push the
    # session's GA parameters far enough that its frames must differ from the trained ones.
    gen = torch.Generator().manual_seed(0)
    for name in state.params:
        state.params[name] += 2.0 * torch.randn(state.params[name].shape, generator=gen)
    blob = encode_state(state, runner.version)
    expected = adapter.run(torch.from_numpy(rgb).permute(2, 0, 1)[None], [state], [False]).hsi
    out = one(runner, WorkItem(rgb, session=True, state=blob, steps=0))
    # shape-gain latents carry float noise of the two paths (batched runner vs adapter) to the output
    np.testing.assert_allclose(out.cube_hwc, expected[0].permute(1, 2, 0).numpy(), rtol=1e-4, atol=1e-4)
    assert not np.allclose(out.cube_hwc, one(runner, WorkItem(rgb)).cube_hwc, atol=1e-6)


def test_state_of_other_weights_is_reset_not_injected(runner: Runner, frames: Frames) -> None:
    rgb = frames(1, 16, 16, seed=5)[0]
    blob = adapted_blob(runner, rgb, 2)
    foreign = encode_state(decode_state(blob).state, "some-other-model")
    out = one(runner, WorkItem(rgb, session=True, state=foreign, steps=1))
    assert out.outcome == "reset" and out.step == 1 and out.state is not None
    state = decode_state(out.state)
    assert state.model_version == runner.version and state.state.resets == 1
    # The frame was computed with the trained parameters, exactly as without a session.
    np.testing.assert_allclose(out.cube_hwc, one(runner, WorkItem(rgb)).cube_hwc, rtol=1e-4, atol=1e-5)
    garbage = one(runner, WorkItem(rgb, session=True, state=b"not a state", steps=0))
    assert garbage.outcome == "reset" and garbage.state is not None


def test_a_state_an_adam_step_cannot_take_is_reset_and_spares_its_batch(
    runner: Runner, frames: Frames
) -> None:
    rgb, other, plain = frames(3, 16, 16, seed=8)
    decoded = decode_state(adapted_blob(runner, rgb, 1))
    name = next(iter(decoded.state.exp_avg))
    decoded.state.exp_avg[name] = torch.zeros(3)  # moments no longer shaped as their parameter
    broken = encode_state(decoded.state, decoded.model_version)
    items = [
        WorkItem(rgb, session=True, state=broken, steps=1),
        WorkItem(other, session=True, steps=1),
        WorkItem(plain),
    ]
    outs = [ok(o) for o in runner.run(items)]
    assert [o.outcome for o in outs] == ["reset", "adapted", "none"]
    assert outs[0].state is not None and decode_state(outs[0].state).state.step == 1  # started afresh


def test_a_frame_that_fails_its_pass_fails_alone(
    runner: Runner, frames: Frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a pass raises, its batch-mates run again without the frame and are answered."""
    prepare = runner._prepare

    def failing(item: WorkItem) -> object:
        if item.state == b"fails":
            raise RuntimeError("a fault no check caught")
        return prepare(item)

    monkeypatch.setattr(runner, "_prepare", failing)
    good, bad, plain, big = frames(3, 16, 16, seed=9) + frames(1, 80, 70, seed=9)
    items = [
        WorkItem(good, session=True, steps=1),
        WorkItem(bad, session=True, state=b"fails", steps=1),
        WorkItem(plain),
        WorkItem(big, session=True, state=b"fails", steps=1),  # tiled
    ]
    outs = runner.run(items)
    assert isinstance(outs[0], WorkOutput) and outs[0].outcome == "adapted"
    assert isinstance(outs[2], WorkOutput) and outs[2].outcome == "none"
    assert isinstance(outs[1], InternalError) and isinstance(outs[3], InternalError)
    alone = one(runner, WorkItem(plain))
    np.testing.assert_allclose(outs[2].cube_hwc, alone.cube_hwc, rtol=1e-4, atol=1e-5)


def test_tiled_frame_adapts_and_keeps_shape(runner: Runner, frames: Frames) -> None:
    rgb = frames(1, 150, 97, seed=6)[0]
    out = one(runner, WorkItem(rgb, session=True, steps=1))
    assert out.tiled and out.cube_hwc.shape == (150, 97, 31) and out.outcome == "adapted" and out.step == 1
    plain = one(runner, WorkItem(rgb))
    # A stream frame's output uses the parameters from before its step: the trained ones here.
    np.testing.assert_allclose(out.cube_hwc, plain.cube_hwc, rtol=1e-5, atol=1e-6)
    assert np.isfinite(out.cube_hwc).all() and out.reprojection_error is not None


def test_bad_values_fail_only_their_item(runner: Runner, frames: Frames) -> None:
    good, bad, high = frames(3, 16, 16, seed=7)
    bad[3, 3, 0] = np.nan
    high[0, 0, 0] = 255.0
    results = runner.run([WorkItem(good), WorkItem(bad), WorkItem(high)])
    assert isinstance(results[0], WorkOutput)
    assert isinstance(results[1], InvalidInputError) and isinstance(results[2], InvalidInputError)


def test_unservable_weights_are_refused(tmp_path: Path, tiny_weights: Path) -> None:
    with pytest.raises(ModelLoadError):
        Runner(Settings(weights=tmp_path / "missing.pt"), Metrics())
    with pytest.raises(ModelLoadError, match="session_max_bytes"):
        Runner(Settings(weights=tiny_weights, session_max_bytes=2048), Metrics())


def test_a_consistent_model_reports_what_its_projection_corrected(
    runner: Runner, frames: Frames, tmp_path: Path
) -> None:
    """The projected cube renders to the input by construction, so the drift figure is the input
    residual of the unprojected output: the same number the plain model reports for its cube."""
    weights = write_weights(tmp_path / "consistent.pt", seed=0, consistent=True)
    consistent = Runner(
        Settings(weights=weights, warmup_size=0, tile_size=64, tile_overlap=8, torch_threads=1), Metrics()
    )
    (rgb,) = frames(1, 16, 16, seed=3)
    plain_out, cons_out = one(runner, WorkItem(rgb)), one(consistent, WorkItem(rgb))
    assert plain_out.reprojection_error is not None and cons_out.reprojection_error is not None
    assert cons_out.reprojection_error == pytest.approx(plain_out.reprojection_error, rel=1e-3)
    assert consistent.camera is not None
    assert consistent.camera.reprojection_error(cons_out.cube_hwc, rgb) < plain_out.reprojection_error / 2
    (big,) = frames(1, 150, 97, seed=4)
    tiled = one(consistent, WorkItem(big))
    assert tiled.tiled and tiled.reprojection_error is not None and tiled.reprojection_error > 0
    # A frame the runner pads to the model's multiple (and batches with a larger one): the figure
    # covers its own pixels, as the model run on the frame alone reports them, not the padding.
    odd, other = frames(1, 33, 21, seed=5)[0], frames(1, 36, 24, seed=6)[0]
    assert consistent.padded_shape(33, 21) == consistent.padded_shape(36, 24) != (33, 21)
    padded_out = ok(consistent.run([WorkItem(odd), WorkItem(other)])[0])
    with torch.inference_mode():
        alone = consistent.model(torch.from_numpy(odd).permute(2, 0, 1)[None]).input_residual
    assert alone is not None and alone.shape == (1, 33, 21)
    assert padded_out.reprojection_error == pytest.approx(float(alone.mean()) ** 0.5, rel=1e-4)


def test_a_group_over_the_pixel_budget_runs_in_several_passes(
    tiny_weights: Path, frames: Frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five 16x16 frames with room for two per pass: passes of 2, 2, 1, outputs in order, each as alone."""
    budget = Runner(
        Settings(weights=tiny_weights, warmup_size=0, torch_threads=1, max_batch_pixels=2 * 16 * 16),
        Metrics(),
    )
    assert 16 % budget.multiple == 0
    assert budget.frames_per_pass(budget.padded_shape(16, 16)) == 2
    passes: list[int] = []
    real_pass = budget._run_group

    def counted(items: list[WorkItem]) -> list[WorkOutput]:
        passes.append(len(items))
        return real_pass(items)

    monkeypatch.setattr(budget, "_run_group", counted)
    rgbs = frames(5, 16, 16, seed=3)
    outs = [ok(o) for o in budget.run([WorkItem(x) for x in rgbs])]
    assert passes == [2, 2, 1]
    passes.clear()
    for rgb, out in zip(rgbs, outs, strict=True):
        np.testing.assert_allclose(out.cube_hwc, one(budget, WorkItem(rgb)).cube_hwc, rtol=1e-4, atol=1e-5)
    assert passes == [1] * 5


def test_frames_nobody_waits_for_stop_before_or_between_tiles(
    runner: Runner, frames: Frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deadline that passed, or a caller that left, stops a frame before it starts and a large one
    between its tiles: the worker is not held for work nobody will read (it ran to the end)."""
    (big,) = frames(1, 150, 97, seed=12)  # tiles of 64 with overlap 8: 3 x 2 tiles, one a pass
    late = WorkItem(big)
    late.watch.deadline = time.monotonic() - 1
    passes: list[int] = []
    real_pass = runner._pass

    def counting(*args: Any, **kwargs: Any) -> Any:
        passes.append(1)
        if len(passes) == 2:
            left.watch.abandoned = True  # the caller goes away while the frame runs
        return real_pass(*args, **kwargs)

    monkeypatch.setattr(runner, "_pass", counting)
    assert isinstance(runner.run([late])[0], DeadlineExceededError) and passes == []
    left = WorkItem(big)
    assert isinstance(runner.run([left])[0], RequestCancelledError)
    assert len(passes) == 2  # of the 6 tiles
    assert ok(runner.run([WorkItem(big)])[0]).cube_hwc.shape == (150, 97, 31)  # others still run
