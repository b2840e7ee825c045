"""Independent oracles for the tests: a textbook persistence algorithm written from scratch.

Builds the filtered complex of a small image explicitly (every vertex, edge and 2-cell with its
value) and reduces the Z/2 boundary matrix column by column (Edelsbrunner-Harer, "Computational
Topology", VII.1). Slow, but shares no code with gudhi or topobook.
"""

from __future__ import annotations

import numpy as np


def _reduce(cells: list[tuple[float, int, frozenset]]) -> list[np.ndarray]:
    """cells: (value, dim, boundary as a frozenset of cell keys); keys are positions in the list
    after sorting. Returns the diagram per dimension 0 and 1 (zero-length bars dropped)."""
    order = sorted(range(len(cells)), key=lambda i: (cells[i][0], cells[i][1], i))
    position = {old: new for new, old in enumerate(order)}
    values = [cells[i][0] for i in order]
    dims = [cells[i][1] for i in order]
    columns = [set(position[b] for b in cells[i][2]) for i in order]
    pivot_owner: dict[int, int] = {}
    paired = set()
    dgms: list[list[tuple[float, float]]] = [[], []]
    for j, col in enumerate(columns):
        while col and max(col) in pivot_owner:
            col ^= columns[pivot_owner[max(col)]]
        if col:
            low = max(col)
            pivot_owner[low] = j
            paired.update((low, j))
            if values[j] > values[low]:
                dgms[dims[low]].append((values[low], values[j]))
    for i in range(len(columns)):
        if i not in paired and dims[i] <= 1:
            dgms[dims[i]].append((values[i], np.inf))
    return [np.array(sorted(d), dtype=float).reshape(-1, 2) for d in dgms]


def _lower_star(image: np.ndarray, edges, faces) -> list[np.ndarray]:
    h, w = image.shape
    key = {}
    cells = []
    for r in range(h):
        for c in range(w):
            key[(r, c)] = len(cells)
            cells.append((image[r, c], 0, frozenset()))
    for a, b in edges:
        key[frozenset((a, b))] = len(cells)
        cells.append((max(image[a], image[b]), 1, frozenset((key[a], key[b]))))
    for face in faces:  # a 2-cell given by its boundary edges
        verts = {v for e in face for v in e}
        boundary = frozenset(key[frozenset(e)] for e in face)
        cells.append((max(image[v] for v in verts), 2, boundary))
    return _reduce(cells)


def _grid(h: int, w: int, triangulate: bool):
    """Edges and 2-cells of the grid of pixels (r, c): squares, or each square cut into two
    triangles along the diagonal (r,c)-(r+1,c+1)."""
    edges, faces = [], []
    for r in range(h):
        for c in range(w):
            if c + 1 < w:
                edges.append(((r, c), (r, c + 1)))
            if r + 1 < h:
                edges.append(((r, c), (r + 1, c)))
            if r + 1 < h and c + 1 < w:
                a, b, d, e = (r, c), (r, c + 1), (r + 1, c + 1), (r + 1, c)
                if triangulate:
                    edges.append((a, d))
                    faces.append([(a, b), (b, d), (a, d)])
                    faces.append([(a, e), (e, d), (a, d)])
                else:
                    faces.append([(a, b), (b, d), (e, d), (a, e)])
    return edges, faces


def freudenthal_diagrams(image: np.ndarray) -> list[np.ndarray]:
    """Sublevel diagrams (H0, H1) of the Freudenthal triangulation with diagonal (r,c)-(r+1,c+1)."""
    return _lower_star(image, *_grid(*image.shape, triangulate=True))


def vertex_cubical_diagrams(image: np.ndarray) -> list[np.ndarray]:
    """Sublevel diagrams of the cubical complex whose vertices are the pixels."""
    return _lower_star(image, *_grid(*image.shape, triangulate=False))


def top_cubical_diagrams(image: np.ndarray) -> list[np.ndarray]:
    """Sublevel diagrams of the cubical complex whose squares are the pixels; a vertex or edge
    takes the smallest value of the squares that contain it."""
    h, w = image.shape
    cells, key = [], {}

    def value_of_point(r, c):  # grid point (r, c) touches pixels (r-1..r, c-1..c)
        return min(image[i, j] for i in (r - 1, r) for j in (c - 1, c) if 0 <= i < h and 0 <= j < w)

    for r in range(h + 1):
        for c in range(w + 1):
            key[(r, c)] = len(cells)
            cells.append((value_of_point(r, c), 0, frozenset()))
    for r in range(h + 1):
        for c in range(w + 1):
            for dr, dc in ((0, 1), (1, 0)):
                r2, c2 = r + dr, c + dc
                if r2 > h or c2 > w:
                    continue
                pix = [(r, c) if dr else (r - 1, c), (r, c - 1) if dr else (r, c)]
                vals = [image[i, j] for i, j in pix if 0 <= i < h and 0 <= j < w]
                key[(r, c, r2, c2)] = len(cells)
                cells.append((min(vals), 1, frozenset((key[(r, c)], key[(r2, c2)]))))
    for r in range(h):
        for c in range(w):
            boundary = frozenset(
                key[e]
                for e in (
                    (r, c, r, c + 1),
                    (r + 1, c, r + 1, c + 1),
                    (r, c, r + 1, c),
                    (r, c + 1, r + 1, c + 1),
                )
            )
            cells.append((image[r, c], 2, boundary))
    return _reduce(cells)


ORACLES = {
    "cubical": top_cubical_diagrams,
    "vertex": vertex_cubical_diagrams,
    "freudenthal": freudenthal_diagrams,
}


def sorted_rows(dgm: np.ndarray) -> np.ndarray:
    dgm = np.asarray(dgm, dtype=float).reshape(-1, 2)
    return dgm[np.lexsort((dgm[:, 1], dgm[:, 0]))]


def tricky_images(seed: int = 0):
    """``(name, image)`` pairs that stress the tie rule and the border of a persistence
    algorithm: random maps with many ties (a few levels), constant maps, 1 x n and n x 1 strips,
    binary masks, saturated likelihoods (float32 sigmoids with many exact 0s and 1s), rings, a
    checkerboard, distinct values, sizes up to 64 x 64 and non-square shapes."""
    rng = np.random.default_rng(seed)
    for shape in [(1, 1), (1, 9), (9, 1), (2, 2), (5, 7), (16, 16), (23, 41), (64, 64)]:
        for levels in (2, 3, 5):
            yield f"ties{levels}_{shape}", np.round(rng.random(shape) * (levels - 1))
        yield f"distinct_{shape}", rng.random(shape)
        yield f"constant_{shape}", np.full(shape, 0.25)
        yield f"mask_{shape}", (rng.random(shape) > 0.5).astype(np.float64)
        logits = rng.normal(0, 60, shape).astype(np.float32)
        with np.errstate(over="ignore"):  # exp overflows to inf: exact 0s; 1s by rounding
            saturated = np.float32(1) / (np.float32(1) + np.exp(-logits))
        yield f"saturated_{shape}", saturated.astype(np.float64)
    for strip in [(1, 40), (40, 1)]:
        yield f"strip_ties_{strip}", np.round(rng.random(strip) * 3)
    ring = np.zeros((7, 8))
    ring[1:6, 1:7] = 1.0
    ring[2:5, 2:6] = 0.0
    ring[3, 4] = 0.5
    yield "ring", ring
    yield "checkerboard", (np.indices((9, 12)).sum(axis=0) % 2).astype(np.float64)
