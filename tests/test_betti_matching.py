"""Tests of topobook.topology.betti_matching against independent oracles.

The main oracle is a textbook Z/2 boundary-matrix reduction of the explicit V-construction
complex (cells, faces and the reference's total order written out here): the barcodes of the
prediction, the target and the comparison, and the image-persistence pairs (rows in the input's
order, columns in the comparison's; Cohen-Steiner et al. 2009), composed with Bauer-Lesnick's
rule (same birth into the image, same death out of it). It shares nothing with the union-find
and duality code under test except the numbering of the cells.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from topobook.topology.betti_matching import (
    _cells_sublevel,
    _grid,
    betti_matching,
    betti_matching_error,
    betti_matching_loss,
)
from topobook.topology.persistence import betti_numbers, diagrams

# ---------------------------------------------------------------------------------------------
# oracle: image persistence by ranks of explicit chain maps


def _cells(h: int, w: int):
    """Cells of the V-construction as (dim, key, vertices, boundary keys); keys: vertex (r, c),
    edge (r, c, type) (type 0 vertical to (r+1, c), type 1 horizontal to (r, c+1)), square
    (r, c). Keys compare in row-major order, as the reference's cube indices do."""
    cells = []
    for r, c in itertools.product(range(h), range(w)):
        cells.append((0, (r, c), [(r, c)], []))
    for r, c in itertools.product(range(h), range(w)):
        if r + 1 < h:
            cells.append((1, (r, c, 0), [(r, c), (r + 1, c)], [(r, c), (r + 1, c)]))
        if c + 1 < w:
            cells.append((1, (r, c, 1), [(r, c), (r, c + 1)], [(r, c), (r, c + 1)]))
    for r, c in itertools.product(range(h - 1), range(w - 1)):
        verts = [(r, c), (r, c + 1), (r + 1, c), (r + 1, c + 1)]
        edges = [(r, c, 0), (r, c + 1, 0), (r, c, 1), (r + 1, c, 1)]
        cells.append((2, (r, c), verts, edges))
    return cells


class _Oracle:
    """Persistence pairs by Z/2 boundary-matrix reduction on one (H, W) grid, every cell
    entering at ``(max of its vertices' values, dim, key)``: the total order whose ties the
    reference breaks by dimension and row-major position."""

    def __init__(self, h: int, w: int):
        self.cells = _cells(h, w)
        self.faces = {(dim, key): faces for dim, key, _, faces in self.cells}

    def times(self, f: np.ndarray) -> dict:
        return {
            (dim, key): (max(f[v] for v in verts), dim, key) for dim, key, verts, _ in self.cells
        }

    def pairs(self, k: int, rows: dict, cols: dict) -> dict:
        """Pivot pairs ``{(k+1)-cell: k-cell}`` of the boundary matrix of the (k+1)-cells, rows
        (k-cells) in the order ``rows``, columns in the order ``cols``, reduced left to right
        (with different orders: the image-persistence reduction of Cohen-Steiner, Edelsbrunner,
        Harer and Morozov, "Persistent homology for kernels, images, and cokernels", 2009)."""
        row_cells = sorted((c for c in rows if c[0] == k), key=rows.get)
        position = {cell: i for i, cell in enumerate(row_cells)}
        pivots, reduced, out = {}, {}, {}
        for cell in sorted((c for c in cols if c[0] == k + 1), key=cols.get):
            col = 0
            for face in self.faces[cell]:
                col ^= 1 << position[(k, face)]
            while col and (col.bit_length() - 1) in pivots:
                col ^= reduced[pivots[col.bit_length() - 1]]
            if col:
                pivots[col.bit_length() - 1] = cell
                reduced[cell] = col
                out[cell] = row_cells[col.bit_length() - 1]
        return out

    def matching(self, f0: np.ndarray, f1: np.ndarray) -> dict:
        """Per dimension: the finite bars ``(birth cell, death cell)`` of positive length of
        ``f0`` and ``f1``, and the pairs of them sent to the same bar of positive length of
        ``min(f0, f1)``: a bar of ``f0`` goes to the image pair with its birth cell (rows in
        ``f0``'s order, columns in the comparison's), which goes to the comparison bar with its
        death cell (Bauer-Lesnick: same birth into the image, same death out of it)."""
        fc = np.minimum(f0, f1)
        t0, t1, tc = self.times(f0), self.times(f1), self.times(fc)
        out = {}
        for k in (0, 1):
            comp = {bar[1]: bar for bar in self.bars(k, tc)}  # by death cell
            bars0, bars1 = self.bars(k, t0), self.bars(k, t1)
            to_comp0, to_comp1 = self.to_comp(k, t0, tc, comp), self.to_comp(k, t1, tc, comp)
            by_comp1 = {c: bar for bar, c in to_comp1.items()}
            matches = {(bar, by_comp1[c]) for bar, c in to_comp0.items() if c in by_comp1}
            out[k] = (bars0, bars1, matches)
        return out

    def bars(self, k: int, t: dict) -> set:
        """Finite bars of positive length (in values) as (birth cell, death cell)."""
        return {(b, d) for d, b in self.pairs(k, t, t).items() if t[b][0] != t[d][0]}

    def to_comp(self, k: int, t: dict, tc: dict, comp: dict) -> dict:
        """Each bar of the filtration ``t`` -> the comparison bar it is sent to, if any."""
        image = {b: d for d, b in self.pairs(k, t, tc).items()}  # birth -> death
        return {bar: comp[image[bar[0]]] for bar in self.bars(k, t) if image.get(bar[0]) in comp}


def _named(f0: np.ndarray) -> dict:
    """Our matching with bars named by cells as the oracle names them."""
    h, w = f0.shape
    grid = _grid(h, w)

    def vertex(i):
        return (0, (int(i) // w, int(i) % w))

    def edge(e):
        a, b = int(grid.edge_a[e]), int(grid.edge_b[e])
        return (1, (a // w, a % w, 0 if b == a + w else 1))

    def square(s):
        return (2, (int(s) // (w - 1), int(s) % (w - 1)))

    return {
        0: lambda pair: (vertex(pair[0]), edge(pair[1])),
        1: lambda pair: (edge(pair[0]), square(pair[1])),
    }


def _ours(f0: np.ndarray, f1: np.ndarray) -> dict:
    cells = _cells_sublevel(f0, f1)
    name = _named(f0)
    out = {}
    for k in (0, 1):
        bars0 = [name[k](p) for p in cells["pred"][k]]
        bars1 = [name[k](p) for p in cells["target"][k]]
        matches = {(bars0[i], bars1[j]) for i, j in cells["matches"][k]}
        assert len(matches) == len(cells["matches"][k])
        out[k] = (set(bars0), set(bars1), matches)
    return out


ORACLE_CASES = [
    # (shape, kind, seed): kind "real" = distinct values, "ties" = values in {0, .5, 1}
    ((3, 3), "real", 0),
    ((3, 4), "real", 1),
    ((4, 3), "real", 2),
    ((4, 4), "real", 3),
    ((3, 4), "ties", 4),
    ((4, 4), "ties", 5),
    ((4, 4), "binary", 6),
    ((4, 4), "binary", 7),
    ((1, 5), "real", 8),
    ((5, 5), "real", 9),
    ((5, 4), "ties", 10),
    ((5, 5), "binary", 11),
    ((6, 5), "binary", 12),
]


@pytest.mark.parametrize("shape,kind,seed", ORACLE_CASES)
def test_matching_equals_image_persistence_oracle(shape, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "real":
        p, t = rng.random(shape), rng.random(shape)
    elif kind == "ties":
        p, t = rng.integers(0, 3, shape) / 2, rng.integers(0, 3, shape) / 2
    else:
        p, t = rng.integers(0, 2, shape) * 1.0, rng.integers(0, 2, shape) * 1.0
    f0, f1 = 1.0 - p, 1.0 - t
    expected = _Oracle(*shape).matching(f0, f1)
    got = _ours(f0, f1)
    for k in (0, 1):
        assert got[k][0] == expected[k][0], f"prediction bars, dim {k}"
        assert got[k][1] == expected[k][1], f"target bars, dim {k}"
        assert got[k][2] == expected[k][2], f"matches, dim {k}"


def test_image_pairs_of_negative_length_still_match():
    """As in the reference, the image pair is not required to have positive length: here the
    prediction loop is born (0.908 in 1 - x) after the comparison loop it is matched to has died
    (0.813), so its image in H1 of the comparison is zero; pure Bauer-Lesnick would leave it
    unmatched, Betti-Matching-3D (dimension_1.cpp, computeImagePairs) matches it."""
    rng = np.random.default_rng(2)
    p, t = rng.random((4, 3)), rng.random((4, 3))
    f0, fc = (1 - p).ravel(), np.minimum(1 - p, 1 - t).ravel()
    matching = betti_matching(p, t)
    ((i, _),) = matching.matches[1]
    birth_pixel, death_pixel = matching.pred_pairs[1][i]
    comparison_death = fc[death_pixel]  # the square (2, 1) kills the loop in both
    assert f0[birth_pixel] == pytest.approx(0.908, abs=1e-3)
    assert comparison_death == pytest.approx(0.813, abs=1e-3)


def test_oracle_finds_matches_and_non_matches():
    """The oracle cases are not vacuous: some bars are matched and some are not."""
    matched = unmatched = 0
    for shape, _, seed in ORACLE_CASES[:4]:
        rng = np.random.default_rng(seed)
        result = _ours(1 - rng.random(shape), 1 - rng.random(shape))
        for k in (0, 1):
            matched += len(result[k][2])
            unmatched += len(result[k][0]) - len(result[k][2])
    assert matched > 0 and unmatched > 0


@pytest.mark.parametrize("seed", range(3))
def test_barcodes_equal_gudhi(seed):
    """The bars of the prediction are gudhi's superlevel V-construction bars (finite)."""
    rng = np.random.default_rng(seed)
    p, t = rng.random((12, 10)), rng.random((12, 10))
    matching = betti_matching(p, t)
    dgms = diagrams(p, superlevel=True, complex="vertex")
    flat = p.ravel()
    for k in (0, 1):
        ours = flat[matching.pred_pairs[k]]
        theirs = dgms[k][np.isfinite(dgms[k][:, 1])]
        np.testing.assert_allclose(
            ours[np.lexsort(ours.T[::-1])], theirs[np.lexsort(theirs.T[::-1])]
        )
        assert np.all(ours[:, 0] > ours[:, 1])  # superlevel: born higher


# ---------------------------------------------------------------------------------------------
# hand-worked examples


def _ring(shape, top, left, value=1.0, hole=0.0, background=0.0, image=None):
    """A 3x3 ring of ``value`` around one ``hole`` pixel, top-left corner at (top, left)."""
    image = np.full(shape, background) if image is None else image
    image[top : top + 3, left : left + 3] = value
    image[top + 1, left + 1] = hole
    return image


def test_matched_loop():
    """Same place: the loops are matched, loss = 2 ((0.9 - 1)^2 + (0.2 - 0)^2) = 0.1."""
    truth = _ring((5, 5), 1, 1)
    likelihood = _ring((5, 5), 1, 1, value=0.9, hole=0.2, background=0.1)
    matching = betti_matching(likelihood, truth)
    assert len(matching.matches[1]) == 1 and len(matching.pred_pairs[0]) == 0
    loss = betti_matching_loss(torch.tensor(likelihood), torch.tensor(truth))
    assert loss.item() == pytest.approx(2 * (0.1**2 + 0.2**2))
    assert betti_matching_error(likelihood > 0.5, truth)["betti_matching_error"] == 0


def test_displaced_loop_stays_unmatched():
    """Loops in different places: same Betti numbers, but both bars are unmatched:
    loss = (0.9 - 0.2)^2 + (1 - 0)^2 and error 2 in dimension 1."""
    truth = _ring((5, 9), 1, 1)
    likelihood = _ring((5, 9), 1, 5, value=0.9, hole=0.2, background=0.1)
    pred = likelihood > 0.5
    assert betti_numbers(pred, complex="vertex") == betti_numbers(truth, complex="vertex")
    loss = betti_matching_loss(torch.tensor(likelihood), torch.tensor(truth))
    assert loss.item() == pytest.approx(0.7**2 + 1.0)
    assert betti_matching_error(pred, truth) == {
        "betti_matching_error_0": 0,
        "betti_matching_error_1": 2,
        "betti_matching_error": 2,
    }


def test_merge_and_split_do_not_cancel():
    """Truth: A, B (row 1) and C (row 3). Prediction: A and B merged, C split in two.
    Three components each (Betti error 0); the matching pairs C with one half of the split C
    and leaves B and the other half unmatched: error 2 in dimension 0."""
    truth = np.zeros((5, 7), dtype=np.uint8)
    truth[1, 1:3] = truth[1, 4:6] = truth[3, 1:6] = 1
    pred = np.zeros_like(truth)
    pred[1, 1:6] = pred[3, 1:3] = pred[3, 4:6] = 1
    assert betti_numbers(pred, complex="vertex") == betti_numbers(truth, complex="vertex") == (3, 0)
    assert betti_matching_error(pred, truth) == {
        "betti_matching_error_0": 2,
        "betti_matching_error_1": 0,
        "betti_matching_error": 2,
    }
    loss = betti_matching_loss(torch.tensor(pred, dtype=torch.float64), torch.tensor(truth))
    assert loss.item() == pytest.approx(2.0)  # two unmatched bars (1, 0)


def test_diagonal_neighbours_are_not_connected():
    """V-construction: cells are 4-connected, so two diagonal pixels are two components, and a
    prediction that joins them only diagonally does not match a 4-connected truth."""
    truth = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.uint8)
    pred = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.uint8)
    assert betti_matching_error(pred, truth)["betti_matching_error_0"] == 1


# ---------------------------------------------------------------------------------------------
# loss: gradient, identities, batches


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    p = rng.random((8, 8))
    t = (rng.random((8, 8)) > 0.5).astype(np.float64)
    x = torch.tensor(p, requires_grad=True)
    betti_matching_loss(x, torch.tensor(t)).backward()
    eps = 1e-7
    numeric = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        plus, minus = p.copy(), p.copy()
        plus[i] += eps
        minus[i] -= eps
        numeric[i] = (
            betti_matching_loss(torch.tensor(plus), torch.tensor(t))
            - betti_matching_loss(torch.tensor(minus), torch.tensor(t))
        ).item() / (2 * eps)
    assert np.abs(numeric).max() > 0.1  # the loss does depend on the prediction
    np.testing.assert_allclose(x.grad.numpy(), numeric, atol=1e-5)


def test_gradient_lives_on_critical_pixels():
    rng = np.random.default_rng(1)
    p = rng.random((10, 10))
    t = (rng.random((10, 10)) > 0.5).astype(np.float64)
    x = torch.tensor(p, requires_grad=True)
    betti_matching_loss(x, torch.tensor(t)).backward()
    matching = betti_matching(p, t)
    critical = np.zeros(p.size, dtype=bool)
    for k in (0, 1):
        critical[matching.pred_pairs[k].ravel()] = True
    assert np.all(x.grad.numpy().ravel()[~critical] == 0)
    assert np.any(x.grad.numpy().ravel()[critical] != 0)


@pytest.mark.parametrize("seed", range(2))
def test_zero_when_prediction_equals_truth(seed):
    rng = np.random.default_rng(seed)
    truth = (rng.random((16, 16)) > 0.5).astype(np.uint8)
    assert betti_matching_error(truth, truth)["betti_matching_error"] == 0
    t = torch.tensor(truth, dtype=torch.float64)
    assert betti_matching_loss(t, t).item() == 0.0
    p = torch.tensor(rng.random((16, 16)))
    assert betti_matching_loss(p, p).item() == 0.0


def test_batch_mean_and_shapes():
    rng = np.random.default_rng(3)
    p = torch.tensor(rng.random((3, 1, 9, 9)))
    t = torch.tensor((rng.random((3, 1, 9, 9)) > 0.5) * 1.0)
    singles = [betti_matching_loss(p[i, 0], t[i, 0]) for i in range(3)]
    assert singles[0].ndim == 0
    batched = betti_matching_loss(p, t)
    assert batched.item() == pytest.approx(float(np.mean([s.item() for s in singles])))
    assert betti_matching_loss(p[:, 0], t[:, 0]).item() == pytest.approx(batched.item())


def test_float32_input_keeps_dtype_and_gradient():
    rng = np.random.default_rng(4)
    p = torch.tensor(rng.random((1, 1, 12, 12)), dtype=torch.float32, requires_grad=True)
    t = torch.tensor((rng.random((1, 1, 12, 12)) > 0.5) * 1.0, dtype=torch.float32)
    loss = betti_matching_loss(p, t)
    loss.backward()
    assert loss.dtype == torch.float32 and p.grad is not None and torch.isfinite(p.grad).all()


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_input_raises():
    good = torch.rand(8, 8)
    with pytest.raises(ValueError, match="same shape"):
        betti_matching_loss(good, torch.rand(8, 9))
    with pytest.raises(ValueError, match="NaN"):
        betti_matching_loss(torch.full((8, 8), float("nan")), good)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        betti_matching_loss(good * 3, good)
    with pytest.raises(ValueError, match="shape"):
        betti_matching_loss(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
    with pytest.raises(TypeError):
        betti_matching_loss(good.numpy(), good)
    with pytest.raises(ValueError, match="binary"):
        betti_matching_error(np.full((4, 4), 0.5), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="same shape"):
        betti_matching_error(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="2-D"):
        betti_matching_error(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        betti_matching(np.full((3, 3), np.nan), np.zeros((3, 3)))
