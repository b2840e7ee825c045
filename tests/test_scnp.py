"""SCNP (Valverde et al., CVPR 2026): the penalised logits, their gradient, the loss term and
its place in training."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from topobook.losses.scnp import SCNP_WINDOW, scnp_logits, scnp_loss
from topobook.losses.topological import TOPO_LOSSES, training_loss
from topobook.study.timing import LOSS_STEP_SETTINGS
from topobook.training.config import TrainConfig
from topobook.training.run import _loss_parts, _term_options
from topobook.training.unet import UNet


def brute_force(z: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """The oracle: for every pixel, the min (class 1) or max (class 0) of ``z`` over the pixels
    of its class in the ``window x window`` square around it, inside the image; loops only."""
    h, w = z.shape
    r = window // 2
    out = np.empty_like(z)
    for i, j in itertools.product(range(h), range(w)):
        same = [
            z[a, b]
            for a in range(max(0, i - r), min(h, i + r + 1))
            for b in range(max(0, j - r), min(w, j + r + 1))
            if y[a, b] == y[i, j]
        ]
        out[i, j] = min(same) if y[i, j] == 1 else max(same)
    return out


def random_pair(seed: int, shape=(2, 1, 9, 11), dtype=torch.float64):
    """Logits with distinct values (no ties: min and max are then differentiable) and a
    random binary target."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=gen, dtype=dtype)
    y = (torch.rand(shape, generator=gen) < 0.5).to(dtype)
    return z, y


# ---------------------------------------------------------------------------------------------
# hand-worked examples


def test_two_columns_of_each_class():
    # left half class 1, right half class 0
    z = torch.tensor(
        [
            [2.0, 3.0, -1.0, -4.0],
            [0.5, 4.0, 1.5, -3.0],
            [5.0, 6.0, -2.0, -5.0],
            [7.0, 1.0, -6.0, 0.2],
        ]
    )
    y = torch.tensor([[1.0, 1, 0, 0]] * 4)
    # class 1: the min over rows i-1..i+1 of columns 0-1 (column 2 is the other class);
    # class 0: the max over rows i-1..i+1 of columns 2-3. Row 3 has no row 4 below it.
    expected = torch.tensor(
        [
            [0.5, 0.5, 1.5, 1.5],
            [0.5, 0.5, 1.5, 1.5],
            [0.5, 0.5, 1.5, 1.5],
            [1.0, 1.0, 0.2, 0.2],
        ]
    )
    assert torch.equal(scnp_logits(z, y), expected)
    assert torch.equal(scnp_logits(z, y, window=1), z)


def test_one_row_with_windows_3_and_5():
    z = torch.tensor([[3.0, 1.0, 2.0, 4.0, -2.0]])
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0]])
    # window 3: pixel 0 sees only itself of its class (column -1 is outside), pixel 2 is
    # alone among class-1 pixels, pixels 3 and 4 take the larger class-0 logit 4
    assert scnp_logits(z, y, 3).tolist() == [[3.0, 1.0, 2.0, 4.0, 4.0]]
    # window 5: the class-1 pixels 0 and 2 see each other; pixel 1 sees pixel 3's 4
    assert scnp_logits(z, y, 5).tolist() == [[2.0, 4.0, 2.0, 4.0, 4.0]]


def test_an_isolated_pixel_keeps_its_logit():
    z = torch.arange(25.0).reshape(5, 5)
    y = torch.zeros(5, 5)
    y[2, 2] = 1.0
    out = scnp_logits(z, y)
    assert out[2, 2] == z[2, 2]  # no other class-1 pixel in its window
    assert out[1, 1] == 11.0  # the max of its class-0 neighbours, not the centre's 12
    assert out[4, 4] == 24.0 and out[0, 0] == 6.0  # corners: 2 x 2 windows inside the image


def test_agrees_with_the_brute_force_oracle():
    for seed, window in itertools.product(range(3), (1, 3, 5, 7, 13)):
        z, y = random_pair(seed)
        out = scnp_logits(z, y, window)
        for b in range(len(z)):
            assert np.array_equal(
                out[b, 0].numpy(), brute_force(z[b, 0].numpy(), y[b, 0].numpy(), window)
            )


def test_shapes_dtypes_and_order():
    z, y = random_pair(4, shape=(3, 8, 8), dtype=torch.float32)
    assert scnp_logits(z, y).shape == (3, 8, 8) and scnp_logits(z, y).dtype == torch.float32
    assert scnp_logits(z[0], y[0]).shape == (8, 8)
    assert torch.equal(scnp_logits(z[:, None], y[:, None])[:, 0], scnp_logits(z, y))
    out = scnp_logits(z, y, 5)
    # a pixel is in its own pool: never better than itself
    assert (out[y == 1] <= z[y == 1]).all() and (out[y == 0] >= z[y == 0]).all()
    # the target may be bool or integer
    assert torch.equal(scnp_logits(z, y.bool()), scnp_logits(z, y.long()))


def test_symmetric_in_the_two_classes():
    z, y = random_pair(5)
    assert torch.equal(scnp_logits(-z, 1 - y, 5), -scnp_logits(z, y, 5))


def test_one_class_everywhere_is_a_plain_pooling():
    z, _ = random_pair(6)
    ones = torch.ones_like(z)
    assert torch.equal(scnp_logits(z, ones), -F.max_pool2d(-z, 3, 1, 1))
    assert torch.equal(scnp_logits(z, 0 * ones), F.max_pool2d(z, 3, 1, 1))


# ---------------------------------------------------------------------------------------------
# the gradient


def test_gradient_of_the_logits_by_finite_differences():
    z, y = random_pair(7, shape=(2, 1, 6, 7))
    for window in (3, 5):
        z_ = z.clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda t, w=window: scnp_logits(t, y, w), (z_,),
                                        fast_mode=True)


def test_gradient_of_the_loss_by_finite_differences():
    z, y = random_pair(8, shape=(2, 1, 6, 7))
    z.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: scnp_loss(t, y), (z,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda t: scnp_loss(t, y, 5, membrane_weight=3.0), (z,),
                                    fast_mode=True)


def test_gradient_goes_to_the_winner_of_each_pool():
    z, y = random_pair(9)
    z.requires_grad_()
    scnp_logits(z, y, 3).sum().backward()
    # oracle: how often each pixel is the worst of a same-class window
    counts = np.zeros(z.shape[2:] + (len(z),))
    for b in range(len(z)):
        zb, yb = z[b, 0].detach().numpy(), y[b, 0].numpy()
        worst = brute_force(zb, yb, 3)
        for i, j in itertools.product(*map(range, zb.shape)):
            for a, c in itertools.product(range(i - 1, i + 2), range(j - 1, j + 2)):
                if 0 <= a < zb.shape[0] and 0 <= c < zb.shape[1] and yb[a, c] == yb[i, j]:
                    counts[a, c, b] += zb[a, c] == worst[i, j]
    assert np.array_equal(z.grad[:, 0].numpy(), counts.transpose(2, 0, 1))


# ---------------------------------------------------------------------------------------------
# the loss term


def test_loss_is_the_excess_bce_of_the_penalised_logits():
    z, y = random_pair(10, dtype=torch.float32)
    excess = F.binary_cross_entropy_with_logits(scnp_logits(z, y), y) - (
        F.binary_cross_entropy_with_logits(z, y)
    )
    assert scnp_loss(z, y).item() == pytest.approx(excess.item(), rel=1e-5)
    assert scnp_loss(z, y).item() > 0
    assert scnp_loss(z, y, window=1).item() == 0.0  # no neighbour, no penalty
    constant = torch.where(y == 1, 2.0, -1.5)  # nothing worse than a pixel in its class
    assert scnp_loss(constant, y).item() == 0.0


def test_membrane_weight_weighs_the_class_0_pixels():
    z, y = random_pair(11)
    weight = torch.where(y == 1, 1.0, 3.0).to(z.dtype)
    expected = F.binary_cross_entropy_with_logits(scnp_logits(z, y), y, weight=weight) - (
        F.binary_cross_entropy_with_logits(z, y, weight=weight)
    )
    assert scnp_loss(z, y, membrane_weight=3.0).item() == pytest.approx(expected.item(), rel=1e-12)


def test_training_loss_at_lam_1_is_the_bce_of_the_penalised_logits():
    assert "scnp" in TOPO_LOSSES
    z, y = random_pair(12)
    parts = training_loss(z, y, "scnp", 1.0, window=5)
    assert parts.bce.item() == pytest.approx(F.binary_cross_entropy_with_logits(z, y).item())
    assert parts.topo.item() == pytest.approx(scnp_loss(z, y, 5).item(), rel=1e-12)
    reference = F.binary_cross_entropy_with_logits(scnp_logits(z, y, 5), y)
    assert parts.total.item() == pytest.approx(reference.item(), rel=1e-12)
    assert training_loss(z, y, "scnp", 0.0).topo.item() == 0.0
    with pytest.raises(TypeError):
        training_loss(z, y, "scnp", 0.0, iterations=3)  # clDice's option, checked at lam = 0


def test_training_loss_gradient_by_finite_differences():
    z, y = random_pair(13, shape=(1, 1, 5, 6))
    z.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: training_loss(t, y, "scnp", 0.7).total, (z,))


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("window", [0, 2, 4, -1, -3, 3.0, True, "3", None])
def test_bad_window(window):
    z, y = random_pair(14)
    with pytest.raises(ValueError, match="window must be an odd integer"):
        scnp_logits(z, y, window)
    with pytest.raises(ValueError, match="window must be an odd integer"):
        scnp_loss(z, y, window)


def test_bad_tensors():
    z, y = random_pair(15, dtype=torch.float32)
    with pytest.raises(ValueError, match="same shape"):
        scnp_logits(z, y[:, :, :-1])
    with pytest.raises(ValueError, match="one sigmoid logit"):
        scnp_logits(z.expand(2, 2, 9, 11), y.expand(2, 2, 9, 11))  # two channels
    with pytest.raises(ValueError, match="one sigmoid logit"):
        scnp_logits(z[0, 0, 0], y[0, 0, 0])  # 1-D
    with pytest.raises(ValueError, match="non-empty"):
        scnp_logits(z[:, :, :0], y[:, :, :0])
    with pytest.raises(ValueError, match="binary"):
        scnp_logits(z, 0.5 * y)
    with pytest.raises(ValueError, match="binary"):
        scnp_logits(z, torch.where(y == 1, float("nan"), 0.0))
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="NaN or infinite"):
            scnp_logits(torch.where(y == 1, bad, z), y)
    with pytest.raises(ValueError, match="floating-point"):
        scnp_logits(y.long(), y)
    with pytest.raises(TypeError, match="torch.Tensor"):
        scnp_logits(z.numpy(), y)
    with pytest.raises(ValueError, match="membrane_weight"):
        scnp_loss(z, y, membrane_weight=0.0)
    with pytest.raises(ValueError, match="binary"):  # training_loss accepts soft targets
        training_loss(z, 0.5 * y, "scnp", 1.0)


# ---------------------------------------------------------------------------------------------
# training


def test_train_config_accepts_scnp_and_checks_the_window():
    config = TrainConfig(strategy="topo_loss", loss="scnp", lam=1.0, scnp_window=5)
    assert config.scnp_window == 5 and TrainConfig().scnp_window == SCNP_WINDOW
    assert _term_options(config) == {"window": 5, "membrane_weight": config.membrane_weight}
    for window in (0, 2, -1, 3.0, True):
        with pytest.raises(ValueError, match="scnp_window"):
            TrainConfig(strategy="topo_loss", loss="scnp", scnp_window=window)
    # the identity of the runs stored before the field existed is unchanged
    assert "scnp_window" not in TrainConfig().identity()
    assert config.identity()["scnp_window"] == 5


def test_one_training_step_with_scnp():
    torch.manual_seed(0)
    config = TrainConfig(strategy="topo_loss", loss="scnp", lam=1.0, recipe="stable")
    model = UNet(base_width=4, depth=2, norm="group")
    x = torch.rand(2, 1, 16, 16)
    y = (torch.rand(2, 1, 16, 16) < 0.6).float()
    logits = model(x)
    parts = _loss_parts(logits, y, config, epoch=0)
    parts.total.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    # membrane-weighted BCE (recipe "stable": 3) of the SCNP logits alone, at lam = 1
    weight = torch.where(y == 1, 1.0, config.membrane_weight)
    expected = F.binary_cross_entropy_with_logits(scnp_logits(logits, y), y, weight=weight)
    assert parts.total.item() == pytest.approx(expected.item(), rel=1e-5)


def test_timed_in_the_loss_step_benchmark():
    settings = [s for s in LOSS_STEP_SETTINGS.values() if s["loss"] == "scnp"]
    assert settings == [{"loss": "scnp", "lam": 1.0, "window": 3}]
