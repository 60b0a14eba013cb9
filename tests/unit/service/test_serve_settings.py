"""`mcga serve` settings: the command line's values over the environment's, None meaning unset."""

from __future__ import annotations

import argparse

import pytest

from service.main import build_settings, drain_timeout_s, http_config
from service.settings import Settings, unknown_variables


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


def test_redis_url_is_read_with_or_without_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """MCGA_REDIS_URL was silently ignored (only REDIS_URL was read): replicas ran on in-memory stores."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("MCGA_REDIS_URL", "redis://prefixed:6379/0")
    assert build_settings(argparse.Namespace()).redis_url == "redis://prefixed:6379/0"
    monkeypatch.setenv("REDIS_URL", "redis://plain:6379/0")
    assert build_settings(argparse.Namespace()).redis_url == "redis://plain:6379/0"  # the usual name wins
    assert unknown_variables({"MCGA_REDIS_URL": "x", "REDIS_URL": "y"}) == []


def test_forwarding_headers_are_believed_only_from_configured_proxies() -> None:
    """uvicorn's default believes X-Forwarded-For from any local peer: a local process could rotate
    it past the per-client rate limit and write what it liked into the access log."""
    plain = http_config(Settings(), app=None)
    assert plain.proxy_headers is False
    behind = http_config(Settings(forwarded_allow_ips="10.0.0.0/8"), app=None)
    assert behind.proxy_headers is True and behind.forwarded_allow_ips == "10.0.0.0/8"
