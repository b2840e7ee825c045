"""SCNP, Same-Class Neighbour Penalisation (Valverde, Papadopoulos, Larsen, Dahl; "Towards
High-Quality Image Segmentation: Improving Topology Accuracy by Penalizing Neighbor Pixels",
CVPR 2026).

Before the loss, every logit is replaced by the *worst-classified* logit of its own class in a
``window x window`` square around it. A false-positive cluster or a thin break then costs the
loss of its worst pixel at every pixel of the true class that sees it, so the network is pushed
hardest where topology errors start. SCNP changes the logits only during training; the network
and its predictions are untouched.

Facts read in the MIT reference implementation (repository
``jmlipman/SCNP-SameClassNeighborPenalization``: ``SCNP/scnp_example.py``, the project page
``index.html`` and the trainers in ``SCNP/experiments``: ``nnUNetv2/compound_losses_scnp.py``,
``InstanSeg/compound_losses_scnp.py``, ``Detectron2/loss.py``); the code here is our own:

* **neighbourhood**: the square of ``window x window`` pixels centred on the pixel (stride 1,
  ``window // 2`` pixels each side); the only hyper-parameter, 3 by default and in every
  trainer of the reference. Pixels beyond the image border are left out (max-pooling pads with
  ``-inf``). The page reports that the best size grows with the size of the structures.
* **worst, per class**: with a one-hot target ``y`` of channel ``c``, a pixel with ``y = 1``
  takes the **minimum** of the channel's logits over the neighbours with ``y = 1`` (min-pooling
  in the foreground), and a pixel with ``y = 0`` the **maximum** over the neighbours with
  ``y = 0`` (max-pooling in the background). Neighbours of the other class are excluded (the
  reference pushes them out of the pool with a constant ``+-9999``; we use ``+-inf``, which no
  logit can beat). A pixel is in its own pool, so ``z_tilde <= z`` where ``y = 1`` and
  ``z_tilde >= z`` where ``y = 0``.
* **the loss**: the reference's trainers compute their whole loss (cross-entropy + Dice) on the
  SCNP logits only ("CEDice" over the SCNP-normalised logits); the example file also mentions,
  as an option, the loss of the SCNP logits *plus* the loss of the plain logits.
* **softmax or sigmoid**: SCNP acts on each output channel on its own; the reference applies
  it before a softmax (nnU-Net, Detectron2) or before a sigmoid on one channel (InstanSeg).

**Our single sigmoid logit.** The book's networks output one logit ``z`` per pixel, with
``sigmoid(z)`` the probability of target class 1 (ISBI's cells, TopoMortar's bricks). We apply
the per-channel rule to that one channel, exactly as the reference's InstanSeg trainer does:
pixels of class 1 take the minimum of ``z`` over their class-1 neighbours, pixels of class 0
the maximum over their class-0 neighbours. The rule is symmetric in the two classes
(``scnp_logits(-z, 1 - y) = -scnp_logits(z, y)``), so which class is called 1 does not matter.
It is not identical to the two-channel softmax version, which takes the min of ``z_1`` and the
max of ``z_0`` separately (possibly at two different neighbours) and so penalises at least as
much as the minimum of the difference ``z_1 - z_0`` that our one logit stands for.

**As a term of** :func:`topobook.losses.topological.training_loss` (``L = L_BCE + lam * term``),
:func:`scnp_loss` is the *excess* cross-entropy of the SCNP logits over the plain ones,
``BCE(z_tilde, y) - BCE(z, y)`` (>= 0, pixel by pixel). Hence ``lam = 1`` trains on the SCNP
logits alone, the reference's setting (its cross-entropy part; the book trains with BCE and no
Dice), ``lam = 0`` is plain BCE, values between mix the two, and the reference's optional sum
``BCE(z) + BCE(z_tilde)`` is twice the objective at ``lam = 1/2``. ``membrane_weight`` weighs the
class-0 pixels of both BCEs as the training BCE does (recipe ``"stable"``), so that ``lam = 1``
is the weighted BCE of the SCNP logits there too. The term needs the logits, not
``sigmoid(logits)``: the pooled probability is the sigmoid of the pooled logit (the sigmoid is
increasing), but a BCE of saturated probabilities loses what the logits keep.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SCNP_WINDOW = 3  # the reference's neighbourhood size (every trainer of its experiments)


def _check_window(window: int) -> int:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(
            f"window must be an odd integer >= 1 (the side of the square centred on each "
            f"pixel; the reference uses 3), got {window!r}"
        )
    return window


def _as_batch_4d(x: torch.Tensor, name: str) -> torch.Tensor:
    """``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` as ``(B, 1, H, W)``, or a clear error."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != 1 or 0 in x.shape:
        raise ValueError(
            f"{name} must have shape (H, W), (B, H, W) or (B, 1, H, W) (one sigmoid logit per "
            f"pixel) and be non-empty, got {tuple(x.shape)}"
        )
    return x


def _check_pair(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 1, H, W)`` logits (floating, finite) and a bool mask of target class 1."""
    x = _as_batch_4d(logits, "logits")
    y = _as_batch_4d(target, "target")
    if not x.is_floating_point():
        raise ValueError(f"logits must be a floating-point tensor, got dtype {x.dtype}")
    if x.shape != y.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must have the "
            "same shape"
        )
    if not torch.isfinite(x).all():
        raise ValueError("logits contain NaN or infinite values")
    if not ((y == 0) | (y == 1)).all():
        raise ValueError(
            "target must be binary, 0 or 1 at every pixel (SCNP compares each pixel with the "
            "neighbours of its own class); threshold a soft target first"
        )
    return x, y == 1


def _scnp_4d(x: torch.Tensor, foreground: torch.Tensor, window: int) -> torch.Tensor:
    """SCNP of checked ``(B, 1, H, W)`` logits and bool mask: one max-pooling of two channels,
    ``-z`` on class 1 (its maximum is minus the minimum of ``z``) and ``z`` on class 0, each
    ``-inf`` on the other class so that only same-class neighbours compete."""
    if window == 1:
        return x
    wrongness = torch.cat(
        [torch.where(foreground, -x, float("-inf")), torch.where(foreground, float("-inf"), x)],
        dim=1,
    )
    worst = F.max_pool2d(wrongness, kernel_size=window, stride=1, padding=window // 2)
    # a pixel sees itself, so the channel of its own class is finite; the other channel's
    # -inf is discarded by where (zero gradient, no NaN)
    return torch.where(foreground, -worst[:, :1], worst[:, 1:])


def scnp_logits(
    logits: torch.Tensor, target: torch.Tensor, window: int = SCNP_WINDOW
) -> torch.Tensor:
    """The SCNP logits ``z_tilde``: each logit replaced by the worst of its class nearby.

    ``logits``: ``z``, one sigmoid logit per pixel, ``(H, W)``, ``(B, H, W)`` or
    ``(B, 1, H, W)``, finite, floating point; ``target``: the same shape, 0 or 1 (1 = the class
    ``sigmoid(z)`` predicts); ``window``: odd side of the square neighbourhood (1 = no change).
    Returns a tensor of the shape and dtype of ``logits`` where a pixel ``p`` of class 1 holds
    ``min z[q]`` and a pixel of class 0 ``max z[q]``, over the pixels ``q`` of the same class in
    the ``window x window`` square centred on ``p`` (inside the image; ``p`` itself included).
    See the module docstring for the reference and for how its per-channel rule maps to our one
    logit. The gradient of each output pixel goes to the one neighbour that won its pool
    (``max_pool2d``'s choice among ties).
    """
    window = _check_window(window)
    x, foreground = _check_pair(logits, target)
    return _scnp_4d(x, foreground, window).reshape(logits.shape)


def scnp_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    window: int = SCNP_WINDOW,
    membrane_weight: float = 1.0,
) -> torch.Tensor:
    """The SCNP term of training: ``BCE(z_tilde, y) - BCE(z, y)``, a scalar >= 0.

    ``z_tilde = scnp_logits(logits, target, window)``; both BCEs are computed from logits and
    averaged over all pixels of the batch, with weight ``membrane_weight`` (> 0) on the pixels of
    class 0 and 1 on those of class 1, like the training BCE. As the term of
    ``L = BCE(z, y) + lam * scnp_loss`` (:func:`~topobook.losses.topological.training_loss`,
    ``loss="scnp"``), ``lam = 1`` gives ``L = BCE(z_tilde, y)``: the reference's training on
    the SCNP logits alone. It is 0 when ``window = 1`` and when no pixel has a worse
    same-class neighbour (e.g. a constant logit on each class). Input shapes and checks as in
    :func:`scnp_logits`.
    """
    window = _check_window(window)
    if isinstance(membrane_weight, bool) or not float(membrane_weight) > 0:
        raise ValueError(f"membrane_weight must be > 0, got {membrane_weight!r}")
    x, foreground = _check_pair(logits, target)
    y = foreground.to(x.dtype)
    plain = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    penalised = F.binary_cross_entropy_with_logits(
        _scnp_4d(x, foreground, window), y, reduction="none"
    )
    # pixel by pixel, so that the term is >= 0 up to the BCE's own rounding
    excess = penalised - plain
    if membrane_weight != 1:
        excess = excess * torch.where(foreground, 1.0, float(membrane_weight)).to(x.dtype)
    return excess.mean()
