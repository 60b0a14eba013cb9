"""Reading an OME-TIFF cube written by `cube_out` back into (H, W, C) with its wavelengths.

For clients and tests: it shows where each piece lives (pixels in the planar CYX series,
wavelengths in the OME Channel elements, key/value metadata in the MapAnnotation).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
import tifffile

_NS = {"ome": "http://www.openmicroscopy.org/Schemas/OME/2016-06"}


@dataclass(frozen=True)
class CubeFile:
    cube: np.ndarray  # (H, W, C)
    wavelengths_nm: tuple[float, ...]
    metadata: dict[str, str]


def read_cube_tiff(data: bytes) -> CubeFile:
    """Parse an OME-TIFF cube; raises ValueError when `data` is not one."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        if not tif.is_ome or tif.ome_metadata is None:
            raise ValueError("not an OME-TIFF")
        series = tif.series[0]
        if series.axes not in ("CYX", "YX"):  # tifffile squeezes the band axis of a 1-band cube
            raise ValueError(f"expected axes CYX, got {series.axes}")
        bands_cyx = series.asarray().reshape(-1, *series.shape[-2:])
        cube = np.moveaxis(bands_cyx, 0, -1)
        root = ET.fromstring(tif.ome_metadata)
    channels = root.findall(".//ome:Image/ome:Pixels/ome:Channel", _NS)
    wavelengths = tuple(float(ch.attrib["EmissionWavelength"]) for ch in channels)
    if len(wavelengths) != cube.shape[2]:
        raise ValueError(f"{len(wavelengths)} channel wavelengths for {cube.shape[2]} bands")
    metadata = {
        m.attrib["K"]: m.text or ""
        for m in root.findall(".//ome:StructuredAnnotations/ome:MapAnnotation/ome:Value/ome:M", _NS)
    }
    return CubeFile(cube=cube, wavelengths_nm=wavelengths, metadata=metadata)
