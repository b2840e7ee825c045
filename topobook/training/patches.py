"""Training crops: a seeded patch sampler with random rot90 and flips, and a plain crop.

The sampler draws one random crop (with its mask) per image per epoch, or one crop of a chosen
image; every draw comes from its own ``numpy`` generator, so a run is fixed by its seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
    """Apply the same random rotation by k*90 degrees and random horizontal flip to both arrays.

    Rotations and one flip generate all 8 symmetries of the square. ``image`` is ``(H, W)`` or
    ``(C, H, W)`` (channels are transformed alike), ``mask`` ``(H, W)``.
    """
    k = int(rng.integers(4))
    image, mask = np.rot90(image, k, axes=(-2, -1)), np.rot90(mask, k)
    if rng.integers(2):
        image, mask = image[..., ::-1], mask[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


class PatchSampler:
    """Seeded random square patches from a stack of images and masks.

    ``images`` ``(N, H, W)`` or ``(N, C, H, W)`` float (several input channels, cropped alike),
    ``masks`` ``(N, H, W)`` in ``{0, 1}``. Every training run of the book draws its patches
    through this class, so one seed fixes the data order.
    """

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        patch_size: int = 64,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        images, masks = np.asarray(images), np.asarray(masks)
        if images.ndim not in (3, 4) or masks.ndim != 3 or (
            (images.shape[0], *images.shape[-2:]) != masks.shape
        ):
            raise ValueError(
                "images must be (N, H, W) or (N, C, H, W) and masks (N, H, W) of the same N, H, "
                f"W; got {images.shape} and {masks.shape}"
            )
        if patch_size < 1 or patch_size > min(images.shape[-2:]):
            raise ValueError(f"patch_size {patch_size} does not fit images of {images.shape[-2:]}")
        self.images, self.masks = images, masks
        self.patch_size = patch_size
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def sample(self, index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A ``(patch_size, patch_size)`` patch of image ``index`` (random if None) and its mask
        (the image patch keeps its channel axis if the images have one)."""
        n = len(self.images)
        h, w = self.images.shape[-2:]
        i = int(self.rng.integers(n)) if index is None else index
        p = self.patch_size
        r, c = int(self.rng.integers(h - p + 1)), int(self.rng.integers(w - p + 1))
        image, mask = self.images[i, ..., r : r + p, c : c + p], self.masks[i, r : r + p, c : c + p]
        if self.augment:
            return augment(image, mask, self.rng)
        return image.copy(), mask.copy()

    def epoch(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One patch per image, images in a random order (the paper's epoch)."""
        for i in self.rng.permutation(len(self.images)):
            yield self.sample(int(i))


def crop(image: np.ndarray, row: int, col: int, size: int) -> np.ndarray:
    """The ``(size, size)`` window of ``image`` (..., H, W) whose top-left pixel is ``(row, col)``.

    Raises ``ValueError`` when the window does not fit, instead of silently returning less.
    """
    h, w = image.shape[-2:]
    if size < 1 or row < 0 or col < 0 or row + size > h or col + size > w:
        raise ValueError(
            f"a {size}x{size} window at (row={row}, col={col}) does not fit an image of {h}x{w}"
        )
    return image[..., row : row + size, col : col + size]
