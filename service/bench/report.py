"""The suite's outputs: one JSON object (the interface other tools read) and the BENCHMARKS.md page.

JSON (`schema` "mcga-bench/1"): `date`, `command`, `quick`, `machine`, `config`, `weights`;
`ratios` (flat: name -> value, every comparison of the run), `peak_rss_mb` (frame -> MB), `checks`
(each figure with its target and `passed`: true, false or null where the target does not apply, as
in a quick run or a GPU target on CPU), `sections` (each section's figures, `seconds`, `error`), and
`ok` (no section failed). Non-finite numbers are written as null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.bench.common import BenchWeights, SectionResult
from service.bench.config import BenchConfig

SCHEMA = "mcga-bench/1"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def build_report(
    cfg: BenchConfig,
    weights: BenchWeights,
    results: list[SectionResult],
    *,
    command: str,
    date: str,
    machine: dict[str, Any],
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "date": date,
        "command": command,
        "quick": cfg.quick,
        "machine": machine,
        "config": {
            "threads": cfg.threads,
            "device": cfg.device,
            "warmup": cfg.warmup,
            "repeats": cfg.repeats,
        },
        "weights": {"path": str(weights.path), "source": weights.source, "note": weights.note},
        "ratios": {k: v for r in results for k, v in r.ratios.items()},
        "peak_rss_mb": {k: v for r in results for k, v in r.peak_rss_mb.items()},
        "checks": [c.as_dict() | {"section": r.name} for r in results for c in r.checks],
        "sections": {
            r.name: r.data | {"ratios": r.ratios, "seconds": round(r.seconds, 1), "error": r.error}
            for r in results
        },
        "ok": all(r.error is None for r in results),
    }
    return dict(_finite(report))


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")


# ---- markdown ------------------------------------------------------------------------------------


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_num(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _verdict(passed: bool | None) -> str:
    return {True: "pass", False: "**FAIL**", None: "n/a"}[passed]


def _model(s: dict[str, Any]) -> list[str]:
    sizes = list(s["sizes"])
    mem = s["memory_key"]
    header = ["model", "params", f"GMAC @{s['gmac_size']}²"]
    header += [f"ms @{s['sizes'][n]}²" for n in sizes] + [f"peak MB @{s['sizes'][n]}²" for n in sizes]
    rows = [
        [
            name,
            e["params"],
            e["gmac_256"],
            *(e[f"ms_{n}"] for n in sizes),
            *(e.get(f"{mem}_{n}") for n in sizes),
        ]
        for name, e in ((k, s[k]) for k in ("ganet_s2", "mstpp"))
    ]
    return _table(header, rows)


def _serving(s: dict[str, Any]) -> list[str]:
    model_ms = s["median_ms"]["model"]
    rows = [[name, ms, round(ms / model_ms, 3) if model_ms else None] for name, ms in s["median_ms"].items()]
    return _table([f"call @{s['size']}²", "median ms", "x bare model"], rows)


def _batching(s: dict[str, Any]) -> list[str]:
    rows = [
        [
            c,
            e["batched_fps"],
            e["unbatched_fps"],
            s["ratios"][f"batched_over_unbatched_throughput_{c}"],
            f"{e['round_ratio_low']} - {e['round_ratio_high']}",
            e["failed"],
        ]
        for c, e in s["concurrency"].items()
    ]
    header = [
        "clients",
        f"frames/s, batch {s['max_batch']['batched']}",
        "frames/s, batch 1",
        "ratio (median of rounds)",
        "one round's ratio",
        "failed",
    ]
    return _table(header, rows)


def _tta(s: dict[str, Any]) -> list[str]:
    return _table([f"@{s['size']}²", "median ms"], [[k, v] for k, v in s["median_ms"].items()])


def _memory(s: dict[str, Any]) -> list[str]:
    rows = [
        [
            name,
            f"{f['width']}x{f['height']}",
            "yes" if f["tiled"] else "no",
            f["rss_loaded_mb"],
            f["peak_rss_mb"],
        ]
        for name, f in s["frames"].items()
    ]
    return _table(["frame", "W x H", "tiled", "RSS loaded MB", "peak RSS MB"], rows)


def _metrics(s: dict[str, Any]) -> list[str]:
    rows = [
        [
            s["on_fps"],
            s["off_fps"],
            s["ratios"]["metrics_on_over_off_throughput"],
            f"{s['round_ratio_low']} - {s['round_ratio_high']}",
            s["rounds"],
        ]
    ]
    header = [
        f"frames/s on (@{s['size']}², {s['concurrency']} clients)",
        "frames/s off",
        "on / off (median of rounds)",
        "one round's on / off",
        "rounds",
    ]
    return _table(header, rows)


_SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], list[str]]]] = {
    "model": ("Model: GANet-S2 vs MST++", _model),
    "serving": ("Serving overhead", _serving),
    "batching": ("Batching", _batching),
    "tta": ("Test-time adaptation", _tta),
    "memory": ("Memory", _memory),
    "metrics": ("Metrics and logging overhead", _metrics),
}


def render_markdown(report: dict[str, Any]) -> str:
    m, c = report["machine"], report["config"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `mcga bench` (`make bench`; the sections live in `service/bench/`). Each figure is "
        f"the median of {c['repeats']} runs after {c['warmup']} warm-up run(s); each ratio is measured "
        "within this one run.",
        "",
        f"- Date: {report['date']}",
        f"- Command: `{report['command']}`",
        f"- Machine: {m['cpu']}, {m['cores']} cores{', ' + m['gpu'] if 'gpu' in m else ''}; "
        f"torch {m['torch']}, {m['torch_threads']} threads in every process measured; device {m['device']}",
        f"- Weights: {report['weights']['note']} ({report['weights']['source']})",
    ]
    if report["quick"]:
        lines.append(
            "- **Quick run**: tiny sizes and few repeats; the figures check the tooling, not the targets."
        )
    lines += ["", "## Targets", ""]
    rows = [
        [ch["section"], ch["name"], ch["value"], ch["target"], _verdict(ch["passed"])]
        for ch in report["checks"]
    ]
    lines += _table(["section", "figure", "value", "target", "result"], rows)
    for name, section in report["sections"].items():
        title, render = _SECTIONS[name]
        lines += [f"## {title}", ""]
        if section["error"] is not None:
            lines += [f"Failed: `{section['error']}`", ""]
            continue
        lines += [*render(section), f"Section time: {section['seconds']} s.", ""]
    return "\n".join(lines).rstrip() + "\n"
