"""Access control without a server: key sources, the decision table of routes x keys, rate limits
keyed by key or address, and settings validation of the new knobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.access import Access, AccessConfigError, AccessControl, presented_key, read_key_file
from service.errors import PermissionDeniedError, RateLimitedError, UnauthenticatedError
from service.grpc.access import access_of, peer_address
from service.ratelimit import TokenBucketLimiter
from service.settings import Settings

INFER, ADMIN = "i" * 32, "a" * 32


def test_embedded_defaults_are_open() -> None:
    access = AccessControl.from_settings(Settings())
    assert not access.active
    for level in Access:
        assert access.check(level, None, "1.2.3.4") is None


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer abc", None, "abc"),
        ("bearer  abc ", None, "abc"),
        ("Basic dXNlcg==", "xyz", "xyz"),
        (None, " xyz ", "xyz"),
        ("Bearer ", None, None),
        (None, None, None),
    ],
)
def test_presented_key(authorization: str | None, x_api_key: str | None, expected: str | None) -> None:
    assert presented_key(authorization, x_api_key) == expected


# (inference keys, admin keys, route, key sent) -> None (allowed) or the error
TABLE = [
    ((INFER,), (ADMIN,), Access.INFERENCE, INFER, None),
    ((INFER,), (ADMIN,), Access.INFERENCE, ADMIN, None),
    ((INFER,), (ADMIN,), Access.INFERENCE, None, UnauthenticatedError),
    ((INFER,), (ADMIN,), Access.INFERENCE, "w" * 32, UnauthenticatedError),
    ((INFER,), (ADMIN,), Access.ADMIN, ADMIN, None),
    ((INFER,), (ADMIN,), Access.ADMIN, INFER, PermissionDeniedError),
    ((INFER,), (ADMIN,), Access.ADMIN, None, UnauthenticatedError),
    ((INFER,), (ADMIN,), Access.OPEN, None, None),
    ((INFER,), (ADMIN,), Access.METRICS, None, None),
    ((), (ADMIN,), Access.INFERENCE, None, None),  # only admin routes protected
    ((), (ADMIN,), Access.ADMIN, None, UnauthenticatedError),
    ((INFER,), (), Access.ADMIN, INFER, PermissionDeniedError),  # no admin key: admin closed
]


@pytest.mark.parametrize(("inference", "admin", "level", "key", "error"), TABLE)
def test_decision_table(
    inference: tuple[str, ...],
    admin: tuple[str, ...],
    level: Access,
    key: str | None,
    error: type[Exception] | None,
) -> None:
    access = AccessControl(inference, admin)
    if error is None:
        access.check(level, key, "10.0.0.1")
    else:
        with pytest.raises(error):
            access.check(level, key, "10.0.0.1")


def test_metrics_key_is_optional() -> None:
    access = AccessControl((INFER,), (ADMIN,), metrics_require_key=True)
    with pytest.raises(UnauthenticatedError):
        access.check(Access.METRICS, None, None)
    access.check(Access.METRICS, INFER, None)


def test_rate_limit_by_key_else_address() -> None:
    limiter = TokenBucketLimiter(0.001, 2)
    access = AccessControl(limiter=limiter)
    for _ in range(2):
        access.check(Access.INFERENCE, None, "10.0.0.1")
    with pytest.raises(RateLimitedError) as info:
        access.check(Access.INFERENCE, None, "10.0.0.1")
    assert info.value.retry_after_s > 0 and info.value.http_status == 429
    access.check(Access.INFERENCE, None, "10.0.0.2")  # another address, another bucket
    access.check(Access.OPEN, None, "10.0.0.1")  # probes are never limited
    keyed = AccessControl((INFER,), limiter=TokenBucketLimiter(0.001, 1))
    keyed.check(Access.INFERENCE, INFER, "10.0.0.1")
    with pytest.raises(RateLimitedError):  # the same key from another address: one bucket
        keyed.check(Access.INFERENCE, INFER, "10.0.0.9")
    with pytest.raises(UnauthenticatedError):  # a wrong key spends the address' bucket...
        keyed.check(Access.INFERENCE, "w" * 32, "10.0.0.3")
    with pytest.raises(RateLimitedError):  # ...so guessing keys is rate limited too
        keyed.check(Access.INFERENCE, "v" * 32, "10.0.0.3")


def test_keys_from_env_and_files(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text(f"# rotated 2025-01\n{'k' * 20}\n\n{'m' * 20}, {'n' * 20}  # two on a line\n")
    assert read_key_file(secret) == ("k" * 20, "m" * 20, "n" * 20)
    settings = Settings.model_validate(
        {"api_keys": f"{INFER}, {'j' * 16}", "admin_api_keys_file": str(secret)}
    )
    assert settings.api_keys == (INFER, "j" * 16) and INFER not in repr(settings)
    access = AccessControl.from_settings(settings)
    assert access.identify("n" * 20, None).role == "admin"
    assert access.identify("j" * 16, None).role == "inference"
    assert access.identify("j" * 15, "h").client == "addr:h"


@pytest.mark.parametrize("bad", ["short", "has space inside it", "ünïcödé-key-long-enough"])
def test_unusable_keys_stop_the_start_without_showing_them(bad: str) -> None:
    with pytest.raises(AccessConfigError) as info:
        AccessControl((bad,))
    assert bad not in str(info.value)


def test_tls_settings_validate(tmp_path: Path) -> None:
    assert Settings.model_validate({"tls_cert_file": "", "tls_key_file": ""}).tls is False
    with pytest.raises(ValidationError):
        Settings(tls_cert_file=tmp_path / "c.pem")
    with pytest.raises(ValidationError):
        Settings(tls_client_ca_file=tmp_path / "ca.pem")


def test_grpc_method_classes_and_peers() -> None:
    assert access_of("/grpc.health.v1.Health/Check") is Access.OPEN
    assert access_of("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") is Access.OPEN
    assert access_of("/mcga.v1.Reconstruction/Reconstruct") is Access.INFERENCE
    assert peer_address("ipv4:127.0.0.1:5555") == "127.0.0.1"
    assert peer_address("ipv6:[::1]:5555") == "::1"
    assert peer_address("unix:/tmp/s") == "/tmp/s"
    assert peer_address(None) is None
