"""Training on TopoMortar (topobook.study.topomortar_study and the dataset field of TrainConfig)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from topobook.datasets import topomortar
from topobook.datasets.topomortar import load_published_results, topomortar_ids
from topobook.metrics import topomortar_metrics
from topobook.metrics.topomortar_metrics import (
    BOOK_SCORE_KEYS,
    SCORE_KEYS,
    mortar_betti_numbers,
    topomortar_scores,
)
from topobook.study import topomortar_study as tmt
from topobook.training.config import TrainConfig
from topobook.training.run import predict, train
from topobook.training.unet import UNet

TINY = dict(
    dataset="topomortar",
    recipe="stable",
    epochs=2,
    average_epochs=1,
    width=4,
    batch_size=2,
    crops_per_slice=1,
    n_val_patches=2,
    diagram_epochs=(),
    train_slices=(1, 2),
    val_slices=(51,),
    eval_slices=(71,),
)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("topomortar_runs")
    config = TrainConfig(**TINY)
    first = train(config, root / "a", progress=False)
    second = train(config, root / "b", progress=False)
    return config, root, first, second


def test_tiny_run_trains_end_to_end_with_the_authors_keys(tiny_runs):
    config, root, first, _ = tiny_runs
    assert set(first["mean"]) == set(SCORE_KEYS) | set(BOOK_SCORE_KEYS)
    assert set(first["val_mean"]) == set(SCORE_KEYS)
    assert first["ids"] == ["071"] and first["threshold"] == 0.5
    assert len(first["history"]) == 2 and first["selection"] == "average_last_1"
    assert (root / "a" / "model.pt").exists() and not (root / "a" / "checkpoint.pt").exists()
    saved = np.load(root / "a" / "predictions.npz")
    assert saved["probabilities"].shape == (1, 512, 512)
    assert list(saved["val_slices"]) == [51]


def test_same_seed_gives_the_same_numbers(tiny_runs):
    _, _, first, second = tiny_runs
    assert first["mean"] == second["mean"] and first["val_mean"] == second["val_mean"]
    assert [h["train_bce"] for h in first["history"]] == [
        h["train_bce"] for h in second["history"]
    ]


def test_scores_are_the_authors_on_the_mortar_recomputed_with_gudhi(tiny_runs):
    """Oracle: rebuild the evaluated network from model.pt, threshold its brick probability
    and score the mortar with gudhi's Betti numbers (the run counts them by labelling)."""
    config, root, first, _ = tiny_runs
    model = UNet(in_channels=3, base_width=config.width, depth=config.depth, norm=config.norm)
    model.load_state_dict(torch.load(root / "a" / "model.pt"))
    images, mortar = topomortar.load_images([71])
    brick = predict(model, images)
    pred = (brick[0] < 0.5).astype(np.uint8)
    expected = topomortar_scores(pred, mortar[0], monai_axes=True, betti="gudhi")
    scored = topomortar.evaluate_predictions(brick, mortar, book_scores=False)
    for key in SCORE_KEYS:
        assert scored[key][0] == pytest.approx(expected[key], nan_ok=True), key
    # the run's own numbers: the same network, so the same scores up to the few pixels whose
    # probability lies within float rounding of 0.5 in this untrained network
    assert first["per_image"]["dice"][0] == pytest.approx(expected["dice"], abs=1e-3)
    assert first["per_image"]["betti1_error"][0] == pytest.approx(
        expected["betti1_error"], rel=0.01
    )


def test_resumed_or_reused_run_is_not_retrained(tiny_runs):
    config, root, first, _ = tiny_runs
    again = train(config, root / "a", progress=False)
    assert again["train_seconds"] == first["train_seconds"]


def test_defaults_are_the_authors_split():
    large = TrainConfig(dataset="topomortar")
    assert set(large.train_slices) == set(range(1, 51))
    assert set(large.val_slices) == set(range(51, 71))
    assert set(large.eval_slices) == set(range(71, 121))
    small = TrainConfig(dataset="topomortar", training_set="small")
    assert small.train_slices == tuple(int(i) for i in topomortar_ids("train", "small"))
    assert len(small.train_slices) == 10 and set(small.train_slices) < set(range(1, 51))
    assert large.in_channels == 3 and TrainConfig().in_channels == 1


def test_run_identity_includes_the_dataset():
    assert TrainConfig().identity()["dataset"] == "isbi2012"
    assert TrainConfig().eval_slices == tuple(range(24, 30))
    identity = TrainConfig(dataset="topomortar").identity()
    assert identity["dataset"] == "topomortar" and identity["training_set"] == "large"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strategy": "topo_input"}, "not defined for TopoMortar"),
        ({"strategy": "topo_loss+topo_input"}, "not defined for TopoMortar"),
        ({"protocol": "authors"}, "held-out split"),
        ({"train_slices": (1, 60)}, "train_slices"),
        ({"val_slices": (71,)}, "val_slices"),
        ({"eval_slices": (10,)}, "eval_slices"),
        ({"training_set": "small", "train_slices": tuple(range(1, 51))}, "'small'"),
        ({"training_set": "medium"}, "training_set"),
        ({"dataset": "cremi"}, "dataset must be one of"),
    ],
)
def test_bad_configs_raise_clearly(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{"dataset": "topomortar", **fields})


def test_isbi_refuses_the_topomortar_training_set():
    with pytest.raises(ValueError, match="TopoMortar setting"):
        TrainConfig(training_set="small")


def test_mortar_prediction_is_the_two_class_argmax():
    p = np.array([[0.2, 0.5], [0.5001, 0.4999]], dtype=np.float32)
    # argmax of (P(brick), P(mortar)) = (p, 1 - p), a tie going to index 0 (brick)
    expected = np.argmax(np.stack([p, 1 - p]), axis=0)
    assert (topomortar.mortar_prediction(p) == expected).all()
    for bad in (np.array([[1.5]]), np.array([[np.nan]])):
        with pytest.raises(ValueError, match="brick probabilities"):
            topomortar.mortar_prediction(bad)


def test_mortar_structure_counts_the_betti_numbers():
    rng = np.random.default_rng(3)
    masks = [(rng.random((20, 24)) < 0.5).astype(np.uint8) for _ in range(20)]
    masks.append(topomortar.load_images([71])[1][0])
    for mask in masks:
        components, holes, open_bricks = topomortar_metrics.mortar_structure(mask)
        b0, b1 = mortar_betti_numbers(mask, "gudhi")
        assert (max(int(components.max()), 1), int(holes.max())) == (b0, b1)
        assert not (open_bricks & (mask == 1)).any() and not ((holes > 0) & open_bricks).any()


def test_evaluate_predictions_checks_shapes():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        topomortar.evaluate_predictions(np.zeros((2, 8, 8)), np.zeros((1, 8, 8)))


def test_select_lambda_follows_the_stated_rule():
    base = [{"dice": 0.90, "cldice": 0.9, "betti1_error": 10.0}]
    val = {
        0.1: [{"dice": 0.89, "cldice": 0.90, "betti1_error": 8.0}],
        1.0: [{"dice": 0.85, "cldice": 0.95, "betti1_error": 2.0}],  # Dice too low
        0.3: [{"dice": 0.895, "cldice": 0.92, "betti1_error": 8.0}],  # tie: higher clDice
    }
    assert tmt.select_lambda(val, base)[0] == 0.3
    none_kept = {lam: [{**runs[0], "dice": 0.5}] for lam, runs in val.items()}
    assert tmt.select_lambda(none_kept, base)[0] == 0.1
    with pytest.raises(ValueError, match="finished validation run"):
        tmt.select_lambda({0.1: []}, base)


def _fake_finished(out_dir, config, val_mean):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(
        json.dumps({"config_identity": config.identity(), "epochs": config.epochs,
                    "val_mean": val_mean})
    )


def test_chapter_runs_sweep_then_the_chosen_lambda_on_every_seed(tmp_path):
    parameters = {
        "arms": ["baseline", "cldice"],
        "seeds": [0, 1, 2],
        "sweep_seeds": [0],
        "lam_grid": {"cldice": [0.1, 0.5]},
        "results_dir": tmp_path,
        "epochs": 2,
        "average_epochs": 1,
        "recipe": "stable",
        "workers": 3,  # page-only: ignored
    }
    first = tmt.chapter_plan(parameters)
    assert first["pending"] == ["cldice"] and "cldice" not in first["final"]
    assert len(first["jobs"]) == 3 + 2  # the baseline on every seed, the sweep on seed 0
    assert all(c.dataset == "topomortar" for _, c in first["jobs"])
    for out_dir, config in first["jobs"]:
        if config.seed == 0:
            good = config.strategy == "baseline" or config.lam == 0.5
            _fake_finished(out_dir, config, {"dice": 0.9, "cldice": 0.9,
                                             "betti1_error": 5.0 if good else 9.0})
    second = tmt.chapter_plan(parameters)
    assert second["chosen"]["cldice"][0] == 0.5 and not second["pending"]
    final = second["final"]["cldice"]
    assert [c.seed for _, c in final] == [0, 1, 2] and {c.lam for _, c in final} == {0.5}
    assert final[0][0] == tmt.run_folder(tmp_path, "cldice", 0.5) / "seed0"  # shared
    assert len(second["jobs"]) == 3 + 2 + 2
    # same seed, same initial weights and crops in every arm: only the loss differs
    base0 = dict((c.seed, c) for _, c in second["final"]["baseline"])[1]
    prior0 = dict((c.seed, c) for _, c in final)[1]
    differing = {
        f.name for f in dataclasses.fields(TrainConfig)
        if getattr(base0, f.name) != getattr(prior0, f.name)
    }
    assert differing == {"strategy", "loss", "lam"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arms": ["cldice", "baseline"]}, "start with 'baseline'"),
        ({"arms": ["baseline", "dice"]}, "start with 'baseline'"),
        ({"sweep_seeds": [7]}, "subset of seeds"),
        ({"seeds": [0, 0]}, "without repeats"),
        ({"lam_grid": {}}, "lam_grid"),
        ({"strategy": "topo_input"}, "set by the arms"),
        ({"lam": 0.1}, "set by the arms"),
        ({"protocol": "authors"}, "held-out split"),
        ({"learning_rate": 1}, "unknown training parameters"),
    ],
)
def test_chapter_runs_bad_parameters(tmp_path, change, message):
    parameters = {"arms": ["baseline", "cldice"], "seeds": [0, 1], "sweep_seeds": [0],
                  "lam_grid": {"cldice": [0.1]}, "results_dir": tmp_path, **change}
    with pytest.raises(ValueError, match=message):
        tmt.chapter_runs(parameters)


def test_published_per_seed_means_are_means_over_the_images():
    ids = ["071", "072", "090"]
    means = tmt.published_per_seed_means(ids)
    assert set(means) == {"CEDiceLoss", "CESkeletonRecallLoss", "MSETopoWinLoss",
                          "RegionWiseLoss", "TopoLoss", "WarpingLoss", "cbDiceLoss",
                          "clDiceLoss"}
    table = load_published_results("large")
    rows = table[(table["loss"] == "clDiceLoss") & (table["seed"] == 3) & table["id"].isin(ids)]
    assert len(rows) == 3
    assert means["clDiceLoss"][3]["betti1_error"] == pytest.approx(rows["betti1_error"].mean())
    with pytest.raises(ValueError, match="lack some"):
        tmt.published_per_seed_means(["001"])


def test_paper_recipe_selects_an_epoch_on_the_validation_crops(tmp_path):
    config = TrainConfig(**{**TINY, "recipe": "paper", "average_epochs": None, "batch_size": 1})
    result = train(config, tmp_path, progress=False)
    assert result["selection"] == "val_bce" and result["best_epoch"] in (1, 2)
    assert set(result["mean"]) == set(SCORE_KEYS) | set(BOOK_SCORE_KEYS)


def test_a_branched_chapter_8_branches_every_prior_from_its_seed_s_baseline(tmp_path):
    parameters = {
        "arms": ["baseline", "scnp"], "seeds": [0, 1], "sweep_seeds": [0],
        "lam_grid": {"scnp": [1.0]}, "results_dir": tmp_path, "epochs": 4,
        "average_epochs": 1, "recipe": "stable", "topo_start_epoch": 3,
    }
    plan = tmt.chapter_plan(parameters)
    base = dict((c.seed, c) for _, c in plan["final"]["baseline"])
    prior = dict((c.seed, c) for _, c in plan["final"]["scnp"])
    assert all(c.trunk_epochs == (3,) and c.branch_epoch == 0 for c in base.values())
    assert all(c.branch_epoch == 3 and c.loss == "scnp" for c in prior.values())
    from topobook.training.trunk import trunk_key

    assert trunk_key(base[1], 3) == trunk_key(prior[1], 3) != trunk_key(base[0], 3)
    # the baseline is the from-scratch baseline: the branch point is no setting of it
    scratch = tmt.chapter_plan({**parameters, "topo_start_epoch": 0})["final"]["baseline"]
    assert [c.identity() for _, c in scratch] == [c.identity() for c in base.values()]
