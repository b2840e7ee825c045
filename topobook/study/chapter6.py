"""What the three pages of chapter 6 share: the runs they read by name, the patch of a
validation slice on which page 6a computes every loss (and page 6b splits the authors' notebook
loss), and that split: which part of the notebook loss the value-only control trains with.

Chapter 6 plans no runs of its own: pages 6.1-6.9 of the part *Training runs* train them
(``book/build.py`` plans those pages with :mod:`topobook.study.chapter4`); the pages of chapter
6 only read the finished runs, and stop with an error naming the folder of any that is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from topobook.losses.topological import sorted_value_loss, topological_loss
from topobook.training.run import load_results, predict
from topobook.training.unet import UNet

# the authors' notebook loss (chapter 2): birth matching on TopologyLayer's Freudenthal
# complex, zero-length bars kept
NOTEBOOK_LOSS = {"matching": "birth", "complex": "freudenthal", "keep_zero_length": True}
# the rows of notebook_loss_parts, in order; they add up to the notebook loss
NOTEBOOK_LOSS_PARTS = (
    "sorted-value term (the control)",
    "rest of the H0 part",
    "what the zero-length H1 bars add",
    "H1 bars of positive length",
)


def runs_by_name(results_dir: str | Path, names: list[str]) -> dict[str, list[dict]]:
    """The finished runs of each name in ``names`` under ``results_dir``
    (``<name>/seed<k>/metrics.json``, read by :func:`topobook.training.run.load_results`), each
    list sorted by seed; names in the order given, duplicates once.

    Raises ``FileNotFoundError`` naming every folder without a finished run: the training
    pages (chapter 4, pages 6.1-6.9) must run first."""
    names = list(dict.fromkeys(names))
    runs = load_results(results_dir)
    by_run = {n: sorted([r for r in runs if r["run"] == n], key=lambda r: r["config"]["seed"])
              for n in names}
    missing = [n for n in names if not by_run[n]]
    if missing:
        folders = ", ".join(f"{results_dir}/{n}" for n in missing)
        raise FileNotFoundError(
            f"no finished run in {folders}: execute the training pages (chapter 4, 6.1-6.9) "
            "first")
    return by_run


def patch_window(origin, size: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The rows and columns of the ``size`` x ``size`` patch whose top-left pixel is
    ``origin = (row, column)`` in an image of ``shape = (H, W)``.

    Raises ``ValueError`` when the patch leaves the image: choose a smaller origin or size."""
    row, column = (int(v) for v in origin)
    if size < 1:
        raise ValueError(f"the patch size must be at least 1, got {size}")
    if row < 0 or column < 0 or row + size > shape[0] or column + size > shape[1]:
        raise ValueError(
            f"a {size} x {size} patch at (row, column) = ({row}, {column}) leaves the image of "
            f"shape {tuple(shape)}: choose an origin and size with origin + size <= the shape")
    return slice(row, row + size), slice(column, column + size)


def stand_in_prediction(truth: np.ndarray) -> np.ndarray:
    """A likelihood that stands in for a network's when no weights exist: the binary ``truth``
    ``(H, W)`` (1 = cell) blurred (Gaussian, sigma 1.5 px) and squeezed into [0.1, 0.9]."""
    blurred = ndimage.gaussian_filter(np.asarray(truth, dtype=np.float64), 1.5)
    return np.clip(0.1 + 0.8 * blurred, 0, 1)


def patch_prediction(run: dict, images: np.ndarray, window: tuple[slice, slice],
                     truth: np.ndarray) -> tuple[np.ndarray, str]:
    """The cell probability ``(h, w)`` float64 in [0, 1] that ``run`` (one entry of
    :func:`runs_by_name`, with ``dir`` and ``config``) predicts on the ``window`` of the first
    of ``images`` ``(N, H, W)``, from its selected weights ``<dir>/model.pt``; and a line that
    says where it comes from.

    Without weights, :func:`stand_in_prediction` of the ``truth`` patch ``(h, w)`` stands in,
    and the line says so in capitals ("NO WEIGHTS")."""
    weights = Path(run["dir"]) / "model.pt"
    if not weights.is_file():
        source = f"NO WEIGHTS in {weights}: a blurred truth stands in for a prediction"
        return stand_in_prediction(truth), source
    config = run["config"]
    model = UNet(in_channels=config.get("in_channels", 1), base_width=config["width"],
                 depth=config["depth"], norm=config.get("norm") or "batch")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    probabilities = predict(model, images[:1])[0][window].astype(np.float64)
    return probabilities, f"{run['run']}, seed {config['seed']} (selected weights)"


def notebook_loss_parts(likelihood: np.ndarray, truth: np.ndarray) -> pd.DataFrame:
    """The authors' notebook loss of a likelihood ``(H, W)`` in [0, 1] (1 = cell) against its
    binary ``truth`` ``(H, W)``, split into the rows :data:`NOTEBOOK_LOSS_PARTS`: the
    sorted-value term (:func:`~topobook.losses.topological.sorted_value_loss`, the value-only
    control), the rest of the H0 part (its bars of positive length and the difference in
    pairing), what keeping the zero-length H1 bars adds, and the H1 bars of positive length.

    Columns ``value`` and ``share of the notebook loss``. The values add up to the notebook
    loss (``topological_loss(**NOTEBOOK_LOSS)``, checked to 1e-9 relative; a
    ``RuntimeError`` otherwise)."""
    f = torch.as_tensor(np.asarray(likelihood, dtype=np.float64))
    g = torch.as_tensor(np.asarray(truth, dtype=np.float64))
    birth_rule = {k: v for k, v in NOTEBOOK_LOSS.items() if k != "keep_zero_length"}
    part = {(k, zero): topological_loss(f, g, keep_zero_length=zero, dims=(k,), **birth_rule)
            .item() for k in (0, 1) for zero in (True, False)}
    total = topological_loss(f, g, **NOTEBOOK_LOSS).item()
    control = sorted_value_loss(f, g).item()
    values = pd.Series(
        [control, part[0, True] - control, part[1, True] - part[1, False], part[1, False]],
        index=list(NOTEBOOK_LOSS_PARTS), name="value")
    tolerance = 1e-9 * max(abs(total), 1e-300)
    if abs(part[0, True] + part[1, True] - total) > tolerance or abs(values.sum() - total) > (
            tolerance):
        raise RuntimeError(f"the parts {values.to_dict()} do not add up to the notebook loss "
                           f"{total}")
    shares = values / total if total else values * np.nan
    return pd.DataFrame({"value": values, "share of the notebook loss": shares})
