"""Representative temporal patterns of neurons, and which neurons follow which.

``dictionary`` (the default, as the 64 atoms Sun et al. report): each neuron's time course is one sample
and online dictionary learning (Mairal et al. 2010, the algorithm of scikit-learn's
``MiniBatchDictionaryLearning``) learns ``n_patterns`` time courses such that every neuron is a sparse
combination of a few of them. It is written here because scikit-learn codes each mini-batch one neuron
at a time in a Python loop: a pass over SmolLM2-135M's 46,080 neurons took minutes per fold (py-spy:
all of it in that loop); here every batch is coded at once (:func:`lasso_codes`). ``ica``, the alternative
some summaries of the paper describe: temporal ICA, the neurons' time courses reduced to their
``n_patterns`` principal temporal components (from the scans x scans Gram matrix, accumulated block by
block) and unmixed by scikit-learn's
``FastICA`` into independent time courses; a neuron's codes are then its least-squares loadings on them.
ICA separates only non-Gaussian sources: neuron groups driven by Gaussian word signals come out rotated
(tests/test_neurons.py). Either way, a neuron's sub-group is the pattern with the largest absolute code.
"""

import warnings

import numpy as np

PATTERN_METHODS = ("dictionary", "ica")
BATCH = 64  # neurons per dictionary update (as scikit-learn; 256 merged planted groups: fewer, smoother steps)
MIN_STEPS = 100  # updates, however few the neurons


def _standardize(block):
    block = np.asarray(block, dtype=np.float64)
    block = block - block.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(block, axis=1, keepdims=True)
    return np.divide(block, norm, out=np.zeros_like(block), where=norm > 0)


class NeuronPatterns:
    """Learn temporal patterns from neurons' time courses, in blocks (scikit-learn-style estimator).

    Parameters
    ----------
    n_patterns : int
        Atoms (64, as reported by Sun et al.).
    method : {"dictionary", "ica"}
    alpha : float
        L1 penalty of the codes (``0.5 ||x - c D||² + alpha ||c||₁``, as scikit-learn's dictionary learning).
    n_passes : int
        Passes over the blocks at least (dictionary learning; more when they give fewer than ``MIN_STEPS``
        updates of ``BATCH`` neurons).
    random_state : int

    Attributes
    ----------
    patterns_ : ndarray (n_patterns, n_scans)
        The patterns' time courses (unit norm).
    """

    def __init__(self, n_patterns=64, method="dictionary", alpha=0.1, n_passes=1, random_state=0):
        if method not in PATTERN_METHODS:
            raise ValueError(f"unknown pattern method '{method}': use one of {', '.join(PATTERN_METHODS)}")
        self.n_patterns, self.method, self.alpha = n_patterns, method, alpha
        self.n_passes, self.random_state = n_passes, random_state

    def fit(self, blocks):
        """Learn the patterns from ``blocks``, a function that returns a fresh iterable of
        ``(n_neurons_in_block, n_scans)`` arrays (called once per pass)."""
        if self.method == "ica":
            return self._fit_ica(blocks)
        rng = np.random.default_rng(self.random_state)
        dictionary, gram, cross = None, None, None
        steps = passes = 0
        while steps < MIN_STEPS or passes < self.n_passes:
            passes += 1
            for block in blocks():
                block = _standardize(block)[rng.permutation(len(block))]
                for start in range(0, len(block), BATCH):
                    batch = block[start:start + BATCH]
                    if dictionary is None:
                        dictionary = _initial_atoms(batch, self.n_patterns, rng)
                        gram = np.zeros((self.n_patterns, self.n_patterns))
                        cross = np.zeros((batch.shape[1], self.n_patterns))
                    codes = lasso_codes(batch, dictionary, self.alpha, max_iter=200, tol=1e-6)
                    forget = _forgetting(steps, len(batch))
                    gram = forget * gram + codes.T @ codes / len(batch)
                    cross = forget * cross + batch.T @ codes / len(batch)
                    dictionary = _update_atoms(dictionary, gram, cross, batch, rng)
                    steps += 1
        self.patterns_ = dictionary
        return self

    def _fit_ica(self, blocks):
        from sklearn.decomposition import FastICA
        from sklearn.exceptions import ConvergenceWarning

        gram = None
        for block in blocks():
            block = _standardize(block)
            gram = block.T @ block if gram is None else gram + block.T @ block
        eigenvalues, eigenvectors = np.linalg.eigh(gram)
        components = eigenvectors[:, ::-1][:, :self.n_patterns]  # principal temporal components, orthonormal
        self.estimator_ = FastICA(n_components=self.n_patterns, whiten="unit-variance", max_iter=1000,
                                  random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sources = self.estimator_.fit_transform(components * np.sqrt(len(components)))
        self.patterns_ = _standardize(sources.T)
        return self

    def transform(self, block):
        """Codes of the neurons of ``block``: ``(n_neurons, n_patterns)``: the lasso solution that
        scikit-learn's ``transform`` gives (:func:`lasso_codes`) for ``dictionary``; least-squares loadings
        on the patterns for ``ica``."""
        if self.method == "ica":
            return np.linalg.lstsq(self.patterns_.T, _standardize(block).T, rcond=None)[0].T
        return lasso_codes(_standardize(block), self.patterns_, self.alpha)


def _initial_atoms(batch, n_patterns, rng):
    """Atoms to start from, as scikit-learn's: the first batch's principal temporal components (then random
    unit vectors if the batch has fewer)."""
    _, _, components = np.linalg.svd(batch, full_matrices=False)
    extra = rng.standard_normal((max(0, n_patterns - len(components)), batch.shape[1]))
    atoms = np.vstack([components[:n_patterns], extra])
    return atoms / np.maximum(np.linalg.norm(atoms, axis=1, keepdims=True), 1e-12)


def _forgetting(step, batch_size):
    """How much of the past statistics a step keeps: scikit-learn's schedule (past batches, whose codes came
    from worse atoms, weigh less early on)."""
    theta = (step + 1) * batch_size if step < batch_size - 1 else batch_size ** 2 + step + 1 - batch_size
    return (theta + 1 - batch_size) / (theta + 1)


def _update_atoms(dictionary, gram, cross, batch, rng):
    """One sweep of block coordinate descent over the atoms with the accumulated statistics ``gram`` (ΣcᵀC)
    and ``cross`` (ΣxᵀC) (Mairal et al. 2010, Algorithm 2); an atom no neuron uses restarts from a random
    neuron of the batch."""
    dictionary = dictionary.copy()
    for atom in range(len(dictionary)):
        if gram[atom, atom] < 1e-10:
            dictionary[atom] = batch[rng.integers(len(batch))]
        else:
            dictionary[atom] += (cross[:, atom] - dictionary.T @ gram[:, atom]) / gram[atom, atom]
        dictionary[atom] /= max(np.linalg.norm(dictionary[atom]), 1.0)
    return dictionary


def lasso_codes(data, dictionary, alpha, max_iter=1000, tol=1e-7):
    """Lasso codes of every row of ``data`` on the atoms (rows) of ``dictionary``: the minimizer of
    ``0.5 ||x - c D||² + alpha ||c||₁`` for each row, by FISTA on all rows at once.

    It is the problem scikit-learn's ``sparse_encode`` solves (``lasso_lars``, ``lasso_cd``), but
    scikit-learn solves it row by row in a Python loop: on the real SmolLM2-135M's 46,080 neurons (271
    scans, 64 patterns, 2-core CPU) LARS took about 4 minutes per pass and coordinate descent longer
    (slow convergence on correlated atoms); FISTA takes seconds and agrees with ``lasso_cd`` to 1e-6
    (tests/test_neurons.py).
    """
    data, dictionary = np.asarray(data, dtype=np.float64), np.asarray(dictionary, dtype=np.float64)
    gram, cross = dictionary @ dictionary.T, data @ dictionary.T
    step = 1.0 / max(np.linalg.eigvalsh(gram)[-1], 1e-12)
    codes = np.zeros((len(data), len(dictionary)))
    moving, momentum = codes.copy(), 1.0
    for _ in range(max_iter):
        shifted = moving - step * (moving @ gram - cross)
        new = np.sign(shifted) * np.maximum(np.abs(shifted) - alpha * step, 0.0)
        next_momentum = (1 + np.sqrt(1 + 4 * momentum ** 2)) / 2
        moving = new + ((momentum - 1) / next_momentum) * (new - codes)
        change = np.abs(new - codes).max() if len(new) else 0.0
        codes, momentum = new, next_momentum
        if change < tol:
            break
    return codes


def assignment(codes):
    """Each neuron's pattern: the one with the largest absolute coefficient; -1 for a neuron with no code."""
    codes = np.abs(np.asarray(codes))
    chosen = codes.argmax(axis=1)
    chosen[codes.max(axis=1) == 0] = -1
    return chosen


def pattern_timecourses(patterns, blocks, ridge=1e-6):
    """The patterns' time courses over more scans than they were learned on (held-out runs included).

    ``blocks`` yields ``(learned, full)`` pairs of the same neurons: their time courses over the scans the
    patterns were learned on, which give the neurons' codes, and over every scan. The time courses are the
    least-squares combination of the neurons' (standardized) full time courses that their codes describe:
    ``(CᵀC)⁻¹ Cᵀ T``, accumulated block by block. On the learned scans they are the patterns themselves, up
    to noise. Returns ``(n_patterns, n_scans)``.
    """
    gram, cross = None, None
    for learned, full in blocks:
        codes = patterns.transform(learned)
        full = _standardize(full)
        gram = codes.T @ codes if gram is None else gram + codes.T @ codes
        cross = codes.T @ full if cross is None else cross + codes.T @ full
    regularized = gram + ridge * max(np.trace(gram), 1.0) / len(gram) * np.eye(len(gram))
    return np.linalg.solve(regularized, cross)


def oriented(patterns_, codes):
    """Patterns and codes with each pattern's sign turned so that the neurons it assigns follow it with
    positive coefficients on the whole (dictionary atoms have no sign of their own). The codes are turned in
    place (they are every neuron's). Returns ``(patterns, codes, signs)``."""
    chosen = assignment(codes)
    signs = np.ones(len(patterns_))
    for pattern in range(len(patterns_)):
        total = codes[chosen == pattern, pattern].sum()
        signs[pattern] = -1.0 if total < 0 else 1.0
    codes *= signs.astype(codes.dtype)[None, :]
    return patterns_ * signs[:, None], codes, signs
