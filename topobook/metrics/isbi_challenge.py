"""The ISBI 2012 challenge's scores: V_rand and V_info after border thinning, as Fiji computes them.

One slice (:func:`isbi_scores`), a stack (:func:`isbi_stack_scores`, the challenge's own reading
of a stack) and the per-slice curves over thresholds (:func:`isbi_slice_curves`), built on the
border thinning (:func:`thin_boundaries`) and the foreground-restricted scores
(:func:`foreground_restricted_scores`). Foreground = cell = 1 throughout.

Sources (GPL Java, read for facts, not copied), repository fiji/Trainable_Segmentation, read at
commit 0c1783d805e486187affaa3e06d719a6eaf6ed26 (the stored version that has the
``...AfterThinning`` methods; the versions at 403a8d6 and 00f9ffa predate them):

* ``src/main/java/trainableSegmentation/metrics/RandError.java``:
  ``getMaximalVRandAfterThinning(min, max, step, perSliceAverage)`` takes the largest ``fScore``
  of ``getForegroundRestrictedRandAfterThinningStats(min, max, step, perSliceAverage)`` with
  ``if (stat.fScore > maxFScore)`` from ``maxFScore = 0`` (the first of equal maxima wins, NaN
  never wins); that loop is ``for (double th = min; th <= max; th += step)`` (accumulated in
  double precision) after a check ``0 <= min <= max <= 1``. Per threshold,
  ``getForegroundRestrictedRandAfterThinningStats(th, perSliceAverage)`` scores every slice with
  ``getForegroundRestrictedRandAfterThinningStatsN2``, sums the slices' TP, TN, FP, FN and
  ``fScore``, and with ``perSliceAverage = true`` (the challenge's script) sets the stack's
  ``fScore`` to the **sum of the slice F-scores divided by the number of slices** (a
  macro-average: each slice's precision and recall give its own F-score first; with ``false``
  the F-score would come from the summed counts). Per slice: the truth is binarised with
  ``label.getPixelValue(x, y) > th`` and labelled by 4-connected components
  (``Utils.connectedComponents(..., 4)``): the truth is **not thinned**; the proposal is
  binarised the other way round, ``proposal.getPixelValue(x, y) > th ? 0 : 255`` (cells black,
  boundary white), and thinned by ``new WatershedTransform2D(binaryProposal, 4).apply()``; both
  images are ``convertToFloat()`` copies, so the proposal is compared as a 32-bit float widened
  to double. The scores of the two label images are ``getForegroundRestrictedRandIndexStatsN2``
  (N^2 normalisation, truth label 0 pruned, proposal label 0 pixels as singletons through the
  ``aux / n`` terms).
* ``.../metrics/VariationOfInformation.java``: ``getMaximalVInfoAfterThinning(min, max, step)``
  (no per-slice flag) takes the largest value of ``getForegroundRestrictedScoresAfterThinning``
  with ``if (f > maxScore)`` from 0; per threshold, ``getForegroundRestrictedScoreAfterThinning``
  returns the **sum of the slice scores divided by the number of slices**, so one NaN slice
  makes that threshold's stack V_info NaN, and a NaN threshold never wins. Per slice,
  ``foregroundRestrictedScoreAfterThinningN2`` binarises and thins exactly as for V_rand, then
  ``foregroundRestrictedFscore``: natural logarithms, ``- aux * log(n)`` singleton terms,
  precision ``(H(A) - H(A|B)) / H(A)``, recall ``(H(B) - H(B|A)) / H(B)``, then ``if (ha == 0)``
  precision 0, recall 1, then ``if (hb == 0)`` precision 1, recall 0 (the second test wins),
  and ``2 p r / (p + r)`` (NaN when p + r = 0).
* ``.../metrics/ClassificationStatistics.java`` (same commit): precision 1 when FP = 0, recall 1
  when FN = 0, ``fScore`` stays 0 unless ``precision + recall > 0`` (so a slice whose truth has
  no cell pixel, n = 0, where every count is NaN, has V_rand 0).
* ``.../utils/WatershedTransform2D.java``, ``Neighborhood2DC4.java``, ``PixelRecord.java``: the
  Vincent-Soille watershed (FIFO flooding, 4-connectivity, dams = 0) that
  :func:`thin_boundaries` reproduces (tested against a line-by-line port).
* The challenge's evaluation script (imagej.net, "Segmentation evaluation after border
  thinning - Script"): ``getMaximalVRandAfterThinning(0.0, 1.0, 0.1, true)`` and
  ``getMaximalVInfoAfterThinning(0.0, 1.0, 0.1)``.

Not compared with numbers computed by Fiji itself (no Java here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from topobook.topology.persistence import check_binary, check_image
from topobook.topology.unionfind import _component_runs


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


@njit(cache=True, nogil=True)
def _label_runs(cells: np.ndarray, out: np.ndarray, out_width: int, offset: int, off: int) -> int:
    """Write the 4-connected components of ``cells`` ``(H, W)`` (bool) into the flat int32
    array ``out``: pixel ``(r, c)`` at ``out[offset + r * out_width + c]``, ``off`` off the
    cells, the components numbered 1, 2, ... in the raster order of their first pixel (the
    numbering of :func:`skimage.measure.label` and :func:`scipy.ndimage.label`); returns their
    number. The components come as runs (:func:`topobook.topology.unionfind._component_runs`),
    each root the first run of its component, so numbering the roots in run order numbers the
    components in the order of their first pixels."""
    height, width = cells.shape
    run_start, run_end, row_first, root = _component_runs(cells)
    run_label = np.empty(run_start.shape[0], np.int32)
    count = 0
    for k in range(run_start.shape[0]):
        if root[k] == k:
            count += 1
            run_label[k] = count
        else:  # the root comes first and has its number already
            run_label[k] = run_label[root[k]]
    for r in range(height):
        base = offset + r * out_width
        c = 0
        for k in range(row_first[r], row_first[r + 1]):
            while c < run_start[k]:
                out[base + c] = off
                c += 1
            while c < run_end[k]:
                out[base + c] = run_label[k]
                c += 1
        while c < width:
            out[base + c] = off
            c += 1
    return count


def label_cells(cells: np.ndarray) -> np.ndarray:
    """The 4-connected components of a binary image ``cells`` ``(H, W)`` (True = cell) as an
    int32 label image: 0 off the cells, the components 1, 2, ... numbered in the raster order of
    their first pixel. The same array as ``skimage.measure.label(cells, connectivity=1)``
    (tested), several times faster (:func:`_label_runs`)."""
    cells = np.ascontiguousarray(cells, dtype=bool)  # one compiled kernel
    if cells.ndim != 2:
        raise ValueError(f"cells must be a 2-D array (H, W), got shape {cells.shape}")
    labels = np.empty(cells.shape, np.int32)
    _label_runs(cells, labels.reshape(-1), cells.shape[1], 0, 0)
    return labels


# Fiji's Neighborhood2DC4 order, with x = column and y = row: (x-1, y), (x, y-1), (x+1, y),
# (x, y+1).


@njit(cache=True, nogil=True)
def _flood(labels: np.ndarray, height: int, width: int) -> None:
    """Fiji's FIFO flooding of the boundary, in place. ``labels``: ``((H+2) * (W+2),)`` int32,
    the image ``(H, W)`` framed by one ring of 0 (outside pixels: neither basin nor boundary, so
    no neighbour needs a bounds test), inside the basins (> 0) on the cells and -1 on the
    boundary; on return every boundary pixel holds its basin or 0 (a dam). The queue starts with
    the boundary pixels that touch a cell, column by column (x outer, y inner; filled in that
    order by a counting sort over the columns, the image read row by row); a pixel taken off it
    takes the one basin among its labelled neighbours, or becomes a dam when they name none or
    several, then queues its unqueued boundary neighbours in the order x-1, y-1, x+1, y+1. A
    queued pixel is marked -2 until it is taken off."""
    stride = width + 2
    queue = np.empty(height * width, np.int64)
    column_start = np.zeros(width + 1, np.int64)
    for y in range(height):
        for x in range(width):
            p = (y + 1) * stride + x + 1
            if labels[p] == -1 and (
                labels[p - 1] > 0
                or labels[p - stride] > 0
                or labels[p + 1] > 0
                or labels[p + stride] > 0
            ):
                labels[p] = -2
                column_start[x + 1] += 1
    for x in range(width):
        column_start[x + 1] += column_start[x]
    tail = column_start[width]
    for y in range(height):
        for x in range(width):
            p = (y + 1) * stride + x + 1
            if labels[p] == -2:
                queue[column_start[x]] = p
                column_start[x] += 1
    head = 0
    while head < tail:
        p = queue[head]
        head += 1
        left, up, right, down = labels[p - 1], labels[p - stride], labels[p + 1], labels[p + stride]
        high = max(max(left, up), max(right, down))
        one_basin = high > 0
        for near in (left, up, right, down):
            if near > 0 and near != high:
                one_basin = False
        labels[p] = high if one_basin else 0
        if left == -1:
            queue[tail], labels[p - 1] = p - 1, -2
            tail += 1
        if up == -1:
            queue[tail], labels[p - stride] = p - stride, -2
            tail += 1
        if right == -1:
            queue[tail], labels[p + 1] = p + 1, -2
            tail += 1
        if down == -1:
            queue[tail], labels[p + stride] = p + stride, -2
            tail += 1


@njit(cache=True, nogil=True)
def _thinned_labels(cells: np.ndarray) -> np.ndarray:
    """:func:`thin_boundaries` of ``cells`` ``(H, W)`` (bool) with at least one cell: the cells
    labelled into a frame of 0, the boundary -1 (:func:`_label_runs`), flooded
    (:func:`_flood`), the frame taken off."""
    height, width = cells.shape
    framed = np.zeros((height + 2) * (width + 2), np.int32)
    _label_runs(cells, framed, width + 2, width + 3, -1)
    _flood(framed, height, width)
    return framed.reshape(height + 2, width + 2)[1:-1, 1:-1].copy()


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
    which of two equidistant pixels becomes the dam, so the queue is run exactly, in numba
    (:func:`_flood`), rather than with :func:`skimage.segmentation.watershed`, whose heap breaks
    such ties differently (its ``watershed_line`` differs from Fiji's by a few pixels per slice).
    No cell at all: Fiji's flooding makes every 4-connected component of the image one basin
    (for a boundary-only image, one label everywhere). The cells are labelled in numba too
    (:func:`label_cells`, the same labels as :func:`skimage.measure.label`).
    """
    cells = np.ascontiguousarray(cells, dtype=bool)  # one compiled kernel
    if cells.ndim != 2:
        raise ValueError(f"cells must be a 2-D array (H, W), got shape {cells.shape}")
    if not cells.any():
        return np.ones(cells.shape, np.int32)  # one 4-connected component: the whole image
    return _thinned_labels(cells)


@njit(cache=True, nogil=True)
def _segment_index(truth: np.ndarray, every_pixel: bool):
    """The truth's segments of a flat integer label array ``truth`` ``(N,)``: the pixels
    counted are those with label > 0 (every pixel when ``every_pixel``, the labels then being
    >= 0). Returns ``(order, starts, sizes)``: ``order`` the counted pixels' indices grouped by
    label in increasing label order (a counting sort, indices increasing within a label), label
    ``g``'s pixels at ``order[starts[g]:starts[g + 1]]``, and ``sizes`` the nonzero segment
    sizes in increasing label order; ``starts`` is empty when a counted label is negative."""
    n = truth_max = 0
    for i in range(truth.shape[0]):
        g = truth[i]
        if every_pixel or g > 0:
            if g < 0:
                return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
            n += 1
            truth_max = max(truth_max, g)
    starts = np.zeros(truth_max + 2, np.int64)
    for i in range(truth.shape[0]):
        g = truth[i]
        if every_pixel or g > 0:
            starts[g + 1] += 1
    sizes = starts[1:][starts[1:] > 0].copy()
    for g in range(truth_max + 1):
        starts[g + 1] += starts[g]
    order = np.empty(n, np.int64)
    fill = starts[:-1].copy()
    for i in range(truth.shape[0]):
        g = truth[i]
        if every_pixel or g > 0:
            order[fill[g]] = i
            fill[g] += 1
    return order, starts, sizes


@njit(cache=True, nogil=True)
def _joint_counts(order: np.ndarray, starts: np.ndarray, proposal: np.ndarray):
    """The proposal's counts over the truth's segments (:func:`_segment_index`): ``proposal``
    ``(N,)`` integer labels. Returns ``(n0, joint, proposal_sizes)``: the number of counted
    pixels with proposal label 0, the nonzero counts of the pairs (truth label, proposal label
    > 0) in increasing (truth, proposal) order, and the nonzero proposal segment sizes (label
    > 0) in increasing label order; ``n0 = -1`` when a counted proposal label is negative. Each
    truth segment's proposal labels are counted in a scratch array and its few distinct labels
    sorted."""
    empty = np.zeros(0, np.int64)
    proposal_max = 0
    for j in range(order.shape[0]):
        q = proposal[order[j]]
        if q < 0:
            return -1, empty, empty
        proposal_max = max(proposal_max, q)
    scratch = np.zeros(proposal_max + 1, np.int64)
    proposal_count = np.zeros(proposal_max + 1, np.int64)
    seen = np.empty(order.shape[0], np.int64)
    joint = np.empty(order.shape[0], np.int64)
    n0 = n_joint = 0
    for g in range(starts.shape[0] - 1):
        n_seen = 0
        for j in range(starts[g], starts[g + 1]):
            q = proposal[order[j]]
            if q == 0:
                n0 += 1
            else:
                if scratch[q] == 0:
                    seen[n_seen] = q
                    n_seen += 1
                scratch[q] += 1
        labels = seen[:n_seen]
        labels.sort()
        for q in labels:
            joint[n_joint] = scratch[q]
            proposal_count[q] += scratch[q]
            scratch[q] = 0
            n_joint += 1
    return n0, joint[:n_joint].copy(), proposal_count[proposal_count > 0]


# integer label types the kernels read as they are (``label > 0`` then the label as int64 is
# the same as converting first); any other type is selected and converted in numpy first
_DIRECT_LABEL_TYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                       np.uint32)


def _flat_labels(labels: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(labels).reshape(-1)
    return flat.view(np.uint8) if flat.dtype == np.bool_ else flat


def _truth_segments(truth_labels: np.ndarray) -> tuple:
    """The truth's side of :func:`_contingency`, computed once for many proposals:
    ``(selection, order, starts, truth_sizes)``, ``selection`` the boolean mask of the truth's
    foreground when the labels must be selected and converted first (not an integer type of
    :data:`_DIRECT_LABEL_TYPES`), else ``None``."""
    truth_labels = np.asarray(truth_labels)
    if truth_labels.dtype.type in _DIRECT_LABEL_TYPES:
        selection, truth, every_pixel = None, _flat_labels(truth_labels), False
    else:  # e.g. float labels: select by ``> 0`` first, then truncate (0.5 counts as label 0)
        selection = truth_labels > 0
        truth, every_pixel = truth_labels[selection].astype(np.int64), True
    order, starts, sizes = _segment_index(truth, every_pixel)
    if starts.size == 0:
        raise ValueError(
            "truth_labels must be integers (0 = boundary), got the value "
            f"{truth_labels[selection].min()} on the foreground"
        )
    return selection, order, starts, sizes


def _contingency(truth_labels: np.ndarray, proposal_labels: np.ndarray, truth_segments=None):
    """Counts over the truth's foreground (label > 0): ``n``, the nonzero joint counts of
    (truth label, proposal label > 0) in increasing (truth, proposal) label order, the truth
    segment sizes and the proposal segment sizes (label > 0), both in increasing label order,
    and ``n0``, the number of foreground pixels with proposal label 0. Labels are read as int64
    (truncated); a negative proposal label on the truth's foreground is a ``ValueError``. The
    order of the arrays fixes the order of the floating sums of :func:`_info_f_score`.
    ``truth_segments``: :func:`_truth_segments` of ``truth_labels`` if already computed (one
    truth, many proposals)."""
    selection, order, starts, truth_sizes = (
        _truth_segments(truth_labels) if truth_segments is None else truth_segments
    )
    proposal_labels = np.asarray(proposal_labels)
    if selection is None and proposal_labels.dtype.type in _DIRECT_LABEL_TYPES:
        proposal = _flat_labels(proposal_labels)
    elif selection is None:
        proposal = proposal_labels.astype(np.int64).reshape(-1)
    else:
        proposal = proposal_labels[selection].astype(np.int64)
    n0, joint, proposal_sizes = _joint_counts(order, starts, proposal)
    if n0 < 0:
        raise ValueError(
            "proposal_labels must be >= 0 on the truth's foreground (0 = boundary), got "
            f"{proposal[order].min()}"
        )
    return int(order.size), joint, truth_sizes, proposal_sizes, int(n0)


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


def _as_array(x) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


def _check_isbi_inputs(cell_probability, truth) -> tuple[np.ndarray, np.ndarray]:
    """One slice: the probability as float64 ``(H, W)`` in [0, 1], the truth uint8 in {0, 1}."""
    probability = check_image(cell_probability, "cell_probability")
    if probability.min() < 0 or probability.max() > 1:
        raise ValueError(
            f"cell_probability must lie in [0, 1], got values in "
            f"[{probability.min():g}, {probability.max():g}]"
        )
    t = _as_array(truth)
    if t.ndim == 2 and t.size and ((t == 0) | (t == 255)).all() and (t == 255).any():
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


def _check_isbi_stack(cell_probability, truth) -> tuple[np.ndarray, np.ndarray]:
    """A stack ``(n, H, W)`` (or one slice ``(H, W)``, as n = 1), each slice checked."""
    probability, t = _as_array(cell_probability), _as_array(truth)
    if probability.shape != t.shape:
        raise ValueError(
            f"cell_probability {probability.shape} and truth {t.shape} must have the same shape"
        )
    if probability.ndim == 2:
        probability, t = probability[None], t[None]
    if probability.ndim != 3 or probability.shape[0] == 0:
        raise ValueError(
            f"a stack must be (n, H, W) with n >= 1, or one slice (H, W); got {probability.shape}"
        )
    pairs = [_check_isbi_inputs(p, s) for p, s in zip(probability, t, strict=True)]
    return np.stack([p for p, _ in pairs]), np.stack([s for _, s in pairs])


def check_thresholds(thresholds: Sequence[float] | None) -> tuple[float, ...]:
    """A threshold grid as a tuple of floats: ``None`` is :data:`ISBI_THRESHOLDS`; anything else
    must be a non-empty 1-D sequence of finite numbers in [0, 1] (Fiji's own check), kept in its
    order; else a ``ValueError``."""
    if thresholds is None:
        return ISBI_THRESHOLDS
    try:
        values = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"thresholds must be numbers, got {thresholds!r}") from error
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"thresholds must be a non-empty 1-D sequence, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("thresholds contain NaN or infinite values")
    if values.min() < 0 or values.max() > 1:
        raise ValueError(
            f"thresholds must lie in [0, 1] (Fiji's check), got [{values.min():g}, "
            f"{values.max():g}]"
        )
    return tuple(float(v) for v in values)


def _slice_curve(
    probability: np.ndarray, truth: np.ndarray, thresholds: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """V_rand and V_info of one checked slice at each threshold (Fiji's per-slice scores)."""
    # Fiji reads the proposal as a 32-bit float image and compares each value, widened to
    # double, with the double threshold: float32(0.1) > 0.1, float32(0.9) < 0.8999999999999999
    p = probability.astype(np.float32).astype(np.float64)
    # two thresholds with no pixel value between them give the same binary image: score it once
    distinct = np.unique(p)
    v_rand, v_info = np.empty(len(thresholds)), np.empty(len(thresholds))
    scored: dict[tuple[int, bool], tuple[float, float]] = {}
    truth_segments: dict[bool, tuple] = {}  # the truth's labels, indexed once per slice
    for k, threshold in enumerate(thresholds):
        # the truth is binarised with the same ``> th``: for {0, 1} it is ``truth == 1`` at every
        # threshold below 1, and empty at 1.0 (then V_rand 0 and V_info NaN, as in Fiji)
        truth_empty = threshold >= 1.0
        key = (int(np.searchsorted(distinct, threshold, side="right")), truth_empty)
        if key not in scored:
            if truth_empty not in truth_segments:
                truth_labels = label_cells(truth > threshold)
                truth_segments[truth_empty] = _truth_segments(truth_labels)
            counts = _contingency(
                None, thin_boundaries(p > threshold), truth_segments[truth_empty]
            )
            scored[key] = _rand_f_score(*counts), _info_f_score(*counts)
        v_rand[k], v_info[k] = scored[key]
    return v_rand, v_info


def isbi_slice_curves(cell_probability, truth, thresholds: Sequence[float] | None = None) -> dict:
    """Every slice's V_rand and V_info after thinning at every threshold.

    ``cell_probability``: ``(n, H, W)`` (or ``(H, W)``) in [0, 1], the probability of cell;
    ``truth``: the same shape, in {0, 1}, 1 = cell. ``thresholds``: ``None`` for Fiji's
    :data:`ISBI_THRESHOLDS`, or any non-empty sequence in [0, 1] (kept in its order). Returns
    ``{"thresholds": [...], "v_rand": [[...] per slice], "v_info": [[...] per slice]}``
    (``(n, T)`` nested lists; V_info may be NaN, see :func:`foreground_restricted_scores`). The
    per-threshold work of a slice is skipped when its binary image is the same as at a threshold
    already scored (no pixel value between the two thresholds).
    """
    probability, t = _check_isbi_stack(cell_probability, truth)
    grid = check_thresholds(thresholds)
    curves = [_slice_curve(p, s, grid) for p, s in zip(probability, t, strict=True)]
    return {
        "thresholds": list(grid),
        "v_rand": [c[0].tolist() for c in curves],
        "v_info": [c[1].tolist() for c in curves],
    }


def _first_maximum(values: Sequence[float], thresholds: Sequence[float]) -> tuple[float, float]:
    # Fiji: ``best = 0; bestTh = min; for (...) if (score > best) {best = score; bestTh = th;}``:
    # the first of equal maxima is kept, NaN never wins, nothing above 0 leaves (0, first)
    best, best_threshold = 0.0, thresholds[0]
    for value, threshold in zip(values, thresholds, strict=True):
        if value > best:
            best, best_threshold = float(value), threshold
    return best, best_threshold


def isbi_stack_scores(cell_probability, truth, thresholds: Sequence[float] | None = None) -> dict:
    """The ISBI challenge's V_rand and V_info of a stack, as Fiji scores a stack.

    ``cell_probability``: ``(n, H, W)`` in [0, 1], the probability of **cell** (``(H, W)`` is a
    stack of one); ``truth``: the same shape in {0, 1}, 1 = cell (an ISBI label file is 255 =
    cell: divide it by 255 first). ``thresholds``: ``None`` for Fiji's accumulated grid
    :data:`ISBI_THRESHOLDS` (0.0, 0.1, 0.30000000000000004, ..., 0.9999999999999999), or any
    non-empty sequence of finite values in [0, 1], used in the order given.

    As ``RandError.getMaximalVRandAfterThinning(min, max, step, true)`` and
    ``VariationOfInformation.getMaximalVInfoAfterThinning(min, max, step)`` (read in the source,
    see the module docstring):

    1. at each threshold ``t``, every slice is scored on its own: truth segments = the
       4-connected components of ``truth > t`` (not thinned); proposal = ``p > t`` with ``p``
       read as float32, its boundaries thinned (:func:`thin_boundaries`); the slice's V_rand and
       V_info = :func:`foreground_restricted_scores` of the two label images;
    2. the stack's score at ``t`` is the plain mean over slices of the slice **F-scores**
       (macro-average: precision and recall are combined per slice first). A slice whose V_info
       is NaN makes the stack's V_info at ``t`` NaN;
    3. the maxima over thresholds, scanned in order with ``>`` from 0: the first threshold
       reaching the maximum is the one returned, a NaN never wins; if no threshold scores above
       0, the score is 0 and the threshold the first of the grid.

    Returns ``{"v_rand", "v_info"}`` (the maxima), ``"threshold_v_rand"``,
    ``"threshold_v_info"``, ``"thresholds"`` and the stack curves ``"v_rand_curve"`` and
    ``"v_info_curve"`` (lists, one value per threshold), and ``"n_slices"``.

    Cost: the thinning and the counts, once per slice and distinct binary image (numba:
    :func:`label_cells`, :func:`_flood`, :func:`_joint_counts`, the truth's segments indexed
    once per slice): about 5 ms per 512x512 slice and threshold, so a stack of three slices
    on the 99-point grid 0.01 ... 0.99 takes about 1.5 s, on 2 cores loaded three times over
    (``benchmarks/isbi_metrics.py``; 2.5 to 3.5 times faster than the numpy and skimage
    version it replaced, ``benchmarks/evaluation_speed.py``).
    """
    curves = isbi_slice_curves(cell_probability, truth, thresholds)
    n = len(curves["v_rand"])
    # Fiji sums the slice scores and divides by the number of slices
    v_rand_curve = np.sum(np.asarray(curves["v_rand"]), axis=0) / n
    v_info_curve = np.sum(np.asarray(curves["v_info"]), axis=0) / n
    grid = curves["thresholds"]
    v_rand, threshold_v_rand = _first_maximum(v_rand_curve, grid)
    v_info, threshold_v_info = _first_maximum(v_info_curve, grid)
    return {
        "v_rand": v_rand,
        "v_info": v_info,
        "threshold_v_rand": threshold_v_rand,
        "threshold_v_info": threshold_v_info,
        "thresholds": grid,
        "v_rand_curve": v_rand_curve.tolist(),
        "v_info_curve": v_info_curve.tolist(),
        "n_slices": n,
    }


def _isbi_curve(cell_probability, truth) -> list[dict[str, float]]:
    """V_rand and V_info of one slice at each of :data:`ISBI_THRESHOLDS`."""
    probability, t = _check_isbi_inputs(cell_probability, truth)
    v_rand, v_info = _slice_curve(probability, t, ISBI_THRESHOLDS)
    return [
        {"threshold": th, "v_rand": float(r), "v_info": float(i)}
        for th, r, i in zip(ISBI_THRESHOLDS, v_rand, v_info, strict=True)
    ]


def isbi_scores(cell_probability: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The ISBI 2012 challenge's V_rand and V_info after border thinning, for one slice.

    ``cell_probability``: ``(H, W)`` in [0, 1], the probability of **cell** (1 = cell, the
    book's convention; the challenge's boundary maps are the same thing, 255 / 1 = cell).
    ``truth``: ``(H, W)`` in {0, 1}, 1 = cell (the book's masks; an ISBI label file is 255 =
    cell, 0 = membrane: divide it by 255 first). Returns ``{"v_rand": ..., "v_info": ...}``,
    each the best value over the challenge's eleven thresholds: Fiji's
    ``RandError.getMaximalVRandAfterThinning(0.0, 1.0, 0.1, true)`` and
    ``VariationOfInformation.getMaximalVInfoAfterThinning(0.0, 1.0, 0.1)`` on a one-slice stack,
    i.e. :func:`isbi_stack_scores` of one slice (the challenge's official scores since 2015,
    Arganda-Carreras et al., Front. Neuroanat. 9:142):

    1. for each threshold ``t`` of :data:`ISBI_THRESHOLDS` (0.0, 0.1, ..., accumulated in double
       precision as Fiji's loop does, so the last is 0.9999999999999999): cell = ``p > t``
       (strictly), ``p`` read as a 32-bit float as Fiji reads the image;
    2. the truth's segments: the 4-connected components of ``truth > t``; the proposal's: the
       watershed of the binarised proposal (:func:`thin_boundaries`: the cell components
       flooded over the boundary, one-pixel dams left). Read in Fiji's source (module
       docstring): only the proposal is thinned, by ``WatershedTransform2D(binary, 4)`` of the
       image with cells 0 and boundary 255, and its dams stay label 0;
    3. :func:`foreground_restricted_scores`: only the truth's cell pixels count, each remaining
       proposal boundary (dam) pixel there is a singleton segment;
    4. each score's maximum over the thresholds (``>`` from 0: an undefined score never wins);
       V_rand and V_info may peak at different thresholds.

    How it differs from :func:`skimage.metrics.adapted_rand_error` (1 - an F-score of the Rand
    index that also ignores the truth's label 0): no border thinning, no threshold sweep, the
    proposal's label-0 pixels form one segment instead of singletons, and its precision and
    recall are named the other way round. :func:`skimage.metrics.variation_of_information`
    returns the two conditional entropies, not the normalised F-score V_info.

    Thinning the truth too would lower V_rand by about 0.01 on real slices; other tie rules for
    the dams change the scores by about 1e-4 (``benchmarks/isbi_metrics.py --conventions``).
    A threshold with no cell pixel gives one segment over the whole image (the watershed of a
    constant image is one basin), so an all-membrane map scores like an all-cell map.

    Cost: about 0.06 s for a 512x512 slice, 0.1 s for uniform noise (thousands of components
    at every threshold), on 2 cores loaded three times over (``benchmarks/isbi_metrics.py``).
    """
    probability, t = _check_isbi_inputs(cell_probability, truth)  # one slice only
    scores = isbi_stack_scores(probability, t)
    return {"v_rand": scores["v_rand"], "v_info": scores["v_info"]}
