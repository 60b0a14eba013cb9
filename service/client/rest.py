"""REST clients over httpx: `Client` (blocking) and `AsyncClient` (asyncio), one method per route.

with Client("http://127.0.0.1:8000") as c:
    r = c.reconstruct("frame.png", session_id="cam-1", fmt="tiff")
    r.cube.shape, r.wavelengths_nm[:3], r.session_step

`api_key` goes out as `Authorization: Bearer KEY`; `verify` takes an `ssl.SSLContext`, e.g.
`ssl.create_default_context(cafile="ca.pem")` for a server with a private certificate.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx

from service.client.convert import (
    Bands,
    Image,
    Region,
    Result,
    content_type,
    error_from_response,
    image_bytes,
    reconstruct_params,
    result_from_response,
)
from service.client.errors import ClientError

DEFAULT_URL = "http://127.0.0.1:8000"
_H = TypeVar("_H", httpx.Client, httpx.AsyncClient)


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise error_from_response(response.status_code, response.content, response.headers)
    return response


def _json(response: httpx.Response) -> dict[str, Any]:
    body = _checked(response).json()
    return body if isinstance(body, dict) else {"value": body}


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _no_response(exc: httpx.TransportError) -> ClientError:
    """No HTTP answer at all (refused, reset, timed out, TLS failed) as a ClientError with status 0."""
    timeout = isinstance(exc, httpx.TimeoutException)
    return ClientError(
        f"no response: {type(exc).__name__}: {exc}", status=0, code="timeout" if timeout else "unavailable"
    )


def _own_http(
    make: Callable[..., _H], http: _H | None, base_url: str, timeout: float, api_key: str | None, verify: Any
) -> _H:
    """The httpx client to use: ours, or the caller's with the API key added (TLS is then its own)."""
    if http is None:
        return make(base_url=base_url, timeout=timeout, headers=_headers(api_key), verify=verify)
    if verify is not True:
        raise ValueError("verify applies to the client's own httpx client; configure the one passed as http")
    http.headers.update(_headers(api_key))
    return http


class Client:
    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
        api_key: str | None = None,
        verify: ssl.SSLContext | bool = True,
    ):
        self._http = _own_http(httpx.Client, http, base_url, timeout, api_key, verify)

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise _no_response(exc) from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def reconstruct(
        self,
        image: Image,
        *,
        session_id: str | None = None,
        tta_steps: int | None = None,
        fmt: str = "npy",
        dtype: str = "float32",
        bands: Bands | None = None,
        region: Region | None = None,
        color: str = "linear",
    ) -> Result:
        """POST /reconstruct: the frame's cube (H, W, C) with its wavelengths and the response's facts."""
        body = image_bytes(image)
        params = reconstruct_params(
            session_id=session_id,
            tta_steps=tta_steps,
            fmt=fmt,
            dtype=dtype,
            bands=bands,
            region=region,
            color=color,
        )
        response = self._send(
            "POST", "/reconstruct", content=body, params=params, headers={"Content-Type": content_type(body)}
        )
        return result_from_response(_checked(response).content, response.headers)

    def model(self) -> dict[str, Any]:
        return _json(self._send("GET", "/v1/model"))

    def session(self, session_id: str) -> dict[str, Any]:
        return _json(self._send("GET", f"/sessions/{quote(session_id, safe='')}"))

    def delete_session(self, session_id: str) -> bool:
        """Reset a session; False when there was nothing to reset."""
        return bool(_json(self._send("DELETE", f"/sessions/{quote(session_id, safe='')}")).get("deleted"))

    def health(self) -> bool:
        """Liveness: the process answers (False when nothing answers)."""
        try:
            return self._send("GET", "/healthz").status_code == 200
        except ClientError:
            return False

    def ready(self) -> dict[str, Any]:
        """Readiness body ({"ready": bool, "model": bool, "store": bool | None}), 200 or 503 alike."""
        response = self._send("GET", "/readyz")
        if response.status_code not in (200, 503):
            _checked(response)
        body = response.json()
        return body if isinstance(body, dict) else {"ready": False}


class AsyncClient:
    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 60.0,
        http: httpx.AsyncClient | None = None,
        api_key: str | None = None,
        verify: ssl.SSLContext | bool = True,
    ):
        self._http = _own_http(httpx.AsyncClient, http, base_url, timeout, api_key, verify)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise _no_response(exc) from exc

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def reconstruct(
        self,
        image: Image,
        *,
        session_id: str | None = None,
        tta_steps: int | None = None,
        fmt: str = "npy",
        dtype: str = "float32",
        bands: Bands | None = None,
        region: Region | None = None,
        color: str = "linear",
    ) -> Result:
        body = image_bytes(image)
        params = reconstruct_params(
            session_id=session_id,
            tta_steps=tta_steps,
            fmt=fmt,
            dtype=dtype,
            bands=bands,
            region=region,
            color=color,
        )
        response = await self._send(
            "POST", "/reconstruct", content=body, params=params, headers={"Content-Type": content_type(body)}
        )
        return result_from_response(_checked(response).content, response.headers)

    async def model(self) -> dict[str, Any]:
        return _json(await self._send("GET", "/v1/model"))

    async def session(self, session_id: str) -> dict[str, Any]:
        return _json(await self._send("GET", f"/sessions/{quote(session_id, safe='')}"))

    async def delete_session(self, session_id: str) -> bool:
        return bool(
            _json(await self._send("DELETE", f"/sessions/{quote(session_id, safe='')}")).get("deleted")
        )

    async def health(self) -> bool:
        try:
            return (await self._send("GET", "/healthz")).status_code == 200
        except ClientError:
            return False

    async def ready(self) -> dict[str, Any]:
        response = await self._send("GET", "/readyz")
        if response.status_code not in (200, 503):
            _checked(response)
        body = response.json()
        return body if isinstance(body, dict) else {"ready": False}
