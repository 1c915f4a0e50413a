"""The settings of the neurons-to-networks analysis (``--neuron-patterns`` and its options)."""

from dataclasses import asdict, dataclass

# Bump when the neurons-to-networks analysis computes other numbers for the same settings (docs/usage.md
# "Versions"). 1: as of bids_encoding 0.2.0.
NEURONS_CODE_VERSION = 1


@dataclass(frozen=True)
class NeuronSettings:
    """Parameters
    ----------
    n_patterns : int
        Dictionary atoms (64, as Sun et al. report).
    method : {"dictionary", "ica"}
        Sparse dictionary learning over neurons, or temporal ICA (:class:`NeuronPatterns`).
    atlas : str
        ``Schaefer7``, ``Schaefer17`` or a NIfTI of network labels (:func:`network_atlas`).
    n_permutations : int
        Voxel permutations of each pattern map for the network match's null.
    fdr : float
        Benjamini-Hochberg level over patterns.
    sparsity : float
        Dictionary learning's ``alpha`` (L1 penalty of the codes).
    block : int
        Neurons resampled at once (the memory bound of the time courses).
    seed : int
    """

    n_patterns: int = 64
    method: str = "dictionary"
    atlas: str = "Schaefer7"
    n_permutations: int = 1000
    fdr: float = 0.05
    sparsity: float = 0.1
    block: int = 2048
    seed: int = 0

    def record(self):
        method = {"dictionary": "MiniBatchDictionaryLearning (scikit-learn), neurons as samples; lasso codes",
                  "ica": "temporal FastICA (scikit-learn) of the neurons' principal temporal components; "
                         "least-squares loadings"}[self.method]
        return {**{key.title().replace("_", ""): value for key, value in asdict(self).items()}, "Method": method}
