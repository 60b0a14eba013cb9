"""`mcga bench`: the benchmark suite, section by section, into one JSON object and BENCHMARKS.md.

Sections without a server run first (model, tta, memory); the server sections (serving, batching,
metrics) then share one pool of `mcga serve` processes started together. A failing section is
logged and recorded with its error; the others still run, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

from model.runtime import keep_freed_memory
from service.bench.batching import run_batching
from service.bench.common import BenchWeights, SectionResult, machine_info, pick_device, resolve_weights
from service.bench.config import SECTIONS, BenchConfig
from service.bench.memory import run_memory
from service.bench.metrics_overhead import run_metrics_overhead
from service.bench.model import run_model
from service.bench.report import build_report, render_markdown, write_json
from service.bench.servers import ServerPool, ServerSpec
from service.bench.serving import run_serving
from service.bench.tta import run_tta

log = logging.getLogger("mcga.bench")


def parse_sections(text: str) -> list[str]:
    names = list(SECTIONS) if text in ("", "all") else [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    return [s for s in SECTIONS if s in names]


def _timed(name: str, fn: Callable[[], SectionResult]) -> SectionResult:
    log.info("bench %s: running", name)
    start = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:
        log.exception("bench %s failed", name)
        result = SectionResult(name, error=f"{type(exc).__name__}: {exc}"[:2000])
    result.seconds = time.perf_counter() - start
    log.info("bench %s: %.1f s", name, result.seconds)
    return result


def run_sections(
    cfg: BenchConfig, weights: BenchWeights, names: list[str], scratch: Path
) -> list[SectionResult]:
    local: dict[str, Callable[[], SectionResult]] = {
        "model": lambda: run_model(cfg, weights),
        "tta": lambda: run_tta(cfg, weights),
        "memory": lambda: run_memory(cfg, weights),
    }
    results = {name: _timed(name, fn) for name, fn in local.items() if name in names}
    served = [n for n in ("serving", "batching", "metrics") if n in names]
    if not served:
        return [results[name] for name in SECTIONS if name in results]
    specs = {ServerSpec(max_batch=cfg.max_batch)}
    specs |= {ServerSpec(max_batch=1)} if "batching" in served else set()
    specs |= {ServerSpec(max_batch=cfg.max_batch, metrics=False)} if "metrics" in served else set()
    with ServerPool(weights.path, cfg, scratch) as pool:
        try:
            pool.start(*sorted(specs, key=lambda s: s.name))  # start-ups overlap
        except Exception as exc:
            log.exception("bench: the servers did not start")
            failed = f"the servers did not start: {exc}"[:2000]
            results |= {name: SectionResult(name, error=failed) for name in served}
        else:
            by_name: dict[str, Callable[[], SectionResult]] = {
                "serving": lambda: run_serving(cfg, weights, pool),
                "batching": lambda: run_batching(cfg, pool),
                "metrics": lambda: run_metrics_overhead(cfg, pool),
            }
            results |= {name: _timed(name, by_name[name]) for name in served}
    return [results[name] for name in SECTIONS if name in results]


def run_suite(args: argparse.Namespace) -> int:
    """The `mcga bench` command (no subcommand)."""
    keep_freed_memory()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would drown the progress
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    device = pick_device(args.device)
    try:
        names = parse_sections(args.sections)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    make = BenchConfig.tiny if args.quick else BenchConfig.full
    cfg = make(threads, device, **({"repeats": args.repeats} if args.repeats else {}))
    date = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="mcga-bench-") as scratch:
        weights = resolve_weights(args.weights, Path(scratch))
        if weights.source == "random":
            log.warning("bench: %s; measuring a random checkpoint of the same architecture", weights.note)
        results = run_sections(cfg, weights, names, Path(scratch))
    command = shlex.join(["mcga", *sys.argv[1:]])
    report = build_report(
        cfg, weights, results, command=command, date=date, machine=machine_info(threads, device)
    )
    markdown = render_markdown(report)
    if args.json:
        write_json(report, Path(args.json))
    if args.markdown:
        Path(args.markdown).write_text(markdown)
    sys.stdout.write(markdown)
    return 0 if report["ok"] else 1
