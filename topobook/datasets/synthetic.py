"""Synthetic EM-like data that needs no files: Voronoi cells with thin membranes, and masks with
chosen topological errors (merges and splits).

Same conventions as the real data (:mod:`topobook.datasets.isbi2012`): images ``float32`` in
``[0, 1]``, masks ``uint8`` with **1 = cell interior**, 0 = membrane.
"""

from __future__ import annotations

import numpy as np


def synthetic_em(
    n_images: int = 1,
    size: int = 128,
    n_cells: int = 24,
    membrane_width: int = 2,
    blur: float = 1.0,
    noise: float = 0.06,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic EM-like data set that needs no files: Voronoi cells with thin dark membranes.

    Each image is a Voronoi tessellation of ``n_cells`` random seeds; pixels where the cell label
    changes within a ``membrane_width + 1`` window form the membrane. Cells get a bright, slightly
    varying grey level and a few dark vesicles (dark blobs that are *not* membrane, as in real EM);
    the image is then blurred and noised. The mask is exact: 1 = cell interior, 0 = membrane.

    Returns ``(images, masks)``: ``(n_images, size, size)`` float32 in ``[0, 1]`` and uint8 in
    ``{0, 1}``.
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    if n_images < 1 or size < 8 or n_cells < 1 or membrane_width < 1:
        raise ValueError("need n_images >= 1, size >= 8, n_cells >= 1, membrane_width >= 1")
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    pixels = np.column_stack([rows.ravel(), cols.ravel()])
    images, masks = [], []
    for _ in range(n_images):
        centres = rng.uniform(0, size, size=(n_cells, 2))
        cell = cKDTree(centres).query(pixels)[1].reshape(size, size)
        window = membrane_width + 1
        membrane = ndimage.maximum_filter(cell, size=window) != ndimage.minimum_filter(
            cell, size=window
        )
        image = 0.65 + 0.1 * rng.uniform(-1, 1, size=n_cells)[cell]
        n_vesicles = max(1, n_cells // 3)
        for r, c in rng.uniform(0, size, size=(n_vesicles, 2)):
            radius = rng.uniform(1.0, 2.5)
            image[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = 0.35
        image[membrane] = 0.2
        image = ndimage.gaussian_filter(image, blur) + noise * rng.standard_normal(image.shape)
        images.append(np.clip(image, 0.0, 1.0).astype(np.float32))
        masks.append((~membrane).astype(np.uint8))
    return np.stack(images), np.stack(masks)


def with_topological_errors(
    mask: np.ndarray,
    n_merges: int = 1,
    n_splits: int = 1,
    blur: float = 1.0,
    noise: float = 0.03,
    seed: int = 0,
) -> np.ndarray:
    """A likelihood-like map of ``mask`` (H, W) in {0, 1} with known topological errors.

    ``n_merges`` gaps are opened in membranes between two neighbouring cells (two cells become
    one component) and ``n_splits`` cells are cut by a dark line through their centre (one cell
    becomes two). The map is then blurred and noised, as a network's output would be. Returns a
    float64 map in [0, 1] of the mask's shape. Cells are the 4-connected regions of 1s.
    """
    from scipy import ndimage

    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.isin(mask, (0, 1)).all():
        raise ValueError("mask must be a 2-D array with values in {0, 1}")
    rng = np.random.default_rng(seed)
    labels, n_cells = ndimage.label(mask)
    likelihood = mask.astype(float)
    rows, cols = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    distance = [ndimage.distance_transform_edt(labels != i) for i in range(1, n_cells + 1)]
    pairs = [(a, b) for a in range(n_cells) for b in range(a + 1, n_cells)]
    rng.shuffle(pairs)
    merged = 0
    for a, b in pairs:
        if merged == n_merges:
            break
        between = (mask == 0) & (distance[a] <= 2.5) & (distance[b] <= 2.5)
        if between.sum() < 3:
            continue
        r, c = np.argwhere(between)[rng.integers(between.sum())]
        likelihood[((rows - r) ** 2 + (cols - c) ** 2 <= 9) & (mask == 0)] = 1.0
        merged += 1
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n_cells + 1))
    for i in np.argsort(-sizes)[:n_splits]:
        cell = labels == i + 1
        r = int(round(np.argwhere(cell)[:, 0].mean()))
        likelihood[r : r + 2][cell[r : r + 2]] = 0.0
    if merged < n_merges:
        raise ValueError(f"found room for only {merged} of {n_merges} merges in this mask")
    likelihood = ndimage.gaussian_filter(likelihood, blur)
    likelihood += noise * rng.standard_normal(likelihood.shape)
    return np.clip(likelihood, 0.0, 1.0)
