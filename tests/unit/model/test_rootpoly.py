"""Root-polynomial regression: feature counts, exact recovery, exposure invariance, state round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.baselines import RootPolyRegression
from model.baselines.rootpoly import root_poly_exponents, root_poly_features


def _rgb_images(count: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, 12, 16, generator=g, dtype=torch.float64) for _ in range(count)]


@pytest.mark.parametrize(("degree", "features"), [(1, 3), (2, 6), (3, 13), (4, 22)])
def test_feature_counts_match_the_paper(degree: int, features: int) -> None:
    exponents = root_poly_exponents(degree)
    assert exponents.shape == (features, 3)
    torch.testing.assert_close(exponents.sum(dim=1), torch.ones(features, dtype=torch.float64))


def test_degree_2_features_are_the_documented_terms() -> None:
    r, g, b = 0.2, 0.5, 0.8
    feats = root_poly_features(torch.tensor([[r, g, b]]), root_poly_exponents(2))[0]
    expected = torch.tensor([r, g, b, (r * g) ** 0.5, (r * b) ** 0.5, (g * b) ** 0.5], dtype=torch.float64)
    torch.testing.assert_close(feats, expected)


@pytest.mark.parametrize("degree", [2, 3])
def test_recovers_an_exact_root_polynomial_map(degree: int) -> None:
    exponents = root_poly_exponents(degree)
    weight = torch.randn(
        exponents.shape[0], 31, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    rgbs = _rgb_images(3)
    hsis = [(root_poly_features(x.reshape(3, -1).T, exponents) @ weight).T.reshape(31, 12, 16) for x in rgbs]
    model = RootPolyRegression.fit(rgbs, hsis, degree=degree, ridge=0.0)
    torch.testing.assert_close(model.weight, weight, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(model.predict(rgbs[0]), hsis[0], atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize(("degree", "ridge"), [(2, 0.0), (3, 1e-2)])
def test_prediction_scales_with_exposure(degree: int, ridge: float) -> None:
    rgbs = _rgb_images(2, seed=3)
    hsis = [
        torch.rand(31, 12, 16, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
        for i in (4, 5)
    ]
    model = RootPolyRegression.fit(rgbs, hsis, degree=degree, ridge=ridge)
    rgb = rgbs[0] * 0.5
    torch.testing.assert_close(model.predict(1.7 * rgb), 1.7 * model.predict(rgb))


def test_ridge_shrinks_the_weights() -> None:
    rgbs = _rgb_images(2, seed=6)
    hsis = [
        torch.rand(31, 12, 16, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
        for i in (7, 8)
    ]
    plain = RootPolyRegression.fit(rgbs, hsis, degree=3, ridge=0.0)
    ridged = RootPolyRegression.fit(rgbs, hsis, degree=3, ridge=1.0)
    assert float(ridged.weight.norm()) < float(plain.weight.norm())


def test_predict_shape_and_dtype() -> None:
    model = RootPolyRegression(degree=2, weight=torch.ones(6, 31, dtype=torch.float64))
    out = model.predict(torch.rand(3, 5, 7))
    assert out.shape == (31, 5, 7)
    assert out.dtype == torch.float32
    assert not bool(out.isnan().any())


def test_state_round_trips_through_plain_files(tmp_path: Path) -> None:
    rgbs = _rgb_images(1, seed=9)
    hsis = [torch.rand(31, 12, 16, generator=torch.Generator().manual_seed(10), dtype=torch.float64)]
    model = RootPolyRegression.fit(rgbs, hsis, degree=3, ridge=1e-4)

    torch.save(model.state_dict(), tmp_path / "rootpoly.pt")
    from_torch = RootPolyRegression.from_state_dict(torch.load(tmp_path / "rootpoly.pt", weights_only=True))
    state = model.state_dict()
    np.savez(tmp_path / "rootpoly.npz", degree=state["degree"].numpy(), weight=state["weight"].numpy())
    with np.load(tmp_path / "rootpoly.npz", allow_pickle=False) as arrays:
        from_numpy = RootPolyRegression.from_state_dict(dict(arrays))

    for restored in (from_torch, from_numpy):
        assert restored.degree == 3
        torch.testing.assert_close(restored.predict(rgbs[0]), model.predict(rgbs[0]))


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        RootPolyRegression.fit([], [], degree=2)
    with pytest.raises(ValueError, match="differ in size"):
        RootPolyRegression.fit([torch.rand(3, 4, 4)], [torch.rand(31, 4, 5)])
    with pytest.raises(ValueError, match="weight"):
        RootPolyRegression(degree=3, weight=torch.zeros(6, 31))
    with pytest.raises(ValueError, match="integer"):
        RootPolyRegression.from_state_dict({"degree": torch.tensor(2.0), "weight": torch.zeros(6, 31)})
