"""What a training-run page says first and last (topobook.study.chapter4): the constant trivial
predictors it is compared with, and the summary computed from its numbers. Hand-made scores;
the trivial predictors on a small hand-made stack, checked against the evaluation's own
scoring and against their cache."""

import json

import numpy as np
import pytest

from topobook.metrics import evaluation
from topobook.study import chapter4


def _row(v_rand, betti, membrane=0.2):
    return {"v_rand": v_rand, "betti_matching": betti, "membrane_fraction": membrane,
            "membrane_fraction_truth": 0.2}


def test_trivial_line_names_a_constant_image_that_does_as_well():
    run = {0: _row(0.9, 120.0), 1: _row(0.8, 100.0)}
    trivial = {"all_cell": {"v_rand": 0.09, "betti_matching": 110.0},
               "all_membrane": {"v_rand": 0.09, "betti_matching": 500.0}}
    line = chapter4.trivial_line(run, trivial)
    assert line == ("**A trivial predictor does as well.** On Betti matching ↓, “all cell” "
                    "scores 110 (as good or better than 1 of 2 seeds) against this run's mean "
                    "110: on such a metric this run shows nothing that a constant image does "
                    "not.")  # 110 <= 110 (the mean) and <= 120, not <= 100
    assert chapter4.trivial_line(run, {"all_cell": {"v_rand": 0.0, "betti_matching": 999.0}}) == ""
    with pytest.raises(ValueError, match="not trained"):
        chapter4.trivial_line({}, trivial)


def _result(seed, best, diagram_counts=(30, 10)):
    return {"config": {"seed": seed}, "epochs": 4, "best_epoch": best, "train_seconds": 90.0,
            "selection": "val_bce",
            "diagrams": {"1": [[[0, 0]] * diagram_counts[0], []],
                         "4": [[[0, 0]] * diagram_counts[1], []]}}


def test_run_summary_is_computed_from_the_runs_numbers():
    results = [_result(0, 3), _result(1, 4)]
    run = {0: _row(0.9, 10.0), 1: _row(0.7, 30.0)}
    baseline = {0: _row(0.8, 20.0), 1: _row(0.8, 20.0)}
    trivial = {"all_cell": {"v_rand": 0.1, "betti_matching": 500.0}}
    text = chapter4.run_summary(results, run, baseline, trivial)
    lines = text.split("\n")
    assert lines[0] == ("* 2 seeds (0, 1) trained 4 epochs in 1.5 CPU-minutes each; the "
                        "validation cross-entropy selected epochs 3 to 4.")
    assert lines[1] == ("* V_rand ↑: **0.8** (seeds 0.7 to 0.9); better than the baseline's "
                        "same seed in 1 of 2 (baseline mean 0.8).")
    assert lines[2].startswith("* Betti matching ↓: **20** (seeds 10 to 30); better than the "
                               "baseline's same seed in 1 of 2")
    assert lines[3] == ("* It calls 20.0 % of the evaluation pixels membrane at its operating "
                        "point; the truth has 20.0 %.")
    assert lines[4] == ("* Its diagram on the validation crop (seed 0) fell: 30 points at "
                        "epoch 1, 10 at epoch 4.")
    assert len(lines) == 5  # no trivial predictor does as well


def test_run_summary_says_when_the_network_collapsed():
    run = {0: _row(0.09, 118.0, membrane=0.0)}
    trivial = {"all_cell": {"v_rand": 0.09, "betti_matching": 118.0}}
    text = chapter4.run_summary([_result(0, 1, (5, 9))], run, None, trivial)
    assert "1 seed (0)" in text and "selected epoch 1." in text
    authors = {**_result(0, 1), "train_seconds": 12.0, "selection": "val_total"}
    quick = chapter4.run_summary([authors], run, None, {})
    assert "in 12 CPU-seconds each; the total loss on the evaluation slices" in quick
    assert "collapsed towards \"all cell\"" in text
    assert "did not fall: 5 points at epoch 1, 9 at epoch 4" in text
    assert "baseline" not in text
    assert text.split("\n")[-1].startswith("* **A trivial predictor does as well.**")
    with pytest.raises(ValueError, match="no finished run"):
        chapter4.run_summary([], {}, None, trivial)


def test_trivial_scores_are_the_evaluation_of_constant_images_and_are_cached(tmp_path,
                                                                            monkeypatch):
    rng = np.random.default_rng(0)
    masks = (rng.random((2, 64, 64)) > 0.3).astype(np.uint8)
    images = rng.random((2, 64, 64)).astype(np.float32)
    scores = chapter4.trivial_scores(tmp_path, [24, 25], images, masks)
    assert set(scores) == {"all_cell", "all_membrane"}
    expected = evaluation.score_at_threshold(np.ones_like(images), masks, [24, 25], 0.5)["mean"]
    assert scores["all_cell"]["dice"] == pytest.approx(expected["dice"])
    assert scores["all_membrane"]["membrane_fraction"] == 1.0
    stored = json.loads((tmp_path / chapter4.TRIVIAL_CACHE).read_text())
    assert stored["key"]["eval_slices"] == [24, 25]

    def no_scoring(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(evaluation, "score_at_threshold", no_scoring)
    assert chapter4.trivial_scores(tmp_path, [24, 25], images, masks) == scores
    with pytest.raises(AssertionError, match="cache"):  # other slices: computed again
        chapter4.trivial_scores(tmp_path, [24], images[:1], masks[:1])
    with pytest.raises(ValueError, match="empty"):
        chapter4.trivial_scores(tmp_path, [], images, masks)
