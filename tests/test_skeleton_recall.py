"""Skeleton Recall (Kirchhoff et al., ECCV 2024): the tubed skeleton, the recall, the loss term."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from topobook.losses.skeleton_recall import (
    SKELETON_RECALL_SMOOTH,
    skeleton_recall,
    skeleton_recall_loss,
    tubed_skeleton,
)
from topobook.losses.skeleton_recall import skeleton_recall_loss as reexported
from topobook.losses.topological import TOPO_LOSSES, training_loss
from topobook.study.timing import LOSS_STEP_SETTINGS

S = SKELETON_RECALL_SMOOTH


def _line(length=20, size=32):
    """A one-pixel horizontal line of mortar (1) on row 10: its own skeleton and tube."""
    mask = np.zeros((size, size), np.uint8)
    mask[10, 4 : 4 + length] = 1
    return mask


def _random_mask(seed, size=48):
    rng = np.random.default_rng(seed)
    return (ndimage.gaussian_filter(rng.random((size, size)), 2) > 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# the tubed skeleton


def test_tube_of_a_line_and_of_a_bar():
    line = _line()
    assert np.array_equal(tubed_skeleton(line), line.astype(bool))  # masked by the line itself
    bar = np.zeros((32, 32), np.uint8)
    bar[10:15, 3:29] = 1  # 5 pixels thick: skeleton on row 12, tube 2 pixels either side
    tube = tubed_skeleton(bar)
    assert not (tube & (bar == 0)).any()
    assert tube[10:15, 8:24].all()  # the whole thickness away from the ends
    assert not tubed_skeleton(np.zeros((8, 8))).any()


def test_tube_equals_the_references_operations():
    """The reference: skeletonize, skimage's dilation (3x3 cross, border 'reflect') twice, then
    times the segmentation."""
    from skimage.morphology import dilation, skeletonize

    for seed in range(6):
        mask = _random_mask(seed)
        skel = skeletonize(mask > 0).astype(np.int16)
        reference = dilation(dilation(skel)) * mask.astype(np.int16)
        assert np.array_equal(tubed_skeleton(mask), reference > 0)


# ---------------------------------------------------------------------------------------------
# hand examples


def test_perfect_prediction_recalls_everything():
    mortar = _random_mask(1)
    assert skeleton_recall(torch.tensor(mortar, dtype=torch.float64), torch.tensor(mortar),
                           thin_class=1).item() == 1.0
    # ISBI convention (default thin_class=0): the thin structure is target 0, the membrane
    cells = 1 - mortar
    likelihood = torch.tensor(cells, dtype=torch.float64)
    assert skeleton_recall(likelihood, torch.tensor(cells)).item() == 1.0
    assert skeleton_recall_loss(likelihood, torch.tensor(cells)).item() == 0.0


def test_all_background_prediction_recalls_nothing():
    line = torch.tensor(_line(), dtype=torch.float64)
    recall = skeleton_recall(torch.zeros_like(line), line, thin_class=1).item()
    assert recall == pytest.approx(S / (20 + S), rel=1e-12)  # = 5e-7: nothing but smoothing
    # ISBI convention: predicting cell everywhere leaves the membrane uncovered
    cells = 1 - line
    assert skeleton_recall(torch.ones_like(cells), cells).item() == pytest.approx(S / (20 + S))


def test_half_covered_skeleton():
    line = torch.tensor(_line(), dtype=torch.float64)
    likelihood = torch.zeros_like(line)
    likelihood[:, :14] = 1.0  # columns 4..13: the left 10 of the 20 line pixels
    assert skeleton_recall(likelihood, line, thin_class=1).item() == pytest.approx(
        (10 + S) / (20 + S), rel=1e-12
    )
    likelihood[:, :14] = 0.25  # soft values count by their probability
    assert skeleton_recall(likelihood, line, thin_class=1).item() == pytest.approx(
        (2.5 + S) / (20 + S), rel=1e-12
    )


def test_batch_reduction():
    line = torch.tensor(_line(), dtype=torch.float64)
    short = torch.tensor(_line(length=5), dtype=torch.float64)
    targets = torch.stack([line, short, torch.zeros_like(line)])  # the last has no structure
    likelihood = torch.zeros_like(targets)
    likelihood[:, :, :9] = 1.0  # columns 4..8: 5 pixels of each line
    per_image = [(5 + S) / (20 + S), (5 + S) / (5 + S), S / S]  # empty tube: recall 1
    assert skeleton_recall(likelihood, targets, thin_class=1).item() == pytest.approx(
        np.mean(per_image), rel=1e-12
    )
    pooled = skeleton_recall(likelihood, targets, thin_class=1, reduction="batch").item()
    assert pooled == pytest.approx((10 + S) / (25 + S), rel=1e-12)
    # (B, 1, H, W) from a network is the same
    assert skeleton_recall(likelihood[:, None], targets[:, None], thin_class=1).item() == (
        skeleton_recall(likelihood, targets, thin_class=1).item()
    )


# ---------------------------------------------------------------------------------------------
# gradients


def test_gradient_by_finite_differences():
    torch.manual_seed(0)
    target = torch.tensor(np.stack([_random_mask(2, 16), _random_mask(3, 16)]))
    likelihood = torch.rand(2, 16, 16, dtype=torch.float64).clamp(0.05, 0.95)
    for thin_class in (0, 1):
        for reduction in ("mean", "batch"):
            x = likelihood.clone().requires_grad_(True)
            assert torch.autograd.gradcheck(
                lambda f, tc=thin_class, r=reduction: skeleton_recall_loss(f, target, tc,
                                                                           reduction=r),
                (x,),
                eps=1e-6,
                atol=1e-8,
                fast_mode=True,  # a random direction's finite difference, not all 512
            )
    # and through the training entry point, from the logits
    logits = torch.randn(2, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    y = target[:, None].to(torch.float64)
    assert torch.autograd.gradcheck(
        lambda z: training_loss(z, y, "skeleton_recall", 0.7, thin_class=1).total,
        (logits,), eps=1e-6, atol=1e-8, fast_mode=True,
    )


def test_gradient_is_the_tube_over_its_size():
    mask = _random_mask(4, 24)
    tube = torch.tensor(tubed_skeleton(mask == 0), dtype=torch.float64)  # membrane = 0
    x = torch.full((24, 24), 0.5, dtype=torch.float64, requires_grad=True)
    skeleton_recall_loss(x, torch.tensor(mask)).backward()
    # loss = 1 - (sum((1 - f) * tube) + s) / (|tube| + s): d/df = tube / (|tube| + s)
    assert torch.allclose(x.grad, tube / (tube.sum() + S), rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------------------------
# bad input and the training term


def test_bad_input():
    target = torch.tensor(_line(), dtype=torch.float64)
    good = torch.full_like(target, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        skeleton_recall_loss(torch.full_like(target, float("nan")), target)
    with pytest.raises(ValueError, match="same shape"):
        skeleton_recall_loss(good[:-1], target)
    with pytest.raises(ValueError, match="binary"):
        skeleton_recall_loss(good, target * 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        skeleton_recall_loss(good + 1, target)
    with pytest.raises(ValueError, match="thin_class"):
        skeleton_recall_loss(good, target, thin_class=2)
    with pytest.raises(ValueError, match="reduction"):
        skeleton_recall_loss(good, target, reduction="sum")
    with pytest.raises(ValueError, match="smooth"):
        skeleton_recall_loss(good, target, smooth=0.0)
    with pytest.raises(ValueError, match="shape"):
        skeleton_recall_loss(good[None, None, None], target[None, None, None])
    with pytest.raises(TypeError, match="torch.Tensor"):
        skeleton_recall_loss(good.numpy(), target)


def test_registered_as_a_training_term():
    assert "skeleton_recall" in TOPO_LOSSES and reexported is skeleton_recall_loss
    torch.manual_seed(1)
    logits = torch.randn(2, 1, 32, 32)
    y = torch.tensor(np.stack([_random_mask(5, 32), _random_mask(6, 32)]))[:, None].float()
    parts = training_loss(logits, y, "skeleton_recall", 0.5)
    term = skeleton_recall_loss(torch.sigmoid(logits), y)
    assert parts.topo.item() == pytest.approx(term.item())
    assert parts.bce.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, y).item())
    assert parts.total.item() == pytest.approx(parts.bce.item() + 0.5 * term.item())
    mortar = training_loss(logits, y, "skeleton_recall", 0.5, thin_class=1).topo
    assert mortar.item() == pytest.approx(skeleton_recall_loss(torch.sigmoid(logits), y, 1).item())
    assert mortar.item() != pytest.approx(term.item())
    with pytest.raises(TypeError):
        training_loss(logits, y, "skeleton_recall", 0.0, iterations=3)
    settings = [s for s in LOSS_STEP_SETTINGS.values() if s["loss"] == "skeleton_recall"]
    assert len(settings) == 1 and settings[0]["lam"] > 0
