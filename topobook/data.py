"""Data: the ISBI 2012 EM stack, a synthetic EM-like data set, and a seeded patch sampler.

The second data set, TopoMortar (brick walls, mortar = 1), lives in
:mod:`topobook.topomortar_data`; its loaders are re-exported here (:func:`load_topomortar`,
:func:`topomortar_ids`, :func:`topomortar_file`, :func:`load_published_results`).

Conventions used everywhere in topobook:

* images are ``float32`` arrays in ``[0, 1]`` of shape ``(H, W)`` or ``(N, H, W)``;
* masks are ``uint8`` arrays with values in ``{0, 1}``: **1 = cell interior (foreground)**,
  **0 = membrane (background)**. The ISBI label files store 255 for cell interior and 0 for
  membrane, so a mask is ``label // 255``.

The ISBI files are looked up, in order, in

1. the folder named by the environment variable ``TOPOBOOK_DATA``;
2. ``../shared/data/isbi2012`` beside the repository (where the project's machines keep it);
3. pooch's cache, downloading from pinned public URLs on first use.

Every file is checked against its sha256 before it is used (one implementation for both data
sets: :mod:`topobook.datafiles`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from topobook.datafiles import DataFileError as DataFileError  # re-export (all data sets)
from topobook.datafiles import DataSource, data_file, registry
from topobook.topomortar_data import (  # re-exports: the second data set
    TOPOMORTAR_SOURCE as TOPOMORTAR_SOURCE,
)
from topobook.topomortar_data import (
    load_published_results as load_published_results,
)
from topobook.topomortar_data import (
    load_topomortar as load_topomortar,
)
from topobook.topomortar_data import (
    published_betti_numbers as published_betti_numbers,
)
from topobook.topomortar_data import (
    topomortar_file as topomortar_file,
)
from topobook.topomortar_data import (
    topomortar_ids as topomortar_ids,
)

ISBI_SHAPE = (512, 512)
ISBI_N_SLICES = 30
# The public snapshot the files come from: repository zhixuhao/unet at a fixed commit. The files
# there are named N.png; we keep them as NN.png (see ../shared/data/isbi2012/README.md).
ISBI_BASE_URL = (
    "https://raw.githubusercontent.com/zhixuhao/unet/"
    "b45af4d458437d8281cc218a07fd4380818ece4a/data/membrane/"
)
# The book's protocol: slices 0-20 train, 21-23 validation (checkpoint selection only), 24-29
# evaluation (never seen by training or selection). Contiguous blocks: neighbouring sections of
# the stack are nearly alike, so a random split would leak.
DEFAULT_TRAIN_SLICES = tuple(range(0, 21))
DEFAULT_VAL_SLICES = tuple(range(21, 24))
DEFAULT_EVAL_SLICES = tuple(range(24, 30))
# The authors' split: 80:20, slices 0-23 train, and their validation crops came from 24-29.
AUTHORS_TRAIN_SLICES = tuple(range(0, 24))

def isbi_url(name: str) -> str:
    """Pinned URL of one ISBI file (``train/labels/07.png`` -> ``.../train/label/7.png``)."""
    parts = name.split("/")
    index = int(parts[-1].removesuffix(".png"))
    upstream = {
        ("train", "images"): f"train/image/{index}.png",
        ("train", "labels"): f"train/label/{index}.png",
        ("test", "images"): f"test/{index}.png",
    }[(parts[0], parts[1])]
    return ISBI_BASE_URL + upstream


ISBI_SOURCE = DataSource(
    name="ISBI 2012",
    env_var="TOPOBOOK_DATA",
    folder="isbi2012",
    registry_file="isbi2012.sha256",
    url=isbi_url,
    layout="train/images, train/labels, test/images",
)


def isbi_registry() -> dict[str, str]:
    """The sha256 of every ISBI file, keyed by relative path (``train/images/00.png`` ...)."""
    return registry(ISBI_SOURCE)


def isbi_file(name: str, download: bool = True) -> Path:
    """Path of one verified ISBI file, e.g. ``isbi_file("train/images/00.png")``.

    Looked up in ``$TOPOBOOK_DATA``, then ``../shared/data/isbi2012``, then downloaded
    (:func:`topobook.datafiles.data_file`). Raises :class:`DataFileError` when the file is
    corrupted, or missing and ``download`` is off.
    """
    return data_file(ISBI_SOURCE, name, download)


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode != "L":
            raise DataFileError(f"{path} is in PNG mode {im.mode!r}, expected 8-bit grayscale 'L'")
        array = np.asarray(im, dtype=np.uint8)
    if array.shape != ISBI_SHAPE:
        raise DataFileError(f"{path} has shape {array.shape}, expected {ISBI_SHAPE}")
    return array


def _check_slices(slices: Sequence[int]) -> list[int]:
    slices = [int(s) for s in slices]
    bad = [s for s in slices if not 0 <= s < ISBI_N_SLICES]
    if bad:
        raise ValueError(f"slice indices must lie in 0..{ISBI_N_SLICES - 1}, got {bad}")
    return slices


def load_isbi(
    slices: Sequence[int] = range(ISBI_N_SLICES), split: str = "train", download: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load ISBI 2012 slices.

    Returns ``(images, masks)``: images ``(N, 512, 512)`` float32 in ``[0, 1]``; masks
    ``(N, 512, 512)`` uint8 in ``{0, 1}`` with 1 = cell interior, or ``None`` for ``split="test"``
    (the challenge never published test labels).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    slices = _check_slices(slices)
    images = (
        np.stack(
            [_read_png(isbi_file(f"{split}/images/{s:02d}.png", download)) for s in slices]
        ).astype(np.float32)
        / 255.0
    )
    if split == "test":
        return images, None
    labels = np.stack([_read_png(isbi_file(f"train/labels/{s:02d}.png", download)) for s in slices])
    if not np.isin(labels, (0, 255)).all():
        raise DataFileError("ISBI labels must be strictly binary {0, 255}")
    return images, (labels // 255).astype(np.uint8)


def train_eval_split(
    train_slices: Sequence[int] = DEFAULT_TRAIN_SLICES,
    eval_slices: Sequence[int] = DEFAULT_EVAL_SLICES,
    val_slices: Sequence[int] = DEFAULT_VAL_SLICES,
    download: bool = True,
) -> dict[str, np.ndarray]:
    """The labelled ISBI slices split into training, validation and evaluation sets.

    The default split is contiguous (0-20 train, 21-23 validation, 24-29 evaluation): neighbouring
    sections of the stack are nearly alike, so a random split would leak. ``val_slices=()`` gives
    no validation set. Returns a dict with ``train_images``, ``train_masks``, ``val_images``,
    ``val_masks``, ``eval_images``, ``eval_masks`` (``val_*`` are ``None`` without validation).
    """
    sets = {"train": list(train_slices), "val": list(val_slices), "eval": list(eval_slices)}
    for a, b in (("train", "val"), ("train", "eval"), ("val", "eval")):
        overlap = sorted(set(sets[a]) & set(sets[b]))
        if overlap:
            raise ValueError(f"{a} and {b} slices overlap: {overlap}")
    out = {}
    for name, slices in sets.items():
        images, masks = load_isbi(slices, download=download) if slices else (None, None)
        out[f"{name}_images"], out[f"{name}_masks"] = images, masks
    return out


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
