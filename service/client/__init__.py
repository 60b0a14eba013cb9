"""Python clients of the MCGA service: REST (`Client`, `AsyncClient`) and gRPC (`GrpcClient`,
`AsyncGrpcClient`, `stream_frames`, `astream_frames`). Errors are `ClientError`s."""

from service.client.convert import Result
from service.client.errors import ClientError
from service.client.grpc_client import AsyncGrpcClient, GrpcClient, astream_frames, stream_frames
from service.client.grpc_convert import FrameOutcome
from service.client.rest import AsyncClient, Client

__all__ = [
    "AsyncClient",
    "AsyncGrpcClient",
    "Client",
    "ClientError",
    "FrameOutcome",
    "GrpcClient",
    "Result",
    "astream_frames",
    "stream_frames",
]
