"""What one run of the suite measures: sizes, repeats and threads, full or `--quick`.

Figures are keyed by their nominal size ("512", "4k_tiled") so that the JSON has the same keys in
both modes; `--quick` maps every nominal size to a tiny actual one (recorded next to each figure)
so the whole suite runs in about a minute. Quick figures check the tooling, not the targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SECTIONS = ("model", "serving", "batching", "tta", "memory", "metrics")


@dataclass(frozen=True)
class BenchConfig:
    quick: bool
    threads: int  # torch intra-op threads of every process measured (servers, baselines, children)
    device: str  # "cpu" or "cuda": servers and baselines alike
    warmup: int = 1
    repeats: int = 5
    # model: GANet-S2 vs MST++, nominal side -> actual side
    model_sizes: dict[str, int] = field(default_factory=lambda: {"256": 256, "512": 512, "1024": 1024})
    # serving: one frame through REST (NPY, TIFF) and a gRPC stream vs the bare model call
    serving_size: tuple[str, int] = ("512", 512)
    # batching: closed-loop clients, each sending `batch_requests_per_client` frames per round
    batching_size: int = 256
    concurrency: tuple[int, ...] = (1, 4, 16, 64)
    batch_requests_per_client: int = 2
    batch_min_requests: int = 8  # per round, so one client still sends several frames
    max_batch: int = 8
    max_wait_ms: float = 5.0
    # test-time adaptation through the runner
    tta_size: int = 128
    tta_sessions: int = 8
    # memory: one frame per fresh process, (height, width); tiled above tile_size
    memory_frames: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {"512": (512, 512), "1024": (1024, 1024), "4k_tiled": (2160, 3840)}
    )
    tile_size: int = 512
    tile_overlap: int = 32
    # metrics and request logging on vs off: small frames, where per-request costs show most
    metrics_size: int = 64
    metrics_concurrency: int = 4
    metrics_requests: int = 64
    metrics_rounds: int = 15  # rounds per server: a 5% effect needs more pairs than the others
    server_warmup_size: int = 64

    @classmethod
    def full(cls, threads: int, device: str, repeats: int = 5, warmup: int = 1) -> BenchConfig:
        return cls(quick=False, threads=threads, device=device, repeats=repeats, warmup=warmup)

    @classmethod
    def tiny(cls, threads: int, device: str, repeats: int = 2, warmup: int = 1) -> BenchConfig:
        """`--quick`: every size tiny, few requests; the same keys as a full run."""
        return cls(
            quick=True,
            threads=threads,
            device=device,
            repeats=repeats,
            warmup=warmup,
            model_sizes={"256": 32, "512": 48, "1024": 64},
            serving_size=("512", 48),
            batching_size=32,
            concurrency=(1, 4),
            batch_requests_per_client=1,
            batch_min_requests=2,
            tta_size=32,
            memory_frames={"512": (32, 32), "1024": (64, 64), "4k_tiled": (72, 128)},
            tile_size=32,
            tile_overlap=4,
            metrics_size=32,
            metrics_concurrency=2,
            metrics_requests=8,
            metrics_rounds=2,
            server_warmup_size=16,
        )
