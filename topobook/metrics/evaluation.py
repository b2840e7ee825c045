"""Scoring predictions on whole evaluation slices, and the trivial predictors to compare with.

:func:`evaluate` is what every training run and every reference row of chapter 5 is scored
with, so all rows of a table are computed the same way:

* from the cell probabilities, the ISBI challenge's ``v_rand`` and ``v_info`` (each slice's own
  best threshold of Fiji's grid, after border thinning;
  :func:`topobook.metrics.isbi_challenge.isbi_scores`: an oracle on the evaluation slices, kept for
  the exploratory chapters);
* from the prediction thresholded at ``threshold`` (0.5 for a network): the paper's pixel metrics,
  its Betti error (``betti_paper``), the standard Betti error at one fixed connectivity whatever a
  run was trained with (``betti_8conn``: cells 8-connected, holes 4-connected, the cubical
  complex of chapter 1), the Betti matching error of the whole slice (``betti_matching``: bars
  of the prediction and of the truth left unmatched by location, dimensions 0 and 1;
  :func:`topobook.topology.betti_matching.betti_matching_error`) and clDice of the membranes
  (``cldice``).

Reference rows (:func:`reference_probabilities`): ``"all_cell"`` (probability 1 everywhere),
``"all_membrane"`` (0 everywhere) and ``"raw_threshold"`` (the raw image as the cell probability,
thresholded at the value that maximises Dice on the *validation* slices,
:func:`choose_raw_threshold`). They show what each metric rewards before strategies are compared.

**One honest operating point** (:func:`evaluate_at_operating_point`, the scoring of the
confirmatory study): one threshold per run, chosen on the *validation* slices only
(:func:`choose_threshold`: the first threshold of :data:`FINE_THRESHOLDS` = 0.01, 0.02, ...,
0.99 with the highest stack V_rand, Fiji's per-slice average), then **every** metric of the
evaluation slices read at that one threshold (:func:`score_at_threshold`): V_rand and V_info,
the Betti matching error of the whole slice, the standard Betti error ``betti_8conn`` on the 64
non-overlapping 64x64 windows that tile a 512x512 slice (the same windows for every run and
seed, :func:`topobook.metrics.pixel.tiled_positions`), clDice, Dice and the pixel metrics, and the
predicted and true membrane fractions (calibration next to topology). The challenge's own
reading (Fiji's 0.1 grid, the stack's best threshold on the evaluation slices themselves) is
kept as a separate, clearly labelled ``"evaluation_oracle"``: it looks at the evaluation truth
to pick its threshold. The trivial predictors are scored the same way
(:func:`evaluate_reference_at_operating_point`). ``metric=`` chooses the threshold by another
validation metric instead (e.g. one operating point per endpoint, if the pre-registration says
so).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from topobook.metrics import isbi_challenge, pixel
from topobook.metrics.isbi_challenge import check_thresholds
from topobook.topology.betti_matching import betti_matching_error

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
# metric -> (lowest, highest) value it can take (None: unbounded); an interval drawn for a
# metric is cut to this range (a mean ± 95 % band of V_rand never reaches above 1)
METRIC_RANGES = {
    **{name: (0.0, 1.0) for name, higher in METRICS.items() if higher},
    "betti_8conn": (0.0, None),
    "betti_matching": (0.0, None),
    "betti_paper": (0.0, None),
}
REFERENCES = ("all_cell", "all_membrane", "raw_threshold")

FINE_THRESHOLDS = tuple(k / 100 for k in range(1, 100))
"""The operating-point grid: 0.01, 0.02, ..., 0.99 (99 values, each the double nearest k/100)."""
BETTI_WINDOW = 64  # side of the tiling windows of ``betti_8conn`` at the operating point
# metric -> True when higher is better, for the scores read at one operating point
OPERATING_POINT_METRICS = {
    "v_rand": True,
    "v_info": True,
    "betti_matching": False,
    "betti_8conn": False,
    "cldice": True,
    "dice": True,
    "accuracy": True,
    "completeness": True,
    "correctness": True,
    "quality": True,
}


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
    scores = pixel.pixel_metrics(pred, truth)
    scores.update(isbi_challenge.isbi_scores(probability, truth))
    scores["cldice"] = pixel.cldice(pred, truth)
    scores["betti_paper"] = pixel.betti_error(pred, truth, "paper", seed=seed)
    scores["betti_8conn"] = pixel.betti_error(
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


def choose_threshold(
    probabilities: np.ndarray,
    masks: np.ndarray,
    thresholds: Sequence[float] = FINE_THRESHOLDS,
    metric: str = "v_rand",
    betti_window: int = BETTI_WINDOW,
) -> dict:
    """The operating point of a run, chosen on its **validation** slices only.

    ``probabilities``: cell probabilities ``(N, H, W)`` in [0, 1]; ``masks``: ``(N, H, W)`` in
    {0, 1}, 1 = cell. The threshold of ``thresholds`` (default :data:`FINE_THRESHOLDS`, 0.01 to
    0.99) with the best validation value of ``metric``, the first of equal best values:

    * ``"v_rand"`` (default, the primary endpoint): the highest stack V_rand
      (:func:`topobook.metrics.isbi_challenge.isbi_stack_scores`: Fiji's mean of the slice V_rand at
      each threshold);
    * any other key of :data:`OPERATING_POINT_METRICS` but ``"v_info"``: the best mean over the
      slices of that metric of ``p > t`` (highest, or lowest for the Betti errors), computed as
      :func:`score_at_threshold` does (``betti_8conn`` on the tiled windows). Slow for
      ``"betti_matching"`` (about 0.5 s per slice and distinct binary image): use a coarser grid.

    Returns ``{"threshold", "metric", "value" (the validation value there), "thresholds",
    "curve" (the validation value at every threshold)}``."""
    if metric == "v_rand":
        scores = isbi_challenge.isbi_stack_scores(probabilities, masks, thresholds)
        threshold, value = scores["threshold_v_rand"], scores["v_rand"]
        grid, curve = scores["thresholds"], scores["v_rand_curve"]
    elif metric in OPERATING_POINT_METRICS and metric != "v_info":
        probabilities, masks = _check_stack(probabilities, masks, range(len(probabilities)))
        grid = list(check_thresholds(thresholds))
        curve = [_mean_binary_metric(probabilities, masks, g, metric, betti_window) for g in grid]
        sign = 1.0 if OPERATING_POINT_METRICS[metric] else -1.0
        best = int(np.argmax(sign * np.asarray(curve)))  # the first of equal best values
        threshold, value = grid[best], curve[best]
    else:
        allowed = [m for m in OPERATING_POINT_METRICS if m != "v_info"]
        raise ValueError(f"metric must be one of {allowed}, got {metric!r}")
    return {"threshold": threshold, "metric": metric, "value": value, "thresholds": grid,
            "curve": curve}


def _mean_binary_metric(
    probabilities: np.ndarray, masks: np.ndarray, threshold: float, metric: str, betti_window: int
) -> float:
    values = []
    for p, m in zip(probabilities, masks, strict=True):
        pred = _binarise(p, threshold)
        if metric == "cldice":
            values.append(pixel.cldice(pred, m))
        elif metric == "betti_8conn":
            values.append(_betti_8conn(pred, m, betti_window))
        elif metric == "betti_matching":
            values.append(float(betti_matching_error(pred, m)["betti_matching_error"]))
        else:
            values.append(pixel.pixel_metrics(pred, m)[metric])
    return float(np.mean(values))


def _binarise(probability: np.ndarray, threshold: float) -> np.ndarray:
    # the same binary image as the V_rand of the threshold: float32 values compared in double
    return (probability.astype(np.float32).astype(np.float64) > threshold).astype(np.uint8)


def _betti_8conn(pred: np.ndarray, truth: np.ndarray, betti_window: int) -> float:
    windows = pixel.tiled_positions(truth.shape, betti_window)
    return pixel.betti_error(
        pred, truth, "standard", patch_size=betti_window, positions=windows, complex="cubical"
    )


def _score_slice_at(
    probability: np.ndarray, truth: np.ndarray, threshold: float, betti_window: int
) -> dict[str, float]:
    pred = _binarise(probability, threshold)
    scores = pixel.pixel_metrics(pred, truth)
    scores["cldice"] = pixel.cldice(pred, truth)
    scores["betti_8conn"] = _betti_8conn(pred, truth, betti_window)
    scores["betti_matching"] = float(betti_matching_error(pred, truth)["betti_matching_error"])
    cells = thinned_cells(pred).astype(np.uint8)  # the segmentation V_rand scores
    scores["betti_matching_thinned"] = float(
        betti_matching_error(cells, truth)["betti_matching_error"]
    )
    scores["betti_8conn_thinned"] = _betti_8conn(cells, truth, betti_window)
    scores["membrane_fraction"] = float(1.0 - pred.mean())
    scores["membrane_fraction_truth"] = float(1.0 - np.asarray(truth, dtype=float).mean())
    return scores


def thinned_betti_matching(pred: np.ndarray, truth: np.ndarray) -> float:
    """The Betti matching error of the segmentation that V_rand scores: ``pred`` ``(H, W)`` in
    {0, 1} (1 = cell) thinned as the ISBI challenge thins it
    (:func:`topobook.metrics.isbi_challenge.thin_boundaries`: cells grown over the membrane
    until they meet at one-pixel dams), its cells (label > 0) against ``truth`` ``(H, W)``
    (1 = cell) as given, whole slice, dimensions 0 and 1.

    Thinning keeps every cell component and removes the membrane that separates nothing (specks
    inside a cell, loose ends), which the raw mask's error counts and V_rand does not: so the two
    endpoints score one object. A hand check: a cell with a membrane speck inside scores 0 here,
    1 on the raw mask (tested).

    The dams are 4-connected, and two labels can touch diagonally across one; the cubical complex
    of the Betti matching error joins cells 8-connected, so a pixel that has another label among
    its 8 neighbours becomes a dam too (:func:`separated_cells`), and each label stays a cell."""
    cells = thinned_cells(pred)
    return float(betti_matching_error(cells.astype(np.uint8), truth)["betti_matching_error"])


def thinned_cells(pred: np.ndarray) -> np.ndarray:
    """The cells of the segmentation V_rand scores, as a boolean mask ``(H, W)``: ``pred``
    ``(H, W)`` in {0, 1} (1 = cell) thinned as the ISBI challenge thins it
    (:func:`topobook.metrics.isbi_challenge.thin_boundaries`), with diagonal contacts of two
    labels turned into dams (:func:`separated_cells`), so that the cubical complex (cells
    8-connected) sees each label as one cell."""
    return separated_cells(isbi_challenge.thin_boundaries(np.asarray(pred) > 0))


def thinned_betti_error(
    pred: np.ndarray, truth: np.ndarray, betti_window: int = BETTI_WINDOW
) -> float:
    """The standard Betti error (``betti_8conn``: cells 8-connected, holes 4-connected) of the
    segmentation V_rand scores (:func:`thinned_cells`) against ``truth`` ``(H, W)`` (1 = cell), on
    the non-overlapping ``betti_window`` windows that tile the slice, averaged: per window
    ``|b0 - b0'| + |b1 - b1'|``. Unlike the Betti matching error it matches no feature by
    location, so a prediction with about the truth's number of cells per window scores near 0
    where a constant prediction misses every cell of every window. A membrane speck inside a
    cell is a hole on the raw mask and nothing here (tested)."""
    return _betti_8conn(thinned_cells(pred).astype(np.uint8), truth, betti_window)


def separated_cells(labels: np.ndarray) -> np.ndarray:
    """The cells of a label image ``(H, W)`` (0 = boundary) as a boolean mask in which no two
    labels are 8-connected: a labelled pixel with a different positive label among its 8
    neighbours is set to boundary (both sides of a diagonal contact)."""
    labels = np.asarray(labels)
    padded = np.pad(labels, 1)
    height, width = labels.shape
    contact = np.zeros(labels.shape, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near = padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
            contact |= (near > 0) & (near != labels)
    return (labels > 0) & ~contact


def score_at_threshold(
    probabilities: np.ndarray,
    masks: np.ndarray,
    slices: Sequence[int],
    threshold: float,
    betti_window: int = BETTI_WINDOW,
) -> dict:
    """Every metric of the slices ``(N, H, W)`` read at one threshold (cell = ``p > threshold``).

    Per slice: ``v_rand`` and ``v_info`` (the slice's V_rand and V_info after thinning at that
    threshold, :func:`topobook.metrics.isbi_challenge.isbi_slice_curves`), ``betti_matching``
    (whole slice), ``betti_matching_thinned`` (the same of the thinned segmentation that V_rand
    scores, :func:`thinned_betti_matching`), ``betti_8conn_thinned`` (the windows' Betti error of
    that segmentation, :func:`thinned_betti_error`), ``betti_8conn`` (mean over the windows of
    :func:`topobook.metrics.pixel.tiled_positions`, side ``betti_window``; no seed), ``cldice``, the
    pixel metrics with ``dice``, and
    ``membrane_fraction`` / ``membrane_fraction_truth`` (the share of pixels predicted / labelled
    membrane). Returns ``{"threshold": t, "mean": {metric: mean over slices}, "per_slice":
    [{"slice": s, metric: ...}]}``: the means of ``v_rand`` and ``v_info`` are the stack scores
    at ``t`` as Fiji averages them (a NaN slice V_info makes the mean NaN), and with slices of
    one size the mean membrane fractions are the stack's. All values are plain floats (JSON)."""
    probabilities, masks = _check_stack(probabilities, masks, slices)
    if not (np.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
    curves = isbi_challenge.isbi_slice_curves(probabilities, masks, [float(threshold)])
    per_slice = []
    for k, (p, m, s) in enumerate(zip(probabilities, masks, slices, strict=True)):
        row = {"slice": int(s), "v_rand": curves["v_rand"][k][0], "v_info": curves["v_info"][k][0]}
        row.update(_score_slice_at(p, m, float(threshold), betti_window))
        per_slice.append(row)
    keys = [k for k in per_slice[0] if k != "slice"]
    return {
        "threshold": float(threshold),
        "mean": {k: float(np.mean([row[k] for row in per_slice])) for k in keys},
        "per_slice": per_slice,
    }


def evaluate_at_operating_point(
    val_probabilities: np.ndarray,
    val_masks: np.ndarray,
    probabilities: np.ndarray,
    masks: np.ndarray,
    slices: Sequence[int],
    thresholds: Sequence[float] = FINE_THRESHOLDS,
    betti_window: int = BETTI_WINDOW,
    metric: str = "v_rand",
) -> dict:
    """Score a run at its one operating point: the threshold chosen on the validation slices
    (:func:`choose_threshold` on ``val_probabilities``, ``val_masks``, by ``metric``, V_rand by
    default), every metric of the evaluation slices (``probabilities``, ``masks``, ``slices``)
    read there (:func:`score_at_threshold`).

    Returns :func:`score_at_threshold`'s dict plus ``"operating_point"``: ``{"threshold",
    "metric", "validation_value", "grid", "validation_scores"}`` (``validation_scores``: every
    metric of the validation slices at that threshold, their means; what a validation criterion
    other than ``metric`` reads) and ``"evaluation_oracle"``: the challenge's own
    reading of the evaluation stack (:func:`topobook.metrics.isbi_challenge.isbi_stack_scores` on
    Fiji's 0.1 grid, the best threshold *of the evaluation slices*; an oracle, reported apart, never
    the primary score).
    """
    choice = choose_threshold(val_probabilities, val_masks, thresholds, metric, betti_window)
    result = score_at_threshold(probabilities, masks, slices, choice["threshold"], betti_window)
    grid = choice["thresholds"]
    result["operating_point"] = {
        "threshold": choice["threshold"],
        "metric": metric,
        "validation_value": choice["value"],
        "grid": f"{len(grid)} thresholds from {min(grid):g} to {max(grid):g}",
        "validation_scores": score_at_threshold(  # positions for slice numbers: means only
            val_probabilities, val_masks, list(range(len(val_probabilities))),
            choice["threshold"], betti_window)["mean"],
    }
    oracle = isbi_challenge.isbi_stack_scores(probabilities, masks)
    result["evaluation_oracle"] = {
        key: oracle[key] for key in ("v_rand", "v_info", "threshold_v_rand", "threshold_v_info")
    }
    return result


def evaluate_at_best_threshold(
    probabilities: np.ndarray,
    masks: np.ndarray,
    slices: Sequence[int],
    thresholds: Sequence[float] = FINE_THRESHOLDS,
    betti_window: int = BETTI_WINDOW,
) -> dict:
    """The threshold-free reading of an evaluation stack: the threshold of ``thresholds`` with
    the highest stack V_rand *of these slices* (Fiji's mean of the slice scores; the first of
    equal maxima, :func:`topobook.metrics.isbi_challenge.isbi_stack_scores`), and every metric
    read there (:func:`score_at_threshold`). It looks at the evaluation truth, as the ISBI
    challenge's own score does, so it is no deployable operating point; applied alike to every
    arm, it compares what the networks can separate, free of the noise of a threshold chosen on
    a few validation slices. Returns :func:`score_at_threshold`'s dict plus ``"grid"``."""
    best = isbi_challenge.isbi_stack_scores(probabilities, masks, thresholds)
    result = score_at_threshold(
        probabilities, masks, slices, best["threshold_v_rand"], betti_window
    )
    grid = best["thresholds"]
    result["grid"] = f"{len(grid)} thresholds from {min(grid):g} to {max(grid):g}"
    return result


def evaluate_reference_at_operating_point(
    kind: str,
    val_images: np.ndarray,
    val_masks: np.ndarray,
    images: np.ndarray,
    masks: np.ndarray,
    slices: Sequence[int],
    thresholds: Sequence[float] = FINE_THRESHOLDS,
    betti_window: int = BETTI_WINDOW,
    metric: str = "v_rand",
) -> dict:
    """A trivial predictor (:data:`REFERENCES`) scored exactly as a run: its "probabilities"
    (:func:`reference_probabilities`) on the validation images choose its threshold, then
    :func:`evaluate_at_operating_point`. (For ``"raw_threshold"`` the threshold is thus chosen
    by V_rand on the validation slices, not by accuracy as :func:`choose_raw_threshold` does;
    ``"all_cell"`` and ``"all_membrane"`` give the same binary image at every threshold, so
    theirs is the grid's first.)"""
    return evaluate_at_operating_point(
        reference_probabilities(kind, val_images),
        val_masks,
        reference_probabilities(kind, images),
        masks,
        slices,
        thresholds,
        betti_window,
        metric,
    )
