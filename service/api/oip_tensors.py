"""Open Inference Protocol tensors <-> the model's frames; CPU-bound, so the routes run it off the loop.

An input tensor is turned into an `.npy` and handed to `decode_image`, so `/v2/.../infer` applies
exactly the input contract and limits of `POST /reconstruct` (bit-depth scaling, [0, 1] floats,
NaN/inf, dimensions, `color`). The binary tensor extension (`Inference-Header-Content-Length`) is
supported both ways: raw little-endian tensors after the JSON header.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from service.api.oip_schemas import (
    INPUT_NAME,
    OUTPUT_NAME,
    InferenceRequest,
    InferenceResponse,
    Parameters,
    ResponseOutput,
)
from service.codecs import COLORS, Color, DecodedImage, DecodeLimits, decode_image
from service.contracts import ReconstructResult
from service.errors import InvalidInputError, PayloadTooLargeError

DATATYPES: dict[str, str] = {"UINT8": "<u1", "UINT16": "<u2", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}
BINARY_HEADER = "Inference-Header-Content-Length"
MAX_JSON_BYTES = 64 << 20  # a 1-megapixel FP32 frame as JSON text is ~30 MB


@dataclass(frozen=True)
class ParsedInfer:
    request: InferenceRequest
    image: DecodedImage
    session_id: str | None
    tta_steps: int | None
    timeout_s: float | None
    binary_output: bool


def _param(params: Parameters | None, key: str, kind: type | tuple[type, ...]) -> Any:
    value = (params or {}).get(key)
    wrong = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
    if value is not None and wrong:
        raise InvalidInputError(f"parameter {key}={value!r} has the wrong type", received=str(value))
    return value


def _tensor_array(data: list[Any] | None, binary: bytes | None, datatype: str, count: int) -> np.ndarray:
    if binary is not None:
        dtype = np.dtype(DATATYPES[datatype])
        if len(binary) != count * dtype.itemsize:
            raise InvalidInputError(
                f"the binary tensor holds {len(binary)} bytes; {count} {datatype} values take "
                f"{count * dtype.itemsize}"
            )
        values = np.frombuffer(binary, dtype=dtype)
    else:
        try:
            values = np.asarray(data)
        except ValueError as exc:
            raise InvalidInputError(f"tensor data is not a regular array ({exc})") from exc
        integer = datatype.startswith("UINT")
        if values.size and values.dtype.kind not in ("iu" if integer else "iuf"):
            raise InvalidInputError(
                f"tensor data must be {'integers' if integer else 'numbers'} for {datatype}"
            )
        if integer and values.size:
            top = np.iinfo(DATATYPES[datatype]).max
            if values.min() < 0 or values.max() > top:
                raise InvalidInputError(f"{datatype} data must lie in 0..{top}")
        values = values.astype(DATATYPES[datatype])
    if values.size != count:
        raise InvalidInputError(f"tensor data holds {values.size} values; its shape needs {count}")
    return values


def parse_infer(body: bytes, header_length: int | None, limits: DecodeLimits) -> ParsedInfer:
    """An inference request (JSON, or JSON + binary tensors) -> the frame and the request's options."""
    json_part = body if header_length is None else body[:header_length]
    if header_length is not None and not 0 <= header_length <= len(body):
        raise InvalidInputError(f"{BINARY_HEADER}: {header_length} does not fit a {len(body)}-byte body")
    if len(json_part) > MAX_JSON_BYTES:  # parsed, JSON numbers take ~10x their text: refuse first
        raise PayloadTooLargeError(
            f"a JSON part of {len(json_part)} bytes is above {MAX_JSON_BYTES}; send the tensor with the "
            f"binary extension ({BINARY_HEADER}, parameters.binary_data_size)"
        )
    try:
        req = InferenceRequest.model_validate_json(json_part)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid inference request: {exc.errors(include_url=False)[:3]}") from exc
    if len(req.inputs) != 1 or req.inputs[0].name != INPUT_NAME:
        raise InvalidInputError(
            f"expected one input tensor named {INPUT_NAME!r}, got {[i.name for i in req.inputs]}"
        )
    tensor = req.inputs[0]
    color_name = _param(req.parameters, "color", str) or "linear"
    if color_name not in COLORS:
        raise InvalidInputError(f"color={color_name!r} is not accepted; accepted: {', '.join(COLORS)}")
    color: Color = "srgb" if color_name == "srgb" else "linear"
    if tensor.datatype not in DATATYPES:
        raise InvalidInputError(
            f"datatype {tensor.datatype} is not accepted; accepted: {', '.join(DATATYPES)}"
        )
    shape = tensor.shape[1:] if len(tensor.shape) == 4 and tensor.shape[0] == 1 else tensor.shape
    if len(shape) != 3 or shape[2] != 3 or min(shape) < 0:
        raise InvalidInputError(
            f"input shape {tensor.shape} is not accepted; accepted: [H, W, 3] or [1, H, W, 3]"
        )
    binary = None
    size = _param(tensor.parameters, "binary_data_size", int)
    if size is not None:
        rest = body[len(json_part) :]
        if header_length is None or size != len(rest):
            raise InvalidInputError(
                f"binary_data_size={size} does not match the {len(rest)} binary bytes sent"
            )
        binary = rest
    elif tensor.data is None:
        raise InvalidInputError("the input tensor has neither data nor binary_data_size")
    values = _tensor_array(tensor.data, binary, tensor.datatype, shape[0] * shape[1] * 3)
    npy = io.BytesIO()
    np.save(npy, values.reshape(shape), allow_pickle=False)
    image = decode_image(npy.getvalue(), content_type=tensor.datatype, color=color, limits=limits)
    outputs = req.outputs or []
    if any(o.name != OUTPUT_NAME for o in outputs):
        raise InvalidInputError(f"unknown output {[o.name for o in outputs]}; the model has {OUTPUT_NAME!r}")
    binary_output = bool(_param(req.parameters, "binary_data_output", bool)) or any(
        _param(o.parameters, "binary_data", bool) for o in outputs
    )
    return ParsedInfer(
        request=req,
        image=image,
        session_id=_param(req.parameters, "session_id", str),
        tta_steps=_param(req.parameters, "tta_steps", int),
        timeout_s=_param(req.parameters, "timeout_s", (int, float)),
        binary_output=binary_output,
    )


def result_parameters(result: ReconstructResult, color: str) -> Parameters:
    """What the headers of `POST /reconstruct` say, as OIP response parameters."""
    params: Parameters = {
        "wavelengths_nm": ",".join(f"{w:g}" for w in result.wavelengths_nm),
        "tta_outcome": result.tta.value,
        "tiled": result.tiled,
        "input_color": color,
    }
    optional = {
        "session_step": result.session_step,
        "entropy": result.entropy,
        "reprojection_error": result.reprojection_error,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    return params


def encode_infer(
    result: ReconstructResult, model_name: str, infer_id: str | None, color: str, binary: bool
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when the tensor follows it in binary."""
    raw = np.ascontiguousarray(result.cube, dtype="<f4")
    output = ResponseOutput(name=OUTPUT_NAME, shape=list(raw.shape), datatype="FP32")
    if binary:
        output.parameters = {"binary_data_size": raw.nbytes}
    response = InferenceResponse(
        model_name=model_name,
        model_version=result.model_version,
        id=infer_id,
        parameters=result_parameters(result, color),
        outputs=[output],
    ).model_dump(exclude_none=True)
    if not binary:
        response["outputs"][0]["data"] = raw.ravel().tolist()
    header = json.dumps(response, separators=(",", ":")).encode()
    if not binary:
        return header, None
    return header + raw.tobytes(), len(header)
