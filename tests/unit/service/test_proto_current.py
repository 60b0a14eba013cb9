"""The checked-in gRPC code is what `make proto` generates from proto/ today."""

from __future__ import annotations

from pathlib import Path

from service.grpc.codegen import GEN_DIR, generate


def test_generated_code_is_current(tmp_path: Path) -> None:
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in generate(tmp_path)}
    checked_in = {
        p.relative_to(GEN_DIR): p.read_bytes() for p in GEN_DIR.rglob("*") if p.suffix in (".py", ".pyi")
    }
    assert sorted(fresh) == sorted(checked_in), "run `make proto`"
    stale = [str(k) for k in fresh if fresh[k] != checked_in[k]]
    assert not stale, f"stale generated files {stale}: run `make proto`"
