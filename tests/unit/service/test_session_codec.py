"""Session codec: exact round trip of a GA state, no pickle, corrupt bytes refused."""

from __future__ import annotations

import json

import pytest
import torch

from model.config import GANetConfig
from model.ganet import GANet
from model.tta import TTAAdapter
from service.engine.codec import FORMAT, CodecError, decode_state, encode_state


def adapted_state() -> tuple[TTAAdapter, bytes]:
    torch.manual_seed(0)
    cfg = GANetConfig(
        latent_dim=16, moc_sizes=(32, 32), encoder_blocks=(1, 1), decoder_blocks=(1, 1), top_t=8
    )
    adapter = TTAAdapter(GANet(cfg).eval())
    state = adapter.run(torch.rand(1, 3, 16, 16), [adapter.initial_state()], [True]).states[0]
    assert state is not None and state.step == 1
    return adapter, encode_state(state, "v123")


def test_round_trip_is_exact() -> None:
    adapter, blob = adapted_state()
    state = adapter.run(torch.rand(1, 3, 16, 16), [decode_state(blob).state], [True]).states[0]
    assert state is not None
    decoded = decode_state(encode_state(state, "v123"))
    assert decoded.model_version == "v123"
    assert (decoded.state.step, decoded.state.resets) == (2, 0)
    assert decoded.state.first_entropies == state.first_entropies and len(state.first_entropies) == 2
    for group in ("params", "exp_avg", "exp_avg_sq"):
        ours, theirs = getattr(decoded.state, group), getattr(state, group)
        assert ours.keys() == theirs.keys() == set(adapter.names)
        for name in adapter.names:
            assert torch.equal(ours[name], theirs[name])


def test_blob_is_safetensors_with_a_json_header() -> None:
    _, blob = adapted_state()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    assert header["__metadata__"]["format"] == FORMAT
    assert all(v["dtype"] == "F32" for k, v in header.items() if k != "__metadata__")
    assert b"\x80\x04" not in blob[:2]  # not a pickle stream


@pytest.mark.parametrize("blob", [b"", b"garbage!", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}     "])
def test_corrupt_bytes_are_refused(blob: bytes) -> None:
    with pytest.raises(CodecError):
        decode_state(blob)


def test_truncated_tensor_data_is_refused() -> None:
    _, blob = adapted_state()
    with pytest.raises(CodecError):
        decode_state(blob[:-100])
