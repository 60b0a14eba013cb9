"""Output format negotiation (`format=` then Accept), media types and extensions."""

from __future__ import annotations

import pytest

from service.codecs import NotAcceptableError, file_extension, media_type, negotiate_output_format
from service.errors import InvalidInputError


def test_media_types_and_extensions() -> None:
    assert (media_type("tiff"), file_extension("tiff")) == ("image/tiff", ".ome.tif")
    assert (media_type("npy"), file_extension("npy")) == ("application/x-npy", ".npy")


@pytest.mark.parametrize(
    ("requested", "accept", "expected"),
    [
        ("npy", "image/tiff", "npy"),
        ("TIF", None, "tiff"),
        ("ome-tiff", None, "tiff"),
        (None, None, "tiff"),
        (None, "", "tiff"),
        (None, "application/x-npy", "npy"),
        (None, "image/tiff;q=0.5, application/x-npy", "npy"),
        (None, "application/x-npy;q=0, image/tiff", "tiff"),
        (None, "text/html, image/*;q=0.8", "tiff"),
        (None, "text/html, application/*", "npy"),
        (None, "*/*", "tiff"),
        (None, "application/x-npy;q=bogus, */*;q=0.1", "tiff"),
    ],
)
def test_negotiation(requested: str | None, accept: str | None, expected: str) -> None:
    assert negotiate_output_format(requested, accept) == expected


def test_default_is_the_callers() -> None:
    assert negotiate_output_format(None, "*/*", default="npy") == "npy"


def test_unknown_requested_format_is_422() -> None:
    with pytest.raises(InvalidInputError, match="accepted: tiff, npy"):
        negotiate_output_format("png", None)


@pytest.mark.parametrize("accept", ["text/html", "application/x-npy;q=0", "application/json, text/*"])
def test_unsatisfiable_accept_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptableError, match="available: image/tiff, application/x-npy") as err:
        negotiate_output_format(None, accept)
    assert err.value.http_status == 406
