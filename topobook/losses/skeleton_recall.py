"""Skeleton Recall (Kirchhoff, Rokuss, Roy, Kovacs, Ulrich, Wald, Zenk, Vollmuth, Kleesiek,
Isensee, Maier-Hein; "Skeleton Recall Loss for Connectivity Conserving and Resource Efficient
Segmentation of Thin Tubular Structures", ECCV 2024).

The loss asks the prediction to cover a *tubed skeleton* of the ground truth's thin structure:
the skeleton is computed once per training crop on the CPU from the binary target (no
gradient), thickened into a tube, and the loss is the soft recall of the predicted probability
on that tube. It costs one skeletonisation of the target per crop and one weighted sum.

Facts read in the Apache-2.0 reference implementation (repository ``MIC-DKFZ/Skeleton-Recall``:
``skeleton_recall/training/data_augmentation/skeletonization.py``, class
``SkeletonTransform``; ``skeleton_recall/training/loss/dice.py``, class
``SoftSkeletonRecallLoss``; ``skeleton_recall/training/nnUNetTrainer/
nnUNetTrainerSkeletonRecall.py``; the earlier ``nnunetv2/...`` copies of the same files) and in
the TopoMortar authors' adaptation (``jmlipman/TopoMortar``, ``lib/losses_skeletonrecallloss.py``
and class ``SkeletonRecallLoss`` of ``lib/losses.py``); the code here is our own:

* **skeleton**: ``skimage.morphology.skeletonize`` of the binary structure (``seg > 0``); an
  image without the structure has an empty skeleton;
* **tube**: ``dilation(dilation(skel))`` with skimage's default footprint, the 3 x 3 cross,
  i.e. one dilation by the diamond of radius 2 (``|dr| + |dc| <= 2``; the newer reference
  spells it ``ndi.iterate_structure(generate_binary_structure(ndim, 1), 2)``), then **masked by
  the structure** (``skel * seg``): the tube never leaves the true structure;
* **recall**: ``(sum(p * tube) + smooth) / max(sum(tube) + smooth, 1e-8)`` with ``p`` the
  predicted probability of the structure; ``smooth = 1e-5`` (the trainer's
  ``soft_skelrec_kwargs`` and the TopoMortar class; the class default 1.0 is not used);
* **batch**: per image, then the mean over the batch (``batch_dice=False``; TopoMortar's class
  always does this); nnU-Net's ``batch_dice=True`` sums numerator and denominator over the
  batch first (``reduction="batch"`` here);
* **sign**: the reference returns ``-recall`` (added with weight ``weight_srec = 1`` to CE +
  Dice); we return ``1 - recall``, which has the same gradient, is 0 for a perfect cover and
  lies in [0, 1] like the book's other terms (``cldice_loss`` is ``1 - clDice``).

An image whose crop holds no thin structure has an empty tube: its recall is
``smooth / smooth = 1`` and it adds nothing to the loss or its gradient.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from topobook.topology.betti_matching import _as_batch as as_batch

SKELETON_RECALL_SMOOTH = 1e-5
REDUCTIONS = ("mean", "batch")
# the 3 x 3 cross iterated twice: the diamond of radius 2 (one dilation by it = two by the cross)
TUBE_FOOTPRINT = ndimage.iterate_structure(ndimage.generate_binary_structure(2, 1), 2)


def tubed_skeleton(structure: np.ndarray) -> np.ndarray:
    """The tubed skeleton of a binary ``structure`` ``(H, W)`` (True / 1 = the thin structure).

    ``skimage.morphology.skeletonize``, dilated by :data:`TUBE_FOOTPRINT` (twice the 3 x 3
    cross) and masked by the structure itself, as the reference's ``SkeletonTransform`` does.
    Returns a bool ``(H, W)`` array; empty when the structure is. The dilation leaves out
    pixels beyond the image border; skimage's ``reflect`` border mode used by the reference
    gives the same result, since a reflected pixel lies within the symmetric footprint anyway
    (tested against ``dilation(dilation(skel))``).
    """
    from skimage.morphology import skeletonize

    structure = np.asarray(structure, dtype=bool)
    if structure.ndim != 2:
        raise ValueError(f"structure must be 2-D (H, W), got shape {structure.shape}")
    if not structure.any():
        return np.zeros_like(structure)
    skeleton = skeletonize(structure)
    tube = ndimage.binary_dilation(skeleton, structure=TUBE_FOOTPRINT)
    return tube & structure


def _check_inputs(likelihood, target, thin_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(likelihood, torch.Tensor) and likelihood.is_floating_point()):
        raise TypeError(f"likelihood must be a floating-point torch.Tensor, got {likelihood!r:.60}")
    # the shape and value checks of the Betti matching loss: (B, H, W), finite, in [0, 1]
    f = as_batch(likelihood, "likelihood")
    g = as_batch(target, "target")
    if f.shape != g.shape:
        raise ValueError(
            f"likelihood {tuple(f.shape)} and target {tuple(g.shape)} must have the same shape"
        )
    if not ((g == 0) | (g == 1)).all():
        raise ValueError("target must be binary with values in {0, 1} (it is skeletonised)")
    if isinstance(thin_class, bool) or thin_class not in (0, 1):
        raise ValueError(f"thin_class must be 0 or 1, got {thin_class!r}")
    return f, g


def skeleton_recall(
    likelihood: torch.Tensor,
    target: torch.Tensor,
    thin_class: int = 0,
    smooth: float = SKELETON_RECALL_SMOOTH,
    reduction: str = "mean",
) -> torch.Tensor:
    """The soft recall of the predicted thin structure on the tubed skeleton of the true one.

    ``likelihood``: the network's probability of class 1 (``sigmoid(logits)``), ``(H, W)``,
    ``(B, H, W)`` or ``(B, 1, H, W)`` in [0, 1]; ``target``: the same shape in {0, 1}.
    ``thin_class``: the label of the thin structure. **0 (default): ISBI 2012**, where target 0
    is the membrane, so the skeleton is that of ``target == 0`` and the predicted membrane is
    ``1 - likelihood`` (the same choice as :func:`topobook.losses.topological.cldice_loss`); **1:
    TopoMortar**, where 1 = mortar, the skeleton is that of ``target == 1`` and the predicted
    mortar is ``likelihood``.

    Per image ``b``: ``tube_b`` = :func:`tubed_skeleton` of its thin structure (numpy, CPU, no
    gradient), ``recall_b = (sum(p_b * tube_b) + smooth) / (sum(tube_b) + smooth)`` with ``p_b``
    the predicted thin structure. ``reduction="mean"`` (default) averages ``recall_b`` over the
    batch; ``"batch"`` sums numerator and denominator over the batch first. Returns a scalar in
    (0, 1]; the gradient is ``+-tube / (sum(tube) + smooth)`` (divided by B for the mean).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not smooth > 0:
        raise ValueError(f"smooth must be > 0, got {smooth}")
    f, g = _check_inputs(likelihood, target, thin_class)
    structure = (g == thin_class).cpu().numpy()
    tube = torch.as_tensor(np.stack([tubed_skeleton(s) for s in structure]), device=f.device)
    tube = tube.to(f.dtype)
    predicted = f if thin_class == 1 else 1 - f
    covered = (predicted * tube).sum(dim=(1, 2))
    size = tube.sum(dim=(1, 2))
    if reduction == "batch":
        covered, size = covered.sum(), size.sum()
    recall = (covered + smooth) / torch.clamp(size + smooth, min=1e-8)
    return recall.mean()


def skeleton_recall_loss(
    likelihood: torch.Tensor,
    target: torch.Tensor,
    thin_class: int = 0,
    smooth: float = SKELETON_RECALL_SMOOTH,
    reduction: str = "mean",
) -> torch.Tensor:
    """The Skeleton Recall loss, ``1 - skeleton_recall(...)`` (a scalar in [0, 1)).

    Arguments as :func:`skeleton_recall`: ``thin_class=0`` (default) for ISBI 2012 (the
    membrane, target 0), ``thin_class=1`` for TopoMortar (the mortar, target 1). The reference
    returns ``-recall``; the constant 1 changes neither the gradient nor the training.
    """
    return 1 - skeleton_recall(likelihood, target, thin_class, smooth, reduction)
