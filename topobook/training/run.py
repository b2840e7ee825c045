"""One training run, step by step: data, inputs, model, loop, averaging, evaluation, record.

A run writes to ``out_dir``: ``checkpoint.pt`` after every epoch (atomically; an interrupted run
resumes from it without losing an epoch) and ``status.json`` (epochs done, for progress bars);
once finished, a compact artefact: ``metrics.json``, ``model.pt`` (the selected weights) and
``predictions.npz`` (cell probabilities of the evaluation slices, and of the whole validation
slices for choosing an operating point), and the checkpoint is deleted.
A finished run is reused only when its configuration *and* the code version match.
A run's forward passes (training, validation loss, the evaluation's predictions) are in its
``precision`` (:mod:`topobook.training.precision`: float32, or bfloat16 autocast where native,
the logits cast to float32 before any loss or probability); the diagrams recorded during training
are computed from float32 predictions.
The configuration and its recipes are in :mod:`topobook.training.config`; the data set's part
(splits, loading, evaluation) in its module of :mod:`topobook.datasets`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import topobook
from topobook import tip
from topobook.datasets import get_dataset
from topobook.losses.soft_dice import soft_dice_loss
from topobook.losses.topological import LossParts, training_loss
from topobook.topology.persistence import diagrams
from topobook.training.config import TrainConfig, code_hash
from topobook.training.machine import machine_record
from topobook.training.patches import PatchSampler
from topobook.training.precision import as_float32, autocast
from topobook.training.trunk import default_trunk_dir, epochs_to_save, trunk_identity, trunk_path
from topobook.training.unet import UNet, default_device


def noisy_image(image: np.ndarray, config: TrainConfig, slice_index: int) -> np.ndarray:
    """The image plus the authors' ``tip_noise * N(0, 1)`` noise (which makes values distinct),
    seeded per run and slice; the start of every topological input."""
    rng = np.random.default_rng([config.seed, slice_index])
    return image + config.tip_noise * rng.standard_normal(image.shape)


def standardised(images: np.ndarray) -> np.ndarray:
    """Each image of ``(N, H, W)`` or ``(N, C, H, W)`` standardised per channel over its own
    pixels: mean 0 and SD 1 (a constant channel becomes 0, not a division by zero), float32.
    The TopoMortar authors' per-image, per-channel z-score (``input_norm="zscore"``)."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {x.shape}")
    mean = x.mean(axis=(-2, -1), keepdims=True)
    sd = x.std(axis=(-2, -1), keepdims=True)
    return ((x - mean) / np.where(sd > 0, sd, 1.0)).astype(np.float32)


def network_inputs(images: np.ndarray, config: TrainConfig, slices) -> np.ndarray:
    """What the network sees: the images ``(N, H, W)``, their topological processing
    ``(N, H, W)``, or both as two channels ``(N, 2, H, W)`` (``input_mode="raw+processed"``);
    standardised per image and channel where ``config.input_norm`` is ``"zscore"``
    (:func:`standardised`)."""
    if config.input_norm == "zscore":
        return standardised(_topological_inputs(images, config, slices))
    return _topological_inputs(images, config, slices)


def _topological_inputs(images: np.ndarray, config: TrainConfig, slices) -> np.ndarray:
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
    # a name of this process's own: two workers may save the same trunk at once
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
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
    if config.loss == "scnp":
        # weighs the class-0 pixels of SCNP's BCEs as the training BCE does: lam = 1 then
        # trains on the SCNP logits alone (topobook.losses.scnp)
        return {"window": config.scnp_window, "membrane_weight": config.membrane_weight}
    return {}


def _loss_parts(
    logits: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    epoch: int | None = None,
    validation: bool = False,
) -> LossParts:
    """The objective of a batch. ``epoch`` (0-based; None: any epoch after the warm start)
    switches the topological term off before ``config.topo_start_epoch``, in training and in
    validation alike, so that a run's first epochs are its baseline's
    (:mod:`topobook.training.trunk`). The BCE part weighs membrane pixels by
    ``config.membrane_weight`` in training, and ``base_loss="ce_dice"`` adds the soft Dice over
    both classes to the training objective (:mod:`topobook.losses.soft_dice`); the ``bce``
    field is the BCE alone, and validation (``validation=True``, or ``epoch`` None) reports
    the plain BCE and its total without the Dice, so that the validation curve means the same
    for every base loss."""
    term_on = config.uses_topo_loss and (epoch is None or epoch >= config.topo_start_epoch)
    if not term_on:
        parts = training_loss(logits, y, "none", 0.0)
    else:
        parts = training_loss(logits, y, config.loss, config.lam, **_term_options(config))
    training = epoch is not None and not validation
    if not training or (config.membrane_weight == 1.0 and config.base_loss == "bce"):
        return parts
    bce = parts.bce
    if config.membrane_weight != 1.0:
        weight = torch.where(y > 0.5, 1.0, config.membrane_weight).to(logits.dtype)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, weight=weight)
    data = bce
    if config.base_loss == "ce_dice":
        # the authors' CE + Dice: the Dice half is part of the data term, not of the prior's
        data = bce + soft_dice_loss(logits, y)
    lam = config.lam if term_on else 0.0
    return LossParts(data + lam * parts.topo, bce, parts.topo)


def _epoch_crops(sampler: PatchSampler, crops_per_slice: int):
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


def predict(
    model: torch.nn.Module, images: np.ndarray, device=None, precision: str = "fp32"
) -> np.ndarray:
    """Cell probabilities ``(N, H, W)`` float32 for images ``(N, H, W)`` or ``(N, C, H, W)``,
    one at a time. ``precision``: the forward pass's (:mod:`topobook.training.precision`; the
    logits are cast to float32 before the sigmoid)."""
    device = device or next(model.parameters()).device
    model.eval()
    x = _as_input(images)
    out = []
    with torch.no_grad():
        for xi in x:
            with autocast(precision, device):
                logits = model(xi[None].to(device))
            out.append(torch.sigmoid(as_float32(logits))[0, 0].cpu().numpy())
    return np.stack(out)


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


@dataclasses.dataclass
class Inputs:
    """What the network trains and is validated on: the seeded training-crop sampler, the whole
    validation images as the network sees them with their targets, and the fixed validation
    crops of the per-epoch loss."""

    sampler: PatchSampler
    val_x: np.ndarray
    val_targets: np.ndarray
    val_pairs: list


@dataclasses.dataclass
class Fit:
    """The model and what moves it: optimizer, learning-rate schedule, device."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    device: torch.device


def train(
    config: TrainConfig,
    out_dir: str | Path,
    progress: bool = True,
    callback: Callable[[int, dict], None] | None = None,
    trunk_dir: str | Path | None = None,
) -> dict:
    """Run (or resume, or reuse) one training run; returns the content of ``metrics.json``.

    The recipe, one named step each: the data set's images and targets (:func:`load_data`),
    what the network sees (:func:`make_inputs`), the model (:func:`make_model`, resumed by
    :func:`resume`), the epochs (:func:`run_epochs`), the evaluated weights (:func:`select_weights`:
    the average of the last epochs or the selected epoch), the data set's evaluation
    (:func:`evaluate_run`) and the record (:func:`record_run`). ``callback(epoch, record)`` is
    called after each epoch's checkpoint is written. A branch (``config.branch_epoch`` > 0)
    starts from its trunk in ``trunk_dir`` when it is there, and saves it there when it is not
    (default: :func:`topobook.training.trunk.default_trunk_dir`).
    """
    out_dir = Path(out_dir)
    trunk_dir = Path(trunk_dir) if trunk_dir is not None else default_trunk_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = finished_result(config, out_dir)
    if done is not None:
        return done
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    dataset = get_dataset(config.dataset)
    train_data, val_data = load_data(config, dataset)
    inputs = make_inputs(config, train_data, val_data)
    fit = make_model(config)
    state = resume(config, fit, inputs, out_dir / "checkpoint.pt", trunk_dir)
    run_epochs(config, fit, inputs, state, out_dir, progress, callback, trunk_dir)
    start = time.perf_counter()
    eval_x, truth = evaluation_inputs(config, dataset)
    precision = config.precision  # the run's, for the evaluation's forward passes too
    scores_last = _scores_last_epoch(config, dataset)
    last = predict(fit.model, eval_x, precision=precision) if scores_last else None
    select_weights(config, fit.model, state)
    probabilities = predict(fit.model, eval_x, precision=precision)
    val_probabilities = predict(fit.model, inputs.val_x, precision=precision)
    result = evaluate_run(config, dataset, probabilities, truth, val_probabilities, inputs, last)
    record_run(config, dataset, state, inputs, result, time.perf_counter() - start)
    save_finished_run(out_dir, config, state, probabilities, val_probabilities, result)
    return result


def load_data(config: TrainConfig, dataset) -> tuple[tuple, tuple]:
    """Step 1, the data: ``((train_images, train_targets), (val_images, val_targets))`` of the
    run's splits, from its data set's module (targets: 1 = the class the sigmoid predicts)."""
    return dataset.load_training_data(config)


def make_inputs(config: TrainConfig, train_data: tuple, val_data: tuple) -> Inputs:
    """Step 2, the inputs: what the network sees (:func:`network_inputs`), the seeded crop
    sampler of the training images and the fixed validation crops."""
    (train_images, train_targets), (val_images, val_targets) = train_data, val_data
    train_x = network_inputs(train_images, config, config.train_slices)
    val_x = network_inputs(val_images, config, config.val_slices)
    sampler = PatchSampler(train_x, train_targets, config.patch_size, seed=config.seed)
    val_sampler = PatchSampler(
        val_x, val_targets, config.patch_size, augment=False, seed=config.seed + 10_000
    )
    val_pairs = [val_sampler.sample() for _ in range(config.n_val_patches)]
    return Inputs(sampler, val_x, val_targets, val_pairs)


def make_model(config: TrainConfig) -> Fit:
    """Step 3, the model: the U-Net (channels_last: about 15 % faster convolutions on these CPUs,
    the same numbers every run), Adam, and the learning-rate schedule of the recipe."""
    device = default_device()
    model = UNet(
        in_channels=config.in_channels,
        base_width=config.width,
        depth=config.depth,
        norm=config.norm,
    )
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = -(-len(config.train_slices) * config.crops_per_slice // config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _learning_rate_factor(config, steps_per_epoch)
    )
    return Fit(model, optimizer, scheduler, device)


def resume(
    config: TrainConfig,
    fit: Fit,
    inputs: Inputs,
    checkpoint_path: Path,
    trunk_dir: Path | None = None,
) -> dict:
    """The training state: that of ``checkpoint_path`` if it belongs to this configuration, else
    for a branch its trunk's if ``trunk_dir`` holds it (:mod:`topobook.training.trunk`), else
    fresh. From a checkpoint or a trunk, the model, optimizer, schedule and random generators are
    restored."""
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
            return _restore(fit, inputs, saved)
        print(f"{checkpoint_path} belongs to another configuration: starting afresh")
    if config.branch_epoch and trunk_dir is not None:
        path = trunk_path(config, config.branch_epoch, trunk_dir)
        if path.exists():
            saved = torch.load(path, weights_only=False)
            if saved["trunk_identity"] == trunk_identity(config):
                state = _restore(fit, inputs, saved)
                state["trunk"] = {
                    "epoch": config.branch_epoch,
                    "key": path.stem,
                    "loaded": True,
                    "seconds": state["train_seconds"],
                }
    return state


def _restore(fit: Fit, inputs: Inputs, saved: dict) -> dict:
    """Load a saved state (a checkpoint or a trunk) into ``fit`` and the crop sampler."""
    fit.model.load_state_dict(saved["model"])
    fit.optimizer.load_state_dict(saved["optimizer"])
    fit.scheduler.load_state_dict(saved["scheduler"])
    inputs.sampler.rng.bit_generator.state = saved["sampler_rng"]
    torch.set_rng_state(saved["torch_rng"])
    return saved["state"]


def run_epochs(
    config: TrainConfig,
    fit: Fit,
    inputs: Inputs,
    state: dict,
    out_dir: Path,
    progress: bool = True,
    callback: Callable[[int, dict], None] | None = None,
    trunk_dir: Path | None = None,
) -> None:
    """Step 4, the loop: from ``state["epoch"]`` to the last epoch, one training pass, the
    validation loss, the weights kept for step 5, the recorded diagrams, a checkpoint, and
    the trunks this run saves for branches (:func:`topobook.training.trunk.epochs_to_save`)."""
    bar = tqdm(
        range(state["epoch"], config.epochs),
        initial=state["epoch"],
        total=config.epochs,
        desc=f"{config.strategy} seed {config.seed}",
        disable=not progress,
    )
    for epoch in bar:
        start = time.perf_counter()
        record = {"epoch": epoch + 1, **_train_epoch(config, fit, inputs.sampler, epoch)}
        record.update(_validation_loss(config, fit, inputs.val_pairs, epoch))
        state["history"].append(record)
        _keep_weights(config, fit.model, state, epoch, record)
        if epoch + 1 in config.diagram_epochs:
            prob = predict(fit.model, inputs.val_pairs[0][0][None])[0]
            state["diagrams"][epoch + 1] = [d.tolist() for d in diagrams(prob, superlevel=True)]
        state["epoch"] = epoch + 1
        state["train_seconds"] += time.perf_counter() - start
        _checkpoint(config, fit, inputs, state, out_dir)
        if trunk_dir is not None and state["epoch"] in epochs_to_save(config):
            _save_trunk(config, fit, inputs, state, trunk_dir)
        bar.set_postfix(
            bce=f"{record['train_bce']:.3f}",
            topo=f"{record['train_topo']:.2f}",
            val=f"{record['val_bce']:.3f}",
        )
        if callback is not None:
            callback(epoch + 1, record)


def _train_epoch(config: TrainConfig, fit: Fit, sampler: PatchSampler, epoch: int) -> dict:
    """One pass over the epoch's training crops; the mean BCE and topological term. The forward
    pass in the run's precision (:mod:`topobook.training.precision`), the logits cast to float32
    before the loss."""
    fit.model.train()
    sums = np.zeros(2)
    n_batches = 0
    for x, y in _batches(_epoch_crops(sampler, config.crops_per_slice), config.batch_size):
        fit.optimizer.zero_grad()
        x = x.to(fit.device, memory_format=torch.channels_last)
        with autocast(config.precision, fit.device):  # nothing under fp32
            logits = fit.model(x)
        parts = _loss_parts(as_float32(logits), y.to(fit.device), config, epoch)
        parts.total.backward()
        fit.optimizer.step()
        fit.scheduler.step()
        sums += (parts.bce.item(), parts.topo.item())
        n_batches += 1
    return {"train_bce": sums[0] / n_batches, "train_topo": sums[1] / n_batches}


def _validation_loss(
    config: TrainConfig, fit: Fit, val_pairs: list, epoch: int | None = None
) -> dict:
    """The mean loss of the fixed validation crops after epoch ``epoch`` (0-based; None: with
    the topological term): one forward pass for all crops (in the run's precision, the logits
    cast to float32), the loss of each crop alone."""
    fit.model.eval()
    val = np.zeros(3)
    with torch.no_grad():
        x, y = next(_batches(val_pairs, len(val_pairs)))
        with autocast(config.precision, fit.device):
            logits = fit.model(x.to(fit.device, memory_format=torch.channels_last))
        logits = as_float32(logits)
        for i in range(len(val_pairs)):
            parts = _loss_parts(
                logits[i : i + 1], y[i : i + 1].to(fit.device), config, epoch, validation=True
            )
            val += (parts.total.item(), parts.bce.item(), parts.topo.item())
    val /= len(val_pairs)
    return {"val_total": val[0], "val_bce": val[1], "val_topo": val[2]}


def _keep_weights(config: TrainConfig, model, state: dict, epoch: int, record: dict) -> None:
    """Add the weights to the running sum of the last epochs (``average_epochs``), or keep them
    if this epoch has the lowest validation criterion so far."""
    if config.average_epochs:
        if epoch >= config.epochs - config.average_epochs:
            _accumulate_weights(state, model)
    elif record[config.selection] < state["best_val"]:
        state["best_val"], state["best_epoch"] = float(record[config.selection]), epoch + 1
        state["best_model"] = copy.deepcopy(model.state_dict())


def _checkpoint(config: TrainConfig, fit: Fit, inputs: Inputs, state: dict, out_dir: Path):
    """Write the resume state (atomically) and the progress of the run."""
    _save_atomically(
        {
            "config_identity": config.identity(),
            "model": fit.model.state_dict(),
            "optimizer": fit.optimizer.state_dict(),
            "scheduler": fit.scheduler.state_dict(),
            "sampler_rng": inputs.sampler.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "state": state,
        },
        out_dir / "checkpoint.pt",
    )
    _write_json({"epoch": state["epoch"], "epochs": config.epochs}, out_dir / "status.json")


def _save_trunk(config: TrainConfig, fit: Fit, inputs: Inputs, state: dict, trunk_dir: Path):
    """Save the state at the end of epoch ``state["epoch"]`` as a trunk (atomically), unless a
    run saved it before; a branch that trained its own trunk records that it did."""
    path = trunk_path(config, state["epoch"], trunk_dir)
    if config.branch_epoch == state["epoch"]:
        state["trunk"] = {
            "epoch": state["epoch"],
            "key": path.stem,
            "loaded": False,
            "seconds": state["train_seconds"],
        }
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot = {k: v for k, v in state.items() if k != "trunk"}
    _save_atomically(
        {
            "trunk_identity": trunk_identity(config),
            "model": fit.model.state_dict(),
            "optimizer": fit.optimizer.state_dict(),
            "scheduler": fit.scheduler.state_dict(),
            "sampler_rng": inputs.sampler.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "state": snapshot,
        },
        path,
    )


def _scores_last_epoch(config: TrainConfig, dataset) -> bool:
    """Whether the last epoch's weights are scored too: where the data set asks for it and the
    evaluated weights are a selected epoch (with averaging they are the pre-registered choice)."""
    return bool(dataset.SCORES_LAST_EPOCH) and not config.average_epochs


def evaluation_inputs(config: TrainConfig, dataset) -> tuple[np.ndarray, np.ndarray]:
    """What the network sees of the evaluation images, and the data set's truth for them."""
    eval_images, truth = dataset.load_evaluation_data(config)
    return network_inputs(eval_images, config, config.eval_slices), truth


def select_weights(config: TrainConfig, model: torch.nn.Module, state: dict) -> None:
    """Step 5, averaging: load the evaluated weights into ``model``: the uniform average of the
    last ``average_epochs`` epochs' weights (no epoch is then "best"), else the selected epoch's."""
    if config.average_epochs:
        state["best_model"] = _averaged_weights(state, model)
        state["best_epoch"] = None
    model.load_state_dict(state["best_model"])


def evaluate_run(
    config: TrainConfig, dataset, probabilities, truth, val_probabilities, inputs: Inputs, last
) -> dict:
    """Step 6, the evaluation: the data set's scores of the evaluation images (at its operating
    point, chosen on the whole validation images where it chooses one), and of the last epoch's
    probabilities ``last`` where it scores them."""
    return dataset.evaluate(
        config, probabilities, truth, val_probabilities, inputs.val_targets, last
    )


def record_run(
    config: TrainConfig, dataset, state: dict, inputs: Inputs, result: dict, seconds: float
) -> None:
    """Step 7, the record: :func:`run_record` added to ``result``, and the first validation crop
    where the data set shows it."""
    result.update(run_record(config, state, seconds))
    if dataset.RECORDS_VALIDATION_PATCH:
        result["val_patch"] = {
            "image": np.asarray(inputs.val_pairs[0][0]).tolist(),
            "mask": inputs.val_pairs[0][1].tolist(),
        }


def run_record(config: TrainConfig, state: dict, eval_seconds: float) -> dict:
    """What ``metrics.json`` records of every finished run, whatever its data set: the
    configuration and its identity, the code that trained it, how the evaluated weights were
    chosen, the precision of its forward passes (``"fp32"`` or ``"bf16"``), the times, the
    training history and the recorded diagrams, and the machine that
    computed it (:func:`topobook.training.machine.machine_record`: the numbers of a run are
    bit-reproducible on that machine only)."""
    return {
        "config": dataclasses.asdict(config),
        "config_identity": config.identity(),
        "code_version": topobook.__version__,
        "code_hash": code_hash(),
        "precision": config.precision,
        "protocol": config.protocol,
        "selection": config.selection,
        "epochs": config.epochs,
        "best_epoch": state["best_epoch"],
        "train_seconds": state["train_seconds"],
        "eval_seconds": eval_seconds,
        "history": state["history"],
        "diagrams": {str(k): v for k, v in state["diagrams"].items()},
        "machine": machine_record(),
        # a branch: the epoch it shares with its trunk, and whether it loaded or trained it
        "trunk": state.get("trunk"),
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


def load_run(out_dir: str | Path) -> dict:
    """The ``metrics.json`` of the finished run in ``out_dir``; a ``FileNotFoundError`` naming the
    file when the run is not finished."""
    path = Path(out_dir) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: train the run first (book/build.py)")
    return json.loads(path.read_text())


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
