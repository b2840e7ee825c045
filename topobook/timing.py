"""Timing helpers shared by the chapters and ``benchmarks/``: medians of repeated runs."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from topobook.persistence import PersistenceLayer


def median_ms(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def layer_step(layer: PersistenceLayer, x: torch.Tensor) -> None:
    """One forward and backward pass of ``layer`` on ``x`` (H, W) or (B, H, W): the work that a
    topological loss adds to a training step."""
    x = x.detach().requires_grad_(True)
    dgms = layer(x)
    per_image = dgms if x.ndim == 3 else [dgms]
    loss = sum((d[torch.isfinite(d[:, 1])] ** 2).sum() for image in per_image for d in image)
    loss.backward()


def layer_step_ms(
    complex: str,
    size: int,
    batch: int = 1,
    repeats: int = 7,
    parallel: bool | None = None,
    seed: int = 0,
) -> float:
    """Median ms of :func:`layer_step` on a random likelihood-like map (superlevel, H0 and H1)."""
    rng = np.random.default_rng(seed)
    shape = (batch, size, size) if batch > 1 else (size, size)
    x = torch.tensor(rng.random(shape), dtype=torch.float32)
    layer = PersistenceLayer(superlevel=True, complex=complex, parallel=parallel)
    return median_ms(lambda: layer_step(layer, x), repeats)


# ---------------------------------------------------------------------------------------------
# the cost of one training step per loss (chapter 6 and benchmarks/loss_step.py)

_NOTEBOOK = {"matching": "birth", "complex": "freudenthal", "keep_zero_length": True}

# The losses of the book's training runs, as ``training_step_ms`` settings: ``loss`` and ``lam``
# are the arguments of :func:`topobook.losses.training_loss`, the other keys its options. The
# weights are those of the runs (chapter 4 and book/profiles.yml); the time of a step does not
# depend on the weight, except that ``lam = 0`` skips the term.
LOSS_STEP_SETTINGS: dict[str, dict] = {
    "BCE": {"loss": "none", "lam": 0.0},
    "BCE + L_topo (lifetime, cubical)": {"loss": "topo", "lam": 1 / 12000},
    "BCE + notebook loss": {"loss": "topo", "lam": 1 / 6000, **_NOTEBOOK},
    "BCE + notebook loss, misrouted": {
        "loss": "topo",
        "lam": 1 / 6000,
        **_NOTEBOOK,
        "misroute_gradient": True,
    },
    "BCE + clDice (3 iterations)": {"loss": "cldice", "lam": 0.5, "iterations": 3},
    "BCE + clDice (10 iterations)": {"loss": "cldice", "lam": 0.5, "iterations": 10},
    "BCE + Betti matching": {"loss": "betti_matching", "lam": 0.01},
    "BCE + sorted values (control)": {"loss": "sorted_value", "lam": 1 / 6000},
}


def _check_settings(loss_settings: dict[str, dict]) -> dict[str, tuple[str, float, dict]]:
    """``name -> (loss, lam, options)``, or a clear error before anything is timed."""
    from topobook.losses import TOPO_LOSSES, training_loss

    if not isinstance(loss_settings, dict) or not loss_settings:
        raise ValueError("loss_settings must be a non-empty dict name -> settings")
    checked = {}
    for name, settings in loss_settings.items():
        if not isinstance(settings, dict) or "loss" not in settings:
            raise ValueError(f"settings of {name!r} must be a dict with a 'loss' key")
        options = {k: v for k, v in settings.items() if k not in ("loss", "lam")}
        loss, lam = settings["loss"], float(settings.get("lam", 0.0))
        if loss not in TOPO_LOSSES:
            raise ValueError(f"{name!r}: loss must be one of {TOPO_LOSSES}, got {loss!r}")
        if loss != "none" and not lam > 0:
            raise ValueError(f"{name!r}: lam must be > 0 (lam = 0 skips the term), got {lam}")
        # training_loss checks the options even with lam = 0 (and then computes no term)
        training_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), loss, 0.0, **options)
        checked[name] = (loss, lam, options)
    return checked


def training_step_ms(
    loss_settings: dict[str, dict] | None = None,
    repeats: int = 15,
    width: int = 16,
    depth: int = 4,
    patch_size: int = 64,
    threads: int = 1,
    warmup: int = 2,
    seed: int = 0,
    images: np.ndarray | None = None,
    masks: np.ndarray | None = None,
) -> dict[str, float]:
    """Median wall time in ms of one U-Net training step with each loss, measured side by side.

    A step is what :func:`topobook.train.train` does per batch: ``zero_grad``, the forward pass
    of ``UNet(base_width=width, depth=depth)`` (channels-last, as in training) on one
    ``(1, 1, patch_size, patch_size)`` patch, :func:`topobook.losses.training_loss` with the
    loss's settings, ``backward`` and an Adam step. ``loss_settings``: name -> ``{"loss": a
    name of TOPO_LOSSES, "lam": weight, **options of the term}`` (default
    :data:`LOSS_STEP_SETTINGS`, every loss of the book). The settings are checked (unknown loss
    or option: an error) before anything is timed.

    The losses take turns within each round on the same patch and one model that every step
    updates, so slow phases of the machine hit all of them alike; each round draws a new patch
    (``PatchSampler`` with ``seed``) from ``images`` ``(N, H, W)`` in [0, 1] and ``masks``
    ``(N, H, W)`` in {0, 1} (default: the ISBI 2012 training slices 0-20). ``warmup`` rounds are
    not timed, then ``repeats`` rounds are. Runs with ``threads`` PyTorch threads (the
    training runs use 1) and restores the previous thread count. Returns name -> median ms, in
    the order of ``loss_settings``.
    """
    from topobook.data import DEFAULT_TRAIN_SLICES, PatchSampler, load_isbi
    from topobook.losses import training_loss
    from topobook.unet import UNet

    settings = _check_settings(LOSS_STEP_SETTINGS if loss_settings is None else loss_settings)
    checks = (("repeats", repeats, 1), ("warmup", warmup, 0), ("threads", threads, 1))
    for label, value, low in checks:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{label} must be an int >= {low}, got {value!r}")
    if (images is None) != (masks is None):
        raise ValueError("give both images and masks, or neither (the ISBI training slices)")
    if images is None:
        images, masks = load_isbi(DEFAULT_TRAIN_SLICES)
    sampler = PatchSampler(images, masks, patch_size=patch_size, seed=seed)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        model = UNet(base_width=width, depth=depth).to(memory_format=torch.channels_last)
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        times: dict[str, list[float]] = {name: [] for name in settings}
        for round_ in range(warmup + repeats):
            image, mask = sampler.sample()
            x = torch.tensor(np.asarray(image, dtype=np.float32))[None, None]
            x = x.contiguous(memory_format=torch.channels_last)
            y = torch.tensor(np.asarray(mask), dtype=torch.float32)[None, None]
            for name, (loss, lam, options) in settings.items():
                start = time.perf_counter()
                optimizer.zero_grad()
                parts = training_loss(model(x), y, loss, lam, **options)
                parts.total.backward()
                optimizer.step()
                elapsed = time.perf_counter() - start
                if round_ >= warmup:
                    times[name].append(elapsed)
    finally:
        torch.set_num_threads(previous_threads)
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}
