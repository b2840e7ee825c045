"""clDice, the sorted-value control, training_loss, and TopoNet's rule as lifetime matching."""


import numpy as np
import pytest
import torch
from oracles import top_cubical_diagrams
from scipy import ndimage

from topobook.losses.topological import (
    CLDICE_SMOOTH,
    LAMBDA_NOTEBOOK,
    LAMBDA_PAPER,
    TOPO_LOSSES,
    cldice_loss,
    combined_loss,
    soft_skeleton,
    sorted_value_loss,
    topological_loss,
    training_loss,
)

# ---------------------------------------------------------------------------------------------
# oracles written with scipy's grey morphology (no max-pooling): an erosion over the 3x3 cross
# and a dilation over the 3x3 square; mode="nearest" repeats the edge pixel, which is already in
# the window, so it equals "ignore the outside"

CROSS = ndimage.generate_binary_structure(2, 1)


def np_skeleton(x: np.ndarray, iterations: int) -> np.ndarray:
    def erode(a):
        return ndimage.grey_erosion(a, footprint=CROSS, mode="nearest")

    def opened(a):
        return ndimage.grey_dilation(erode(a), size=(3, 3), mode="nearest")

    skel = np.maximum(x - opened(x), 0)
    for _ in range(iterations):
        x = erode(x)
        delta = np.maximum(x - opened(x), 0)
        skel = skel + np.maximum(delta - skel * delta, 0)
    return skel


def np_cldice(f: np.ndarray, g: np.ndarray, iterations: int, smooth: float = 1.0) -> float:
    """f, g: (B, H, W) cell maps; clDice of the membranes 1 - f, 1 - g, sums over the batch."""
    pred, true = 1 - f, 1 - g
    sp = np.stack([np_skeleton(p, iterations) for p in pred])
    st = np.stack([np_skeleton(t, iterations) for t in true])
    tprec = (np.sum(sp * true) + smooth) / (np.sum(sp) + smooth)
    tsens = (np.sum(st * pred) + smooth) / (np.sum(st) + smooth)
    return 1 - 2 * tprec * tsens / (tprec + tsens)


def membrane_like(rng, shape, n_lines=3):
    """A binary cell mask (1 = cell) crossed by a few 1- or 2-pixel-wide membrane lines."""
    g = np.ones(shape)
    for _ in range(n_lines):
        width = int(rng.integers(1, 3))
        if rng.integers(2):
            r = int(rng.integers(0, shape[0] - width))
            g[r : r + width, :] = 0
        else:
            c = int(rng.integers(0, shape[1] - width))
            g[:, c : c + width] = 0
    return g


# ---------------------------------------------------------------------------------------------
# soft skeleton


def test_soft_skeleton_of_a_thick_bar_is_its_centre_line():
    # A 5x11 bar: erosion by the cross gives 3x9, then 1x7 (row 4, columns 4..10); that row
    # is its own erosion's opening's complement, so it is the skeleton. Opening the bar and the
    # 3x9 rectangle gives them back, so nothing else enters.
    x = torch.zeros(9, 15, dtype=torch.float64)
    x[2:7, 2:13] = 1
    expected = np.zeros((9, 15))
    expected[4, 4:11] = 1
    for iterations in (2, 3, 10):
        np.testing.assert_array_equal(soft_skeleton(x, iterations).numpy(), expected)
    # the centre line is reached after two erosions only
    assert soft_skeleton(x, 1).sum().item() == 0


def test_soft_skeleton_of_a_thin_line_is_the_line():
    x = torch.zeros(7, 9)
    x[3, 1:8] = 1
    np.testing.assert_array_equal(soft_skeleton(x, 0).numpy(), x.numpy())


def test_iterations_matter_on_a_wide_shape():
    # half-width 5: three iterations do not reach the centre line, ten do
    x = torch.zeros(15, 25, dtype=torch.float64)
    x[2:13, 2:23] = 1
    assert soft_skeleton(x, 3).sum().item() == 0
    expected = np.zeros((15, 25))
    expected[7, 7:18] = 1
    np.testing.assert_array_equal(soft_skeleton(x, 10).numpy(), expected)
    g = 1 - x  # as a membrane truth: cells 0 inside the wide bar
    f = torch.full_like(g, 0.5)
    assert cldice_loss(f, g, iterations=3).item() != pytest.approx(
        cldice_loss(f, g, iterations=10).item(), abs=1e-3
    )


def test_soft_skeleton_of_binary_input_is_binary_and_inside():
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = ndimage.binary_opening(rng.random((20, 17)) > 0.35).astype(float)
        s = soft_skeleton(torch.tensor(x), 10).numpy()
        assert np.isin(s, (0.0, 1.0)).all()
        assert np.all(s <= x)
        np.testing.assert_array_equal(s, np_skeleton(x, 10))


def test_soft_skeleton_matches_grey_morphology_oracle_and_keeps_shape():
    rng = np.random.default_rng(1)
    x = rng.random((2, 1, 11, 13))
    for iterations in (0, 3, 10):
        s = soft_skeleton(torch.tensor(x), iterations)
        assert s.shape == x.shape
        expected = np.stack([np_skeleton(xi[0], iterations) for xi in x])[:, None]
        np.testing.assert_allclose(s.numpy(), expected, rtol=0, atol=1e-14)
    assert soft_skeleton(torch.tensor(x[0, 0]), 3).shape == (11, 13)


# ---------------------------------------------------------------------------------------------
# clDice


def test_cldice_is_zero_for_identical_binary_masks():
    # The skeleton of a binary mask lies inside it, so sum(S_P * T) = sum(S_P) and both ratios
    # are (s + 1) / (s + 1) = 1 exactly: loss 1 - 2*1*1/2 = 0.
    rng = np.random.default_rng(2)
    g = torch.tensor(membrane_like(rng, (16, 16)))
    for iterations in (3, 10):
        assert cldice_loss(g, g, iterations).item() == 0.0


def test_cldice_hand_worked_lines():
    # Membrane = 1-pixel rows, their own skeleton. Truth: row 3, columns 0..W-1 (W = 12 pixels);
    # prediction: row 3, columns 0..k-1 (k = 5). tprec = (k + 1) / (k + 1) = 1,
    # tsens = (k + 1) / (W + 1), loss = 1 - 2 tsens / (1 + tsens).
    assert CLDICE_SMOOTH == 1.0  # the reference's smooth
    h, w, k = 8, 12, 5
    g = torch.ones(h, w, dtype=torch.float64)
    g[3, :] = 0
    f = torch.ones(h, w, dtype=torch.float64)
    f[3, :k] = 0
    tsens = (k + CLDICE_SMOOTH) / (w + CLDICE_SMOOTH)
    expected = 1 - 2 * tsens / (1 + tsens)
    assert cldice_loss(f, g).item() == pytest.approx(expected, abs=1e-15)
    # disjoint lines (row 5 predicted): both ratios 1 / (12 + 1), loss = 1 - 1/13
    f2 = torch.ones(h, w, dtype=torch.float64)
    f2[5, :] = 0
    assert cldice_loss(f2, g).item() == pytest.approx(1 - 1 / 13, abs=1e-15)
    # the batch is summed before the ratios: image 1 as above, image 2 exact
    # tprec = 1, tsens = (k + w + 1) / (2 w + 1)
    batch = cldice_loss(torch.stack([f, g]), torch.stack([g, g]))
    tsens = (k + w + 1) / (2 * w + 1)
    assert batch.item() == pytest.approx(1 - 2 * tsens / (1 + tsens), abs=1e-15)
    mean_of_images = (cldice_loss(f, g) + cldice_loss(g, g)) / 2
    assert abs(batch.item() - mean_of_images.item()) > 0.01


@pytest.mark.parametrize("iterations", [3, 10])
def test_cldice_matches_numpy_oracle(iterations):
    rng = np.random.default_rng(3)
    g = np.stack([membrane_like(rng, (14, 12)) for _ in range(2)])
    f = np.clip(ndimage.gaussian_filter(g, (0, 1, 1)) + 0.1 * rng.standard_normal(g.shape), 0, 1)
    value = cldice_loss(torch.tensor(f)[:, None], torch.tensor(g)[:, None], iterations)
    assert value.item() == pytest.approx(np_cldice(f, g, iterations), rel=1e-12)
    assert 0 < value.item() < 1


def test_cldice_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    g = torch.tensor(membrane_like(rng, (8, 8), n_lines=2))
    f = torch.tensor(0.1 + 0.8 * rng.random((8, 8)), requires_grad=True)
    for iterations in (1, 3):
        assert torch.autograd.gradcheck(
            lambda x, it=iterations: cldice_loss(x, g, it), (f,), eps=1e-6, atol=1e-6
        )


# ---------------------------------------------------------------------------------------------
# sorted-value control


def test_sorted_value_loss_equals_brute_force():
    rng = np.random.default_rng(5)
    f = rng.random((3, 1, 9, 7))
    g = (rng.random((3, 1, 9, 7)) > 0.4).astype(float)
    per_image = [
        2
        * sum(
            (a - b) ** 2
            for a, b in zip(sorted(fi.ravel())[:-1], sorted(gi.ravel())[:-1], strict=True)
        )
        for fi, gi in zip(f, g, strict=True)
    ]
    loss = sorted_value_loss(torch.tensor(f), torch.tensor(g))
    assert loss.item() == pytest.approx(np.mean(per_image), rel=1e-12)
    total = sorted_value_loss(torch.tensor(f), torch.tensor(g), reduction="sum")
    assert total.item() == pytest.approx(np.sum(per_image), rel=1e-12)


def test_sorted_value_loss_is_the_term_of_the_notebook_loss():
    # As in tests/test_losses.py: the term is twice the sorted-value sum that lower-bounds the
    # notebook loss (births and deaths of the zero-length bars), ...
    rng = np.random.default_rng(6)
    f = torch.tensor(rng.random((16, 16)))
    g = torch.tensor((rng.random((16, 16)) > 0.3).astype(float))
    sorted_term = np.sum((np.sort(f.numpy().ravel())[:-1] - np.sort(g.numpy().ravel())[:-1]) ** 2)
    assert sorted_value_loss(f, g).item() == pytest.approx(2 * sorted_term, rel=1e-12)
    notebook = dict(matching="birth", complex="freudenthal", keep_zero_length=True, dims=(0,))
    assert topological_loss(f, g, **notebook).item() >= sorted_term
    # ... and it is the whole H0 part of the notebook loss when every H0 bar has zero length:
    # f increases in row-major order (each pixel but the last has a higher right or lower
    # neighbour, so its class dies at once) and the cells of g form one 6-connected block.
    h, w = 8, 9
    ramp = np.cumsum(rng.random(h * w) + 0.1)
    f = torch.tensor((0.05 + 0.9 * ramp / ramp.max()).reshape(h, w))
    g = torch.zeros(h, w, dtype=torch.float64)
    g[2:6, 1:7] = 1
    assert topological_loss(f, g, **notebook).item() == pytest.approx(
        sorted_value_loss(f, g).item(), rel=1e-12
    )


def test_sorted_value_gradient_matches_finite_differences():
    rng = np.random.default_rng(7)
    f = torch.tensor(0.1 + 0.8 * rng.random((2, 6, 5)), requires_grad=True)
    g = torch.tensor((rng.random((2, 6, 5)) > 0.5).astype(float))
    assert torch.autograd.gradcheck(lambda x: sorted_value_loss(x, g), (f,), eps=1e-6)
    # and zero at each image's maximum, which is dropped
    sorted_value_loss(f, g).backward()
    for fi, gi in zip(f.detach(), f.grad, strict=True):
        assert gi.reshape(-1)[fi.argmax()] == 0


# ---------------------------------------------------------------------------------------------
# TopoNet's rule: lifetime matching against a binary truth


def superlevel_diagrams(f: np.ndarray) -> list[np.ndarray]:
    """Superlevel (births >= deaths) cubical diagrams from the textbook reduction of -f."""
    return [-d for d in top_cubical_diagrams(-f)]


def toponet_loss(f: np.ndarray, g: np.ndarray) -> float:
    """TopoNet's loss (Hu et al., NeurIPS 2019, Sec. 3) for a binary truth g, from D(f) alone.

    D(g) holds beta_k "perfect" points (1, 0) per dimension (superlevel: birth 1, death 0):
    beta_0 - 1 finite H0 points (the cells' 8-connected components, one of which is the
    essential class) and beta_1 H1 points (4-connected holes). The beta_k longest finite bars of
    D(f) go to (1, 0), at squared distance (1 - b)^2 + d^2; the others to the diagonal, at the
    squared distance to their projection, (b - d)^2 / 2; perfect points left over (when D(f)
    has fewer bars) cost 1/2 each. Essential bars are not part of this sum.
    """
    n_cells = ndimage.label(g == 1, structure=np.ones((3, 3)))[1]
    holes = ndimage.label(np.pad(g == 0, 1, constant_values=True), structure=CROSS)[1] - 1
    total = 0.0
    for dgm, beta in zip(superlevel_diagrams(f), (n_cells - 1, holes), strict=True):
        finite = dgm[np.isfinite(dgm[:, 1])]
        finite = finite[np.argsort(-(finite[:, 0] - finite[:, 1]))]
        perfect, rest = finite[:beta], finite[beta:]
        total += np.sum((1 - perfect[:, 0]) ** 2 + perfect[:, 1] ** 2)
        total += np.sum((rest[:, 0] - rest[:, 1]) ** 2) / 2
        total += max(beta - len(finite), 0) / 2
    return float(total)


def test_lifetime_matching_against_binary_truth_is_toponets_rule():
    # Exact relationship: topological_loss(lifetime, cubical) = TopoNet's sum over finite bars
    # + (max f - 1)^2, the essential H0 bar (born at max f) compared with the truth's (born at 1).
    rng = np.random.default_rng(8)
    cases = []
    for _ in range(5):  # random f and g: 0-3 finite H0 and 1-4 H1 points in D(g), 6-9 in D(f)
        f = 0.05 + 0.9 * rng.random((8, 8))
        g = (rng.random((8, 8)) > 0.45).astype(float)
        g[0, 0] = 1  # at least one cell pixel, so D(g) has its essential bar born at 1
        cases.append((f, g))
    # a blurred truth with noise: some bars of f near (1, 0), fewer bars than the random f
    g = np.ones((8, 8))
    g[3, :] = 0
    g[:, 5] = 0
    f = np.clip(ndimage.gaussian_filter(g, 0.7) + 0.05 * rng.standard_normal((8, 8)), 0, 1)
    cases.append((f, g))
    # fewer bars than the truth: f a monotone ramp (one component, no holes)
    f = np.linspace(0.1, 0.9, 64).reshape(8, 8)
    cases.append((f, g))
    for f, g in cases:
        ours = topological_loss(torch.tensor(f), torch.tensor(g), matching="lifetime")
        expected = toponet_loss(f, g) + (f.max() - 1) ** 2
        assert ours.item() == pytest.approx(expected, rel=1e-12, abs=1e-14)
    # in the last case every perfect point is unmatched: 4 cells, no holes, so (4 - 1) / 2
    assert toponet_loss(f, g) == pytest.approx((4 - 1) / 2)


# ---------------------------------------------------------------------------------------------
# training_loss


def logits_and_target(seed=9, shape=(1, 1, 12, 12)):
    rng = np.random.default_rng(seed)
    logits = torch.tensor(rng.normal(size=shape), requires_grad=True)
    target = torch.tensor((rng.random(shape) > 0.4).astype(float))
    return logits, target


def test_training_loss_topo_equals_combined_loss():
    for kwargs in ({}, dict(matching="birth", complex="freudenthal", keep_zero_length=True)):
        x, g = logits_and_target()
        parts = training_loss(x, g, "topo", LAMBDA_NOTEBOOK, **kwargs)
        parts.total.backward()
        grad = x.grad.clone()
        x.grad = None
        reference = combined_loss(x, g, LAMBDA_NOTEBOOK, **kwargs)
        reference.total.backward()
        for a, b in zip(parts, reference, strict=True):
            assert a.item() == b.item()
        np.testing.assert_array_equal(grad.numpy(), x.grad.numpy())


@pytest.mark.parametrize(
    "name, term",
    [
        ("cldice", lambda f, g: cldice_loss(f, g, iterations=3)),
        ("sorted_value", sorted_value_loss),
        ("none", lambda f, g: torch.zeros(())),
    ],
)
def test_training_loss_is_bce_plus_lam_times_term(name, term):
    x, g = logits_and_target(shape=(2, 1, 10, 10))
    lam = 0.5 if name != "none" else 0.0
    parts = training_loss(x, g, name, lam)
    bce = torch.nn.functional.binary_cross_entropy(torch.sigmoid(x), g)
    assert parts.bce.item() == pytest.approx(bce.item(), rel=1e-10)
    assert parts.topo.item() == pytest.approx(term(torch.sigmoid(x), g).item(), rel=1e-10)
    assert parts.total.item() == pytest.approx(bce.item() + lam * parts.topo.item(), rel=1e-10)
    parts.total.backward()
    assert torch.isfinite(x.grad).all()


def test_training_loss_lam_zero_skips_the_term():
    x, g = logits_and_target()
    for name in ("topo", "cldice", "sorted_value"):
        parts = training_loss(x, g, name, 0.0)
        assert parts.topo.item() == 0.0
        assert parts.total.item() == parts.bce.item()


def test_training_loss_with_betti_matching():
    from topobook.topology.betti_matching import betti_matching_loss

    x, g = logits_and_target()
    parts = training_loss(x, g, "betti_matching", 0.25)
    expected = betti_matching_loss(torch.sigmoid(x), g)
    assert parts.topo.item() == pytest.approx(expected.item())
    assert parts.total.item() == pytest.approx(parts.bce.item() + 0.25 * expected.item())
    with pytest.raises(TypeError, match="unknown"):
        training_loss(x, g, "betti_matching", 0.25, unknown=1)


# ---------------------------------------------------------------------------------------------
# bad input


def test_training_loss_rejects_bad_options():
    x, g = logits_and_target()
    with pytest.raises(ValueError, match="cldice"):  # the message lists the known names
        training_loss(x, g, "clDice", 0.1)
    assert TOPO_LOSSES == (
        "none", "topo", "cldice", "sorted_value", "betti_matching", "skeleton_recall", "scnp"
    )
    with pytest.raises(ValueError, match="lam"):
        training_loss(x, g, "topo", -1.0)
    with pytest.raises(TypeError, match="iter"):
        training_loss(x, g, "cldice", 0.0, iter_=10)  # checked even when lam = 0
    with pytest.raises(TypeError, match="none"):
        training_loss(x, g, "none", 0.0, iterations=3)
    with pytest.raises(TypeError):
        training_loss(x, g, "sorted_value", 0.1, matching="birth")
    assert LAMBDA_PAPER < LAMBDA_NOTEBOOK  # imported names are the real constants


def test_bad_iterations_and_reduction_raise():
    f = torch.rand(6, 6)
    with pytest.raises(ValueError, match="iterations"):
        cldice_loss(f, f, iterations=-1)
    with pytest.raises(TypeError, match="iterations"):
        soft_skeleton(f, 2.5)
    with pytest.raises(ValueError, match="smooth"):
        cldice_loss(f, f, smooth=0.0)
    with pytest.raises(ValueError, match="reduction"):
        sorted_value_loss(f, f, reduction="max")
    with pytest.raises(ValueError, match="NaN"):
        soft_skeleton(torch.full((4, 4), float("nan")), 3)
