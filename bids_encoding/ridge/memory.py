"""How the ridge computes: device, dtype, the memory budget and the blocks of voxels it sets.

One memory policy, used by the ridge (:class:`Compute`), the participant level (how many participants are
fitted together: :func:`memory_budget`) and ``--plan`` (:func:`working_memory`).
"""

import math
from dataclasses import dataclass

import torch

from bids_encoding.backend import available_memory

BLOCK_MULTIPLE = 64
LIBRARY_OVERHEAD = 32 * 2 ** 20  # workspaces of the linear-algebra libraries, counted in --mem
FORMS = ("auto", "primal", "dual")


def memory_budget(mem, device="cpu"):
    """Bytes the ridge may use: ``mem`` (``--mem``), else a quarter of the available RAM, or 80% of the GPU's
    free memory."""
    if mem:
        return mem
    return (0.8 if str(device).startswith("cuda") else 0.25) * available_memory(device)


def working_memory(n_rows, n_features, n_val, n_test, n_alphas, itemsize=4):
    """Bytes of the primal form's work arrays: ``(fixed, per_voxel)``, for a block of voxels."""
    per_voxel = itemsize * (3 * n_rows + 3 * n_features + 3 * n_alphas * n_val + 4 * n_test + 64)
    fixed = itemsize * (n_alphas * n_val * n_features + 4 * n_features ** 2) + LIBRARY_OVERHEAD
    return fixed, per_voxel


@dataclass(frozen=True)
class Compute:
    """How the ridge computes, which never changes its results beyond rounding.

    Parameters
    ----------
    device : str
        ``cpu`` or ``cuda``.
    dtype : torch.dtype
        The working dtype (the kernels and decompositions are float64 regardless).
    mem : int or None
        Bytes the fit may use beyond the data; ``None``: :func:`memory_budget`'s default.
    voxel_chunk : int or None
        Voxels per block, overriding ``mem``.
    tf32 : bool
        Allow TF32 matrix products on the GPU.
    form : {"auto", "primal", "dual"}
        ``auto``: primal when the features are fewer than half the training scans, else dual
        (:func:`bids_encoding.ridge.solver.shape_form`); the two give the same results.
    """

    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    mem: int | None = None
    voxel_chunk: int | None = None
    tf32: bool = False
    form: str = "auto"

    def __post_init__(self):
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}")

    @property
    def itemsize(self):
        return torch.finfo(self.dtype).bits // 8

    @property
    def max_block(self):
        """On a CPU, blocks that keep the per-alpha predictions near the caches are fastest (measured)."""
        return 1024 if not str(self.device).startswith("cuda") else 16384

    def budget(self):
        return memory_budget(self.mem, self.device)

    def _given_block(self):
        return max(BLOCK_MULTIPLE, int(self.voxel_chunk) // BLOCK_MULTIPLE * BLOCK_MULTIPLE)

    def block_size(self, shape, n_alphas):
        """Voxels per block of the primal form, so that the per-block work arrays fit the budget.

        ``shape``: ``(n_rows, n_features, n_val, n_test, n_voxels)``."""
        if self.voxel_chunk:
            return self._given_block()
        n_rows, n_features, n_val, n_test, n_voxels = shape
        budget = self.budget()
        fixed, per_voxel = working_memory(n_rows, n_features, n_val, n_test, n_alphas, self.itemsize)
        block = min(int((budget - fixed) // per_voxel), self.max_block) // BLOCK_MULTIPLE * BLOCK_MULTIPLE
        if block < BLOCK_MULTIPLE:
            need = fixed + BLOCK_MULTIPLE * per_voxel
            raise MemoryError(f"the ridge fit needs at least {need / 2 ** 20:.0f} MiB of working memory "
                              f"(--mem gives {budget / 2 ** 20:.0f} MiB)")
        return min(block, _padded(n_voxels))

    def check_kernel(self, n_rows, n_features):
        """Refuse, before it is formed, a dual-form kernel (float64: the features, the kernel, its eigenvectors
        and eigh's workspace) larger than the budget."""
        need = 8 * (n_rows * n_features + 3 * n_rows ** 2) + LIBRARY_OVERHEAD
        if need > self.budget():
            raise MemoryError(f"the dual form's kernel of {n_rows} scans needs {need / 2 ** 20:.0f} MiB "
                              f"(--mem gives {self.budget() / 2 ** 20:.0f} MiB); or approximate it with "
                              "--ridge-rank K")

    def room_for_hat(self, n_rows):
        """Whether the dual form's ``n × n`` float64 hat matrix (and two more of its size) fits in a quarter of the
        memory budget; otherwise its blocks are computed one deletion at a time."""
        return 3 * 8 * n_rows ** 2 <= self.budget() / 4

    def dual_block_size(self, fit, shape, n_alphas):
        """Voxels per block for the dual form, and the bytes left for the deletion operators: half of the budget
        left after the fit's eigenvectors and the per-alpha score arrays each.

        ``shape``: ``(max_group, n_voxels, n_folds, copied_rows, outer_operators)``."""
        max_group, n_voxels, n_folds, copied_rows, outer_operators = shape
        itemsize, n, rank = self.itemsize, fit.n_rows, fit.rank
        # eigenvectors (float64 and working dtype), the hat matrix and its complement while the operators are
        # formed, the outer folds' operators (kept), the per-alpha scores
        hat = n * n if fit.full_hat else n * max_group  # the hat matrix, or the blocks of one deletion
        fixed = ((itemsize + 8) * n * rank + 3 * 8 * hat + itemsize * n_alphas * outer_operators
                 + 8 * n_alphas * n_folds * n_voxels + LIBRARY_OVERHEAD)
        per_voxel = itemsize * (6 * n + 2 * rank + 4 * max_group + copied_rows + 64) + 8 * (n + rank)  # + the
        # float64 residual and its coordinates
        room = (self.budget() - fixed) / 4  # half left for the allocator and the float64 temporaries
        if self.voxel_chunk:
            return self._given_block(), room
        # half of the room: the allocator keeps freed temporaries (resident memory measured by tests/test_ridge.py)
        block = min(int(room / 2 // per_voxel), 2 * self.max_block)  # 2x the primal's: measured
        block = block // BLOCK_MULTIPLE * BLOCK_MULTIPLE
        if block < BLOCK_MULTIPLE:
            need = fixed + 2 * BLOCK_MULTIPLE * per_voxel
            raise MemoryError(f"the ridge fit (dual form) needs at least {need / 2 ** 20:.0f} MiB of working memory "
                              f"(--mem gives {self.budget() / 2 ** 20:.0f} MiB)")
        return min(block, _padded(n_voxels)), room

    def operator_batches(self, plans, room, n_alphas):
        """Outer folds in batches whose deletion operators fit in ``room`` bytes; every batch is one pass over
        the voxels."""
        batches, batch, used = [], [], 0
        for plan in plans:
            size = self.itemsize * n_alphas * sum(len(rows) * len(g) for rows, g in plan[3])
            if batch and used + size > room:
                batches.append(batch)
                batch, used = [], 0
            batch.append(plan)
            used += size
        return batches + [batch]


def _padded(n_voxels):
    return max(BLOCK_MULTIPLE, math.ceil(n_voxels / BLOCK_MULTIPLE) * BLOCK_MULTIPLE)
