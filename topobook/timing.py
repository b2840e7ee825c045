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
