"""JSON objects of the Open Inference Protocol (KServe v2) REST API, as the protocol spells them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ParameterValue = bool | int | float | str
Parameters = dict[str, ParameterValue]

INPUT_NAME, OUTPUT_NAME = "rgb", "hsi"

_EXAMPLE_RGB: list[Any] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.2, 0.2, 0.2, 0.9, 0.8, 0.7]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1: any size")
    parameters: Parameters | None = None


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: Parameters | None = None


class RequestInput(BaseModel):
    name: str = Field(examples=[INPUT_NAME])
    shape: list[int] = Field(description="[H, W, 3] or [1, H, W, 3]")
    datatype: str = Field(description="FP32, FP16, FP64 (values in [0, 1]), UINT8 or UINT16")
    parameters: Parameters | None = Field(None, description="binary_data_size: data is in the binary part")
    data: list[Any] | None = Field(None, description="row-major values, flat or nested")


class RequestOutput(BaseModel):
    name: str = Field(examples=[OUTPUT_NAME])
    parameters: Parameters | None = Field(None, description="binary_data: true for raw little-endian FP32")


class InferenceRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "42",
                "parameters": {"session_id": "cam-1", "color": "linear"},
                "inputs": [
                    {"name": INPUT_NAME, "shape": [2, 2, 3], "datatype": "FP32", "data": _EXAMPLE_RGB}
                ],
                "outputs": [{"name": OUTPUT_NAME}],
            }
        }
    )

    id: str | None = None
    parameters: Parameters | None = Field(
        None,
        description="session_id (str), tta_steps (int), color ('linear' | 'srgb'), timeout_s (number), "
        "binary_data_output (bool)",
    )
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[float] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = Field(
        None,
        description="wavelengths_nm (comma-separated), tta_outcome, session_step, entropy, "
        "reprojection_error, tiled, input_color",
    )
    outputs: list[ResponseOutput]
