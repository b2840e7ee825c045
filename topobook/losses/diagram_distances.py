"""The Wasserstein-2 distance between persistence diagrams, and a loss on its optimal matching.

The topological loss of the paper (:func:`topobook.losses.topological.topological_loss`) pairs the
points of two diagrams by *rank of lifetime*. That pairing changes abruptly where two lifetimes
cross, so the loss jumps there (chapter 2). The loss here pairs them by an *optimal* matching
instead::

    W2(D, E)**2 = min over partial matchings M of
                  sum_{(p, q) in M} |p - q|**2  +  sum_{p unmatched} |p - diag(p)|**2,

where ``|.|`` is the Euclidean norm in the (birth, death) plane, each unmatched point (of either
diagram) goes to its nearest diagonal point, at squared distance ``(birth - death)**2 / 2``.
This is the Wasserstein distance of order 2 with the Euclidean ground metric (in gudhi's terms
``gudhi.wasserstein.wasserstein_distance(D, E, order=2, internal_p=2) ** 2``). It is continuous
in the diagrams, and so, by the stability of persistence, in the image.

The optimal matching is found with :func:`scipy.optimize.linear_sum_assignment` on the usual
augmented cost matrix: ``n`` prediction points and ``m`` target points become an
``(n + m) x (m + n)`` assignment problem in which row ``i`` may also take its own diagonal copy
(column ``m + i``), column ``j`` may be taken by its own diagonal copy (row ``n + j``), and
diagonal copies match each other at no cost.

Essential bars (death ``+-inf``) cannot be matched to finite points at finite cost; as in
:func:`topobook.losses.topological.topological_loss`, they are paired by rank of birth (most extreme
first) and contribute ``(birth - birth')**2`` only.

Gradients: the loss is computed from diagram tensors whose entries are gathered from the image
at the critical pixels (:class:`topobook.topology.persistence.PersistenceLayer`), so autograd sends
the gradient of the optimal matching's cost to those pixels; the matching itself is fixed (an
``argmin``), which is the gradient of the distance wherever the optimal matching is unique.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from topobook.losses.topological import check_pair
from topobook.topology.persistence import COMPLEXES, PersistenceLayer

_FORBIDDEN = 1e18  # cost of an assignment that is not allowed (a point to another's diagonal)


def _check_diagram(dgm: np.ndarray, name: str) -> np.ndarray:
    dgm = np.asarray(dgm, dtype=np.float64)
    if dgm.size == 0:
        return dgm.reshape(0, 2)
    if dgm.ndim != 2 or dgm.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2) of (birth, death), got {dgm.shape}")
    if not np.isfinite(dgm).all():
        raise ValueError(f"{name} must hold finite points only (essential bars are paired apart)")
    return dgm


def wasserstein_matching(
    pred: np.ndarray, true: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An optimal Wasserstein-2 matching of two diagrams of finite points.

    ``pred`` ``(n, 2)`` and ``true`` ``(m, 2)``: rows (birth, death), any orientation (births
    above or below deaths). Returns ``(pairs, pred_to_diagonal, true_to_diagonal)``: ``pairs``
    ``(k, 2)`` int, row indices ``(i, j)`` matched to each other; the two others, the indices of
    the points sent to the diagonal. Among several optimal matchings one is returned.
    """
    pred = _check_diagram(pred, "pred")
    true = _check_diagram(true, "true")
    n, m = len(pred), len(true)
    cost = np.zeros((n + m, m + n))
    cost[:n, :m] = ((pred[:, None, :] - true[None, :, :]) ** 2).sum(axis=2)
    to_diagonal_pred = (pred[:, 0] - pred[:, 1]) ** 2 / 2
    to_diagonal_true = (true[:, 0] - true[:, 1]) ** 2 / 2
    cost[:n, m:] = _FORBIDDEN
    cost[np.arange(n), m + np.arange(n)] = to_diagonal_pred
    cost[n:, :m] = _FORBIDDEN
    cost[n + np.arange(m), np.arange(m)] = to_diagonal_true
    rows, cols = linear_sum_assignment(cost)
    real = (rows < n) & (cols < m)
    pairs = np.column_stack([rows[real], cols[real]]).astype(np.int64).reshape(-1, 2)
    pred_to_diagonal = np.sort(rows[(rows < n) & (cols >= m)]).astype(np.int64)
    true_to_diagonal = np.sort(cols[(rows >= n) & (cols < m)]).astype(np.int64)
    return pairs, pred_to_diagonal, true_to_diagonal


def wasserstein2_squared(pred: np.ndarray, true: np.ndarray) -> float:
    """``W2(pred, true)**2`` of two diagrams of finite points (see the module docstring)."""
    pred = _check_diagram(pred, "pred")
    true = _check_diagram(true, "true")
    pairs, p_diag, t_diag = wasserstein_matching(pred, true)
    matched = ((pred[pairs[:, 0]] - true[pairs[:, 1]]) ** 2).sum()
    diagonal = ((pred[p_diag, 0] - pred[p_diag, 1]) ** 2).sum() / 2
    diagonal += ((true[t_diag, 0] - true[t_diag, 1]) ** 2).sum() / 2
    return float(matched + diagonal)


def _essential_births(dgm: torch.Tensor, superlevel: bool) -> torch.Tensor:
    births = dgm[~torch.isfinite(dgm[:, 1]), 0]
    return torch.sort(births, descending=superlevel).values


def wasserstein_diagram_loss(
    pred: list[torch.Tensor],
    true: list[torch.Tensor],
    dims: tuple[int, ...] = (0, 1),
    superlevel: bool = True,
) -> torch.Tensor:
    """``sum_k W2(D_k(f), D_k(g))**2`` over ``dims`` of two lists of ``(n_k, 2)`` diagram
    tensors (as :class:`~topobook.topology.persistence.PersistenceLayer` returns them), plus
    ``(birth - birth')**2`` for the essential bars paired by rank of birth. Differentiable in
    ``pred`` through the matched entries; ``true`` is treated as a constant."""
    total = pred[0].new_zeros(())
    for k in dims:
        p, t = pred[k], true[k].detach().to(pred[k].dtype)
        ep, et = _essential_births(p, superlevel), _essential_births(t, superlevel)
        n = min(len(ep), len(et))
        total = total + ((ep[:n] - et[:n]) ** 2).sum()
        pf, tf = p[torch.isfinite(p[:, 1])], t[torch.isfinite(t[:, 1])]
        pairs, p_diag, t_diag = wasserstein_matching(
            pf.detach().cpu().numpy(), tf.cpu().numpy()
        )
        pi, ti = torch.as_tensor(pairs[:, 0]), torch.as_tensor(pairs[:, 1])
        total = total + ((pf[pi] - tf[ti]) ** 2).sum()
        pd_, td_ = pf[torch.as_tensor(p_diag)], tf[torch.as_tensor(t_diag)]
        total = total + ((pd_[:, 0] - pd_[:, 1]) ** 2).sum() / 2
        total = total + ((td_[:, 0] - td_[:, 1]) ** 2).sum() / 2
    return total


def wasserstein_loss(
    likelihood: torch.Tensor,
    target: torch.Tensor,
    *,
    dims: tuple[int, ...] = (0, 1),
    complex: str = "cubical",
    superlevel: bool = True,
) -> torch.Tensor:
    """The Wasserstein-2 topological loss between ``likelihood`` and ``target``, summed over
    the batch: the same diagrams as :func:`topobook.losses.topological.topological_loss` (superlevel
    by default, 1 = cell), paired by an optimal matching instead of by rank of lifetime.

    ``likelihood``: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` in ``[0, 1]``; ``target``: the
    same shape, in ``[0, 1]`` (no gradient flows into it).
    """
    if complex not in COMPLEXES:
        raise ValueError(f"complex must be one of {COMPLEXES}, got {complex!r}")
    if not set(dims) <= {0, 1} or not dims:
        raise ValueError(f"dims must be a non-empty subset of (0, 1), got {dims!r}")
    f, g = check_pair(likelihood, target)
    layer = PersistenceLayer(superlevel, complex, max(dims))
    pred_dgms = layer(f)
    with torch.no_grad():
        true_dgms = layer(g.to(f.dtype))
    losses = [
        wasserstein_diagram_loss(p, t, dims, superlevel)
        for p, t in zip(pred_dgms, true_dgms, strict=True)
    ]
    return torch.stack(losses).sum()
