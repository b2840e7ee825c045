"""The ISBI challenge's stack scores (Fiji's getMaximalVRandAfterThinning(..., true) and
getMaximalVInfoAfterThinning), checked against a brute-force loop, hand examples and the
one-slice scores."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label

from topobook.metrics import isbi_challenge
from topobook.metrics.isbi_challenge import (
    ISBI_THRESHOLDS,
    foreground_restricted_scores,
    isbi_scores,
    isbi_slice_curves,
    isbi_stack_scores,
    thin_boundaries,
)


def brute_force_stack(probability, truth, thresholds):
    """Oracle: every slice and threshold scored from scratch (no caching), the slice scores
    averaged per threshold, then the first strict maximum from 0 (Fiji's loop)."""
    probability = np.asarray(probability, np.float32).astype(np.float64)
    rand = np.zeros((len(probability), len(thresholds)))
    info = np.zeros_like(rand)
    for i, (p, t) in enumerate(zip(probability, truth, strict=True)):
        for k, th in enumerate(thresholds):
            s = foreground_restricted_scores(label(t > th, connectivity=1), thin_boundaries(p > th))
            rand[i, k], info[i, k] = s["v_rand"], s["v_info"]
    curves = rand.mean(axis=0), info.mean(axis=0)  # NaN in a slice -> NaN for the stack
    best = []
    for curve in curves:
        ok = np.where(np.isnan(curve), -np.inf, curve)
        k = int(np.argmax(ok))
        best.append((curve[k], thresholds[k]) if ok[k] > 0 else (0.0, thresholds[0]))
    return curves, best


def random_stack(seed, n=3, shape=(20, 23)):
    rng = np.random.default_rng(seed)
    truth = np.stack(
        [ndimage.gaussian_filter(rng.standard_normal(shape), 1.5) > -0.4 for _ in range(n)]
    ).astype(np.uint8)
    noise = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), 1.0) for _ in range(n)])
    probability = np.clip(ndimage.gaussian_filter(truth.astype(float), (0, 1, 1)) + 0.4 * noise,
                          0, 1)
    return probability, truth


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(
    "thresholds", [None, [round(0.05 * k, 2) for k in range(1, 20)], [0.7, 0.1, 0.45, 0.3, 0.9]]
)
def test_stack_scores_match_brute_force(seed, thresholds):
    probability, truth = random_stack(seed)
    grid = ISBI_THRESHOLDS if thresholds is None else tuple(thresholds)
    (rand_curve, info_curve), best = brute_force_stack(probability, truth, grid)
    scores = isbi_stack_scores(probability, truth, thresholds)
    assert scores["thresholds"] == list(grid)
    np.testing.assert_allclose(scores["v_rand_curve"], rand_curve, rtol=1e-12)
    np.testing.assert_allclose(scores["v_info_curve"], info_curve, rtol=1e-9)
    (v_rand, t_rand), (v_info, t_info) = best
    assert scores["v_rand"] == pytest.approx(v_rand) and scores["threshold_v_rand"] == t_rand
    assert scores["v_info"] == pytest.approx(v_info) and scores["threshold_v_info"] == t_info
    assert scores["n_slices"] == 3


def test_stack_curve_is_the_mean_of_the_one_slice_curves():
    probability, truth = random_stack(7)
    stack = isbi_stack_scores(probability, truth)
    slices = [isbi_challenge._isbi_curve(p, t) for p, t in zip(probability, truth, strict=True)]
    mean = np.mean([[row["v_rand"] for row in curve] for curve in slices], axis=0)
    np.testing.assert_allclose(stack["v_rand_curve"], mean, rtol=1e-12)
    # the stack's maximum is at most the mean of the slices' own maxima (the old oracle reading)
    pairs = zip(probability, truth, strict=True)
    own_best = np.mean([isbi_scores(p, t)["v_rand"] for p, t in pairs])
    assert stack["v_rand"] <= own_best + 1e-12


def two_cells():
    truth = np.ones((3, 7), np.uint8)
    truth[:, 3] = 0
    return truth


def test_stack_scores_by_hand_one_maximum_for_the_stack():
    truth = two_cells()
    # slice A right only for thresholds in [0.05, 0.45): 0.1 ... 0.4; slice B only in
    # [0.55, 0.95): 0.6 ... 0.9. Elsewhere both cells merge (V_rand 2/3, V_info 0: H(S) = 0).
    a = np.where(truth == 1, 0.45, 0.05)
    b = np.where(truth == 1, 0.95, 0.55)
    scores = isbi_stack_scores(np.stack([a, b]), np.stack([truth, truth]))
    expected = [2 / 3, 5 / 6, 5 / 6, 5 / 6, 5 / 6, 2 / 3, 5 / 6, 5 / 6, 5 / 6, 5 / 6, 2 / 3]
    assert scores["v_rand_curve"] == pytest.approx(expected)
    assert scores["v_info_curve"] == pytest.approx([0, .5, .5, .5, .5, 0, .5, .5, .5, .5, 0])
    # the first of equal maxima (Fiji's ``>``): 0.1, not 0.6
    assert scores["v_rand"] == pytest.approx(5 / 6) and scores["threshold_v_rand"] == 0.1
    assert scores["v_info"] == pytest.approx(0.5) and scores["threshold_v_info"] == 0.1
    # each slice alone reaches 1: the mean of per-slice maxima is not the stack's score
    assert isbi_scores(a, truth)["v_rand"] == isbi_scores(b, truth)["v_rand"] == 1.0


def test_a_nan_slice_makes_the_stack_v_info_nan():
    truth = two_cells()
    empty = np.zeros_like(truth)  # no cell in the truth: n = 0, V_rand 0, V_info NaN
    good = np.where(truth == 1, 0.9, 0.1)
    scores = isbi_stack_scores(np.stack([good, good]), np.stack([truth, empty]))
    assert scores["v_rand"] == pytest.approx(0.5)  # (1 + 0) / 2
    assert np.isnan(scores["v_info_curve"]).all()
    # no threshold beats 0: the score is 0 and the threshold the grid's first
    assert scores["v_info"] == 0.0 and scores["threshold_v_info"] == ISBI_THRESHOLDS[0]


def test_threshold_one_empties_the_truth_too():
    truth = two_cells()
    probability = np.where(truth == 1, 1.0, 0.0)
    scores = isbi_stack_scores(probability, truth, thresholds=[0.5, 1.0])
    assert scores["v_rand_curve"][0] == 1.0 and scores["v_rand_curve"][1] == 0.0
    assert np.isnan(scores["v_info_curve"][1])


def test_one_slice_stack_equals_isbi_scores():
    from topobook.datasets import isbi2012

    _, masks = isbi2012.load_isbi([3])
    truth = masks[0]
    probability = np.clip(ndimage.gaussian_filter(truth.astype(float), 2.0)
                          + 0.3 * ndimage.gaussian_filter(
                              np.random.default_rng(0).standard_normal(truth.shape), 1.5), 0, 1)
    stack = isbi_stack_scores(probability[None], truth[None])
    assert isbi_stack_scores(probability, truth) == stack  # (H, W) is a stack of one
    assert {k: stack[k] for k in ("v_rand", "v_info")} == isbi_scores(probability, truth)


def test_unchanged_binary_images_are_thinned_once(monkeypatch):
    truth = two_cells()
    probability = np.where(truth == 1, 0.8, 0.2)
    calls = []

    def counting(cells):
        calls.append(1)
        return thin_boundaries(cells)

    monkeypatch.setattr(isbi_challenge, "thin_boundaries", counting)
    grid = [k / 100 for k in range(1, 100)]
    curves = isbi_slice_curves(probability, truth, grid)
    # float32(0.2) > 0.2 and float32(0.8) > 0.8: three binary images (all cell, right, none)
    assert len(calls) == 3
    assert curves["v_rand"][0][grid.index(0.5)] == 1.0


@pytest.mark.parametrize(
    "probability, truth, thresholds, message",
    [
        (np.ones((2, 3, 3)), np.ones((2, 3, 4), np.uint8), None, "same shape"),
        (np.full((2, 3, 3), np.nan), np.ones((2, 3, 3), np.uint8), None, "NaN"),
        (np.full((2, 3, 3), 1.5), np.ones((2, 3, 3), np.uint8), None, r"\[0, 1\]"),
        (np.full((2, 3, 3), -0.1), np.ones((2, 3, 3), np.uint8), None, r"\[0, 1\]"),
        (np.ones((2, 3, 3)), np.full((2, 3, 3), 0.5), None, "binary"),
        (np.ones((2, 3, 3)), np.full((2, 3, 3), 2), None, "binary"),
        (np.ones((2, 3, 3)), np.full((2, 3, 3), 255, np.uint8), None, "255"),
        (np.ones((1, 2, 3, 3)), np.ones((1, 2, 3, 3), np.uint8), None, r"\(n, H, W\)"),
        (np.ones((0, 3, 3)), np.ones((0, 3, 3), np.uint8), None, r"\(n, H, W\)"),
        (np.ones((3, 3)), np.ones((3, 3), np.uint8), [], "non-empty"),
        (np.ones((3, 3)), np.ones((3, 3), np.uint8), [0.5, np.nan], "NaN"),
        (np.ones((3, 3)), np.ones((3, 3), np.uint8), [0.5, 1.2], r"\[0, 1\]"),
        (np.ones((3, 3)), np.ones((3, 3), np.uint8), [[0.5]], "1-D"),
        (np.ones((3, 3)), np.ones((3, 3), np.uint8), ["a"], "numbers"),
    ],
)
def test_stack_bad_input_raises(probability, truth, thresholds, message):
    with pytest.raises(ValueError, match=message):
        isbi_stack_scores(probability, truth, thresholds)
