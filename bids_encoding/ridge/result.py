"""What nested cross-validation gives back: held-out scores, validation scores and alphas per outer fold."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class CVResult:
    """Outcome of nested cross-validation for one design.

    Attributes
    ----------
    test_r, test_r2 : numpy.ndarray ``(n_folds, n_voxels)``
        Pearson r and R² on each held-out stimulus.
    validation_score : numpy.ndarray ``(n_folds, n_voxels)``
        Inner-validation score (r or R², mean over inner splits) at the alpha
        chosen in each outer fold: what layers are chosen on, never the test
        data.
    alpha : numpy.ndarray ``(n_folds, n_voxels)``
        Alpha chosen in each outer fold.
    forms : list of str
        The form of each computed outer fold (:meth:`NestedRidgeCV._form`).
    predictions, targets : list of numpy.ndarray ``(n_test, n_voxels)``
        Held-out predictions and targets per fold (``keep_predictions=True``).
    """

    test_r: np.ndarray
    test_r2: np.ndarray
    validation_score: np.ndarray
    alpha: np.ndarray
    predictions: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    forms: list = field(default_factory=list)  # per computed outer fold: "primal" or "dual"

    def fold(self, fold):
        """This result restricted to one computed outer fold (``fit_score(..., folds=[fold])``)."""
        return CVResult(*(getattr(self, name)[fold:fold + 1] for name in ("test_r", "test_r2", "validation_score",
                                                                         "alpha")),
                        predictions=self.predictions, targets=self.targets, forms=self.forms)

    @property
    def mean_r(self):
        return self.test_r.mean(axis=0)

    @property
    def mean_r2(self):
        return self.test_r2.mean(axis=0)


@dataclass
class TestedBlock:
    """Held-out scores of one block of voxels (padding columns dropped)."""

    test_r: np.ndarray
    test_r2: np.ndarray
    alpha: np.ndarray
    prediction: np.ndarray | None = None
    target: np.ndarray | None = None

