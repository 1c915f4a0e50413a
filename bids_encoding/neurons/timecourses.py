"""Every feed-forward neuron's activation brought to scan times, streamed in blocks of neurons.

A large model has hundreds of thousands of neurons per story; their per-word activations stay in the
memory-mapped feature cache and only ``block`` neurons at a time are resampled, trimmed and cleaned
as the BOLD is (the same :meth:`DesignSettings.regressors` as the encoding models' features).
"""

from dataclasses import dataclass, replace

import numpy as np

from bids_encoding.design import DesignSettings

FLOAT64_COPIES = 6  # float64 copies of a block on the design path (product, expansion, cleaning, its filter), measured


def one_delay(design):
    """The design of the neurons' time courses: the HRF as it is; Lanczos-FIR collapsed to one delay (the
    middle of its delays) so that each neuron gives one time course."""
    if design.kind != "lanczos-fir" or len(design.fir_delays) == 1:
        return design
    delays = sorted(design.fir_delays)
    return replace(design, fir_delays=(delays[len(delays) // 2],))


@dataclass
class NeuronTimecourses:
    """Per layer, the time courses of blocks of neurons over a participant's runs, concatenated.

    Parameters
    ----------
    neurons : list of dict
        Per run, ``{layer: array (n_words, n_neurons)}`` (memory-mapped cache arrays).
    matrices : list of array
        Per run, :meth:`DesignSettings.word_matrix` (``(n_scans, n_words)``).
    repetition_times : list of float
    design : DesignSettings
    cleaning : Cleaning or None
    confounds : list or None
        Per run, its ``RunConfounds`` (cosines and censoring reach the time courses as they reach the design).
    block : int
        Neurons per block: the memory bound is :meth:`memory_bound` bytes.
    """

    neurons: list
    matrices: list
    repetition_times: list
    design: DesignSettings = DesignSettings()
    cleaning: object = None
    confounds: list | None = None
    block: int = 2048

    def __post_init__(self):
        self.design = one_delay(self.design)

    @property
    def layers(self):
        return sorted(self.neurons[0])

    def n_neurons(self, layer):
        return int(np.shape(self.neurons[0][layer])[1])

    def run_lengths(self):
        """Scans of each run after trimming and censoring."""
        ramp = np.arange(max(matrix.shape[1] for matrix in self.matrices), dtype=np.float32)[:, None]
        return [self.design.regressors(ramp[:matrix.shape[1]], matrix, tr, self.cleaning,
                                       self.confounds[index] if self.confounds else None).shape[0]
                for index, (matrix, tr) in enumerate(zip(self.matrices, self.repetition_times))]

    @property
    def n_scans(self):
        return sum(self.run_lengths())

    def memory_bound(self):
        """Bytes held at once: one block's word activations and scan-time copies, and the output block."""
        n_words = max(matrix.shape[1] for matrix in self.matrices)
        n_scans = max(matrix.shape[0] for matrix in self.matrices)
        return self.block * (4 * n_words + 8 * FLOAT64_COPIES * n_scans + 4 * self.n_scans)

    def blocks(self, layer):
        """Yield ``(start, timecourses)``: neurons ``start:start + len(timecourses)`` of ``layer``, each row one
        neuron's time course over every run (float32, z-scored per run when the cleaning says so)."""
        for start in range(0, self.n_neurons(layer), self.block):
            runs = []
            for index, (activations, matrix, tr) in enumerate(zip(self.neurons, self.matrices,
                                                                 self.repetition_times)):
                words = np.asarray(activations[layer][:, start:start + self.block], dtype=np.float32)
                confounds = self.confounds[index] if self.confounds else None
                runs.append(self.design.regressors(words, matrix, tr, self.cleaning, confounds))
            yield start, np.concatenate(runs, axis=0).T.astype(np.float32)

    def store(self, path, layers=None):
        """Write every neuron's time course of ``layers`` (default: all) to a memory-mapped float32 file at
        ``path``, block by block: a :class:`TimecourseStore` (the cross-validation reads it once per fold
        instead of resampling the neurons again)."""
        layers = self.layers if layers is None else list(layers)
        sizes = [self.n_neurons(layer) for layer in layers]
        array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(sum(sizes), self.n_scans))
        row = 0
        for layer in layers:
            for _, block in self.blocks(layer):
                array[row:row + len(block)] = block
                row += len(block)
        array.flush()
        return TimecourseStore(np.load(path, mmap_mode="r"), np.repeat(layers, sizes),
                               np.concatenate([np.arange(size) for size in sizes]), self.run_lengths(), self.block)


@dataclass
class TimecourseStore:
    """Neurons' time courses on disk: ``array`` ``(n_neurons, n_scans)`` (memory-mapped), each row's
    ``layers`` and ``neurons`` (index within its layer), the scans of each run (``run_lengths``)."""

    array: np.ndarray
    layers: np.ndarray
    neurons: np.ndarray
    run_lengths: list
    block: int = 2048

    def scans_of(self, runs):
        """Column indices of the scans of ``runs`` (run indices)."""
        starts = np.cumsum([0] + list(self.run_lengths))
        return np.concatenate([np.arange(starts[run], starts[run + 1]) for run in runs])

    def blocks(self, scans=None):
        """Yield blocks of rows (float32), restricted to the columns ``scans`` when given."""
        for start in range(0, len(self.array), self.block):
            block = np.asarray(self.array[start:start + self.block])
            yield block if scans is None else block[:, scans]
