"""Service settings: one pydantic-settings class, read from `MCGA_*` variables (and `REDIS_URL`).

Built once in the app factory and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "model" / "weights" / "mcga_s2.pt"

Dtype = Literal["float32", "float16", "bfloat16"]
Keys = Annotated[tuple[str, ...], NoDecode]  # comma-separated in the environment, never JSON


class Settings(BaseSettings):
    """Every knob of the server, validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="MCGA_", extra="forbid", frozen=True)

    # Network (one process serves both)
    host: str = Field(default="127.0.0.1", description="interface to bind; 0.0.0.0 in containers")
    http_port: int = Field(
        default=8000, ge=0, le=65535, description="REST (FastAPI) port; 0 picks a free one"
    )
    grpc_port: int = Field(default=50051, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    max_body_bytes: int = Field(
        default=256 << 20, ge=1024, description="largest accepted request body (413 above)"
    )
    max_image_side: int = Field(default=16384, ge=1, description="largest accepted image side")
    grpc_max_message_bytes: int = Field(
        default=64 << 20, ge=1 << 20, description="gRPC message limit (a 512^2 float32 cube is 32 MB)"
    )
    grpc_chunk_bytes: int = Field(
        default=4 << 20, ge=1 << 16, description="cubes larger than this stream as CubeChunk messages"
    )
    stream_max_lag_frames: int = Field(
        default=0, ge=0, description="default real-time lag before a stream skips frames (0: never skip)"
    )
    ready_requires_store: bool = Field(
        default=True,
        description="/readyz fails while Redis is unreachable (turn off where the load balancer "
        "should keep serving without adaptation)",
    )

    # Model and device
    weights: Path = Field(default=BUNDLED_WEIGHTS, description="the GANet checkpoint served")
    device: str = Field(default="auto", description="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'")
    dtype: Dtype = Field(default="float32", description="compute precision; float16/bfloat16 only on CUDA")
    torch_threads: int = Field(
        default=0, ge=0, description="worker's intra-op CPU threads (0: torch default)"
    )
    warmup_size: int = Field(default=64, ge=0, description="side of the warm-up image; 0 skips warm-up")

    # Batching
    max_batch: int = Field(default=8, ge=1, description="most frames in one forward pass")
    max_batch_pixels: int = Field(
        default=0, ge=0, description="most pixels in one forward pass (0: 65,536 on CPU, no limit on CUDA)"
    )
    max_wait_ms: float = Field(default=5.0, ge=0, description="longest wait of a frame for company")
    max_queue: int = Field(default=64, ge=1, description="queued frames beyond which requests get 429")
    request_timeout_s: float = Field(default=30.0, gt=0, description="server-side deadline of one request")
    max_image_pixels: int = Field(default=4096 * 4096, ge=1, description="largest accepted H*W")

    # Tiling: frames with a side above tile_size run as overlapping tiles, blended
    tile_size: int = Field(default=512, ge=16)
    tile_overlap: int = Field(default=32, ge=0)
    # 0: one tile per pass on CPU (a 4K frame peaked at 5.8 GB RSS with 4 tiles of 512^2 per pass,
    # where batching buys a CPU nothing) and 4 on CUDA
    tile_batch: int = Field(
        default=0, ge=0, description="tiles of one frame per forward pass (0: 1 on CPU, 4 on CUDA)"
    )

    # Test-time adaptation
    default_tta_steps: int = Field(default=1, ge=0, description="steps per frame of a session when not asked")
    max_tta_steps: int = Field(default=8, ge=0, description="cap on the steps one request may ask for")

    # Sessions
    # REDIS_URL as most tools name it; MCGA_REDIS_URL too, as every other setting is spelled.
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "MCGA_REDIS_URL", "redis_url")
    )
    redis_key_prefix: str = "mcga:session:"
    redis_op_timeout_s: float = Field(
        default=0.25, gt=0, description="per-operation budget before Redis counts as down"
    )
    redis_connect_timeout_s: float = Field(default=0.5, gt=0)
    breaker_failures: int = Field(default=3, ge=1, description="consecutive failures opening the breaker")
    breaker_reset_s: float = Field(default=5.0, gt=0, description="how long an open breaker skips the store")
    store_fallback: Literal["local", "skip"] = Field(
        default="local", description="Redis down: adapt on a local copy, or serve unadapted ('skip')"
    )
    session_ttl_s: float = Field(
        default=3600.0, gt=0, description="a session is forgotten after this long without a frame"
    )
    session_max_bytes: int = Field(default=1 << 20, ge=1024, description="size cap of one serialised session")
    session_cas_retries: int = Field(default=4, ge=0, description="re-runs of a frame that lost a CAS race")
    memory_store_max_bytes: int = Field(
        default=256 << 20, ge=1 << 20, description="in-process session budget"
    )

    # Observability
    metrics_enabled: bool = Field(
        default=True,
        description="record Prometheus metrics; off, every metric is a no-op and /metrics is empty "
        "(for measuring their cost)",
    )

    # Access control: all off by default (the embedded set-up is open); see deploy/README.md
    api_keys: Keys = Field(
        default=(), repr=False, description="keys accepted on inference routes (comma-separated)"
    )
    api_keys_file: Path | None = Field(default=None, description="more inference keys, one per line")
    admin_api_keys: Keys = Field(
        default=(), repr=False, description="keys accepted on admin routes, and on inference routes"
    )
    admin_api_keys_file: Path | None = Field(default=None, description="more admin keys, one per line")
    metrics_require_key: bool = Field(default=False, description="/metrics asks for any configured key")
    rate_limit_rps: float = Field(default=0.0, ge=0, description="requests per second per client; 0: off")
    rate_limit_burst: int = Field(default=0, ge=0, description="bucket size; 0: max(1, rate_limit_rps)")
    forwarded_allow_ips: str = Field(
        default="",
        description="proxies whose X-Forwarded-For / -Proto the REST edge believes (comma-separated IPs "
        "or CIDRs, '*' for any); empty: none, the peer address is the client's",
    )
    tls_cert_file: Path | None = Field(default=None, description="PEM certificate (chain): both edges TLS")
    tls_key_file: Path | None = Field(default=None, description="PEM private key of tls_cert_file")
    tls_client_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle: clients must present a certificate it signed (mTLS)"
    )

    @field_validator("api_keys", "admin_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator(
        "api_keys_file",
        "admin_api_keys_file",
        "tls_cert_file",
        "tls_key_file",
        "tls_client_ca_file",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if 2 * self.tile_overlap >= self.tile_size:
            raise ValueError("tile_overlap must be less than half of tile_size")
        if self.max_image_pixels < self.warmup_size**2:
            raise ValueError("max_image_pixels is smaller than the warm-up image")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mTLS) needs tls_cert_file and tls_key_file")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`MCGA_*` variables no setting reads (pydantic-settings ignores them silently), each with the
    closest setting's variable when one is near: a misspelled knob should not go unnoticed."""
    known = {f"MCGA_{name.upper()}" for name in Settings.model_fields}  # aliases: REDIS_URL (not MCGA_)
    found = []
    for name in sorted(n for n in environ if n.upper().startswith("MCGA_") and n.upper() not in known):
        near = difflib.get_close_matches(name.upper(), known, n=1)
        found.append(f"{name} (did you mean {near[0]}?)" if near else name)
    return found
