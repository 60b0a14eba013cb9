"""Settings: MCGA_ variables, REDIS_URL without prefix, validation at construction."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import BUNDLED_WEIGHTS, Settings


def test_defaults_serve_the_bundled_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    s = Settings()
    assert s.weights == BUNDLED_WEIGHTS and s.redis_url is None and s.device == "auto"


def test_environment_is_read_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCGA_MAX_BATCH", "3")
    monkeypatch.setenv("MCGA_WEIGHTS", "/tmp/other.pt")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/1")
    s = Settings()
    assert (s.max_batch, str(s.weights), s.redis_url) == (3, "/tmp/other.pt", "redis://example:6379/1")


@pytest.mark.parametrize(
    "bad", [{"max_batch": 0}, {"tile_size": 64, "tile_overlap": 32}, {"dtype": "int8"}, {"unknown": 1}]
)
def test_invalid_settings_fail_fast(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**bad)  # type: ignore[arg-type]
