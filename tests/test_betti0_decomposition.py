"""Where the Betti-0 errors come from (topobook.study.betti0_decomposition): hand-made masks
with known components, the worst-10 % share by hand, the removal and its connectivity, the choice
of A on validation only, and the table readers on a fabricated run folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from topobook.metrics.topomortar_metrics import topomortar_scores
from topobook.study import betti0_decomposition as b0d

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "topomortar"


def cross(size: int = 16) -> np.ndarray:
    """A mortar cross: row 8 and column 8 (31 pixels, one component, no hole)."""
    mask = np.zeros((size, size), np.uint8)
    mask[8, :] = 1
    mask[:, 8] = 1
    return mask


def with_pixels(mask: np.ndarray, pixels) -> np.ndarray:
    out = mask.copy()
    for y, x in pixels:
        out[y, x] = 1
    return out


BLOB3 = [(1, 1), (1, 2), (2, 1)]  # a spurious component of 3 pixels
BLOB6 = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]  # of 6 pixels
DOT = [(14, 1)]  # of 1 pixel


# --------------------------------------------------------------------------- the distribution


def test_worst_share_by_hand():
    errors = [10, 0, 1, 1, 2, 0, 0, 3, 1, 2]  # total 20; the worst 10 %: one image, 10
    summary = b0d.error_distribution(errors)
    assert summary == {"n": 10, "median": 1.0, "mean": 2.0, "worst_count": 1,
                       "worst_share": 0.5}
    # 11 images: ceil(1.1) = 2 worst, 10 + 3 of 21
    assert b0d.error_distribution(errors + [1])["worst_share"] == pytest.approx(13 / 21)


def test_worst_count_is_the_decimal_ceiling():
    summary = b0d.error_distribution(np.arange(30.0))
    assert summary["worst_count"] == 3
    assert summary["worst_share"] == pytest.approx((29 + 28 + 27) / sum(range(30)))
    # 100 * 0.07 is 7.000000000000001 in floating point: the count must still be 7
    assert b0d.error_distribution(np.arange(100.0), worst_fraction=0.07)["worst_count"] == 7
    assert b0d.error_distribution([5.0], worst_fraction=0.1)["worst_count"] == 1
    assert b0d.error_distribution([1.0, 3.0], worst_fraction=1.0)["worst_share"] == 1.0


def test_no_error_has_no_share():
    summary = b0d.error_distribution([0, 0, 0])
    assert summary["mean"] == 0.0 and math.isnan(summary["worst_share"])


@pytest.mark.parametrize(
    "errors, fraction, message",
    [
        ([], 0.1, "non-empty 1-D"),
        ([[1, 2]], 0.1, "non-empty 1-D"),
        ([1, -1], 0.1, ">= 0"),
        ([1, np.nan], 0.1, "finite"),
        ([1, 2], 0.0, r"\(0, 1\]"),
        ([1, 2], 1.5, r"\(0, 1\]"),
    ],
)
def test_distribution_bad_input(errors, fraction, message):
    with pytest.raises(ValueError, match=message):
        b0d.error_distribution(errors, fraction)


# ----------------------------------------------------------------------- the extra components


def test_extra_components_fragment_and_spurious():
    truth = np.zeros((12, 12), np.uint8)
    truth[6, :] = 1  # one true component of 12 pixels
    pred = truth.copy()
    pred[6, 8] = 0  # the line broken: 8 pixels (the player) and 3 (a fragment)
    pred[5, 1] = 1  # touches the line at a corner only: same 8-connected component
    pred[0:2, 9:11] = 1  # a 2 x 2 block far from any true mortar: spurious
    found = b0d.extra_components(pred, truth)
    assert found.predicted == 3 and found.true == 1 and found.lost == 0
    assert sorted(zip(found.sizes.tolist(), found.spurious.tolist(), strict=True)) == [
        (3, False), (4, True)]
    score = topomortar_scores(pred, truth, betti="gudhi")["betti0_error"]
    assert score == 2 == len(found.sizes) - found.lost


def test_a_bridge_loses_a_true_component():
    truth = np.zeros((10, 10), np.uint8)
    truth[2, :] = 1
    truth[7, :] = 1  # two true components
    pred = truth.copy()
    pred[2:8, 4] = 1  # joined: one predicted component plays both
    found = b0d.extra_components(pred, truth)
    assert (found.predicted, found.true, found.lost, found.sizes.size) == (1, 2, 1, 0)
    assert topomortar_scores(pred, truth, betti="gudhi")["betti0_error"] == 1


def test_no_predicted_mortar():
    truth = cross()
    found = b0d.extra_components(np.zeros_like(truth), truth)
    assert (found.predicted, found.lost, found.sizes.size) == (0, 1, 0)
    found = b0d.extra_components(with_pixels(np.zeros_like(truth), BLOB3), np.zeros_like(truth))
    assert found.sizes.tolist() == [3] and found.spurious.tolist() == [True]


def test_components_difference_is_extra_minus_lost_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(30):
        truth = (rng.random((16, 16)) < 0.35).astype(np.uint8)
        pred = truth.copy()
        flip = rng.random((16, 16)) < 0.15
        pred[flip] = 1 - pred[flip]
        if not pred.any() or not truth.any():
            continue
        found = b0d.extra_components(pred, truth)
        assert found.predicted - found.true == found.sizes.size - found.lost
        # the authors' metric (gudhi, an independent count) agrees
        score = topomortar_scores(pred, truth, betti="gudhi")["betti0_error"]
        assert score == abs(found.sizes.size - found.lost)


# ------------------------------------------------------------------------ the post-processing


def test_remove_small_components_at_each_size():
    mask = np.zeros((9, 9), np.uint8)
    mask[0, 0] = 1  # 1 pixel
    mask[4, 0:3] = 1  # 3 pixels
    mask[8, 2:7] = 1  # 5 pixels
    before = mask.copy()
    kept = {a: int(b0d.remove_small_components(mask, a).sum()) for a in (0, 1, 2, 3, 4, 5, 6)}
    assert kept == {0: 9, 1: 9, 2: 8, 3: 8, 4: 5, 5: 5, 6: 0}
    assert np.array_equal(mask, before)  # the input is not changed
    out = b0d.remove_small_components(mask, 4)
    assert out.dtype == np.uint8 and out[8, 2:7].all() and not out[:5].any()


def test_removal_connectivity_is_the_metrics_eight():
    mask = np.zeros((6, 6), np.uint8)
    mask[1, 1] = mask[2, 2] = 1  # touching at a corner: one component of 2 (8-connected)
    assert b0d.remove_small_components(mask, 2).sum() == 2  # 4-connected: both removed
    assert b0d.remove_small_components(mask, 3).sum() == 0
    assert b0d.mortar_components(mask)[1] == 1


def test_removal_bad_input():
    mask = cross()
    with pytest.raises(ValueError, match="binary"):
        b0d.remove_small_components(mask * 2, 5)
    with pytest.raises(ValueError, match="2-D"):
        b0d.remove_small_components(mask[None], 5)
    for size in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="min_size"):
            b0d.remove_small_components(mask, size)
    with pytest.raises(ValueError, match="same shape"):
        b0d.extra_components(mask, mask[:8])
    with pytest.raises(ValueError, match="binary"):
        b0d.extra_components(mask * 255, mask)


def test_choose_min_size_on_validation_ties_to_the_smallest():
    truth = cross()
    masks = np.stack([with_pixels(truth, BLOB3), truth])
    size, means = b0d.choose_min_size(masks, np.stack([truth, truth]), (64, 8, 0, 4, 2))
    # 0, 2: the blob stays (mean 0.5); 4 and 8 remove it; 64 removes the cross too, and a mask
    # without mortar counts one component for the authors: error 0 again. Ties: the smallest.
    assert means == {0: 0.5, 2: 0.5, 4: 0.0, 8: 0.0, 64: 0.0}
    assert size == 4


def test_choose_min_size_bad_input():
    truth = np.stack([cross()])
    with pytest.raises(ValueError, match="one shape"):
        b0d.choose_min_size(truth, np.stack([cross(), cross()]))
    with pytest.raises(ValueError, match="binary"):
        b0d.choose_min_size(truth * 3, truth)
    with pytest.raises(ValueError, match="min_size"):
        b0d.choose_min_size(truth, truth, (0, -5))
    with pytest.raises(ValueError, match="at least one"):
        b0d.choose_min_size(truth, truth, ())


def test_scores_after_removal_match_the_metric_on_removed_masks():
    truth = cross()
    masks = np.stack([with_pixels(truth, BLOB6), with_pixels(truth, DOT)])
    scores = b0d.scores_after_removal(masks, np.stack([truth, truth]), 4)
    assert scores["betti0_error"] == [1.0, 0.0]
    assert scores["dice"] == pytest.approx([62 / 68, 1.0])
    assert scores["betti1_error"] == [0.0, 0.0]


# --------------------------------------------------------------------- a fabricated run folder

TRUTHS = {51: cross(), 52: cross(), 71: cross(), 72: cross()}
# Validation picks A = 4 (a 3-pixel blob); the test images would pick 8 (a 6-pixel blob).
SEED_MORTAR = {
    1: {51: with_pixels(cross(), BLOB3), 52: cross(),
        71: with_pixels(cross(), BLOB6), 72: with_pixels(cross(), DOT)},
    2: {51: with_pixels(cross(), BLOB3), 52: cross(),
        71: with_pixels(cross(), BLOB6), 72: cross()},
}


def fake_truth(numbers):
    return np.stack([TRUTHS[int(n)] for n in numbers])


def write_run(run_dir: Path, mortar: dict, recorded, threshold=0.5, dataset="topomortar",
              drop=None):
    run_dir.mkdir(parents=True)
    eval_ids, val_ids = [71, 72], [51, 52]

    def bricks(ids):  # brick probabilities: 0.1 on the mortar, 0.9 on the bricks
        return np.stack([np.where(mortar[i] == 1, 0.1, 0.9) for i in ids]).astype(np.float16)

    arrays = {"probabilities": bricks(eval_ids), "slices": np.array(eval_ids),
              "val_probabilities": bricks(val_ids), "val_slices": np.array(val_ids)}
    arrays.pop(drop, None)
    np.savez_compressed(run_dir / "predictions.npz", **arrays)
    (run_dir / "metrics.json").write_text(json.dumps(
        {"dataset": dataset, "threshold": threshold, "per_image": {"betti0_error": recorded}}))


@pytest.fixture
def results_dir(tmp_path):
    root = tmp_path / "results"
    write_run(root / "topomortar" / "baseline" / "seed1", SEED_MORTAR[1], [1, 1])
    write_run(root / "topomortar" / "baseline" / "seed2", SEED_MORTAR[2], [1, 0])
    write_run(root / "topomortar" / "cldice_lam0.5" / "seed1", SEED_MORTAR[2], [1, 0])
    (root / "topomortar" / "baseline" / "seed3").mkdir()  # unfinished: no metrics.json
    (root / "topomortar" / "baseline" / "seed3" / "checkpoint.pt").write_bytes(b"")
    write_run(root / "topomortar" / "baseline" / "seed_old", SEED_MORTAR[1], [1, 1])
    return root


def test_finished_runs_finds_the_seed_folders(results_dir):
    runs = b0d.finished_runs(results_dir)
    base = results_dir / "topomortar"
    assert runs == {"baseline": [base / "baseline" / "seed1", base / "baseline" / "seed2"],
                    "cldice_lam0.5": [base / "cldice_lam0.5" / "seed1"]}


def test_results_dir_rows_by_hand(results_dir):
    rows = b0d.results_dir_rows(results_dir, grid=(0, 2, 4, 8, 64), load_truth=fake_truth)
    assert [(r["arm"], r["row"]) for r in rows] == [
        ("baseline", "as trained"),
        ("baseline", "post-processing (components < 4 px removed; A chosen on validation)"),
        ("cldice_lam0.5", "as trained"),
        ("cldice_lam0.5", "post-processing (components < 4 px removed; A chosen on validation)"),
    ]
    assert all(tuple(r) == b0d.ROW_KEYS for r in rows)
    trained, post = rows[0], rows[1]
    # as trained: errors seed 1 [1, 1], seed 2 [1, 0]; per image [1, 0.5]
    assert trained["min_size"] is None and (trained["runs"], trained["images"]) == (2, 2)
    assert trained["betti0_median"] == trained["betti0_mean"] == 0.75
    assert trained["betti0_worst10_share"] == pytest.approx(1 / 1.5)
    assert trained["betti0_worst10_share_pooled"] == pytest.approx(1 / 3)
    assert trained["betti0_mean_recorded"] == 0.75
    # extra components: sizes 6, 1 (seed 1) and 6 (seed 2), all spurious, over 4 images
    assert trained["extra_per_image"] == 0.75 and trained["spurious_share"] == 1.0
    assert trained["lost_per_image"] == 0.0
    assert (trained["extra_size_q25"], trained["extra_size_median"]) == (3.5, 6.0)
    assert trained["extra_size_max"] == 6.0
    assert trained["dice"] == pytest.approx((2 * 62 / 68 + 62 / 63 + 1) / 4)
    assert trained["val_betti0_mean"] == 0.5 and trained["betti1_error"] == 0.0
    # post-processing at A = 4 (validation); the 6-pixel blobs stay: errors [1, 0] per seed
    assert post["min_size"] == 4 and post["val_betti0_mean"] == 0.0
    assert post["betti0_mean"] == 0.5 and post["betti0_worst10_share"] == 1.0
    assert post["betti0_worst10_share_pooled"] == 0.5
    assert post["extra_per_image"] == 0.5 and post["extra_size_max"] == 6.0
    assert post["dice"] == pytest.approx((2 * 62 / 68 + 2) / 4)
    assert math.isnan(post["betti0_mean_recorded"])


def test_the_choice_of_a_never_reads_the_test_images(results_dir):
    # Make the test images' truth differ wildly: the chosen A must not move.
    def truth_with_odd_test_images(numbers):
        numbers = [int(n) for n in numbers]
        if numbers[0] >= 71:
            return np.stack([with_pixels(cross(), BLOB6) for _ in numbers])
        return fake_truth(numbers)

    rows = b0d.chapter_rows({"baseline": b0d.finished_runs(results_dir)["baseline"]},
                            grid=(0, 4, 8), load_truth=truth_with_odd_test_images)
    assert rows[1]["min_size"] == 4  # the test images alone would now prefer 0


def test_chapter_rows_take_the_plan_pairs(results_dir):
    runs = b0d.finished_runs(results_dir)["baseline"]
    rows = b0d.chapter_rows({"baseline": [(d, None) for d in runs]}, grid=(0, 4),
                            load_truth=fake_truth)
    assert rows[0]["betti0_mean"] == 0.75


def test_the_recorded_threshold_is_used(tmp_path):
    mortar = {i: cross() for i in TRUTHS}
    write_run(tmp_path / "run", mortar, [0, 0], threshold=0.05)  # 0.1 is then a brick
    loaded = b0d.load_run_predictions(tmp_path / "run", fake_truth)
    assert loaded.threshold == 0.05 and not loaded.mortar.any() and not loaded.val_mortar.any()
    assert loaded.ids == (71, 72) and loaded.val_ids == (51, 52)


def test_run_folder_bad_input(tmp_path):
    mortar = {i: cross() for i in TRUTHS}
    write_run(tmp_path / "isbi", mortar, [0, 0], dataset="isbi2012")
    with pytest.raises(ValueError, match="not 'topomortar'"):
        b0d.load_run_predictions(tmp_path / "isbi", fake_truth)
    write_run(tmp_path / "lacking", mortar, [0, 0], drop="val_slices")
    with pytest.raises(ValueError, match="val_slices"):
        b0d.load_run_predictions(tmp_path / "lacking", fake_truth)
    write_run(tmp_path / "ok", mortar, [0, 0])
    with pytest.raises(ValueError, match="do not match"):
        b0d.load_run_predictions(tmp_path / "ok", lambda n: np.zeros((len(n), 8, 8), np.uint8))
    with pytest.raises(FileNotFoundError, match="is the run finished"):
        b0d.load_run_predictions(tmp_path / "missing", fake_truth)
    with pytest.raises(ValueError, match="no finished run"):
        b0d.results_dir_rows(tmp_path)
    with pytest.raises(ValueError, match="has no finished runs"):
        b0d.chapter_rows({"a": []}, load_truth=fake_truth)
    first = b0d.load_run_predictions(tmp_path / "ok", fake_truth)
    other = first._replace(ids=(71, 73), run_dir=tmp_path / "other")
    with pytest.raises(ValueError, match="must share their test and validation images"):
        b0d.arm_rows("a", [first, other])


# ------------------------------------------------------------------------- the authors' side


def test_published_rows_by_hand():
    table = pd.DataFrame({
        "loss": ["CEDiceLoss"] * 4 + ["clDiceLoss"] * 4,
        "seed": [1, 1, 2, 2] * 2,
        "id": ["071", "072"] * 4,
        "betti0_error": [4, 0, 2, 2, 0, 0, 0, 0],
        "betti1_error": [1, 1, 1, 1, 0, 0, 0, 2],
        "dice": [0.9] * 8,
    })
    rows = b0d.published_rows(table=table)
    assert [r["arm"] for r in rows] == ["CEDiceLoss", "clDiceLoss"]
    ce = rows[0]
    assert tuple(ce) == b0d.ROW_KEYS and ce["row"] == b0d.PUBLISHED_LABEL
    assert (ce["runs"], ce["images"]) == (2, 2)
    assert ce["betti0_mean"] == 2.0 and ce["betti0_median"] == 2.0  # per image: 3, 1
    assert ce["betti0_worst10_share"] == 0.75 and ce["betti0_worst10_share_pooled"] == 0.5
    assert math.isnan(ce["extra_size_median"]) and math.isnan(ce["min_size"])
    assert math.isnan(rows[1]["betti0_worst10_share"]) and rows[1]["betti1_error"] == 0.5
    with pytest.raises(ValueError, match="lack"):
        b0d.published_rows(table=table.iloc[1:])
    with pytest.raises(ValueError, match="not a column"):
        b0d.published_rows(table=table, metric="hd95")


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared TopoMortar copy is not here")
def test_published_means_are_the_authors_table():
    rows = {r["arm"]: r for r in b0d.published_rows("large")}
    # PERFORMANCE_TABLES.md, ideal setting: CEDice Betti0 3.31, clDice 1.17 (means of 10 seeds)
    assert rows["CEDiceLoss"]["betti0_mean"] == pytest.approx(3.314)
    assert rows["clDiceLoss"]["betti0_mean"] == pytest.approx(1.174)
    assert rows["CEDiceLoss"]["runs"] == 10 and rows["CEDiceLoss"]["images"] == 50
