"""JSON bodies of the REST routes (the Open Inference Protocol's are in `oip_schemas`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from service.contracts import ModelInfo, SessionInfo


class ErrorBody(BaseModel):
    """Every 4xx/5xx body: a stable machine-readable code, a message for people, and details."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "error": "invalid_input",
                "message": "PNG image has 4 channels (RGBA, or CMYK); exactly 3 channels (RGB) are accepted",
                "received_channels": 4,
                "request_id": "0f6c1d2e9a5b4c3d8e7f6a5b4c3d2e1f",
            }
        },
    )

    error: str = Field(description="stable error code, e.g. invalid_input, queue_full, payload_too_large")
    message: str = Field(description="what went wrong and what is accepted")
    request_id: str | None = Field(None, description="also in the X-Request-ID header; quote it in reports")


class Live(BaseModel):
    status: str = Field("ok", examples=["ok"])


class Ready(BaseModel):
    ready: bool = Field(description="the model is served and, when required, the session store answers")
    model: bool = Field(description="weights loaded and warmed up")
    store: bool | None = Field(description="Redis reachable; null without REDIS_URL (in-memory sessions)")


class ModelBody(BaseModel):
    name: str = Field(examples=["mcga"])
    version: str = Field(description="checkpoint version; also in X-Model-Version of every cube")
    bands: int = Field(examples=[31])
    wavelengths_nm: list[float] = Field(description="band centres, ascending", examples=[[400.0, 410.0]])
    scales: int
    multiple: int = Field(description="inputs are padded to a multiple of this internally")
    parameters: int
    camera: str | None = Field(description="camera response used for the re-projection check")
    device: str = Field(examples=["cuda:0", "cpu"])
    dtype: str = Field(examples=["float32"])

    @classmethod
    def of(cls, info: ModelInfo) -> ModelBody:
        return cls(
            name=info.name,
            version=info.version,
            bands=info.bands,
            wavelengths_nm=list(info.wavelengths_nm),
            scales=info.scales,
            multiple=info.multiple,
            parameters=info.parameters,
            camera=info.camera,
            device=info.device,
            dtype=info.dtype,
        )


class SessionBody(BaseModel):
    id: str
    steps: int = Field(description="adaptation steps taken (since the last reset)")
    version: int = Field(
        description="the store's compare-and-set version: +1 per stored step; in Redis a session's "
        "first version is random, so that a write prepared before a reset cannot land after it"
    )
    resets: int = Field(description="times the safety rule or a model change reset the session")
    model_version: str = Field(description="weights the state was adapted for")
    current_model: bool = Field(description="false: adapted for other weights; reset on its next frame")
    mean_first_entropy: float | None
    mean_recent_entropy: float | None
    size_bytes: int
    source: str = Field(description="'store', or 'local' while the store is down")

    @classmethod
    def of(cls, info: SessionInfo) -> SessionBody:
        return cls(
            id=info.session_id,
            steps=info.step,
            version=info.version,
            resets=info.resets,
            model_version=info.model_version,
            current_model=info.current_model,
            mean_first_entropy=info.mean_first_entropy,
            mean_recent_entropy=info.mean_recent_entropy,
            size_bytes=info.size_bytes,
            source=info.source,
        )


class SessionDeleted(BaseModel):
    id: str
    deleted: bool = Field(description="false when there was no such session (deleting is idempotent)")


class ReloadBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"weights": "/models/mcga_s2.pt"}}
    )

    weights: Path | None = Field(None, description="checkpoint path on the server; null: the configured one")
