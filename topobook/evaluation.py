"""Scoring predictions on whole evaluation slices, and the trivial predictors to compare with.

:func:`evaluate` is what every training run and every reference row of chapter 5 is scored
with, so all rows of a table are computed the same way:

* from the cell probabilities, the ISBI challenge's ``v_rand`` and ``v_info`` (best threshold,
  after border thinning; :func:`topobook.metrics.isbi_scores`);
* from the prediction thresholded at ``threshold`` (0.5 for a network): the paper's pixel metrics,
  its Betti error (``betti_paper``), the standard Betti error at one fixed connectivity whatever a
  run was trained with (``betti_8conn``: cells 8-connected, holes 4-connected, the cubical
  complex of chapter 1), the Betti matching error of the whole slice (``betti_matching``: bars
  of the prediction and of the truth left unmatched by location, dimensions 0 and 1;
  :func:`topobook.betti_matching.betti_matching_error`) and clDice of the membranes
  (``cldice``).

Reference rows (:func:`reference_probabilities`): ``"all_cell"`` (probability 1 everywhere),
``"all_membrane"`` (0 everywhere) and ``"raw_threshold"`` (the raw image as the cell probability,
thresholded at the value that maximises Dice on the *validation* slices,
:func:`choose_raw_threshold`). They show what each metric rewards before strategies are compared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from topobook import metrics
from topobook.betti_matching import betti_matching_error

# metric -> True when higher is better; the order of the book's tables
METRICS = {
    "v_rand": True,
    "v_info": True,
    "cldice": True,
    "betti_8conn": False,
    "betti_matching": False,
    "dice": True,
    "accuracy": True,
    "completeness": True,
    "correctness": True,
    "quality": True,
    "betti_paper": False,
}
REFERENCES = ("all_cell", "all_membrane", "raw_threshold")


def _check_stack(probabilities, masks, slices) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=np.float32)
    masks = np.asarray(masks)
    if probabilities.ndim != 3 or probabilities.shape != masks.shape:
        raise ValueError(
            f"probabilities and masks must both be (N, H, W), got {probabilities.shape} and "
            f"{masks.shape}"
        )
    if len(slices) != len(probabilities):
        raise ValueError(f"{len(slices)} slice numbers for {len(probabilities)} slices")
    if not np.isfinite(probabilities).all():
        raise ValueError("probabilities contain NaN or infinite values")
    if probabilities.min() < 0 or probabilities.max() > 1:
        raise ValueError("probabilities must lie in [0, 1]")
    return probabilities, masks


def score_slice(
    probability: np.ndarray,
    truth: np.ndarray,
    seed: int,
    betti_patches: int = 100,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Every metric of one slice: ``probability`` ``(H, W)`` in [0, 1] (cell), ``truth``
    ``(H, W)`` in {0, 1} (1 = cell); ``seed`` fixes the Betti-error windows."""
    pred = (probability > threshold).astype(np.uint8)
    scores = metrics.pixel_metrics(pred, truth)
    scores.update(metrics.isbi_scores(probability, truth))
    scores["cldice"] = metrics.cldice(pred, truth)
    scores["betti_paper"] = metrics.betti_error(pred, truth, "paper", seed=seed)
    scores["betti_8conn"] = metrics.betti_error(
        pred, truth, "standard", n_patches=betti_patches, seed=seed, complex="cubical"
    )
    scores["betti_matching"] = float(betti_matching_error(pred, truth)["betti_matching_error"])
    return scores


def evaluate(
    probabilities: np.ndarray,
    masks: np.ndarray,
    slices: Sequence[int],
    seed: int = 0,
    betti_patches: int = 100,
    threshold: float = 0.5,
) -> dict:
    """Score ``(N, H, W)`` cell probabilities against masks ``(N, H, W)`` (1 = cell).

    Returns ``{"mean": {metric: mean over slices}, "per_slice": [{"slice": s, metric: ...}]}``;
    slice ``s`` uses Betti windows seeded with ``seed + s``.
    """
    probabilities, masks = _check_stack(probabilities, masks, slices)
    per_slice = [
        {"slice": int(s), **score_slice(p, m, seed + int(s), betti_patches, threshold)}
        for p, m, s in zip(probabilities, masks, slices, strict=True)
    ]
    keys = [k for k in per_slice[0] if k != "slice"]
    return {
        "mean": {k: float(np.mean([row[k] for row in per_slice])) for k in keys},
        "per_slice": per_slice,
    }


def choose_raw_threshold(images: np.ndarray, masks: np.ndarray) -> float:
    """The threshold ``t`` in {0.01, ..., 0.99} of the raw images ``(N, H, W)`` (in [0, 1]) for
    which ``image > t`` has the highest mean pixel accuracy against the masks: membranes are
    dark. (Dice would pick t near 0, "all cell", since 80 % of the pixels are cell.) Call it
    with the validation slices only."""
    images, masks = np.asarray(images), np.asarray(masks)
    if images.shape != masks.shape or images.ndim != 3:
        raise ValueError(f"images and masks must be (N, H, W), got {images.shape}, {masks.shape}")
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    accuracy = [np.mean((images > t) == masks.astype(bool)) for t in grid]
    return float(grid[int(np.argmax(accuracy))])


def reference_probabilities(kind: str, images: np.ndarray) -> np.ndarray:
    """The cell "probabilities" ``(N, H, W)`` of a trivial predictor on images ``(N, H, W)``:
    ``"all_cell"`` (ones), ``"all_membrane"`` (zeros) or ``"raw_threshold"`` (the raw image;
    score it with ``threshold=choose_raw_threshold(validation images, masks)``)."""
    images = np.asarray(images, dtype=np.float32)
    if kind == "all_cell":
        return np.ones_like(images)
    if kind == "all_membrane":
        return np.zeros_like(images)
    if kind == "raw_threshold":
        return np.clip(images, 0, 1)
    raise ValueError(f"kind must be one of {REFERENCES}, got {kind!r}")
