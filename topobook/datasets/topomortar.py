"""TopoMortar (Valverde, Koga, Otsuka, Dahl; BMVC 2025) as a data set of the trainer: brick walls
whose mortar is one network.

The data-set protocol (:mod:`topobook.datasets`) for ``dataset="topomortar"`` (chapter 8):

* **Images and targets** (:func:`load_training_data`): the RGB photographs ``(N, 3, 512,
  512)`` of :func:`load_topomortar` (:func:`in_channels`: 3), and the target ``1 - mortar``
  (**brick = 1**). The bricks play the cells of ISBI 2012 and the mortar the membrane, so every
  loss of the book applies with its ISBI convention unchanged: ``L_topo`` on the superlevel
  filtration of the brick probability (Betti-0 of the bricks = Betti-1 of the mortar), clDice
  and Skeleton Recall on the thin class 0 (the mortar).
* **Splits** (:func:`check_config`, called by :class:`topobook.training.config.TrainConfig`):
  the slice fields hold image numbers; by default the authors' split (``splits.yaml``, or
  ``splits_small.yaml`` with ``training_set="small"``): training 1-50 (the small set: 10 of
  them), validation 51-70, in-distribution test 71-120. Only the held-out protocol, and no
  topological input (chapter 3's processing is of grey-level EM slices).
* **Evaluation** (:func:`evaluate`, :func:`evaluate_predictions`): the mortar predicted is
  ``brick probability < 0.5`` (:data:`THRESHOLD`): the authors take the argmax of a two-class
  softmax, which is ``P(mortar) > P(brick)``, ties to the brick (index 0); the operating point is
  fixed in advance, not chosen on any image. Each of the 50 test images (and of the 20
  validation images, for choosing λ) is scored with the authors' metrics,
  :func:`topobook.metrics.topomortar_metrics.topomortar_scores` (``monai_axes=True``: their
  loader's orientation, which changes only clDice; ``betti="unionfind"``, the same numbers as
  gudhi's, tested on all 50 test labels), and the test images also with the book's own,
  :func:`topobook.metrics.topomortar_metrics.topomortar_book_scores` (Betti matching error,
  V_rand, V_info of the bricks). Trivial predictors: all brick, all mortar.

The data:

The book uses the in-distribution part with the accurate labels (see
``../shared/data/topomortar/README.md``): 50 training images (001-050), 20 validation images
(051-070) and 50 in-distribution test images (071-120), RGB photographs of 512 x 512 pixels
with manual labels of the mortar. Conventions:

* images: ``float32`` in ``[0, 1]``, **channels first**, ``(N, 3, 512, 512)`` (RGB), the layout
  :class:`topobook.training.patches.PatchSampler` and the U-Net take;
* masks: ``uint8`` ``(N, 512, 512)`` with **1 = mortar** (the thin network), 0 = brick. The
  label files store 255 for mortar and 0 for brick.

The authors' splits are read from their ``splits.yaml`` (large training set, 50 images) and
``splits_small.yaml`` (small training set, 10 of them): ``train``, ``val`` and ``test``. Their
test lists also name the 300 out-of-distribution images (121-420), which are not in the subset
here; :func:`topomortar_ids` keeps the in-distribution ones (group ``indistr`` of
``dataset_types.txt``) and asking for another one is an error.

Files are found and checked as for ISBI 2012 (:mod:`topobook.datasets.datafiles`):
``$TOPOBOOK_TOPOMORTAR``, then ``../shared/data/topomortar``, then downloaded with pooch from the
source repository ``jmlipman/TopoMortar`` at the pinned commit :data:`TOPOMORTAR_COMMIT` (folder
``dataset/``, and ``results/`` for the published per-image results). The sha256 list shipped in the
package (``topomortar.sha256``) holds the sums of the images and labels copied from the shared
``SHA256SUMS``, and those of the split files, ``dataset_types.txt``, ``betti_numbers.csv`` and
the published CSV files computed from the shared copy of that commit. Licence of the data: the
repository's MIT licence.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from topobook.datasets.datafiles import DataFileError, DataSource, data_file, registry
from topobook.metrics.topomortar_metrics import (
    BOOK_SCORE_KEYS,
    SCORE_KEYS,
    topomortar_book_scores,
    topomortar_scores,
)

NAME = "topomortar"
THRESHOLD = 0.5  # brick probability below it: mortar (the authors' two-class argmax)
METRIC_KEYS = SCORE_KEYS + BOOK_SCORE_KEYS  # the scores of a run, per test image and mean
TRIVIAL_PREDICTORS = ("all_brick", "all_mortar")
SCORES_LAST_EPOCH = False  # only the evaluated weights are scored
RECORDS_VALIDATION_PATCH = False

TOPOMORTAR_COMMIT = "f709b3c72f4f24f68239281292f854918707f95f"
TOPOMORTAR_BASE_URL = (
    f"https://raw.githubusercontent.com/jmlipman/TopoMortar/{TOPOMORTAR_COMMIT}/"
)
TOPOMORTAR_SHAPE = (512, 512)
SPLITS = ("train", "val", "test")
TRAINING_SET_SIZES = ("large", "small")
_SPLIT_FILES = {"large": "splits.yaml", "small": "splits_small.yaml"}
_FOLDER_OF_SPLIT = {"train": "train", "val": "val", "test": "test"}
# The eight losses of the authors' published results (folder names of results/) and the
# columns of their CSV files, named as topobook.metrics.topomortar_metrics.topomortar_scores
# names them.
PUBLISHED_LOSSES = (
    "CEDiceLoss",
    "CESkeletonRecallLoss",
    "MSETopoWinLoss",
    "RegionWiseLoss",
    "TopoLoss",
    "WarpingLoss",
    "cbDiceLoss",
    "clDiceLoss",
)
PUBLISHED_SEEDS = tuple(range(1, 11))
PUBLISHED_COLUMNS = {
    "Betti0Error_mortar": "betti0_error",
    "Betti1Error_mortar": "betti1_error",
    "Betti0ErrorLocal_mortar": "betti0_error_local",
    "Betti1ErrorLocal_mortar": "betti1_error_local",
    "clDice_mortar": "cldice",
    "Dice_mortar": "dice",
    "HD95_mortar": "hd95",
}


def topomortar_url(name: str) -> str:
    """Pinned URL of one file: ``train/images/001.png`` -> ``.../dataset/train/images/001.png``,
    ``published_results/supervised/...`` -> ``.../results/supervised/...``."""
    if name.startswith("published_results/"):
        return TOPOMORTAR_BASE_URL + "results/" + name.removeprefix("published_results/")
    return TOPOMORTAR_BASE_URL + "dataset/" + name


TOPOMORTAR_SOURCE = DataSource(
    name="TopoMortar",
    env_var="TOPOBOOK_TOPOMORTAR",
    folder="topomortar",
    registry_file="topomortar.sha256",
    url=topomortar_url,
    layout="train/images, train/accurate, val/..., test/..., splits.yaml, splits_small.yaml, "
    "dataset_types.txt, betti_numbers.csv, published_results/",
)


def topomortar_registry() -> dict[str, str]:
    """The sha256 of every TopoMortar file the book uses, keyed by relative path."""
    return registry(TOPOMORTAR_SOURCE)


def topomortar_file(name: str, download: bool = True) -> Path:
    """Path of one verified TopoMortar file, e.g. ``topomortar_file("test/accurate/071.png")``
    (see :func:`topobook.datasets.datafiles.data_file` for where it is looked up and the errors)."""
    return data_file(TOPOMORTAR_SOURCE, name, download)


@cache
def _groups(download: bool = True) -> dict[str, str]:
    """Image id (``"001"``) -> group (``indistr``, ``angles``, ...) from dataset_types.txt."""
    lines = topomortar_file("dataset_types.txt", download).read_text().splitlines()
    if not lines or lines[0].strip() != "ID,group":
        raise DataFileError("dataset_types.txt must start with the header 'ID,group'")
    return dict(line.strip().split(",") for line in lines[1:] if line.strip())


@cache
def _split_paths(size: str, download: bool = True) -> dict[str, tuple[str, ...]]:
    """The authors' split file read as split -> paths (``dataset/train/images/036.png`` ...).

    The file is YAML of one fixed form (fold ``1:``, then ``  train:``/``  val:``/``  test:``,
    each followed by ``  - path`` lines), pinned by its sha256; it is read line by line so that
    loading the data needs no YAML library, and any other line is an error.
    """
    name = _SPLIT_FILES[size]
    lines = [line.rstrip() for line in topomortar_file(name, download).read_text().splitlines()]
    lines = [line for line in lines if line]
    if not lines or lines[0] != "1:":
        raise DataFileError(f"{name} must start with the fold '1:'")
    splits: dict[str, list[str]] = {}
    current = None
    for line in lines[1:]:
        if line.startswith("  - ") and current is not None:
            splits[current].append(line.removeprefix("  - ").strip())
        elif line.startswith("  ") and line.endswith(":") and line.strip()[:-1] in SPLITS:
            current = line.strip()[:-1]
            splits[current] = []
        else:
            raise DataFileError(f"unexpected line {line!r} in {name}")
    if set(splits) != set(SPLITS):
        raise DataFileError(f"{name} must hold the splits {SPLITS}, got {sorted(splits)}")
    return {split: tuple(paths) for split, paths in splits.items()}


def _check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
    return value


def topomortar_ids(split: str, size: str = "large", download: bool = True) -> tuple[str, ...]:
    """Image ids (``"036"``, ...) of one of the authors' splits, in their file's order.

    ``split``: ``"train"``, ``"val"`` or ``"test"`` (the in-distribution test images 071-120
    only: the out-of-distribution ones that the authors' list also names are not in the
    subset); ``size``: ``"large"`` (``splits.yaml``, 50 training images) or ``"small"``
    (``splits_small.yaml``, 10). Validation and test sets are the same for both sizes.
    """
    _check_choice(split, SPLITS, "split")
    _check_choice(size, TRAINING_SET_SIZES, "size")
    groups = _groups(download)
    ids = []
    for path in _split_paths(size, download)[split]:
        parts = path.split("/")
        if len(parts) != 4 or parts[0] != "dataset" or parts[2] != "images":
            raise DataFileError(f"unexpected path {path!r} in {_SPLIT_FILES[size]}")
        image_id = parts[3].removesuffix(".png")
        if groups.get(image_id) == "indistr":
            ids.append(image_id)
    return tuple(ids)


def _folder_of(image_id: str, download: bool) -> str:
    """The folder (train, val, test) that holds an in-distribution image, or a clear error."""
    group = _groups(download).get(image_id)
    if group is None:
        raise ValueError(f"{image_id!r} is not a TopoMortar image id (they run '001' to '420')")
    if group != "indistr":
        raise ValueError(
            f"TopoMortar image {image_id} is an out-of-distribution test image (group {group!r}), "
            "which is not in the book's subset; get it from the source repository "
            f"jmlipman/TopoMortar at commit {TOPOMORTAR_COMMIT} (dataset/test/)."
        )
    for split in SPLITS:
        if f"{split}/images/{image_id}.png" in topomortar_registry():
            return _FOLDER_OF_SPLIT[split]
    raise DataFileError(f"no image file of TopoMortar image {image_id} in the sha256 list")


def _read_png(path: Path, mode: str) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode != mode:
            raise DataFileError(f"{path} is in PNG mode {im.mode!r}, expected {mode!r}")
        array = np.asarray(im, dtype=np.uint8)
    if array.shape[:2] != TOPOMORTAR_SHAPE:
        raise DataFileError(f"{path} has shape {array.shape}, expected {TOPOMORTAR_SHAPE}")
    return array


class TopoMortarSet(NamedTuple):
    """``images`` ``(N, 3, H, W)`` float32 in [0, 1] (RGB, channels first); ``masks``
    ``(N, H, W)`` uint8, 1 = mortar; ``ids`` the image ids (``"071"``, ...)."""

    images: np.ndarray
    masks: np.ndarray
    ids: tuple[str, ...]


def load_topomortar(
    split: str | None = "train",
    size: str = "large",
    ids: tuple[str, ...] | list[str] | None = None,
    download: bool = True,
) -> TopoMortarSet:
    """Load TopoMortar images and their accurate labels.

    Either one of the authors' splits (``split`` ``"train"``, ``"val"`` or ``"test"``, with the
    training-set ``size`` ``"large"`` or ``"small"``; see :func:`topomortar_ids`) or, with
    ``split=None``, the images ``ids`` (``"001"`` to ``"120"``). Returns a
    :class:`TopoMortarSet` ``(images, masks, ids)``: images ``(N, 3, 512, 512)`` float32 in
    ``[0, 1]`` (RGB, channels first), masks ``(N, 512, 512)`` uint8 with 1 = mortar.
    An out-of-distribution test image (121-420) is not in the subset: a ``ValueError`` says so.
    """
    if (split is None) == (ids is None):
        raise ValueError("give either a split or ids (with split=None)")
    if split is not None:
        ids = topomortar_ids(split, size, download)
    ids = tuple(str(i) for i in ids)
    if not ids:
        raise ValueError("no image ids to load")
    images, masks = [], []
    for image_id in ids:
        folder = _folder_of(image_id, download)
        image = _read_png(topomortar_file(f"{folder}/images/{image_id}.png", download), "RGB")
        label_path = topomortar_file(f"{folder}/accurate/{image_id}.png", download)
        label = _read_png(label_path, "L")
        if not np.isin(label, (0, 255)).all():
            raise DataFileError(f"{label_path}: TopoMortar labels must be strictly {{0, 255}}")
        images.append(np.moveaxis(image, -1, 0))
        masks.append(label == 255)
    return TopoMortarSet(
        np.stack(images).astype(np.float32) / 255.0, np.stack(masks).astype(np.uint8), ids
    )


def published_betti_numbers(download: bool = True) -> dict[str, tuple[int, int, int]]:
    """The authors' ``betti_numbers.csv``: image id -> (Betti-0, Betti-1, Betti-2) of its label
    (the mortar), for all 350 test images (in- and out-of-distribution)."""
    import pandas as pd

    table = pd.read_csv(topomortar_file("betti_numbers.csv", download), dtype={"ID": str})
    if list(table.columns) != ["ID", "Betti0", "Betti1", "Betti2"]:
        raise DataFileError(f"betti_numbers.csv has columns {list(table.columns)}")
    return {
        row.ID: (int(row.Betti0), int(row.Betti1), int(row.Betti2))
        for row in table.itertuples(index=False)
    }


def load_published_results(
    size: str = "large", in_distribution: bool = True, download: bool = True
):
    """The authors' published per-image results (supervised training, accurate labels) as a
    tidy ``pandas.DataFrame``: one row per (loss, seed, test image).

    ``size``: ``"large"`` (the ideal setting, 50 training images) or ``"small"`` (10).
    Columns: ``training_set`` (the size), ``loss`` (the authors' class name, one of
    :data:`PUBLISHED_LOSSES`), ``seed`` (1-10), ``id`` (``"071"``, ...), ``in_distribution``
    (bool), then the metrics named as :func:`topobook.metrics.topomortar_metrics.topomortar_scores`
    names them (``betti0_error``, ``betti1_error``, ``betti0_error_local``, ``betti1_error_local``,
    ``cldice``, ``dice``) and ``hd95``. Read from
    ``published_results/supervised/accurate/<size>/<loss>/<seed>.csv`` (upstream
    ``results/...``), every file checked against its sha256. ``in_distribution=True`` (default)
    keeps the 50 in-distribution test images 071-120, ``False`` keeps all 350 rows per file.
    """
    import pandas as pd

    _check_choice(size, TRAINING_SET_SIZES, "size")
    groups = _groups(download)
    frames = []
    for loss in PUBLISHED_LOSSES:
        for seed in PUBLISHED_SEEDS:
            name = f"published_results/supervised/accurate/{size}/{loss}/{seed}.csv"
            table = pd.read_csv(topomortar_file(name, download), dtype={"ID": str})
            expected = {"ID", *PUBLISHED_COLUMNS}
            if set(table.columns) != expected:
                raise DataFileError(
                    f"{name} has columns {sorted(table.columns)}, expected {sorted(expected)}"
                )
            table = table.rename(columns={"ID": "id", **PUBLISHED_COLUMNS})
            table.insert(0, "seed", seed)
            table.insert(0, "loss", loss)
            table.insert(0, "training_set", size)
            table.insert(4, "in_distribution", table["id"].map(groups).eq("indistr"))
            frames.append(table)
    results = pd.concat(frames, ignore_index=True)
    if in_distribution:
        results = results[results["in_distribution"]].reset_index(drop=True)
    metric_columns = list(PUBLISHED_COLUMNS.values())
    return results[["training_set", "loss", "seed", "id", "in_distribution", *metric_columns]]


# ------------------------------------------------------------------- the data-set protocol


def _ids(split: str, size: str) -> tuple[int, ...]:
    return tuple(int(i) for i in topomortar_ids(split, size))


def check_config(config) -> None:
    """Fill and check the TopoMortar fields of a :class:`topobook.training.config.TrainConfig`
    (called by its ``__post_init__``): the slice fields default to the authors' split (image
    numbers), training images must come from the chosen training set, validation images from
    51-70 and test images from 71-120, and the three must not overlap. Raises ``ValueError`` for the
    ISBI-only settings (``protocol="authors"``, topological input)."""
    if config.training_set not in ("large", "small"):
        raise ValueError(
            f"training_set must be 'large' or 'small', got {config.training_set!r}"
        )
    if config.uses_topo_input:
        raise ValueError(
            f"strategy {config.strategy!r} feeds the network chapter 3's topological processing "
            "of a grey-level EM slice; it is not defined for TopoMortar's RGB photographs: use "
            "'baseline' or 'topo_loss'"
        )
    if config.protocol != "held_out":
        raise ValueError(
            "protocol='authors' is the ISBI notebook's selection on the evaluation slices; "
            "TopoMortar runs use the held-out split (validation 51-70, test 71-120)"
        )
    allowed = {
        "train_slices": _ids("train", config.training_set),
        "val_slices": _ids("val", "large"),
        "eval_slices": _ids("test", "large"),
    }
    for name, ids in allowed.items():
        value = getattr(config, name)
        value = ids if value is None else tuple(int(v) for v in value)
        extra = sorted(set(value) - set(ids))
        if extra or not value:
            raise ValueError(
                f"{name} of a TopoMortar run must be image numbers of its "
                f"{name.removesuffix('_slices')} set ({min(ids)}-{max(ids)}"
                + (f", training set {config.training_set!r}" if name == "train_slices" else "")
                + f"); got {sorted(extra) or 'none'}"
            )
        object.__setattr__(config, name, value)
    object.__setattr__(config, "diagram_epochs", tuple(int(v) for v in config.diagram_epochs))


def _as_ids(numbers) -> list[str]:
    return [f"{int(n):03d}" for n in numbers]


def load_images(numbers) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 512, 512)`` float32 in [0, 1] and mortar masks ``(N, 512, 512)`` uint8
    (1 = mortar) of TopoMortar image numbers (e.g. ``range(71, 121)``)."""
    loaded = load_topomortar(split=None, ids=_as_ids(numbers))
    return loaded.images, loaded.masks


def load_training_data(config) -> tuple[tuple, tuple]:
    """What :func:`topobook.training.run.train` trains on: ``((train_images, train_bricks),
    (val_images, val_bricks))``, images ``(N, 3, H, W)``, targets the **bricks** (``1 - mortar``,
    uint8, 1 = brick), the class the network's sigmoid predicts."""
    train_images, train_mortar = load_images(config.train_slices)
    val_images, val_mortar = load_images(config.val_slices)
    return (train_images, 1 - train_mortar), (val_images, 1 - val_mortar)


def mortar_prediction(brick_probability: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """The predicted mortar ``(..., H, W)`` uint8 of brick probabilities: ``p < threshold``
    (at 0.5 the authors' argmax of two classes, a tie going to the brick)."""
    p = np.asarray(brick_probability, dtype=np.float32)
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError("brick probabilities must be finite and lie in [0, 1]")
    return (p < threshold).astype(np.uint8)


def evaluate_predictions(
    brick_probabilities: np.ndarray, mortar_truth: np.ndarray, book_scores: bool = True
) -> dict[str, list]:
    """Per-image scores of brick probabilities ``(N, H, W)`` against mortar masks ``(N, H, W)``
    (1 = mortar): the authors' :data:`~topobook.metrics.topomortar_metrics.SCORE_KEYS` (their
    orientation, ``monai_axes=True``) and, with ``book_scores``, the book's
    :data:`~topobook.metrics.topomortar_metrics.BOOK_SCORE_KEYS`. Returns ``{key: [value per
    image]}`` (clDice may be NaN where the authors' definition is undefined)."""
    probabilities = np.asarray(brick_probabilities)
    truth = np.asarray(mortar_truth)
    if probabilities.ndim != 3 or probabilities.shape != truth.shape:
        raise ValueError(
            f"probabilities {probabilities.shape} and truth {truth.shape} must both be (N, H, W)"
        )
    keys = SCORE_KEYS + (BOOK_SCORE_KEYS if book_scores else ())
    scores: dict[str, list] = {key: [] for key in keys}
    for p, t in zip(mortar_prediction(probabilities), truth, strict=True):
        row = topomortar_scores(p, t, monai_axes=True, betti="unionfind")
        if book_scores:
            row.update(topomortar_book_scores(p, t))
        for key in keys:
            scores[key].append(float(row[key]))
    return scores


def mean_scores(per_image: dict[str, list]) -> dict[str, float]:
    """The mean over images of each score, NaN (undefined clDice) left out."""
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
            for k, v in per_image.items()}


def in_channels(config) -> int:
    """RGB photographs: three channels."""
    return 3


def load_evaluation_data(config) -> tuple[np.ndarray, np.ndarray]:
    """The test images ``(N, 3, H, W)`` and their **mortar** masks (1 = mortar), the truth the
    authors' metrics take."""
    return load_images(config.eval_slices)


def evaluate(config, probabilities, mortar, val_probabilities, val_targets, last=None) -> dict:
    """The scores of a run's brick probabilities at :data:`THRESHOLD`: ``"mean"`` and
    ``"per_image"`` on the test images (the authors' and the book's scores), ``"val_mean"`` on
    the validation images (the authors' scores, for choosing λ). ``last`` is not scored.
    ``val_targets``: the validation bricks the run trained with (:func:`load_training_data`), whose
    complement is the validation mortar (not read again from the files)."""
    val_mortar = 1 - np.asarray(val_targets, dtype=np.uint8)
    per_image = evaluate_predictions(probabilities, mortar, book_scores=True)
    val_per_image = evaluate_predictions(val_probabilities, val_mortar, book_scores=False)
    return {
        "dataset": "topomortar",
        "mean": mean_scores(per_image),
        "per_image": per_image,
        "ids": _as_ids(config.eval_slices),
        "val_mean": mean_scores(val_per_image),
        "threshold": THRESHOLD,
    }


def trivial_prediction(kind: str, images: np.ndarray) -> np.ndarray:
    """The brick probabilities ``(N, H, W)`` of a trivial predictor on images ``(N, 3, H, W)``:
    ``"all_brick"`` (ones) or ``"all_mortar"`` (zeros)."""
    shape = np.asarray(images).shape
    if kind not in TRIVIAL_PREDICTORS:
        raise ValueError(f"kind must be one of {TRIVIAL_PREDICTORS}, got {kind!r}")
    return np.full(shape[:1] + shape[2:], 1.0 if kind == "all_brick" else 0.0, np.float32)
