"""Joint models: several feature spaces in one encoding model (``--joint-model``).

A joint model names its spaces as ``--models`` entries joined by ``+``, optionally after a label:
``lm=gpt2+wordrate+phonemes``. A language model's space is one layer (``--joint-layer``); every other space is a
baseline's single layer. The spaces are fitted alone as well (they join ``--models``): the joint model's gain is
read against them.

This module imports no model or imaging library: the command line reads it.
"""

import re
from dataclasses import dataclass

from bids_encoding.errors import UsageError

JOINT_SOLVERS = {
    "banded": "banded ridge: one penalty per space and voxel, by random search over the spaces' kernel weights "
              "(himalaya's MultipleKernelRidgeCV)",
    "stacking": "stacked regression: each space alone, then per voxel convex weights of their held-out "
                "predictions (Lin et al. 2024)",
}
_NAME = re.compile(r"^([A-Za-z0-9]+)=(.+)$")


@dataclass(frozen=True)
class JointSettings:
    """How every joint model is fitted.

    Attributes
    ----------
    solver : str
        A key of :data:`JOINT_SOLVERS`.
    layer : str
        ``best`` (per outer fold, the layer of each language model with the best mean inner-validation score of
        its own fit over the participants' voxels: no test data) or a layer index (0 = embeddings).
    n_iter : int
        Banded ridge: candidate kernel weights of the random search (the first is uniform).
    seed : int
        Banded ridge: seed of the candidates.
    unique : bool
        Fit the joint model without each space in turn: each space's unique variance (k more fits).
    score : str
        The validation score that chooses the penalties: R², so that the predictions are on the data's scale
        (split R² and unique variance mean nothing otherwise), whatever ``--alpha-score`` the models alone use.
    """

    solver: str = "banded"
    layer: str = "best"
    n_iter: int = 20
    seed: int = 0
    unique: bool = True
    score: str = "r2"

    def record(self):
        return {"Solver": self.solver, "SolverDescription": JOINT_SOLVERS[self.solver], "LanguageModelLayer": (
            "per outer fold, the layer with the best mean inner-validation score of the model's own fit"
            if self.layer == "best" else int(self.layer)),
            **({"Candidates": self.n_iter, "Seed": self.seed} if self.solver == "banded" else {}),
            "PenaltyScore": f"{self.score} on the inner validation data",
            "UniqueVariance": "the joint model's R² minus that of the joint model without the space (one more "
                              "fit per space)" if self.unique else None}


@dataclass(frozen=True)
class JointSpec:
    """One joint model: its label, its spaces (:class:`~bids_encoding.features.models.ModelSpec`) and settings.

    It has the attributes of a model spec that a fit's record reads (``model_id``, ``revision``, ``source``,
    ``untrained``, ``label``), so that reruns keep or refit it as they do a model.
    """

    label: str
    spaces: tuple
    settings: JointSettings = JointSettings()
    revision = None
    source = "joint"
    untrained = False
    is_baseline = False

    @property
    def model_id(self):
        return "joint:" + "+".join(space.model_id + (f"@{space.revision}" if space.revision else "")
                                   for space in self.spaces)

    @property
    def location(self):
        return self.model_id

    @property
    def language_models(self):
        """The spaces that have layers (language models)."""
        return tuple(space for space in self.spaces if not space.is_baseline and not getattr(space, "is_acoustic",
                                                                                             False))

    def record(self, layers=None):
        """The sidecars' ``JointModel``: its spaces (in the order of the per-space maps) and how it is fitted;
        ``layers``: ``{space label: layer per outer fold}`` once chosen."""
        return {"Label": self.label, "Spaces": [{"Label": space.label, "Id": space.model_id,
                                                  "Revision": space.revision, "Source": space.source,
                                                  **({"Layer": layers[space.label]} if space.label in (layers or {})
                                                     else {})}
                                                 for space in self.spaces],
                **self.settings.record()}


def is_joint(spec):
    return isinstance(spec, JointSpec)


def joint_entries(texts):
    """``--joint-model`` entries as ``(label or None, (space, ...))``; one-line errors for malformed ones."""
    entries = []
    for text in texts:
        match = _NAME.match(text)
        label, rest = (match.group(1), match.group(2)) if match else (None, text)
        if "=" in rest.split("+")[0]:
            raise UsageError(f"--joint-model {text}: a joint model's label is letters and digits (name=SPACE+SPACE)")
        spaces = tuple(part.strip() for part in rest.split("+"))
        if len(spaces) < 2 or not all(spaces):
            raise UsageError(f"--joint-model {text}: name two or more feature spaces joined by '+' (as --models "
                             "entries), e.g. gpt2+wordrate+phonemes, optionally after a label: lm=gpt2+wordrate")
        if len(set(spaces)) < len(spaces):
            raise UsageError(f"--joint-model {text}: a space is named twice")
        entries.append((label, spaces))
    return tuple(entries)


def joint_specs(entries, settings, parse):
    """The :class:`JointSpec` of each entry (``parse``: a ``--models`` entry -> spec); two joint models with one
    label stop the run."""
    specs = []
    for label, spaces in entries:
        parsed = tuple(parse(space) for space in spaces)
        models = [space for space in parsed if not space.is_baseline]
        default = "joint" + (models[0].label if models else parsed[0].label)
        specs.append(JointSpec(label or default, parsed, settings))
    labels = [spec.label for spec in specs]
    for label in sorted({label for label in labels if labels.count(label) > 1}):
        raise UsageError(f"--joint-model: two joint models get the label {label}: give each a label, as "
                         f"name=SPACE+SPACE (letters and digits)")
    return specs
