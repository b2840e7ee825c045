"""The TopoMortar baseline recipe: the soft Dice over both classes, the per-image z-score, their
config fields, and the ladder's rule (topobook.study.topomortar_ladder)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import topobook
from topobook.losses.soft_dice import SOFT_DICE_SMOOTH, soft_dice_loss
from topobook.study import topomortar_ladder as ladder
from topobook.training.config import TrainConfig
from topobook.training.run import _loss_parts, network_inputs, standardised, train

# ------------------------------------------------------------------------------ soft Dice


def test_soft_dice_hand_example():
    """p = 0.5 everywhere on a 4 x 4 target with 8 ones: per class 2 * 4 / (8 + 8) = 1/2, so the
    loss is 1/2 (up to the smoothing)."""
    z = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    g = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    g[..., :2, :] = 1
    s = SOFT_DICE_SMOOTH
    expected = 1 - (2 * (8 * 0.5) + s) / (16 + s)
    assert soft_dice_loss(z, g).item() == pytest.approx(expected, abs=1e-12)


def test_soft_dice_is_zero_for_a_confident_right_answer_and_near_one_for_a_wrong_one():
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert soft_dice_loss(40 * (2 * g - 1), g).item() == pytest.approx(0.0, abs=1e-9)
    assert soft_dice_loss(-40 * (2 * g - 1), g).item() == pytest.approx(1.0, abs=1e-5)


def test_soft_dice_averages_images_and_both_classes():
    """Against a loop over images and classes (the authors' reduction: per image and class,
    then the mean)."""
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(3, 1, 5, 6, generator=gen, dtype=torch.float64)
    g = (torch.rand(3, 1, 5, 6, generator=gen) > 0.6).double()
    g[1] = 0  # an image without class 1: its class-1 Dice is smooth / (sum p + smooth)
    s = SOFT_DICE_SMOOTH
    scores = []
    for i in range(3):
        p, t = torch.sigmoid(z[i, 0]), g[i, 0]
        for prob, truth in ((p, t), (1 - p, 1 - t)):
            scores.append(((2 * (prob * truth).sum() + s) / (prob.sum() + truth.sum() + s)).item())
    assert soft_dice_loss(z, g).item() == pytest.approx(1 - np.mean(scores), abs=1e-12)
    assert soft_dice_loss(z[:, 0], g[:, 0]).item() == pytest.approx(1 - np.mean(scores), abs=1e-12)


def test_soft_dice_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 1, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    g = (torch.rand(2, 1, 4, 5, generator=gen) > 0.5).double()
    assert torch.autograd.gradcheck(lambda x: soft_dice_loss(x, g), (z,))


@pytest.mark.parametrize(
    "logits, target, match",
    [
        (torch.zeros(2, 2, 4, 4), torch.zeros(2, 2, 4, 4), "one channel"),
        (torch.zeros(4, 4), torch.zeros(4, 5), "same shape"),
        (torch.full((4, 4), float("nan")), torch.zeros(4, 4), "finite"),
        (torch.zeros(4, 4), torch.full((4, 4), 0.5), "only 0 and 1"),
        (torch.zeros(4), torch.zeros(4), r"\(H, W\)"),
    ],
)
def test_soft_dice_rejects_bad_input(logits, target, match):
    with pytest.raises(ValueError, match=match):
        soft_dice_loss(logits, target)


def test_soft_dice_rejects_a_non_tensor_and_a_bad_smoothing():
    with pytest.raises(TypeError, match="torch.Tensor"):
        soft_dice_loss(np.zeros((4, 4)), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="smooth"):
        soft_dice_loss(torch.zeros(4, 4), torch.zeros(4, 4), smooth=0)


# ------------------------------------------------------------------ the training objective


def test_ce_dice_adds_the_dice_in_training_only():
    """base_loss="ce_dice": training total = BCE + Dice (+ λ term); the bce part and the
    validation loss stay the plain BCE."""
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 1, 8, 8, generator=gen)
    y = (torch.rand(2, 1, 8, 8, generator=gen) > 0.5).float()
    plain = TrainConfig(recipe="stable", membrane_weight=1.0)
    dice = TrainConfig(recipe="stable", membrane_weight=1.0, base_loss="ce_dice")
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    trained = _loss_parts(logits, y, dice, epoch=0)
    assert trained.bce.item() == pytest.approx(bce.item(), rel=1e-6)
    assert trained.total.item() == pytest.approx(
        (bce + soft_dice_loss(logits, y)).item(), rel=1e-6
    )
    assert _loss_parts(logits, y, plain, epoch=0).total.item() == pytest.approx(bce.item())
    validation = _loss_parts(logits, y, dice, epoch=0, validation=True)
    assert validation.total.item() == pytest.approx(bce.item(), rel=1e-6)


def test_ce_dice_with_a_weighted_bce_and_a_prior():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(1, 1, 16, 16, generator=gen)
    y = (torch.rand(1, 1, 16, 16, generator=gen) > 0.5).float()
    config = TrainConfig(
        recipe="stable", base_loss="ce_dice", strategy="topo_loss", loss="cldice", lam=0.3
    )
    weight = torch.where(y > 0.5, 1.0, config.membrane_weight)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, weight=weight)
    parts = _loss_parts(logits, y, config, epoch=0)
    expected = bce + soft_dice_loss(logits, y) + 0.3 * parts.topo
    assert parts.total.item() == pytest.approx(expected.item(), rel=1e-6)


# ------------------------------------------------------------------------------ z-score


def test_standardised_gives_each_image_and_channel_mean_0_sd_1():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (3, 3, 10, 12)) * np.array([1, 5, 0.1])[None, :, None, None]
    out = standardised(images)
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out.mean(axis=(-2, -1)), 0, atol=1e-6)
    np.testing.assert_allclose(out.std(axis=(-2, -1)), 1, atol=1e-5)
    # per image: another image in the stack changes nothing
    np.testing.assert_array_equal(standardised(images[:1]), out[:1])


def test_standardised_maps_a_constant_channel_to_zero_and_rejects_bad_shapes():
    images = np.zeros((1, 2, 4, 4))
    images[0, 1] = 7.0
    assert not standardised(images).any()
    with pytest.raises(ValueError, match="got shape"):
        standardised(np.zeros((4, 4)))


def test_network_inputs_standardise_only_with_zscore():
    images = np.random.default_rng(1).uniform(0, 1, (2, 16, 16)).astype(np.float32)
    raw = network_inputs(images, TrainConfig(), (0, 1))
    assert raw is images
    z = network_inputs(images, TrainConfig(input_norm="zscore"), (0, 1))
    np.testing.assert_allclose(z.mean(axis=(-2, -1)), 0, atol=1e-6)


# ----------------------------------------------------------------------------- the config


def test_new_fields_leave_the_identity_of_recorded_runs_unchanged_and_enter_it_when_set():
    base = TrainConfig().identity()
    assert "base_loss" not in base and "input_norm" not in base
    assert TrainConfig(base_loss="ce_dice").identity() == {**base, "base_loss": "ce_dice"}
    assert TrainConfig(input_norm="zscore").identity() == {**base, "input_norm": "zscore"}
    assert base["code_version"] == topobook.__version__


@pytest.mark.parametrize("field, value", [("base_loss", "dice"), ("input_norm", "minmax")])
def test_bad_recipe_fields_are_rejected_with_the_allowed_values(field, value):
    with pytest.raises(ValueError, match=f"{field} must be one of"):
        TrainConfig(**{field: value})


def test_a_tiny_ce_dice_zscore_run_trains_and_differs_from_the_plain_one(tmp_path):
    tiny = dict(epochs=2, recipe="stable", average_epochs=1, width=4, batch_size=2,
                crops_per_slice=1, n_val_patches=2, diagram_epochs=(), train_slices=(0, 1),
                val_slices=(21,), eval_slices=(24,), betti_patches=2, operating_point_step=0.25)
    plain = train(TrainConfig(**tiny), tmp_path / "plain", progress=False)
    recipe = train(TrainConfig(**tiny, base_loss="ce_dice", input_norm="zscore"),
                   tmp_path / "recipe", progress=False)
    assert recipe["config"]["base_loss"] == "ce_dice"
    assert recipe["history"][0]["train_bce"] != plain["history"][0]["train_bce"]
    assert all(math.isfinite(h["val_bce"]) for h in recipe["history"])


# ----------------------------------------------------------------------------- the ladder


def _row(dice, b0, b1, pixels, minutes=1.0):
    return {"dice": dice, "betti0_error": b0, "betti1_error": b1, "training_pixels": pixels,
            "cpu_minutes": minutes}


def test_ladder_rule_takes_the_fewest_errors_above_the_dice_floor():
    summary = {
        "bce_raw_64": _row(0.92, 20, 18, 1),
        "ce_dice": _row(0.91, 10, 9, 1),
        "zscore": _row(0.89, 2, 2, 1),  # below the floor: not kept, however few its errors
        "together": _row(0.93, 10, 9, 2),  # ties ce_dice: more pixels loses
    }
    assert ladder.choose_rung(summary)[0] == "ce_dice"
    summary["together"] = _row(0.93, 9, 9, 2)
    rung, reason = ladder.choose_rung(summary)
    assert rung == "together" and "3 of 4" in reason


def test_ladder_rule_keeps_to_the_budget_s_cap():
    summary = {"bce_raw_64": _row(0.92, 20, 18, 1, 2.0), "together": _row(0.93, 5, 5, 2, 5.0)}
    assert ladder.choose_rung(summary, max_cpu_minutes=None)[0] == "together"
    rung, reason = ladder.choose_rung(summary, max_cpu_minutes=3.2)
    assert rung == "bce_raw_64" and "3.2 CPU-minutes" in reason
    with pytest.raises(ValueError, match="costs at most 1"):
        ladder.choose_rung(summary, max_cpu_minutes=1)


def test_ladder_rule_without_a_rung_above_the_floor_takes_the_highest_dice():
    summary = {"bce_raw_64": _row(0.85, 1, 1, 1), "ce_dice": _row(0.88, 30, 30, 1)}
    rung, reason = ladder.choose_rung(summary)
    assert rung == "ce_dice" and "no rung" in reason


def test_ladder_runs_share_the_base_and_differ_by_their_rung():
    runs = dict(ladder.ladder_runs("r", rungs=("bce_raw_64", "together"), seeds=(0, 1)))
    assert len(runs) == 4
    first = runs[next(p for p in runs if "bce_raw_64" in str(p) and p.name == "seed0")]
    assert first.base_loss == "bce" and first.patch_size == 64
    both = runs[next(p for p in runs if "together" in str(p) and p.name == "seed1")]
    assert (both.base_loss, both.input_norm, both.patch_size) == ("ce_dice", "zscore", 128)
    assert ladder.training_pixels(both) == 2 * ladder.training_pixels(first)
    with pytest.raises(ValueError, match="rung must be one of"):
        ladder.rung_config("everything", 0)


def test_the_committed_ladder_outcome_reads_and_names_a_known_rung():
    outcome = ladder.load_outcome()
    assert outcome["chosen"] in ladder.RUNGS
    assert set(outcome["rungs"]) <= set(ladder.RUNGS)
    assert ladder.choose_rung(outcome["rungs"], outcome["max_cpu_minutes"])[0] == outcome["chosen"]
    assert ladder.choose_rung(outcome["rungs"], None)[0] == outcome["chosen_without_cap"]


def test_chapter_8_trains_the_ladder_only_when_asked(tmp_path):
    from topobook.study import topomortar_study as tmt

    parameters = {
        "arms": ["baseline", "scnp"], "seeds": [0, 1], "sweep_seeds": [0],
        "lam_grid": {"scnp": [1.0]}, "results_dir": tmp_path, "epochs": 4,
        "average_epochs": 1, "recipe": "stable", "base_loss": "ce_dice", "input_norm": "zscore",
    }
    plain = tmt.chapter_runs(parameters)
    assert all(c.base_loss == "ce_dice" and c.input_norm == "zscore" for _, c in plain)
    with_ladder = tmt.chapter_runs({**parameters, "train_ladder": True})
    extra = with_ladder[len(plain):]
    assert with_ladder[: len(plain)] == plain
    assert len(extra) == len(ladder.RUNGS) * len(ladder.SEEDS)
    assert all("topomortar_ladder" in str(d) for d, _ in extra)
