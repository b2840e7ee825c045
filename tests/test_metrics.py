import numpy as np
import pytest
from scipy import ndimage

from topobook.metrics import (
    betti_error,
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
