"""Persistent homology of 2-D images, with gradients through the critical pixels.

Three ways to turn an image ``f`` of shape ``(H, W)`` into a filtered complex (``complex=``):

``"cubical"``
    pixels are the *top* cells (squares) of a cubical complex (gudhi ``top_dimensional_cells``).
    A sublevel set ``{f <= t}`` is a union of closed squares, so two pixels that share only a corner
    are connected: H0 is **8-connected**; holes (H1) are 4-connected regions of the complement.
``"vertex"``
    pixels are the *vertices* of a cubical complex (gudhi ``vertices``); an edge or square takes
    the max of its vertices. H0 is **4-connected**; holes are 8-connected.
``"freudenthal"``
    pixels are the vertices of the Freudenthal triangulation that TopologyLayer's
    ``LevelSetLayer2D`` uses: edges to the 4 neighbours plus the diagonal ``(r, c)-(r+1, c+1)``,
    two triangles per square sharing that diagonal, every simplex taking the max of its vertices.
    H0 and holes are both **6-connected**: 6-adjacency with this diagonal is self-complementary
    (the complement of a set is 6-connected with the same diagonal). Diagrams equal
    TopologyLayer's.

Filtrations: ``superlevel=False`` filters by ``f <= t`` (births <= deaths, essential deaths
``+inf``); ``superlevel=True`` filters by ``f >= t`` and reports the diagram in the image's own
values with births >= deaths and essential deaths ``-inf`` (TopologyLayer's convention), which is
the natural choice for a likelihood map where cells have high values.

Pixel indices are flat and row-major: pixel ``(r, c)`` has index ``r * W + c``.

Backends (``backend=``): ``"unionfind"``, the default, computes H0 by a union-find over the
pixels in value order (the elder rule) and H1 by duality, a union-find on the complement with
the dual connectivity (:mod:`topobook.topology.unionfind`, numba); ``"gudhi"`` runs gudhi's cubical
complex or simplex tree, and is the oracle of the tests. Both give the same bars, the same
critical pixels and the same order (tested), so losses and gradients do not depend on the
backend; one exception: on a single pixel, gudhi's simplex tree (``"freudenthal"``) reports no
bar at all, the union-find the one essential H0 bar. ``keep_zero_length=True``
(TopologyLayer's fixed-length diagrams, with every zero-length bar) is only computed by gudhi:
the default backend routes it there, and asking for ``backend="unionfind"`` with it is an
error.

**Tie rule** (both backends): pixels of equal value enter the filtration in row-major order,
i.e. in the order of a stable argsort of the filtration values (``-image`` for superlevel). For
``"cubical"`` and ``"vertex"`` persistence is computed on these ranks, so every birth and death
names one pixel; for ``"freudenthal"`` gudhi's simplex order decides (see
:mod:`topobook.topology.unionfind`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import gudhi
import numpy as np
import torch

from topobook.topology.unionfind import binary_counts, unionfind_pairs

COMPLEXES = ("cubical", "vertex", "freudenthal")
BACKENDS = ("unionfind", "gudhi")
# The backend of every call that names none (keep_zero_length aside). Setting it to "gudhi"
# reproduces the book's path before the union-find; benchmarks/evaluation.py does, to time
# whole runs before and after.
DEFAULT_BACKEND = "unionfind"

# Connectivity of the foreground and of the holes (background) that each complex implies,
# as 3x3 structuring elements for scipy.ndimage.label.
_FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
_EIGHT = np.ones((3, 3), dtype=bool)
_SIX = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=bool)
CONNECTIVITY = {
    "cubical": {"foreground": _EIGHT, "background": _FOUR},
    "vertex": {"foreground": _FOUR, "background": _EIGHT},
    "freudenthal": {"foreground": _SIX, "background": _SIX},
}


@dataclass(frozen=True)
class PersistencePairs:
    """Critical pixels of every bar of one image, as flat row-major indices.

    ``finite[k]``: ``(n_k, 2)`` int64, the pixel where bar ``k`` is born and the pixel where it
    dies (``c_b(p)``, ``c_d(p)`` in eq. (3) of the paper), sorted by decreasing lifetime.
    ``essential[k]``: ``(m_k,)`` int64, the birth pixel of each bar that never dies.
    """

    finite: list[np.ndarray]
    essential: list[np.ndarray]


def check_image(image: np.ndarray | torch.Tensor, name: str = "image") -> np.ndarray:
    """Return ``image`` as a finite float64 ``(H, W)`` array, or raise a clear ``ValueError``."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (H, W), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check_options(complex: str, maxdim: int) -> None:
    if complex not in COMPLEXES:
        raise ValueError(f"complex must be one of {COMPLEXES}, got {complex!r}")
    if maxdim not in (0, 1):
        raise ValueError(f"maxdim must be 0 or 1 for 2-D images, got {maxdim!r}")


def resolve_backend(backend: str | None, keep_zero_length: bool = False) -> str:
    """The backend that computes persistence: ``backend`` if given, else
    :data:`DEFAULT_BACKEND` (``"unionfind"``), or ``"gudhi"`` when ``keep_zero_length`` (the
    union-find does not list zero-length bars)."""
    if backend is None:
        backend = "gudhi" if keep_zero_length else DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
    if backend == "unionfind" and keep_zero_length:
        raise ValueError(
            "keep_zero_length=True (TopologyLayer's zero-length bars) needs backend='gudhi' "
            "(or backend=None, which chooses it)"
        )
    return backend


@cache
def _freudenthal_simplices(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``(2, n_e)`` and triangles ``(3, n_t)`` of the Freudenthal triangulation of a grid."""
    idx = np.arange(height * width).reshape(height, width)
    edges = np.concatenate(
        [
            np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()]),  # horizontal
            np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()]),  # vertical
            np.stack([idx[:-1, :-1].ravel(), idx[1:, 1:].ravel()]),  # diagonal (r,c)-(r+1,c+1)
        ],
        axis=1,
    )
    triangles = np.concatenate(
        [
            np.stack([idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()]),
            np.stack([idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()]),
        ],
        axis=1,
    )
    edges.flags.writeable = False
    triangles.flags.writeable = False
    return edges, triangles


def _cubical_pairs_by_rank(values: np.ndarray, complex: str):
    """Critical pixels of a cubical complex without gudhi's (slower) generator queries.

    Persistence is computed on the *ranks* of the pixel values (ties broken by position), a
    filtration that refines the original one: its non-zero-length bars are those of the original
    filtration (the caller drops bars of zero length in the original values), and with all
    ranks distinct each birth and death value names its pixel directly. Every birth and death of
    these complexes is the value of one pixel: a lower-dimensional cell takes the value of a
    pixel it touches.
    """
    flat = values.ravel()
    order = np.argsort(flat, kind="stable")  # order[rank] = pixel
    ranks = np.empty(flat.size, dtype=np.float64)
    ranks[order] = np.arange(flat.size)
    ranks = ranks.reshape(values.shape)
    if complex == "cubical":
        cc = gudhi.CubicalComplex(top_dimensional_cells=ranks)
    else:
        cc = gudhi.CubicalComplex(vertices=ranks)
    cc.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    finite, essential = [], []
    for k in (0, 1):
        bars = cc.persistence_intervals_in_dimension(k).reshape(-1, 2)
        alive = np.isinf(bars[:, 1])
        finite.append(order[bars[~alive].astype(np.int64)].reshape(-1, 2))
        essential.append(order[bars[alive, 0].astype(np.int64)])
    return finite, essential


def _raw_pairs(values: np.ndarray, complex: str, keep_zero_length: bool):
    """gudhi's critical pixels of the sublevel filtration of ``values`` (H, W), per dimension,
    as flat row-major indices: ``([finite pairs per dim], [essential births per dim])``."""
    min_persistence = -1.0 if keep_zero_length else 0.0
    if complex == "freudenthal":
        flat = values.ravel()
        edges, triangles = _freudenthal_simplices(*values.shape)
        st = gudhi.SimplexTree()
        # Vertices, then edges, then triangles: each simplex gets the max of its vertices
        # (lower-star filtration) because its faces are already present with lower values.
        st.insert_batch(np.arange(flat.size)[None, :], flat)
        if edges.size:
            st.insert_batch(edges, flat[edges].max(axis=0))
        if triangles.size:
            st.insert_batch(triangles, flat[triangles].max(axis=0))
        st.compute_persistence(homology_coeff_field=2, min_persistence=min_persistence)
        return st.lower_star_persistence_generators()

    if not keep_zero_length:
        return _cubical_pairs_by_rank(values, complex)
    if complex == "cubical":
        cc = gudhi.CubicalComplex(top_dimensional_cells=values)
        cc.compute_persistence(homology_coeff_field=2, min_persistence=min_persistence)
        finite, essential = cc.cofaces_of_persistence_pairs()
    else:
        cc = gudhi.CubicalComplex(vertices=values)
        cc.compute_persistence(homology_coeff_field=2, min_persistence=min_persistence)
        finite, essential = cc.vertices_of_persistence_pairs()
    # gudhi numbers the cells of a 2-D array column-major (c * H + r): convert to row-major.
    height, width = values.shape

    def row_major(index) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        return (index % height) * width + index // height

    return [row_major(p) for p in finite], [row_major(e) for e in essential]


def persistence_pairs(
    image: np.ndarray | torch.Tensor,
    superlevel: bool = False,
    complex: str = "cubical",
    maxdim: int = 1,
    keep_zero_length: bool = False,
    backend: str | None = None,
) -> PersistencePairs:
    """The critical pixels of every bar of ``image`` (H, W) in dimensions ``0..maxdim``.

    Zero-length bars (birth value == death value) are dropped unless ``keep_zero_length``;
    keeping them reproduces TopologyLayer's fixed-length diagrams (``complex="freudenthal"``,
    computed by gudhi). ``backend``: ``"unionfind"`` (default) or ``"gudhi"``, same result
    (module docstring, with the tie rule). Bars are sorted by decreasing lifetime; bars of
    equal lifetime keep the order in which gudhi reports them (by death).
    """
    _check_options(complex, maxdim)
    backend = resolve_backend(backend, keep_zero_length)
    values = check_image(image)
    filtration = -values if superlevel else values
    if backend == "unionfind":
        raw_finite, raw_essential = unionfind_pairs(filtration, complex, maxdim)
    else:
        raw_finite, raw_essential = _raw_pairs(filtration, complex, keep_zero_length)
    flat = filtration.ravel()
    finite, essential = [], []
    for k in range(maxdim + 1):
        # gudhi omits trailing dimensions that have no bar at all.
        pairs = np.asarray(raw_finite[k] if k < len(raw_finite) else [], np.int64).reshape(-1, 2)
        lifetime = flat[pairs[:, 1]] - flat[pairs[:, 0]]
        if not keep_zero_length:
            pairs, lifetime = pairs[lifetime > 0], lifetime[lifetime > 0]
        finite.append(pairs[np.argsort(-lifetime, kind="stable")])
        births = raw_essential[k] if k < len(raw_essential) else []
        essential.append(np.asarray(births, dtype=np.int64).reshape(-1))
    return PersistencePairs(finite, essential)


def diagrams(
    image: np.ndarray | torch.Tensor,
    superlevel: bool = False,
    complex: str = "cubical",
    maxdim: int = 1,
    keep_zero_length: bool = False,
    backend: str | None = None,
) -> list[np.ndarray]:
    """Persistence diagrams of ``image`` (H, W): ``dgms[k]`` is an ``(n_k, 2)`` float64 array of
    ``(birth, death)`` in dimension ``k`` for ``k = 0..maxdim``.

    Finite bars come first, sorted by decreasing lifetime, then the essential bars, whose death is
    ``+inf`` (sublevel) or ``-inf`` (superlevel). Zero-length bars are dropped unless
    ``keep_zero_length``. See the module docstring for ``complex``, ``superlevel`` and
    ``backend``.
    """
    values = check_image(image)
    pairs = persistence_pairs(values, superlevel, complex, maxdim, keep_zero_length, backend)
    return diagrams_from_pairs(values, pairs, superlevel)


def diagrams_from_pairs(
    image: np.ndarray, pairs: PersistencePairs, superlevel: bool = False
) -> list[np.ndarray]:
    """The diagrams (as :func:`diagrams` returns them) of ``image`` (H, W) whose critical
    pixels are ``pairs``: every birth and death is the value of its pixel."""
    flat = np.asarray(image, dtype=np.float64).ravel()
    never = -np.inf if superlevel else np.inf
    return [
        np.concatenate(
            [flat[finite], np.column_stack([flat[ess], np.full(len(ess), never)])], axis=0
        )
        for finite, ess in zip(pairs.finite, pairs.essential, strict=True)
    ]


def check_binary(mask: np.ndarray | torch.Tensor, name: str = "mask") -> np.ndarray:
    """Return ``mask`` as a uint8 ``(H, W)`` array in {0, 1}, or raise a clear ``ValueError``."""
    array = check_image(mask, name)
    if not ((array == 0.0) | (array == 1.0)).all():
        values = np.unique(array)
        raise ValueError(
            f"{name} must be binary with values in {{0, 1}} (1 = foreground), got values "
            f"{values[:6]}{' ...' if values.size > 6 else ''}"
        )
    return array.astype(np.uint8)


def betti_numbers(
    mask: np.ndarray | torch.Tensor, complex: str = "cubical", backend: str | None = None
) -> tuple[int, int]:
    """Betti numbers ``(b0, b1)`` of the foreground (value 1) of a binary ``mask`` (H, W).

    ``b0`` counts foreground components, ``b1`` holes (background regions that do not reach the
    image border). The connectivity comes from ``complex``: ``"cubical"`` foreground
    8-connected and holes 4-connected; ``"vertex"`` 4 and 8; ``"freudenthal"`` 6 and 6.
    Computed from persistence: in the sublevel filtration of ``1 - mask`` the foreground enters at
    level 0, so the Betti numbers are the bars born at 0 that are still alive at level 0.
    """
    foreground_first = 1.0 - check_binary(mask)
    dgms = diagrams(foreground_first, superlevel=False, complex=complex, maxdim=1, backend=backend)
    b0, b1 = (int(np.sum(dgm[:, 0] == 0.0)) for dgm in dgms)
    return b0, b1


def binary_bar_counts(binary: np.ndarray, superlevel: bool, complex: str) -> tuple[int, int]:
    """``(n_first, n_holes)`` of a binary image ``(H, W)`` in {0, 1} (not checked here): the
    components of the pixels that enter the filtration first (value 1 for superlevel, 0 for
    sublevel) and the components of the other pixels that do not reach the border, with the
    connectivity of ``complex`` (:data:`CONNECTIVITY`). :func:`binary_diagrams` turns them
    into diagrams. Counted by one raster scan of union-find
    (:func:`topobook.topology.unionfind.binary_counts`), equal to labelling the two sets with
    ``scipy.ndimage.label`` and these structuring elements (tested); a value other than 0 and
    1 raises ``ValueError``."""
    counts = binary_counts(binary, superlevel, complex)
    if counts is None:
        raise ValueError("binary_bar_counts needs an image with values in {0, 1}")
    return counts


def binary_diagrams(
    mask: np.ndarray | torch.Tensor, superlevel: bool = False, complex: str = "cubical"
) -> list[np.ndarray]:
    """:func:`diagrams` of a binary image ``mask`` (H, W) in {0, 1}, computed by counting
    connected components (:func:`binary_bar_counts`) instead of running persistence.

    Equal to ``diagrams(mask, superlevel, complex)`` (tested), but about a hundred times
    faster: the topological loss uses it for the ground truth, which needs no gradient. In the
    filtration the pixels of one value (1 for superlevel, 0 for sublevel) enter first: each of
    their components is an H0 bar (one essential, the others dying when the second value
    enters), and each component of the other pixels that does not reach the border is an H1 bar.
    """
    binary = check_binary(mask)
    first, second = (1, 0) if superlevel else (0, 1)
    never = -np.inf if superlevel else np.inf
    n_first, n_holes = binary_bar_counts(binary, superlevel, complex)
    if n_first == 0:  # a constant image of the second value: one essential bar
        return [np.array([[second, never]], dtype=float), np.zeros((0, 2))]
    h0 = [[first, second]] * (n_first - 1) + [[first, never]]
    h1 = np.array([[first, second]] * n_holes, dtype=float).reshape(-1, 2)
    return [np.array(h0, dtype=float), h1]


def long_bar_counts(dgms: list[np.ndarray], min_lifetime: float = 0.5) -> tuple[int, ...]:
    """Number of bars per dimension whose lifetime ``|death - birth|`` exceeds ``min_lifetime``
    (essential bars count). On a likelihood map in [0, 1], the features it shows clearly."""
    return tuple(int(np.sum(np.abs(d[:, 1] - d[:, 0]) > min_lifetime)) for d in dgms)


def betti_at(dgms: list[np.ndarray], t: float) -> tuple[int, ...]:
    """Betti numbers of the sublevel set ``{f <= t}`` read off sublevel diagrams ``dgms``: the
    number of bars alive at ``t``, ``beta_k(t) = #{(b, d) in D_k : b <= t < d}``."""
    return tuple(int(np.sum((dgm[:, 0] <= t) & (t < dgm[:, 1]))) for dgm in dgms)


# ---------------------------------------------------------------------------------------------
# torch layer

_EXECUTOR: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    return _EXECUTOR


def gather_diagram(
    flat: torch.Tensor, pairs: PersistencePairs, superlevel: bool
) -> list[torch.Tensor]:
    """Diagrams as tensors whose entries are *gathered* from ``flat`` (the image, flattened
    row-major) at the critical pixels of ``pairs``.

    Because every birth and death is an entry of the input, autograd sends the gradient of any
    function of the diagram to exactly the critical pixels: the paper's eq. (3). Essential bars get
    a constant death of ``+-inf`` that carries no gradient.
    """
    never = -torch.inf if superlevel else torch.inf
    out = []
    for finite, ess in zip(pairs.finite, pairs.essential, strict=True):
        finite_t = torch.as_tensor(finite, device=flat.device)
        ess_t = torch.as_tensor(ess, device=flat.device)
        births = flat[ess_t]
        essential = torch.stack([births, torch.full_like(births, never)], dim=1)
        out.append(torch.cat([flat[finite_t].reshape(-1, 2), essential], dim=0))
    return out


class PersistenceLayer(torch.nn.Module):
    """Differentiable persistence diagrams of images.

    ``forward(x)``: ``x`` of shape ``(H, W)`` gives a list over dimensions ``k = 0..maxdim`` of
    ``(n_k, 2)`` tensors of (birth, death), in the same format as :func:`diagrams`; ``x`` of shape
    ``(B, H, W)`` gives a list of such lists, one per image. The diagram entries are gathered from
    ``x``, so ``backward`` yields the paper's eq. (3).

    The layer holds no state between calls: each call computes its own critical pixels, so two
    forward calls before one ``backward`` (prediction and ground truth, say) stay correct. The
    images of a batch are processed in parallel threads (both backends release the GIL) when
    ``parallel`` is True; by default (None) only with the gudhi backend, when the batch has more
    than one image and the machine more than one core. The union-find takes a fraction of a
    millisecond per 64x64 crop, and threads did not pay off for it on the shared 2-core
    machines where ``benchmarks/persistence.py`` measures them (table 4), so it runs the
    images one after another unless asked. ``backend``: see :func:`persistence_pairs`
    (``None``: the union-find, or gudhi with ``keep_zero_length``).
    """

    def __init__(
        self,
        superlevel: bool = False,
        complex: str = "cubical",
        maxdim: int = 1,
        keep_zero_length: bool = False,
        parallel: bool | None = None,
        backend: str | None = None,
    ) -> None:
        super().__init__()
        _check_options(complex, maxdim)
        self.superlevel = superlevel
        self.complex = complex
        self.maxdim = maxdim
        self.keep_zero_length = keep_zero_length
        self.parallel = parallel
        resolve_backend(backend, keep_zero_length)  # a bad choice fails here, not at forward
        self.backend = backend  # None: resolved at each call (DEFAULT_BACKEND may change)

    def extra_repr(self) -> str:
        return (
            f"superlevel={self.superlevel}, complex={self.complex!r}, maxdim={self.maxdim}, "
            f"backend={self.backend!r}"
        )

    def pairs(self, x: torch.Tensor) -> list[PersistencePairs]:
        """Critical pixels of each image of ``x`` ``(B, H, W)`` (no gradient involved)."""
        values = x.detach().cpu().numpy()

        def one(image: np.ndarray) -> PersistencePairs:
            return persistence_pairs(
                image,
                self.superlevel,
                self.complex,
                self.maxdim,
                self.keep_zero_length,
                self.backend,
            )

        parallel = self.parallel
        if parallel is None:
            on_gudhi = resolve_backend(self.backend, self.keep_zero_length) == "gudhi"
            parallel = on_gudhi and len(values) > 1 and (os.cpu_count() or 1) > 1
        if parallel:
            return list(_executor().map(one, values))
        return [one(image) for image in values]

    def forward(self, x: torch.Tensor) -> list:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"PersistenceLayer expects a torch.Tensor, got {type(x).__name__}")
        if x.ndim not in (2, 3):
            raise ValueError(f"expected input of shape (H, W) or (B, H, W), got {tuple(x.shape)}")
        batch = x if x.ndim == 3 else x.unsqueeze(0)
        all_pairs = self.pairs(batch)
        out = [
            gather_diagram(image.reshape(-1), pairs, self.superlevel)
            for image, pairs in zip(batch, all_pairs, strict=True)
        ]
        return out if x.ndim == 3 else out[0]
