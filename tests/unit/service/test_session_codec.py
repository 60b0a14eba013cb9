"""Session codec: exact round trip of a GA state, no pickle, corrupt bytes refused."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

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


def _tampered(**changes: object) -> bytes:
    """An adapted state's blob, re-encoded after `changes` (attribute -> function of the state)."""
    _, blob = adapted_state()
    decoded = decode_state(blob)
    for fn in changes.values():
        fn(decoded.state)  # type: ignore[operator]
    return encode_state(decoded.state, decoded.model_version)


def _first(group: dict[str, torch.Tensor]) -> str:
    return next(iter(group))


@pytest.mark.parametrize(
    ("blob_of", "message"),
    [
        (lambda: _tampered(m=lambda s: s.exp_avg.update({_first(s.exp_avg): torch.zeros(3)})), "shaped"),
        (lambda: _tampered(v=lambda s: s.exp_avg_sq[_first(s.exp_avg_sq)].fill_(-1.0)), "negative"),
        (lambda: _tampered(p=lambda s: s.params[_first(s.params)].view(-1)[0].fill_(math.nan)), "non-finite"),
        (lambda: _tampered(e=lambda s: s.first_entropies.__setitem__(0, math.inf)), "non-finite"),
        (lambda: _tampered(k=lambda s: setattr(s, "step", -1)), "negative"),
    ],
)
def test_states_an_adam_step_cannot_take_are_refused(blob_of: Callable[[], bytes], message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode_state(blob_of())


def test_a_header_without_the_model_version_is_refused_as_corrupt() -> None:
    _, blob = adapted_state()
    renamed = blob.replace(b'"model_version"', b'"model_versioN"', 1)
    assert len(renamed) == len(blob) and renamed != blob
    with pytest.raises(CodecError, match="corrupt"):
        decode_state(renamed)
