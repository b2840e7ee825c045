from collections import Counter, deque

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label

from topobook.metrics.isbi_challenge import (
    ISBI_THRESHOLDS,
    _isbi_curve,
    foreground_restricted_scores,
    isbi_scores,
    thin_boundaries,
)
from topobook.metrics.pixel import (
    betti_error,
    cldice,
    mean_interval,
    paper_positions,
    pixel_metrics,
    random_positions,
)


def test_pixel_metrics_by_hand():
    truth = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
    pred = np.array([[1, 0, 1, 0], [1, 1, 0, 0]])
    # TP = 3, FP = 1, FN = 1, TN = 3
    m = pixel_metrics(pred, truth)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["completeness"] == pytest.approx(3 / 4)
    assert m["correctness"] == pytest.approx(3 / 4)
    assert m["quality"] == pytest.approx(3 / 5)
    assert m["dice"] == pytest.approx(6 / 8)
    perfect = pixel_metrics(truth, truth)
    assert all(v == 1.0 for v in perfect.values())
    empty = np.zeros((3, 3), np.uint8)
    assert pixel_metrics(empty, empty)["dice"] == 1.0


def test_paper_betti_error_counts_membrane_components():
    # cell = 1; membranes (0) as two separate bars in the truth, one bar in the prediction
    truth = np.ones((512, 512), np.uint8)
    truth[:, 100] = 0
    truth[:, 300] = 0
    pred = truth.copy()
    pred[:, 300] = 1  # one membrane missed
    positions = [(i, i) for i in (40, 250)]  # windows crossing column 100 / column 300
    # window at 40 sees column 100 in both: 1 membrane component each -> 0 finite bars -> error 0
    # window at 250 sees column 300 in the truth only: truth 1 component (0 bars), pred none (0)
    assert betti_error(pred, truth, "paper", positions=positions) == 0.0
    truth2 = truth.copy()
    truth2[:, 310] = 0  # two membrane lines in the window at 250: one finite bar
    err = betti_error(pred, truth2, "paper", positions=[(250, 250)])
    membranes = ndimage.label(1 - truth2[250:314, 250:314], np.ones((3, 3)))[1]
    assert err == membranes - 1 == 1


def test_standard_betti_error_counts_components_and_holes():
    truth = np.zeros((64, 64), np.uint8)
    truth[10:30, 10:30] = 1  # one cell
    pred = truth.copy()
    pred[40:50, 40:50] = 1  # a spurious cell: |d b0| = 1
    pred[15:18, 15:18] = 0  # a hole in the first cell: |d b1| = 1
    assert betti_error(pred, truth, "standard", positions=[(0, 0)]) == 2.0
    assert betti_error(truth, truth, "standard", n_patches=5, patch_size=32) == 0.0


def test_positions_are_seeded_and_in_range():
    a = paper_positions(512, seed=3)
    assert a == paper_positions(512, seed=3) and a != paper_positions(512, seed=4)
    assert all(r == c and 0 <= r < 383 for r, c in a) and len(a) == 10
    b = random_positions((100, 80), 32, 50, seed=1)
    assert all(0 <= r <= 68 and 0 <= c <= 48 for r, c in b)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: pixel_metrics(np.ones((3, 3)), np.ones((3, 4))), "same shape"),
        (lambda: pixel_metrics(np.full((3, 3), 0.5), np.ones((3, 3))), "binary"),
        (lambda: betti_error(np.ones((8, 8)), np.ones((8, 8)), "other"), "variant"),
        (lambda: betti_error(np.ones((100, 100)), np.ones((100, 100)), "paper"), "at least"),
        (
            lambda: betti_error(np.ones((64, 64)), np.ones((64, 64)), positions=[(10, 10)]),
            "leaves the image",
        ),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_mean_interval():
    mean, half = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / np.sqrt(3), rel=1e-3)
    assert mean_interval([5.0]) == (5.0, 0.0)


# ---------------------------------------------------------------------------------------------
# ISBI 2012 scores (V_rand, V_info after border thinning) and clDice
# ---------------------------------------------------------------------------------------------


def fiji_watershed(image: np.ndarray) -> np.ndarray:
    """Oracle: a line-by-line Python port of Fiji's trainableSegmentation.utils
    .WatershedTransform2D.apply (Vincent-Soille flooding, 4-connectivity), slow. ``image[row,
    col]``; Java's (x, y) is (col, row); labels > 0, dams 0."""
    mask, wshed, init, inqueue = -2, 0, -1, -3
    height, width = image.shape
    lab = np.full((width, height), init, dtype=np.int64)  # tabLabels[x][y]
    # extractPixelValues: x outer, y inner; Collections.sort by value, then creation order
    records = [(float(image[y, x]), x, y) for x in range(width) for y in range(height)]
    records = [records[i] for i in sorted(range(len(records)), key=lambda i: (records[i][0], i))]

    def neighbours(x, y):  # Neighborhood2DC4
        for u, v in ((x - 1, y), (x, y - 1), (x + 1, y), (x, y + 1)):
            if 0 <= u < width and 0 <= v < height:
                yield u, v

    current_label, flag, fifo = 0, False, deque()
    h, current, index1, index2, n = float(image.min()), 0, 0, 0, len(records)
    while current < n and h <= float(image.max()):
        h = records[current][0]
        for index in range(index1, n):
            value, i, j = records[index]
            if value != h:
                index1 = index
                break
            lab[i, j] = mask
            for u, v in neighbours(i, j):
                if lab[u, v] >= wshed:
                    fifo.append((i, j))
                    lab[i, j] = inqueue
                    break
        while fifo:
            i, j = fifo.popleft()
            for u, v in neighbours(i, j):
                if lab[u, v] > 0:
                    if lab[i, j] == inqueue or (lab[i, j] == wshed and flag):
                        lab[i, j] = lab[u, v]
                    elif lab[i, j] > 0 and lab[i, j] != lab[u, v]:
                        lab[i, j], flag = wshed, False
                elif lab[u, v] == wshed:
                    if lab[i, j] == inqueue:
                        lab[i, j], flag = wshed, True
                elif lab[u, v] == mask:
                    lab[u, v] = inqueue
                    fifo.append((u, v))
        for index in range(index2, n):
            value, i, j = records[index]
            if value != h:
                index2 = index
                break
            current += 1
            if lab[i, j] == mask:
                current_label += 1
                fifo.append((i, j))
                lab[i, j] = current_label
                while fifo:
                    i2, j2 = fifo.popleft()
                    for u, v in neighbours(i2, j2):
                        if lab[u, v] == mask:
                            fifo.append((u, v))
                            lab[u, v] = current_label
    out = lab.T.copy()
    out[out == init] = 0
    return out


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dams (label 0) and the same segments, up to the numbering of the labels."""
    if not np.array_equal(a == 0, b == 0):
        return False
    pairs = set(zip(a[a > 0].tolist(), b[b > 0].tolist(), strict=True))
    return len(pairs) == len(np.unique(a[a > 0])) == len(np.unique(b[b > 0]))


def test_isbi_thresholds_are_fijis_accumulated_loop():
    # ``for (double th = 0.0; th <= 1.0; th += 0.1)``: eleven values, the last just below 1
    assert len(ISBI_THRESHOLDS) == 11
    assert ISBI_THRESHOLDS[0] == 0.0 and ISBI_THRESHOLDS[3] == 0.30000000000000004
    assert ISBI_THRESHOLDS[-1] == 0.9999999999999999 < 1.0


def test_thin_boundaries_hand_examples():
    # two cells and a boundary of even width: the pixel taken off Fiji's queue second (larger
    # x, or larger y in a column) sees both basins and is the dam
    assert thin_boundaries(np.array([[1, 0, 0, 1]], bool)).tolist() == [[1, 1, 0, 2]]
    assert thin_boundaries(np.array([[1, 0, 0, 1]], bool).T).ravel().tolist() == [1, 1, 0, 2]
    # odd width: the middle pixel
    assert thin_boundaries(np.array([[1, 0, 0, 0, 1]], bool)).tolist() == [[1, 1, 0, 2, 2]]
    # no cell: the whole image is one basin; no boundary: the 4-connected components
    assert (thin_boundaries(np.zeros((3, 4), bool)) == 1).all()
    diagonal = np.array([[1, 1], [1, 1]], bool)
    assert thin_boundaries(diagonal).tolist() == [[1, 1], [1, 1]]


def test_thin_boundaries_matches_a_line_by_line_port_of_fiji():
    rng = np.random.default_rng(0)
    for _ in range(150):
        h, w = rng.integers(1, 13, 2)
        field = ndimage.gaussian_filter(rng.standard_normal((h, w)), rng.uniform(0.3, 2.0))
        cells = field > np.quantile(field, rng.uniform(0.1, 0.95))
        expected = fiji_watershed(np.where(cells, 0.0, 255.0))
        assert same_partition(thin_boundaries(cells), expected), cells.astype(int)


def test_thin_boundaries_properties():
    rng = np.random.default_rng(1)
    cells = ndimage.gaussian_filter(rng.standard_normal((80, 70)), 2.0) > 0.1
    out = thin_boundaries(cells)
    components = label(cells, connectivity=1)
    assert same_partition(np.where(cells, out, 0), components)  # cells keep their components
    assert (out[cells] > 0).all() and out.max() == components.max()
    # no two 4-neighbours carry different basins: the dams separate them
    for a, b in ((out[:, 1:], out[:, :-1]), (out[1:, :], out[:-1, :])):
        assert not ((a > 0) & (b > 0) & (a != b)).any()
    # every basin is 4-connected
    for value in np.unique(out[out > 0]):
        assert label(out == value, connectivity=1).max() == 1


def brute_force_scores(truth_labels: np.ndarray, proposal_labels: np.ndarray) -> tuple:
    """Oracle: V_rand over all ordered pairs of truth-foreground pixels (a proposal label-0
    pixel is in the same segment only as itself) and V_info = 2 I / (H(T) + H(S)) from counted
    entropies, natural log."""
    pixels = [
        (int(t), int(p) if p > 0 else ("singleton", i))
        for i, (t, p) in enumerate(zip(truth_labels.ravel(), proposal_labels.ravel(), strict=True))
        if t > 0
    ]
    same_t = same_s = same_both = 0
    for a, (ta, sa) in enumerate(pixels):
        for b, (tb, sb) in enumerate(pixels):
            st, ss = ta == tb, sa == sb or a == b
            same_t += st
            same_s += ss
            same_both += st and ss
    precision, recall = same_both / same_s, same_both / same_t
    v_rand = 2 * precision * recall / (precision + recall)

    def entropy(counter):
        n = sum(counter.values())
        return -sum(c / n * np.log(c / n) for c in counter.values())

    h_t = entropy(Counter(t for t, _ in pixels))
    h_s = entropy(Counter(s for _, s in pixels))
    mutual = h_t + h_s - entropy(Counter(pixels))
    return v_rand, 2 * mutual / (h_t + h_s)


def test_foreground_restricted_scores_match_brute_force():
    rng = np.random.default_rng(2)
    checked = 0
    while checked < 40:
        shape = tuple(rng.integers(2, 7, 2))
        truth = rng.integers(0, 4, shape)
        proposal = rng.integers(0, 5, shape)
        counts = Counter(truth[truth > 0].tolist())
        if len(counts) < 2 or len(set(proposal[truth > 0].tolist())) < 2:
            continue
        v_rand, v_info = brute_force_scores(truth, proposal)
        if not v_info > 0:
            continue
        scores = foreground_restricted_scores(truth, proposal)
        assert scores["v_rand"] == pytest.approx(v_rand, rel=1e-12)
        assert scores["v_info"] == pytest.approx(v_info, rel=1e-9)
        checked += 1


def test_foreground_restricted_scores_invariances():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, (9, 8))
    proposal = rng.integers(0, 6, (9, 8))
    scores = foreground_restricted_scores(truth, proposal)
    # the numbering of the labels does not matter
    perm_t, perm_p = np.array([0, 7, 3, 9, 1]), np.array([0, 11, 2, 5, 4, 8])
    assert foreground_restricted_scores(perm_t[truth], perm_p[proposal]) == pytest.approx(scores)
    # nothing outside the truth's foreground counts
    moved = np.where(truth == 0, (proposal + 1) % 6, proposal)
    assert foreground_restricted_scores(truth, moved) == pytest.approx(scores)
    # two full partitions (no label 0): both scores are symmetric
    a, b = rng.integers(1, 4, (7, 7)), rng.integers(1, 5, (7, 7))
    assert foreground_restricted_scores(a, b) == pytest.approx(foreground_restricted_scores(b, a))


def two_cells(width_each: int = 3, rows: int = 3) -> np.ndarray:
    """Two cells side by side, a one-pixel membrane column between them (1 = cell)."""
    truth = np.ones((rows, 2 * width_each + 1), np.uint8)
    truth[:, width_each] = 0
    return truth


def test_isbi_scores_perfect_prediction():
    truth = np.ones((8, 11), np.uint8)
    truth[:, 3] = 0
    truth[4, :] = 0  # four cells
    assert isbi_scores(truth.astype(float), truth) == {"v_rand": 1.0, "v_info": 1.0}
    soft = 0.2 + 0.6 * truth  # right at every threshold between 0.2 and 0.8
    assert isbi_scores(soft, truth) == {"v_rand": 1.0, "v_info": 1.0}


def test_isbi_scores_merge_by_hand():
    # truth: three cells of 2x2 = 4 pixels; the prediction misses the first membrane
    truth = np.array([[1, 1, 0, 1, 1, 0, 1, 1]] * 2, np.uint8)
    pred = np.ones_like(truth)
    pred[:, 5] = 0
    # after thinning, on the truth's 12 cell pixels: segments {A u B} (8) and {C} (4);
    # sum t_i^2 = 3 * 16, sum s_j^2 = 64 + 16, sum p_ij^2 = 3 * 16 (counts, not fractions)
    v_rand = 2 * 48 / (48 + 80)
    h_t = np.log(3)
    h_s = -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))
    v_info = 2 * h_s / (h_t + h_s)  # the prediction is coarser: I = H(S)
    scores = isbi_scores(pred.astype(float), truth)
    assert scores["v_rand"] == pytest.approx(0.75) and v_rand == 0.75
    assert scores["v_info"] == pytest.approx(v_info)
    # everything merged: precision 1/2, recall 1; V_info 0 (one proposal segment, H(S) = 0)
    merged = isbi_scores(np.ones((3, 7)), two_cells())
    assert merged == {"v_rand": pytest.approx(2 / 3), "v_info": 0.0}


def test_isbi_scores_split_by_hand():
    truth = np.array([[1, 1, 1, 1, 0, 1, 1, 1, 1]] * 3, np.uint8)  # A (12) | B (12)
    pred = truth.copy()
    pred[:, 1] = 0  # a false membrane cuts A into 3 + 6 pixels; its 3 pixels stay dams
    # segments on the 24 truth pixels: 3, 6, 12 and three singletons
    sizes = np.array([3, 6, 12, 1, 1, 1])
    v_rand = 2 * (sizes**2).sum() / ((sizes**2).sum() + 2 * 12**2)
    q = sizes / 24
    h_s, h_t = -(q * np.log(q)).sum(), np.log(2)
    scores = isbi_scores(pred.astype(float), truth)
    assert scores["v_rand"] == pytest.approx(v_rand) and v_rand == pytest.approx(0.8)
    assert scores["v_info"] == pytest.approx(2 * h_t / (h_t + h_s))  # S refines T: I = H(T)


def test_isbi_scores_thin_the_predicted_borders():
    # a 3-pixel-wide predicted membrane around a 1-pixel true one: after thinning the dam is
    # the true membrane, so the score is perfect; the same segments without thinning leave the
    # two extra columns as singletons and score lower
    truth = two_cells(width_each=4)
    pred = truth.copy()
    pred[:, 3:6] = 0
    assert isbi_scores(pred.astype(float), truth) == {"v_rand": 1.0, "v_info": 1.0}
    unthinned = foreground_restricted_scores(label(truth), label(pred, connectivity=1))
    assert unthinned["v_rand"] < 0.9 and unthinned["v_info"] < 0.9


def test_isbi_scores_best_threshold():
    # right only above 0.55: below, the membrane (0.55) counts as cell and the two cells merge
    truth = two_cells()
    probability = np.where(truth == 1, 0.95, 0.55)
    curve = _isbi_curve(probability, truth)
    v_rand = [row["v_rand"] for row in curve]
    assert v_rand[:6] == pytest.approx([2 / 3] * 6)  # 0.0 ... 0.5
    assert v_rand[6:10] == [1.0] * 4  # 0.6 ... 0.8999999999999999
    assert v_rand[10] == pytest.approx(2 / 3)  # nothing above 0.9999999999999999: one segment
    assert isbi_scores(probability, truth) == {"v_rand": 1.0, "v_info": 1.0}


def test_isbi_scores_read_the_probability_as_float32_like_fiji():
    truth = two_cells()
    # float32(0.1) = 0.10000000149 > 0.1: only the threshold 0.1 separates 0.1 from 0.05
    assert float(np.float32(0.1)) > ISBI_THRESHOLDS[1] and not 0.1 > ISBI_THRESHOLDS[1]
    assert isbi_scores(np.where(truth == 1, 0.1, 0.05), truth)["v_rand"] == 1.0
    # the last threshold is 0.9999999999999999, not 1.0: cells at exactly 1.0 are above it
    assert isbi_scores(np.where(truth == 1, 1.0, 0.95), truth)["v_rand"] == 1.0
    # float32(0.9) = 0.89999998 is below the threshold 0.8999999999999999
    curve = _isbi_curve(np.where(truth == 1, 0.9, 0.0), truth)
    assert curve[8]["v_rand"] == 1.0 and curve[9]["v_rand"] == pytest.approx(2 / 3)


def test_isbi_scores_fiji_conventions_for_degenerate_truths():
    # one true cell: V_rand can be perfect, but Fiji's V_info is 0 when H(truth) = 0
    one_cell = np.ones((4, 4), np.uint8)
    assert isbi_scores(one_cell.astype(float), one_cell) == {"v_rand": 1.0, "v_info": 0.0}
    # no true cell: no pixel to score, both 0
    no_cell = np.zeros((4, 4), np.uint8)
    assert isbi_scores(np.full((4, 4), 0.5), no_cell) == {"v_rand": 0.0, "v_info": 0.0}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: isbi_scores(np.ones((3, 3)), np.ones((3, 4), np.uint8)), "same shape"),
        (lambda: isbi_scores(np.ones((2, 3, 3)), np.ones((2, 3, 3), np.uint8)), "2-D"),
        (lambda: isbi_scores(np.full((3, 3), np.nan), np.ones((3, 3), np.uint8)), "NaN"),
        (lambda: isbi_scores(np.full((3, 3), 1.5), np.ones((3, 3), np.uint8)), r"\[0, 1\]"),
        (lambda: isbi_scores(np.ones((3, 3)), np.full((3, 3), 255, np.uint8)), "255"),
        (lambda: isbi_scores(np.ones((3, 3)), np.full((3, 3), 0.5)), "binary"),
        (lambda: cldice(np.ones((3, 3)), np.ones((3, 4))), "same shape"),
        (lambda: cldice(np.full((3, 3), 2), np.ones((3, 3))), "binary"),
        (lambda: foreground_restricted_scores(np.ones((2, 2)), np.ones((2, 3))), "same shape"),
        (lambda: thin_boundaries(np.ones((2, 2, 2))), "2-D"),
    ],
)
def test_isbi_and_cldice_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_cldice_by_hand():
    rng = np.random.default_rng(4)
    mask = (ndimage.gaussian_filter(rng.standard_normal((30, 30)), 2) > 0).astype(np.uint8)
    assert cldice(mask, mask) == 1.0
    # membranes (0) in different places: no skeleton pixel of one lies in the other
    truth, pred = np.ones((10, 10), np.uint8), np.ones((10, 10), np.uint8)
    truth[:, 2], pred[:, 7] = 0, 0
    assert cldice(pred, truth) == 0.0
    # half the true membrane line predicted: Tprec = 5/5, Tsens = 5/11
    truth, pred = np.ones((11, 11), np.uint8), np.ones((11, 11), np.uint8)
    truth[5, :], pred[5, :5] = 0, 0
    assert cldice(pred, truth) == pytest.approx(2 * 1 * (5 / 11) / (1 + 5 / 11))
    assert cldice(truth, pred) == cldice(pred, truth)


def test_cldice_empty_skeletons():
    all_cell, some_membrane = np.ones((6, 6), np.uint8), np.ones((6, 6), np.uint8)
    some_membrane[3, :] = 0
    assert cldice(all_cell, all_cell) == 1.0  # no membrane anywhere: nothing to get wrong
    assert cldice(all_cell, some_membrane) == 0.0
    assert cldice(some_membrane, all_cell) == 0.0


def test_isbi_scores_all_membrane_scores_like_all_cell():
    # no cell pixel at any threshold: Fiji's watershed of a constant image is one basin
    truth = two_cells()
    assert isbi_scores(np.zeros((3, 7)), truth) == isbi_scores(np.ones((3, 7)), truth)


def test_isbi_on_a_real_slice():
    from topobook.datasets import isbi2012

    _, masks = isbi2012.load_isbi([0])
    truth = masks[0]
    # clipped: the filter's rounding can leave 1 + 2^-52 on some CPUs (seen on an AVX2 machine)
    probability = np.clip(ndimage.gaussian_filter(truth.astype(float), 2.0), 0.0, 1.0)
    # the fast thinning is Fiji's flooding, pixel for pixel, on a real crop
    crop = probability[:160, :160] > 0.5
    assert same_partition(thin_boundaries(crop), fiji_watershed(np.where(crop, 0.0, 255.0)))
    scores = isbi_scores(probability, truth)
    assert 0.99 < scores["v_rand"] < 1 and 0.99 < scores["v_info"] < 1
    # thinning is what makes the blurred (thicker-bordered) truth score close to 1
    unthinned = foreground_restricted_scores(
        label(truth, connectivity=1), label(probability > 0.5, connectivity=1)
    )
    assert unthinned["v_rand"] < scores["v_rand"] - 0.005


@pytest.mark.parametrize("seed", range(4))
def test_fast_betti_counts_equal_persistence_and_ripser(seed):
    """The union-find counts of betti_error equal the persistence computations they replace:
    ripser's lower_star_img for the paper's variant, betti_numbers for the standard one."""
    from ripser import lower_star_img

    from topobook.metrics.pixel import _betti_by_unionfind, _finite_h0_bars_lower_star
    from topobook.topology.persistence import betti_numbers

    rng = np.random.default_rng(seed)
    for density in (0.2, 0.5, 0.8, 1.0, 0.0):
        mask = (rng.random((17, 23)) < density).astype(np.uint8)
        dgm = lower_star_img(mask.astype(float))
        assert _finite_h0_bars_lower_star(mask) == int(np.sum(np.isfinite(dgm[:, 1])))
        for complex in ("cubical", "vertex"):
            assert _betti_by_unionfind(mask.astype(bool), complex) == betti_numbers(mask, complex)
