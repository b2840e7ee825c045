"""Training on TopoMortar (chapter 8): its data in a run, its evaluation, and chapter 8's runs.

A TopoMortar run is a :func:`topobook.train.train` run with ``dataset="topomortar"``; this
module holds what differs from ISBI 2012:

* **Images and targets** (:func:`load_training_data`): the RGB photographs ``(N, 3, 512,
  512)`` of :func:`topobook.topomortar_data.load_topomortar`, and the target ``1 - mortar``
  (**brick = 1**). The bricks play the cells of ISBI 2012 and the mortar the membrane, so every
  loss of the book applies with its ISBI convention unchanged: ``L_topo`` on the superlevel
  filtration of the brick probability (Betti-0 of the bricks = Betti-1 of the mortar), clDice
  and Skeleton Recall on the thin class 0 (the mortar).
* **Splits** (:func:`check_config`, called by :class:`topobook.train.TrainConfig`): the slice
  fields hold image numbers; by default the authors' split (``splits.yaml``, or
  ``splits_small.yaml`` with ``training_set="small"``): training 1-50 (the small set: 10 of
  them), validation 51-70, in-distribution test 71-120. Only the held-out protocol, and no
  topological input (chapter 3's processing is of grey-level EM slices).
* **Evaluation** (:func:`evaluate_predictions`, :func:`finish_run`): the mortar predicted is
  ``brick probability < 0.5`` (:data:`THRESHOLD`): the authors take the argmax of a two-class
  softmax, which is ``P(mortar) > P(brick)``, ties to the brick (index 0); the operating point is
  fixed in advance, not chosen on any image. Each of the 50 test images (and of the 20
  validation images, for choosing λ) is scored with the authors' metrics,
  :func:`topobook.topomortar_metrics.topomortar_scores` (``monai_axes=True``: their loader's
  orientation, which changes only clDice; ``betti="labels"``, the same numbers as gudhi's,
  tested on all 50 test labels), and the test images also with the book's own,
  :func:`topobook.topomortar_metrics.topomortar_book_scores` (Betti matching error, V_rand,
  V_info of the bricks).
* **Chapter 8's runs** (:func:`chapter_runs`): arms x λ sweep x seeds, with λ chosen on the
  validation images by :func:`select_lambda` (rule stated there and in the chapter). The
  chapter and ``book/build.py`` both call it, so the runs the build trains are the runs the
  chapter loads.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from topobook.topomortar_data import load_topomortar, topomortar_ids
from topobook.topomortar_metrics import (
    BOOK_SCORE_KEYS,
    SCORE_KEYS,
    topomortar_book_scores,
    topomortar_scores,
)

THRESHOLD = 0.5  # brick probability below it: mortar (the authors' two-class argmax)
# The arms of chapter 8: name -> the TrainConfig fields that make it (lam added by the sweep).
ARMS: dict[str, dict] = {
    "baseline": {"strategy": "baseline"},
    "topo_loss": {"strategy": "topo_loss", "loss": "topo", "matching": "lifetime",
                  "complex": "cubical"},
    "betti_matching": {"strategy": "topo_loss", "loss": "betti_matching"},
    "cldice": {"strategy": "topo_loss", "loss": "cldice"},
    "skeleton_recall": {"strategy": "topo_loss", "loss": "skeleton_recall"},
}
# Parameters of chapter 8 that only change how the page shows its runs.
PAGE_ONLY_PARAMETERS = ("workers", "progress", "dice_margin", "betti_margin")
DICE_TOLERANCE = 0.02  # select_lambda: a λ may cost at most this much validation Dice
SELECTION_METRIC = "betti1_error"  # select_lambda: the validation score a λ must lower


# ----------------------------------------------------------------------------------- splits


def _ids(split: str, size: str) -> tuple[int, ...]:
    return tuple(int(i) for i in topomortar_ids(split, size))


def check_config(config) -> None:
    """Fill and check the TopoMortar fields of a :class:`topobook.train.TrainConfig` (called by
    its ``__post_init__``): the slice fields default to the authors' split (image numbers),
    training images must come from the chosen training set, validation images from 51-70 and
    test images from 71-120, and the three must not overlap. Raises ``ValueError`` for the
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


def load_training_data(config) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
    """What :func:`topobook.train.train` trains on: ``({"train_images", "train_masks"},
    (val_images, val_masks))``, images ``(N, 3, H, W)``, masks the **bricks** (``1 - mortar``,
    uint8, 1 = brick), the class the network's sigmoid predicts."""
    train_images, train_mortar = load_images(config.train_slices)
    val_images, val_mortar = load_images(config.val_slices)
    split = {"train_images": train_images, "train_masks": 1 - train_mortar}
    return split, (val_images, 1 - val_mortar)


# ------------------------------------------------------------------------------- evaluation


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
    (1 = mortar): the authors' :data:`~topobook.topomortar_metrics.SCORE_KEYS` (their
    orientation, ``monai_axes=True``) and, with ``book_scores``, the book's
    :data:`~topobook.topomortar_metrics.BOOK_SCORE_KEYS`. Returns ``{key: [value per image]}``
    (clDice may be NaN where the authors' definition is undefined)."""
    probabilities = np.asarray(brick_probabilities)
    truth = np.asarray(mortar_truth)
    if probabilities.ndim != 3 or probabilities.shape != truth.shape:
        raise ValueError(
            f"probabilities {probabilities.shape} and truth {truth.shape} must both be (N, H, W)"
        )
    keys = SCORE_KEYS + (BOOK_SCORE_KEYS if book_scores else ())
    scores: dict[str, list] = {key: [] for key in keys}
    for p, t in zip(mortar_prediction(probabilities), truth, strict=True):
        row = topomortar_scores(p, t, monai_axes=True, betti="labels")
        if book_scores:
            row.update(topomortar_book_scores(p, t))
        for key in keys:
            scores[key].append(float(row[key]))
    return scores


def mean_scores(per_image: dict[str, list]) -> dict[str, float]:
    """The mean over images of each score, NaN (undefined clDice) left out."""
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
            for k, v in per_image.items()}


def finish_run(config, model: torch.nn.Module, state: dict, val_x: np.ndarray, out_dir) -> dict:
    """The end of a TopoMortar run (called by :func:`topobook.train.train` after the last
    epoch): the evaluated weights (the average of the last epochs' weights, or the epoch of
    lowest validation cross-entropy), their brick probabilities on the validation and test
    images, the scores, and the run's artefact in ``out_dir``: ``metrics.json`` (``"mean"``
    and ``"per_image"`` on the test images 71-120, ``"val_mean"`` on 51-70), ``model.pt``,
    ``predictions.npz`` (float16 probabilities); the checkpoint is deleted."""
    from topobook.train import _averaged_weights, predict, run_record, save_finished_run

    out_dir = Path(out_dir)
    start = time.perf_counter()
    if config.average_epochs:
        state["best_model"] = _averaged_weights(state, model)
        state["best_epoch"] = None
    model.load_state_dict(state["best_model"])
    test_images, test_mortar = load_images(config.eval_slices)
    probabilities = predict(model, test_images)
    val_probabilities = predict(model, val_x)
    _, val_mortar = load_images(config.val_slices)
    per_image = evaluate_predictions(probabilities, test_mortar, book_scores=True)
    val_per_image = evaluate_predictions(val_probabilities, val_mortar, book_scores=False)
    result = {
        "dataset": "topomortar",
        "mean": mean_scores(per_image),
        "per_image": per_image,
        "ids": _as_ids(config.eval_slices),
        "val_mean": mean_scores(val_per_image),
        "threshold": THRESHOLD,
        **run_record(config, state, time.perf_counter() - start),
    }
    save_finished_run(out_dir, config, state, probabilities, val_probabilities, result)
    return result


# ------------------------------------------------------------------------- chapter 8's runs


def run_folder(results_dir, arm: str, lam: float | None) -> Path:
    """``<results_dir>/topomortar/<arm>`` (baseline) or ``.../<arm>_lam<λ>``."""
    name = arm if lam is None else f"{arm}_lam{lam:g}"
    return Path(results_dir) / "topomortar" / name


def _run(values: dict, arm: str, lam: float | None, seed: int, results_dir):
    from topobook.train import TrainConfig

    fields = {**values, **ARMS[arm], "seed": seed}
    if lam is not None:
        fields["lam"] = lam
    return run_folder(results_dir, arm, lam) / f"seed{seed}", TrainConfig.from_dict(fields)


def _finished(out_dir: Path, config):
    from topobook.train import finished_result

    return finished_result(config, out_dir)


def select_lambda(
    validation: dict[float, list[dict]], baseline_validation: list[dict]
) -> tuple[float, str]:
    """The λ of a prior, chosen on the validation images only (stated before the runs).

    ``validation[λ]``: the ``val_mean`` score dicts of that λ's sweep runs (one per sweep
    seed); ``baseline_validation``: the baseline's, on the same seeds. Rule: keep the λ whose
    mean validation Dice is at least the baseline's minus :data:`DICE_TOLERANCE` (0.02); among
    them take the lowest mean validation Betti-1 error (:data:`SELECTION_METRIC`, whole image:
    the bricks, the holes every prior of the book acts on), ties to the higher clDice, then
    the smaller λ. If no λ keeps the Dice, the smallest λ. Returns ``(λ, reason)``."""
    if not validation or any(not runs for runs in validation.values()):
        raise ValueError("every λ of the sweep needs at least one finished validation run")
    floor = np.mean([r["dice"] for r in baseline_validation]) - DICE_TOLERANCE

    def mean(lam: float, key: str) -> float:
        return float(np.nanmean([r[key] for r in validation[lam]]))

    kept = [lam for lam in validation if mean(lam, "dice") >= floor]
    if not kept:
        return min(validation), f"no λ kept validation Dice >= {floor:.3f}: the smallest"
    best = min(kept, key=lambda lam: (mean(lam, SELECTION_METRIC), -mean(lam, "cldice"), lam))
    return best, (
        f"lowest validation {SELECTION_METRIC} ({mean(best, SELECTION_METRIC):.2f}) among "
        f"{len(kept)} of {len(validation)} λ with validation Dice >= {floor:.3f}"
    )


def chapter_runs(parameters: dict) -> dict:
    """Chapter 8's training runs from its papermill parameters.

    ``parameters``: ``arms`` (names of :data:`ARMS`, the baseline first), ``seeds`` (paired
    across arms), ``sweep_seeds`` (the seeds of the λ sweep, a subset of ``seeds``),
    ``lam_grid`` (arm -> the λ values tried), ``results_dir`` and any
    :class:`topobook.train.TrainConfig` field (``dataset`` is set to ``"topomortar"``);
    :data:`PAGE_ONLY_PARAMETERS` are ignored. Two stages: the baseline at every seed and every
    λ of every prior at the sweep seeds; once an arm's sweep is finished, its λ is chosen
    (:func:`select_lambda`) and that λ's runs at every seed are added (the sweep-seed runs are
    shared). Returns ``{"jobs": [(out_dir, config)], "chosen": {arm: (λ, reason)},
    "pending": [arms whose sweep is unfinished], "sweep": {arm: {λ: [(out_dir, config)]}},
    "final": {arm: [(out_dir, config)]}}``. Call again after training the jobs to get the
    second stage (:func:`train_chapter_runs` does both)."""
    values = {k: v for k, v in parameters.items() if k not in PAGE_ONLY_PARAMETERS}
    missing = sorted({"arms", "seeds", "sweep_seeds", "lam_grid", "results_dir"} - set(values))
    if missing:
        raise ValueError(f"chapter 8's parameters lack {missing}")
    arms = list(values.pop("arms"))
    seeds = [int(s) for s in values.pop("seeds")]
    sweep_seeds = [int(s) for s in values.pop("sweep_seeds")]
    grid = {arm: [float(lam) for lam in lams] for arm, lams in values.pop("lam_grid").items()}
    results_dir = values.pop("results_dir")
    decided = sorted({"strategy", "loss", "lam", "seed", "dataset"} & set(values))
    if decided:
        raise ValueError(f"{decided} are set by the arms and seeds of chapter 8, not parameters")
    values["dataset"] = "topomortar"
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms or arms[0] != "baseline" or len(set(arms)) != len(arms):
        raise ValueError(
            f"arms must start with 'baseline', have no repeats and come from {tuple(ARMS)}; "
            f"got {arms}"
        )
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list without repeats, got {seeds}")
    if not sweep_seeds or not set(sweep_seeds) <= set(seeds):
        raise ValueError(f"sweep_seeds {sweep_seeds} must be a non-empty subset of seeds")
    priors = arms[1:]
    if sorted(grid) != sorted(priors) or any(not grid[a] for a in priors):
        raise ValueError(f"lam_grid must give λ values for exactly the priors {priors}")
    final = {"baseline": [_run(values, "baseline", None, s, results_dir) for s in seeds]}
    sweep, chosen, pending = {}, {}, []
    for arm in priors:
        sweep[arm] = {
            lam: [_run(values, arm, lam, s, results_dir) for s in sweep_seeds]
            for lam in grid[arm]
        }
    baseline_val = [_finished(d, c) for d, c in final["baseline"] if c.seed in sweep_seeds]
    for arm in priors:
        finished = {lam: [_finished(d, c) for d, c in runs] for lam, runs in sweep[arm].items()}
        if len(grid[arm]) == 1:
            lam = grid[arm][0]
            chosen[arm] = (lam, "a single λ: no sweep")
        elif any(r is None for rs in finished.values() for r in rs) or None in baseline_val:
            pending.append(arm)
            continue
        else:
            chosen[arm] = select_lambda(
                {lam: [r["val_mean"] for r in rs] for lam, rs in finished.items()},
                [r["val_mean"] for r in baseline_val],
            )
        final[arm] = [_run(values, arm, chosen[arm][0], s, results_dir) for s in seeds]
    jobs = dict(final["baseline"])
    for arm in priors:
        for runs in sweep[arm].values():
            jobs.update(runs)
        jobs.update(final.get(arm, []))
    return {
        "jobs": list(jobs.items()),
        "chosen": chosen,
        "pending": pending,
        "sweep": sweep,
        "final": final,
    }


def topomortar_runs(parameters: dict) -> list[tuple[Path, object]]:
    """The training jobs chapter 8's parameters ask for now, ``(out_dir, config)`` (see
    :func:`chapter_runs`: until a prior's sweep is finished, only its sweep runs)."""
    return chapter_runs(parameters)["jobs"]


def train_chapter_runs(parameters: dict, workers: int | None = None, progress: bool = True):
    """Train every run of chapter 8 (both stages) with :func:`topobook.jobs.run_jobs`, and
    return the final :func:`chapter_runs` (no arm pending)."""
    from topobook.jobs import run_jobs

    for _ in range(2):
        runs = chapter_runs(parameters)
        run_jobs(runs["jobs"], workers=workers, progress=progress)
    runs = chapter_runs(parameters)
    if runs["pending"]:
        raise RuntimeError(f"the sweeps of {runs['pending']} did not finish")
    return runs


def load_run(out_dir) -> dict:
    """The ``metrics.json`` of one finished run."""
    path = Path(out_dir) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: train the run first")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------- chapter tables

# The authors' loss that plays each arm (None: they could not run it); their baseline is
# CE + Dice where ours is the BCE alone (chapter 8 states the differences).
AUTHORS_LOSS = {
    "baseline": "CEDiceLoss",
    "topo_loss": "TopoLoss",
    "betti_matching": None,
    "cldice": "clDiceLoss",
    "skeleton_recall": "CESkeletonRecallLoss",
}


def per_seed_means(runs: dict[str, list[tuple[Path, object]]]) -> dict[str, dict[int, dict]]:
    """``{arm: {seed: {metric: mean over the test images}}}`` of finished runs, e.g. the
    ``"final"`` of :func:`chapter_runs`."""
    return {
        arm: {config.seed: load_run(out_dir)["mean"] for out_dir, config in arm_runs}
        for arm, arm_runs in runs.items()
    }


def published_per_seed_means(ids, size: str = "large") -> dict[str, dict[int, dict]]:
    """The authors' published results as ``{loss: {seed: {metric: mean over the images ids}}}``
    (ids ``"071"``...; the mean leaves out NaN, as :func:`mean_scores` does)."""
    from topobook.topomortar_data import load_published_results

    table = load_published_results(size)
    table = table[table["id"].isin(list(ids))]
    if table["id"].nunique() != len(set(ids)):
        raise ValueError(f"the published results lack some of the images {sorted(ids)}")
    means = table.groupby(["loss", "seed"])[list(SCORE_KEYS)].mean()
    out: dict[str, dict[int, dict]] = {}
    for (loss, seed), row in means.iterrows():
        out.setdefault(loss, {})[int(seed)] = {k: float(row[k]) for k in SCORE_KEYS}
    return out


def mortar_structure(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parts of a mortar mask ``(H, W)`` (1 = mortar) that its Betti numbers count, with
    the authors' connectivity (:func:`topobook.topomortar_metrics.mortar_betti_numbers`):
    ``(components, holes, open_bricks)``: the mortar's 8-connected components labelled 1..b0,
    the bricks it encloses (4-connected brick regions not touching the border) labelled 1..b1,
    and the bool mask of the brick regions that touch the border (not holes)."""
    from scipy import ndimage

    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.isin(mask, (0, 1)).all():
        raise ValueError("mask must be a binary (H, W) array, 1 = mortar")
    components, _ = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    bricks, _ = ndimage.label(mask == 0)
    border = np.unique(np.concatenate([bricks[0], bricks[-1], bricks[:, 0], bricks[:, -1]]))
    border = border[border > 0]
    open_bricks = np.isin(bricks, border)
    holes = np.where(open_bricks, 0, bricks)
    _, holes = np.unique(holes, return_inverse=True)  # relabel 1..b1, 0 = not a hole
    return components, holes.reshape(mask.shape), open_bricks
