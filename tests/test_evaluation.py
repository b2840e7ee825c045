"""Scoring whole slices and the trivial predictors of chapter 5."""

import numpy as np
import pytest

from topobook import data, evaluation, metrics


@pytest.fixture(scope="module")
def slice_29():
    images, masks = data.load_isbi([29])
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
    paper = metrics.betti_error(np.ones_like(truth), truth, "paper", seed=29)
    assert all_cell["betti_paper"] == pytest.approx(paper)


def test_raw_threshold_is_chosen_on_the_slices_given():
    images, masks = data.load_isbi([21, 22, 23])
    t = evaluation.choose_raw_threshold(images, masks)
    assert 0 < t < 1
    def accuracy(s):
        return np.mean([metrics.pixel_metrics((im > s).astype(np.uint8), m)["accuracy"]
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
