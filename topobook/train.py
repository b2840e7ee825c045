"""Training runs of the book: the paper's protocol, resumable, with one seed fixing everything.

Protocol (the default): one random 64x64 crop (random rot90 and flip) per training slice per
epoch, 100 epochs, batch size 1, Adam; the validation loss each epoch on fixed seeded crops of
the evaluation slices (as the authors did, so model selection sees the evaluation slices); the
checkpoint with the best validation loss is kept and evaluated on the full 512x512 evaluation
slices.

Strategies: ``"baseline"`` (cross-entropy), ``"topo_loss"`` (eq. 1 with the topological loss),
``"topo_input"`` (the network sees topologically processed images, ``input_mode="modified"`` as
in the authors' notebook or ``"processed"`` as in the text) and ``"topo_loss+topo_input"``.

A run writes to ``out_dir``: ``checkpoint.pt`` after every epoch (atomically; an interrupted run
resumes from it without losing an epoch), ``metrics.json`` and ``predictions.npz`` at the end.
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

from topobook import data, metrics, tip
from topobook.losses import LAMBDA_PAPER, MATCHINGS, combined_loss
from topobook.persistence import COMPLEXES, diagrams
from topobook.unet import UNet, default_device

STRATEGIES = ("baseline", "topo_loss", "topo_input", "topo_loss+topo_input")
INPUT_MODES = ("modified", "processed")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every choice of a training run; two runs with equal configs give equal numbers on CPU."""

    strategy: str = "baseline"
    seed: int = 0
    epochs: int = 100
    lr: float = 1e-3
    width: int = 16  # U-Net base width (the paper: 64)
    depth: int = 4
    lam: float = LAMBDA_PAPER  # weight of L_topo, used by the topo_loss strategies
    matching: str = "lifetime"
    complex: str = "cubical"
    input_mode: str = "modified"  # for the topo_input strategies
    tip_window: int = 1  # TIP settings of the authors' notebook: window 1, border 1, noise 0.01
    tip_border: int = 1
    tip_noise: float = 0.01
    patch_size: int = 64
    batch_size: int = 1
    n_val_patches: int = 24
    diagram_epochs: tuple[int, ...] = (5, 95)
    train_slices: tuple[int, ...] = data.DEFAULT_TRAIN_SLICES
    eval_slices: tuple[int, ...] = data.DEFAULT_EVAL_SLICES
    betti_patches: int = 100  # windows per slice for the standard Betti error
    threads: int = 1

    def __post_init__(self) -> None:
        checks = [
            (self.strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}"),
            (self.input_mode in INPUT_MODES, f"input_mode must be one of {INPUT_MODES}"),
            (self.matching in MATCHINGS, f"matching must be one of {MATCHINGS}"),
            (self.complex in COMPLEXES, f"complex must be one of {COMPLEXES}"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (self.lr > 0 and self.lam >= 0, "lr must be > 0 and lam >= 0"),
            (self.patch_size % 2**self.depth == 0, "patch_size must be divisible by 2**depth"),
            (self.n_val_patches >= 1, "n_val_patches must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message} (config: {self})")
        object.__setattr__(self, "diagram_epochs", tuple(self.diagram_epochs))
        object.__setattr__(self, "train_slices", tuple(self.train_slices))
        object.__setattr__(self, "eval_slices", tuple(self.eval_slices))

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

    def identity(self) -> dict:
        """What must match for a checkpoint to be resumed (everything but the epoch count)."""
        values = dataclasses.asdict(self)
        values.pop("epochs")
        values.pop("threads")
        return json.loads(json.dumps(values))


def network_inputs(images: np.ndarray, config: TrainConfig, slices) -> np.ndarray:
    """What the network sees: the images, or their topological processing (``(N, H, W)``)."""
    if not config.uses_topo_input:
        return images
    out = []
    for image, s in zip(images, slices, strict=True):
        # noise seeded per run and slice, as the authors' preprocessing (makes values distinct)
        rng = np.random.default_rng([config.seed, s])
        noisy = image + config.tip_noise * rng.standard_normal(image.shape)
        if config.input_mode == "modified":
            result = tip.modify_border(tip.smooth(noisy, config.tip_window), config.tip_border)
        else:
            result = tip.process(noisy, config.tip_window, config.tip_border)["processed"]
        out.append(result.astype(np.float32))
    return np.stack(out)


def _save_atomically(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _losses(model, x, y, config: TrainConfig):
    lam = config.lam if config.uses_topo_loss else 0.0
    return combined_loss(model(x), y, lam=lam, matching=config.matching, complex=config.complex)


def _batches(pairs, batch_size):
    pairs = list(pairs)
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i : i + batch_size]
        x = torch.tensor(np.stack([p[0] for p in chunk]))[:, None]
        y = torch.tensor(np.stack([p[1] for p in chunk]), dtype=torch.float32)[:, None]
        yield x, y


def predict(model: torch.nn.Module, images: np.ndarray, device=None) -> np.ndarray:
    """Cell probabilities ``(N, H, W)`` float32 for images ``(N, H, W)``, one at a time."""
    device = device or next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        return np.stack(
            [
                torch.sigmoid(model(torch.tensor(im, device=device)[None, None]))[0, 0]
                .cpu()
                .numpy()
                for im in images
            ]
        )


def evaluate(probabilities: np.ndarray, masks: np.ndarray, slices, config: TrainConfig) -> dict:
    """Metrics of predictions thresholded at 0.5, per slice and averaged over slices."""
    per_slice = []
    for prob, mask, s in zip(probabilities, masks, slices, strict=True):
        pred = (prob > 0.5).astype(np.uint8)
        m = metrics.pixel_metrics(pred, mask)
        m["betti_paper"] = metrics.betti_error(pred, mask, "paper", seed=config.seed * 1000 + s)
        m["betti_standard"] = metrics.betti_error(
            pred,
            mask,
            "standard",
            n_patches=config.betti_patches,
            seed=config.seed * 1000 + s,
            complex=config.complex,
        )
        per_slice.append({"slice": int(s), **m})
    means = {k: float(np.mean([p[k] for p in per_slice])) for k in per_slice[0] if k != "slice"}
    return {"mean": means, "per_slice": per_slice}


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
    metrics_path, checkpoint_path = out_dir / "metrics.json", out_dir / "checkpoint.pt"
    if metrics_path.exists():
        done = json.loads(metrics_path.read_text())
        if done["config_identity"] == config.identity() and done["epochs"] == config.epochs:
            return done
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = default_device()

    split = data.train_eval_split(config.train_slices, config.eval_slices)
    train_x = network_inputs(split["train_images"], config, config.train_slices)
    eval_x = network_inputs(split["eval_images"], config, config.eval_slices)
    sampler = data.PatchSampler(train_x, split["train_masks"], config.patch_size, seed=config.seed)
    val_sampler = data.PatchSampler(
        eval_x, split["eval_masks"], config.patch_size, augment=False, seed=config.seed + 10_000
    )
    val_pairs = [val_sampler.sample() for _ in range(config.n_val_patches)]

    model = UNet(base_width=config.width, depth=config.depth).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    state = {
        "epoch": 0,
        "history": [],
        "best_val": float("inf"),
        "best_epoch": -1,
        "best_model": None,
        "diagrams": {},
        "train_seconds": 0.0,
    }
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, weights_only=False)
        if saved["config_identity"] == config.identity():
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
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
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        sums = np.zeros(2)
        n_batches = 0
        for x, y in _batches(sampler.epoch(), config.batch_size):
            optimizer.zero_grad()
            parts = _losses(model, x.to(device), y.to(device), config)
            parts.total.backward()
            optimizer.step()
            sums += (parts.bce.item(), parts.topo.item())
            n_batches += 1
        model.eval()
        val = np.zeros(3)
        with torch.no_grad():
            for x, y in _batches(val_pairs, 1):
                parts = _losses(model, x.to(device), y.to(device), config)
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
        if val[0] < state["best_val"]:
            state["best_val"], state["best_epoch"] = float(val[0]), epoch + 1
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
                "sampler_rng": sampler.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "state": state,
            },
            checkpoint_path,
        )
        bar.set_postfix(
            bce=f"{record['train_bce']:.3f}",
            topo=f"{record['train_topo']:.2f}",
            val=f"{record['val_total']:.3f}",
        )
        if callback is not None:
            callback(epoch + 1, record)

    model.load_state_dict(state["best_model"])
    probabilities = predict(model, eval_x)
    result = evaluate(probabilities, split["eval_masks"], config.eval_slices, config)
    result.update(
        {
            "config": dataclasses.asdict(config),
            "config_identity": config.identity(),
            "epochs": config.epochs,
            "best_epoch": state["best_epoch"],
            "train_seconds": state["train_seconds"],
            "history": state["history"],
            "diagrams": {str(k): v for k, v in state["diagrams"].items()},
            "val_patch": {"image": val_pairs[0][0].tolist(), "mask": val_pairs[0][1].tolist()},
        }
    )
    np.savez_compressed(
        out_dir / "predictions.npz",
        probabilities=probabilities.astype(np.float16),
        slices=np.array(config.eval_slices),
    )
    tmp = metrics_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, metrics_path)
    return result


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
