"""Betti matching (Stucki et al., ICML 2023): a loss and an error that match topological features
of a prediction and a ground truth *by location*, through induced matchings.

Definitions (Stucki, Paetzold, Shit, Menze, Bauer, "Topologically faithful image segmentation
via induced matching of persistence barcodes", ICML 2023; Bauer & Lesnick, "Induced matchings
and the algebraic stability of persistence barcodes", 2015). Let ``P`` and ``T`` be the
superlevel filtrations of the likelihood ``p`` and of the target ``t``, and ``C`` that of the
comparison image ``max(p, t)``. Every superlevel set of ``p`` (and of ``t``) lies in the
superlevel set of ``max(p, t)`` at the same level, so inclusion induces maps of persistence
modules ``H(P) -> H(C)`` and ``H(T) -> H(C)``; each has an *induced matching* of barcodes
(through the barcode of the image module). A bar of ``P`` and a bar of ``T`` are *matched* when
both are matched to the same bar of ``C``. Then::

    loss  = 2 * sum over matched pairs ((b_p - b_t)**2 + (d_p - d_t)**2)
            + sum over unmatched bars of P and of T of (b - d)**2
    error = number of unmatched bars of P and of T (on binary masks)

per homology dimension 0 and 1, summed.

Conventions, all those of the reference implementation (C++ ``BettiMatching`` of
nstucki/Betti-Matching-3D, files ``src/BettiMatching.cpp``, ``src/src_2D/dimension_0.cpp``,
``src/src_2D/dimension_1.cpp``, ``src/src_2D/data_structures.cpp``, ``src/config.h``, called as
in ``topolosses/losses/betti_matching/src/betti_matching_loss.py`` of J-falkenstein/topolosses
with its defaults; cross-checked against ``BettiMatching.py`` and ``evaluation.py`` of
nstucki/Betti-matching: ``filtration='superlevel'``, ``comparison='union'``, ``construction='V'``):

* **Superlevel filtration by ``1 - x``.** The reference turns superlevel into sublevel by
  computing ``1 - x`` (in the tensor's dtype, then float64), not by negating; we do the same, so
  ties (which decide the critical pixels) are exactly the reference's. The comparison image is
  ``min(1 - p, 1 - t)`` = ``1 - max(p, t)`` (``comparison='union'``).
* **V-construction, no padding.** Pixels are the vertices of a cubical complex; an edge joins
  4-neighbours and takes the max of its two vertices, a square the max of its four. Cells are
  4-connected, holes 8-connected. Edges leaving the image are not in the complex (the
  reference pads its grid with ``+inf`` and drops cells of value ``>= threshold = inf``).
* **Tie-breaking = a total order on cells.** Cells are ordered by ``(value, dimension, key)``
  with key the row-major position: vertex ``r * W + c``; edge ``(r, c, type)``, type 0 the
  vertical edge ``(r, c)-(r+1, c)`` and type 1 the horizontal edge ``(r, c)-(r, c+1)``; square
  ``(r, c)`` with corners ``(r..r+1, c..c+1)``. Dimension 0 is the union-find elder rule in
  this order (an older component has the smaller ``(value, index)``). Dimension 1 is computed,
  as in the reference, by duality: union-find over the squares (plus one node outside the
  image, of value ``+inf``) adding the edges in the *reverse* order; a square with the smaller
  ``(value, index)`` is the younger. The result is the H1 barcode of the same total order.
* **Bars.** Only bars of positive length (``birth != death`` in the ``1 - x`` values); the
  essential bar of dimension 0 is left out (the reference never pairs it).
* **Induced matching as the reference computes it.** Dimension 0: the comparison edges are
  added in comparison order to three union-finds (comparison, prediction, target), the elder
  rule of each using its own image's vertex values; when the comparison pair is of positive
  length, the prediction and target bars whose birth vertices die there are matched, if both
  are bars of positive length of their own filtration. Dimension 1: the edges of each input
  are added in that input's reverse order to the dual union-find of the input *and* to one of
  the comparison (elder rule with comparison values), which labels each input bar with the
  comparison node that dies with it; a comparison bar matches the input bars with its label.
  This is Bauer-Lesnick's rule (same birth into the image, same death out of it) applied to
  the image-persistence pairs of the reduction with rows in the input's order and columns in
  the comparison's (Cohen-Steiner, Edelsbrunner, Harer, Morozov 2009); the tests check it
  against that reduction done from scratch. Like the reference, we do **not** require the
  image pair to have positive length: a bar whose image in the comparison module is zero
  (born after the comparison bar it is sent to has died) is still matched, where the pure
  induced matching would leave it unmatched (a test shows such a case).
* **Critical pixels** (the reference's ``getParentVoxel``): the birth of a dimension-0 bar is
  its vertex; an edge maps to its endpoint of larger ``1 - x`` value, the second endpoint on a
  tie; a square to the first corner of maximal value among ``(r+1, c+1), (r+1, c), (r, c+1),
  (r, c)``. The loss gathers the likelihood at these pixels, so autograd sends the gradient
  there, as the reference's does.
* **Loss** (``_betti_matching_loss`` in topolosses with ``push_unmatched_to_1_0=False``,
  ``barcode_length_threshold=0``, weights 1): the formula above, per image, and the **mean over
  the batch** (``torch.mean`` of the per-image losses); no normalisation by the number of bars.
  The squared differences of ``1 - x`` equal those of ``x``, so we gather ``x`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from numba import njit  # a dependency: a 512x512 slice takes milliseconds, not seconds

from topobook.topology.persistence import check_binary, check_image
from topobook.topology.unionfind import _component_runs, _find

DIMENSIONS = (0, 1)


# ---------------------------------------------------------------------------------------------
# the cubical complex (V-construction) of an H x W grid


@dataclass(frozen=True)
class _Grid:
    """Cells of the V-construction of an ``(H, W)`` grid, edges in key order ``(r, c, type)``.

    ``edge_a``, ``edge_b``: ``(n_e,)`` flat pixel indices of the two endpoints (``b`` is the one
    below or to the right). ``dual_a``, ``dual_b``: the two squares each edge separates, as flat
    square indices ``r * (W - 1) + c``, or ``n_squares`` for the outside of the image.
    ``corners``: ``(4, n_s)`` flat pixel indices of the corners of each square in the
    reference's order ``(r+1, c+1), (r+1, c), (r, c+1), (r, c)``.
    """

    height: int
    width: int
    edge_a: np.ndarray
    edge_b: np.ndarray
    dual_a: np.ndarray
    dual_b: np.ndarray
    corners: np.ndarray

    @property
    def n_squares(self) -> int:
        return (self.height - 1) * (self.width - 1)


@cache
def _grid(height: int, width: int) -> _Grid:
    r, c = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    r, c = r.ravel(), c.ravel()
    # Both edge types at every pixel, interleaved so that position = key order (r, c, type).
    r2, c2 = np.repeat(r, 2), np.repeat(c, 2)
    kind = np.tile([0, 1], height * width)
    valid = np.where(kind == 0, r2 < height - 1, c2 < width - 1)
    r2, c2, kind = r2[valid], c2[valid], kind[valid]
    edge_a = r2 * width + c2
    edge_b = np.where(kind == 0, edge_a + width, edge_a + 1)
    sw = width - 1
    outside = (height - 1) * sw
    # A vertical edge (r, c)-(r+1, c) separates squares (r, c-1) and (r, c); a horizontal edge
    # (r, c)-(r, c+1) separates squares (r-1, c) and (r, c). Missing squares are the outside.
    vertical = kind == 0
    dual_a = np.where(
        vertical,
        np.where(c2 == 0, outside, r2 * sw + c2 - 1),
        np.where(r2 == 0, outside, (r2 - 1) * sw + c2),
    )
    dual_b = np.where(
        vertical,
        np.where(c2 == width - 1, outside, r2 * sw + c2),
        np.where(r2 == height - 1, outside, r2 * sw + c2),
    )
    sr, sc = np.meshgrid(np.arange(height - 1), np.arange(width - 1), indexing="ij")
    top_left = (sr * width + sc).ravel()
    corners = np.stack([top_left + width + 1, top_left + width, top_left + 1, top_left])
    arrays = [a.astype(np.int64) for a in (edge_a, edge_b, dual_a, dual_b, corners)]
    for a in arrays:
        a.flags.writeable = False
    return _Grid(height, width, *arrays)


# ---------------------------------------------------------------------------------------------
# union-find kernels (numba)




@njit(cache=True, nogil=True)
def _link(parent: np.ndarray, birth: np.ndarray, x: int, y: int, dual: bool) -> int:
    """Merge roots ``x != y``; return the younger one, which dies. Primal: the younger has the
    larger ``(birth, index)``; dual: the smaller (``UnionFind::link`` and
    ``UnionFindDual::link`` of the reference)."""
    if dual:
        young = x if (birth[x] < birth[y] or (birth[x] == birth[y] and x < y)) else y
    else:
        young = x if (birth[x] > birth[y] or (birth[x] == birth[y] and x > y)) else y
    parent[young] = y if young == x else x
    return young


@njit(cache=True, nogil=True)
def _dim0_pairs(vertex_birth, edge_birth, edge_a, edge_b, order, parent, start):
    """Finite dimension-0 pairs ``(birth vertex, death edge)`` of positive length and the map
    birth vertex -> pair index (-1 where none). ``parent``: the union-find (modified), with the
    edges ``order[:start]`` already merged into it, none of which closes a pair of positive
    length (``np.arange`` and 0 for a fresh start; :func:`_zero_level` for a two-level
    filtration)."""
    n_vertices = parent.shape[0]
    pairs = np.empty((n_vertices, 2), np.int64)
    label = np.full(n_vertices, -1, np.int64)
    n = 0
    for i in range(start, order.shape[0]):
        e = order[i]
        x, y = _find(parent, edge_a[e]), _find(parent, edge_b[e])
        if x != y:
            young = _link(parent, vertex_birth, x, y, False)
            if vertex_birth[young] != edge_birth[e]:
                pairs[n, 0], pairs[n, 1] = young, e
                label[young] = n
                n += 1
    return pairs[:n], label


@njit(cache=True, nogil=True)
def _dim0_match(vb0, vb1, vbc, ebc, edge_a, edge_b, order_c, label0, label1, p0, p1, pc, start):
    """Matched dimension-0 pairs ``(index in pairs0, index in pairs1)``: the comparison edges in
    comparison order drive all three union-finds (``computeImagePairsAndMatch``). ``p0``,
    ``p1``, ``pc``: the three union-finds (modified), with the edges ``order_c[:start]``
    already merged into them, none of which closes a comparison pair of positive length."""
    n_vertices = vbc.shape[0]
    matches = np.empty((n_vertices, 2), np.int64)
    n = 0
    for i in range(start, order_c.shape[0]):
        e = order_c[i]
        a, b = edge_a[e], edge_b[e]
        x, y = _find(pc, a), _find(pc, b)
        if x != y:
            young_c = _link(pc, vbc, x, y, False)
            young0 = _link(p0, vb0, _find(p0, a), _find(p0, b), False)
            young1 = _link(p1, vb1, _find(p1, a), _find(p1, b), False)
            if vbc[young_c] != ebc[e] and label0[young0] >= 0 and label1[young1] >= 0:
                matches[n, 0], matches[n, 1] = label0[young0], label1[young1]
                n += 1
    return matches[:n]


@njit(cache=True, nogil=True)
def _elder_parents(cells, births):
    """The union-finds of the vertices of an ``(H, W)`` grid after every edge between two
    4-neighbours of ``cells`` (bool) has been added, in any order, with the elder rule of
    :func:`_link` on each row of ``births`` (``(k, H*W)``): each component of ``cells`` is one
    set whose root is its elder, the vertex of smallest ``(birth, index)`` (the elder survives
    every merge, whatever their order), every other vertex a set of its own. Returns the parent
    arrays ``(k, H*W)``, every vertex pointing at its root. The components come from
    :func:`topobook.topology.unionfind._component_runs`; each one's pixels are scanned in raster
    order, keeping the first of smallest birth."""
    height, width = cells.shape
    run_start, run_end, row_first, root = _component_runs(cells)
    n_births = births.shape[0]
    parents = np.empty((n_births, height * width), np.int64)
    elder = np.empty(run_start.shape[0], np.int64)
    for i in range(n_births):
        birth = births[i]
        parent = parents[i]
        for p in range(height * width):
            parent[p] = p
        for r in range(height):
            for k in range(row_first[r], row_first[r + 1]):
                if root[k] == k:  # the component's first run: its first pixel starts the scan
                    elder[k] = r * width + run_start[k]
                for p in range(r * width + run_start[k], r * width + run_end[k]):
                    if birth[p] < birth[elder[root[k]]]:
                        elder[root[k]] = p
        for r in range(height):
            for k in range(row_first[r], row_first[r + 1]):
                for p in range(r * width + run_start[k], r * width + run_end[k]):
                    parent[p] = elder[root[k]]
    return parents


def _zero_level(f: np.ndarray, births: list[np.ndarray], edge_birth: np.ndarray):
    """For a two-level filtration ``f`` (``(H, W)``, values 0.0 and 1.0) whose edges come in
    the order of :func:`_two_level_order` (the edges of value 0 first): the union-finds after
    those edges, one per array of ``births`` (:func:`_elder_parents`), and their number. An
    edge of value 0 joins two vertices of value 0, whose components are born at 0 too, so none
    of them closes a pair of positive length: the loops of :func:`_dim0_pairs` and
    :func:`_dim0_match` over them change only the union-find, whose state after them does not
    depend on their order; labelling the components by runs gives it at once."""
    parents = _elder_parents(f == 0.0, np.stack(births))
    return list(parents), int(np.count_nonzero(edge_birth == 0.0))


@njit(cache=True, nogil=True)
def _dim1_pairs(square_birth, edge_birth, dual_a, dual_b, order, square_birth_c):
    """Finite dimension-1 pairs ``(birth edge, death square)`` of positive length, by the dual
    union-find over the edges in reverse order, and for each pair the comparison node that dies
    when the same edges are added to the comparison's dual union-find (``computeImagePairs``).
    Returns ``(pairs, comparison_label)``: ``comparison_label[node]`` = pair index or -1."""
    n_nodes = square_birth.shape[0]
    parent, parent_c = np.arange(n_nodes), np.arange(n_nodes)
    pairs = np.empty((n_nodes, 2), np.int64)
    label = np.full(n_nodes, -1, np.int64)
    n = 0
    for i in range(order.shape[0] - 1, -1, -1):
        e = order[i]
        a, b = dual_a[e], dual_b[e]
        x, y = _find(parent, a), _find(parent, b)
        if x != y:
            young = _link(parent, square_birth, x, y, True)
            young_c = _link(parent_c, square_birth_c, _find(parent_c, a), _find(parent_c, b), True)
            if square_birth[young] != edge_birth[e]:
                pairs[n, 0], pairs[n, 1] = e, young
                label[young_c] = n
                n += 1
    return pairs[:n], label


@njit(cache=True, nogil=True)
def _dim1_match(square_birth_c, edge_birth_c, dual_a, dual_b, order_c, label0, label1):
    """Matched dimension-1 pairs: each comparison pair of positive length matches the input
    pairs labelled with its dying node (``computeCompPairsAndMatch``)."""
    n_nodes = square_birth_c.shape[0]
    parent = np.arange(n_nodes)
    matches = np.empty((n_nodes, 2), np.int64)
    n = 0
    for i in range(order_c.shape[0] - 1, -1, -1):
        e = order_c[i]
        x, y = _find(parent, dual_a[e]), _find(parent, dual_b[e])
        if x != y:
            young = _link(parent, square_birth_c, x, y, True)
            if (
                square_birth_c[young] != edge_birth_c[e]
                and label0[young] >= 0
                and label1[young] >= 0
            ):
                matches[n, 0], matches[n, 1] = label0[young], label1[young]
                n += 1
    return matches[:n]


# ---------------------------------------------------------------------------------------------
# the matching of one pair of images


@dataclass(frozen=True)
class BettiMatching:
    """The Betti matching of a prediction and a target of shape ``(H, W)``.

    ``pred_pairs[k]``, ``target_pairs[k]``: ``(n_k, 2)`` int64 flat row-major pixel indices of
    the (birth, death) critical pixels of every finite bar of positive length in dimension ``k``
    (superlevel: the likelihood at the birth pixel is >= the one at the death pixel).
    ``matches[k]``: ``(m_k, 2)`` int64, rows ``(i, j)``: bar ``pred_pairs[k][i]`` is matched to
    bar ``target_pairs[k][j]``.
    """

    pred_pairs: list[np.ndarray]
    target_pairs: list[np.ndarray]
    matches: list[np.ndarray]

    def unmatched_pred(self, k: int) -> np.ndarray:
        """``(u, 2)`` critical pixels of the unmatched prediction bars in dimension ``k``."""
        return _unmatched(self.pred_pairs[k], self.matches[k][:, 0])

    def unmatched_target(self, k: int) -> np.ndarray:
        """``(u, 2)`` critical pixels of the unmatched target bars in dimension ``k``."""
        return _unmatched(self.target_pairs[k], self.matches[k][:, 1])


def _unmatched(pairs: np.ndarray, matched: np.ndarray) -> np.ndarray:
    keep = np.ones(len(pairs), dtype=bool)
    keep[matched] = False
    return pairs[keep]


def _edge_pixel(f: np.ndarray, grid: _Grid, edges: np.ndarray) -> np.ndarray:
    """Critical pixel of each edge: the endpoint of larger value, the second one on a tie."""
    a, b = grid.edge_a[edges], grid.edge_b[edges]
    return np.where(f[b] >= f[a], b, a)


def _square_pixel(f: np.ndarray, grid: _Grid, squares: np.ndarray) -> np.ndarray:
    """Critical pixel of each square: the first corner of maximal value in the reference's
    order ``(r+1, c+1), (r+1, c), (r, c+1), (r, c)``."""
    corners = grid.corners[:, squares]  # (4, n)
    values = f[corners]
    first = np.argmax(values == values.max(axis=0), axis=0)
    return corners[first, np.arange(corners.shape[1])]


@njit(cache=True, nogil=True)
def _cell_values(f, edge_a, edge_b, corners):
    """Values of the edges (the larger of their two pixels) and of the dual nodes (the squares,
    the largest of their four corners, then the outside, ``+inf``) of the flat filtration
    ``f`` (finite float64)."""
    edge_birth = np.empty(edge_a.shape[0], np.float64)
    for e in range(edge_a.shape[0]):
        edge_birth[e] = max(f[edge_a[e]], f[edge_b[e]])
    n_squares = corners.shape[1]
    square_birth = np.empty(n_squares + 1, np.float64)
    for s in range(n_squares):
        square_birth[s] = max(
            max(f[corners[0, s]], f[corners[1, s]]), max(f[corners[2, s]], f[corners[3, s]])
        )
    square_birth[n_squares] = np.inf
    return edge_birth, square_birth


@njit(cache=True, nogil=True)
def _two_level_order(values: np.ndarray) -> np.ndarray:
    """The stable argsort of ``values`` that are all 0.0 or 1.0: the indices of the zeros, then
    those of the ones, each in increasing order (one pass each instead of a comparison sort)."""
    order = np.empty(values.shape[0], np.int64)
    k = 0
    for i in range(values.shape[0]):
        if values[i] == 0.0:
            order[k] = i
            k += 1
    for i in range(values.shape[0]):
        if values[i] != 0.0:
            order[k] = i
            k += 1
    return order


def _filtration_values(f: np.ndarray, grid: _Grid, binary: bool = False):
    """Values of vertices, edges and dual nodes (squares + outside) of the sublevel filtration
    ``f`` (flat, float64), and the edge order ``(value, key)`` by a stable sort. ``binary``:
    ``f`` takes only the values 0.0 and 1.0 (the caller guarantees it), and the same order is
    found by a stable partition."""
    edge_birth, square_birth = _cell_values(f, grid.edge_a, grid.edge_b, grid.corners)
    order = _two_level_order(edge_birth) if binary else np.argsort(edge_birth, kind="stable")
    return edge_birth, order, square_birth


def _match_sublevel(f0: np.ndarray, f1: np.ndarray, binary: bool = False) -> BettiMatching:
    """Betti matching of the sublevel filtrations of ``f0`` and ``f1`` (both ``(H, W)``
    float64, here ``1 - prediction`` and ``1 - target``), comparison ``min(f0, f1)``.
    ``binary``: both take only the values 0.0 and 1.0 (:func:`_filtration_values`)."""
    grid = _grid(*f0.shape)
    flat0, flat1 = f0.ravel(), f1.ravel()
    flatc = np.minimum(flat0, flat1)
    e0, o0, s0 = _filtration_values(flat0, grid, binary)
    e1, o1, s1 = _filtration_values(flat1, grid, binary)
    ec, oc, sc = _filtration_values(flatc, grid, binary)
    if binary:  # the edges of value 0 merged by labelling (see _zero_level)
        (parent0,), start0 = _zero_level(f0, [flat0], e0)
        (parent1,), start1 = _zero_level(f1, [flat1], e1)
        (p0, p1, pc), start_c = _zero_level(flatc.reshape(f0.shape), [flat0, flat1, flatc], ec)
    else:
        parent0, parent1, start0, start1 = np.arange(flat0.size), np.arange(flat0.size), 0, 0
        p0, p1, pc, start_c = *(np.arange(flat0.size) for _ in range(3)), 0

    pairs0, lab0 = _dim0_pairs(flat0, e0, grid.edge_a, grid.edge_b, o0, parent0, start0)
    pairs1, lab1 = _dim0_pairs(flat1, e1, grid.edge_a, grid.edge_b, o1, parent1, start1)
    match0 = _dim0_match(
        flat0, flat1, flatc, ec, grid.edge_a, grid.edge_b, oc, lab0, lab1, p0, p1, pc, start_c
    )

    dpairs0, dlab0 = _dim1_pairs(s0, e0, grid.dual_a, grid.dual_b, o0, sc)
    dpairs1, dlab1 = _dim1_pairs(s1, e1, grid.dual_a, grid.dual_b, o1, sc)
    match1 = _dim1_match(sc, ec, grid.dual_a, grid.dual_b, oc, dlab0, dlab1)

    def pixels0(f, pairs):
        return np.stack([pairs[:, 0], _edge_pixel(f, grid, pairs[:, 1])], axis=1)

    def pixels1(f, pairs):
        return np.stack(
            [_edge_pixel(f, grid, pairs[:, 0]), _square_pixel(f, grid, pairs[:, 1])], axis=1
        )

    return BettiMatching(
        pred_pairs=[pixels0(flat0, pairs0), pixels1(flat0, dpairs0)],
        target_pairs=[pixels0(flat1, pairs1), pixels1(flat1, dpairs1)],
        matches=[match0, match1],
    )


def _cells_sublevel(f0: np.ndarray, f1: np.ndarray) -> dict:
    """The same matching as :func:`_match_sublevel` but with bars named by their *cells* (for
    the tests): dimension 0 ``(vertex, edge)``, dimension 1 ``(edge, square)``, edges and
    squares numbered as in :func:`_grid`."""
    grid = _grid(*f0.shape)
    flat0, flat1 = f0.ravel(), f1.ravel()
    flatc = np.minimum(flat0, flat1)
    e0, o0, s0 = _filtration_values(flat0, grid)
    e1, o1, s1 = _filtration_values(flat1, grid)
    ec, oc, sc = _filtration_values(flatc, grid)
    fresh = [np.arange(flat0.size) for _ in range(5)]
    pairs0, lab0 = _dim0_pairs(flat0, e0, grid.edge_a, grid.edge_b, o0, fresh[0], 0)
    pairs1, lab1 = _dim0_pairs(flat1, e1, grid.edge_a, grid.edge_b, o1, fresh[1], 0)
    match0 = _dim0_match(
        flat0, flat1, flatc, ec, grid.edge_a, grid.edge_b, oc, lab0, lab1, *fresh[2:], 0
    )
    dpairs0, dlab0 = _dim1_pairs(s0, e0, grid.dual_a, grid.dual_b, o0, sc)
    dpairs1, dlab1 = _dim1_pairs(s1, e1, grid.dual_a, grid.dual_b, o1, sc)
    match1 = _dim1_match(sc, ec, grid.dual_a, grid.dual_b, oc, dlab0, dlab1)
    return {
        "pred": [pairs0, dpairs0],
        "target": [pairs1, dpairs1],
        "matches": [match0, match1],
    }


def _superlevel_as_sublevel(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """``1 - x`` computed in ``x``'s own floating dtype (as the reference does on its float32
    tensors), then float64: the same values, hence the same ties, as the reference sees."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    array = np.asarray(x)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    check_image(array, name)
    return (array.dtype.type(1) - array).astype(np.float64)


def betti_matching(
    prediction: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor
) -> BettiMatching:
    """The Betti matching of a likelihood ``prediction`` and a ``target``, both ``(H, W)``,
    higher = cell, in the superlevel filtration (see the module docstring for every
    convention). Values need not lie in [0, 1]; they must be finite."""
    f0 = _superlevel_as_sublevel(prediction, "prediction")
    f1 = _superlevel_as_sublevel(target, "target")
    if f0.shape != f1.shape:
        raise ValueError(f"prediction {f0.shape} and target {f1.shape} must have the same shape")
    return _match_sublevel(f0, f1)


# ---------------------------------------------------------------------------------------------
# the loss


def _as_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    """``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` as ``(B, H, W)``, or a clear error."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(
            f"{name} must have shape (H, W), (B, H, W) or (B, 1, H, W) and be non-empty, "
            f"got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"{name} must lie in [0, 1] (apply a sigmoid to logits first)")
    return x


def _image_loss(p: torch.Tensor, t: torch.Tensor, matching: BettiMatching) -> torch.Tensor:
    """The loss of one image: ``p``, ``t`` flat ``(H * W,)`` tensors."""
    total = p.new_zeros(())
    for k in DIMENSIONS:
        pred = torch.as_tensor(matching.pred_pairs[k], device=p.device)
        targ = torch.as_tensor(matching.target_pairs[k], device=p.device)
        m = torch.as_tensor(matching.matches[k], device=p.device).reshape(-1, 2)
        matched = p[pred[m[:, 0]]] - t[targ[m[:, 1]]]  # (m, 2): birth and death differences
        unmatched_p = torch.ones(len(pred), dtype=torch.bool, device=p.device)
        unmatched_p[m[:, 0]] = False
        unmatched_t = torch.ones(len(targ), dtype=torch.bool, device=p.device)
        unmatched_t[m[:, 1]] = False
        bars_p = p[pred[unmatched_p]].reshape(-1, 2)
        bars_t = t[targ[unmatched_t]].reshape(-1, 2)
        total = (
            total
            + 2 * (matched**2).sum()
            + ((bars_p[:, 0] - bars_p[:, 1]) ** 2).sum()
            + ((bars_t[:, 0] - bars_t[:, 1]) ** 2).sum()
        )
    return total


def betti_matching_loss(likelihood: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The Betti matching loss, differentiable in ``likelihood``.

    ``likelihood``: cell probability in [0, 1], shape ``(H, W)``, ``(B, H, W)`` or
    ``(B, 1, H, W)``; ``target``: the same shape, in [0, 1] (1 = cell). Returns a scalar: the
    mean over the batch of ``2 * sum_matched ((b_p - b_t)**2 + (d_p - d_t)**2) +
    sum_unmatched (b - d)**2`` over dimensions 0 and 1 (module docstring). The gradient reaches
    ``likelihood`` only at the critical pixels of its bars.
    """
    p = _as_batch(likelihood, "likelihood")
    t = _as_batch(target, "target").to(p.dtype)
    if p.shape != t.shape:
        raise ValueError(
            f"likelihood {tuple(p.shape)} and target {tuple(t.shape)} must have the same shape"
        )
    losses = []
    for p_i, t_i in zip(p, t, strict=True):
        matching = betti_matching(p_i, t_i)
        losses.append(_image_loss(p_i.reshape(-1), t_i.reshape(-1), matching))
    return torch.stack(losses).mean()


# ---------------------------------------------------------------------------------------------
# the error


def betti_matching_error(pred: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor) -> dict:
    """The Betti matching error of a binary prediction and a binary ground truth ``(H, W)``
    (values in {0, 1}, 1 = cell): the number of unmatched bars of both, per dimension.

    Returns ``{"betti_matching_error_0": int, "betti_matching_error_1": int,
    "betti_matching_error": int}`` (the last is the sum). Binarise a likelihood first (e.g.
    ``likelihood > 0.5``).

    The filtrations take two values, so the edges are ordered by a stable partition and the
    dimension-0 union-finds start from the labelled cell components (``binary=True`` of
    :func:`_match_sublevel`, :func:`_zero_level`): the same bars and matches as adding every
    edge (tested), about 1.5 times as fast on a 512x512 slice.
    """
    pred_mask = check_binary(pred, "pred")
    truth_mask = check_binary(truth, "truth")
    if pred_mask.shape != truth_mask.shape:
        raise ValueError(
            f"pred {pred_mask.shape} and truth {truth_mask.shape} must have the same shape"
        )
    matching = _match_sublevel(
        1.0 - pred_mask.astype(np.float64), 1.0 - truth_mask.astype(np.float64), binary=True
    )
    errors = {}
    for k in DIMENSIONS:
        n_matched = len(matching.matches[k])
        unmatched = len(matching.pred_pairs[k]) + len(matching.target_pairs[k]) - 2 * n_matched
        errors[f"betti_matching_error_{k}"] = int(unmatched)
    errors["betti_matching_error"] = sum(errors.values())
    return errors
