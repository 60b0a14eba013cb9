"""The REST clients when no HTTP answer comes: a ClientError (status 0) like every other failure, over
real sockets (nothing listening; a listener that accepts and never answers)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import numpy as np
import pytest

from service.client import AsyncClient, Client, ClientError
from tests.support import free_port

FRAME = np.zeros((4, 4, 3), np.float32)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP listener that accepts connections and never writes a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_nothing_listening_is_unavailable_and_not_alive() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", timeout=5) as client:
        with pytest.raises(ClientError) as err:
            client.reconstruct(FRAME)
        assert (err.value.status, err.value.code) == (0, "unavailable")
        assert isinstance(err.value.__cause__, Exception)  # the transport's own error, kept
        assert client.health() is False
        with pytest.raises(ClientError):
            client.ready()


def test_no_answer_in_time_is_a_timeout(silent_server: str) -> None:
    with Client(silent_server, timeout=0.3) as client, pytest.raises(ClientError) as err:
        client.model()
    assert (err.value.status, err.value.code) == (0, "timeout")

    async def scenario() -> None:
        async with AsyncClient(silent_server, timeout=0.3) as client:
            with pytest.raises(ClientError) as aerr:
                await client.session("cam-1")
            assert aerr.value.code == "timeout"
            assert await client.health() is False

    asyncio.run(scenario())
