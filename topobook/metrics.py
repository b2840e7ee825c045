"""Segmentation metrics: the pixel metrics of the paper and two variants of the Betti error.

Foreground = cell = 1 throughout: TP counts cell pixels predicted as cell.

Two Betti errors, both reported in the book:

``"paper"``
    exactly the procedure of the authors' notebook: 10 windows of 64x64 on the *diagonal* of the
    image, ``[i:i+64, i:i+64]`` with ``i`` drawn uniformly from ``[0, 383)``, and per window the
    absolute difference between the numbers of finite H0 bars of the lower-star filtration
    (ripser's ``lower_star_img``, 8-neighbour) of the binary prediction and of the truth. With
    cell = 1 that counts the 8-connected components of *membrane* pixels minus one: only beta_0
    of the membranes, not beta_0 + beta_1 of the cells.
``"standard"``
    the usual definition (TopoNet, clDice, Betti matching): random windows (seeded), and per
    window ``|b0(pred) - b0(truth)| + |b1(pred) - b1(truth)|`` of the foreground, with the
    connectivity of ``complex`` (``"cubical"``: cells 8-connected, holes 4-connected).

The ISBI 2012 challenge's scores, :func:`isbi_scores`: V_rand and V_info after border thinning,
the best over eleven thresholds of the cell probability, computed as Fiji's
Trainable_Segmentation computes them (:func:`thin_boundaries`,
:func:`foreground_restricted_scores`).

:func:`cldice`: clDice (Shit et al., CVPR 2021) of the membranes of a binary prediction.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from topobook.persistence import betti_numbers, check_binary, check_image

# The paper's Table I (Sofi et al. 2023), as published: one training run per column.
PAPER_TABLE_I = {
    "baseline": {
        "accuracy": 0.899,
        "completeness": 0.975,
        "correctness": 0.907,
        "quality": 0.886,
        "dice": 0.939,
        "betti_paper": 1.16,
    },
    "topo_loss": {
        "accuracy": 0.910,
        "completeness": 0.951,
        "correctness": 0.938,
        "quality": 0.894,
        "dice": 0.944,
        "betti_paper": 1.02,
    },
    "topo_input": {
        "accuracy": 0.909,
        "completeness": 0.971,
        "correctness": 0.92,
        "quality": 0.895,
        "dice": 0.945,
        "betti_paper": 1.1,
    },
}
# The authors' notebook code run on the book's split (slices 0-23 / 24-29) by the project, one
# run each, with their network, hyper-parameters and metric code (figures from the project's
# issue tracker; the fourth column is the notebook's own report).
AUTHORS_NOTEBOOK_RUN = {
    "baseline": {
        "accuracy": 0.909,
        "completeness": 0.966,
        "correctness": 0.924,
        "quality": 0.895,
        "dice": 0.944,
        "betti_paper": 1.48,
    },
    "topo_loss": {
        "accuracy": 0.904,
        "completeness": 0.967,
        "correctness": 0.918,
        "quality": 0.890,
        "dice": 0.942,
        "betti_paper": 1.05,
    },
    "topo_input": {
        "accuracy": 0.909,
        "completeness": 0.970,
        "correctness": 0.921,
        "quality": 0.895,
        "dice": 0.945,
        "betti_paper": 0.85,
    },
    "topo_loss+topo_input": {
        "accuracy": 0.905,
        "completeness": 0.952,
        "correctness": 0.931,
        "quality": 0.890,
        "dice": 0.942,
        "betti_paper": 1.7,
    },
}
PIXEL_METRICS = ("accuracy", "completeness", "correctness", "quality", "dice")


def _check_pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    p, t = check_binary(pred, "pred"), check_binary(truth, "truth")
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and truth {t.shape} must have the same shape")
    return p.astype(bool), t.astype(bool)


def _ratio(numerator: float, denominator: float) -> float:
    # 0/0 means nothing to get wrong (no cell predicted and none present): a perfect score
    return 1.0 if denominator == 0 else numerator / denominator


def pixel_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Accuracy, completeness (recall), correctness (precision), quality (TP/(TP+FP+FN)) and
    Dice of a binary prediction against the truth, both ``(H, W)`` in {0, 1}, 1 = cell."""
    p, t = _check_pair(pred, truth)
    tp = float(np.sum(p & t))
    fp = float(np.sum(p & ~t))
    fn = float(np.sum(~p & t))
    tn = float(np.sum(~p & ~t))
    return {
        "accuracy": (tp + tn) / (tp + tn + fp + fn),
        "completeness": _ratio(tp, tp + fn),
        "correctness": _ratio(tp, tp + fp),
        "quality": _ratio(tp, tp + fp + fn),
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def paper_positions(
    image_size: int, patch_size: int = 64, n_patches: int = 10, seed: int = 0
) -> list[tuple[int, int]]:
    """The authors' windows: ``(i, i)`` with ``i = int(uniform(0, 383))``, on the diagonal."""
    if image_size < 383 + patch_size - 1:
        raise ValueError(
            f"the paper's windows need images of at least {383 + patch_size - 1} "
            f"pixels, got {image_size}; pass positions= instead"
        )
    rng = np.random.default_rng(seed)
    return [(int(i), int(i)) for i in rng.uniform(0, 383, n_patches)]


def random_positions(
    shape: tuple[int, int], patch_size: int, n_patches: int, seed: int = 0
) -> list[tuple[int, int]]:
    """``n_patches`` top-left corners drawn uniformly over all windows that fit."""
    h, w = shape
    if patch_size > min(h, w):
        raise ValueError(f"patch_size {patch_size} does not fit an image of {h}x{w}")
    rng = np.random.default_rng(seed)
    return [
        (int(r), int(c))
        for r, c in zip(
            rng.integers(0, h - patch_size + 1, n_patches),
            rng.integers(0, w - patch_size + 1, n_patches),
            strict=True,
        )
    ]


def _finite_h0_bars_lower_star(binary: np.ndarray) -> int:
    """The number of finite H0 bars of ripser's ``lower_star_img`` of a binary image, counted
    directly: value-0 (membrane) pixels enter first and form the 8-connected components of the
    lower-star filtration; at level 1 they all merge, so every component but the oldest gives a
    finite bar (zero-length bars are not reported). Equal to ripser's count (tested), about a
    hundred times faster."""
    n_components = ndimage.label(binary == 0, structure=_EIGHT)[1]
    return max(n_components - 1, 0)


_EIGHT = np.ones((3, 3), dtype=bool)
_FOUR = ndimage.generate_binary_structure(2, 1)
# (foreground, background) connectivity of the complexes whose Betti numbers labels give
_LABEL_CONNECTIVITY = {"cubical": (_EIGHT, _FOUR), "vertex": (_FOUR, _EIGHT)}


def _betti_by_labels(mask: np.ndarray, complex: str) -> tuple[int, int]:
    """``(b0, b1)`` of the foreground of a binary mask by connected-component labelling: b0 the
    foreground components, b1 the background components that do not touch the border. Equal to
    :func:`topobook.persistence.betti_numbers` for ``"cubical"`` and ``"vertex"`` (tested)."""
    foreground, background = _LABEL_CONNECTIVITY[complex]
    b0 = ndimage.label(mask, structure=foreground)[1]
    labels, n_background = ndimage.label(~mask, structure=background)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return int(b0), int(n_background - np.count_nonzero(border))


def betti_error(
    pred: np.ndarray,
    truth: np.ndarray,
    variant: str = "standard",
    patch_size: int = 64,
    n_patches: int | None = None,
    seed: int = 0,
    positions: list[tuple[int, int]] | None = None,
    complex: str = "cubical",
) -> float:
    """Mean Betti error over windows of a binary prediction against the truth (``(H, W)`` in
    {0, 1}, 1 = cell). See the module docstring for the two variants. ``positions`` (top-left
    corners) overrides the sampling; ``n_patches`` defaults to 10 (paper) or 100 (standard)."""
    p, t = _check_pair(pred, truth)
    if variant not in ("paper", "standard"):
        raise ValueError(f"variant must be 'paper' or 'standard', got {variant!r}")
    if positions is None:
        if variant == "paper":
            positions = paper_positions(min(p.shape), patch_size, n_patches or 10, seed)
        else:
            positions = random_positions(p.shape, patch_size, n_patches or 100, seed)
    errors = []
    for r, c in positions:
        if r < 0 or c < 0 or r + patch_size > p.shape[0] or c + patch_size > p.shape[1]:
            raise ValueError(f"window at ({r}, {c}) of size {patch_size} leaves the image")
        wp = p[r : r + patch_size, c : c + patch_size]
        wt = t[r : r + patch_size, c : c + patch_size]
        if variant == "paper":
            errors.append(abs(_finite_h0_bars_lower_star(wp) - _finite_h0_bars_lower_star(wt)))
        else:
            if complex in _LABEL_CONNECTIVITY:  # the same numbers, without persistence
                bp, bt = _betti_by_labels(wp, complex), _betti_by_labels(wt, complex)
            else:
                bp, bt = betti_numbers(wp, complex), betti_numbers(wt, complex)
            errors.append(abs(bp[0] - bt[0]) + abs(bp[1] - bt[1]))
    return float(np.mean(errors))


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of the mean (0 for one value)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("no values")
    if values.size == 1:
        return float(values[0]), 0.0
    half = (
        stats.t.ppf(0.5 + confidence / 2, values.size - 1)
        * values.std(ddof=1)
        / np.sqrt(values.size)
    )
    return float(values.mean()), float(half)


# ---------------------------------------------------------------------------------------------
# The ISBI 2012 challenge's V_rand and V_info after border thinning, as Fiji computes them.
#
# Sources (GPL Java, read, not copied; repository fiji/Trainable_Segmentation):
#   src/main/java/trainableSegmentation/metrics/RandError.java: the threshold loop
#       ``for (double th = min; th <= max; th += step)``, the binarisation of both images by
#       ``getPixelValue(x, y) > th`` on 32-bit copies (``convertToFloat``), 4-connected
#       components (Utils.connectedComponents(..., 4): regions of pixels > 0), the
#       foreground-restricted statistics with N^2 normalisation
#       (getForegroundRestrictedRandIndexStatsN2: truth label 0 pruned, proposal label 0 as
#       singletons through the ``aux / n`` terms), and the best F-score taken with
#       ``if (fScore > maxFScore)`` from 0;
#   .../metrics/VariationOfInformation.java: foregroundRestrictedFscore (natural logs,
#       ``- aux * log(n)`` singleton terms, precision (H(A) - H(A|B)) / H(A), recall
#       (H(B) - H(B|A)) / H(B), the H = 0 special cases), per-slice F-scores averaged;
#   .../metrics/ClassificationStatistics.java: precision 1 when FP = 0, recall 1 when FN = 0,
#       F-score 0 unless precision + recall > 0;
#   .../utils/WatershedTransform2D.java, Neighborhood2DC4.java, PixelRecord.java: the
#       Vincent-Soille watershed (FIFO flooding, 4-connectivity, dams = 0) of the package;
#   the challenge's evaluation script (imagej.net, "Segmentation evaluation after border
#       thinning - Script", 2016): getMaximalVRandAfterThinning(0.0, 1.0, 0.1, true) and
#       getMaximalVInfoAfterThinning(0.0, 1.0, 0.1).
# The versions of RandError.java and VariationOfInformation.java that could be read predate the
# two "AfterThinning" methods, so the thinning step itself is inferred (see isbi_scores).
# ---------------------------------------------------------------------------------------------


def _fiji_thresholds(start: float = 0.0, stop: float = 1.0, step: float = 0.1) -> tuple:
    # Fiji's loop ``for (double th = min; th <= max; th += step)``: the sum is accumulated in
    # double precision, so the thresholds are 0.1, 0.2, 0.30000000000000004, ...,
    # 0.7999999999999999, 0.8999999999999999 and 0.9999999999999999 (not 1.0)
    out, th = [], start
    while th <= stop:
        out.append(th)
        th += step
    return tuple(out)


ISBI_THRESHOLDS = _fiji_thresholds()
"""The eleven thresholds of the challenge's sweep, exactly as Fiji's loop produces them."""

# Fiji's Neighborhood2DC4 order, with x = column and y = row: (x-1, y), (x, y-1), (x+1, y),
# (x, y+1); _OPPOSITE[d] is the direction that leads back.
_OPPOSITE = np.array([2, 3, 0, 1], dtype=np.int64)[:, None]
_NO_LABEL = np.iinfo(np.int32).max


@lru_cache(maxsize=4)
def _neighbour_table(height: int, width: int) -> np.ndarray:
    """``(4, H*W)`` raveled indices of the 4 neighbours of every pixel in Fiji's order; a
    neighbour outside the image is the sentinel index ``H*W``."""
    n = height * width
    index = np.arange(n, dtype=np.int64).reshape(height, width)
    table = np.full((4, height, width), n, dtype=np.int64)
    table[0, :, 1:] = index[:, :-1]  # x - 1
    table[1, 1:, :] = index[:-1, :]  # y - 1
    table[2, :, :-1] = index[:, 1:]  # x + 1
    table[3, :-1, :] = index[1:, :]  # y + 1
    table = table.reshape(4, n)
    table.flags.writeable = False
    return table


def _resolve(candidates: np.ndarray) -> np.ndarray:
    """Label of pixels from their already labelled neighbours (``(4, m)``: -1 not labelled yet,
    0 a dam, > 0 a basin): the basin if exactly one distinct basin is among them, else a dam."""
    positive = candidates > 0
    high = np.where(positive, candidates, 0)
    low = np.where(positive, candidates, _NO_LABEL)
    high = np.maximum(np.maximum(high[0], high[1]), np.maximum(high[2], high[3]))
    low = np.minimum(np.minimum(low[0], low[1]), np.minimum(low[2], low[3]))
    return np.where((high > 0) & (high == low), high, 0).astype(np.int32)


def thin_boundaries(cells: np.ndarray) -> np.ndarray:
    """Thin the boundaries of a binary segmentation to one-pixel dams, as the ISBI challenge does.

    ``cells``: ``(H, W)`` boolean, True = cell (above the threshold). Returns an int32 label
    image: the 4-connected components of ``cells`` (labels 1, 2, ...) grown over the boundary
    pixels until they meet; the pixels where two of them meet keep label 0 (the "dams").

    This is the watershed that Fiji's Trainable_Segmentation uses, ``WatershedTransform2D``
    (Vincent and Soille's flooding by a FIFO queue, 4-connectivity), applied to the binary image
    with the cells as the low level: every cell component is a basin, and the boundary is flooded
    breadth-first from them. A boundary pixel is taken off the queue in Fiji's order (first the
    pixels touching a cell, column by column, then each wave in the order its pixels were put on
    the queue, neighbours in the order x-1, y-1, x+1, y+1) and takes the label of its already
    labelled neighbours if they name exactly one basin, else it becomes a dam. The order decides
    which of two equidistant pixels becomes the dam, so it is reproduced exactly here, wave by
    wave with numpy, rather than with :func:`skimage.segmentation.watershed`, whose heap breaks
    such ties differently (its ``watershed_line`` differs from Fiji's by a few pixels per slice).
    No cell at all: Fiji's flooding makes every 4-connected component of the image one basin
    (for a boundary-only image, one label everywhere).
    """
    from skimage.measure import label

    cells = np.asarray(cells, dtype=bool)
    if cells.ndim != 2:
        raise ValueError(f"cells must be a 2-D array (H, W), got shape {cells.shape}")
    height, width = cells.shape
    if not cells.any():
        return label(np.ones_like(cells), connectivity=1).astype(np.int32)
    basins = label(cells, connectivity=1).astype(np.int32)
    if cells.all():
        return basins

    n = height * width
    neighbours = _neighbour_table(height, width)
    # geodesic 4-distance to the nearest cell = the taxicab distance (a shortest taxicab path to
    # the nearest cell pixel crosses no other cell pixel)
    dist = ndimage.distance_transform_cdt(~cells, metric="taxicab").astype(np.int64).ravel()
    # one sentinel pixel at index n (outside the image): never labelled, never a neighbour
    labels = np.append(np.where(cells.ravel(), basins.ravel(), -1), -1).astype(np.int32)
    dist_ext = np.append(dist, np.iinfo(np.int64).max)
    rank = np.full(n + 1, -1, dtype=np.int64)

    order = np.argsort(dist, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(dist))))
    # wave 1 in Fiji's scan order: x (column) outer, y (row) inner
    layer = order[bounds[1] : bounds[2]]
    layer = layer[np.argsort((layer % width) * height + layer // width, kind="stable")]
    for k in range(1, int(dist.max()) + 1):
        if k > 1:
            # each pixel joins the queue when its first neighbour of wave k-1 is taken off:
            # order by (that neighbour's place in the queue, direction of the step)
            layer = order[bounds[k] : bounds[k + 1]]
            near = neighbours[:, layer]
            key = np.where(dist_ext[near] == k - 1, rank[near] * 4 + _OPPOSITE, n * 4 + 4)
            key = np.minimum(np.minimum(key[0], key[1]), np.minimum(key[2], key[3]))
            layer = layer[np.argsort(key, kind="stable")]
        place = np.arange(layer.size)
        rank[layer] = place
        near = neighbours[:, layer]
        near_dist = dist_ext[near]
        lower = near_dist < k  # earlier waves and the cells: labelled before any of this wave
        same = (near_dist == k) & (rank[near] < place)  # this wave, taken off earlier
        lower_labels = np.where(lower, labels[near], -1)
        labels[layer] = _resolve(lower_labels)
        cols = np.flatnonzero(same.any(axis=0))
        if cols.size:
            # neighbours of the same wave taken off earlier count too: relax to the fixed point
            # (the dependencies point to earlier pixels only, so it is the sequential result)
            sub, sub_near, sub_same = layer[cols], near[:, cols], same[:, cols]
            sub_lower = lower_labels[:, cols]
            current = labels[sub]
            while True:
                new = _resolve(np.where(sub_same, labels[sub_near], sub_lower))
                if np.array_equal(new, current):
                    break
                labels[sub] = current = new
    return labels[:n].reshape(height, width)


def _contingency(truth_labels: np.ndarray, proposal_labels: np.ndarray):
    """Counts over the truth's foreground (label > 0): ``n``, the nonzero joint counts of
    (truth label, proposal label > 0), the truth segment sizes, the proposal segment sizes
    (label > 0) and ``n0``, the number of foreground pixels with proposal label 0."""
    mask = truth_labels > 0
    g = truth_labels[mask].astype(np.int64)
    p = proposal_labels[mask].astype(np.int64)
    n = g.size
    zero = p == 0
    n0 = int(zero.sum())
    g, p = g[~zero], p[~zero]
    truth_sizes = np.bincount(truth_labels[mask].astype(np.int64))
    truth_sizes = truth_sizes[truth_sizes > 0]
    if p.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return n, empty, truth_sizes, empty, n0
    # compact the proposal labels present (no sort), then count pairs
    present = np.zeros(int(p.max()) + 1, dtype=bool)
    present[p] = True
    compact = np.cumsum(present) - 1
    p = compact[p]
    n_prop = int(present.sum())
    n_truth = int(g.max()) + 1
    if n_truth * n_prop <= 4_000_000:
        joint = np.bincount(g * n_prop + p, minlength=n_truth * n_prop)
        joint = joint[joint > 0]
    else:
        joint = np.unique(g * n_prop + p, return_counts=True)[1]
    proposal_sizes = np.bincount(p)
    return n, joint, truth_sizes, proposal_sizes[proposal_sizes > 0], n0


def _rand_f_score(n, joint, truth_sizes, proposal_sizes, n0) -> float:
    # RandError.getForegroundRestrictedRandIndexStatsN2 with ClassificationStatistics: over the
    # n^2 ordered pairs of truth-foreground pixels, TP = sum n_ij^2 + n0, TP + FP =
    # sum b_j^2 + n0, TP + FN = sum a_i^2 (each proposal label-0 pixel a singleton)
    tp = float(np.sum(joint.astype(np.float64) ** 2)) + n0
    fp = float(np.sum(proposal_sizes.astype(np.float64) ** 2)) + n0 - tp
    fn = float(np.sum(truth_sizes.astype(np.float64) ** 2)) - tp
    if n == 0:
        return 0.0  # Fiji: NaN precision and recall, F-score left at 0
    precision = 1.0 if fp == 0 else tp / (tp + fp)
    recall = 1.0 if fn == 0 else tp / (tp + fn)
    return 2.0 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _info_f_score(n, joint, truth_sizes, proposal_sizes, n0) -> float:
    # VariationOfInformation.foregroundRestrictedFscore: natural logarithms (the base cancels),
    # each proposal label-0 pixel a singleton (the "- aux * log(n)" terms); precision
    # I / H(truth), recall I / H(proposal); F = 2 I / (H(truth) + H(proposal))
    if n == 0:
        return float("nan")

    def plogp(counts):
        q = counts.astype(np.float64) / n
        return float(np.sum(q * np.log(q)))

    aux = n0 / n
    sum_a = plogp(truth_sizes)
    sum_b = plogp(proposal_sizes) - aux * np.log(n)
    sum_ab = plogp(joint) - aux * np.log(n)
    h_a, h_b = -sum_a, -sum_b
    h_a_given_b, h_b_given_a = sum_b - sum_ab, sum_a - sum_ab
    if h_b == 0:  # Fiji tests H(truth) = 0 first, then H(proposal) = 0, which wins
        precision, recall = 1.0, 0.0
    elif h_a == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = (h_a - h_a_given_b) / h_a
        recall = (h_b - h_b_given_a) / h_b
    total = precision + recall
    return 2.0 * precision * recall / total if total != 0 else float("nan")


def foreground_restricted_scores(
    truth_labels: np.ndarray, proposal_labels: np.ndarray
) -> dict[str, float]:
    """V_rand and V_info of a proposal against the truth at one threshold (Fiji's formulas).

    Both ``(H, W)`` integer label images, 0 = boundary. Only the truth's foreground counts
    (pixels with truth label > 0); there, every pixel with proposal label 0 is a segment of its
    own (a singleton). With p_ij the fraction of those n pixels in truth segment i and proposal
    segment j, t_i and s_j the segment fractions:

    * ``v_rand`` = 2 sum p_ij^2 / (sum t_i^2 + sum s_j^2), the F-score of the Rand split and
      merge scores (a singleton adds 1/n^2 to the numerator and to sum s_j^2);
    * ``v_info`` = 2 I(S; T) / (H(S) + H(T)), the F-score of the information-theoretic split
      and merge scores; Fiji's conventions: 0 when H(T) = 0 (a truth with one segment) or
      H(S) = 0, NaN when I = 0 with both entropies positive (0 / 0).

    A truth without foreground gives ``v_rand`` 0 and ``v_info`` NaN, as in Fiji.
    """
    truth_labels = np.asarray(truth_labels)
    proposal_labels = np.asarray(proposal_labels)
    if truth_labels.shape != proposal_labels.shape:
        raise ValueError(
            f"truth_labels {truth_labels.shape} and proposal_labels {proposal_labels.shape} "
            "must have the same shape"
        )
    counts = _contingency(truth_labels, proposal_labels)
    return {"v_rand": _rand_f_score(*counts), "v_info": _info_f_score(*counts)}


def _check_isbi_inputs(cell_probability, truth) -> tuple[np.ndarray, np.ndarray]:
    probability = check_image(cell_probability, "cell_probability")
    if probability.min() < 0 or probability.max() > 1:
        raise ValueError(
            f"cell_probability must lie in [0, 1], got values in "
            f"[{probability.min():g}, {probability.max():g}]"
        )
    t = np.asarray(truth.detach().cpu().numpy() if hasattr(truth, "detach") else truth)
    if t.ndim == 2 and t.size and np.isin(t, (0, 255)).all() and (t == 255).any():
        raise ValueError(
            "truth must be binary with values in {0, 1} (1 = cell); it looks like an ISBI label "
            "file with 255 = cell: pass truth // 255"
        )
    t = check_binary(truth, "truth")
    if probability.shape != t.shape:
        raise ValueError(
            f"cell_probability {probability.shape} and truth {t.shape} must have the same shape"
        )
    return probability, t


def _isbi_curve(cell_probability, truth) -> list[dict[str, float]]:
    """V_rand and V_info at each of :data:`ISBI_THRESHOLDS` (see :func:`isbi_scores`)."""
    from skimage.measure import label

    probability, t = _check_isbi_inputs(cell_probability, truth)
    # Fiji reads the proposal as a 32-bit float image and compares each value, widened to
    # double, with the double threshold: float32(0.1) > 0.1, float32(0.9) < 0.8999999999999999
    probability = probability.astype(np.float32).astype(np.float64)
    # the truth is binarised with the same threshold; for {0, 1} that is ``truth == 1`` at every
    # threshold of the sweep (all below 1)
    truth_labels = label(t.astype(bool), connectivity=1)
    curve, previous, scores = [], None, None
    for threshold in ISBI_THRESHOLDS:
        cells = probability > threshold
        if previous is None or not np.array_equal(cells, previous):
            scores = foreground_restricted_scores(truth_labels, thin_boundaries(cells))
            previous = cells
        curve.append({"threshold": threshold, **scores})
    return curve


def isbi_scores(cell_probability: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The ISBI 2012 challenge's V_rand and V_info after border thinning, for one slice.

    ``cell_probability``: ``(H, W)`` in [0, 1], the probability of **cell** (1 = cell, the
    book's convention; the challenge's boundary maps are the same thing, 255 / 1 = cell).
    ``truth``: ``(H, W)`` in {0, 1}, 1 = cell (the book's masks; an ISBI label file is 255 =
    cell, 0 = membrane: divide it by 255 first). Returns ``{"v_rand": ..., "v_info": ...}``,
    each the best value over the challenge's eleven thresholds, as Fiji's
    ``RandError.getMaximalVRandAfterThinning(0.0, 1.0, 0.1, true)`` and
    ``VariationOfInformation.getMaximalVInfoAfterThinning(0.0, 1.0, 0.1)`` compute them (the
    challenge's official scores since 2015, Arganda-Carreras et al., Front. Neuroanat. 9:142):

    1. for each threshold ``t`` of :data:`ISBI_THRESHOLDS` (0.0, 0.1, ..., accumulated in double
       precision as Fiji's loop does, so the last is 0.9999999999999999): cell = ``p > t``
       (strictly), ``p`` read as a 32-bit float as Fiji reads the image;
    2. the truth's segments: its 4-connected cell components; the proposal's: the 4-connected
       components of ``p > t``, then the boundaries **of the proposal** thinned
       (:func:`thin_boundaries`: the components flooded over the boundary, one-pixel dams
       left); the truth is not thinned;
    3. :func:`foreground_restricted_scores`: only the truth's cell pixels count, each remaining
       proposal boundary (dam) pixel there is a singleton segment;
    4. each score's maximum over the thresholds (starting from 0: an undefined F-score never
       wins); V_rand and V_info may peak at different thresholds.

    How it differs from :func:`skimage.metrics.adapted_rand_error` (1 - an F-score of the Rand
    index that also ignores the truth's label 0): no border thinning, no threshold sweep, the
    proposal's label-0 pixels form one segment instead of singletons, and its precision and
    recall are named the other way round. :func:`skimage.metrics.variation_of_information`
    returns the two conditional entropies, not the normalised F-score V_info.

    Read in Fiji's source: every step but the thinning (as its foreground-restricted methods
    without thinning do it), and the watershed class that :func:`thin_boundaries` reproduces
    exactly. Inferred, because the source of Fiji's ``...AfterThinning`` methods could not be
    read: that only the proposal is thinned, by that watershed of the binarised proposal (as a
    MATLAB port of these scores, ``vl_nnrandindex``, does with ``watershed(~bw, 4)``), its dams
    kept as boundary. On real slices, thinning the truth too would lower V_rand by about 0.01;
    other tie rules for the dams change the scores by about 1e-4
    (``benchmarks/isbi_metrics.py --conventions``). Not compared with numbers computed by Fiji.
    A threshold with no cell pixel gives one segment over the whole image (the watershed of a
    constant image is one basin), so an all-membrane map scores like an all-cell map.

    Cost: about 0.3 s for a 512x512 slice, 0.6 s for uniform noise (thousands of components
    at every threshold), on 2 cores (``benchmarks/isbi_metrics.py``).
    """
    best = {"v_rand": 0.0, "v_info": 0.0}
    for row in _isbi_curve(cell_probability, truth):
        for key in best:
            if row[key] > best[key]:  # Fiji's ``if (fScore > maxFScore)``: NaN never wins
                best[key] = float(row[key])
    return best


# ---------------------------------------------------------------------------------------------
# clDice of the membranes (Shit et al., CVPR 2021; reference: jocpae/clDice,
# cldice_metric/cldice.py)
# ---------------------------------------------------------------------------------------------


def cldice(pred: np.ndarray, truth: np.ndarray) -> float:
    """clDice (Shit et al., CVPR 2021) of the **membranes** of a binary prediction.

    ``pred`` and ``truth``: ``(H, W)`` in {0, 1}, 1 = cell. The thin structure is the membrane:
    P = ``pred == 0``, G = ``truth == 0``; S = :func:`skimage.morphology.skeletonize`
    (2-D, as the reference metric ``cldice_metric/cldice.py`` of jocpae/clDice uses)::

        Tprec = |S(P) & G| / |S(P)|,   Tsens = |S(G) & P| / |S(G)|,
        clDice = 2 Tprec Tsens / (Tprec + Tsens).

    (The reference code computes the same two ratios with the names swapped; clDice is
    symmetric in them.) The reference divides by zero when a mask has no membrane; here an empty
    skeleton makes its ratio 1 (no skeleton pixel misses the other mask), and clDice is 0 when
    Tprec + Tsens = 0. So no membrane in either mask gives 1, membrane in only one of them gives
    0. (A nonempty 2-D mask always has a nonempty skeleton.)
    """
    from skimage.morphology import skeletonize

    p, t = _check_pair(pred, truth)
    membrane_pred, membrane_truth = ~p, ~t
    skeleton_pred = skeletonize(membrane_pred)
    skeleton_truth = skeletonize(membrane_truth)
    tprec = _ratio(float(np.sum(skeleton_pred & membrane_truth)), float(np.sum(skeleton_pred)))
    tsens = _ratio(float(np.sum(skeleton_truth & membrane_pred)), float(np.sum(skeleton_truth)))
    if tprec + tsens == 0:
        return 0.0
    return 2.0 * tprec * tsens / (tprec + tsens)
