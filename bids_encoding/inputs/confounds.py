"""fMRIPrep confounds, chosen with nilearn's ``load_confounds`` strategies and applied per run.

The BOLD is cleaned with every chosen column. The stimulus design is cleaned
with what applies to it: the discrete cosines of ``high_pass`` (they depend
on the scan times only) and the scans that ``scrub`` censors (the same scans
leave the BOLD and the design). Participant-specific noise (motion, white
matter and CSF, global signal, CompCor) is regressed out of the BOLD only:
it is not part of the stimulus, and the design stays the same for everyone
who heard the same stimuli.
"""

import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bids_encoding.errors import BadDataError, MissingInputError

LOGGER = logging.getLogger(__name__)
STRATEGIES = ("motion", "wm_csf", "global_signal", "compcor", "scrub", "high_pass")
MODELS = ("basic", "power2", "derivatives", "full")
COSINE = re.compile(r"^cosine\d+$")


@dataclass(frozen=True)
class ConfoundSettings:
    """``load_confounds`` parameters (nilearn's names and defaults); an empty ``strategy``: no confounds."""

    strategy: tuple = ()
    motion: str = "full"
    wm_csf: str = "basic"
    global_signal: str = "basic"
    compcor: str = "anat_combined"
    n_compcor: str = "all"
    scrub: int = 5
    fd_threshold: float = 0.5
    std_dvars_threshold: float = 1.5

    def __post_init__(self):
        unknown = sorted(set(self.strategy) - set(STRATEGIES))
        if unknown:
            raise ValueError(f"unknown confound strategy {', '.join(unknown)} (choose from {', '.join(STRATEGIES)})")
        if "compcor" in self.strategy and "high_pass" not in self.strategy:
            raise ValueError("the compcor strategy needs high_pass too (fMRIPrep's CompCor is computed on "
                             "high-passed data)")

    def record(self):
        """The settings that apply to the chosen strategies (for the sidecars)."""
        own = {"motion": ("motion",), "wm_csf": ("wm_csf",), "global_signal": ("global_signal",),
               "compcor": ("compcor", "n_compcor"), "scrub": ("scrub", "fd_threshold", "std_dvars_threshold")}
        values = asdict(self)
        return {"Strategy": list(self.strategy), "Loader": "nilearn.interfaces.fmriprep.load_confounds",
                **{key: values[key] for name in self.strategy for key in own.get(name, ())}}

    def load(self, bold_path):
        """The run's confounds, or None when no strategy is chosen."""
        if not self.strategy:
            return None
        from nilearn.interfaces.fmriprep import load_confounds

        kwargs = {key: value for key, value in asdict(self).items() if key != "strategy"}
        if str(kwargs["n_compcor"]).isdigit():
            kwargs["n_compcor"] = int(kwargs["n_compcor"])
        try:
            table, sample_mask = load_confounds(str(bold_path), strategy=self.strategy, **kwargs)
        except ValueError as error:
            if "find associated confound file" in str(error):
                raise MissingInputError(
                    f"--confounds: no confounds file beside {bold_path} (fMRIPrep's "
                    "*_desc-confounds_timeseries.tsv, or *_desc-confounds_regressors.tsv before 20.2): give "
                    "fMRIPrep derivatives, or leave --confounds out") from error
            raise BadDataError(f"--confounds {' '.join(self.strategy)}: cannot use the confounds of {bold_path}: "
                               f"{error}") from error
        except (KeyError, OSError) as error:
            raise BadDataError(f"--confounds {' '.join(self.strategy)}: the confounds of {bold_path} lack "
                               f"{error}: check the file, or choose other strategies") from error
        return RunConfounds(confounds_file(bold_path), table, None if sample_mask is None
                            else np.asarray(sample_mask, dtype=int))


def confounds_file(bold_path):
    """The fMRIPrep confounds file of a preprocessed run (both naming generations), or None."""
    stem = Path(bold_path).name.split("_space-")[0].split("_desc-")[0]
    for suffix in ("_desc-confounds_timeseries.tsv", "_desc-confounds_regressors.tsv"):
        candidate = Path(bold_path).with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


@dataclass
class RunConfounds:
    """One run's confound columns (whole run) and the scans ``load_confounds`` keeps (None: all)."""

    path: Path | None
    table: object = field(repr=False)  # pandas DataFrame, one row per scan
    sample_mask: np.ndarray | None = None

    def window(self, start, stop):
        """``(bold_confounds, design_confounds, kept)`` for scans ``start:stop`` of the run: the confound
        columns, the cosine columns (or None), and the kept scans counted from ``start`` (None: all)."""
        table = self.table.iloc[start:stop]
        cosines = [column for column in table.columns if COSINE.match(column)]
        kept = None
        if self.sample_mask is not None:
            kept = self.sample_mask[(self.sample_mask >= start) & (self.sample_mask < stop)] - start
            if len(kept) == stop - start:
                kept = None
        values = table.to_numpy(dtype=float) if table.shape[1] else None
        return values, (table[cosines].to_numpy(dtype=float) if cosines else None), kept

    def signature(self, start, stop, censoring=True):
        """What the design depends on: the number of cosines and (with ``censoring``) the kept scans."""
        _, cosines, kept = self.window(start, stop)
        return (0 if cosines is None else cosines.shape[1],
                tuple(kept.tolist()) if censoring and kept is not None else None)

    def record(self, start, stop):
        """For the run's entry in the sidecars."""
        _, _, kept = self.window(start, stop)
        return {"File": str(self.path) if self.path else None, "Columns": list(self.table.columns),
                "CensoredScans": 0 if kept is None else int(stop - start - len(kept))}
