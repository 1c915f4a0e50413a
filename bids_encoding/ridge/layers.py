"""The best layer of each voxel, chosen on inner-validation scores only."""

from dataclasses import dataclass

import numpy as np


class BestLayer:
    """Per outer fold and voxel, keeps the layer with the best inner-validation score at the alpha used (never
    the test data), with its test scores and held-out predictions."""

    def __init__(self):
        self.validation = self.test_r = self.test_r2 = self.layer = None
        self.predictions = self.targets = None

    def update(self, layer, result):
        if self.validation is None:
            self.validation, self.test_r, self.test_r2 = (result.validation_score.copy(), result.test_r.copy(),
                                                          result.test_r2.copy())
            self.layer = np.full(result.test_r.shape, layer)
            self.predictions = [p.copy() for p in result.predictions]
            self.targets = result.targets
            return
        better = result.validation_score > self.validation
        for mine, theirs in ((self.validation, result.validation_score), (self.test_r, result.test_r),
                             (self.test_r2, result.test_r2)):
            mine[better] = theirs[better]
        self.layer[better] = layer
        for fold, prediction in enumerate(result.predictions):
            self.predictions[fold][:, better[fold]] = prediction[:, better[fold]]

    def most_chosen_layer(self, layers):
        counts = np.stack([(self.layer == layer).sum(axis=0) for layer in layers])
        return np.asarray(layers)[counts.argmax(axis=0)]

    def state(self):
        """The arrays that make this object (for a checkpoint); :meth:`from_state` rebuilds it."""
        state = {"validation": self.validation, "test_r": self.test_r, "test_r2": self.test_r2, "layer": self.layer}
        for name, arrays in (("prediction", self.predictions), ("target", self.targets)):
            for fold, array in enumerate(arrays or []):
                state[f"{name}_{fold}"] = array
        return state

    @classmethod
    def from_state(cls, state):
        best = cls()
        if state is None:
            return best
        best.validation, best.test_r, best.test_r2, best.layer = (state["validation"], state["test_r"],
                                                                   state["test_r2"], state["layer"])
        for name, attribute in (("prediction", "predictions"), ("target", "targets")):
            folds = sorted((int(key.rsplit("_", 1)[1]), key) for key in state if key.startswith(f"{name}_"))
            setattr(best, attribute, [state[key] for _, key in folds] or None)
        return best


@dataclass(frozen=True)
class LayerFit:
    """One layer's fit for the participants fitted together, per outer fold and voxel.

    Attributes
    ----------
    r, r2, validation : numpy.ndarray ``(n_folds, n_voxels)``
        Held-out r and R², inner-validation score at the alpha used.
    alpha : numpy.ndarray ``(n_folds, n_voxels)`` or None
        None for the best layer (each voxel's alpha is its layer's).
    p : numpy.ndarray ``(n_voxels,)`` or None
        The voxels' p-values, where every layer is tested (``--pvalue-layers all``).
    forms : tuple of str
        The ridge forms that ran (``primal``, ``dual``).
    """

    r: np.ndarray
    r2: np.ndarray
    alpha: np.ndarray
    validation: np.ndarray
    p: np.ndarray | None = None
    forms: tuple = ()

    @classmethod
    def of(cls, result, pvalues=None):
        """From a :class:`~bids_encoding.ridge.result.CVResult`."""
        return cls(result.test_r, result.test_r2, result.alpha, result.validation_score, pvalues,
                   tuple(sorted(set(result.forms))))

    def arrays(self):
        """The arrays to save (a checkpoint); :meth:`from_arrays` reads them back."""
        return {"r": self.r, "r2": self.r2, "alpha": self.alpha, "validation": self.validation, "p": self.p,
                "form": np.array(self.forms)}

    @classmethod
    def from_arrays(cls, arrays):
        return cls(arrays["r"], arrays["r2"], arrays["alpha"], arrays["validation"], arrays.get("p"),
                   tuple(str(form) for form in np.atleast_1d(arrays.get("form", ()))))

    def voxels(self, columns):
        """The fit of some voxels (a slice of the participants' voxels)."""
        return LayerFit(self.r[:, columns], self.r2[:, columns], None if self.alpha is None else self.alpha[:, columns],
                        self.validation[:, columns], None if self.p is None else self.p[columns], self.forms)
