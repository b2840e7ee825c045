"""Scoring whole slices and the trivial predictors of chapter 5."""

import json

import numpy as np
import pytest

from topobook.datasets import isbi2012
from topobook.metrics import evaluation, isbi_challenge, pixel


@pytest.fixture(scope="module")
def slice_29():
    images, masks = isbi2012.load_isbi([29])
    return images, masks


def test_a_perfect_prediction_scores_perfectly(slice_29):
    _, masks = slice_29
    result = evaluation.evaluate(masks.astype(np.float32), masks, (29,), betti_patches=10)
    scores = result["mean"]
    assert set(evaluation.METRICS) <= set(scores)
    for key, higher in evaluation.METRICS.items():
        assert scores[key] == (1.0 if higher else 0.0), key
    assert result["per_slice"][0]["slice"] == 29


def test_trivial_predictors_score_what_their_definitions_say(slice_29):
    images, masks = slice_29
    truth = masks[0]
    all_cell = evaluation.evaluate(
        evaluation.reference_probabilities("all_cell", images), masks, (29,), betti_patches=10
    )["mean"]
    # every pixel cell: recall 1, precision = the share of cell pixels
    assert all_cell["completeness"] == 1.0
    assert all_cell["correctness"] == pytest.approx(truth.mean())
    all_membrane = evaluation.evaluate(
        evaluation.reference_probabilities("all_membrane", images), masks, (29,), betti_patches=10
    )["mean"]
    assert all_membrane["dice"] == 0.0 and all_membrane["accuracy"] == pytest.approx(
        1 - truth.mean()
    )
    # one merged segment cannot score like a segmentation on the challenge's measure
    assert all_cell["v_rand"] < 0.5
    # the paper's Betti error counts membrane pieces only: a prediction without any membrane
    # gets the truth's count as its error, no more
    paper = pixel.betti_error(np.ones_like(truth), truth, "paper", seed=29)
    assert all_cell["betti_paper"] == pytest.approx(paper)


def test_raw_threshold_is_chosen_on_the_slices_given():
    images, masks = isbi2012.load_isbi([21, 22, 23])
    t = evaluation.choose_raw_threshold(images, masks)
    assert 0 < t < 1
    def accuracy(s):
        return np.mean([pixel.pixel_metrics((im > s).astype(np.uint8), m)["accuracy"]
                        for im, m in zip(images, masks, strict=True)])

    assert accuracy(t) >= max(accuracy(t - 0.05), accuracy(t + 0.05), accuracy(0.0))


def test_bad_input_raises(slice_29):
    images, masks = slice_29
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluation.evaluate(images * 2, masks, (29,))
    with pytest.raises(ValueError, match="slice numbers"):
        evaluation.evaluate(images, masks, (28, 29))
    with pytest.raises(ValueError, match="NaN"):
        evaluation.evaluate(np.full_like(images, np.nan), masks, (29,))
    with pytest.raises(ValueError, match="kind"):
        evaluation.reference_probabilities("all_background", images)


# ---------------------------------------------------------------------------------------------
# One operating point per run
# ---------------------------------------------------------------------------------------------


def two_cells_stack(cell: float, membrane: float, n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    truth = np.ones((n, 5, 9), np.uint8)
    truth[:, :, 4] = 0
    return np.where(truth == 1, cell, membrane).astype(np.float32), truth


def test_choose_threshold_is_the_first_best_of_the_fine_grid():
    probabilities, masks = two_cells_stack(0.8, 0.3)
    choice = evaluation.choose_threshold(probabilities, masks)
    # float32(0.3) > 0.3, so at 0.30 the membrane is still cell and the cells merge: the first
    # threshold that separates them is 0.31; so does every threshold up to 0.80 (float32(0.8)
    # > 0.8 too), and none above
    assert choice["threshold"] == 0.31 and choice["value"] == 1.0 and choice["metric"] == "v_rand"
    curve = dict(zip(choice["thresholds"], choice["curve"], strict=True))
    assert curve[0.3] < 1.0 and curve[0.8] == 1.0 and curve[0.81] < 1.0
    assert len(evaluation.FINE_THRESHOLDS) == 99 and evaluation.FINE_THRESHOLDS[6] == 0.07


def test_score_at_threshold_reads_every_metric_at_that_threshold(slice_29):
    images, masks = slice_29
    rng = np.random.default_rng(0)
    from scipy import ndimage

    probability = np.clip(
        ndimage.gaussian_filter(masks[0].astype(float), 2.0)
        + 0.3 * ndimage.gaussian_filter(rng.standard_normal(masks[0].shape), 1.5), 0, 1
    ).astype(np.float32)
    result = evaluation.score_at_threshold(probability[None], masks, (29,), 0.63)
    row = result["per_slice"][0]
    pred = (probability.astype(np.float64) > 0.63).astype(np.uint8)
    truth = masks[0]
    assert row["dice"] == pixel.pixel_metrics(pred, truth)["dice"]
    assert row["cldice"] == pixel.cldice(pred, truth)
    tiles = pixel.tiled_positions(truth.shape, 64)
    assert len(tiles) == 64 and len(set(tiles)) == 64
    assert row["betti_8conn"] == pixel.betti_error(pred, truth, positions=tiles)
    from topobook.topology.betti_matching import betti_matching_error

    assert row["betti_matching"] == betti_matching_error(pred, truth)["betti_matching_error"]
    curve = isbi_challenge.isbi_stack_scores(probability, truth, [0.5, 0.63])
    assert row["v_rand"] == curve["v_rand_curve"][1] and row["v_info"] == curve["v_info_curve"][1]
    assert row["membrane_fraction"] == pytest.approx(1 - pred.mean())
    assert row["membrane_fraction_truth"] == pytest.approx(1 - truth.mean())
    assert result["mean"]["dice"] == row["dice"] and result["threshold"] == 0.63
    json.dumps(result)  # plain floats


def test_evaluate_at_operating_point_chooses_on_validation_only():
    val_p, val_m = two_cells_stack(0.8, 0.3)
    # the evaluation slices are right only above 0.5: the validation choice (0.31) is wrong
    # there, but the evaluation oracle (Fiji's grid on the evaluation slices) finds 0.6
    eval_p, eval_m = two_cells_stack(0.9, 0.55, n=3)
    grid = [0.1, 0.31, 0.5, 0.7]
    result = evaluation.evaluate_at_operating_point(val_p, val_m, eval_p, eval_m, (4, 5, 6),
                                                    thresholds=grid, betti_window=3)
    assert result["operating_point"]["threshold"] == 0.31 == result["threshold"]
    assert result["mean"]["v_rand"] == pytest.approx(2 / 3)  # the two cells merged
    assert result["mean"]["membrane_fraction"] == 0.0
    assert result["mean"]["membrane_fraction_truth"] == pytest.approx(1 / 9)
    oracle = result["evaluation_oracle"]
    assert oracle["v_rand"] == 1.0
    assert oracle["threshold_v_rand"] == isbi_challenge.ISBI_THRESHOLDS[6]
    assert [r["slice"] for r in result["per_slice"]] == [4, 5, 6]
    # the validation slices read at the chosen threshold: their V_rand is the value that chose it
    validation = result["operating_point"]["validation_scores"]
    assert validation["v_rand"] == pytest.approx(result["operating_point"]["validation_value"])
    assert validation == evaluation.score_at_threshold(val_p, val_m, range(len(val_p)), 0.31,
                                                       3)["mean"]
    json.dumps(result)


def test_trivial_predictors_at_the_operating_point():
    images, masks = two_cells_stack(0.7, 0.2, n=2)
    all_cell = evaluation.evaluate_reference_at_operating_point(
        "all_cell", images, masks, images, masks, (0, 1), thresholds=[0.1, 0.5], betti_window=3
    )
    # the same binary image at every threshold: the grid's first; every pixel cell
    assert all_cell["threshold"] == 0.1
    assert all_cell["mean"]["completeness"] == 1.0 and all_cell["mean"]["membrane_fraction"] == 0
    all_membrane = evaluation.evaluate_reference_at_operating_point(
        "all_membrane", images, masks, images, masks, (0, 1), thresholds=[0.1, 0.5], betti_window=3
    )
    assert all_membrane["mean"]["dice"] == 0.0 and all_membrane["mean"]["membrane_fraction"] == 1
    raw = evaluation.evaluate_reference_at_operating_point(
        "raw_threshold", images, masks, images, masks, (0, 1), thresholds=[0.1, 0.5], betti_window=3
    )
    assert raw["threshold"] == 0.5 and raw["mean"]["dice"] == 1.0


def test_operating_point_bad_input_raises():
    p, m = two_cells_stack(0.8, 0.3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluation.score_at_threshold(p, m, (0, 1), 1.5, betti_window=3)
    with pytest.raises(ValueError, match="slice numbers"):
        evaluation.score_at_threshold(p, m, (0,), 0.5)
    with pytest.raises(ValueError, match="binary"):
        evaluation.score_at_threshold(p, m * 2, (0, 1), 0.5, betti_window=3)
    with pytest.raises(ValueError, match="non-empty"):
        evaluation.choose_threshold(p, m, [])
    with pytest.raises(ValueError, match="fit"):
        pixel.tiled_positions((32, 32), 64)


def test_choose_threshold_by_another_metric():
    probabilities, masks = two_cells_stack(0.8, 0.3)
    grid = [0.1, 0.3, 0.31, 0.5, 0.81]
    for metric in ("dice", "betti_8conn", "betti_matching"):
        choice = evaluation.choose_threshold(probabilities, masks, grid, metric, betti_window=3)
        assert choice["threshold"] == 0.31 and choice["metric"] == metric
    choice = evaluation.choose_threshold(probabilities, masks, grid, "dice", betti_window=3)
    pred = (probabilities.astype(np.float64) > 0.1).astype(np.uint8)
    assert choice["curve"][0] == pytest.approx(pixel.pixel_metrics(pred[0], masks[0])["dice"])
    assert choice["curve"][-1] == 0.0  # nothing above 0.81: no cell predicted
    with pytest.raises(ValueError, match="metric"):
        evaluation.choose_threshold(probabilities, masks, grid, "v_info")


def test_thinned_betti_matching_scores_the_segmentation_v_rand_scores():
    # two cells (1) separated by a membrane column (0)
    truth = np.ones((12, 12), dtype=np.uint8)
    truth[:, 6] = 0
    speck = truth.copy()
    speck[3, 2] = 0  # a membrane pixel inside the left cell: a hole, no new cell
    split = truth.copy()
    split[8, :6] = 0  # a membrane row that cuts the left cell in two: a new cell
    raw = evaluation.betti_matching_error(speck, truth)["betti_matching_error"]
    assert raw == 1 and evaluation.thinned_betti_matching(speck, truth) == 0
    assert evaluation.betti_matching_error(split, truth)["betti_matching_error"] == 1
    assert evaluation.thinned_betti_matching(split, truth) == 1
    assert evaluation.thinned_betti_matching(truth, truth) == 0
    scores = evaluation.score_at_threshold(speck[None].astype(float), truth[None], [0], 0.5, 4)
    assert scores["mean"]["betti_matching"] == 1 and scores["mean"]["betti_matching_thinned"] == 0


def test_thinned_betti_error_counts_cells_and_holes_of_the_segmentation_v_rand_scores():
    # hand-worked, one 12 x 12 window: two cells (1) either side of a membrane column (0)
    truth = np.ones((12, 12), dtype=np.uint8)
    truth[:, 6] = 0
    speck = truth.copy()
    speck[3, 2] = 0  # a hole in the left cell on the raw mask (b1 + 1); thinning fills it
    split = truth.copy()
    split[8, :6] = 0  # cuts the left cell in two: b0 + 1 on both
    gap = truth.copy()
    gap[5, 6] = 1  # the two cells joined through the membrane: b0 - 1 on both
    for pred, raw, thinned in ((truth, 0, 0), (speck, 1, 0), (split, 1, 1), (gap, 1, 1)):
        assert pixel.betti_error(
            pred, truth, "standard", patch_size=12, positions=[(0, 0)]) == raw
        assert evaluation.thinned_betti_error(pred, truth, 12) == thinned
    # a constant prediction is one cell after thinning, "all cell" and "all membrane" alike (the
    # challenge floods a boundary-only image into one basin): it misses the second cell
    assert evaluation.thinned_betti_error(np.zeros_like(truth), truth, 12) == 1
    assert evaluation.thinned_betti_error(np.ones_like(truth), truth, 12) == 1
    # read at a threshold with the other metrics, over the tiling windows of side 6
    scores = evaluation.score_at_threshold(speck[None].astype(float), truth[None], [0], 0.5, 6)
    assert scores["mean"]["betti_8conn_thinned"] == 0 and scores["mean"]["betti_8conn"] > 0


def test_thinned_betti_error_is_gudhi_s_betti_numbers_of_the_thinned_cells():
    # an independent oracle on inputs written for this test: gudhi's cubical complex of the
    # thinned cells (cells 8-connected: the superlevel set of the mask, as chapter 1 builds it)
    gudhi = pytest.importorskip("gudhi")
    rng = np.random.default_rng(11)
    truth = (rng.random((48, 48)) > 0.25).astype(np.uint8)
    pred = (rng.random((48, 48)) > 0.3).astype(np.uint8)

    def betti(mask):
        complex_ = gudhi.CubicalComplex(top_dimensional_cells=1.0 - mask.astype(float))
        complex_.compute_persistence()
        b = complex_.persistent_betti_numbers(0.5, 0.5)
        return b[0], b[1]

    cells = evaluation.thinned_cells(pred).astype(np.uint8)
    expected = []
    for r in range(0, 48, 16):
        for c in range(0, 48, 16):
            bp, bt = betti(cells[r:r + 16, c:c + 16]), betti(truth[r:r + 16, c:c + 16])
            expected.append(abs(bp[0] - bt[0]) + abs(bp[1] - bt[1]))
    assert evaluation.thinned_betti_error(pred, truth, 16) == pytest.approx(np.mean(expected))


def test_separated_cells_breaks_diagonal_contacts_only():
    labels = np.array([[1, 1, 0, 2], [1, 0, 2, 2], [0, 0, 0, 0], [3, 3, 3, 3]])
    cells = evaluation.separated_cells(labels)
    # (0, 1) and (1, 2) touch diagonally across the dam: both become boundary
    expected = np.array([[1, 0, 0, 1], [1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(cells, expected)


def test_best_threshold_reading_is_the_best_of_the_grid_read_at_each_threshold(slice_29):
    images, masks = slice_29
    truth = masks[:, :128, :128]
    rng = np.random.default_rng(3)
    prob = np.clip(truth * 0.6 + 0.4 * rng.random(truth.shape), 0, 1).astype(np.float32)
    grid = (0.3, 0.5, 0.7, 0.9)
    best = evaluation.evaluate_at_best_threshold(prob, truth, [29], grid, betti_window=32)
    each = [evaluation.score_at_threshold(prob, truth, [29], t, 32)["mean"]["v_rand"] for t in grid]
    assert best["mean"]["v_rand"] == pytest.approx(max(each), abs=1e-12)
    assert best["threshold"] == grid[int(np.argmax(each))]
    assert "betti_matching_thinned" in best["mean"] and best["grid"].startswith("4 thresholds")


def test_best_threshold_step_is_in_a_run_s_identity_only_when_set():
    from topobook.training.config import TrainConfig

    assert "best_threshold_step" not in TrainConfig().identity()
    config = TrainConfig(best_threshold_step=0.25)
    assert config.identity()["best_threshold_step"] == 0.25
    assert config.best_thresholds == (0.25, 0.5, 0.75) and TrainConfig().best_thresholds == ()
    with pytest.raises(ValueError, match="best_threshold_step"):
        TrainConfig(best_threshold_step=0.6)
