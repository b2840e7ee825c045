"""Where the Betti-0 errors of TopoMortar predictions come from (chapter 8), before new training.

The Betti-0 error of an image is the TopoMortar authors' ``|b0(pred) - b0(truth)|`` of the
**mortar** (:func:`topobook.metrics.topomortar_metrics.topomortar_scores`, key
``betti0_error``): its components counted 8-connected, the connectivity of their cubical
complex of ``1 - mask`` (mortar pixels are closed squares, so two mortar pixels that touch at a
corner are one component). Every mask here is ``(H, W)`` in {0, 1} with **1 = mortar**, the class
the metrics score; the network of chapter 8 predicts the bricks, and the predicted mortar is
``brick probability < threshold``
(:func:`topobook.datasets.topomortar.mortar_prediction`, at the run's recorded ``threshold``).

Three questions, each a small function:

* **How the error is spread over the images** (:func:`error_distribution`): median, mean, and
  the share of the total carried by the worst 10 % of the images: sort the per-image errors in
  descending order and divide the sum of the first ``ceil(0.1 n)`` by the sum of all (NaN when
  every error is 0: no error to share).
* **What the extra components are** (:func:`extra_components`): each true mortar component is
  played by the predicted component that covers most of its pixels (ties: the lower label);
  every other predicted component is **extra**, either *spurious* (it touches no true mortar
  pixel) or a *fragment* (it overlaps the truth, but another predicted component plays that
  part). True components left without a player of their own (missed, or merged with another
  one) are **lost**. Then ``components(pred) - components(truth) = extra - lost``, so the Betti-0
  error is ``|extra - lost|`` whenever both masks hold mortar (the authors count a mask without
  mortar as one component: see :mod:`topobook.metrics.topomortar_metrics`).
* **What removing small components would buy** (:func:`remove_small_components`,
  :func:`choose_min_size`, :func:`scores_after_removal`): the 8-connected mortar components of
  fewer than ``A`` pixels are deleted, with ``A`` chosen on the **validation** images only (the
  ``A`` of :data:`MIN_SIZE_GRID` that gives the lowest mean validation Betti-0 error, ties to the
  smallest), and the test images scored at that ``A``. This is **post-processing** of the
  predictions, not a topological prior of the training, and the authors do none: the tables
  label its row so (:data:`POST_PROCESSING_LABEL`).

The tables: :func:`chapter_rows` (our runs, from their ``predictions.npz`` and
``metrics.json``; :func:`finished_runs` and :func:`results_dir_rows` find them in a results
folder) and :func:`published_rows` (the authors' published per-image results). Their files hold
per-image scores only, not predictions, so their rows have the distribution and the worst-10 %
share but no component sizes and no post-processing (NaN there).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from topobook.datasets.topomortar import (
    PUBLISHED_LOSSES,
    THRESHOLD,
    load_images,
    load_published_results,
    mortar_prediction,
)
from topobook.metrics.topomortar_metrics import (
    check_mortar_mask,
    check_mortar_pair,
    mortar_betti_numbers,
    topomortar_scores,
)

WORST_FRACTION = 0.1  # error_distribution: the worst 10 % of the images
# choose_min_size: the sizes A tried (pixels); 0 removes nothing (nor does 1).
MIN_SIZE_GRID = (0, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
AS_TRAINED_LABEL = "as trained"
POST_PROCESSING_LABEL = "post-processing (components < {A} px removed; A chosen on validation)"
PUBLISHED_LABEL = "published (no post-processing)"
SIZE_QUANTILES = (0.25, 0.5, 0.9)  # of the extra components' sizes
ROW_KEYS = (
    "arm",
    "row",
    "min_size",
    "runs",
    "images",
    "betti0_median",
    "betti0_mean",
    "betti0_worst10_share",
    "betti0_worst10_share_pooled",
    "extra_per_image",
    "spurious_share",
    "lost_per_image",
    "extra_size_q25",
    "extra_size_median",
    "extra_size_q90",
    "extra_size_max",
    "betti1_error",
    "dice",
    "val_betti0_mean",
    "betti0_mean_recorded",
)
_EIGHT = np.ones((3, 3), dtype=bool)  # the authors' mortar connectivity
_SEED = re.compile(r"seed\d+")  # run_folder(...) / f"seed{seed}"
_PREDICTION_KEYS = ("probabilities", "slices", "val_probabilities", "val_slices")


# ------------------------------------------------------------------------ the distribution


def error_distribution(errors, worst_fraction: float = WORST_FRACTION) -> dict:
    """Summary of per-image errors ``(n,)`` (finite, >= 0): ``{"n", "median", "mean",
    "worst_count", "worst_share"}``.

    ``worst_share``: sort the errors in descending order; the sum of the first ``worst_count =
    ceil(worst_fraction * n)`` over the sum of all (``worst_fraction`` read as the decimal it
    is written as: ``ceil(0.07 * 100) = 7``, not the 8 of floating point). NaN when every
    error is 0. Raises ``ValueError`` for an empty, non-1-D, non-finite or negative ``errors``
    and a ``worst_fraction`` outside (0, 1]."""
    values = np.asarray(errors, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"errors must be a non-empty 1-D array, got shape {values.shape}")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("errors must be finite and >= 0 (absolute Betti errors)")
    if isinstance(worst_fraction, bool) or not 0 < worst_fraction <= 1:
        raise ValueError(f"worst_fraction must lie in (0, 1], got {worst_fraction!r}")
    count = math.ceil(values.size * Fraction(str(worst_fraction)))
    total = values.sum()
    worst = np.sort(values)[::-1][:count].sum()
    return {
        "n": int(values.size),
        "median": float(np.median(values)),
        "mean": float(values.mean()),
        "worst_count": int(count),
        "worst_share": float(worst / total) if total > 0 else math.nan,
    }


# -------------------------------------------------------------------- the extra components


class ExtraComponents(NamedTuple):
    """The predicted mortar components that do not play a true one (:func:`extra_components`).

    ``sizes``: ``(k,)`` int64 pixel counts of the ``k`` extra components, in label order;
    ``spurious``: ``(k,)`` bool, True where the component touches no true mortar pixel (False:
    a fragment of the truth); ``lost``: the number of true components without a predicted
    component of their own; ``predicted``, ``true``: the component counts (8-connected, 0 for a
    mask without mortar)."""

    sizes: np.ndarray
    spurious: np.ndarray
    lost: int
    predicted: int
    true: int


def mortar_components(mask) -> tuple[np.ndarray, int]:
    """The 8-connected mortar components of ``mask`` ``(H, W)`` (1 = mortar), the connectivity
    of the authors' Betti-0: ``(labels (H, W) int32, 1..count; 0 = brick), count``."""
    labels, count = ndimage.label(check_mortar_mask(mask, "mask"), structure=_EIGHT)
    return labels, int(count)


def extra_components(pred, truth) -> ExtraComponents:
    """The extra mortar components of a predicted mask relative to the truth.

    ``pred``, ``truth``: ``(H, W)`` in {0, 1}, 1 = mortar. Each true component (8-connected) is
    played by the predicted component overlapping most of its pixels (ties: the lower label);
    the predicted components that play none are extra (module docstring). Raises ``ValueError``
    for masks that are not binary 2-D arrays or differ in shape."""
    p, t = check_mortar_pair(pred, truth)
    p_labels, n_pred = ndimage.label(p, structure=_EIGHT)
    t_labels, n_true = ndimage.label(t, structure=_EIGHT)
    both = (p_labels > 0) & (t_labels > 0)
    overlap = np.bincount(
        t_labels[both].astype(np.int64) * (n_pred + 1) + p_labels[both],
        minlength=(n_true + 1) * (n_pred + 1),
    ).reshape(n_true + 1, n_pred + 1)[1:, 1:]  # (true, predicted) shared pixels
    players = {int(np.argmax(row)) for row in overlap if row.any()}
    extra = np.array([k for k in range(n_pred) if k not in players], dtype=np.int64)
    sizes = np.bincount(p_labels.ravel(), minlength=n_pred + 1)[1:]
    return ExtraComponents(
        sizes=sizes[extra].astype(np.int64),
        spurious=overlap[:, extra].sum(axis=0) == 0,
        lost=n_true - len(players),
        predicted=int(n_pred),
        true=int(n_true),
    )


# --------------------------------------------------------------------- the post-processing


def _check_min_size(min_size) -> int:
    if isinstance(min_size, bool) or not isinstance(min_size, int | np.integer) or min_size < 0:
        raise ValueError(
            f"min_size must be an integer number of pixels >= 0, got {min_size!r}"
        )
    return int(min_size)


def remove_small_components(mask, min_size: int) -> np.ndarray:
    """Post-processing: ``mask`` ``(H, W)`` (1 = mortar) without its 8-connected mortar
    components of fewer than ``min_size`` pixels (uint8, same shape). ``min_size`` 0 or 1
    removes nothing. The connectivity is the authors' Betti-0 one, so a component kept or
    removed here is one component of the metric. Raises ``ValueError`` for a mask that is not
    binary 2-D or a ``min_size`` that is not an integer >= 0."""
    size = _check_min_size(min_size)
    labels, count = mortar_components(mask)
    if count == 0 or size <= 1:
        return (labels > 0).astype(np.uint8)
    keep = np.bincount(labels.ravel(), minlength=count + 1) >= size
    keep[0] = False  # the bricks stay bricks
    return keep[labels].astype(np.uint8)


def _check_stack(stack, name: str) -> np.ndarray:
    """A stack ``(N, H, W)``, N >= 1, of binary masks (1 = mortar) as uint8."""
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise ValueError(f"{name} must be a stack (N, H, W) of masks, N >= 1; got {stack.shape}")
    if not np.isin(stack, (0, 1)).all():
        raise ValueError(f"{name} must be binary with values in {{0, 1}} (1 = mortar)")
    return stack.astype(np.uint8)


def _check_masks(masks, truths) -> tuple[np.ndarray, np.ndarray]:
    """Stacks ``(N, H, W)`` of predicted and true mortar, each checked binary, same shapes."""
    masks, truths = _check_stack(masks, "masks"), _check_stack(truths, "truths")
    if masks.shape != truths.shape:
        raise ValueError(f"masks {masks.shape} and truths {truths.shape} must have one shape")
    return masks, truths


def choose_min_size(
    val_masks, val_truths, grid: Sequence[int] = MIN_SIZE_GRID
) -> tuple[int, dict[int, float]]:
    """The ``A`` of ``grid`` that minimises the mean Betti-0 error of the **validation**
    masks after :func:`remove_small_components` (ties: the smallest ``A``).

    ``val_masks``, ``val_truths``: ``(N, H, W)`` predicted and true mortar of validation images
    (1 = mortar); nothing else is read, so no test image can move the choice. The error is
    the authors' (:func:`topobook.metrics.topomortar_metrics.mortar_betti_numbers`, the
    ``betti0_error`` of :func:`topobook.metrics.topomortar_metrics.topomortar_scores`). Returns
    ``(A, {A: mean validation Betti-0 error})``."""
    masks, truths = _check_masks(val_masks, val_truths)
    sizes = sorted({_check_min_size(a) for a in grid})
    if not sizes:
        raise ValueError("grid must hold at least one min_size")
    true_b0 = [mortar_betti_numbers(t, method="labels")[0] for t in truths]
    means = {}
    for size in sizes:
        errors = [
            abs(mortar_betti_numbers(remove_small_components(m, size), method="labels")[0] - b0)
            for m, b0 in zip(masks, true_b0, strict=True)
        ]
        means[size] = float(np.mean(errors))
    best = min(sizes, key=lambda a: (means[a], a))
    return best, means


def scores_after_removal(masks, truths, min_size: int) -> dict[str, list[float]]:
    """The authors' per-image scores (``dice``, ``betti0_error``, ``betti1_error``, ...: every
    key of :func:`topobook.metrics.topomortar_metrics.topomortar_scores`, computed as chapter 8
    computes them, ``monai_axes=True``) of masks ``(N, H, W)`` (1 = mortar) after
    :func:`remove_small_components` at ``min_size``, against ``truths`` ``(N, H, W)``. Returns
    ``{key: [value per image]}``."""
    masks, truths = _check_masks(masks, truths)
    size = _check_min_size(min_size)
    scores: dict[str, list[float]] = {}
    for m, t in zip(masks, truths, strict=True):
        row = topomortar_scores(remove_small_components(m, size), t, monai_axes=True,
                                betti="labels")
        for key, value in row.items():
            scores.setdefault(key, []).append(float(value))
    return scores


# ----------------------------------------------------------------------------- our runs


class RunPredictions(NamedTuple):
    """The saved predictions of one finished chapter-8 run, as mortar masks.

    ``mortar``, ``truth``: ``(N, H, W)`` uint8 (1 = mortar) of the test images ``ids``;
    ``val_mortar``, ``val_truth``: the same of the validation images ``val_ids``; ``threshold``:
    the brick probability below which a pixel is mortar; ``recorded_betti0``: the per-image
    ``betti0_error`` of ``metrics.json`` (``(N,)``, NaN if it records none)."""

    run_dir: Path
    ids: tuple[int, ...]
    mortar: np.ndarray
    truth: np.ndarray
    val_ids: tuple[int, ...]
    val_mortar: np.ndarray
    val_truth: np.ndarray
    threshold: float
    recorded_betti0: np.ndarray


def _load_mortar_truth(numbers: Sequence[int]) -> np.ndarray:
    return load_images(numbers)[1]


def load_run_predictions(
    run_dir, load_truth: Callable[[Sequence[int]], np.ndarray] | None = None
) -> RunPredictions:
    """Read a finished TopoMortar run folder: ``metrics.json`` (``dataset`` must be
    ``"topomortar"``; its ``threshold``, else :data:`topobook.datasets.topomortar.THRESHOLD`) and
    ``predictions.npz`` (``probabilities`` and ``val_probabilities``, brick probabilities
    ``(N, H, W)``; ``slices``, ``val_slices``, image numbers). ``load_truth(numbers)`` returns
    the true mortar ``(N, H, W)`` of image numbers (default: the TopoMortar labels). Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` for a run of another data set,
    missing keys or shapes that do not match."""
    run_dir = Path(run_dir)
    load_truth = _load_mortar_truth if load_truth is None else load_truth
    for name in ("metrics.json", "predictions.npz"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} does not exist: is the run finished?")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if metrics.get("dataset") != "topomortar":
        raise ValueError(
            f"{run_dir} is a run of dataset {metrics.get('dataset')!r}, not 'topomortar'"
        )
    threshold = float(metrics.get("threshold", THRESHOLD))
    with np.load(run_dir / "predictions.npz") as saved:
        missing = [k for k in _PREDICTION_KEYS if k not in saved.files]
        if missing:
            raise ValueError(f"{run_dir / 'predictions.npz'} lacks {missing}")
        arrays = {k: saved[k] for k in _PREDICTION_KEYS}
    parts = {}
    for prefix in ("", "val_"):
        ids = tuple(int(i) for i in np.atleast_1d(arrays[f"{prefix}slices"]))
        probabilities = arrays[f"{prefix}probabilities"].astype(np.float32)
        truth = np.asarray(load_truth(ids))
        if probabilities.shape != truth.shape or probabilities.shape[0] != len(ids):
            raise ValueError(
                f"{run_dir}: {prefix}probabilities {probabilities.shape} do not match the "
                f"{len(ids)} {prefix}slices and their truth {truth.shape}"
            )
        parts[prefix] = (ids, mortar_prediction(probabilities, threshold),
                         _check_stack(truth, f"the {prefix}truth"))
    recorded = metrics.get("per_image", {}).get("betti0_error")
    n = len(parts[""][0])
    recorded = np.full(n, np.nan) if recorded is None else np.asarray(recorded, np.float64)
    if recorded.shape != (n,):
        raise ValueError(f"{run_dir}: metrics.json records {recorded.shape} per-image errors")
    return RunPredictions(
        run_dir, parts[""][0], parts[""][1], parts[""][2],
        parts["val_"][0], parts["val_"][1], parts["val_"][2], threshold, recorded,
    )


def finished_runs(results_dir) -> dict[str, list[Path]]:
    """The finished TopoMortar runs of a results folder, ``{folder name: [run folders]}``:
    ``<results_dir>/topomortar/<arm or arm_lamλ>/seed<k>`` holding ``metrics.json`` and
    ``predictions.npz`` (:func:`topobook.study.topomortar_study.run_folder`), sorted by seed.
    Every λ of a sweep is its own entry; pass the ``"final"`` of
    :func:`topobook.study.topomortar_study.chapter_plan` to :func:`chapter_rows` to keep the
    chosen λ only."""
    root = Path(results_dir) / "topomortar"
    runs: dict[str, list[Path]] = {}
    for metrics in sorted(root.glob("*/seed*/metrics.json")):
        run_dir = metrics.parent
        if _SEED.fullmatch(run_dir.name) and (run_dir / "predictions.npz").is_file():
            runs.setdefault(run_dir.parent.name, []).append(run_dir)
    return {
        name: sorted(dirs, key=lambda d: int(d.name.removeprefix("seed")))
        for name, dirs in sorted(runs.items())
    }


def _component_columns(found: list[ExtraComponents], images: int) -> dict:
    sizes = np.concatenate([f.sizes for f in found]) if found else np.zeros(0, np.int64)
    spurious = np.concatenate([f.spurious for f in found]) if found else np.zeros(0, bool)
    quantiles = (np.quantile(sizes, SIZE_QUANTILES) if sizes.size
                 else np.full(len(SIZE_QUANTILES), np.nan))
    return {
        "extra_per_image": sizes.size / images,
        "spurious_share": float(spurious.mean()) if spurious.size else math.nan,
        "lost_per_image": sum(f.lost for f in found) / images,
        "extra_size_q25": float(quantiles[0]),
        "extra_size_median": float(quantiles[1]),
        "extra_size_q90": float(quantiles[2]),
        "extra_size_max": float(sizes.max()) if sizes.size else math.nan,
    }


def _distribution_columns(per_run_errors: np.ndarray) -> dict:
    """``per_run_errors`` ``(runs, images)``: the distribution over the images of their mean
    over runs, and the worst-10 % share over all (run, image) pairs."""
    per_image = error_distribution(per_run_errors.mean(axis=0))
    return {
        "betti0_median": per_image["median"],
        "betti0_mean": per_image["mean"],
        "betti0_worst10_share": per_image["worst_share"],
        "betti0_worst10_share_pooled": error_distribution(per_run_errors.ravel())["worst_share"],
    }


def _masks_row(arm, label, size, runs, masks, val_error) -> dict:
    """One row: ``masks[r]`` ``(N, H, W)`` the mortar of run ``r`` (already post-processed)."""
    errors, betti1, dice, found = [], [], [], []
    for run, run_masks in zip(runs, masks, strict=True):
        scores = scores_after_removal(run_masks, run.truth, 0)
        errors.append(scores["betti0_error"])
        betti1 += scores["betti1_error"]
        dice += scores["dice"]
        found += [extra_components(m, t) for m, t in zip(run_masks, run.truth, strict=True)]
    errors = np.asarray(errors, np.float64)
    return {
        "arm": arm,
        "row": label,
        "min_size": size,
        "runs": len(runs),
        "images": errors.shape[1],
        **_distribution_columns(errors),
        **_component_columns(found, errors.size),
        "betti1_error": float(np.mean(betti1)),
        "dice": float(np.mean(dice)),
        "val_betti0_mean": val_error,
        "betti0_mean_recorded": math.nan,
    }


def arm_rows(arm: str, runs: Sequence[RunPredictions], grid: Sequence[int] = MIN_SIZE_GRID):
    """The two rows of one arm (its runs: the seeds, on the same images): as trained, and
    after removing the components smaller than the ``A`` that :func:`choose_min_size` picks on
    the validation images of all its runs together (one ``A`` per arm). Columns
    :data:`ROW_KEYS`: the Betti-0 distribution (median and mean over the test images of their
    mean error over the runs, the worst-10 % share of those, and ``..._pooled`` over every (run,
    image) pair), the extra components (:func:`extra_components`: per image, the share spurious,
    lost true components per image, size quantiles in pixels), the mean Betti-1 error and Dice,
    the mean validation Betti-0 error at that ``A`` (0 for the first row) and, as a check, the
    mean ``betti0_error`` that ``metrics.json`` records (first row only)."""
    if not runs:
        raise ValueError(f"arm {arm!r} has no finished runs")
    for run in runs[1:]:
        if run.ids != runs[0].ids or run.val_ids != runs[0].val_ids:
            raise ValueError(
                f"the runs of arm {arm!r} must share their test and validation images: "
                f"{runs[0].run_dir} and {run.run_dir} differ"
            )
    size, val_means = choose_min_size(
        np.concatenate([r.val_mortar for r in runs]),
        np.concatenate([r.val_truth for r in runs]),
        sorted(set(grid) | {0}),
    )
    as_trained = _masks_row(arm, AS_TRAINED_LABEL, None, runs, [r.mortar for r in runs],
                            val_means[0])
    as_trained["betti0_mean_recorded"] = float(np.mean([r.recorded_betti0 for r in runs]))
    removed = [np.stack([remove_small_components(m, size) for m in r.mortar]) for r in runs]
    post = _masks_row(arm, POST_PROCESSING_LABEL.format(A=size), size, runs, removed,
                      val_means[size])
    return [as_trained, post]


def chapter_rows(
    runs: Mapping[str, Sequence],
    grid: Sequence[int] = MIN_SIZE_GRID,
    load_truth: Callable[[Sequence[int]], np.ndarray] | None = None,
) -> list[dict]:
    """The table rows of chapter-8 runs, two per arm (:func:`arm_rows`). ``runs``: ``{arm:
    [run folder or (run folder, config)]}``, e.g. :func:`finished_runs` or the ``"final"`` of
    :func:`topobook.study.topomortar_study.chapter_plan`. ``load_truth``: as in
    :func:`load_run_predictions` (the labels are read once per set of image numbers)."""
    load_truth = _load_mortar_truth if load_truth is None else load_truth
    cache: dict[tuple[int, ...], np.ndarray] = {}

    def cached_truth(numbers: Sequence[int]) -> np.ndarray:
        key = tuple(numbers)
        if key not in cache:
            cache[key] = np.asarray(load_truth(key))
        return cache[key]

    rows = []
    for arm, arm_runs in runs.items():
        dirs = [r[0] if isinstance(r, tuple | list) else r for r in arm_runs]
        rows += arm_rows(arm, [load_run_predictions(d, cached_truth) for d in dirs], grid)
    return rows


def results_dir_rows(
    results_dir,
    grid: Sequence[int] = MIN_SIZE_GRID,
    load_truth: Callable[[Sequence[int]], np.ndarray] | None = None,
) -> list[dict]:
    """:func:`chapter_rows` of every finished run folder of ``results_dir``
    (:func:`finished_runs`: each swept λ is its own arm). Raises ``ValueError`` if there is
    none."""
    runs = finished_runs(results_dir)
    if not runs:
        raise ValueError(
            f"{Path(results_dir) / 'topomortar'} holds no finished run (metrics.json and "
            "predictions.npz): train chapter 8's runs first"
        )
    return chapter_rows(runs, grid, load_truth)


# ----------------------------------------------------------------------- the authors' side


def published_rows(size: str = "large", table=None, metric: str = "betti0_error") -> list[dict]:
    """The authors' published per-image results as rows of :data:`ROW_KEYS`, one per loss.

    ``table``: a frame like :func:`topobook.datasets.topomortar.load_published_results` (columns
    ``loss``, ``seed``, ``id`` and the scores; default: that function's, training set ``size``,
    the 50 in-distribution test images). ``metric``: the per-image error whose distribution is
    reported (default the whole-image ``betti0_error``; ``betti0_error_local`` also works).
    Their files hold per-image scores, not predictions: the component columns, ``min_size``
    and the validation column are NaN (nothing can be post-processed). Raises ``ValueError`` if
    a loss lacks some (seed, image) pair."""
    if table is None:
        table = load_published_results(size)
    if metric not in table.columns:
        raise ValueError(f"metric {metric!r} is not a column of the table")
    order = [loss for loss in PUBLISHED_LOSSES if loss in set(table["loss"])]
    order += sorted(set(table["loss"]) - set(order))
    rows = []
    for loss in order:
        part = table[table["loss"] == loss]
        errors = part.pivot(index="seed", columns="id", values=metric)
        if errors.isna().any().any():
            raise ValueError(f"the published results of {loss} lack some (seed, image) pairs")
        rows.append({
            "arm": loss,
            "row": PUBLISHED_LABEL,
            "min_size": math.nan,
            "runs": errors.shape[0],
            "images": errors.shape[1],
            **_distribution_columns(errors.to_numpy(np.float64)),
            **{k: math.nan for k in ROW_KEYS if k.startswith(("extra_", "spurious", "lost"))},
            "betti1_error": float(part["betti1_error"].mean()),
            "dice": float(part["dice"].mean()),
            "val_betti0_mean": math.nan,
            "betti0_mean_recorded": math.nan,
        })
    return rows
