"""`mcga serve` settings: the command line's values over the environment's, None meaning unset."""

from __future__ import annotations

import argparse

import pytest

from service.main import build_settings, drain_timeout_s
from service.settings import unknown_variables


def test_cli_overrides_env_and_none_keeps_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCGA_HTTP_PORT", "9000")
    monkeypatch.setenv("MCGA_GRPC_PORT", "9001")
    monkeypatch.setenv("MCGA_HOST", "0.0.0.0")
    s = build_settings(argparse.Namespace(host=None, http_port=8123, grpc_port=None))
    assert (s.host, s.http_port, s.grpc_port) == ("0.0.0.0", 8123, 9001)
    assert drain_timeout_s(s) <= s.request_timeout_s


def test_misspelled_variables_are_named_with_the_setting_meant() -> None:
    environ = {
        "MCGA_MAX_BACH": "4",
        "MCGA_HTTP_PORT": "1",
        "mcga_max_batch": "3",
        "MCGA_ZZZ": "1",
        "PATH": "/",
    }
    assert unknown_variables(environ) == ["MCGA_MAX_BACH (did you mean MCGA_MAX_BATCH?)", "MCGA_ZZZ"]
