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



@dataclass
class BandedResult(CVResult):
    """Outcome of nested cross-validation of a banded ridge (:class:`~bids_encoding.ridge.banded.BandedRidgeCV`).

    The :class:`CVResult` attributes mean the same for the joint model (all feature spaces; ``alpha``: the
    chosen alpha of the kernel ``Σ_i γ_i X_i X_iᵀ``), plus:

    Attributes
    ----------
    split_r, split_r2 : numpy.ndarray ``(n_spaces, n_folds, n_voxels)``
        Each feature space's share of the held-out r and R² (:func:`~bids_encoding.ridge.scoring.correlation_split`,
        :func:`~bids_encoding.ridge.scoring.r2_split`: himalaya's ``correlation_score_split`` and
        ``r2_score_split``); they add up to ``test_r`` and, for a centred target, ``test_r2``.
    gammas : numpy.ndarray ``(n_folds, n_spaces, n_voxels)``
        The chosen kernel weights (on the simplex) in each outer fold.
    """

    split_r: np.ndarray | None = None
    split_r2: np.ndarray | None = None
    gammas: np.ndarray | None = None

    @property
    def penalties(self):
        """Each space's ridge penalty ``(n_folds, n_spaces, n_voxels)``: ``alpha / gamma_i``, the ``λ_i`` of
        ``|y - Σ_i X_i b_i|² + Σ_i λ_i |b_i|²``; ``inf`` for a space of weight 0. It is ``exp(-deltas_)`` of
        himalaya's ``MultipleKernelRidgeCV`` (``deltas_ = log(gamma / alpha)``, ``(n_spaces, n_voxels)``, one fold)."""
        with np.errstate(divide="ignore"):
            return self.alpha[:, None, :] / self.gammas

    def fold(self, fold):
        """This result restricted to one computed outer fold (``fit_score(..., folds=[fold])``)."""
        one = slice(fold, fold + 1)
        return BandedResult(*(getattr(self, name)[one] for name in ("test_r", "test_r2", "validation_score", "alpha")),
                            predictions=self.predictions, targets=self.targets, forms=self.forms,
                            split_r=self.split_r[:, one], split_r2=self.split_r2[:, one], gammas=self.gammas[one])


@dataclass
class StackedResult(CVResult):
    """Outcome of stacked regression (:class:`~bids_encoding.ridge.stacking.StackedRidgeCV`).

    The inherited fields describe the stacked model: ``test_r`` and ``test_r2`` of the weighted sum of the
    spaces' test predictions, ``validation_score`` the score (r or R², the ridge's ``alpha_score``) of the
    weighted sum of the spaces' held-out predictions on the training runs, averaged over the held-out
    training stimuli (the weights were fitted on these predictions: optimistic, but never the test data),
    ``alpha`` the alpha of the space with the largest weight (each space's own alphas are ``space_alpha``),
    ``predictions`` and ``targets`` the stacked test predictions and their targets.

    Attributes
    ----------
    weights : numpy.ndarray ``(n_folds, n_spaces, n_voxels)``
        Each voxel's convex weights (non-negative, summing to 1) in each outer fold.
    space_r, space_r2 : numpy.ndarray ``(n_spaces, n_folds, n_voxels)``
        Test r and R² of each space fitted alone.
    space_alpha : numpy.ndarray ``(n_spaces, n_folds, n_voxels)``
        Alpha of each space fitted alone on the outer fold's training runs.
    split_r, split_r2 : numpy.ndarray ``(n_spaces, n_folds, n_voxels)``
        Each space's share of the stacked test r and R² (its weighted prediction's part, as
        :attr:`BandedResult.split_r`).
    description : dict
        What the sidecars say of the method (:meth:`record`).
    """

    weights: np.ndarray | None = None
    space_r: np.ndarray | None = None
    space_r2: np.ndarray | None = None
    space_alpha: np.ndarray | None = None
    split_r: np.ndarray | None = None
    split_r2: np.ndarray | None = None
    description: dict = field(default_factory=dict)

    def fold(self, fold):
        """This result restricted to one computed outer fold (``fit_score(..., folds=[fold])``)."""
        base = CVResult.fold(self, fold)
        per_space = {name: getattr(self, name)[:, fold:fold + 1] for name in ("space_r", "space_r2", "space_alpha",
                                                                               "split_r", "split_r2")}
        return StackedResult(base.test_r, base.test_r2, base.validation_score, base.alpha,
                             predictions=self.predictions, targets=self.targets, forms=self.forms,
                             weights=self.weights[fold:fold + 1], description=self.description, **per_space)

    def record(self):
        """JSON-able description of the method, for the sidecars."""
        return dict(self.description)
