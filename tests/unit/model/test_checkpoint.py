"""Checkpoints rebuild their model from the file alone and reproduce its output bitwise."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from model.config import GANetConfig, VQVAEConfig
from model.ganet import GANet
from model.mstpp import MSTPlusPlus
from model.vqvae import VQVAE


def test_ganet_round_trip_is_bitwise(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = GANet(GANetConfig(latent_dim=16, moc_sizes=(40, 40), top_t=8)).eval()
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        ref = net(x).hsi
    path = save_checkpoint(tmp_path / "g.pt", net, {"wavelengths_nm": [400.0 + 10 * i for i in range(31)]})
    ck = load_checkpoint(path)
    assert ck.kind == "ganet" and ck.metadata["wavelengths_nm"][0] == 400.0 and len(ck.version) == 16
    with torch.no_grad():
        assert torch.equal(ck.model(x).hsi, ref)


@pytest.mark.parametrize("model", [VQVAE(VQVAEConfig(codebook_size=16)), MSTPlusPlus()])
def test_other_kinds_round_trip(tmp_path: Path, model: torch.nn.Module) -> None:
    ck = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model))
    for (k, a), b in zip(model.state_dict().items(), ck.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_bad_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        load_checkpoint(bad)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's, about the protocol-4 file
def test_a_pickle_with_code_is_refused_without_advice_to_run_it(tmp_path: Path) -> None:
    """torch's refusal suggests retrying with weights_only=False (running the file's code): the
    message passed on keeps the refusal and drops that advice."""
    for protocol in (2, 4):  # torch words the refusal differently for each
        rogue = tmp_path / f"rogue{protocol}.pt"
        rogue.write_bytes(pickle.dumps(os.getcwd, protocol=protocol))  # a callable: refused
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(rogue)
        message = str(err.value)
        assert rogue.name in message and "unsupported" in message.lower(), message
        assert "weights_only" not in message, message
