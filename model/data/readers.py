"""Readers that turn hyperspectral files into one in-memory type, `Cube`: float32 (bands, H, W) in [0, 1].

Formats: CAVE (a folder of 16-bit PNGs, one per band), ARAD-1K (MATLAB .mat with `cube`) and its JPEG,
ENVI (`.hdr` + raw binary, as the remote-sensing benchmarks ship), and multi-page TIFF / `.npy` arrays
(HySpecNet-11k style). Every failure is a `CubeReadError` that names the file, so a bad scene in a
folder of hundreds is found at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io
import tifffile
from PIL import Image

from model.config import CAVE_WAVELENGTHS

logger = logging.getLogger(__name__)

CAVE_BANDS = len(CAVE_WAVELENGTHS)
_CAVE_BAND_RE = re.compile(r"_(\d{2})\.png$", re.IGNORECASE)
_CUBE_SUFFIXES = {".hdr", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".mat", ".tif", ".tiff", ".npy"}


class CubeReadError(ValueError):
    """A file that cannot be read as a hyperspectral cube; the message names the file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"cannot read cube {str(path)!r}: {reason}")
        self.path = Path(path)


@dataclass(frozen=True, eq=False)
class Cube:
    """A hyperspectral cube in memory: `data` (bands, H, W) float32 in [0, 1], band centres ascending."""

    data: np.ndarray
    wavelengths_nm: tuple[float, ...]
    name: str
    source: Path | None = None

    def __post_init__(self) -> None:
        if self.data.ndim != 3 or self.data.dtype != np.float32:
            raise ValueError(
                f"{self.name}: data must be float32 (bands, H, W), got {self.data.dtype} {self.data.shape}"
            )
        if len(self.wavelengths_nm) != self.data.shape[0]:
            raise ValueError(
                f"{self.name}: {len(self.wavelengths_nm)} wavelengths for {self.data.shape[0]} bands"
            )
        if np.any(np.diff(self.wavelengths_nm) <= 0):
            raise ValueError(f"{self.name}: wavelengths must be strictly increasing")
        if not (np.isfinite(self.data).all() and self.data.min() >= 0.0 and self.data.max() <= 1.0):
            raise ValueError(f"{self.name}: data must be finite and in [0, 1]")

    @property
    def bands(self) -> int:
        return int(self.data.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        b, h, w = self.data.shape
        return int(b), int(h), int(w)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Re-raise the low-level errors of decoders (OSError, KeyError, PIL's SyntaxError...) as one type."""
    try:
        yield
    except CubeReadError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, SyntaxError, EOFError) as exc:
        raise CubeReadError(path, f"{type(exc).__name__}: {exc}") from exc


def to_unit_range(data: np.ndarray, scale: float | None) -> np.ndarray:
    """Float32 in [0, 1]: NaN -> 0, divided by `scale` (or by the cube's max if None and the data are
    integers or exceed 1), then clipped. Negative values (sensor offsets in remote data) clip to 0."""
    out = np.nan_to_num(data.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    if scale is None and (np.issubdtype(data.dtype, np.integer) or out.max(initial=0.0) > 1.0):
        scale = float(out.max(initial=0.0))
    if scale is not None and scale > 0:
        out = out / np.float32(scale)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def sort_by_wavelength(data: np.ndarray, wavelengths: Sequence[float], path: Path) -> Cube:
    """A `Cube` with bands reordered so wavelengths ascend (some sensors list overlapping spectrometers
    out of order); repeated wavelengths are an error."""
    wl = np.asarray(wavelengths, dtype=np.float64)
    order = np.argsort(wl, kind="stable")
    if np.any(order != np.arange(len(wl))):
        logger.info("%s: wavelengths not monotonic; bands sorted by wavelength", path)
        data, wl = data[order], wl[order]
    if np.any(np.diff(wl) <= 0):
        raise CubeReadError(path, "repeated wavelengths")
    return Cube(np.ascontiguousarray(data), tuple(float(w) for w in wl), _stem(path), path)


def _stem(path: Path) -> str:
    """`samson_1.img.hdr` -> `samson_1`: the file name without its cube-format suffixes."""
    name = path.name
    while Path(name).suffix.lower() in _CUBE_SUFFIXES:
        name = Path(name).stem
    return name


# --- CAVE -------------------------------------------------------------------------------------------


def _cave_band_files(scene_dir: Path) -> dict[int, Path] | None:
    """Band number -> PNG, looking in `scene_dir` and in the original release's nested `scene_dir/name`."""
    for d in (scene_dir, scene_dir / scene_dir.name):
        if d.is_dir():
            bands = {int(m.group(1)): p for p in d.iterdir() if (m := _CAVE_BAND_RE.search(p.name))}
            if bands:
                return bands
    return None


def list_cave_scenes(root: Path | str) -> list[Path]:
    """The scene folders under a CAVE root (flat or nested layout), sorted by name."""
    root = Path(root)
    return sorted(d for d in root.iterdir() if d.is_dir() and _cave_band_files(d) is not None)


def _read_band_png(path: Path) -> np.ndarray:
    """One CAVE band as float32 in [0, 1]: 16-bit / 65535, 8-bit / 255; the first channel of RGB(A);
    palette and 1-bit PNGs by their grey levels (their raw arrays are palette indices and booleans)."""
    with _reading(path), Image.open(path) as img:
        arr = np.asarray(img.convert("L") if img.mode in ("P", "PA", "1") else img)
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise CubeReadError(path, f"expected a greyscale image, got shape {arr.shape}")
    peak = 255.0 if arr.dtype == np.uint8 else 65535.0
    return np.clip(arr.astype(np.float32) / np.float32(peak), 0.0, 1.0)


def read_cave(scene_dir: Path | str) -> Cube:
    """A CAVE scene: 31 PNGs `<scene>_ms_NN.png`, band NN at 400 + 10(NN - 1) nm, any size (256 or 512)."""
    scene_dir = Path(scene_dir)
    files = _cave_band_files(scene_dir)
    if files is None:
        raise CubeReadError(scene_dir, "no CAVE band PNGs (<scene>_ms_NN.png) here or in a nested folder")
    missing = sorted(set(range(1, CAVE_BANDS + 1)) - set(files))
    if missing:
        raise CubeReadError(scene_dir, f"missing bands {missing}")
    bands = [_read_band_png(files[n]) for n in range(1, CAVE_BANDS + 1)]
    for n, band in enumerate(bands, start=1):
        if band.shape != bands[0].shape:
            raise CubeReadError(files[n], f"band shape {band.shape} differs from band 1's {bands[0].shape}")
    name = scene_dir.name.removesuffix("_ms")
    return Cube(np.stack(bands), CAVE_WAVELENGTHS, name, scene_dir)


# --- ARAD-1K -------------------------------------------------------------------------------------------


def _cube_3d(path: Path, data: np.ndarray) -> np.ndarray:
    if data.ndim != 3:  # before the axes are reordered, which would fail less clearly
        raise CubeReadError(path, f"`cube` must be 3-D, got {data.shape}")
    return data


def read_arad_mat(path: Path | str) -> Cube:
    """An ARAD-1K `.mat` cube. v7.3 (HDF5) files store MATLAB's (H, W, 31) as (31, W, H), so the last two
    axes are swapped back; a v5 file read by scipy is (H, W, 31). Wavelengths come from `bands` if present,
    else 400..700 step 10. Values are already normalised by the challenge; they are clipped to [0, 1]."""
    path = Path(path)
    with _reading(path):
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                data = _cube_3d(path, np.asarray(f["cube"], dtype=np.float32)).transpose(0, 2, 1)
                bands = np.asarray(f["bands"]).ravel() if "bands" in f else None
        else:
            mat = scipy.io.loadmat(path)
            data = _cube_3d(path, np.asarray(mat["cube"], dtype=np.float32)).transpose(2, 0, 1)
            bands = np.asarray(mat["bands"]).ravel() if "bands" in mat else None
    wavelengths = CAVE_WAVELENGTHS if bands is None else tuple(float(b) for b in bands)
    if len(wavelengths) != data.shape[0]:
        raise CubeReadError(path, f"{len(wavelengths)} wavelengths for {data.shape[0]} bands")
    return sort_by_wavelength(to_unit_range(data, 1.0), wavelengths, path)


def read_rgb_image(path: Path | str) -> np.ndarray:
    """An 8-bit RGB image (e.g. ARAD-1K's paired `.jpg`) as float32 (H, W, 3) in [0, 1]."""
    path = Path(path)
    with _reading(path), Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    return arr / np.float32(255.0)


# --- TIFF / NPY ----------------------------------------------------------------------------------------


def default_wavelengths(bands: int, start_nm: float = 400.0, stop_nm: float = 700.0) -> tuple[float, ...]:
    """Evenly spaced placeholders for a cube whose wavelengths are unknown (31 bands -> CAVE's grid)."""
    return tuple(float(w) for w in np.linspace(start_nm, stop_nm, bands))


def _sidecar_wavelengths(path: Path) -> list[float] | None:
    """Wavelengths from `<stem>.wavelengths.txt` beside the file: numbers separated by spaces/commas."""
    sidecar = path.with_suffix(".wavelengths.txt")
    if not sidecar.is_file():
        return None
    with _reading(sidecar):
        return [float(t) for t in re.split(r"[\s,]+", sidecar.read_text().strip()) if t]


def _array_cube(
    path: Path, data: np.ndarray, wavelengths: Sequence[float] | None, scale: float | None
) -> Cube:
    if data.ndim != 3:
        raise CubeReadError(path, f"expected a (bands, H, W) array, got shape {data.shape}")
    wl = wavelengths if wavelengths is not None else _sidecar_wavelengths(path)
    if wl is None:
        logger.warning("%s: wavelengths unknown; assuming evenly spaced 400-700 nm", path)
        wl = default_wavelengths(data.shape[0])
    if len(wl) != data.shape[0]:
        raise CubeReadError(path, f"{len(wl)} wavelengths for {data.shape[0]} bands")
    return sort_by_wavelength(to_unit_range(data, scale), wl, path)


def read_tiff(
    path: Path | str, wavelengths_nm: Sequence[float] | None = None, scale: float | None = None
) -> Cube:
    """A multi-page TIFF cube (bands, H, W), one page per band (HySpecNet-11k's GeoTIFFs).

    Wavelengths: the argument, else a `<stem>.wavelengths.txt` sidecar, else evenly spaced 400-700 nm
    (a placeholder, logged). Scale: the argument (e.g. 10000 for reflectance x 10^4), else the cube's
    max for integer data; float data already in [0, 1] are kept as they are."""
    path = Path(path)
    with _reading(path):
        data = tifffile.imread(path)
    return _array_cube(path, np.asarray(data), wavelengths_nm, scale)


def read_npy(
    path: Path | str, wavelengths_nm: Sequence[float] | None = None, scale: float | None = None
) -> Cube:
    """A `.npy` cube (bands, H, W), e.g. HySpecNet-11k's preprocessed patches; same rules as `read_tiff`."""
    path = Path(path)
    with _reading(path):
        data = np.load(path, allow_pickle=False)
    return _array_cube(path, data, wavelengths_nm, scale)


# --- ENVI ----------------------------------------------------------------------------------------------

_ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}
_BINARY_SUFFIXES = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip")


def parse_envi_header(text: str) -> dict[str, str]:
    """`key = value` fields of an ENVI header (keys lower-cased); `{...}` values may span lines."""
    lines = text.splitlines()
    if not lines or not lines[0].strip().startswith("ENVI"):
        raise ValueError("not an ENVI header (first line is not 'ENVI')")
    fields: dict[str, str] = {}
    key, value, depth = "", "", 0
    for line in lines[1:]:
        if depth > 0:
            value += "\n" + line
        elif "=" in line:
            key, _, value = (part.strip() for part in line.partition("="))
        else:
            continue
        depth = value.count("{") - value.count("}")
        if depth <= 0:
            fields[key.lower()] = value.strip().removeprefix("{").removesuffix("}").strip()
    if depth > 0:
        raise ValueError(f"unterminated '{{' in header field {key!r}")
    return fields


def _numbers(value: str) -> list[float]:
    return [float(t) for t in re.split(r"[\s,]+", value.strip()) if t]


def _envi_paths(path: Path) -> tuple[Path, Path]:
    """(header, binary) for a path to either; headers are `X.hdr` or `X.img.hdr`."""
    if path.suffix.lower() == ".hdr":
        base = path.with_suffix("")
        for suffix in _BINARY_SUFFIXES:
            binary = Path(f"{base}{suffix}")
            if binary.is_file() and binary != path:
                return path, binary
        raise CubeReadError(path, "no binary file beside the ENVI header")
    for header in (Path(f"{path}.hdr"), path.with_suffix(".hdr")):
        if header.is_file():
            return header, path
    raise CubeReadError(path, "no ENVI header (X.hdr or X.img.hdr) beside the binary")


def read_envi(path: Path | str) -> Cube:
    """An ENVI cube from its header or binary path: BSQ/BIL/BIP, data types 1,2,3,4,5,12 (and 13-15), either
    byte order. Wavelengths from `wavelength = {...}` (micrometres converted to nm; evenly spaced
    400-700 nm if absent); bands with `bbl` 0 are dropped, and bands are sorted by wavelength because
    some headers list overlapping spectrometers out of order (AVIRIS Jasper Ridge near 664-676 and
    1254-1269 nm). Scale: divided by `reflectance scale factor` if given, else by the cube's max for
    integer data; `data ignore value` pixels become 0; the result is clipped to [0, 1]."""
    header, binary = _envi_paths(Path(path))
    with _reading(header):
        hdr = parse_envi_header(header.read_text(errors="replace"))
        bands, lines, samples = (int(hdr[k]) for k in ("bands", "lines", "samples"))
        dtype_code, offset = int(hdr["data type"]), int(hdr.get("header offset", "0"))
        interleave = hdr.get("interleave", "bsq").lower()
        big_endian = int(hdr.get("byte order", "0")) == 1
    if dtype_code not in _ENVI_DTYPES or interleave not in ("bsq", "bil", "bip"):
        raise CubeReadError(header, f"unsupported data type {dtype_code} or interleave {interleave!r}")
    dtype = np.dtype(_ENVI_DTYPES[dtype_code]).newbyteorder(">" if big_endian else "<")
    expected = offset + bands * lines * samples * dtype.itemsize
    if binary.stat().st_size != expected:
        raise CubeReadError(
            binary,
            f"{binary.stat().st_size} bytes, header implies {expected} "
            f"({bands} bands x {lines} lines x {samples} samples of {dtype})",
        )
    with _reading(binary):
        raw = np.fromfile(binary, dtype=dtype, count=bands * lines * samples, offset=offset)
    shape = {"bsq": (bands, lines, samples), "bil": (lines, bands, samples), "bip": (lines, samples, bands)}
    axes = {"bsq": (0, 1, 2), "bil": (1, 0, 2), "bip": (2, 0, 1)}
    data = raw.reshape(shape[interleave]).transpose(axes[interleave]).astype(dtype.newbyteorder("="))
    with _reading(header):
        if "wavelength" in hdr:
            wl = _numbers(hdr["wavelength"])
            if "micro" in hdr.get("wavelength units", "").lower() or max(wl) < 30.0:
                wl = [w * 1000.0 for w in wl]
        else:  # placeholders, in nm already: the header's units describe no list
            wl = list(default_wavelengths(bands))
        keep = [v != 0 for v in _numbers(hdr["bbl"])] if "bbl" in hdr else [True] * bands
        scale = float(hdr["reflectance scale factor"]) if "reflectance scale factor" in hdr else None
        if "data ignore value" in hdr:
            data = np.where(data == float(hdr["data ignore value"]), 0, data)
    if len(wl) != bands or len(keep) != bands:
        raise CubeReadError(header, f"{len(wl)} wavelengths / {len(keep)} bbl entries for {bands} bands")
    if not all(keep):
        logger.info("%s: dropping %d bad bands (bbl = 0)", header, keep.count(False))
        data, wl = data[np.asarray(keep)], [w for w, k in zip(wl, keep) if k]
    return sort_by_wavelength(to_unit_range(data, scale), wl, Path(path))


# --- dispatch ------------------------------------------------------------------------------------------


def read_cube(path: Path | str) -> Cube:
    """Read any supported cube, choosing the reader from what `path` is: a CAVE folder, `.mat`, an ENVI
    header or binary with a header beside it, `.tif`/`.tiff` or `.npy`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        return read_cave(path)
    if not path.is_file():
        raise CubeReadError(path, "no such file or folder")
    if suffix == ".mat":
        return read_arad_mat(path)
    if suffix in (".tif", ".tiff"):
        return read_tiff(path)
    if suffix == ".npy":
        return read_npy(path)
    if suffix == ".hdr" or Path(f"{path}.hdr").is_file() or path.with_suffix(".hdr").is_file():
        return read_envi(path)
    raise CubeReadError(path, f"unknown cube format {suffix!r}")
