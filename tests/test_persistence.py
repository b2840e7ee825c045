import numpy as np
import pytest
import torch
from oracles import ORACLES, sorted_rows
from ripser import lower_star_img
from scipy import ndimage

from topobook.topology.persistence import (
    COMPLEXES,
    CONNECTIVITY,
    PersistenceLayer,
    betti_numbers,
    diagrams,
    persistence_pairs,
)


def random_images(seed, n, with_ties=False):
    rng = np.random.default_rng(seed)
    for i in range(n):
        image = rng.random((int(rng.integers(2, 7)), int(rng.integers(2, 8))))
        if with_ties and i % 2:
            image = np.round(image * 4) / 4  # many equal values
        yield image


@pytest.mark.parametrize("complex", COMPLEXES)
@pytest.mark.parametrize("superlevel", [False, True])
def test_diagrams_equal_brute_force_reduction(complex, superlevel):
    for image in random_images(seed=1, n=12, with_ties=True):
        ours = diagrams(image, superlevel=superlevel, complex=complex)
        ref = ORACLES[complex](-image if superlevel else image)
        for k in (0, 1):
            expected = -ref[k] if superlevel else ref[k]
            np.testing.assert_array_equal(sorted_rows(ours[k]), sorted_rows(expected))


def test_hand_worked_example():
    # Two basins (values 0 and 1) separated by a ridge of height 5: the younger basin (born at 1)
    # dies at 5 when it merges into the older one (elder rule). H0 = {(0, inf), (1, 5)}.
    image = np.array([[0.0, 5.0, 1.0]])
    h0 = diagrams(image, complex="cubical")[0]
    np.testing.assert_array_equal(sorted_rows(h0), [[0.0, np.inf], [1.0, 5.0]])
    ring = np.array([[2, 2, 2], [2, 9, 2], [2, 2, 2]], dtype=float)
    h0, h1 = diagrams(ring, complex="cubical")
    np.testing.assert_array_equal(h0, [[2.0, np.inf]])
    np.testing.assert_array_equal(h1, [[2.0, 9.0]])  # the hole is born at 2 and filled at 9


def test_connectivity_of_a_diagonal_pair():
    # Two dark pixels touching at a corner along (r,c)-(r+1,c+1): one component for the
    # 8-connected cubical and 6-connected freudenthal complexes, two for the 4-connected vertex one.
    image = np.array([[0.0, 1.0], [1.0, 0.0]])
    counts = {c: len(diagrams(image, complex=c)[0]) for c in COMPLEXES}
    assert counts == {"cubical": 1, "vertex": 2, "freudenthal": 1}
    # Along the other diagonal only the 8-connected complex joins them.
    counts = {c: len(diagrams(image[:, ::-1], complex=c)[0]) for c in COMPLEXES}
    assert counts == {"cubical": 1, "vertex": 2, "freudenthal": 2}


def test_conventions_superlevel_and_essential():
    rng = np.random.default_rng(0)
    image = rng.random((9, 11))
    for complex in COMPLEXES:
        sub = diagrams(image, complex=complex)
        sup = diagrams(image, superlevel=True, complex=complex)
        assert np.all(sub[0][:, 0] < sub[0][:, 1]) and np.all(sup[0][:, 0] > sup[0][:, 1])
        assert np.sum(np.isinf(sub[0][:, 1])) == 1 and sub[0][-1, 0] == image.min()
        assert sup[0][-1, 1] == -np.inf and sup[0][-1, 0] == image.max()
        assert not np.isinf(sub[1]).any()  # a square grid has no essential loop
        # superlevel diagram of f is the sublevel diagram of -f, negated
        neg = diagrams(-image, complex=complex)
        for k in (0, 1):
            np.testing.assert_array_equal(sorted_rows(sup[k]), sorted_rows(-neg[k]))


def test_row_major_indices_on_non_square_image():
    image = np.full((3, 5), 5.0)
    image[0, 3], image[2, 1] = 0.0, 1.0
    for complex in COMPLEXES:
        pairs = persistence_pairs(image, complex=complex)
        assert pairs.essential[0].tolist() == [0 * 5 + 3]
        assert pairs.finite[0][0, 0] == 2 * 5 + 1


def test_h0_matches_ripser_lower_star():
    rng = np.random.default_rng(5)
    for _ in range(5):
        image = rng.random((16, 13)).astype(np.float32)
        ours = diagrams(image, complex="cubical", maxdim=0)[0]
        ref = lower_star_img(image)
        np.testing.assert_allclose(sorted_rows(ours), sorted_rows(ref), rtol=0, atol=1e-7)


def test_betti_numbers_match_scipy_label():
    rng = np.random.default_rng(2)
    for _ in range(8):
        mask = (rng.random((21, 24)) > 0.45).astype(np.uint8)
        for complex in COMPLEXES:
            conn = CONNECTIVITY[complex]
            b0 = ndimage.label(mask, conn["foreground"])[1]
            # holes: background components of the padded image other than the outer one
            b1 = ndimage.label(np.pad(1 - mask, 1, constant_values=1), conn["background"])[1] - 1
            assert betti_numbers(mask, complex) == (b0, b1)


def test_betti_numbers_of_simple_shapes():
    annulus = np.ones((7, 7), np.uint8)
    annulus[3, 3] = 0
    assert betti_numbers(annulus) == (1, 1)
    assert betti_numbers(np.zeros((4, 4), np.uint8)) == (0, 0)
    assert betti_numbers(np.ones((4, 4), np.uint8)) == (1, 0)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((2, 3, 4)), "2-D"),
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_bad_images_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        diagrams(bad)


def test_bad_options_and_masks_raise():
    with pytest.raises(ValueError, match="complex"):
        diagrams(np.zeros((3, 3)), complex="simplicial")
    with pytest.raises(ValueError, match="maxdim"):
        diagrams(np.zeros((3, 3)), maxdim=2)
    with pytest.raises(ValueError, match="binary"):
        betti_numbers(np.array([[0, 0.5], [1, 1]]))
    with pytest.raises(ValueError, match="shape"):
        PersistenceLayer()(torch.zeros(1, 1, 4, 4))


def _layer_loss(layer, x):
    """A smooth function of every finite bar: sum of weighted squared lifetimes and positions."""
    total = x.new_zeros(())
    for k, dgm in enumerate(layer(x)):
        finite = dgm[torch.isfinite(dgm[:, 1])]
        total = total + (k + 1) * ((finite[:, 1] - finite[:, 0]) ** 2).sum()
        total = total + (finite[:, 0] ** 3).sum() + 0.5 * finite[:, 1].sum()
        total = total + dgm[~torch.isfinite(dgm[:, 1]), 0].sum()  # births of essential bars
    return total


@pytest.mark.parametrize("complex", COMPLEXES)
@pytest.mark.parametrize("superlevel", [False, True])
def test_gradient_matches_finite_differences(complex, superlevel):
    rng = np.random.default_rng(7)
    layer = PersistenceLayer(superlevel=superlevel, complex=complex)
    image = rng.permutation(12 * 9).reshape(12, 9) / 108.0  # distinct values, gaps of 1/108
    x = torch.tensor(image, dtype=torch.float64, requires_grad=True)
    _layer_loss(layer, x).backward()
    eps = 1e-4  # far below the gap between values, so the pairing does not change
    numeric = np.zeros_like(image)
    for idx in np.ndindex(image.shape):
        plus, minus = image.copy(), image.copy()
        plus[idx] += eps
        minus[idx] -= eps
        f_plus = _layer_loss(layer, torch.tensor(plus)).item()
        f_minus = _layer_loss(layer, torch.tensor(minus)).item()
        numeric[idx] = (f_plus - f_minus) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-6, atol=1e-6)
    assert np.count_nonzero(numeric) > 0


def test_gradcheck_on_one_image():
    rng = np.random.default_rng(8)
    image = torch.tensor(rng.permutation(36).reshape(6, 6) / 36.0, requires_grad=True)
    layer = PersistenceLayer(superlevel=True, complex="freudenthal")
    assert torch.autograd.gradcheck(lambda x: _layer_loss(layer, x), (image,), eps=1e-5)


def test_batch_equals_single_images_and_parallel_equals_serial():
    rng = np.random.default_rng(9)
    batch = torch.tensor(rng.random((5, 10, 12)))
    for complex in COMPLEXES:
        serial = PersistenceLayer(complex=complex, parallel=False)(batch)
        threaded = PersistenceLayer(complex=complex, parallel=True)(batch)
        for i in range(5):
            single = PersistenceLayer(complex=complex)(batch[i])
            for k in (0, 1):
                assert torch.equal(serial[i][k], single[k])
                assert torch.equal(threaded[i][k], single[k])
                np.testing.assert_array_equal(
                    single[k].numpy(), diagrams(batch[i].numpy(), complex=complex)[k]
                )


def test_two_forward_calls_before_backward():
    # TopologyLayer's bug: one layer object called on prediction and truth before backward.
    # Our layer keeps no state, so the gradient of a loss over both calls stays exact.
    rng = np.random.default_rng(10)
    layer = PersistenceLayer(superlevel=True, complex="freudenthal")
    pred = torch.tensor(rng.random((8, 8)), requires_grad=True)
    truth = torch.tensor(rng.random((8, 8)))

    def loss(p):
        a, b = layer(p)[0], layer(truth)[0]
        n = min(len(a), len(b)) - 1  # finite bars only (the essential one is last)
        return ((a[:n] - b[:n]) ** 2).sum()

    loss(pred).backward()
    alone = pred.detach().clone().requires_grad_(True)
    a = layer(alone)[0]
    b = PersistenceLayer(superlevel=True, complex="freudenthal")(truth)[0]
    n = min(len(a), len(b)) - 1
    ((a[:n] - b[:n]) ** 2).sum().backward()
    assert torch.equal(pred.grad, alone.grad)
    assert pred.grad.abs().sum() > 0


@pytest.mark.parametrize("complex", ["cubical", "vertex"])
def test_rank_path_agrees_with_gudhi_generators(complex):
    # Without zero-length bars the cubical complexes find critical pixels from a persistence
    # computation on the ranks of the values; with them, from gudhi's generator queries. With
    # distinct values both must name the same pixels.
    rng = np.random.default_rng(11)
    for _ in range(5):
        image = rng.random((17, 23))
        fast = persistence_pairs(image, superlevel=True, complex=complex)
        slow = persistence_pairs(image, superlevel=True, complex=complex, keep_zero_length=True)
        for k in (0, 1):
            nonzero = image.flat[slow.finite[k][:, 0]] != image.flat[slow.finite[k][:, 1]]
            assert sorted(map(tuple, fast.finite[k])) == sorted(map(tuple, slow.finite[k][nonzero]))
            assert sorted(fast.essential[k]) == sorted(slow.essential[k])


def test_binary_diagrams_equal_persistence():
    from topobook.topology.persistence import binary_diagrams

    rng = np.random.default_rng(12)
    masks = [(rng.random((15, 18)) > p).astype(np.uint8) for p in (0.3, 0.5, 0.7)]
    masks += [np.zeros((6, 6), np.uint8), np.ones((6, 6), np.uint8)]
    for mask in masks:
        for complex in COMPLEXES:
            for superlevel in (False, True):
                fast = binary_diagrams(mask, superlevel, complex)
                slow = diagrams(mask, superlevel, complex)
                for k in (0, 1):
                    np.testing.assert_array_equal(sorted_rows(fast[k]), sorted_rows(slow[k]))
