from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TTAOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TTA_OUTCOME_UNSPECIFIED: _ClassVar[TTAOutcome]
    TTA_OUTCOME_NONE: _ClassVar[TTAOutcome]
    TTA_OUTCOME_ADAPTED: _ClassVar[TTAOutcome]
    TTA_OUTCOME_DROPPED: _ClassVar[TTAOutcome]
    TTA_OUTCOME_RESET: _ClassVar[TTAOutcome]
    TTA_OUTCOME_SKIPPED_STORE_UNAVAILABLE: _ClassVar[TTAOutcome]
    TTA_OUTCOME_KEPT_LOCAL: _ClassVar[TTAOutcome]
    TTA_OUTCOME_SKIPPED_CONFLICT: _ClassVar[TTAOutcome]
TTA_OUTCOME_UNSPECIFIED: TTAOutcome
TTA_OUTCOME_NONE: TTAOutcome
TTA_OUTCOME_ADAPTED: TTAOutcome
TTA_OUTCOME_DROPPED: TTAOutcome
TTA_OUTCOME_RESET: TTAOutcome
TTA_OUTCOME_SKIPPED_STORE_UNAVAILABLE: TTAOutcome
TTA_OUTCOME_KEPT_LOCAL: TTAOutcome
TTA_OUTCOME_SKIPPED_CONFLICT: TTAOutcome

class Image(_message.Message):
    __slots__ = ("encoded", "raw", "color")
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    encoded: bytes
    raw: RawTensor
    color: str
    def __init__(self, encoded: _Optional[bytes] = ..., raw: _Optional[_Union[RawTensor, _Mapping]] = ..., color: _Optional[str] = ...) -> None: ...

class RawTensor(_message.Message):
    __slots__ = ("shape", "dtype", "data")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    data: bytes
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    width: int
    height: int
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class OutputOptions(_message.Message):
    __slots__ = ("dtype", "band_min_nm", "band_max_nm", "region", "chunk_bytes")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    BAND_MIN_NM_FIELD_NUMBER: _ClassVar[int]
    BAND_MAX_NM_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    dtype: str
    band_min_nm: float
    band_max_nm: float
    region: Region
    chunk_bytes: int
    def __init__(self, dtype: _Optional[str] = ..., band_min_nm: _Optional[float] = ..., band_max_nm: _Optional[float] = ..., region: _Optional[_Union[Region, _Mapping]] = ..., chunk_bytes: _Optional[int] = ...) -> None: ...

class ReconstructRequest(_message.Message):
    __slots__ = ("image", "session_id", "tta_steps", "output")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TTA_STEPS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    image: Image
    session_id: str
    tta_steps: int
    output: OutputOptions
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., session_id: _Optional[str] = ..., tta_steps: _Optional[int] = ..., output: _Optional[_Union[OutputOptions, _Mapping]] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("queue_ms", "inference_ms", "tta_ms", "total_ms")
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    TTA_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    queue_ms: float
    inference_ms: float
    tta_ms: float
    total_ms: float
    def __init__(self, queue_ms: _Optional[float] = ..., inference_ms: _Optional[float] = ..., tta_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class Cube(_message.Message):
    __slots__ = ("tensor", "wavelengths_nm")
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    WAVELENGTHS_NM_FIELD_NUMBER: _ClassVar[int]
    tensor: RawTensor
    wavelengths_nm: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, tensor: _Optional[_Union[RawTensor, _Mapping]] = ..., wavelengths_nm: _Optional[_Iterable[float]] = ...) -> None: ...

class ReconstructResponse(_message.Message):
    __slots__ = ("cube", "model_version", "tta", "session_step", "entropy", "reprojection_error", "tiled", "timings")
    CUBE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TTA_FIELD_NUMBER: _ClassVar[int]
    SESSION_STEP_FIELD_NUMBER: _ClassVar[int]
    ENTROPY_FIELD_NUMBER: _ClassVar[int]
    REPROJECTION_ERROR_FIELD_NUMBER: _ClassVar[int]
    TILED_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    cube: Cube
    model_version: str
    tta: TTAOutcome
    session_step: int
    entropy: float
    reprojection_error: float
    tiled: bool
    timings: Timings
    def __init__(self, cube: _Optional[_Union[Cube, _Mapping]] = ..., model_version: _Optional[str] = ..., tta: _Optional[_Union[TTAOutcome, str]] = ..., session_step: _Optional[int] = ..., entropy: _Optional[float] = ..., reprojection_error: _Optional[float] = ..., tiled: _Optional[bool] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ...) -> None: ...

class StreamConfig(_message.Message):
    __slots__ = ("session_id", "adapt", "output", "max_lag_frames")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ADAPT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    MAX_LAG_FRAMES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    adapt: bool
    output: OutputOptions
    max_lag_frames: int
    def __init__(self, session_id: _Optional[str] = ..., adapt: _Optional[bool] = ..., output: _Optional[_Union[OutputOptions, _Mapping]] = ..., max_lag_frames: _Optional[int] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("index", "image")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    image: Image
    def __init__(self, index: _Optional[int] = ..., image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class StreamRequest(_message.Message):
    __slots__ = ("config", "frame")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    frame: Frame
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ..., frame: _Optional[_Union[Frame, _Mapping]] = ...) -> None: ...

class CubeChunk(_message.Message):
    __slots__ = ("frame_index", "offset", "data")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    offset: int
    data: bytes
    def __init__(self, frame_index: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class FrameResult(_message.Message):
    __slots__ = ("frame_index", "session_id", "response")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    session_id: str
    response: ReconstructResponse
    def __init__(self, frame_index: _Optional[int] = ..., session_id: _Optional[str] = ..., response: _Optional[_Union[ReconstructResponse, _Mapping]] = ...) -> None: ...

class FrameSkipped(_message.Message):
    __slots__ = ("frame_index", "reason")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    reason: str
    def __init__(self, frame_index: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class FrameError(_message.Message):
    __slots__ = ("frame_index", "code", "message")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    code: str
    message: str
    def __init__(self, frame_index: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class StreamResponse(_message.Message):
    __slots__ = ("result", "chunk", "skipped", "error")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    result: FrameResult
    chunk: CubeChunk
    skipped: FrameSkipped
    error: FrameError
    def __init__(self, result: _Optional[_Union[FrameResult, _Mapping]] = ..., chunk: _Optional[_Union[CubeChunk, _Mapping]] = ..., skipped: _Optional[_Union[FrameSkipped, _Mapping]] = ..., error: _Optional[_Union[FrameError, _Mapping]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "bands", "wavelengths_nm", "scales", "parameters", "camera", "device", "dtype", "multiple")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    WAVELENGTHS_NM_FIELD_NUMBER: _ClassVar[int]
    SCALES_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    MULTIPLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    bands: int
    wavelengths_nm: _containers.RepeatedScalarFieldContainer[float]
    scales: int
    parameters: int
    camera: str
    device: str
    dtype: str
    multiple: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., bands: _Optional[int] = ..., wavelengths_nm: _Optional[_Iterable[float]] = ..., scales: _Optional[int] = ..., parameters: _Optional[int] = ..., camera: _Optional[str] = ..., device: _Optional[str] = ..., dtype: _Optional[str] = ..., multiple: _Optional[int] = ...) -> None: ...
