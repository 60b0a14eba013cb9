"""`mcga reconstruct` on small PNGs with a tiny checkpoint: .npy and OME-TIFF outputs, sessions
across several inputs, and the refusals."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model.checkpoint import save_checkpoint
from model.cli import main
from model.config import GANetConfig
from model.ganet import GANet
from service.codecs import read_cube_tiff
from service.local import plan_jobs

WAVELENGTHS = [400.0 + 10 * i for i in range(31)]


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """The runner sets the process's torch threads (MCGA_TORCH_THREADS=1 here); leave them as found."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    cfg = GANetConfig(
        latent_dim=16, moc_sizes=(32, 32), encoder_blocks=(1, 1), decoder_blocks=(1, 1), top_t=8
    )
    meta = {"wavelengths_nm": WAVELENGTHS}
    return save_checkpoint(tmp_path_factory.mktemp("w") / "tiny.pt", GANet(cfg).eval(), meta)


@pytest.fixture
def pngs(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(2):
        arr = np.random.default_rng(i).integers(0, 256, (12, 20, 3), dtype=np.uint8)
        out = io.BytesIO()
        Image.fromarray(arr).save(out, "PNG")
        paths.append(tmp_path / f"frame{i}.png")
        paths[-1].write_bytes(out.getvalue())
    return paths


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCGA_TORCH_THREADS", "1")


def test_writes_npy_and_ome_tiff(
    weights: Path, pngs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npy, tif = tmp_path / "cube.npy", tmp_path / "cube.tiff"
    assert main(["reconstruct", str(pngs[0]), "-o", str(npy), "--weights", str(weights)]) == 0
    assert (
        main(["reconstruct", str(pngs[0]), "-o", str(tif), "--weights", str(weights), "--color", "srgb"]) == 0
    )
    cube = np.load(npy)
    assert cube.shape == (12, 20, 31) and cube.dtype == np.float32
    tiff = read_cube_tiff(tif.read_bytes())
    assert tiff.cube.shape == (12, 20, 31) and list(tiff.wavelengths_nm) == WAVELENGTHS
    assert tiff.metadata["input_color"] == "srgb"
    assert str(npy) in capsys.readouterr().out


def test_session_steps_adapt_across_inputs(weights: Path, pngs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "cubes"
    args = ["reconstruct", *map(str, pngs), "-o", str(out), "--format", "tiff", "--session-steps", "1"]
    assert main([*args, "--weights", str(weights)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["frame0.ome.tif", "frame1.ome.tif"]
    assert read_cube_tiff((out / "frame1.ome.tif").read_bytes()).metadata["tta_outcome"] == "adapted"


def test_refusals(weights: Path, pngs: list[Path], tmp_path: Path) -> None:
    w = ["--weights", str(weights)]
    assert main(["reconstruct", str(pngs[0]), "-o", str(tmp_path / "x.jpg"), *w]) == 2
    assert main(["reconstruct", *map(str, pngs), "-o", str(tmp_path / "x.npy"), *w]) == 2
    assert main(["reconstruct", str(tmp_path / "missing.png"), "-o", str(tmp_path / "m.npy"), *w]) == 1
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["reconstruct", str(bad), "-o", str(tmp_path / "b.npy"), *w]) == 1
    assert (
        main(
            ["reconstruct", str(pngs[0]), "-o", str(tmp_path / "n.npy"), "--weights", str(tmp_path / "no.pt")]
        )
        == 2
    )
    with pytest.raises(ValueError, match="contradicts"):
        plan_jobs([pngs[0]], tmp_path / "a.npy", "tiff")
    with pytest.raises(ValueError, match="overwrite"):
        plan_jobs([pngs[0], pngs[0]], tmp_path / "dir", None)


def test_numbered_frames_keep_their_numbers_and_inputs_are_never_overwritten(
    weights: Path, pngs: list[Path], tmp_path: Path
) -> None:
    seq = [tmp_path / "frame.001.png", tmp_path / "frame.002.png"]
    for src, dst in zip(pngs, seq, strict=True):
        dst.write_bytes(src.read_bytes())
    jobs = plan_jobs([*seq, tmp_path / "scan.ome.tif"], tmp_path / "out", None)
    assert [j.target.name for j in jobs] == ["frame.001.npy", "frame.002.npy", "scan.npy"]
    # An output that is an input (named, or picked inside the inputs' own folder) is refused.
    rgb = tmp_path / "rgb.npy"
    np.save(rgb, np.zeros((4, 4, 3), np.float32))
    for output in (rgb, tmp_path):
        with pytest.raises(ValueError, match="is one of the inputs"):
            plan_jobs([rgb], output, None)
    assert main(["reconstruct", str(rgb), "-o", str(rgb), "--weights", str(weights)]) == 2
    assert np.load(rgb).shape == (4, 4, 3)  # untouched


def test_an_output_that_cannot_be_written_fails_alone(
    weights: Path, pngs: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "frame0.npy").mkdir()  # a directory where the first cube would go
    args = ["reconstruct", *map(str, pngs), "-o", str(out), "--weights", str(weights)]
    assert main(args) == 1  # one input failed ...
    assert np.load(out / "frame1.npy").shape == (12, 20, 31)  # ... and the other was written
