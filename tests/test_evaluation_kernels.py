"""The faster kernels of the evaluation give exactly what the code they replaced gave.

Each replaced piece is kept here as a private oracle, as it was before (the labelling by
``skimage``/``scipy``, Fiji's flooding with a bounds test per neighbour, the contingency counts
by numpy, the Betti counts by labelling, the stable argsort), and the new code is compared with
it *exactly* (arrays equal, floats equal to the last bit) on many random masks, degenerate ones
and real ISBI slices with network-like probabilities.
"""

import numpy as np
import pytest
from numba import njit
from scipy import ndimage
from skimage.measure import label

from topobook.metrics import isbi_challenge, pixel
from topobook.metrics.isbi_challenge import (
    _contingency,
    _info_f_score,
    _rand_f_score,
    _slice_curve,
    _truth_segments,
    label_cells,
    thin_boundaries,
)
from topobook.topology import betti_matching as bm
from topobook.topology.unionfind import CONNECTIVITY_CODES, _binary_counts, binary_counts

# ---------------------------------------------------------------------------------------------
# the oracles: the replaced code, as it was

_NO_LABEL = np.iinfo(np.int32).max


@njit
def _old_flood(labels, height, width):
    n = height * width
    queue = np.empty(n, np.int64)
    queued = np.zeros(n, np.bool_)
    tail = 0
    for x in range(width):
        for y in range(height):
            p = y * width + x
            if labels[p] == -1 and (
                (x > 0 and labels[p - 1] > 0)
                or (y > 0 and labels[p - width] > 0)
                or (x < width - 1 and labels[p + 1] > 0)
                or (y < height - 1 and labels[p + width] > 0)
            ):
                queue[tail] = p
                queued[p] = True
                tail += 1
    head = 0
    near = np.empty(4, np.int64)
    while head < tail:
        p = queue[head]
        head += 1
        y, x = p // width, p % width
        near[0] = p - 1 if x > 0 else -1
        near[1] = p - width if y > 0 else -1
        near[2] = p + 1 if x < width - 1 else -1
        near[3] = p + width if y < height - 1 else -1
        high, low = 0, _NO_LABEL
        for d in range(4):
            q = near[d]
            if q >= 0 and labels[q] > 0:
                high = max(high, labels[q])
                low = min(low, labels[q])
        labels[p] = high if (high > 0 and high == low) else 0
        for d in range(4):
            q = near[d]
            if q >= 0 and labels[q] == -1 and not queued[q]:
                queue[tail] = q
                queued[q] = True
                tail += 1


def old_thin_boundaries(cells):
    cells = np.asarray(cells, dtype=bool)
    height, width = cells.shape
    if not cells.any():
        return label(np.ones_like(cells), connectivity=1).astype(np.int32)
    basins = label(cells, connectivity=1).astype(np.int32)
    if cells.all():
        return basins
    labels = np.where(cells, basins, -1).astype(np.int32).ravel()
    _old_flood(labels, height, width)
    return labels.reshape(height, width)


def old_contingency(truth_labels, proposal_labels):
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


def old_slice_curve(probability, truth, thresholds):
    """The per-slice curve as it was: skimage's labels, the old thinning and counts."""
    p = probability.astype(np.float32).astype(np.float64)
    out = []
    for threshold in thresholds:
        counts = old_contingency(
            label(truth > threshold, connectivity=1), old_thin_boundaries(p > threshold)
        )
        out.append((_rand_f_score(*counts), _info_f_score(*counts)))
    return np.array([v for v, _ in out]), np.array([v for _, v in out])


_EIGHT = np.ones((3, 3), dtype=bool)
_FOUR = ndimage.generate_binary_structure(2, 1)
_LABEL_CONNECTIVITY = {"cubical": (_EIGHT, _FOUR), "vertex": (_FOUR, _EIGHT)}


def old_betti_by_labels(mask, complex):
    foreground, background = _LABEL_CONNECTIVITY[complex]
    b0 = ndimage.label(mask, structure=foreground)[1]
    labels, n_background = ndimage.label(~mask, structure=background)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return int(b0), int(n_background - np.count_nonzero(border))


def old_finite_h0_bars_lower_star(binary):
    return max(ndimage.label(binary == 0, structure=_EIGHT)[1] - 1, 0)


def old_counts(image, first, complex):
    """binary_counts by labelling: components of ``first`` and holes of the other value."""
    fg, bg = CONNECTIVITY_CODES[complex]
    structures = {4: _FOUR, 8: _EIGHT, 6: np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], bool)}
    n_first = ndimage.label(image == first, structure=structures[fg])[1]
    labels, n_other = ndimage.label(image != first, structure=structures[bg])
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return int(n_first), int(n_other - np.count_nonzero(border))


# ---------------------------------------------------------------------------------------------
# inputs


def random_masks(seed: int, count: int, largest: int = 24):
    """Masks of every kind: smooth blobs, salt and pepper, thin lines, the degenerate all-0 /
    all-1 / one-row / one-column ones."""
    rng = np.random.default_rng(seed)
    masks = [np.zeros((5, 7), bool), np.ones((6, 4), bool), np.ones((1, 9), bool),
             np.zeros((8, 1), bool), np.eye(6, dtype=bool), ~np.eye(7, dtype=bool)]
    for _ in range(count):
        h, w = rng.integers(1, largest, 2)
        if rng.random() < 0.5:
            field = ndimage.gaussian_filter(rng.standard_normal((h, w)), rng.uniform(0.3, 2.5))
            masks.append(field > rng.normal(0.0, 0.4))
        else:
            masks.append(rng.random((h, w)) < rng.uniform(0.05, 0.95))
    return masks


@pytest.fixture(scope="module")
def isbi_maps():
    """Slices 24 and 25 of ISBI 2012 (1 = cell) and network-like cell probabilities: the truth
    smoothed plus smooth noise, clipped to [0, 1], and a float16 rounding of it (the saved
    predictions of a run)."""
    from topobook.datasets import isbi2012

    _, masks = isbi2012.load_isbi([24, 25])
    rng = np.random.default_rng(5)
    maps = []
    for truth in masks:
        blurred = ndimage.gaussian_filter(truth.astype(np.float64), 2.0)
        noise = ndimage.gaussian_filter(rng.standard_normal(truth.shape), 1.5)
        probability = np.clip(blurred + 0.6 * noise, 0.0, 1.0)
        maps.append((probability.astype(np.float16).astype(np.float32), truth))
    return maps


def assert_same_counts(new, old):
    assert len(new) == len(old) == 5
    assert new[0] == old[0] and new[4] == old[4]
    assert type(new[0]) is type(old[0]) and type(new[4]) is type(old[4])
    for a, b in zip(new[1:4], old[1:4], strict=True):
        assert np.array_equal(a, b) and a.dtype == b.dtype


# ---------------------------------------------------------------------------------------------
# labelling and thinning


def test_label_cells_equals_skimage_label():
    for mask in random_masks(0, 400):
        expected = label(mask, connectivity=1)
        got = label_cells(mask)
        assert got.dtype == np.int32 and np.array_equal(got, expected), mask.astype(int)
    # non-contiguous and integer input
    mask = random_masks(1, 1, 40)[-1]
    assert np.array_equal(label_cells(mask.T), label(mask.T, connectivity=1))
    assert np.array_equal(label_cells(mask.astype(np.uint8)), label(mask, connectivity=1))


def test_thin_boundaries_equals_the_old_flooding():
    for mask in random_masks(2, 400):
        expected = old_thin_boundaries(mask)
        got = thin_boundaries(mask)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), mask.astype(int)


def test_thin_boundaries_equals_the_old_flooding_on_isbi_slices(isbi_maps):
    for probability, _ in isbi_maps:
        p = probability.astype(np.float64)
        for threshold in (0.05, 0.3, 0.5, 0.8, 0.97):
            cells = p > threshold
            assert np.array_equal(thin_boundaries(cells), old_thin_boundaries(cells))


# ---------------------------------------------------------------------------------------------
# contingency counts and the slice curves


def test_contingency_equals_the_numpy_counts():
    rng = np.random.default_rng(3)
    for trial in range(300):
        h, w = rng.integers(1, 20, 2)
        truth = rng.integers(0, rng.integers(1, 9), (h, w))
        proposal = rng.integers(0, rng.integers(1, 40), (h, w))
        if trial % 3 == 0:  # sparse large labels
            proposal = proposal * 1000
        for t_type, p_type in ((np.int64, np.int64), (np.int32, np.int32), (np.uint8, np.int32),
                               (np.float64, np.float32), (bool, np.int32), (np.int16, np.uint32)):
            t, p = truth.astype(t_type), proposal.astype(p_type)
            assert_same_counts(_contingency(t, p), old_contingency(t, p))
    # float labels are selected by > 0 first, then truncated, as before
    truth = np.array([[0.5, 1.7, 2.0], [0.0, -1.0, 3.2]])
    proposal = np.array([[1.9, 0.2, 3.0], [7.0, 2.0, 3.5]])
    assert_same_counts(_contingency(truth, proposal), old_contingency(truth, proposal))


def test_contingency_with_cached_truth_segments(isbi_maps):
    for probability, truth in isbi_maps:
        truth_labels = label(truth > 0, connectivity=1)
        segments = _truth_segments(truth_labels)
        for threshold in (0.2, 0.5, 0.9):
            proposal = thin_boundaries(probability > threshold)
            expected = old_contingency(truth_labels, proposal)
            assert_same_counts(_contingency(None, proposal, segments), expected)
            assert_same_counts(_contingency(truth_labels, proposal), expected)


def test_contingency_refuses_negative_proposal_labels():
    truth = np.array([[1, 1], [0, 2]])
    with pytest.raises(ValueError, match="proposal_labels must be >= 0"):
        _contingency(truth, np.array([[1, -2], [0, 1]]))
    # a negative label off the truth's foreground is never read
    assert_same_counts(
        _contingency(truth, np.array([[1, 2], [-5, 1]])),
        old_contingency(truth, np.array([[1, 2], [-5, 1]])),
    )


def test_slice_curve_is_bit_identical_to_the_old_one(isbi_maps):
    grid = (0.0, 0.1, 0.30000000000000004, 0.5, 0.8, 0.9999999999999999, 1.0)
    for probability, truth in isbi_maps:
        v_rand, v_info = _slice_curve(probability, truth, grid)
        old_rand, old_info = old_slice_curve(probability, truth, grid)
        assert v_rand.tobytes() == old_rand.tobytes()
        assert v_info.tobytes() == old_info.tobytes()  # NaN at 1.0 on both sides


def test_slice_curve_on_random_maps_is_bit_identical():
    rng = np.random.default_rng(4)
    grid = tuple(np.round(np.arange(0.05, 1.0, 0.15), 2))
    for _ in range(30):
        h, w = rng.integers(3, 30, 2)
        truth = (ndimage.gaussian_filter(rng.standard_normal((h, w)), 1.2) > -0.3)
        probability = np.clip(truth + 0.5 * rng.standard_normal((h, w)), 0, 1)
        new = _slice_curve(probability, truth.astype(np.uint8), grid)
        old = old_slice_curve(probability, truth.astype(np.uint8), grid)
        assert new[0].tobytes() == old[0].tobytes() and new[1].tobytes() == old[1].tobytes()


def test_foreground_restricted_scores_unchanged_for_label_types():
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 5, (9, 11))
    proposal = rng.integers(0, 30, (9, 11))
    for dtype in (np.int32, np.int64, np.float64):
        scores = isbi_challenge.foreground_restricted_scores(truth.astype(dtype), proposal)
        counts = old_contingency(truth.astype(dtype), proposal)
        expected = np.array([_rand_f_score(*counts), _info_f_score(*counts)])
        assert np.array([scores["v_rand"], scores["v_info"]]).tobytes() == expected.tobytes()


# ---------------------------------------------------------------------------------------------
# Betti counts of windows


def test_binary_counts_equal_labelling_on_random_masks():
    for mask in random_masks(7, 300):
        for dtype in (np.uint8, np.float64, np.float32):
            image = mask.astype(dtype)
            for complex in CONNECTIVITY_CODES:
                for superlevel in (True, False):
                    expected = old_counts(image, 1.0 if superlevel else 0.0, complex)
                    assert binary_counts(image, superlevel, complex) == expected


def test_binary_counts_refuse_values_inside_a_run():
    image = np.ones((3, 5))
    image[1, 3] = 0.5
    assert binary_counts(image, True, "cubical") is None
    assert _binary_counts(image, 1.0, 8, 4) == (-1, -1)


def test_window_betti_counts_equal_labelling(isbi_maps):
    windows = [m for m in random_masks(8, 200)]
    for probability, truth in isbi_maps:
        for mask in (probability > 0.5, truth.astype(bool)):
            windows += [mask[r : r + 64, c : c + 64] for r in range(0, 512, 64)
                        for c in range(0, 512, 64)]
    for window in windows:
        for complex in ("cubical", "vertex"):
            assert pixel._betti_by_unionfind(window, complex) == old_betti_by_labels(window,
                                                                                      complex)
        assert pixel._finite_h0_bars_lower_star(window) == old_finite_h0_bars_lower_star(window)
        assert pixel._finite_h0_bars_lower_star(window.astype(np.uint8)) == (
            old_finite_h0_bars_lower_star(window)
        )


def test_betti_error_equals_the_labelled_one(isbi_maps):
    for probability, truth in isbi_maps:
        pred = (probability > 0.5).astype(np.uint8)
        for variant, options in (("paper", {}), ("standard", {"complex": "cubical"}),
                                 ("standard", {"complex": "vertex"})):
            got = pixel.betti_error(pred, truth, variant, seed=3, **options)
            positions = (
                pixel.paper_positions(512, 64, 10, 3) if variant == "paper"
                else pixel.random_positions((512, 512), 64, 100, 3)
            )
            errors = []
            for r, c in positions:
                wp, wt = pred[r : r + 64, c : c + 64] > 0, truth[r : r + 64, c : c + 64] > 0
                if variant == "paper":
                    errors.append(abs(old_finite_h0_bars_lower_star(wp)
                                      - old_finite_h0_bars_lower_star(wt)))
                else:
                    bp = old_betti_by_labels(wp, options["complex"])
                    bt = old_betti_by_labels(wt, options["complex"])
                    errors.append(abs(bp[0] - bt[0]) + abs(bp[1] - bt[1]))
            assert got == float(np.mean(errors))


# ---------------------------------------------------------------------------------------------
# Betti matching of binary masks


def test_cell_values_and_two_level_order_equal_numpy():
    rng = np.random.default_rng(9)
    for h, w in ((1, 1), (1, 6), (5, 1), (7, 9), (30, 17)):
        grid = bm._grid(h, w)
        for f in (rng.random(h * w), (rng.random(h * w) < 0.4).astype(np.float64)):
            edge_birth, square_birth = bm._cell_values(f, grid.edge_a, grid.edge_b, grid.corners)
            assert np.array_equal(edge_birth, np.maximum(f[grid.edge_a], f[grid.edge_b]))
            expected = np.append(f[grid.corners].max(axis=0), np.inf)
            assert np.array_equal(square_birth, expected)
        binary = (rng.random(h * w * 3) < 0.5).astype(np.float64)
        assert np.array_equal(bm._two_level_order(binary), np.argsort(binary, kind="stable"))


def same_matching(a, b) -> bool:
    return all(
        np.array_equal(x, y)
        for k in range(2)
        for x, y in ((a.pred_pairs[k], b.pred_pairs[k]), (a.target_pairs[k], b.target_pairs[k]),
                     (a.matches[k], b.matches[k]))
    )


def test_binary_matching_equals_the_general_one_on_random_masks():
    """``binary=True`` (the edges of value 0 merged by labelling, the order by a partition)
    against the general path, which runs every edge through the union-finds as before."""
    masks = random_masks(10, 300, 16)
    rng = np.random.default_rng(11)
    for pred in masks:
        for truth in (rng.random(pred.shape) < rng.uniform(0.1, 0.9), pred, ~pred):
            f0 = 1.0 - pred.astype(np.float64)
            f1 = 1.0 - truth.astype(np.float64)
            assert same_matching(bm._match_sublevel(f0, f1, binary=True),
                                 bm._match_sublevel(f0, f1))


def test_binary_matching_equals_the_general_one_on_isbi_slices(isbi_maps):
    for probability, truth in isbi_maps:
        for threshold in (0.3, 0.8):
            pred = (probability > threshold).astype(np.uint8)
            f0, f1 = 1.0 - pred.astype(np.float64), 1.0 - truth.astype(np.float64)
            assert same_matching(bm._match_sublevel(f0, f1, binary=True),
                                 bm._match_sublevel(f0, f1))


def test_elder_parents_point_at_the_oldest_vertex_of_each_component():
    rng = np.random.default_rng(12)
    for mask in random_masks(13, 100):
        births = rng.integers(0, 3, (2, mask.size)).astype(np.float64)
        labels = label(mask, connectivity=1).ravel()
        for birth, parent in zip(births, bm._elder_parents(mask, births), strict=True):
            for v in range(mask.size):
                if labels[v] == 0:
                    assert parent[v] == v
                else:
                    members = np.flatnonzero(labels == labels[v])
                    oldest = members[np.lexsort((members, birth[members]))[0]]
                    assert parent[v] == oldest
