"""Training and evaluation data: cube readers, camera and measured spectra, RGB synthesis, patch datasets.

Pure numpy/torch; nothing here imports the service.
"""

from model.data.dataset import AugmentConfig, HSIPatchDataset, RGBHSIPatchDataset
from model.data.readers import (
    Cube,
    CubeReadError,
    list_cave_scenes,
    read_arad_mat,
    read_cave,
    read_cube,
    read_envi,
    read_npy,
    read_rgb_image,
    read_tiff,
)
from model.data.spectra import (
    CameraResponse,
    SpectralSet,
    load_cameras,
    load_jiang2013_cameras,
    load_ntire_camera,
    load_spectra_dir,
    load_spectra_mat,
    make_camera,
)
from model.data.synthesis import (
    add_sensor_noise,
    jpeg_roundtrip,
    make_synthetic_cubes,
    random_crop,
    random_dihedral,
    relight,
    render_rgb,
    synthesize_cube,
)

__all__ = [
    "AugmentConfig",
    "CameraResponse",
    "Cube",
    "CubeReadError",
    "HSIPatchDataset",
    "RGBHSIPatchDataset",
    "SpectralSet",
    "add_sensor_noise",
    "jpeg_roundtrip",
    "list_cave_scenes",
    "load_cameras",
    "load_jiang2013_cameras",
    "load_ntire_camera",
    "load_spectra_dir",
    "load_spectra_mat",
    "make_camera",
    "make_synthetic_cubes",
    "random_crop",
    "random_dihedral",
    "read_arad_mat",
    "read_cave",
    "read_cube",
    "read_envi",
    "read_npy",
    "read_rgb_image",
    "read_tiff",
    "relight",
    "render_rgb",
    "synthesize_cube",
]
