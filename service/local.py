"""`mcga reconstruct`: RGB image files -> hyperspectral cube files, in this process, no server.

The engine's runner does the work exactly as the server does (padding, tiling above the tile size,
test-time adaptation), on the weights `--weights` or the settings name. Inputs follow the service's
input contract (`decode_image`, `--color`). `--tta-steps N` adapts each image on its own (one-shot);
`--session-steps N` treats the inputs as one stream, in the order given, as a session would. The
output format follows the suffix: `.npy` (H, W, C) float32, or `.tif`/`.tiff` OME-TIFF with the
band wavelengths; several inputs go into a directory, named after each input.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.codecs import Color, DecodeLimits, OutputFormat, decode_image, encode_cube_chunks
from service.engine import WorkItem, WorkOutput
from service.engine.runner import Runner
from service.errors import ServiceError
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger("mcga.reconstruct")

SUFFIXES: dict[str, OutputFormat] = {".npy": "npy", ".tif": "tiff", ".tiff": "tiff"}
EXTENSIONS: dict[OutputFormat, str] = {"npy": ".npy", "tiff": ".ome.tif"}


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    fmt: OutputFormat


def plan_jobs(inputs: list[Path], output: Path, fmt: str | None) -> list[Job]:
    """Where each input's cube goes: `output` itself for one input with a known suffix, else
    `output/<stem><extension>` (extension from `fmt`, default .npy)."""
    if len(inputs) == 1 and output.suffix.lower() in SUFFIXES and not output.is_dir():
        chosen = SUFFIXES[output.suffix.lower()]
        if fmt is not None and fmt != chosen:
            raise ValueError(f"--format {fmt} contradicts the output suffix {output.suffix}")
        jobs = [Job(inputs[0], output, chosen)]
        _refuse_overwriting_inputs(jobs)
        return jobs
    if output.suffix.lower() in SUFFIXES:
        raise ValueError(f"{len(inputs)} inputs need an output directory, not the file {output}")
    if len(inputs) == 1 and output.suffix and not output.is_dir():
        raise ValueError(
            f"unknown output suffix {output.suffix!r}; accepted: .npy, .tif, .tiff, or a directory"
        )
    out_fmt: OutputFormat = "tiff" if fmt == "tiff" else "npy"
    stems = [output_stem(p) for p in inputs]
    if len(set(stems)) != len(stems):
        raise ValueError("inputs with the same name would overwrite each other's cubes")
    jobs = [Job(p, output / (stem + EXTENSIONS[out_fmt]), out_fmt) for p, stem in zip(inputs, stems)]
    _refuse_overwriting_inputs(jobs)
    return jobs


def output_stem(path: Path) -> str:
    """The name an input's cube takes: the file name without its image suffix (`frame.001.png` ->
    `frame.001`, so numbered frames keep their numbers; `x.ome.tif` -> `x`)."""
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem or name


def _refuse_overwriting_inputs(jobs: list[Job]) -> None:
    sources = {job.source.resolve() for job in jobs}
    clobbered = [job.target for job in jobs if job.target.resolve() in sources]
    if clobbered:
        raise ValueError(f"the output {clobbered[0]} is one of the inputs; choose another output")


def write_cube(job: Job, out: WorkOutput, metadata: dict[str, str]) -> None:
    job.target.parent.mkdir(parents=True, exist_ok=True)
    encoded = encode_cube_chunks(out.cube_hwc, out.wavelengths_nm, fmt=job.fmt, metadata=metadata)
    with job.target.open("wb") as f:
        for chunk in encoded.chunks:
            f.write(chunk)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "weights", None) is not None:
        overrides["weights"] = args.weights
    return Settings(**overrides)


def reconstruct_file(args: argparse.Namespace) -> int:
    """The `mcga reconstruct` command: 0 when every input was written, 1 otherwise."""
    session_steps: int | None = getattr(args, "session_steps", None)
    steps = session_steps if session_steps is not None else int(getattr(args, "tta_steps", 0) or 0)
    if steps < 0:
        log.error("adaptation steps must be >= 0")
        return 2
    inputs = [Path(p) for p in args.inputs]
    try:
        jobs = plan_jobs(inputs, Path(args.output), getattr(args, "format", None))
        settings = _settings(args)
        runner = Runner(settings, Metrics())
    except (ValueError, ServiceError) as exc:
        log.error("%s", getattr(exc, "message", exc))
        return 2
    limits = DecodeLimits(max_bytes=1 << 40, max_pixels=1 << 40, max_side=1 << 20)  # local files: no caps
    color: Color = "srgb" if getattr(args, "color", "linear") == "srgb" else "linear"
    state: bytes | None = None
    failed = 0
    for job in jobs:
        try:
            rgb = decode_image(job.source.read_bytes(), color=color, limits=limits).rgb
            item = WorkItem(rgb, session=session_steps is not None, state=state, steps=steps)
            out = runner.run([item])[0]
            if isinstance(out, ServiceError):
                raise out
        except (OSError, ServiceError) as exc:
            log.error("%s: %s", job.source, getattr(exc, "message", exc))
            failed += 1
            continue
        state = out.state or state
        mode = f"session, {steps} steps/frame" if session_steps is not None else f"one-shot, {steps} steps"
        metadata = {"model_version": out.model_version, "input_color": color, "source": job.source.name}
        try:
            write_cube(job, out, metadata | {"tta": mode, "tta_outcome": out.outcome})
        except OSError as exc:  # this output fails; the other inputs are still written
            log.error("%s: cannot write %s: %s", job.source, job.target, exc)
            failed += 1
            continue
        H, W, C = out.cube_hwc.shape
        print(f"{job.target}\t{H}x{W}x{C} float32\t{out.wavelengths_nm[0]:g}-{out.wavelengths_nm[-1]:g} nm")
    return 1 if failed else 0
