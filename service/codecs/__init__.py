"""The front ends' codecs: request bytes -> model input, and cube -> response bytes.

Pure functions on bytes and numpy arrays (no FastAPI, gRPC or torch), CPU-bound: the edges run
them off the event loop. Errors are `service.errors` classes, so each edge translates them once.
"""

from service.codecs.cube_out import (
    COMPRESSIONS,
    CUBE_DTYPES,
    Compression,
    CubeDtype,
    EncodedCube,
    encode_cube,
    encode_cube_chunks,
)
from service.codecs.cube_read import CubeFile, read_cube_tiff
from service.codecs.decode import DecodedImage, decode_image
from service.codecs.errors import NotAcceptableError, UnsupportedMediaTypeError
from service.codecs.formats import (
    INPUT_MEDIA_TYPES,
    OUTPUT_EXTENSIONS,
    OUTPUT_MEDIA_TYPES,
    InputFormat,
    OutputFormat,
    file_extension,
    media_type,
    negotiate_output_format,
    parse_output_format,
)
from service.codecs.limits import DEFAULT_LIMITS, DecodeLimits
from service.codecs.pixels import COLORS, FLOAT_TOLERANCE, Color, srgb_to_linear
from service.codecs.sniff import detect_format
from service.codecs.subset import crop_region, parse_band_range, parse_region, select_bands

__all__ = [
    "COLORS",
    "COMPRESSIONS",
    "CUBE_DTYPES",
    "DEFAULT_LIMITS",
    "FLOAT_TOLERANCE",
    "INPUT_MEDIA_TYPES",
    "OUTPUT_EXTENSIONS",
    "OUTPUT_MEDIA_TYPES",
    "Color",
    "Compression",
    "CubeDtype",
    "CubeFile",
    "DecodeLimits",
    "DecodedImage",
    "EncodedCube",
    "InputFormat",
    "NotAcceptableError",
    "OutputFormat",
    "UnsupportedMediaTypeError",
    "crop_region",
    "decode_image",
    "detect_format",
    "encode_cube",
    "encode_cube_chunks",
    "file_extension",
    "media_type",
    "negotiate_output_format",
    "parse_band_range",
    "parse_output_format",
    "parse_region",
    "read_cube_tiff",
    "select_bands",
    "srgb_to_linear",
]
