"""Band selection, region cropping and the parsers of their REST options."""

from __future__ import annotations

import numpy as np
import pytest

from service.codecs import crop_region, parse_band_range, parse_region, select_bands
from service.errors import InvalidInputError

WAVELENGTHS = tuple(400.0 + 10.0 * i for i in range(31))


@pytest.fixture(scope="module")
def cube() -> np.ndarray:
    return np.arange(4 * 5 * 31, dtype=np.float32).reshape(4, 5, 31)


def test_select_bands_is_inclusive_and_a_view(cube: np.ndarray) -> None:
    sub, wl = select_bands(cube, WAVELENGTHS, 450, 650)
    assert wl == tuple(range(450, 651, 10)) and sub.shape == (4, 5, 21)
    assert np.shares_memory(sub, cube)
    np.testing.assert_array_equal(sub, cube[:, :, 5:26])


def test_select_between_bands(cube: np.ndarray) -> None:
    sub, wl = select_bands(cube, WAVELENGTHS, 455, 475)
    assert wl == (460.0, 470.0) and sub.shape[2] == 2


@pytest.mark.parametrize(("lo", "hi", "expected"), [(600, 500, "LO <= HI"), (701, 800, "span 400-700 nm")])
def test_bad_band_ranges_are_422(cube: np.ndarray, lo: float, hi: float, expected: str) -> None:
    with pytest.raises(InvalidInputError, match=expected):
        select_bands(cube, WAVELENGTHS, lo, hi)


def test_select_bands_checks_its_own_arguments(cube: np.ndarray) -> None:
    with pytest.raises(ValueError, match="30 wavelengths"):
        select_bands(cube, WAVELENGTHS[:30], 400, 500)


def test_crop_region_is_a_view(cube: np.ndarray) -> None:
    out = crop_region(cube, 1, 2, 3, 2)
    assert out.shape == (2, 3, 31) and np.shares_memory(out, cube)
    np.testing.assert_array_equal(out, cube[2:4, 1:4])
    assert crop_region(np.zeros((4, 5)), 0, 0, 5, 4).shape == (4, 5)


@pytest.mark.parametrize("region", [(-1, 0, 2, 2), (0, 0, 0, 2), (4, 0, 2, 2), (0, 3, 2, 2), (0, 0, 6, 1)])
def test_regions_outside_the_image_are_422(cube: np.ndarray, region: tuple[int, int, int, int]) -> None:
    with pytest.raises(InvalidInputError, match="inside the 5x4 image"):
        crop_region(cube, *region)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("450-650", (450.0, 650.0)),
        ("450:650", (450.0, 650.0)),
        (" 450 - 650 ", (450.0, 650.0)),
        ("550", (550.0, 550.0)),
    ],
)
def test_parse_band_range(text: str, expected: tuple[float, float]) -> None:
    assert parse_band_range(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1-2-3", "nan", "450-inf", "-"])
def test_parse_band_range_rejects(text: str) -> None:
    with pytest.raises(InvalidInputError, match="LO-HI in nm"):
        parse_band_range(text)


def test_parse_region() -> None:
    assert parse_region("0, 8,256,128") == (0, 8, 256, 128)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "1.5,0,1,1", "", "1,2,3,4,5"])
def test_parse_region_rejects(text: str) -> None:
    with pytest.raises(InvalidInputError, match="x,y,w,h"):
        parse_region(text)
