"""The topological loss of the paper (its eqs. (1)-(3)) and the combined loss used for training.

Notation follows the paper: ``f`` is the predicted likelihood map (``likelihood``), ``g`` the
ground truth (``target``), ``D(f)`` and ``D(g)`` their persistence diagrams, and

    L_topo(f, g) = sum over matched pairs (p, p') of
                   (birth(p) - birth(p'))**2 + (death(p) - death(p'))**2   (the paper's eq. 2)

    L(f, g) = L_BCE(f, g) + lam * L_topo(f, g)                              (the paper's eq. 1)

Because every birth and death of ``D(f)`` is gathered from ``f`` at a critical pixel (see
:class:`topobook.topology.persistence.PersistenceLayer`), autograd yields the paper's eq. (3):
the gradient reaches ``f`` only at the pixels ``c_b(p)`` and ``c_d(p)``.

Matching rules (``matching=``), per homology dimension:

``"lifetime"`` (the paper's text)
    finite points of both diagrams sorted by lifetime ``|death - birth|``, longest first, and
    paired by rank. The essential bars (one in H0 on a square image) are paired by rank of birth
    and contribute only ``(birth - birth')**2``: their deaths are infinite on both sides and an
    infinite value must never reach the loss or its gradient.
``"birth"`` (the authors' notebook)
    the essential bars are dropped (the notebook dropped the first bar of each TopologyLayer
    diagram: the essential bar in H0 and, in H1, a bar born first, which is of zero length and
    is dropped too when ``keep_zero_length``), the rest sorted by birth, descending, and paired
    by rank.

In both rules, points left over when one diagram has more points than the other are matched to
the diagonal, at cost ``(birth - death)**2 / 2`` each (the squared distance to the nearest
diagonal point). Among points with equal sort keys, longer bars come first.

``keep_zero_length=True`` keeps the zero-length bars that TopologyLayer's fixed-length diagrams
contain (one H0 bar per pixel, one H1 bar per non-tree edge). With ``matching="birth"`` and
``complex="freudenthal"`` this reproduces the loss of the authors' notebook; their pairs of
zero-length bars add a term that matches the sorted pixel values of prediction and truth.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from topobook.losses.scnp import scnp_loss
from topobook.losses.skeleton_recall import skeleton_recall_loss
from topobook.topology.betti_matching import betti_matching_loss
from topobook.topology.persistence import (
    COMPLEXES,
    PersistenceLayer,
    binary_bar_counts,
    binary_diagrams,
    persistence_pairs,
    resolve_backend,
)
from topobook.topology.unionfind import (
    _lifetime_sorted,
    _lifetime_terms,
    binary_counts,
    unionfind_pairs,
    unionfind_pairs_batch,
)

MATCHINGS = ("lifetime", "birth")
LAMBDA_PAPER = 1 / 12000  # lambda of eq. (1) in the paper's text
LAMBDA_NOTEBOOK = 1 / 6000  # the weight the authors' notebook used


class LossParts(NamedTuple):
    """``total = bce + lam * topo`` and its two parts (scalars)."""

    total: torch.Tensor
    bce: torch.Tensor
    topo: torch.Tensor


def _as_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 4 and x.shape[1] == 1:  # (B, 1, H, W) from a network
        x = x[:, 0]
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3:
        raise ValueError(
            f"{name} must have shape (H, W), (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_pair(likelihood: torch.Tensor, target: torch.Tensor, likelihood_name="likelihood"):
    """Both as ``(B, H, W)`` tensors after checking shapes and value ranges."""
    f = _as_batch(likelihood, likelihood_name)
    g = _as_batch(target, "target").to(f.dtype)
    if f.shape != g.shape:
        raise ValueError(
            f"{likelihood_name} {tuple(f.shape)} and target {tuple(g.shape)} "
            "must have the same shape"
        )
    if likelihood_name == "likelihood" and (f.min() < 0 or f.max() > 1):
        raise ValueError("likelihood must lie in [0, 1] (apply a sigmoid to logits first)")
    if g.min() < 0 or g.max() > 1:
        raise ValueError("target must lie in [0, 1] (1 = cell, 0 = membrane)")
    return f, g


def _sort_index(dgm: np.ndarray, key: str, superlevel: bool) -> np.ndarray:
    """Order of the finite points of one diagram for rank matching.

    ``"lifetime"``: longest first, ties by the more extreme birth (higher for superlevel);
    ``"birth"``: highest birth first, ties by longer lifetime.
    """
    lifetime = np.abs(dgm[:, 1] - dgm[:, 0])
    if key == "lifetime":
        extreme_birth = dgm[:, 0] if superlevel else -dgm[:, 0]
        return np.lexsort((-extreme_birth, -lifetime))
    return np.lexsort((-lifetime, -dgm[:, 0]))


def _essential_index(dgm: np.ndarray, superlevel: bool) -> np.ndarray:
    """Indices of the essential points, the most extreme birth first."""
    index = np.flatnonzero(~np.isfinite(dgm[:, 1]))
    births = dgm[index, 0]
    return index[np.argsort(-births if superlevel else births, kind="stable")]


def _kept_in_birth_mode(dgm: np.ndarray, superlevel: bool, keep_zero_length: bool) -> np.ndarray:
    """Indices of the points that the notebook's rule keeps.

    The notebook dropped the first bar of each TopologyLayer diagram (``dgm[1:]``). TopologyLayer
    lists bars in the filtration order of the simplex that creates them, so that first bar is the
    one born first: the essential bar in H0, and in H1 a bar with the most extreme birth (the
    highest for superlevel); among several, which one comes first is left to TopologyLayer's
    sort, and we drop the shortest. That H1 bar is almost always of zero length, so without
    ``keep_zero_length`` only the essential bars are dropped, which is what the rule is for.
    """
    essential = ~np.isfinite(dgm[:, 1])
    if not keep_zero_length:
        return np.flatnonzero(~essential)
    if len(dgm) == 0:
        return np.zeros(0, int)
    if essential.any():
        first = int(np.flatnonzero(essential)[0])
    else:
        birth = -dgm[:, 0] if superlevel else dgm[:, 0]
        first = int(np.lexsort((np.abs(dgm[:, 1] - dgm[:, 0]), birth))[0])
    return np.delete(np.arange(len(dgm)), first)


def diagram_loss(
    pred: list[torch.Tensor],
    true: list[torch.Tensor],
    matching: str = "lifetime",
    dims: tuple[int, ...] = (0, 1),
    superlevel: bool = True,
    keep_zero_length: bool = False,
) -> torch.Tensor:
    """Eq. (2) between the diagrams of one prediction and one truth (lists over dimensions of
    ``(n_k, 2)`` tensors, as :class:`~topobook.topology.persistence.PersistenceLayer` returns).
    ``keep_zero_length`` says whether the diagrams hold zero-length bars (TopologyLayer's
    fixed-length diagrams), which changes what the ``"birth"`` rule drops."""
    total = pred[0].new_zeros(())
    for k in dims:
        p, t = pred[k], true[k].to(pred[k].dtype)
        p_np, t_np = p.detach().cpu().numpy(), t.detach().cpu().numpy()
        if matching == "birth":
            keep_p = _kept_in_birth_mode(p_np, superlevel, keep_zero_length)
            keep_t = _kept_in_birth_mode(t_np, superlevel, keep_zero_length)
            p, t, p_np, t_np = p[keep_p], t[keep_t], p_np[keep_p], t_np[keep_t]
        p_inf, t_inf = ~np.isfinite(p_np[:, 1]), ~np.isfinite(t_np[:, 1])
        if matching == "lifetime":
            # essential bars: only their births are compared (both deaths are infinite)
            ep, et = _essential_index(p_np, superlevel), _essential_index(t_np, superlevel)
            n = min(len(ep), len(et))
            total = total + ((p[ep[:n], 0] - t[et[:n], 0]) ** 2).sum()
        # finite bars (in "birth" mode the essential bars were dropped with the first bar),
        # gathered in matching order by one index each (fewer autograd nodes, same values)
        finite_p, finite_t = np.flatnonzero(~p_inf), np.flatnonzero(~t_inf)
        pf = p[torch.as_tensor(finite_p[_sort_index(p_np[finite_p], matching, superlevel)])]
        tf = t[torch.as_tensor(finite_t[_sort_index(t_np[finite_t], matching, superlevel)])]
        n = min(len(pf), len(tf))
        total = total + ((pf[:n] - tf[:n]) ** 2).sum()
        for rest in (pf[n:], tf[n:]):
            total = total + ((rest[:, 0] - rest[:, 1]) ** 2).sum() / 2
    return total


def topological_loss(
    likelihood: torch.Tensor,
    target: torch.Tensor,
    *,
    matching: str = "lifetime",
    dims: tuple[int, ...] = (0, 1),
    complex: str = "cubical",
    superlevel: bool = True,
    reduction: str = "sum",
    keep_zero_length: bool = False,
    misroute_gradient: bool = False,
    backend: str | None = None,
) -> torch.Tensor:
    """``L_topo`` of the paper's eq. (2) between ``likelihood`` and ``target``.

    ``likelihood``: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` in ``[0, 1]`` (1 = cell);
    ``target``: the same shape, in {0, 1} or a float map in ``[0, 1]``. ``reduction`` sums or
    averages over the batch. See the module docstring for ``matching`` and ``keep_zero_length``.

    ``misroute_gradient=True`` emulates the bug of the authors' loss (one TopologyLayer object for
    prediction and truth): the loss value is unchanged, but the gradient of each prediction bar is
    sent to the critical pixels of the truth's bar at the same position of the TopologyLayer
    ordering (births in filtration order). For demonstration only.

    ``backend``: the persistence backend (:func:`topobook.topology.persistence.persistence_pairs`;
    ``None``: the union-find, or gudhi with ``keep_zero_length``); the loss and its gradient
    do not depend on it.
    """
    _check_topological_options(matching, dims, complex, reduction)
    f, g = check_pair(likelihood, target)
    return _topological_loss_of_checked_pair(
        f,
        g,
        matching=matching,
        dims=dims,
        complex=complex,
        superlevel=superlevel,
        reduction=reduction,
        keep_zero_length=keep_zero_length,
        misroute_gradient=misroute_gradient,
        backend=backend,
    )


def _check_topological_options(matching, dims, complex, reduction) -> None:
    if matching not in MATCHINGS:
        raise ValueError(f"matching must be one of {MATCHINGS}, got {matching!r}")
    if complex not in COMPLEXES:
        raise ValueError(f"complex must be one of {COMPLEXES}, got {complex!r}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    if not set(dims) <= {0, 1} or not dims:
        raise ValueError(f"dims must be a non-empty subset of (0, 1), got {dims!r}")


def _topological_loss_of_checked_pair(
    f: torch.Tensor,
    g: torch.Tensor,
    *,
    matching: str = "lifetime",
    dims: tuple[int, ...] = (0, 1),
    complex: str = "cubical",
    superlevel: bool = True,
    reduction: str = "sum",
    keep_zero_length: bool = False,
    misroute_gradient: bool = False,
    backend: str | None = None,
) -> torch.Tensor:
    """:func:`topological_loss` of ``f`` and ``g`` that :func:`check_pair` has already returned
    (``(B, H, W)``, finite, in [0, 1], same shape and dtype): checks the options, not the
    tensors again. :func:`training_loss` calls it on ``sigmoid(logits)``, which is in [0, 1]."""
    _check_topological_options(matching, dims, complex, reduction)
    maxdim = max(dims)
    layer = _persistence_layer(superlevel, complex, maxdim, keep_zero_length, backend)
    g_values = g.detach().cpu().numpy()
    if matching == "lifetime" and not misroute_gradient and not keep_zero_length:
        # the training path: the same loss as below, with one gather per image (tested);
        # counting the target's components also tells whether it is binary
        counts = [binary_counts(target, superlevel, complex) for target in g_values]
        if all(count is not None for count in counts):
            stacked = torch.stack(_lifetime_losses_binary_target(f, g_values, layer, dims, counts))
            return stacked.sum() if reduction == "sum" else stacked.mean()
    if misroute_gradient:
        pred_dgms = [_misrouted(fi, gi, layer) for fi, gi in zip(f, g, strict=True)]
    else:
        pred_dgms = layer(f)
    true_dgms = _target_diagrams(g, layer)
    losses = [
        diagram_loss(p, t, matching, dims, superlevel, keep_zero_length)
        for p, t in zip(pred_dgms, true_dgms, strict=True)
    ]
    stacked = torch.stack(losses)
    return stacked.sum() if reduction == "sum" else stacked.mean()


def _lifetime_losses_binary_target(
    f: torch.Tensor,
    g_values: np.ndarray,
    layer: PersistenceLayer,
    dims: tuple[int, ...],
    counts: list[tuple[int, int]] | None = None,
    one_call: bool = False,
) -> list[torch.Tensor]:
    """Eq. (2) with lifetime matching of each image of ``f`` ``(B, H, W)`` against its binary
    target ``g_values`` ``(B, H, W)`` in {0, 1}: the value of :func:`diagram_loss` on the
    diagrams, computed without building them. ``counts``: the targets'
    :func:`~topobook.topology.persistence.binary_bar_counts`, if already known. ``one_call``: the
    union-find of the whole batch in one numba call over threads
    (:func:`topobook.topology.unionfind.unionfind_pairs_batch`; same result); off in training, where
    it did not pay (``benchmarks/persistence.py``, table 5).

    A binary target's finite bars are all the same point (its first value, its second value),
    so the matching needs only the prediction's bars in :func:`_sort_index` order: the first
    ``n`` go to that point, the others to the diagonal, and the target's leftover bars add a
    constant. Every birth and death is a pixel of ``f``, so the loss is one gather of matched
    pixels against their target values and one gather of the leftover bars' pixels: few
    autograd nodes, the same pixels and the same gradient as the general path.

    With the union-find backend the bars come straight from the kernels, and the order of
    :func:`~topobook.topology.persistence.persistence_pairs` followed by :func:`_sort_index` (two
    stable sorts) is made by one numba merge sort on the combined keys
    (:func:`topobook.topology.unionfind._lifetime_sorted`): the same bars in the same order, so the
    same loss and gradient to the last bit (tested against the two numpy sorts, and against the
    gudhi backend, whose bars take the numpy path of ``persistence_pairs``)."""
    superlevel = layer.superlevel
    first, second = (1.0, 0.0) if superlevel else (0.0, 1.0)
    if counts is None:
        counts = [binary_bar_counts(target, superlevel, layer.complex) for target in g_values]
    values = f.detach().cpu().numpy().reshape(len(f), -1)
    if resolve_backend(layer.backend, layer.keep_zero_length) == "unionfind":
        # what persistence_pairs computes, without its checks (f is checked) and its sort
        image64 = values.astype(np.float64).reshape(f.shape)
        filtration = -image64 if superlevel else image64
        if one_call:
            raw = unionfind_pairs_batch(filtration, layer.complex, layer.maxdim)
        else:
            raw = [unionfind_pairs(image, layer.complex, layer.maxdim) for image in filtration]
    else:
        raw = [(pairs.finite, pairs.essential) for pairs in layer.pairs(f)]
    losses = []
    for flat, flat_values, (finite, essential), (n_first, n_holes) in zip(
        f.reshape(len(f), -1), values, raw, counts, strict=True
    ):
        births = essential[0]
        if len(births) > 1:  # not on a 2-D image; the rule of diagram_loss all the same
            never = -np.inf if superlevel else np.inf
            dgm = np.column_stack([flat_values[births], np.full(len(births), never)])
            births = births[_essential_index(dgm, superlevel)[:1]]
        in_order = [
            _lifetime_order(flat_values, finite[k], superlevel) if k in dims else _NO_BAR
            for k in (0, 1)
        ]
        pixels, to, left_births, left_deaths, constant = _lifetime_terms(
            *in_order,
            0 in dims,
            1 in dims,
            int(births[0]) if len(births) else -1,
            first if n_first else second,  # birth of the target's essential H0 bar
            superlevel,
            max(n_first - 1, 0),  # finite target bars per dimension
            n_holes,
        )
        pixels = torch.as_tensor(pixels, device=flat.device)
        to = torch.as_tensor(to, dtype=flat.dtype, device=flat.device)
        left_births = torch.as_tensor(left_births, device=flat.device)
        left_deaths = torch.as_tensor(left_deaths, device=flat.device)
        loss = ((flat[pixels] - to) ** 2).sum()
        loss = loss + ((flat[left_births] - flat[left_deaths]) ** 2).sum() / 2
        losses.append(loss + float(constant))
    return losses


_NO_BAR = np.zeros((0, 2), np.int64)


def _lifetime_order(flat_values: np.ndarray, bars: np.ndarray, superlevel: bool) -> np.ndarray:
    """The bars ``(n, 2)`` of positive length in the order :func:`_lifetime_losses_binary_target`
    matches them: :func:`~topobook.topology.persistence.persistence_pairs`' sort (float64 lifetime
    of the filtration, longest first, stable), then :func:`_sort_index`'s ("lifetime", in the
    dtype of ``flat_values``). float32 and float64 take one numba merge sort on the combined
    keys (:func:`topobook.topology.unionfind._lifetime_sorted`, tested equal); other dtypes
    (float16), which numba does not compute in, the two numpy sorts themselves."""
    bars = np.ascontiguousarray(bars, dtype=np.int64).reshape(-1, 2)
    if flat_values.dtype in (np.float32, np.float64):
        return _lifetime_sorted(flat_values, bars, superlevel)
    image64 = flat_values.astype(np.float64)
    filtration = -image64 if superlevel else image64
    lifetime = filtration[bars[:, 1]] - filtration[bars[:, 0]]
    bars, lifetime = bars[lifetime > 0], lifetime[lifetime > 0]
    bars = bars[np.argsort(-lifetime, kind="stable")]
    return bars[_sort_index(flat_values[bars], "lifetime", superlevel)]


@cache
def _persistence_layer(superlevel, complex, maxdim, keep_zero_length, backend) -> PersistenceLayer:
    """One layer per setting, built once: the layer holds no state between calls."""
    return PersistenceLayer(superlevel, complex, maxdim, keep_zero_length, backend=backend)


def _target_diagrams(g: torch.Tensor, layer: PersistenceLayer) -> list[list[torch.Tensor]]:
    """Diagrams of the targets (no gradient). Binary targets without zero-length bars take the
    fast path of counting components."""
    values = g.detach().cpu().numpy()
    if not layer.keep_zero_length and ((values == 0.0) | (values == 1.0)).all():
        return [
            [
                torch.as_tensor(d, dtype=g.dtype, device=g.device)
                for d in binary_diagrams(v, layer.superlevel, layer.complex)[: layer.maxdim + 1]
            ]
            for v in values
        ]
    with torch.no_grad():
        return layer(g)


def _tl_order(pairs_finite: np.ndarray, essential: np.ndarray, flat: np.ndarray, superlevel):
    """Bars of one dimension in TopologyLayer's order: by the filtration value of the birth."""
    births = np.concatenate([pairs_finite[:, 0], essential])
    deaths = np.concatenate([pairs_finite[:, 1], np.full(len(essential), -1)])
    key = -flat[births] if superlevel else flat[births]
    order = np.lexsort((births, key))
    return births[order], deaths[order]


def _misrouted(f: torch.Tensor, g: torch.Tensor, layer: PersistenceLayer) -> list[torch.Tensor]:
    """Prediction diagram whose values are the prediction's, but whose gradient flows to the
    truth's critical pixels, matched position by position in TopologyLayer's ordering."""
    args = (layer.superlevel, layer.complex, layer.maxdim, layer.keep_zero_length, layer.backend)
    own, other = persistence_pairs(f, *args), persistence_pairs(g, *args)
    flat_f, flat_g = f.reshape(-1), g.detach().cpu().numpy().ravel()
    flat_np = f.detach().cpu().numpy().ravel()
    never = -torch.inf if layer.superlevel else torch.inf
    out = []
    for k in range(layer.maxdim + 1):
        b_own, d_own = _tl_order(own.finite[k], own.essential[k], flat_np, layer.superlevel)
        b_oth, d_oth = _tl_order(other.finite[k], other.essential[k], flat_g, layer.superlevel)
        n = min(len(b_own), len(b_oth))
        births = flat_f[b_own].detach().clone()
        deaths = torch.where(
            torch.as_tensor(d_own >= 0),
            flat_f[np.maximum(d_own, 0)].detach(),
            torch.full_like(births, never),
        )
        # straight-through: value of our own pixels, gradient into the truth's pixels
        # (x - x.detach()) is exactly 0 in value, so ties between bars stay ties
        routed_births = flat_f[b_oth[:n]]
        births[:n] = births[:n] + (routed_births - routed_births.detach())
        finite = torch.as_tensor((d_own[:n] >= 0) & (d_oth[:n] >= 0))
        routed = flat_f[np.maximum(d_oth[:n], 0)]
        deaths[:n] = torch.where(finite, deaths[:n] + (routed - routed.detach()), deaths[:n])
        out.append(torch.stack([births, deaths], dim=1))
    return out


def combined_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    lam: float = LAMBDA_PAPER,
    **topo_kwargs,
) -> LossParts:
    """Eq. (1): ``L = L_BCE + lam * L_topo``.

    ``logits``: the network's raw output, ``(B, 1, H, W)``, ``(B, H, W)`` or ``(H, W)``;
    ``target``: the same shape in {0, 1}. The BCE is computed from the logits (numerically
    stable) and averaged over pixels; ``L_topo`` is :func:`topological_loss` of
    ``sigmoid(logits)``, with ``topo_kwargs`` passed on. ``lam = 0`` skips the persistence
    computation. The paper's text uses ``lam = 1/12000`` (:data:`LAMBDA_PAPER`), the authors'
    notebook ``1/6000`` (:data:`LAMBDA_NOTEBOOK`).
    """
    x, g = check_pair(logits, target, likelihood_name="logits")
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    bce = F.binary_cross_entropy_with_logits(x, g)
    if lam == 0:
        topo = x.new_zeros(())
    else:
        topo = topological_loss(torch.sigmoid(x), g, **topo_kwargs)
    return LossParts(bce + lam * topo, bce, topo)


def optimize_likelihood(
    likelihood: torch.Tensor,
    target: torch.Tensor,
    steps: int = 200,
    lr: float = 0.05,
    anchor: float = 1.0,
    **topo_kwargs,
) -> tuple[torch.Tensor, list[float]]:
    """Gradient descent on a likelihood map itself: ``L_topo(f, g) + anchor * BCE(f, f0)``.

    A teaching device for chapter 2: no network, the map ``f`` (H, W) in ``(0, 1)`` is the
    parameter (through logits, so it stays in ``(0, 1)``), and the BCE term keeps it close to
    the starting map ``f0`` so that what changes is what the topological term asks for. Returns
    the final map and the loss after each step.
    """
    f0, g = check_pair(likelihood, target)
    f0, g = f0[0].detach(), g[0].detach()
    eps = 1e-4
    logits = torch.logit(f0.clamp(eps, 1 - eps)).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        f = torch.sigmoid(logits)
        loss = topological_loss(f, g, **topo_kwargs)
        loss = loss + anchor * F.binary_cross_entropy_with_logits(logits, f0)
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return torch.sigmoid(logits).detach(), history


def numerical_gradient(loss_fn, image: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of ``loss_fn(tensor) -> scalar tensor`` at ``image`` (H, W):
    the independent check of an autograd gradient. Costs two evaluations per pixel."""
    image = np.asarray(image, dtype=np.float64)
    grad = np.zeros_like(image)
    for idx in np.ndindex(image.shape):
        plus, minus = image.copy(), image.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (loss_fn(torch.tensor(plus)).item() - loss_fn(torch.tensor(minus)).item()) / (
            2 * eps
        )
    return grad


# ---------------------------------------------------------------------------------------------
# Baselines and controls beside L_topo: clDice, the sorted-value term, and one entry point.

CLDICE_SMOOTH = 1.0  # the smoothing constant of the reference soft_cldice (``smooth = 1.``)
TOPO_LOSSES = (
    "none", "topo", "cldice", "sorted_value", "betti_matching", "skeleton_recall", "scnp"
)


def _check_iterations(iterations: int) -> int:
    if isinstance(iterations, bool) or not isinstance(iterations, int | np.integer):
        raise TypeError(f"iterations must be an int, got {type(iterations).__name__}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    return int(iterations)


def _soft_erode(x: torch.Tensor) -> torch.Tensor:
    """Grey erosion of ``x`` (B, 1, H, W) by the 3x3 cross: the minimum of a vertical and a
    horizontal 3-pixel min-pooling. Min-pooling is ``-max_pool(-x)``; the pooling pads with
    ``-inf``, so pixels outside the image never win (the minimum is over in-image pixels)."""
    vertical = -F.max_pool2d(-x, (3, 1), (1, 1), (1, 0))
    horizontal = -F.max_pool2d(-x, (1, 3), (1, 1), (0, 1))
    return torch.min(vertical, horizontal)


def _soft_dilate(x: torch.Tensor) -> torch.Tensor:
    """Grey dilation of ``x`` (B, 1, H, W) by the 3x3 square (max-pooling, stride 1)."""
    return F.max_pool2d(x, (3, 3), (1, 1), (1, 1))


def _soft_skeleton_4d(x: torch.Tensor, iterations: int) -> torch.Tensor:
    # Lantuejoul's skeleton, union over j of (E^j x minus open(E^j x)), with the union of soft
    # sets written as a + b - a*b (relu'd, as the reference does).
    skeleton = F.relu(x - _soft_dilate(_soft_erode(x)))
    for _ in range(iterations):
        x = _soft_erode(x)
        delta = F.relu(x - _soft_dilate(_soft_erode(x)))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


def soft_skeleton(x: torch.Tensor, iterations: int = 3) -> torch.Tensor:
    """The soft skeleton of Shit et al. (clDice, CVPR 2021) of ``x``, same shape as ``x``.

    ``x``: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``, finite (a probability map in
    ``[0, 1]`` in clDice). Erosion is the grey minimum over the 3x3 cross (4-neighbours and the
    pixel), the opening is that erosion followed by a grey dilation over the 3x3 square (so it
    is not a true morphological opening), and pixels outside the image are ignored (pooling
    pads with ``-inf``). Then ``skel = relu(x - open(x))`` and ``iterations`` times:
    ``x = erode(x); delta = relu(x - open(x)); skel = skel + relu(delta - skel * delta)``.
    On a binary image this is the binary morphological skeleton (a union over erosion depths);
    a structure of half-width ``r`` pixels needs ``iterations >= r`` to reach its centre line.

    Follows the authors' reference code operation by operation (repository jocpae/clDice,
    ``cldice_loss/pytorch/soft_skeleton.py``: ``soft_erode``, ``soft_dilate``, ``soft_open``,
    ``soft_skel``), so values and gradients agree with it (max-pooling sends the gradient to
    one pixel of each window; ``torch.min`` splits it at ties).
    """
    iterations = _check_iterations(iterations)
    batch = _as_batch(x, "x")
    return _soft_skeleton_4d(batch.unsqueeze(1), iterations).reshape(x.shape)


def cldice_loss(
    likelihood: torch.Tensor,
    target: torch.Tensor,
    iterations: int = 3,
    smooth: float = CLDICE_SMOOTH,
) -> torch.Tensor:
    """The soft clDice loss (Shit et al., CVPR 2021) of the **membrane** (a scalar).

    ``likelihood``: cell probability ``f``, ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` in
    ``[0, 1]``; ``target``: the same shape in ``[0, 1]`` (a {0, 1} mask, 1 = cell). clDice is a
    loss for thin tubular structures, which here are the membranes, so it is computed on
    ``P = 1 - f`` (membrane probability) and ``T = 1 - g`` (membrane truth)::

        S_P = soft_skeleton(P, iterations),  S_T = soft_skeleton(T, iterations)
        tprec = (sum(S_P * T) + smooth) / (sum(S_P) + smooth)
        tsens = (sum(S_T * P) + smooth) / (sum(S_T) + smooth)
        loss  = 1 - 2 * tprec * tsens / (tprec + tsens)

    The sums run over the **whole batch** and all pixels at once (not per image then averaged),
    as the reference's ``torch.sum`` over the whole ``(B, C, H, W)`` tensor does with one
    channel; ``smooth = 1`` as in the reference. Following jocpae/clDice,
    ``cldice_loss/pytorch/cldice.py`` (class ``soft_cldice``, ``exclude_background=False``),
    except that ``iterations`` is really used: the reference class stores its ``iter_``
    argument but always skeletonises with 10 iterations, so the reference's value with its
    default arguments is ``cldice_loss(..., iterations=10)``.
    """
    iterations = _check_iterations(iterations)
    if not smooth > 0:
        raise ValueError(f"smooth must be > 0, got {smooth}")
    f, g = check_pair(likelihood, target)
    pred, true = (1 - f).unsqueeze(1), (1 - g).unsqueeze(1)  # (B, 1, H, W) membrane maps
    skel_pred = _soft_skeleton_4d(pred, iterations)
    skel_true = _soft_skeleton_4d(true, iterations)
    tprec = (torch.sum(skel_pred * true) + smooth) / (torch.sum(skel_pred) + smooth)
    tsens = (torch.sum(skel_true * pred) + smooth) / (torch.sum(skel_true) + smooth)
    return 1.0 - 2.0 * (tprec * tsens) / (tprec + tsens)


def sorted_value_loss(
    likelihood: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """The value-only control of the notebook loss: ``2 * sum_i (f_(i) - g_(i))**2`` per image.

    ``f_(1) <= ... <= f_(n)`` are the ``n = H*W`` pixel values of the likelihood sorted in
    increasing order, ``g_(i)`` those of the target; the sum runs over ``i = 1 .. n-1``: the
    maximum of each image is dropped. This is the form chapter 2 uses (its cell printing
    "sorted-value term 2*sum (f_(i) - g_(i))^2"): in the authors' notebook loss
    (``topological_loss(matching="birth", complex="freudenthal", keep_zero_length=True)``)
    every pixel but the maximum (the essential bar, dropped with the first bar) gives one H0
    bar born at its value, and a zero-length bar ``(v, v)`` counts its value twice, as birth and
    as death. When every H0 bar of ``f`` and ``g`` has zero length, the H0 part of the notebook
    loss equals this term exactly (tested); in general it is the part of that loss that only
    matches the histograms of ``f`` and ``g``, with no topology in it.

    ``likelihood``: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` in ``[0, 1]``; ``target``: the
    same shape in ``[0, 1]``. ``reduction="mean"`` (default) averages over the batch, ``"sum"``
    sums. The gradient is ``4 (f_(i) - g_(i))`` at the pixel of rank ``i`` (zero at the maximum).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    f, g = check_pair(likelihood, target)
    f_sorted = torch.sort(f.reshape(len(f), -1), dim=1).values[:, :-1]
    g_sorted = torch.sort(g.reshape(len(g), -1), dim=1).values[:, :-1]
    per_image = 2 * ((f_sorted - g_sorted) ** 2).sum(dim=1)
    return per_image.mean() if reduction == "mean" else per_image.sum()


def _term_function(loss: str):
    """The function ``(likelihood, target, **kwargs) -> scalar`` of a name in TOPO_LOSSES
    (``"scnp"``'s takes the logits in place of the likelihood)."""
    if loss == "topo":
        return topological_loss
    if loss == "cldice":
        return cldice_loss
    if loss == "sorted_value":
        return sorted_value_loss
    if loss == "skeleton_recall":
        return skeleton_recall_loss
    if loss == "scnp":
        return scnp_loss
    return betti_matching_loss


def training_loss(
    logits: torch.Tensor, target: torch.Tensor, loss: str, lam: float, **kwargs
) -> LossParts:
    """``L = L_BCE(logits, g) + lam * term(sigmoid(logits), g)``, for any term of the book.

    ``loss`` names the term (:data:`TOPO_LOSSES`):

    ``"none"``: no term (BCE only; ``lam`` and ``kwargs`` must be unused);
    ``"topo"``: :func:`topological_loss` (kwargs ``matching``, ``complex``, ``keep_zero_length``,
    ``misroute_gradient``, ...); ``training_loss(x, g, "topo", lam, **kw)`` equals
    :func:`combined_loss` ``(x, g, lam, **kw)``;
    ``"cldice"``: :func:`cldice_loss` (kwarg ``iterations``);
    ``"sorted_value"``: :func:`sorted_value_loss`, the value-only control;
    ``"betti_matching"``: :func:`topobook.topology.betti_matching.betti_matching_loss`;
    ``"skeleton_recall"``: :func:`topobook.losses.skeleton_recall.skeleton_recall_loss` (kwargs
    ``thin_class``: 0, the default, for ISBI's membranes, 1 for TopoMortar's mortar;
    ``smooth``, ``reduction``);
    ``"scnp"``: :func:`topobook.losses.scnp.scnp_loss` (kwargs ``window``, ``membrane_weight``),
    the one term that receives the **logits**, not ``sigmoid(logits)``: SCNP pools logits, and
    its term is the excess BCE of the pooled logits, so ``lam = 1`` trains on them alone.

    ``logits``: ``(B, 1, H, W)``, ``(B, H, W)`` or ``(H, W)``; ``target`` the same shape in
    {0, 1}. BCE is computed from the logits and averaged over pixels. Returns
    :class:`LossParts` whose ``topo`` field holds the chosen term (zero for ``"none"`` or
    ``lam = 0``, in which case the term is not computed). Unknown keyword arguments raise a
    ``TypeError`` even when ``lam = 0`` (checked once per term and set of keyword names).
    The inputs are checked once, here: ``"topo"`` receives ``sigmoid(logits)`` without a second
    check (the same value and gradient as :func:`topological_loss`, tested bit for bit).
    """
    if loss not in TOPO_LOSSES:
        raise ValueError(f"loss must be one of {TOPO_LOSSES}, got {loss!r}")
    x, g = check_pair(logits, target, likelihood_name="logits")
    if not lam >= 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    if loss == "none":
        if kwargs:
            raise TypeError(f"loss='none' takes no keyword arguments, got {sorted(kwargs)}")
        term_fn = None
    else:
        term_fn = _term_function(loss)
        _check_keywords(term_fn, kwargs)
    bce = F.binary_cross_entropy_with_logits(x, g)
    if term_fn is None or lam == 0:
        term = x.new_zeros(())
    elif term_fn is topological_loss:
        # x and g are checked: sigmoid(x) is finite and in [0, 1], so skip checking them again
        term = _topological_loss_of_checked_pair(torch.sigmoid(x), g, **kwargs)
    elif term_fn is scnp_loss:
        term = scnp_loss(x, g, **kwargs)  # acts on the logits (see scnp_loss)
    else:
        term = term_fn(torch.sigmoid(x), g, **kwargs)
    return LossParts(bce + lam * term, bce, term)


def _check_keywords(fn, kwargs: dict) -> None:
    """Raise TypeError now (not only when lam > 0) if ``fn`` does not take ``kwargs``."""
    error = _keyword_error(fn, tuple(kwargs))
    if error is not None:
        raise TypeError(f"{fn.__name__}: {error}")


@cache
def _keyword_error(fn, names: tuple[str, ...]) -> str | None:
    """Why ``fn(likelihood, target, **{name: ...})`` cannot be called, or None: binding
    depends on the names only, so it is worked out once per function and set of names."""
    import inspect

    try:
        inspect.signature(fn).bind(None, None, **dict.fromkeys(names))
    except TypeError as error:
        return str(error)
    return None
