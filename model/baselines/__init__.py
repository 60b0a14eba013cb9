"""Classical, training-free-at-inference baselines that set the floor the networks must beat."""

from model.baselines.rootpoly import RootPolyRegression

__all__ = ["RootPolyRegression"]
