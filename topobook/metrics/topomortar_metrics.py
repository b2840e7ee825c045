"""The TopoMortar authors' metrics, exactly as their code computes them, and the book's own.

:func:`topomortar_scores` reproduces the per-image metrics of Valverde et al. (TopoMortar,
BMVC 2025) as their code computes them: repository ``jmlipman/TopoMortar``, file
``lib/metrics.py`` (classes ``BettiErrorMetric``, ``BettiErrorLocalMetric``, ``clDiceMetric``,
``DiceMetric``), with ``measure.py``, ``lib/utils.py`` (``saveMetrics``,
``save_predictions_PNG_binary``) and ``config/template_topomortar.yaml`` (``transform_measure``)
for how they are called. Read for the facts; the code here is the book's own.

Conventions read there (``pred`` and ``truth`` are ``(H, W)`` masks in {0, 1}, 1 = mortar; their
``measure.py`` maps the label value 255 to 1 and one-hot encodes the prediction, and the metric
reads channel 1, so the thin structure scored is the mortar):

* **Betti numbers** (``_compute_betti``): ``gudhi.CubicalComplex(top_dimensional_cells=1 -
  mask)``, ``compute_persistence()`` with gudhi's defaults (zero-length bars are not kept),
  then ``persistent_betti_numbers(inf, -inf)``: the number of bars of each dimension with birth
  <= inf and death > -inf, i.e. **every** bar kept. Mortar pixels (value 0) are closed squares,
  so the mortar is 8-connected and the bricks (its holes) 4-connected; at level 1 the square
  fills in, so the bars born at 0 are the mortar's components (Betti-0) and holes (Betti-1).
  They keep ``[:-1]`` of the three numbers (Betti-0, Betti-1). A mask **without mortar** gives
  Betti-0 = 1, not 0: the whole image is then one component born at level 1, and that bar is
  counted too.
* **Betti errors** (``BettiErrorMetric``): ``|b0(pred) - b0(truth)|`` and ``|b1(pred) -
  b1(truth)|`` on the whole image: ``betti0_error``, ``betti1_error`` (integers).
* **Local Betti errors** (``BettiErrorLocalMetric``, ``window_size = 128``): windows
  ``[y:y+128, x:x+128]`` for ``y`` in ``range(0, H, 128)`` and ``x`` in ``range(0, W, 128)``
  (``itertools.product``: non-overlapping; at an edge that 128 does not divide, the last window
  is smaller), the Betti numbers of each window computed alone (so a window without mortar has
  Betti-0 = 1 on both sides), and ``np.mean`` over the windows of each absolute difference:
  ``betti0_error_local``, ``betti1_error_local`` (16 windows on 512 x 512 images).
* **clDice** (``clDiceMetric``): ``skimage.morphology.skeletonize`` of each mask (2-D: Zhang's
  method), ``_cl_score(v, s) = sum(v * s) / sum(s)``; their ``tprec = _cl_score(pred,
  skel(truth))`` and ``tsens = _cl_score(truth, skel(pred))`` (their comment says the names are
  swapped relative to the paper; clDice is symmetric in them) and ``cldice = 2 tprec tsens /
  (tprec + tsens)``; no smoothing. **Undefined cases give NaN**, as numpy's division of their
  sums does: an empty skeleton (a mask without mortar) makes ``0 / 0``, and
  ``tprec = tsens = 0`` makes the last division ``0 / 0``. (No ``RuntimeWarning`` is raised
  here.) The sums are of 0/1 values, so the ratios are exact in float64, as theirs are.
* **Dice** (``DiceMetric``: ``medpy.metric.dc``): ``2 |P & T| / (|P| + |T|)``, and **0.0 when
  both masks are empty** (medpy's ``ZeroDivisionError`` branch). Their saved CSV files hold it
  as float32 (``torch.tensor`` of a Python float); we return the float64 value (they differ by
  less than 1e-7 relative).

**Orientation.** Their ``measure.py`` reads the label and prediction PNG files with MONAI's
``LoadImaged`` (``PILReader``, whose ``reverse_indexing=True`` default swaps axes 0 and 1:
``monai/data/image_reader.py`` of Project-MONAI/MONAI), so their metrics see the **transpose** of
the image arrays (their ``save_predictions_PNG_binary`` writes ``flipud(rot90(pred))``, the
transpose back, consistently). Betti numbers, the 128 x 128 window grid and Dice do not
change under a transpose, but ``skeletonize`` is not transpose-equivariant, so the published
clDice values are those of ``pred.T`` and ``truth.T``. :func:`topomortar_scores` computes on
the arrays as given, as their metric classes do on the tensors they receive; pass
``monai_axes=True`` to score image-oriented masks (as
:func:`topobook.datasets.topomortar.load_topomortar` returns them) the way the published
numbers were computed.

:func:`topomortar_book_scores` adds the book's own scores beside the authors' (separate, so that
:func:`topomortar_scores` keeps exactly the authors' keys): the Betti matching error
(:func:`topobook.topology.betti_matching.betti_matching_error`) and V_rand / V_info
(:func:`topobook.metrics.isbi_challenge.isbi_scores`), both with the **bricks** as the foreground,
the cells of the ISBI convention (mortar = membrane = 0 there).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

from topobook.metrics.isbi_challenge import isbi_scores
from topobook.topology.betti_matching import betti_matching_error
from topobook.topology.persistence import check_binary
from topobook.topology.unionfind import binary_counts

WINDOW = 128  # BettiErrorLocalMetric.window_size
SCORE_KEYS = (
    "betti0_error",
    "betti1_error",
    "betti0_error_local",
    "betti1_error_local",
    "cldice",
    "dice",
)
BOOK_SCORE_KEYS = (
    "betti_matching_error",
    "betti_matching_error_0",
    "betti_matching_error_1",
    "v_rand",
    "v_info",
)


def check_mortar_mask(mask, name: str) -> np.ndarray:
    """``(H, W)`` uint8 in {0, 1} (1 = mortar), or a ``ValueError`` naming the problem."""
    array = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if array.ndim == 2 and array.size and np.isin(array, (0, 255)).all() and (array == 255).any():
        raise ValueError(
            f"{name} must be binary with values in {{0, 1}} (1 = mortar); it looks like a "
            "TopoMortar label file with 255 = mortar: pass (label == 255)"
        )
    return check_binary(array, name)


def check_mortar_pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    """Two masks of one shape, each checked by :func:`check_mortar_mask`."""
    p, t = check_mortar_mask(pred, "pred"), check_mortar_mask(truth, "truth")
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and truth {t.shape} must have the same shape")
    return p, t


BETTI_METHODS = ("gudhi", "labels", "unionfind")
_EIGHT = np.ones((3, 3), dtype=bool)


def mortar_betti_numbers(mask, method: str = "gudhi") -> tuple[int, int]:
    """``(b0, b1)`` of the mortar of a binary ``mask`` ``(H, W)`` (1 = mortar) as the
    TopoMortar authors compute them: gudhi's cubical complex of ``1 - mask`` (mortar
    8-connected, bricks 4-connected), ``persistent_betti_numbers(inf, -inf)``. A mask without
    mortar gives ``(1, 0)`` (see the module docstring). ``method="labels"`` counts the same
    numbers by connected-component labelling (:func:`_betti_labels`), about a hundred times
    faster; ``method="unionfind"`` by one raster scan of union-find (:func:`_betti_unionfind`),
    the same numbers again, faster still on the 128 x 128 windows of the local errors."""
    return _BETTI[_check_method(method)](check_mortar_mask(mask, "mask"))


def _check_method(method: str) -> str:
    if method not in BETTI_METHODS:
        raise ValueError(f"betti method must be one of {BETTI_METHODS}, got {method!r}")
    return method


def _betti_labels(mask: np.ndarray) -> tuple[int, int]:
    """The authors' Betti numbers without persistence. In the filtration of ``1 - mask`` the
    mortar (level 0) is a union of closed squares: its 8-connected components are the bars of
    dimension 0 born at 0, and the 4-connected brick regions that do not reach the image border
    are the holes it encloses (bars of dimension 1 born at 0). At level 1 the image fills in,
    which adds no bar of positive length except, when there is no mortar, the one component
    born at 1: hence ``max(components, 1)``. Equal to the gudhi count (tested on random masks
    and on all 50 test labels)."""
    components = ndimage.label(mask, structure=_EIGHT)[1]
    labels, n_bricks = ndimage.label(mask == 0)  # 4-connected
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return max(int(components), 1), int(n_bricks - np.count_nonzero(np.unique(border)))


def _betti_unionfind(mask: np.ndarray) -> tuple[int, int]:
    """The counts of :func:`_betti_labels` by one raster scan of union-find
    (:func:`topobook.topology.unionfind.binary_counts` of the mortar, value 1, as the first
    set of the cubical complex: the mortar 8-connected, the bricks 4-connected, the brick
    regions that reach the border not counted), with the same ``max(components, 1)``. About 2.5
    times faster than labelling on a 128 x 128 window (no labels image, no border scan), as fast
    on a whole 512 x 512 image (``benchmarks/topomortar_evaluation.py``); equal to the labelling
    and to gudhi (tested on random masks, every window of the 50 test labels and predictions)."""
    counts = binary_counts(mask, superlevel=True, complex="cubical")
    if counts is None:
        raise ValueError("mask must be binary with values in {0, 1} (1 = mortar)")
    return max(counts[0], 1), counts[1]


def _betti_gudhi(mask: np.ndarray) -> tuple[int, int]:
    import gudhi

    complex_ = gudhi.CubicalComplex(top_dimensional_cells=1.0 - mask.astype(np.float64))
    complex_.compute_persistence()
    numbers = complex_.persistent_betti_numbers(np.inf, -np.inf)
    return int(numbers[0]), int(numbers[1])


_BETTI = {"gudhi": _betti_gudhi, "labels": _betti_labels, "unionfind": _betti_unionfind}


def _local_betti_errors(p: np.ndarray, t: np.ndarray, betti) -> tuple[float, float]:
    errors = []
    for y, x in itertools.product(*(range(0, size, WINDOW) for size in t.shape)):
        bt = betti(t[y : y + WINDOW, x : x + WINDOW])
        bp = betti(p[y : y + WINDOW, x : x + WINDOW])
        errors.append((abs(bt[0] - bp[0]), abs(bt[1] - bp[1])))
    mean = np.mean(np.array(errors, dtype=np.int64), axis=0)
    return float(mean[0]), float(mean[1])


def _cldice(p: np.ndarray, t: np.ndarray) -> float:
    from skimage.morphology import skeletonize

    p, t = p.astype(bool), t.astype(bool)
    skeleton_truth, skeleton_pred = skeletonize(t), skeletonize(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        # their tprec: the prediction's cover of the truth's skeleton; tsens the other way round
        tprec = np.float64(np.sum(p & skeleton_truth)) / np.float64(np.sum(skeleton_truth))
        tsens = np.float64(np.sum(t & skeleton_pred)) / np.float64(np.sum(skeleton_pred))
        return float(2 * tprec * tsens / (tprec + tsens))


def _dice(p: np.ndarray, t: np.ndarray) -> float:
    total = int(np.count_nonzero(p)) + int(np.count_nonzero(t))
    if total == 0:
        return 0.0  # medpy.metric.dc's ZeroDivisionError branch
    return 2.0 * int(np.count_nonzero(p & t)) / float(total)


def topomortar_scores(pred, truth, monai_axes: bool = False, betti: str = "gudhi") -> dict:
    """The TopoMortar authors' per-image metrics of a binary prediction of the mortar.

    ``pred``, ``truth``: ``(H, W)`` arrays (numpy or torch) with values in {0, 1}, 1 = mortar.
    Returns ``{"betti0_error": int, "betti1_error": int, "betti0_error_local": float,
    "betti1_error_local": float, "cldice": float, "dice": float}``, each computed as their
    ``lib/metrics.py`` computes it (module docstring: Betti numbers of gudhi's cubical complex of
    ``1 - mask``, the 128 x 128 windows, clDice with NaN when undefined, Dice 0 when both masks
    are empty). ``monai_axes=True`` transposes both masks first, as MONAI's loader did for the
    published numbers (it changes only clDice). ``betti="labels"`` counts the Betti numbers by
    labelling instead of gudhi, ``betti="unionfind"`` by union-find: the same numbers
    (:func:`mortar_betti_numbers`), a hundred times faster (about 3 s per 512 x 512 image with
    gudhi on the book's 2 cores). Raises
    ``ValueError`` for masks that are not 2-D, not binary (a {0, 255} label gets a hint),
    contain NaN, or differ in shape.
    """
    count = _BETTI[_check_method(betti)]
    p, t = check_mortar_pair(pred, truth)
    if monai_axes:
        p, t = np.ascontiguousarray(p.T), np.ascontiguousarray(t.T)
    bp, bt = count(p), count(t)
    local0, local1 = _local_betti_errors(p, t, count)
    return {
        "betti0_error": abs(bt[0] - bp[0]),
        "betti1_error": abs(bt[1] - bp[1]),
        "betti0_error_local": local0,
        "betti1_error_local": local1,
        "cldice": _cldice(p, t),
        "dice": _dice(p.astype(bool), t.astype(bool)),
    }


def topomortar_book_scores(pred, truth) -> dict:
    """The book's own scores of a binary prediction of the mortar, beside the authors'.

    ``pred``, ``truth``: ``(H, W)`` in {0, 1}, 1 = mortar. The **bricks** (``1 - mask``) are
    the foreground, as the cells are in ISBI 2012 (mortar = membrane):

    * ``betti_matching_error`` (and its parts ``_0``, ``_1``):
      :func:`topobook.topology.betti_matching.betti_matching_error` of ``1 - pred`` and ``1 -
      truth``, the number of unmatched bars. Its V-construction makes the foreground (bricks)
      4-connected and its holes (mortar) 8-connected: the connectivity of the authors'
      complex. Dimension 0 counts brick components, dimension 1 mortar regions enclosed by
      bricks.
    * ``v_rand``, ``v_info``: :func:`topobook.metrics.isbi_challenge.isbi_scores` of
      ``1 - pred`` (a binary brick probability, so every threshold of the sweep gives the same
      bricks) against ``1 - truth``: the bricks as segments (4-connected), the prediction's
      mortar thinned to one-pixel boundaries, scored on the truth's brick pixels.
    """
    p, t = check_mortar_pair(pred, truth)
    bricks_pred, bricks_truth = 1 - p, 1 - t
    matching = betti_matching_error(bricks_pred, bricks_truth)
    isbi = isbi_scores(bricks_pred.astype(np.float64), bricks_truth)
    return {
        "betti_matching_error": matching["betti_matching_error"],
        "betti_matching_error_0": matching["betti_matching_error_0"],
        "betti_matching_error_1": matching["betti_matching_error_1"],
        "v_rand": isbi["v_rand"],
        "v_info": isbi["v_info"],
    }


def mortar_structure(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parts of a mortar mask ``(H, W)`` (1 = mortar) that its Betti numbers count, with
    the authors' connectivity (:func:`topobook.metrics.topomortar_metrics.mortar_betti_numbers`):
    ``(components, holes, open_bricks)``: the mortar's 8-connected components labelled 1..b0,
    the bricks it encloses (4-connected brick regions not touching the border) labelled 1..b1,
    and the bool mask of the brick regions that touch the border (not holes)."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.isin(mask, (0, 1)).all():
        raise ValueError("mask must be a binary (H, W) array, 1 = mortar")
    components, _ = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    bricks, _ = ndimage.label(mask == 0)
    border = np.unique(np.concatenate([bricks[0], bricks[-1], bricks[:, 0], bricks[:, -1]]))
    border = border[border > 0]
    open_bricks = np.isin(bricks, border)
    holes = np.where(open_bricks, 0, bricks)
    _, holes = np.unique(holes, return_inverse=True)  # relabel 1..b1, 0 = not a hole
    return components, holes.reshape(mask.shape), open_bricks
