"""Training runs of the book: a held-out protocol, resumable, with one seed fixing everything.

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

A run writes to ``out_dir``: ``checkpoint.pt`` after every epoch (atomically; an interrupted run
resumes from it without losing an epoch) and ``status.json`` (epochs done, for progress bars);
once finished, a compact artefact: ``metrics.json``, ``model.pt`` (the selected weights) and
``predictions.npz`` (cell probabilities of the evaluation slices, and of the whole validation
slices for choosing an operating point), and the checkpoint is deleted.
A finished run is reused only when its configuration *and* the code version match.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import topobook
from topobook import data, evaluation, tip
from topobook.losses import LAMBDA_PAPER, MATCHINGS, TOPO_LOSSES, LossParts, training_loss
from topobook.machine import machine_record
from topobook.persistence import COMPLEXES, diagrams
from topobook.unet import NORMS, UNet, default_device

STRATEGIES = ("baseline", "topo_loss", "topo_input", "topo_loss+topo_input")
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
# Modules whose code decides a run's numbers: their hash is recorded with every run.
_TRAINING_MODULES = (
    "data", "datafiles", "evaluation", "losses", "metrics", "persistence", "unionfind", "tip",
    "train", "unet", "betti_matching", "skeleton_recall", "isbi_challenge", "topomortar_data",
    "topomortar_metrics", "topomortar_training",
)
DATASETS = ("isbi2012", "topomortar")


def code_hash() -> str:
    """sha256 (first 12 hex digits) of the package modules that decide a run's numbers."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
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
    # "isbi2012" or "topomortar" (chapter 8: the slice fields then hold image numbers, 1-120,
    # and the network learns the bricks, 1 - mortar; topobook.topomortar_training)
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
    input_mode: str = "processed"  # for the topo_input strategies (the paper's text)
    tip_window: int = 1  # TIP settings of the authors' notebook: window 1, border 1, noise 0.01
    tip_border: int = 1
    tip_noise: float = 0.01
    patch_size: int = 64
    batch_size: int | None = None
    crops_per_slice: int | None = None  # training crops per training slice and epoch
    norm: str | None = None  # "batch" or "group" normalisation (topobook.unet)
    lr_schedule: str | None = None  # "constant" or "cosine" (after one epoch of warm-up)
    average_epochs: int | None = None  # 0: select the epoch of lowest validation loss; k > 0:
    # evaluate the average of the weights at the end of the last k epochs
    membrane_weight: float | None = None  # weight of membrane pixels in the training BCE
    topo_start_epoch: int = 0  # warm start: the topological term is on from this epoch (0-based)
    n_val_patches: int = 24
    diagram_epochs: tuple[int, ...] = (5, 95)
    protocol: str = "held_out"
    train_slices: tuple[int, ...] | None = None  # None: the protocol's (0-20, authors 0-23)
    val_slices: tuple[int, ...] | None = None  # None: 21-23 (authors: the evaluation slices)
    eval_slices: tuple[int, ...] | None = None  # None: ISBI 24-29 (TopoMortar: 71-120)
    betti_patches: int = 100  # windows per slice for the standard Betti error
    # grid of the run's one threshold, chosen on the validation slices: step, 2 step, ... < 1
    operating_point_step: float = 0.01
    threads: int = 1

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {tuple(RECIPES)}, got {self.recipe!r}")
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
            (0 <= self.topo_start_epoch < self.epochs, "topo_start_epoch must lie in [0, epochs)"),
            (0 < self.operating_point_step <= 0.5, "operating_point_step must lie in (0, 0.5]"),
            (self.patch_size % 2**self.depth == 0, "patch_size must be divisible by 2**depth"),
            (self.n_val_patches >= 1, "n_val_patches must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message} (config: {self})")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.dataset == "topomortar":  # its own splits and checks
            from topobook.topomortar_training import check_config

            check_config(self)
            return
        if self.training_set != "large":
            raise ValueError("training_set is a TopoMortar setting; ISBI 2012 has one")
        if self.eval_slices is None:
            object.__setattr__(self, "eval_slices", data.DEFAULT_EVAL_SLICES)
        authors = self.protocol == "authors"
        if self.train_slices is None:
            train = data.AUTHORS_TRAIN_SLICES if authors else data.DEFAULT_TRAIN_SLICES
            object.__setattr__(self, "train_slices", train)
        if self.val_slices is None:
            val = self.eval_slices if authors else data.DEFAULT_VAL_SLICES
            object.__setattr__(self, "val_slices", val)
        for name in ("diagram_epochs", "train_slices", "val_slices", "eval_slices"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        seen_by_selection = set(self.val_slices) & set(self.eval_slices)
        if seen_by_selection and not authors:
            raise ValueError(
                f"validation slices {sorted(seen_by_selection)} are evaluation slices: the "
                "held_out protocol never selects on them (protocol='authors' does, as labelled)"
            )
        if set(self.train_slices) & (set(self.val_slices) | set(self.eval_slices)):
            raise ValueError("training slices must not be validation or evaluation slices")

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
    def uses_topo_input(self) -> bool:
        return self.strategy in ("topo_input", "topo_loss+topo_input")

    @property
    def in_channels(self) -> int:
        if self.dataset == "topomortar":
            return 3  # RGB photographs
        return 2 if self.uses_topo_input and self.input_mode == "raw+processed" else 1

    @property
    def operating_thresholds(self) -> tuple[float, ...]:
        """The candidate thresholds of the run's operating point: the multiples of
        ``operating_point_step`` in (0, 1), rounded (0.01: 0.01, 0.02, ..., 0.99)."""
        count = int(np.floor((1.0 - 1e-9) / self.operating_point_step))
        return tuple(round(k * self.operating_point_step, 10) for k in range(1, count + 1))

    @property
    def selection(self) -> str:
        """How the evaluated weights are chosen: the average of the last epochs' weights
        (``"average_last_k"``), else the epoch of lowest validation cross-entropy (``"val_bce"``)
        on held-out slices, or of the authors' validation total loss on the evaluation slices."""
        if self.average_epochs:
            return f"average_last_{self.average_epochs}"
        return "val_total" if self.protocol == "authors" else "val_bce"

    def identity(self) -> dict:
        """What must match for a run to be resumed or reused: every setting but the epoch count
        and the thread count, and the package version (bumped when training code changes)."""
        values = dataclasses.asdict(self)
        values.pop("epochs")
        values.pop("threads")
        values["code_version"] = topobook.__version__
        return json.loads(json.dumps(values))


def noisy_image(image: np.ndarray, config: TrainConfig, slice_index: int) -> np.ndarray:
    """The image plus the authors' ``tip_noise * N(0, 1)`` noise (which makes values distinct),
    seeded per run and slice; the start of every topological input."""
    rng = np.random.default_rng([config.seed, slice_index])
    return image + config.tip_noise * rng.standard_normal(image.shape)


def network_inputs(images: np.ndarray, config: TrainConfig, slices) -> np.ndarray:
    """What the network sees: the images ``(N, H, W)``, their topological processing
    ``(N, H, W)``, or both as two channels ``(N, 2, H, W)`` (``input_mode="raw+processed"``)."""
    if not config.uses_topo_input:
        return images
    out = []
    for image, s in zip(images, slices, strict=True):
        noisy = noisy_image(image, config, s)
        if config.input_mode == "modified":
            result = tip.modify_border(tip.smooth(noisy, config.tip_window), config.tip_border)
        else:
            result = tip.process(noisy, config.tip_window, config.tip_border)["processed"]
            if config.input_mode == "raw+processed":
                result = np.stack([image, result])
        out.append(result.astype(np.float32))
    return np.stack(out)


def _save_atomically(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _term_options(config: TrainConfig) -> dict:
    """The keyword arguments of the configured topological term."""
    if config.loss == "topo":
        return {
            "matching": config.matching,
            "complex": config.complex,
            "keep_zero_length": config.keep_zero_length,
            "misroute_gradient": config.misroute_gradient,
            # per crop, so that lam means the same at every batch size (batch 1: the same number)
            "reduction": "mean",
        }
    if config.loss == "cldice":
        return {"iterations": config.cldice_iterations}
    return {}


def _loss_parts(
    logits: torch.Tensor, y: torch.Tensor, config: TrainConfig, epoch: int | None = None
) -> LossParts:
    """The training objective of a batch; ``epoch`` (0-based, None in validation) switches the
    topological term off before ``config.topo_start_epoch``. The BCE part weighs membrane
    pixels by ``config.membrane_weight`` in training; validation reports the plain BCE."""
    term_on = config.uses_topo_loss and (epoch is None or epoch >= config.topo_start_epoch)
    if not term_on:
        parts = training_loss(logits, y, "none", 0.0)
    else:
        parts = training_loss(logits, y, config.loss, config.lam, **_term_options(config))
    if epoch is None or config.membrane_weight == 1.0:
        return parts
    weight = torch.where(y > 0.5, 1.0, config.membrane_weight).to(logits.dtype)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, weight=weight)
    lam = config.lam if term_on else 0.0
    return LossParts(bce + lam * parts.topo, bce, parts.topo)


def _epoch_crops(sampler: data.PatchSampler, crops_per_slice: int):
    """One epoch's training crops: ``crops_per_slice`` per training slice, in a random order.
    With one crop per slice this is ``sampler.epoch()``, the paper's epoch."""
    if crops_per_slice == 1:
        yield from sampler.epoch()
        return
    order = sampler.rng.permutation(np.repeat(np.arange(len(sampler.images)), crops_per_slice))
    for i in order:
        yield sampler.sample(int(i))


def _learning_rate_factor(config: TrainConfig, steps_per_epoch: int):
    """``step -> factor`` of the base learning rate: constant, or one epoch of linear warm-up
    followed by a cosine decay to 0 at the last step."""
    total = config.epochs * steps_per_epoch
    warmup = steps_per_epoch

    def factor(step: int) -> float:
        if config.lr_schedule == "constant":
            return 1.0
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + float(np.cos(np.pi * min(1.0, progress))))

    return factor


def _as_input(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W)`` or ``(N, C, H, W)`` numpy images as a ``(N, C, H, W)`` float tensor."""
    x = torch.tensor(np.asarray(images, dtype=np.float32))
    return x[:, None] if x.ndim == 3 else x


def _batches(pairs, batch_size):
    pairs = list(pairs)
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i : i + batch_size]
        x = _as_input(np.stack([p[0] for p in chunk]))
        y = torch.tensor(np.stack([p[1] for p in chunk]), dtype=torch.float32)[:, None]
        yield x, y


def predict(model: torch.nn.Module, images: np.ndarray, device=None) -> np.ndarray:
    """Cell probabilities ``(N, H, W)`` float32 for images ``(N, H, W)`` or ``(N, C, H, W)``,
    one at a time."""
    device = device or next(model.parameters()).device
    model.eval()
    x = _as_input(images)
    with torch.no_grad():
        return np.stack(
            [torch.sigmoid(model(xi[None].to(device)))[0, 0].cpu().numpy() for xi in x]
        )


def _write_json(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def finished_result(config: TrainConfig, out_dir: str | Path) -> dict | None:
    """The content of ``metrics.json`` if ``out_dir`` holds this run finished, else ``None``."""
    path = Path(out_dir) / "metrics.json"
    if not path.exists():
        return None
    done = json.loads(path.read_text())
    if done.get("config_identity") == config.identity() and done.get("epochs") == config.epochs:
        return done
    return None


def train(
    config: TrainConfig,
    out_dir: str | Path,
    progress: bool = True,
    callback: Callable[[int, dict], None] | None = None,
) -> dict:
    """Run (or resume, or reuse) one training run; returns the content of ``metrics.json``.

    ``callback(epoch, record)`` is called after each epoch's checkpoint is written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out_dir / "checkpoint.pt"
    done = finished_result(config, out_dir)
    if done is not None:
        return done
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = default_device()

    if config.dataset == "topomortar":  # images (N, 3, H, W), targets 1 = brick
        from topobook.topomortar_training import load_training_data

        split, (val_images, val_masks) = load_training_data(config)
    else:
        split = data.train_eval_split(config.train_slices, config.eval_slices, val_slices=())
        # loaded apart: under protocol="authors" the validation slices are the evaluation slices
        val_images, val_masks = data.load_isbi(config.val_slices)
    train_x = network_inputs(split["train_images"], config, config.train_slices)
    val_x = network_inputs(val_images, config, config.val_slices)
    sampler = data.PatchSampler(train_x, split["train_masks"], config.patch_size, seed=config.seed)
    val_sampler = data.PatchSampler(
        val_x, val_masks, config.patch_size, augment=False, seed=config.seed + 10_000
    )
    val_pairs = [val_sampler.sample() for _ in range(config.n_val_patches)]

    model = UNet(
        in_channels=config.in_channels,
        base_width=config.width,
        depth=config.depth,
        norm=config.norm,
    )
    # channels_last: about 15 % faster convolutions on these CPUs, the same numbers every run
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = -(-len(config.train_slices) * config.crops_per_slice // config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _learning_rate_factor(config, steps_per_epoch)
    )
    state = {
        "epoch": 0,
        "history": [],
        "best_val": float("inf"),
        "best_epoch": -1,
        "best_model": None,
        "diagrams": {},
        "train_seconds": 0.0,
        "weight_sum": None,  # sum of the last epochs' weights (recipe "stable")
        "weight_count": 0,
    }
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, weights_only=False)
        if saved["config_identity"] == config.identity():
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            sampler.rng.bit_generator.state = saved["sampler_rng"]
            torch.set_rng_state(saved["torch_rng"])
            state = saved["state"]
        else:
            print(f"{checkpoint_path} belongs to another configuration: starting afresh")

    bar = tqdm(
        range(state["epoch"], config.epochs),
        initial=state["epoch"],
        total=config.epochs,
        desc=f"{config.strategy} seed {config.seed}",
        disable=not progress,
    )
    criterion = config.selection
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        sums = np.zeros(2)
        n_batches = 0
        for x, y in _batches(_epoch_crops(sampler, config.crops_per_slice), config.batch_size):
            optimizer.zero_grad()
            x = x.to(device, memory_format=torch.channels_last)
            parts = _loss_parts(model(x), y.to(device), config, epoch)
            parts.total.backward()
            optimizer.step()
            scheduler.step()
            sums += (parts.bce.item(), parts.topo.item())
            n_batches += 1
        model.eval()
        val = np.zeros(3)
        with torch.no_grad():  # one forward pass for all crops, the loss of each crop alone
            x, y = next(_batches(val_pairs, len(val_pairs)))
            logits = model(x.to(device, memory_format=torch.channels_last))
            for i in range(len(val_pairs)):
                parts = _loss_parts(logits[i : i + 1], y[i : i + 1].to(device), config)
                val += (parts.total.item(), parts.bce.item(), parts.topo.item())
        val /= len(val_pairs)
        record = {
            "epoch": epoch + 1,
            "train_bce": sums[0] / n_batches,
            "train_topo": sums[1] / n_batches,
            "val_total": val[0],
            "val_bce": val[1],
            "val_topo": val[2],
        }
        state["history"].append(record)
        if config.average_epochs:
            if epoch >= config.epochs - config.average_epochs:
                _accumulate_weights(state, model)
        elif record[criterion] < state["best_val"]:
            state["best_val"], state["best_epoch"] = float(record[criterion]), epoch + 1
            state["best_model"] = copy.deepcopy(model.state_dict())
        if epoch + 1 in config.diagram_epochs:
            prob = predict(model, val_pairs[0][0][None])[0]
            state["diagrams"][epoch + 1] = [d.tolist() for d in diagrams(prob, superlevel=True)]
        state["epoch"] = epoch + 1
        state["train_seconds"] += time.perf_counter() - start
        _save_atomically(
            {
                "config_identity": config.identity(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "sampler_rng": sampler.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "state": state,
            },
            checkpoint_path,
        )
        _write_json({"epoch": epoch + 1, "epochs": config.epochs}, out_dir / "status.json")
        bar.set_postfix(
            bce=f"{record['train_bce']:.3f}",
            topo=f"{record['train_topo']:.2f}",
            val=f"{record['val_bce']:.3f}",
        )
        if callback is not None:
            callback(epoch + 1, record)

    if config.dataset == "topomortar":  # scored with the authors' metrics, on its test images
        from topobook.topomortar_training import finish_run

        return finish_run(config, model, state, val_x, out_dir)
    start = time.perf_counter()
    eval_images, eval_masks = split["eval_images"], split["eval_masks"]
    eval_x = network_inputs(eval_images, config, config.eval_slices)
    seed = config.seed * 1000
    if config.average_epochs:
        last = None  # the average of the last epochs is the pre-registered choice
        state["best_model"] = _averaged_weights(state, model)
        state["best_epoch"] = None
    else:
        last = evaluation.evaluate(
            predict(model, eval_x), eval_masks, config.eval_slices, seed, config.betti_patches
        )
    model.load_state_dict(state["best_model"])
    probabilities = predict(model, eval_x)
    # the validation slices, whole, choose the run's one operating point (never evaluation)
    val_probabilities = predict(model, val_x)
    operating_point = evaluation.evaluate_at_operating_point(
        val_probabilities, val_masks, probabilities, eval_masks, config.eval_slices,
        thresholds=config.operating_thresholds,
    )
    result = evaluation.evaluate(
        probabilities, eval_masks, config.eval_slices, seed, config.betti_patches
    )
    result.update(
        {
            "last": last,
            "at_operating_point": operating_point,
            **run_record(config, state, time.perf_counter() - start),
            "val_patch": {
                "image": np.asarray(val_pairs[0][0]).tolist(),
                "mask": val_pairs[0][1].tolist(),
            },
        }
    )
    save_finished_run(out_dir, config, state, probabilities, val_probabilities, result)
    return result


def run_record(config: TrainConfig, state: dict, eval_seconds: float) -> dict:
    """What ``metrics.json`` records of every finished run, whatever its data set: the
    configuration and its identity, the code that trained it, how the evaluated weights were
    chosen, the times, the training history and the recorded diagrams, and the machine that
    computed it (:func:`topobook.machine.machine_record`: the numbers of a run are
    bit-reproducible on that machine only)."""
    return {
        "config": dataclasses.asdict(config),
        "config_identity": config.identity(),
        "code_version": topobook.__version__,
        "code_hash": code_hash(),
        "protocol": config.protocol,
        "selection": config.selection,
        "epochs": config.epochs,
        "best_epoch": state["best_epoch"],
        "train_seconds": state["train_seconds"],
        "eval_seconds": eval_seconds,
        "history": state["history"],
        "diagrams": {str(k): v for k, v in state["diagrams"].items()},
        "machine": machine_record(),
    }


def save_finished_run(
    out_dir: Path,
    config: TrainConfig,
    state: dict,
    probabilities: np.ndarray,
    val_probabilities: np.ndarray,
    result: dict,
) -> None:
    """Write the compact artefact of a finished run into ``out_dir``: the selected weights
    (``model.pt``), the probabilities of the evaluation and validation images
    (``predictions.npz``, float16) and ``metrics.json`` (``result``) last, since its presence
    marks the run finished; then delete the resume state, no longer needed."""
    torch.save(state["best_model"], out_dir / "model.pt")
    np.savez_compressed(
        out_dir / "predictions.npz",
        probabilities=probabilities.astype(np.float16),
        slices=np.array(config.eval_slices),
        val_probabilities=val_probabilities.astype(np.float16),
        val_slices=np.array(config.val_slices),
    )
    _write_json(result, out_dir / "metrics.json")
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)


def _accumulate_weights(state: dict, model: torch.nn.Module) -> None:
    """Add the model's current weights (float64, on the CPU) to ``state["weight_sum"]``."""
    current = {k: v.detach().to("cpu", torch.float64) for k, v in model.state_dict().items()}
    if state["weight_sum"] is None:
        state["weight_sum"] = current
    else:
        for key, value in current.items():
            state["weight_sum"][key] += value
    state["weight_count"] += 1


def _averaged_weights(state: dict, model: torch.nn.Module) -> dict:
    """The uniform average of the accumulated weights, in the dtype and on the device of the
    model's own tensors (integer buffers, such as batch normalisation's counter, rounded)."""
    if not state["weight_count"]:
        raise RuntimeError("no weights were accumulated for averaging")
    out = {}
    for key, like in model.state_dict().items():
        mean = state["weight_sum"][key] / state["weight_count"]
        if not like.dtype.is_floating_point:
            mean = mean.round()
        out[key] = mean.to(like.device, like.dtype)
    return out


def run_job(config: dict | TrainConfig, out_dir: str | Path) -> dict:
    """One training run as an independent job (a worker process or a Dask task): trains with one
    thread and no progress bar, and returns a short summary (the numbers are in ``out_dir``)."""
    config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    config = dataclasses.replace(config, threads=1)
    start = time.perf_counter()
    result = train(config, out_dir, progress=False)
    return {
        "out_dir": str(out_dir),
        "seconds": time.perf_counter() - start,
        "train_seconds": result["train_seconds"],
        "best_epoch": result["best_epoch"],
    }


def load_results(results_dir: str | Path) -> list[dict]:
    """Every finished run under ``results_dir`` (``<run>/seed<k>/metrics.json``), with its run
    name under ``"run"``."""
    runs = []
    for path in sorted(Path(results_dir).glob("*/seed*/metrics.json")):
        result = json.loads(path.read_text())
        result["run"] = path.parent.parent.name
        result["dir"] = str(path.parent)
        runs.append(result)
    return runs


# Parameters of a chapter-4 page that only change how the page shows its runs.
PAGE_ONLY_PARAMETERS = ("workers", "progress")


def page_runs(parameters: dict) -> list[tuple[Path, TrainConfig]]:
    """The training runs of one chapter-4 page, as ``(out_dir, config)``, one per seed.

    ``parameters`` are the page's papermill parameters: ``seeds`` (list), ``run_name`` (folder
    name; empty: the strategy), ``results_dir`` and any :class:`TrainConfig` field. The page and
    ``book/build.py`` both call this, so the runs the build trains are the runs the page loads.
    Page-only parameters (:data:`PAGE_ONLY_PARAMETERS`) are ignored, anything else is an error.
    """
    values = {k: v for k, v in parameters.items() if k not in PAGE_ONLY_PARAMETERS}
    missing = sorted({"seeds", "results_dir"} - set(values))
    if missing:
        raise ValueError(f"page parameters lack {missing}")
    seeds = list(values.pop("seeds"))
    results_dir = Path(values.pop("results_dir"))
    run_name = values.pop("run_name", "") or values.get("strategy", "baseline")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list without repeats, got {seeds}")
    return [
        (results_dir / run_name / f"seed{seed}", TrainConfig.from_dict({**values, "seed": seed}))
        for seed in seeds
    ]
