"""The input contract: scale by bit depth only, linear by default, inverse sRGB on request."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from service.codecs import FLOAT_TOLERANCE, decode_image, srgb_to_linear
from service.errors import InvalidInputError

Encoder = Callable[..., bytes]


def _reference_srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1, in float64."""
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def test_srgb_curve_matches_the_standard() -> None:
    c = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(srgb_to_linear(c), _reference_srgb_to_linear(c), rtol=2e-6, atol=1e-7)
    assert srgb_to_linear(np.array([0.0, 1.0])).tolist() == [0.0, 1.0]
    assert srgb_to_linear(np.array([0.5]))[0] == pytest.approx(0.214041, abs=1e-6)


@pytest.mark.parametrize("bits", [8, 16])
def test_srgb_lookup_tables_match_the_curve_for_every_code(png: Encoder, bits: int) -> None:
    codes = np.arange(2**bits, dtype=np.uint8 if bits == 8 else np.uint16)
    arr = np.resize(codes, codes.size + (-codes.size) % 384).reshape(-1, 128, 3)
    out = decode_image(png(arr), color="srgb").rgb
    expected = _reference_srgb_to_linear(arr / float(2**bits - 1))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)


def test_linear_is_the_default_and_applies_no_curve(png: Encoder) -> None:
    arr = np.array([[[0, 128, 255]]], np.uint8)
    out = decode_image(png(arr))
    assert out.color == "linear"
    np.testing.assert_array_equal(out.rgb, np.array([[[0, 128 / 255, 1]]], np.float32))


def test_no_per_image_normalisation(png: Encoder, npy: Encoder) -> None:
    """A dark frame stays dark and twice the exposure stays twice as bright."""
    dark = np.random.default_rng(0).integers(0, 20, (8, 8, 3), dtype=np.uint8)
    one, two = decode_image(png(dark)).rgb, decode_image(png(dark * 2)).rgb
    assert one.max() <= 19 / 255
    np.testing.assert_allclose(two, 2 * one, rtol=1e-6)
    dim = np.full((4, 4, 3), 0.01, np.float32)
    np.testing.assert_array_equal(decode_image(npy(dim)).rgb, dim)


def test_srgb_applies_to_float_inputs_too(npy: Encoder) -> None:
    arr = np.random.default_rng(1).random((4, 4, 3)).astype(np.float32)
    out = decode_image(npy(arr), color="srgb")
    np.testing.assert_allclose(
        out.rgb, _reference_srgb_to_linear(arr.astype(np.float64)), rtol=1e-5, atol=1e-7
    )


def test_tolerance_edges(npy: Encoder) -> None:
    ok = np.full((2, 2, 3), 1.0 + FLOAT_TOLERANCE * 0.9, np.float32)
    assert decode_image(npy(ok)).rgb.max() == 1.0
    bad = np.full((2, 2, 3), 1.0 + FLOAT_TOLERANCE * 2, np.float32)
    with pytest.raises(InvalidInputError):
        decode_image(npy(bad))


def test_unknown_color_is_rejected(png: Encoder, rgb8: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="accepted: linear, srgb"):
        decode_image(png(rgb8), color="gamma22")  # type: ignore[arg-type]


def test_output_is_owned_and_writable(npy: Encoder) -> None:
    arr = np.random.default_rng(2).random((3, 3, 3)).astype(np.float32)
    data = npy(arr)
    out = decode_image(data)
    out.rgb[...] = 0  # must not touch the request body
    assert decode_image(data).rgb.max() > 0
