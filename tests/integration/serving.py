"""Both edges in-process on loopback sockets, as `mcga serve` wires them (one core, one access
control, TLS from the settings): REST through uvicorn, gRPC through `grpc.aio`. And test
certificates made at run time (trustme: a private CA, a server and a client certificate)."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import trustme

from service.access import AccessControl
from service.api import create_app
from service.client.grpc_client import CHANNEL_OPTIONS
from service.core import InferenceCore
from service.grpc.gen.mcga.v1 import reconstruction_pb2_grpc as pb_grpc
from service.grpc.server import GrpcEdge, build_grpc_edge
from service.main import HttpServer, bound_port, http_config
from service.settings import Settings


@dataclass
class Both:
    core: InferenceCore
    edge: GrpcEdge
    http: HttpServer
    rest_url: str
    grpc_target: str

    def channel(self, credentials: grpc.ChannelCredentials | None = None) -> grpc.aio.Channel:
        if credentials is None:
            return grpc.aio.insecure_channel(self.grpc_target, options=CHANNEL_OPTIONS)
        return grpc.aio.secure_channel(
            self.grpc_target,
            credentials,
            options=[*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", "localhost")],
        )

    def stub(self, channel: grpc.aio.Channel) -> pb_grpc.ReconstructionStub:
        return pb_grpc.ReconstructionStub(channel)


@asynccontextmanager
async def serve_both(settings: Settings, core: InferenceCore | None = None) -> AsyncIterator[Both]:
    """Start a core (unless given, started), gRPC and REST on free loopback ports; stop all after."""
    settings = settings.model_copy(update={"host": "127.0.0.1", "http_port": 0, "grpc_port": 0})
    own = core is None
    core = core or InferenceCore.build(settings)
    if own:
        await core.start()
    access = AccessControl.from_settings(settings)
    edge = build_grpc_edge(core, settings, access=access)
    http: HttpServer | None = None
    task: asyncio.Task[None] | None = None
    try:
        await edge.start()
        http = HttpServer(http_config(settings, create_app(settings, core, access)))
        task = asyncio.create_task(http.serve())
        while not http.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped during start-up")
            await asyncio.sleep(0.02)
        scheme = "https" if settings.tls else "http"
        yield Both(core, edge, http, f"{scheme}://127.0.0.1:{bound_port(http)}", f"127.0.0.1:{edge.port}")
    finally:
        if http is not None and task is not None:
            http.should_exit = True
            await asyncio.wait_for(task, 30)
        await edge.stop(0)
        if own:
            await core.stop()


@contextmanager
def serve_in_thread(settings: Settings) -> Iterator[Both]:
    """`serve_both` on its own event loop in a thread, for blocking clients (schemathesis)."""
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def main() -> None:
        stop = holder["stop"] = asyncio.Event()
        holder["loop"] = asyncio.get_running_loop()
        try:
            async with serve_both(settings) as both:
                holder["both"] = both
                ready.set()
                await stop.wait()
        finally:
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="mcga-test-server")
    thread.start()
    try:
        if not ready.wait(90) or "both" not in holder:
            raise RuntimeError("the test server did not start")
        both = holder["both"]
        assert isinstance(both, Both)
        yield both
    finally:
        loop, stop = holder.get("loop"), holder.get("stop")
        if isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event):
            loop.call_soon_threadsafe(stop.set)
        thread.join(60)


@dataclass(frozen=True)
class Certs:
    ca_pem: bytes
    ca_file: Path  # also the client CA for mTLS: it signed the client certificate
    cert_file: Path  # server: localhost and 127.0.0.1
    key_file: Path
    client_cert_file: Path
    client_key_file: Path
    client_cert_pem: bytes
    client_key_pem: bytes

    def client_context(self, with_certificate: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if with_certificate:
            context.load_cert_chain(str(self.client_cert_file), str(self.client_key_file))
        return context


def make_certs(directory: Path) -> Certs:
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("client@mcga.test")
    paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key", "ccert", "ckey")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["ccert"]))
    client.private_key_pem.write_to_path(str(paths["ckey"]))
    return Certs(
        ca.cert_pem.bytes(),
        paths["ca"],
        paths["cert"],
        paths["key"],
        paths["ccert"],
        paths["ckey"],
        client.cert_chain_pems[0].bytes(),
        client.private_key_pem.bytes(),
    )
