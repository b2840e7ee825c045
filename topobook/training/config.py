"""The configuration of a training run: :class:`TrainConfig`, its recipes and its checks.

Training runs of the book: a held-out protocol, resumable, with one seed fixing everything.

Protocol ``"held_out"`` (the default): slices 0-20 train, 21-23 validation, 24-29 evaluation.
One random 64x64 crop (random rot90 and flip) per training slice per epoch, 100 epochs, batch
size 1, Adam. After each epoch the cross-entropy on fixed seeded crops of the *validation*
slices; the checkpoint with the lowest validation cross-entropy is selected, for every strategy
alike (the criterion does not contain lambda * L_topo, so it neither favours nor penalises a
topological prior, and it is cheap enough to compute every epoch). The selected checkpoint and the
last epoch are both evaluated on the full 512x512 evaluation slices, which neither training nor
selection has seen.

Protocol ``"authors"`` (the authors' notebook, for comparison only): slices 0-23 train; the
validation crops come from the evaluation slices 24-29 and the criterion is the total loss
``L_BCE + lam * L_topo``, so model selection sees the evaluation slices.

Recipes (``recipe=``): ``"paper"`` (the default) is the protocol above, close to the paper's: batch
size 1, batch normalisation, a constant Adam learning rate, the checkpoint of lowest validation
cross-entropy. ``"stable"`` is the recipe of the confirmatory study (chapter 7), chosen on the
validation slices only: mini-batches of 8 crops (8 crops per training slice per epoch), group
normalisation (no batch statistics of single crops), a cosine learning-rate schedule after one
epoch of linear warm-up, the uniform average of the weights at the end of the last
``average_epochs`` epochs instead of an argmin over noisy validation losses (so no prior is
picked at its most BCE-like epoch), and membrane pixels weighted 3 in the training BCE (the
class-weighted cross-entropy of the EM literature: membranes are a fifth of the pixels). Any
field of a recipe can be set explicitly; the recipe only fills the fields left at ``None``
(:data:`RECIPES`).

Strategies: ``"baseline"`` (cross-entropy), ``"topo_loss"`` (eq. 1 with a topological term:
``loss="topo"`` the paper's, or a term of chapter 6), ``"topo_input"`` (the network sees
topologically processed images, ``input_mode="modified"`` as in the authors' notebook,
``"processed"`` as in the text, or ``"raw+processed"``, both as two channels) and
``"topo_loss+topo_input"``.

The data term (``base_loss=``): ``"bce"`` (the default, the book's), or ``"ce_dice"``, that BCE
plus the soft Dice over both classes (:mod:`topobook.losses.soft_dice`), the TopoMortar authors'
baseline loss. The input (``input_norm=``): the images as loaded (``"none"``), or each image
standardised per channel over its own pixels (``"zscore"``), as the authors' loader does.

Precision (``precision=``, :mod:`topobook.training.precision`): ``"fp32"`` (the default), or
bfloat16 autocast of the forward passes (``"bf16"``, only where the machine does it natively;
``"auto"`` picks it there). A config at the default has the identity it had before the field
existed, so recorded runs and registered studies keep their precision and their results.

The data set (``dataset=``) is a plug-in (:mod:`topobook.datasets`): its module fills and checks
the split fields and gives the number of input channels; nothing here names a data set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

import topobook
from topobook.datasets import get_dataset
from topobook.losses.topological import LAMBDA_PAPER, MATCHINGS, TOPO_LOSSES
from topobook.topology.persistence import COMPLEXES
from topobook.training.precision import PRECISIONS, resolve_precision
from topobook.training.unet import NORMS, default_device

STRATEGIES = ("baseline", "topo_loss", "topo_input", "topo_loss+topo_input")
# the data term of training: "bce" (the book's, membrane pixels weighted by membrane_weight), or
# "ce_dice" (that BCE plus the soft Dice over both classes: the TopoMortar authors' baseline)
BASE_LOSSES = ("bce", "ce_dice")
# what the network sees of an image: as loaded ("none"), or standardised per image and channel
# ("zscore": mean 0, SD 1 over each image's own pixels, as the TopoMortar authors' loader does)
INPUT_NORMS = ("none", "zscore")
INPUT_MODES = ("modified", "processed", "raw+processed")
PROTOCOLS = ("held_out", "authors")
LR_SCHEDULES = ("constant", "cosine")
# The fields a recipe fills when they are left at None.
RECIPES: dict[str, dict] = {
    "paper": {
        "epochs": 100,
        "lr": 1e-3,
        "batch_size": 1,
        "crops_per_slice": 1,
        "norm": "batch",
        "lr_schedule": "constant",
        "average_epochs": 0,
        "membrane_weight": 1.0,
    },
    "stable": {
        "epochs": 40,
        "lr": 2e-3,
        "batch_size": 8,
        "crops_per_slice": 8,
        "norm": "group",
        "lr_schedule": "cosine",
        "average_epochs": 10,
        # chosen on the validation slices: it raised their V_rand (pilot of chapter 7)
        "membrane_weight": 3.0,
    },
}
TOPO_TERMS = tuple(t for t in TOPO_LOSSES if t != "none")  # the terms a topo_loss run can use
# Modules whose code decides a run's numbers (paths in the package): their hash is recorded with
# every run.
_TRAINING_MODULES = (
    "datasets/__init__", "datasets/isbi2012", "datasets/datafiles", "datasets/topomortar",
    "metrics/evaluation", "losses/topological", "metrics/pixel", "topology/persistence",
    "topology/unionfind", "tip", "training/config", "training/run", "training/patches",
    "training/unet", "topology/betti_matching", "losses/skeleton_recall",
    "metrics/isbi_challenge", "metrics/topomortar_metrics", "losses/scnp", "training/precision",
    "losses/soft_dice",
)
# Fields left out of identity() at their default value: fields added after runs were recorded,
# whose default computes what those runs computed (their identity, and the reuse of their
# results, must not change).
_IDENTITY_DEFAULTS = {
    "precision": "fp32", "best_threshold_step": 0.0, "registration_sha256": "",
    "base_loss": "bce", "input_norm": "none",
}


def code_hash() -> str:
    """sha256 (first 12 hex digits) of the package modules that decide a run's numbers."""
    digest = hashlib.sha256()
    root = Path(topobook.__file__).resolve().parent
    for name in _TRAINING_MODULES:
        path = root / f"{name}.py"
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every choice of a training run; two runs with equal configs give equal numbers on CPU."""

    strategy: str = "baseline"
    seed: int = 0
    # a name of topobook.datasets' registry, "isbi2012" or "topomortar" (chapter 8: the slice
    # fields then hold image numbers, 1-120, and the network learns the bricks, 1 - mortar), or
    # the import path of a module that follows the data-set protocol
    dataset: str = "isbi2012"
    training_set: str = "large"  # TopoMortar's training set: "large" (50 images) or "small" (10)
    recipe: str = "paper"  # fills the fields left at None (RECIPES)
    epochs: int | None = None
    lr: float | None = None
    width: int = 16  # U-Net base width (the paper: 64)
    depth: int = 4
    lam: float = LAMBDA_PAPER  # weight of the topological term, used by the topo_loss strategies
    loss: str = "topo"  # the topological term (topobook.losses); "topo" is the paper's eq. (2)
    matching: str = "lifetime"
    complex: str = "cubical"
    keep_zero_length: bool = False  # TopologyLayer's fixed-length diagrams (authors' notebook)
    misroute_gradient: bool = False  # the authors' shared-layer gradient bug (chapter 2)
    cldice_iterations: int = 3  # soft-skeleton iterations of loss="cldice"
    scnp_window: int = 3  # side of the square neighbourhood of loss="scnp" (odd; reference: 3)
    input_mode: str = "processed"  # for the topo_input strategies (the paper's text)
    tip_window: int = 1  # TIP settings of the authors' notebook: window 1, border 1, noise 0.01
    tip_border: int = 1
    tip_noise: float = 0.01
    patch_size: int = 64
    batch_size: int | None = None
    crops_per_slice: int | None = None  # training crops per training slice and epoch
    norm: str | None = None  # "batch" or "group" normalisation (topobook.training.unet)
    lr_schedule: str | None = None  # "constant" or "cosine" (after one epoch of warm-up)
    average_epochs: int | None = None  # 0: select the epoch of lowest validation loss; k > 0:
    # evaluate the average of the weights at the end of the last k epochs
    membrane_weight: float | None = None  # weight of membrane pixels in the training BCE
    base_loss: str = "bce"  # the data term: "bce" or "ce_dice" (BASE_LOSSES)
    input_norm: str = "none"  # "none" or "zscore", per image and channel (INPUT_NORMS)
    topo_start_epoch: int = 0  # warm start: the topological term is on from this epoch (0-based)
    # epochs after which the run saves its state as a trunk that branches start from
    # (topobook.training.trunk); it does not change the run's numbers, so it is not in its identity
    trunk_epochs: tuple[int, ...] = ()
    n_val_patches: int = 24
    diagram_epochs: tuple[int, ...] = (5, 95)
    protocol: str = "held_out"
    train_slices: tuple[int, ...] | None = None  # None: the protocol's (0-20, authors 0-23)
    val_slices: tuple[int, ...] | None = None  # None: 21-23 (authors: the evaluation slices)
    eval_slices: tuple[int, ...] | None = None  # None: ISBI 24-29 (TopoMortar: 71-120)
    betti_patches: int = 100  # windows per slice for the standard Betti error
    # grid of the run's one threshold, chosen on the validation slices: step, 2 step, ... < 1
    operating_point_step: float = 0.01
    # > 0: also score the evaluation stack at its own best V_rand threshold on this grid (a
    # threshold-free reading, the same for every arm; metrics.evaluation.evaluate_at_best_threshold)
    best_threshold_step: float = 0.0
    threads: int = 1
    # arithmetic of the forward passes (topobook.training.precision): "fp32" (the default, the
    # precision of every run recorded before the field), "bf16" (autocast; only where native) or
    # "auto" (bf16 where native, else fp32; resolved when the config is made)
    precision: str = "fp32"
    # the SHA-256 of the registration a study run belongs to ("" for other runs): recorded in
    # metrics.json and part of the run's identity, so a changed registration retrains its runs
    registration_sha256: str = ""

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {tuple(RECIPES)}, got {self.recipe!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.precision == "auto":  # this machine's choice, recorded in the config
            object.__setattr__(self, "precision", resolve_precision("auto", default_device()))
        for name, value in RECIPES[self.recipe].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        checks = [
            (self.strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}"),
            (self.input_mode in INPUT_MODES, f"input_mode must be one of {INPUT_MODES}"),
            (self.protocol in PROTOCOLS, f"protocol must be one of {PROTOCOLS}"),
            (self.loss in TOPO_TERMS, f"loss must be one of {TOPO_TERMS}"),
            (self.matching in MATCHINGS, f"matching must be one of {MATCHINGS}"),
            (self.complex in COMPLEXES, f"complex must be one of {COMPLEXES}"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (self.crops_per_slice >= 1, "crops_per_slice must be >= 1"),
            (self.lr > 0 and self.lam >= 0, "lr must be > 0 and lam >= 0"),
            (self.norm in NORMS, f"norm must be one of {NORMS}"),
            (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}"),
            (
                0 <= self.average_epochs <= self.epochs,
                "average_epochs must lie in [0, epochs]",
            ),
            (self.membrane_weight > 0, "membrane_weight must be > 0"),
            (self.base_loss in BASE_LOSSES, f"base_loss must be one of {BASE_LOSSES}"),
            (self.input_norm in INPUT_NORMS, f"input_norm must be one of {INPUT_NORMS}"),
            (0 <= self.topo_start_epoch < self.epochs, "topo_start_epoch must lie in [0, epochs)"),
            (0 < self.operating_point_step <= 0.5, "operating_point_step must lie in (0, 0.5]"),
            (
                self.registration_sha256 == ""
                or (len(self.registration_sha256) == 64
                    and all(ch in "0123456789abcdef" for ch in self.registration_sha256)),
                "registration_sha256 must be empty or 64 lower-case hex digits",
            ),
            (
                0 <= self.best_threshold_step <= 0.5,
                "best_threshold_step must lie in [0, 0.5] (0: no best-threshold reading)",
            ),
            (self.patch_size % 2**self.depth == 0, "patch_size must be divisible by 2**depth"),
            (self.n_val_patches >= 1, "n_val_patches must be >= 1"),
            (
                type(self.scnp_window) is int and self.scnp_window >= 1 and self.scnp_window % 2,
                "scnp_window must be an odd integer >= 1",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message} (config: {self})")
        get_dataset(self.dataset).check_config(self)  # fills and checks the split fields
        for name in ("diagram_epochs", "train_slices", "val_slices", "eval_slices", "trunk_epochs"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if not all(1 <= e < self.epochs for e in self.trunk_epochs):
            raise ValueError(
                f"trunk_epochs must lie in [1, epochs) = [1, {self.epochs}), "
                f"got {self.trunk_epochs}"
            )
        if self.uses_topo_loss and any(e > self.branch_epoch for e in self.trunk_epochs):
            raise ValueError(
                f"trunk_epochs {self.trunk_epochs}: a run with a topological term is its "
                f"baseline's trunk only until its term starts (branch epoch {self.branch_epoch}); "
                "ask the baseline run for the trunk instead"
            )

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A config from a dict, with a clear error for unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training parameters {unknown}; known: {sorted(known)}")
        return cls(**values)

    @property
    def uses_topo_loss(self) -> bool:
        return self.strategy in ("topo_loss", "topo_loss+topo_input") and self.lam > 0

    @property
    def branch_epoch(self) -> int:
        """The epoch from which this run is a branch of its trunk (:mod:`topobook.training.trunk`),
        0 if it is none: a run whose topological term starts at ``topo_start_epoch`` > 0 trains
        exactly as its baseline until then, unless its weights are selected by a criterion that
        contains the term (the authors' ``val_total``), which makes its trunk its own."""
        if self.uses_topo_loss and self.topo_start_epoch > 0 and self.selection != "val_total":
            return self.topo_start_epoch
        return 0

    @property
    def uses_topo_input(self) -> bool:
        return self.strategy in ("topo_input", "topo_loss+topo_input")

    @property
    def in_channels(self) -> int:
        return get_dataset(self.dataset).in_channels(self)

    @property
    def operating_thresholds(self) -> tuple[float, ...]:
        """The candidate thresholds of the run's operating point: the multiples of
        ``operating_point_step`` in (0, 1), rounded (0.01: 0.01, 0.02, ..., 0.99)."""
        count = int(np.floor((1.0 - 1e-9) / self.operating_point_step))
        return tuple(round(k * self.operating_point_step, 10) for k in range(1, count + 1))

    @property
    def best_thresholds(self) -> tuple[float, ...]:
        """The grid of the best-threshold reading: multiples of ``best_threshold_step`` in (0, 1)
        (empty when the step is 0)."""
        if not self.best_threshold_step:
            return ()
        count = int(np.floor((1.0 - 1e-9) / self.best_threshold_step))
        return tuple(round(k * self.best_threshold_step, 10) for k in range(1, count + 1))

    @property
    def selection(self) -> str:
        """How the evaluated weights are chosen: the average of the last epochs' weights
        (``"average_last_k"``), else the epoch of lowest validation cross-entropy (``"val_bce"``)
        on held-out slices, or of the authors' validation total loss on the evaluation slices."""
        if self.average_epochs:
            return f"average_last_{self.average_epochs}"
        return "val_total" if self.protocol == "authors" else "val_bce"

    def identity(self) -> dict:
        """What must match for a run to be resumed or reused: every setting but the epoch count,
        the thread count and the trunks it saves, and the package version (bumped when training
        code changes). A field of ``_IDENTITY_DEFAULTS`` at its default is left out, and
        ``scnp_window`` unless ``loss="scnp"``: fields added after runs were recorded, whose
        default computes what those runs computed, so that their identity is unchanged."""
        values = dataclasses.asdict(self)
        values.pop("epochs")
        values.pop("threads")
        values.pop("trunk_epochs")
        for name, default in _IDENTITY_DEFAULTS.items():
            if values[name] == default:
                values.pop(name)
        if self.loss != "scnp":
            values.pop("scnp_window")
        values["code_version"] = topobook.__version__
        return json.loads(json.dumps(values))
