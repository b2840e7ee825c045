"""Chapter 7's second design (topobook.study.branched_study): its runs, readings and pilot sums."""

import numpy as np
import pandas as pd
import pytest

from topobook.study import branched_study as bs
from topobook.training.jobs import run_jobs

TINY = {
    "epochs": 3, "width": 4, "depth": 2, "patch_size": 32, "n_val_patches": 2,
    "crops_per_slice": 1, "average_epochs": 1, "train_slices": (0, 1), "val_slices": (10,),
    "eval_slices": (12,), "operating_point_step": 0.25, "best_threshold_step": 0.25,
    "diagram_epochs": (1,),
}


def test_folds_keep_evaluation_blocks_apart_and_guard_the_training_slices():
    for name, fold in bs.FOLDS.items():
        train, val, ev = (set(fold[k]) for k in ("train_slices", "val_slices", "eval_slices"))
        assert not (train & val) and not (train & ev) and not (val & ev), name
        assert len(val) >= 4 and len(ev) == 6
        # no training slice touches a validation or evaluation slice
        assert all(abs(t - s) >= 2 for t in train for s in val | ev), name
    assert not set(bs.FOLDS["P"]["eval_slices"]) & (
        set(bs.FOLDS["A"]["eval_slices"]) | set(bs.FOLDS["B"]["eval_slices"])
    )


def test_run_configs_branch_every_prior_from_the_baseline_trunk():
    base = bs.run_config("baseline", None, "A", 1000)
    prior = bs.run_config("topo_loss", 0.01, "A", 1000)
    assert base.trunk_epochs == (bs.BRANCH_EPOCH,) and prior.branch_epoch == bs.BRANCH_EPOCH
    assert base.epochs == prior.epochs == 40 and prior.best_threshold_step == 0.01
    from topobook.training.trunk import trunk_key

    assert trunk_key(base, bs.BRANCH_EPOCH) == trunk_key(prior, bs.BRANCH_EPOCH)
    with pytest.raises(ValueError, match="positive lam"):
        bs.run_config("topo_loss", 0.0, "A", 0)
    with pytest.raises(ValueError, match="fold must be one of"):
        bs.run_config("baseline", None, "C", 0)
    with pytest.raises(ValueError, match="arm must be"):
        bs.run_config("clDice", 0.1, "A", 0)
    with pytest.raises(ValueError, match="unknown priors"):
        bs.pilot_runs("r", [0], {"cldice": [0.1]})


def test_a_tiny_pilot_trains_branches_from_trunks_and_reads_both_readings(tmp_path):
    runs = bs.pilot_runs(tmp_path, [0, 1, 2], {"topo_loss": [0.01]}, TINY)
    assert [r[1].strategy for r in runs] == ["baseline"] * 3 + ["topo_loss"] * 3
    run_jobs(runs, workers=1, progress=False)
    table = bs.pilot_table(runs)
    assert list(table["arm"]) == ["baseline"] * 3 + ["topo_loss"] * 3
    assert table.loc[table["arm"] == "topo_loss", "trunk_loaded"].all()
    for column in ("at_operating_point:v_rand", "at_best_threshold:v_rand",
                   "at_best_threshold:betti_matching_thinned"):
        assert table[column].notna().all()
    # on one grid, the evaluation stack's own best threshold is never worse than the validation one
    assert (table["at_best_threshold:v_rand"] >= table["at_operating_point:v_rand"] - 1e-12).all()
    diffs = bs.paired_differences(table, "at_best_threshold:v_rand")
    assert len(diffs) == 3 and set(diffs["seed"]) == {0, 1, 2}
    sd = bs.paired_sd(table, "at_best_threshold:v_rand")
    assert sd["df"] == 2 and sd["sd_upper"] >= sd["sd"] >= 0


def test_pilot_sums_on_a_hand_made_table():
    table = pd.DataFrame({
        "arm": ["baseline"] * 3 + ["topo_loss"] * 3,
        "lam": [np.nan] * 3 + [0.1] * 3,
        "seed": [0, 1, 2] * 2,
        "x": [1.0, 2.0, 4.0, 1.5, 2.0, 5.0],
        "at_operating_point:threshold": [0.1, 0.5, 0.9, 0.2, 0.4, 0.8],
        "at_operating_point:v_rand": [0.5, 0.7, 0.9, 0.55, 0.65, 0.85],
    })
    diffs = bs.paired_differences(table, "x")
    assert list(diffs["difference"]) == [0.5, 0.0, 1.0]
    assert bs.paired_sd(table, "x")["sd"] == pytest.approx(0.5)
    expected = np.corrcoef([1, 2, 4], [1.5, 2, 5])[0, 1]
    assert bs.pair_correlation(table, "x") == pytest.approx(expected)
    assert bs.threshold_correlation(table) > 0.9
    with pytest.raises(ValueError, match="equal length"):
        bs.correlation([1, 2], [1, 2])


def test_chapter_7_plans_the_first_registration_and_the_second_pilot(tmp_path):
    from topobook.study import chapter7
    from topobook.study import confirmatory as cs

    values = {"results_dir": tmp_path, "pilot_seeds": [0], "pilot_lam_grid": {"topo_loss": [0.1]},
              "seeds_per_fold": 1, "overrides": {"epochs": 2, "average_epochs": 1},
              "rerun_study": False, "workers": None}
    first = cs.chapter_runs(values)
    assert chapter7.chapter_runs(values) == first  # no second pilot asked for
    both = chapter7.chapter_runs({**values, "branched_seeds": [0, 1],
                                  "branched_lam_grid": {"betti_matching": [0.1]}})
    second = both[len(first):]
    assert both[: len(first)] == first and len(second) == 4
    assert all(c.epochs == 2 for _, c in second)
    assert [c.branch_epoch for _, c in second] == [0, 0, 1, 1]  # trunks, then branches at 1
    assert all(str(d).startswith(str(tmp_path / bs.FOLDER / "pilot")) for d, _ in second)
