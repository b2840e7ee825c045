"""Timing helpers shared by the chapters and ``benchmarks/``: medians of repeated runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from topobook.topology.persistence import PersistenceLayer


def median_ms(
    fn: Callable[[], object], repeats: int = 7, warmup: int = 1, clock: str = "wall"
) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs, after ``warmup`` runs.
    ``clock="cpu"``: the CPU time of the calling thread instead (``time.thread_time``; steadier
    on a shared machine, and complete when ``fn`` runs on this thread only)."""
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    now = time.perf_counter if clock == "wall" else time.thread_time
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = now()
        fn()
        times.append(now() - start)
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
    backend: str | None = None,
    clock: str = "wall",
) -> float:
    """Median ms of :func:`layer_step` on a random likelihood-like map (superlevel, H0 and H1),
    with the persistence ``backend`` (None: the default, the union-find); ``clock`` as in
    :func:`median_ms`."""
    rng = np.random.default_rng(seed)
    shape = (batch, size, size) if batch > 1 else (size, size)
    x = torch.tensor(rng.random(shape), dtype=torch.float32)
    layer = PersistenceLayer(superlevel=True, complex=complex, parallel=parallel, backend=backend)
    return median_ms(lambda: layer_step(layer, x), repeats, clock=clock)


def _gudhi_cubical_persistence(filtration: np.ndarray) -> None:
    """gudhi's plain cubical persistence (pixels as top cells, sublevel), no critical pixels."""
    import gudhi

    cubical = gudhi.CubicalComplex(top_dimensional_cells=filtration)
    cubical.persistence(homology_coeff_field=2, min_persistence=0.0)


def persistence_backend_ms(
    sizes: tuple[int, ...] = (64, 128, 256, 512),
    repeats: int = 7,
    complex: str = "cubical",
    seed: int = 0,
    clock: str = "wall",
) -> list[dict[str, float]]:
    """gudhi against the union-find backend, side by side, for square images of ``sizes``.

    Per size, one random likelihood-like map (uniform in [0, 1], float32, the worst case: the
    most bars) and the median ms over ``repeats`` interleaved rounds (after one warm-up) of the
    superlevel H0 and H1 persistence: ``"gudhi"``, gudhi's plain cubical complex
    (``CubicalComplex(top_dimensional_cells=-x).persistence()``, no critical pixels; only for
    ``complex="cubical"``, else NaN); ``"gudhi_pairs"``,
    :func:`topobook.topology.persistence.persistence_pairs` with ``backend="gudhi"`` (critical
    pixels, the book's path before the union-find); ``"unionfind"``, the same with the union-find
    (critical pixels included). Returns one dict per size with these keys, ``"size"``, and
    ``"ratio"`` = gudhi / unionfind (``gudhi_pairs`` / unionfind for the other complexes).
    One thread: both backends are single-threaded. ``clock`` as in :func:`median_ms`.
    """
    from topobook.topology.persistence import COMPLEXES, persistence_pairs

    if complex not in COMPLEXES:
        raise ValueError(f"complex must be one of {COMPLEXES}, got {complex!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    now = time.perf_counter if clock == "wall" else time.thread_time
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 2:
            raise ValueError(f"sizes must be ints >= 2, got {size!r}")
        x = rng.random((size, size)).astype(np.float32).astype(np.float64)
        cases = {
            "gudhi_pairs": partial(persistence_pairs, x, True, complex, backend="gudhi"),
            "unionfind": partial(persistence_pairs, x, True, complex, backend="unionfind"),
        }
        if complex == "cubical":
            cases["gudhi"] = partial(_gudhi_cubical_persistence, -x)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for round_ in range(repeats + 1):
            for name, fn in cases.items():
                start = now()
                fn()
                if round_ > 0:
                    times[name].append(now() - start)
        row = {"size": float(size), "gudhi": float("nan")}
        row.update({name: 1e3 * float(np.median(t)) for name, t in times.items()})
        reference = row["gudhi"] if complex == "cubical" else row["gudhi_pairs"]
        row["ratio"] = reference / row["unionfind"]
        rows.append(row)
    return rows


def batch_term_ms(
    batch: int = 8,
    size: int = 64,
    repeats: int = 7,
    complex: str = "cubical",
    threads: tuple[int, ...] = (1, 0),
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """The topological term of a mini-batch, forward and backward, with the union-find of the
    batch run crop after crop (one numba call each, as in training) or in one numba call over
    ``prange`` threads, side by side.

    Inputs: ``batch`` random likelihood-like maps ``(size, size)`` (uniform, float32: the most
    bars) and random binary targets; the term is
    :func:`topobook.losses.topological.topological_loss`'s training path (lifetime matching,
    superlevel, H0 and H1, ``reduction="mean"``). Cases:
    ``"serial"``, and ``"one call, T threads"`` for each ``T`` of ``threads`` (0: every core,
    numba's default). Returns case -> ``{"wall": ms, "cpu": ms}``: the median wall time and
    the median CPU time of the whole process (all threads: what the other jobs of the machine
    lose) over ``repeats`` interleaved rounds, after one warm-up round."""
    import numba

    from topobook.losses.topological import _lifetime_losses_binary_target, _persistence_layer
    from topobook.topology.persistence import binary_bar_counts

    rng = np.random.default_rng(seed)
    f = torch.tensor(rng.random((batch, size, size)), dtype=torch.float32)
    g_values = (rng.random((batch, size, size)) > 0.5).astype(np.float32)
    layer = _persistence_layer(True, complex, 1, False, "unionfind")
    counts = [binary_bar_counts(g, True, complex) for g in g_values]
    cases = {"serial": (False, None)}
    for n in threads:
        n_threads = numba.config.NUMBA_NUM_THREADS if n == 0 else n
        cases[f"one call, {n_threads} thread(s)"] = (True, n_threads)

    def run(one_call: bool) -> None:
        x = f.detach().requires_grad_(True)
        losses = _lifetime_losses_binary_target(x, g_values, layer, (0, 1), counts, one_call)
        torch.stack(losses).mean().backward()

    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in cases}
    previous = numba.get_num_threads()
    try:
        for round_ in range(repeats + 1):
            for name, (one_call, n_threads) in cases.items():
                if n_threads is not None:
                    numba.set_num_threads(n_threads)
                wall, cpu = time.perf_counter(), time.process_time()
                run(one_call)
                if round_ > 0:
                    times[name]["wall"].append(time.perf_counter() - wall)
                    times[name]["cpu"].append(time.process_time() - cpu)
    finally:
        numba.set_num_threads(previous)
    return {
        name: {clock: 1e3 * float(np.median(t)) for clock, t in by_clock.items()}
        for name, by_clock in times.items()
    }


# ---------------------------------------------------------------------------------------------
# the cost of one training step per loss (chapter 6 and benchmarks/loss_step.py)

_NOTEBOOK = {"matching": "birth", "complex": "freudenthal", "keep_zero_length": True}

# The losses of the book's training runs, as ``training_step_ms`` settings: ``loss`` and ``lam``
# are the arguments of :func:`topobook.losses.topological.training_loss`, the other keys its
# options. The weights are those of the runs (chapter 4 and book/profiles.yml); the time of a step
# does not depend on the weight, except that ``lam = 0`` skips the term.
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
    # weight 1 as in the reference trainer (weight_srec) and TopoMortar's CESkeletonRecallLoss
    "BCE + Skeleton Recall": {"loss": "skeleton_recall", "lam": 1.0},
    # weight 1: the excess term then trains on the SCNP logits alone, as the reference does
    "BCE + SCNP (3x3)": {"loss": "scnp", "lam": 1.0, "window": 3},
}


def _check_settings(loss_settings: dict[str, dict]) -> dict[str, tuple[str, float, dict]]:
    """``name -> (loss, lam, options)``, or a clear error before anything is timed."""
    from topobook.losses.topological import TOPO_LOSSES, training_loss

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
    clock: str = "wall",
    batch: int = 1,
    norm: str = "batch",
) -> dict[str, float]:
    """Median wall time in ms of one U-Net training step with each loss, measured side by side.

    A step is what :func:`topobook.training.run.train` does per batch: ``zero_grad``, the forward
    pass of ``UNet(base_width=width, depth=depth, norm=norm)`` (channels-last, as in training) on a
    ``(batch, 1, patch_size, patch_size)`` mini-batch of patches (the paper's recipe: batch 1
    and batch normalisation; the stable recipe: batch 8 and ``norm="group"``),
    :func:`topobook.losses.topological.training_loss` with the
    loss's settings, ``backward`` and an Adam step. ``loss_settings``: name -> ``{"loss": a
    name of TOPO_LOSSES, "lam": weight, **options of the term}`` (default
    :data:`LOSS_STEP_SETTINGS`, every loss of the book). The settings are checked (unknown loss
    or option: an error) before anything is timed.

    The losses take turns within each round on the same patch and one model that every step
    updates, so slow phases of the machine hit all of them alike; each round draws ``batch`` new
    patches (``PatchSampler`` with ``seed``) from ``images`` ``(N, H, W)`` in [0, 1] and ``masks``
    ``(N, H, W)`` in {0, 1} (default: the ISBI 2012 training slices 0-20). ``warmup`` rounds are
    not timed, then ``repeats`` rounds are. Runs with ``threads`` PyTorch threads (the
    training runs use 1) and restores the previous thread count. Returns name -> median ms, in
    the order of ``loss_settings``. ``clock="cpu"`` times the CPU time of the calling thread
    (``time.thread_time``) instead of wall time: with one thread every step runs there, and on a
    shared machine the CPU time does not count the moments the process waits for a core.
    ``clock="process"``: the CPU time of all the process's threads (``time.process_time``),
    for work spread over threads (the gudhi backend runs the crops of a batch in threads,
    :class:`~topobook.topology.persistence.PersistenceLayer`, which the thread's clock does
    not see).
    """
    clocks = {"wall": time.perf_counter, "cpu": time.thread_time, "process": time.process_time}
    if clock not in clocks:
        raise ValueError(f"clock must be one of {tuple(clocks)}, got {clock!r}")
    now = clocks[clock]
    from topobook.datasets.isbi2012 import DEFAULT_TRAIN_SLICES, load_isbi
    from topobook.losses.topological import training_loss
    from topobook.training.patches import PatchSampler
    from topobook.training.unet import UNet

    settings = _check_settings(LOSS_STEP_SETTINGS if loss_settings is None else loss_settings)
    checks = (
        ("repeats", repeats, 1),
        ("warmup", warmup, 0),
        ("threads", threads, 1),
        ("batch", batch, 1),
    )
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
        model = UNet(base_width=width, depth=depth, norm=norm)
        model = model.to(memory_format=torch.channels_last)
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        times: dict[str, list[float]] = {name: [] for name in settings}
        for round_ in range(warmup + repeats):
            crops = [sampler.sample() for _ in range(batch)]
            x = torch.tensor(np.stack([np.asarray(c[0], dtype=np.float32) for c in crops]))
            x = x[:, None].contiguous(memory_format=torch.channels_last)
            y = torch.tensor(np.stack([np.asarray(c[1]) for c in crops]), dtype=torch.float32)
            y = y[:, None]
            for name, (loss, lam, options) in settings.items():
                start = now()
                optimizer.zero_grad()
                parts = training_loss(model(x), y, loss, lam, **options)
                parts.total.backward()
                optimizer.step()
                elapsed = now() - start
                if round_ >= warmup:
                    times[name].append(elapsed)
    finally:
        torch.set_num_threads(previous_threads)
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}
