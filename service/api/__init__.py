"""The REST edge: FastAPI routes translating HTTP <-> the shared inference core."""

from service.api.app import create_app

__all__ = ["create_app"]
