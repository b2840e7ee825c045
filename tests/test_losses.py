import numpy as np
import pytest
import torch

from topobook.losses.topological import (
    LAMBDA_NOTEBOOK,
    LAMBDA_PAPER,
    cldice_loss,
    combined_loss,
    sorted_value_loss,
    topological_loss,
)
from topobook.topology.persistence import COMPLEXES, diagrams


def hand_example():
    """A broken loop and a spurious component (7x7), worked by hand in the test below."""
    f = np.full((7, 7), 0.05)  # border
    f[1:6, 1:6] = 0.9  # ring ...
    f[2:5, 2:5] = 0.2  # ... around a 3x3 interior
    f[1, 3] = 0.3  # the gap that breaks the loop
    f[5, 3] = 0.95  # the unique maximum
    f[3, 3] = 0.6  # a spurious bright spot inside the hole
    f[2, 3] = 0.25  # where the spot merges with the ring
    f[4, 4] = 0.15  # the last pixel of the hole to fill
    g = np.zeros((7, 7))
    g[1:6, 1:6] = 1.0
    g[2:5, 2:5] = 0.0
    return f, g


def test_hand_worked_loss_and_gradient():
    # Superlevel, cubical. D(f): H0 {(0.95, -inf), (0.6, 0.25)}, H1 {(0.3, 0.15)}.
    # D(g): H0 {(1, -inf)}, H1 {(1, 0)}. Lifetime matching:
    #   essential births: (0.95 - 1)^2                     = 0.0025
    #   spurious H0 point to the diagonal: (0.6 - 0.25)^2/2 = 0.06125
    #   H1: (0.3 - 1)^2 + (0.15 - 0)^2                       = 0.5125
    f_np, g_np = hand_example()
    f = torch.tensor(f_np, requires_grad=True)
    loss = topological_loss(f, torch.tensor(g_np), matching="lifetime", complex="cubical")
    assert loss.item() == pytest.approx(0.0025 + 0.06125 + 0.5125, abs=1e-12)
    loss.backward()
    expected = np.zeros((7, 7))
    expected[5, 3] = 2 * (0.95 - 1)  # the essential bar's birth pixel
    expected[3, 3] = 0.6 - 0.25  # birth of the spurious component: push it down
    expected[2, 3] = -(0.6 - 0.25)  # where it dies: pull it up
    expected[1, 3] = 2 * (0.3 - 1)  # the gap: raise it to close the loop
    expected[4, 4] = 2 * 0.15  # the hole's last pixel: lower it
    np.testing.assert_allclose(f.grad.numpy(), expected, atol=1e-12)


def test_loss_is_zero_on_the_truth_and_positive_elsewhere():
    f_np, g_np = hand_example()
    g = torch.tensor(g_np)
    for matching in ("lifetime", "birth"):
        for complex in COMPLEXES:
            assert topological_loss(g, g, matching=matching, complex=complex).item() == 0.0
            assert topological_loss(torch.tensor(f_np), g, matching=matching, complex=complex) > 0
    assert (
        topological_loss(
            g, g, matching="birth", complex="freudenthal", keep_zero_length=True
        ).item()
        == 0.0
    )


def test_invariant_to_symmetries_of_the_complex():
    rng = np.random.default_rng(0)
    f = torch.tensor(rng.random((12, 12)))
    g = torch.tensor((rng.random((12, 12)) > 0.4).astype(float))
    square_symmetries = [
        lambda x: x.flip(0),
        lambda x: x.flip(1),
        lambda x: x.rot90(1, (0, 1)),
        lambda x: x.T,
    ]
    # The Freudenthal diagonal (r,c)-(r+1,c+1) is kept by transposition and rotation by 180
    # degrees only; the cubical complexes are symmetric under all eight symmetries.
    diagonal_symmetries = [lambda x: x.T, lambda x: x.rot90(2, (0, 1))]
    for complex in COMPLEXES:
        symmetries = diagonal_symmetries if complex == "freudenthal" else square_symmetries
        for matching in ("lifetime", "birth"):
            base = topological_loss(f, g, matching=matching, complex=complex)
            for s in symmetries:
                moved = topological_loss(s(f), s(g), matching=matching, complex=complex)
                assert moved.item() == pytest.approx(base.item(), rel=1e-12)


def generic_image(rng, shape):
    """Random values in [0.1, 0.9]: distinct, and with distinct differences, so that no two bars
    tie in birth or lifetime (a tie makes the matching, hence the loss, non-smooth)."""
    return 0.1 + 0.8 * rng.random(shape)


def loss_and_numeric_gradient(f_np, g, eps=1e-7, **kwargs):
    f = torch.tensor(f_np, requires_grad=True)
    topological_loss(f, g, **kwargs).backward()
    numeric = np.zeros_like(f_np)
    for idx in np.ndindex(f_np.shape):
        plus, minus = f_np.copy(), f_np.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (
            topological_loss(torch.tensor(plus), g, **kwargs).item()
            - topological_loss(torch.tensor(minus), g, **kwargs).item()
        ) / (2 * eps)
    return f.grad.numpy(), numeric


@pytest.mark.parametrize("complex", COMPLEXES)
@pytest.mark.parametrize("superlevel", [True, False])
@pytest.mark.parametrize("matching", ["lifetime", "birth"])
def test_gradient_matches_finite_differences(complex, superlevel, matching):
    rng = np.random.default_rng(1)
    f_np = generic_image(rng, (10, 10))
    for g in (
        torch.tensor((rng.random((10, 10)) > 0.5).astype(float)),  # binary target
        torch.tensor(rng.random((10, 10))),
    ):  # float target
        analytic, numeric = loss_and_numeric_gradient(
            f_np, g, complex=complex, superlevel=superlevel, matching=matching
        )
        np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-5)
        assert np.abs(numeric).sum() > 0


def test_gradient_of_the_notebook_loss_matches_finite_differences():
    rng = np.random.default_rng(2)
    f_np = generic_image(rng, (8, 8))
    g = torch.tensor((rng.random((8, 8)) > 0.5).astype(float))
    analytic, numeric = loss_and_numeric_gradient(
        f_np, g, matching="birth", complex="freudenthal", keep_zero_length=True
    )
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-5)


def test_gradcheck():
    rng = np.random.default_rng(3)
    f = torch.tensor(generic_image(rng, (6, 6)), requires_grad=True)
    g = torch.tensor((rng.random((6, 6)) > 0.5).astype(float))
    for matching in ("lifetime", "birth"):
        assert torch.autograd.gradcheck(
            lambda x, m=matching: topological_loss(x, g, matching=m), (f,), eps=1e-6
        )


def test_misrouted_gradient_has_the_right_value_and_the_wrong_direction():
    rng = np.random.default_rng(4)
    f_np = generic_image(rng, (16, 16))
    g = torch.tensor(generic_image(rng, (16, 16)))
    kwargs = dict(matching="birth", complex="freudenthal", keep_zero_length=True)
    right, numeric = loss_and_numeric_gradient(f_np, g, **kwargs)
    f = torch.tensor(f_np, requires_grad=True)
    misrouted_loss = topological_loss(f, g, misroute_gradient=True, **kwargs)
    misrouted_loss.backward()
    assert misrouted_loss.item() == pytest.approx(
        topological_loss(torch.tensor(f_np), g, **kwargs).item()
    )

    def cosine(a, b):
        return float(np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b))

    assert cosine(right, numeric) > 0.999
    assert cosine(f.grad.numpy(), numeric) < 0.9


def test_zero_length_bars_give_topologylayer_fixed_lengths():
    # TopologyLayer: one H0 bar per pixel, one H1 bar per non-tree edge of the triangulation.
    h, w = 9, 7
    image = np.random.default_rng(5).random((h, w))
    dgms = diagrams(image, superlevel=True, complex="freudenthal", keep_zero_length=True)
    n_vertices, n_edges = h * w, h * (w - 1) + (h - 1) * w + (h - 1) * (w - 1)
    assert len(dgms[0]) == n_vertices
    assert len(dgms[1]) == n_edges - (n_vertices - 1)


def test_notebook_loss_contains_the_sorted_value_term():
    # With zero-length bars, pairing by birth matches the sorted pixel values of f and g: the
    # loss is at least the H0 births' part of that term (all but the dropped maxima).
    rng = np.random.default_rng(6)
    f = torch.tensor(rng.random((16, 16)))
    g = torch.tensor((rng.random((16, 16)) > 0.3).astype(float))
    kept = topological_loss(
        f, g, matching="birth", complex="freudenthal", keep_zero_length=True, dims=(0,)
    )
    dropped = topological_loss(f, g, matching="birth", complex="freudenthal", dims=(0,))
    sorted_term = np.sum((np.sort(f.numpy().ravel())[:-1] - np.sort(g.numpy().ravel())[:-1]) ** 2)
    assert kept.item() >= sorted_term > 10 * dropped.item()


def test_combined_loss():
    rng = np.random.default_rng(7)
    logits = torch.tensor(rng.normal(size=(2, 1, 12, 12)), requires_grad=True)
    target = torch.tensor((rng.random((2, 1, 12, 12)) > 0.5).astype(float))
    parts = combined_loss(logits, target, lam=LAMBDA_NOTEBOOK)
    bce = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), target)
    assert parts.bce.item() == pytest.approx(bce.item(), rel=1e-10)
    assert parts.total.item() == pytest.approx(parts.bce.item() + parts.topo.item() / 6000)
    parts.total.backward()
    assert torch.isfinite(logits.grad).all()
    assert LAMBDA_PAPER == 1 / 12000
    # stable for huge logits, where sigmoid then log would give inf
    big = torch.full((8, 8), 200.0)
    assert torch.isfinite(combined_loss(big, torch.zeros(8, 8), lam=0).total)


@pytest.mark.parametrize("fn", [topological_loss, cldice_loss, sorted_value_loss])
@pytest.mark.parametrize(
    "likelihood, target, message",
    [
        (torch.rand(8, 8), torch.rand(8, 9), "same shape"),
        (torch.rand(8, 8) + 1, torch.rand(8, 8), r"\[0, 1\]"),
        (torch.full((8, 8), float("nan")), torch.rand(8, 8), "NaN"),
        (torch.rand(8, 8), torch.rand(8, 8) * 3, "target must lie"),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), "shape"),
    ],
)
def test_bad_input_raises(fn, likelihood, target, message):
    with pytest.raises(ValueError, match=message):
        fn(likelihood, target)


def test_unknown_options_raise():
    f = torch.rand(6, 6)
    for kwargs, message in [
        ({"matching": "death"}, "matching"),
        ({"complex": "grid"}, "complex"),
        ({"reduction": "max"}, "reduction"),
        ({"dims": (2,)}, "dims"),
    ]:
        with pytest.raises(ValueError, match=message):
            topological_loss(f, f, **kwargs)


@pytest.mark.parametrize("complex", ["cubical", "vertex", "freudenthal"])
@pytest.mark.parametrize("superlevel", [True, False])
@pytest.mark.parametrize("dims", [(0, 1), (0,), (1,)])
def test_fast_lifetime_path_equals_the_diagram_loss(complex, superlevel, dims):
    # topological_loss takes a shortcut for lifetime matching against binary targets; it must
    # give the value and the gradient of diagram_loss on the diagrams, ties included
    from topobook.losses.topological import _target_diagrams, diagram_loss
    from topobook.topology.persistence import PersistenceLayer

    rng = np.random.default_rng(len(dims) + 2 * superlevel)
    layer = PersistenceLayer(superlevel, complex, max(dims))
    for trial in range(12):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 9)))
        values = rng.random(shape)
        if trial % 3 == 0:
            values = np.round(values * 3) / 3  # many ties, exact 0s and 1s
        target = (rng.random(shape) > [0.5, 0.05, 0.95][trial % 3]).astype(np.float64)
        for dtype in (torch.float64, torch.float32):
            f = torch.tensor(values, dtype=dtype, requires_grad=True)
            g = torch.tensor(target, dtype=dtype)
            fast = topological_loss(f, g, complex=complex, superlevel=superlevel, dims=dims)
            (fast_grad,) = torch.autograd.grad(fast, f)
            f2 = torch.tensor(values, dtype=dtype, requires_grad=True)
            general = torch.stack([
                diagram_loss(p, t, "lifetime", dims, superlevel)
                for p, t in zip(layer(f2), _target_diagrams(g, layer), strict=True)
            ]).sum()
            (general_grad,) = torch.autograd.grad(general, f2)
            tolerance = 1e-12 if dtype == torch.float64 else 1e-5
            assert fast.item() == pytest.approx(general.item(), rel=tolerance, abs=tolerance)
            torch.testing.assert_close(fast_grad, general_grad, rtol=tolerance, atol=tolerance)


def _random_batch(rng, trial, dtype):
    """A batch of likelihoods with ties and saturated values and binary targets (no 1x1 image:
    on a single pixel gudhi's simplex tree reports no bar at all)."""
    shape = (int(rng.integers(1, 7)), int(rng.integers(2, 14)), int(rng.integers(1, 14)))
    values = 1 / (1 + np.exp(-rng.normal(size=shape) * [1, 4, 40][trial % 3]))
    if trial % 4 == 0:
        values = np.round(values * 3) / 3
    target = (rng.random(shape) > [0.5, 0.1, 0.9, 0.3][trial % 4]).astype(np.float64)
    return torch.tensor(values, dtype=dtype), torch.tensor(target, dtype=dtype)


@pytest.mark.parametrize("complex", COMPLEXES)
@pytest.mark.parametrize("superlevel", [True, False])
def test_fast_lifetime_path_is_bitwise_the_same_on_either_backend(complex, superlevel):
    # The union-find branch of the training path orders the kernels' raw bars by one numba
    # merge sort; the gudhi branch takes the bars persistence_pairs sorted and lets the same
    # merge sort apply _sort_index's keys. Same bars in the same order: the same value and
    # gradient to the last bit, whether the batch's union-find runs crop by crop or in one call.
    from topobook.losses.topological import _lifetime_losses_binary_target, _persistence_layer
    from topobook.topology.persistence import binary_bar_counts

    rng = np.random.default_rng(21 + superlevel)
    for trial in range(12):
        for dtype in (torch.float32, torch.float64, torch.float16):  # float16: numpy sorts
            f, g = _random_batch(rng, trial, dtype)
            g_values = g.numpy()
            counts = [binary_bar_counts(t, superlevel, complex) for t in g_values]
            for dims in ((0, 1), (0,), (1,)):
                results = []
                for backend, one_call in (("unionfind", False), ("unionfind", True), ("gudhi", 0)):
                    layer = _persistence_layer(superlevel, complex, max(dims), False, backend)
                    x = f.clone().requires_grad_(True)
                    losses = _lifetime_losses_binary_target(
                        x, g_values, layer, dims, counts, bool(one_call)
                    )
                    value = torch.stack(losses)
                    (grad,) = torch.autograd.grad(value.sum(), x)
                    results.append((value, grad))
                for value, grad in results[1:]:
                    assert torch.equal(value, results[0][0])
                    assert torch.equal(grad, results[0][1])


def test_training_loss_checks_once_and_gives_the_same_bits():
    # training_loss hands sigmoid(logits) to the loss without checking it again; the term and
    # its gradient are those of the public topological_loss, bit for bit
    from topobook.losses.topological import training_loss

    rng = np.random.default_rng(23)
    for trial in range(16):
        dtype = (torch.float32, torch.float64)[trial % 2]
        shape = (int(rng.integers(1, 9)), 1, 16, 16)
        logits = torch.tensor(rng.normal(size=shape) * 3, dtype=dtype)
        target = torch.tensor(rng.random(logits.shape) > 0.4, dtype=dtype)
        options = [{}, {"reduction": "mean"}, {"complex": "vertex", "dims": (1,)}][trial % 3]
        x = logits.clone().requires_grad_(True)
        parts = training_loss(x, target, "topo", LAMBDA_PAPER, **options)
        (grad,) = torch.autograd.grad(parts.topo, x)
        x2 = logits.clone().requires_grad_(True)
        reference = topological_loss(torch.sigmoid(x2), target, **options)
        (reference_grad,) = torch.autograd.grad(reference, x2)
        assert torch.equal(parts.topo, reference) and torch.equal(grad, reference_grad)
    # the options are still checked on this path, and unknown keywords still raise
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="matching"):
        training_loss(x, x, "topo", LAMBDA_PAPER, matching="death")
    for _ in range(2):  # the keyword check is cached: the second call must raise as well
        with pytest.raises(TypeError, match="topological_loss"):
            training_loss(x, x, "topo", LAMBDA_PAPER, iterations=3)
