"""The soft Dice loss over both classes, the Dice half of the field's "CE + Dice" baseline.

The TopoMortar authors (Valverde et al., BMVC 2025) train their baseline with cross-entropy plus
soft Dice over the two classes of a softmax. Facts read in their MIT code (repository
``jmlipman/TopoMortar``, ``lib/losses.py``: ``_dice_loss``, ``_crossentropy_loss`` and class
``CEDiceLoss``); the code here is our own:

* **classes**: both, background and foreground, each a channel of the one-hot target and of the
  softmax; with the book's one sigmoid logit ``z`` per pixel, the two-class softmax of logits
  ``(0, z)`` gives ``p = sigmoid(z)`` for class 1 and ``1 - p`` for class 0, and its
  cross-entropy is the BCE of ``z`` (so "CE" needs nothing new);
* **per image and class**: ``D = (2 sum(p g) + s) / max(sum(p) + sum(g) + s, 1e-8)`` over the
  pixels of one image and one class, ``s = 1e-5`` (:data:`SOFT_DICE_SMOOTH`);
* **reduction**: the mean of ``D`` over images and the two classes (their class weights are 1);
* **sign**: the reference returns ``-mean(D)``; we return ``1 - mean(D)``, which has the same
  gradient, is 0 for a perfect prediction and lies in [0, 1].

A class absent from an image and not predicted there scores ``D = s / s = 1`` (no loss).
"""

from __future__ import annotations

import torch

SOFT_DICE_SMOOTH = 1e-5


def soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, smooth: float = SOFT_DICE_SMOOTH
) -> torch.Tensor:
    """``1 - mean`` over images and both classes of the soft Dice of ``sigmoid(logits)``.

    ``logits``: one sigmoid logit per pixel, ``(B, 1, H, W)``, ``(B, H, W)`` or ``(H, W)``,
    finite, floating point; ``target``: the same shape, 0 or 1 (1 = the class ``sigmoid``
    predicts); ``smooth`` > 0. Returns a scalar in [0, 1] (see the module docstring for the
    conventions, which follow the TopoMortar authors' ``CEDiceLoss``).
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"logits and target must be torch.Tensors, got {type(logits).__name__} and "
            f"{type(target).__name__}"
        )
    if logits.shape != target.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must have the same "
            "shape"
        )
    if logits.ndim == 4 and logits.shape[1] != 1:
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} must have one channel (one sigmoid logit "
            "per pixel)"
        )
    if logits.ndim not in (2, 3, 4) or logits.numel() == 0:
        raise ValueError(
            f"logits must be a non-empty (H, W), (B, H, W) or (B, 1, H, W) tensor, got shape "
            f"{tuple(logits.shape)}"
        )
    if not logits.is_floating_point() or not torch.isfinite(logits).all():
        raise ValueError("logits must be finite floating-point values")
    if not ((target == 0) | (target == 1)).all():
        raise ValueError("target must hold only 0 and 1 (1 = the class the sigmoid predicts)")
    if not smooth > 0:
        raise ValueError(f"smooth must be > 0, got {smooth!r}")
    p = torch.sigmoid(logits).reshape(-1, *logits.shape[-2:]) if logits.ndim > 2 else (
        torch.sigmoid(logits)[None]
    )
    g = target.to(p.dtype).reshape(p.shape)
    dice = []
    for prob, truth in ((p, g), (1 - p, 1 - g)):  # class 1, then class 0
        overlap = (prob * truth).sum(dim=(-2, -1))
        size = (prob.sum(dim=(-2, -1)) + truth.sum(dim=(-2, -1)) + smooth).clamp_min(1e-8)
        dice.append((2 * overlap + smooth) / size)
    return 1 - torch.stack(dice).mean()
