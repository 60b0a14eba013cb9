"""Every domain error maps to a real gRPC status code and a client-error or server-error HTTP status."""

from __future__ import annotations

import grpc

from service import errors


def all_errors() -> list[type[errors.ServiceError]]:
    return [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, errors.ServiceError)]


def test_codes_are_valid_and_unique() -> None:
    classes = all_errors()
    assert len(classes) > 10
    for cls in classes:
        assert cls.grpc_code in grpc.StatusCode.__members__, cls
        assert 400 <= cls.http_status < 600, cls
    named = [c.code for c in classes if c not in (errors.ServiceError, errors.InternalError)]
    assert len(named) == len(set(named))


def test_queue_full_carries_its_retry_hint() -> None:
    err = errors.QueueFullError("full", retry_after_s=1.5)
    assert err.to_dict() == {"error": "queue_full", "message": "full", "retry_after_s": 1.5}
