"""The union-find backend of topobook.topology.persistence against gudhi (the default's oracle) and
against the textbook reduction of tests/oracles.py: same bars, same critical pixels, same order,
same gradients."""

import numpy as np
import pytest
import torch
from oracles import ORACLES, sorted_rows, tricky_images

from topobook.topology import persistence
from topobook.topology.persistence import (
    BACKENDS,
    COMPLEXES,
    PersistenceLayer,
    betti_numbers,
    diagrams,
    persistence_pairs,
    resolve_backend,
)
from topobook.topology.unionfind import stable_order, unionfind_pairs


def test_stable_order_equals_numpy_stable_argsort():
    rng = np.random.default_rng(0)
    cases = [
        rng.random(1000),  # float64: numpy argsort, then ties by index
        rng.random(1000).astype(np.float32).astype(np.float64),  # packed float32 keys
        np.round(rng.random(1000) * 4),  # long runs of ties
        np.zeros(50),
        np.array([0.0, -0.0, 1.0, -1.0, -0.0, 0.0, np.float32(1e-30), -np.float32(1e-30)]),
        np.array([3.0, 1e300, -1e300, 1e-300, 3.0]),  # not float32: the float64 path
        -np.round(rng.random(4096) * 2, 1),
    ]
    for flat in cases:
        np.testing.assert_array_equal(stable_order(flat), np.argsort(flat, kind="stable"))


@pytest.mark.parametrize("complex", COMPLEXES)
@pytest.mark.parametrize("superlevel", [False, True])
def test_pairs_and_diagrams_equal_gudhi_backend(complex, superlevel):
    # Exactly equal arrays: the same critical pixels *in the same order*, for ties, constant
    # maps, strips, masks and saturated likelihoods up to 64 x 64 and non-square images.
    checked = 0
    for name, image in tricky_images(seed=1):
        if complex == "freudenthal" and image.size == 1:
            continue  # gudhi's simplex tree reports no bar for a single vertex (next test)
        ours = persistence_pairs(image, superlevel, complex, backend="unionfind")
        ref = persistence_pairs(image, superlevel, complex, backend="gudhi")
        for k in (0, 1):
            np.testing.assert_array_equal(ours.finite[k], ref.finite[k], err_msg=f"{name} H{k}")
            np.testing.assert_array_equal(ours.essential[k], ref.essential[k], err_msg=name)
        for a, b in zip(
            diagrams(image, superlevel, complex, backend="unionfind"),
            diagrams(image, superlevel, complex, backend="gudhi"),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b, err_msg=name)
        checked += 1
    assert checked >= 50


@pytest.mark.parametrize("complex", COMPLEXES)
def test_diagrams_equal_textbook_reduction(complex):
    # An oracle that shares no code with gudhi, including a single pixel and strips.
    for name, image in tricky_images(seed=2):
        if image.size > 120:
            continue  # the reduction is cubic
        for superlevel in (False, True):
            ours = diagrams(image, superlevel, complex, backend="unionfind")
            ref = ORACLES[complex](-image if superlevel else image)
            for k in (0, 1):
                expected = -ref[k] if superlevel else ref[k]
                np.testing.assert_array_equal(
                    sorted_rows(ours[k]), sorted_rows(expected), err_msg=f"{name} H{k}"
                )


def test_strips_and_constant_maps_have_no_holes():
    rng = np.random.default_rng(3)
    for image in (rng.random((1, 30)), rng.random((30, 1)), np.full((6, 9), 2.0)):
        for complex in COMPLEXES:
            for superlevel in (False, True):
                pairs = persistence_pairs(image, superlevel, complex)
                assert len(pairs.finite[1]) == 0 and len(pairs.essential[1]) == 0
                assert len(pairs.essential[0]) == 1


def test_h1_critical_pixels_hand_worked():
    # A ring of value 2 around a pit of 9; ring pixels enter in row-major order (the tie
    # rule): 0, 1, 2, 3, 5, 6, 7, 8. Cubical holes are 4-connected: the centre (index 4) is
    # enclosed once its four side neighbours 1, 3, 5, 7 are in, so the loop is born at pixel
    # 7. Vertex holes are 8-connected: the centre still reaches the border through the corner
    # pixel 8 until that one enters. Both holes fill at the centre: the bar (2, 9).
    ring = np.array([[2, 2, 2], [2, 9, 2], [2, 2, 2]], dtype=float)
    for complex, birth in (("cubical", 7), ("vertex", 8)):
        for backend in BACKENDS:
            pairs = persistence_pairs(ring, complex=complex, backend=backend)
            assert pairs.finite[1].tolist() == [[birth, 4]]
            assert pairs.essential[0].tolist() == [0]
            np.testing.assert_array_equal(diagrams(ring, complex=complex)[1], [[2.0, 9.0]])
    # superlevel: a bright ring (9) around a dark centre (2) is a hole born at 9 at pixel 7
    # that dies at 2 at the centre
    pairs = persistence_pairs(11 - ring, superlevel=True, complex="cubical")
    assert pairs.finite[1].tolist() == [[7, 4]]


def test_h0_elder_rule_and_death_order_hand_worked():
    # Three basins, at indices 0 (value 0), 2 and 6 (value 1), touch the centre pixel 4 (value 5)
    # only at corners, so in the cubical (8-connected) complex they merge there: the two younger
    # basins die at pixel 4, both with lifetime 4. Their order is gudhi's: the edges of the
    # centre square enter left, top, bottom, right; the left edge joins the basins 0 and 6
    # (6 dies first), then the top edge joins 0 and 2.
    image = np.array([[0.0, 9.0, 1.0], [9.0, 5.0, 9.0], [1.0, 9.0, 9.0]])
    for backend in BACKENDS:
        pairs = persistence_pairs(image, complex="cubical", backend=backend)
        assert pairs.finite[0].tolist() == [[6, 4], [2, 4]]
        assert pairs.essential[0].tolist() == [0]
    # In the vertex complex (4-connected) nothing joins them before the 9s.
    assert len(persistence_pairs(image, complex="vertex").finite[0]) == 3


def test_single_pixel():
    # gudhi's simplex tree reports nothing for one vertex; one component is born and lives on.
    for complex in COMPLEXES:
        dgms = diagrams(np.array([[0.3]]), complex=complex, backend="unionfind")
        np.testing.assert_array_equal(dgms[0], [[0.3, np.inf]])
        assert dgms[1].shape == (0, 2)


def _loss(layer, x):
    total = x.new_zeros(())
    for k, dgm in enumerate(layer(x)):
        finite = dgm[torch.isfinite(dgm[:, 1])]
        weights = torch.arange(1, len(finite) + 1, dtype=x.dtype)  # depends on the order
        total = total + (k + 1) * (weights * (finite[:, 1] - finite[:, 0]) ** 2).sum()
        total = total + (finite[:, 0] ** 3).sum() + dgm[~torch.isfinite(dgm[:, 1]), 0].sum()
    return total


@pytest.mark.parametrize("complex", COMPLEXES)
def test_gradients_equal_between_backends(complex):
    # With ties the critical pixels decide where the gradient goes; a loss that weighs bars by
    # their position in the diagram also checks the order.
    for name, image in tricky_images(seed=4):
        if image.size == 1 or image.size > 1100:
            continue
        for superlevel in (False, True):
            grads = []
            for backend in BACKENDS:
                x = torch.tensor(image, requires_grad=True)
                layer = PersistenceLayer(superlevel, complex, backend=backend)
                _loss(layer, x).backward()
                grads.append(x.grad)
            assert torch.equal(grads[0], grads[1]), name


def test_batch_in_threads_equals_one_by_one():
    rng = np.random.default_rng(5)
    batch = torch.tensor(np.round(rng.random((6, 20, 24)) * 3), dtype=torch.float32)
    for complex in COMPLEXES:
        threaded = PersistenceLayer(True, complex, parallel=True)(batch)
        for i in range(len(batch)):
            ref = PersistenceLayer(True, complex, backend="gudhi")(batch[i])
            for k in (0, 1):
                assert torch.equal(threaded[i][k], ref[k])


def test_betti_numbers_backends_agree():
    rng = np.random.default_rng(6)
    for _ in range(5):
        mask = (rng.random((17, 19)) > 0.5).astype(np.uint8)
        for complex in COMPLEXES:
            assert betti_numbers(mask, complex) == betti_numbers(mask, complex, backend="gudhi")


def test_backend_choice_and_bad_backends():
    assert resolve_backend(None) == "unionfind" == persistence.DEFAULT_BACKEND
    assert resolve_backend(None, keep_zero_length=True) == "gudhi"
    image = torch.tensor(np.round(np.random.default_rng(7).random((6, 7)) * 3))
    routed = PersistenceLayer(True, "freudenthal", keep_zero_length=True)(image)
    explicit = PersistenceLayer(True, "freudenthal", keep_zero_length=True, backend="gudhi")
    for a, b in zip(routed, explicit(image), strict=True):
        assert torch.equal(a, b) and len(a) > 1
    with pytest.raises(ValueError, match="keep_zero_length"):
        persistence_pairs(np.zeros((3, 3)), keep_zero_length=True, backend="unionfind")
    with pytest.raises(ValueError, match="keep_zero_length"):
        PersistenceLayer(keep_zero_length=True, backend="unionfind")
    with pytest.raises(ValueError, match="backend"):
        diagrams(np.zeros((3, 3)), backend="ripser")
    with pytest.raises(ValueError, match="complex"):
        unionfind_pairs(np.zeros((3, 3)), "simplicial", 1)


def test_default_backend_can_be_switched(monkeypatch):
    image = np.round(np.random.default_rng(8).random((9, 10)) * 2)
    monkeypatch.setattr(persistence, "DEFAULT_BACKEND", "gudhi")
    assert resolve_backend(None) == "gudhi"
    layer = PersistenceLayer(True)  # resolved at each call, not when built
    monkeypatch.setattr(persistence, "DEFAULT_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="backend"):
        layer(torch.tensor(image))
    with pytest.raises(ValueError, match="backend"):
        diagrams(image)


def test_persistence_backend_ms_reports_each_size():
    from topobook.study.timing import persistence_backend_ms

    rows = persistence_backend_ms((8, 12), repeats=1)
    assert [row["size"] for row in rows] == [8, 12]
    for row in rows:
        assert set(row) == {"size", "gudhi", "gudhi_pairs", "unionfind", "ratio"}
        assert row["ratio"] == row["gudhi"] / row["unionfind"] > 0
    assert np.isnan(persistence_backend_ms((8,), 1, complex="vertex")[0]["gudhi"])
    with pytest.raises(ValueError, match="sizes"):
        persistence_backend_ms((1,))
    with pytest.raises(ValueError, match="complex"):
        persistence_backend_ms((8,), complex="simplicial")


def test_tip_h0_diagram_backends_agree_in_order():
    from topobook import tip

    rng = np.random.default_rng(9)
    for image in (np.round(rng.random((20, 25)) * 4), rng.random((12, 12))):
        np.testing.assert_array_equal(tip.h0_diagram(image), tip.h0_diagram(image, backend="gudhi"))
    with pytest.raises(ValueError, match="backend"):
        tip.h0_diagram(np.zeros((3, 3)), backend="cubicalripser")


def test_views_and_dtypes_give_the_same_pairs():
    # Transposed, Fortran-ordered, strided, float32 and boolean inputs: pixels stay row-major.
    rng = np.random.default_rng(10)
    a = np.round(rng.random((13, 17)) * 3)
    for image in (a.T, np.asfortranarray(a), a[::2, ::-1], a.astype(np.float32), a > 1):
        for complex in COMPLEXES:
            ours = persistence_pairs(image, True, complex)
            ref = persistence_pairs(np.ascontiguousarray(image), True, complex, backend="gudhi")
            for k in (0, 1):
                np.testing.assert_array_equal(ours.finite[k], ref.finite[k])
                np.testing.assert_array_equal(ours.essential[k], ref.essential[k])


# ---------------------------------------------------------------------------------------------
# the training path's helpers: counting a binary target's bars, the lifetime order, batches


def _scipy_counts(binary, superlevel, complex):
    """The oracle: scipy.ndimage.label with the structuring elements of each complex."""
    from scipy import ndimage

    first = 1 if superlevel else 0
    connectivity = persistence.CONNECTIVITY[complex]
    n_first = ndimage.label(binary == first, connectivity["foreground"])[1]
    padded = np.pad(binary != first, 1, constant_values=True)
    return n_first, ndimage.label(padded, connectivity["background"])[1] - 1


def test_binary_counts_equal_scipy_label():
    from topobook.topology.unionfind import binary_counts

    rng = np.random.default_rng(11)
    checked = 0
    for trial in range(150):
        shape = (int(rng.integers(1, 14)), int(rng.integers(1, 14)))
        binary = rng.random(shape) < [0.1, 0.4, 0.6, 0.9][trial % 4]
        for dtype in (np.float32, np.float64, np.uint8):
            image = binary.astype(dtype)
            for complex in COMPLEXES:
                for superlevel in (True, False):
                    expected = _scipy_counts(image, superlevel, complex)
                    assert binary_counts(image, superlevel, complex) == expected
                    got = persistence.binary_bar_counts(image, superlevel, complex)
                    assert got == expected
                    checked += expected[1] > 0  # cases with holes were met
    assert checked > 100
    # a hand-worked ring: one component, one hole, in every complex
    ring = np.ones((3, 3))
    ring[1, 1] = 0
    for complex in COMPLEXES:
        assert binary_counts(ring, True, complex) == (1, 1)
        assert binary_counts(ring, False, complex) == (1, 0)


def test_binary_counts_refuse_values_other_than_0_and_1():
    from topobook.topology.unionfind import binary_counts

    image = np.zeros((4, 4))
    image[2, 1] = 0.5
    assert binary_counts(image, True, "cubical") is None
    with pytest.raises(ValueError, match="values in"):
        persistence.binary_bar_counts(image, True, "cubical")


@pytest.mark.parametrize("complex", COMPLEXES)
@pytest.mark.parametrize("superlevel", [True, False])
def test_lifetime_sorted_equals_the_two_numpy_sorts(complex, superlevel):
    # the numba merge sort of the training path against what it replaces: persistence_pairs'
    # stable sort by float64 lifetime, then losses._sort_index's lexsort in the image's dtype
    from topobook.losses.topological import _sort_index
    from topobook.topology.unionfind import _lifetime_sorted

    rng = np.random.default_rng(12)
    for trial in range(40):
        shape = (int(rng.integers(1, 16)), int(rng.integers(1, 16)))
        values = rng.random(shape)
        if trial % 2:
            values = np.round(values * 4) / 4  # ties everywhere
        for dtype in (np.float32, np.float64):
            image = values.astype(dtype)
            image64 = image.astype(np.float64)
            flat = image.ravel()
            filtration = -image64 if superlevel else image64
            raw, _ = unionfind_pairs(filtration, complex, 1)
            pairs = persistence_pairs(image, superlevel, complex)
            for k in (0, 1):
                expected = pairs.finite[k]
                expected = expected[_sort_index(flat[expected], "lifetime", superlevel)]
                got = _lifetime_sorted(flat, np.ascontiguousarray(raw[k]), superlevel)
                np.testing.assert_array_equal(got, expected)


def test_batch_in_one_numba_call_equals_one_by_one():
    import numba

    from topobook.topology.unionfind import unionfind_pairs_batch

    rng = np.random.default_rng(13)
    batch = np.round(rng.random((5, 17, 23)) * 5)  # ties
    previous = numba.get_num_threads()
    try:
        for n_threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(n_threads)
            for complex in COMPLEXES:
                got = unionfind_pairs_batch(batch, complex, 1)
                for image, (finite, essential) in zip(batch, got, strict=True):
                    ref_finite, ref_essential = unionfind_pairs(image, complex, 1)
                    for a, b in zip(finite + essential, ref_finite + ref_essential, strict=True):
                        np.testing.assert_array_equal(a, b)
    finally:
        numba.set_num_threads(previous)
