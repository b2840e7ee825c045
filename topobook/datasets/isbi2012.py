"""The ISBI 2012 EM stack as a data set of the trainer: files, splits, loading, evaluation.

The data-set protocol (:mod:`topobook.datasets`): :data:`NAME`, the splits
(:func:`check_config`: training 0-20, validation 21-23, evaluation 24-29; ``protocol="authors"``
trains on 0-23 and validates on the evaluation slices), the loading (:func:`load_training_data`,
:func:`load_evaluation_data`, every file checked against its sha256), the target convention
(1 = cell), the input channels (:func:`in_channels`: one grey level, two with
``input_mode="raw+processed"``), the evaluation with its operating point (:func:`evaluate`:
:mod:`topobook.metrics.evaluation`), the metric keys (:data:`METRIC_KEYS`) and the trivial
predictors (:data:`TRIVIAL_PREDICTORS`, :func:`trivial_prediction`). Synthetic EM-like data is in
:mod:`topobook.datasets.synthetic`, the training crops in :mod:`topobook.training.patches`.

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
sets: :mod:`topobook.datasets.datafiles`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from topobook.datasets.datafiles import DataFileError, DataSource, data_file, registry
from topobook.metrics import evaluation

NAME = "isbi2012"
METRIC_KEYS = tuple(evaluation.METRICS)  # the scores of a run at its operating point
TRIVIAL_PREDICTORS = evaluation.REFERENCES
SCORES_LAST_EPOCH = True  # the last epoch's weights are scored too (a selected epoch otherwise)
RECORDS_VALIDATION_PATCH = True  # metrics.json shows the first validation crop

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
    (:func:`topobook.datasets.datafiles.data_file`). Raises :class:`DataFileError` when the file is
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


# ------------------------------------------------------------------- the data-set protocol


def check_config(config) -> None:
    """Fill and check the ISBI fields of a :class:`topobook.training.config.TrainConfig`: the
    slices default to the protocol's; the held-out protocol never validates on evaluation
    slices, and no protocol trains on validation or evaluation slices."""
    if config.training_set != "large":
        raise ValueError("training_set is a TopoMortar setting; ISBI 2012 has one")
    if config.eval_slices is None:
        object.__setattr__(config, "eval_slices", DEFAULT_EVAL_SLICES)
    authors = config.protocol == "authors"
    if config.train_slices is None:
        train = AUTHORS_TRAIN_SLICES if authors else DEFAULT_TRAIN_SLICES
        object.__setattr__(config, "train_slices", train)
    if config.val_slices is None:
        val = config.eval_slices if authors else DEFAULT_VAL_SLICES
        object.__setattr__(config, "val_slices", val)
    for name in ("train_slices", "val_slices", "eval_slices"):
        object.__setattr__(config, name, tuple(int(v) for v in getattr(config, name)))
    seen_by_selection = set(config.val_slices) & set(config.eval_slices)
    if seen_by_selection and not authors:
        raise ValueError(
            f"validation slices {sorted(seen_by_selection)} are evaluation slices: the "
            "held_out protocol never selects on them (protocol='authors' does, as labelled)"
        )
    if set(config.train_slices) & (set(config.val_slices) | set(config.eval_slices)):
        raise ValueError("training slices must not be validation or evaluation slices")


def in_channels(config) -> int:
    """One grey level; two channels (raw and processed) with ``input_mode="raw+processed"``."""
    return 2 if config.uses_topo_input and config.input_mode == "raw+processed" else 1


def load_training_data(config) -> tuple[tuple, tuple]:
    """``((train_images, train_masks), (val_images, val_masks))`` of the run's slices (under
    ``protocol="authors"`` the validation slices are the evaluation slices)."""
    return load_isbi(config.train_slices), load_isbi(config.val_slices)


def load_evaluation_data(config) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation slices' images and masks (1 = cell)."""
    return load_isbi(config.eval_slices)


def evaluate(config, probabilities, masks, val_probabilities, val_masks, last=None) -> dict:
    """The scores of a run's cell probabilities on the evaluation slices
    (:func:`topobook.metrics.evaluation.evaluate`), ``"at_operating_point"``: at the one
    threshold chosen on the whole validation slices, ``"at_best_threshold"``: at the evaluation
    stack's own best threshold on the grid of ``config.best_threshold_step`` (only where that
    step is > 0, :func:`topobook.metrics.evaluation.evaluate_at_best_threshold`), and ``"last"``:
    the last epoch's probabilities ``last`` scored alike (``None`` where not scored)."""
    seed = config.seed * 1000
    slices, windows = config.eval_slices, config.betti_patches
    last_scores = None if last is None else evaluation.evaluate(last, masks, slices, seed, windows)
    operating_point = evaluation.evaluate_at_operating_point(
        val_probabilities, val_masks, probabilities, masks, slices,
        thresholds=config.operating_thresholds,
    )
    result = evaluation.evaluate(probabilities, masks, slices, seed, windows)
    result.update({"last": last_scores, "at_operating_point": operating_point})
    if config.best_thresholds:
        result["at_best_threshold"] = evaluation.evaluate_at_best_threshold(
            probabilities, masks, slices, config.best_thresholds
        )
    return result


def trivial_prediction(kind: str, images: np.ndarray) -> np.ndarray:
    """The cell probabilities of a trivial predictor (:data:`TRIVIAL_PREDICTORS`)."""
    return evaluation.reference_probabilities(kind, images)
