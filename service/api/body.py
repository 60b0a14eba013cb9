"""The request side of the wire: an image body (raw or multipart) and noticing a client that left.

The body arrives through `BodyLimitMiddleware`, which raises a 413 as soon as it passes the limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from service.codecs.errors import UnsupportedMediaTypeError
from service.errors import InvalidInputError, RequestCancelledError

T = TypeVar("T")


@dataclass(frozen=True)
class Upload:
    data: bytes
    content_type: str | None  # as declared; the format itself comes from the magic bytes


def is_multipart(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";")[0].strip().lower() == "multipart/form-data"


def check_content_encoding(request: Request) -> None:
    """Bodies are read as sent: a compressed one (Content-Encoding other than identity) is refused
    with 415 rather than decoded as if it were the image, or served when the header was wrong."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {encoding!r} is not accepted; send the body uncompressed "
            "(PNG, JPEG and compressed TIFF are compressed already)",
            received=encoding,
            accepted=["identity"],
        )


async def read_image_body(request: Request) -> Upload:
    """The image bytes of a raw body, or of the one file part of a multipart/form-data body."""
    check_content_encoding(request)
    content_type = request.headers.get("content-type")
    try:
        if not is_multipart(content_type):
            chunks = [chunk async for chunk in request.stream()]
            return Upload(b"".join(chunks), content_type)
        return await _read_multipart(request)
    except ClientDisconnect as exc:
        raise RequestCancelledError("the client disconnected while sending the body") from exc


async def _read_multipart(request: Request) -> Upload:
    try:
        async with request.form(max_files=1, max_fields=16) as form:
            fields = sorted({k for k, v in form.multi_items() if not isinstance(v, UploadFile)})
            if fields:
                raise InvalidInputError(
                    f"multipart field(s) {', '.join(fields)} are not read: send options as query "
                    "parameters (e.g. ?format=npy) and the image as the only part",
                    received_fields=fields,
                )
            files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
            if not files:
                raise InvalidInputError(
                    "multipart body has no file part; send the image as one (-F file=@x.png)"
                )
            upload = files[0]
            return Upload(await upload.read(), upload.content_type)
    except (MultiPartException, HTTPException) as exc:  # Starlette reports parse errors as a 400
        detail = exc.message if isinstance(exc, MultiPartException) else exc.detail
        raise InvalidInputError(f"malformed multipart body: {detail}") from exc


async def _until_disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work` (after the body was read); a client that leaves first cancels it, so its queued
    frame is dropped before it reaches the device (RequestCancelledError, logged as 499)."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_until_disconnected(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (watch, task):
            pending.cancel()
        await asyncio.gather(watch, task, return_exceptions=True)
    if task.cancelled():
        raise RequestCancelledError("the client disconnected; its frame was dropped")
    return task.result()
