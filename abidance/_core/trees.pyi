"""Type stubs for abidance._core.trees (compiled from ext/abidance/_core/trees.pyx)."""

from typing import Any

import numpy as np
import numpy.typing as npt

class TreeEnsemble:
    """A binary classifier's boosted trees; `raw_score(x)` is its decision function of one row."""

    source: str
    n_features: int
    n_trees: int
    n_nodes: int
    baseline: float
    float32_input: bool

    def __init__(self, feature: npt.ArrayLike, threshold: npt.ArrayLike, left: npt.ArrayLike,
                 right: npt.ArrayLike, missing_left: npt.ArrayLike, value: npt.ArrayLike, roots: npt.ArrayLike,
                 baseline: float, n_features: int, float32_input: bool = False, source: str = "") -> None: ...
    @property
    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The flat arrays (read-only), by name."""
    def raw_score(self, x: npt.NDArray[np.float64]) -> float:
        """The raw score (scikit-learn's decision_function) of one feature vector (float64)."""
    @staticmethod
    def from_estimator(estimator: Any) -> TreeEnsemble:
        """From a fitted binary HistGradientBoostingClassifier or GradientBoostingClassifier."""
