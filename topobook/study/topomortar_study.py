"""Chapter 8's runs on TopoMortar: arms x λ sweep x seeds, the choice of λ, and its tables.

A TopoMortar run is a :func:`topobook.training.run.train` run with ``dataset="topomortar"``; its
data, splits and evaluation are the data set's module, :mod:`topobook.datasets.topomortar`.

* **Chapter 8's runs** (:func:`chapter_runs`, from :func:`chapter_plan`): arms x λ sweep x seeds,
  with λ chosen on the validation images by :func:`select_lambda` (rule stated there and in the
  chapter). The chapter and ``book/build.py`` both call it, so the runs the build trains are the
  runs the chapter loads.
* **Tables** (:func:`per_seed_means`, :func:`published_per_seed_means`): our runs beside the
  authors' published per-image results.
* **Verdicts** (:func:`paired_tests`): each prior against its baseline, paired by seed, with
  Holm's correction and TOST (Table 8.3); :func:`write_chapter_record` keeps which runs and
  margins the chapter tested, so that the book's closing page (:mod:`topobook.study.findings`)
  tests the same runs without knowing the chapter's parameters.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from topobook.datasets.topomortar import load_published_results
from topobook.metrics.topomortar_metrics import SCORE_KEYS
from topobook.training.config import TrainConfig
from topobook.training.jobs import run_jobs
from topobook.training.run import finished_result, load_run

# The arms of chapter 8: name -> the TrainConfig fields that make it (lam added by the sweep).
ARMS: dict[str, dict] = {
    "baseline": {"strategy": "baseline"},
    "topo_loss": {"strategy": "topo_loss", "loss": "topo", "matching": "lifetime",
                  "complex": "cubical"},
    "betti_matching": {"strategy": "topo_loss", "loss": "betti_matching"},
    "cldice": {"strategy": "topo_loss", "loss": "cldice"},
    "skeleton_recall": {"strategy": "topo_loss", "loss": "skeleton_recall"},
    "scnp": {"strategy": "topo_loss", "loss": "scnp"},
}
# The parameters that make a page one of chapter 8 (book/build.py plans its runs with
# chapter_runs), and those that only change how the page shows its runs.
PAGE_PARAMETERS = ("arms", "seeds", "results_dir")
PAGE_ONLY_PARAMETERS = ("workers", "progress", "dice_margin", "betti_margin", "train_ladder")
DICE_TOLERANCE = 0.02  # select_lambda: a λ may cost at most this much validation Dice
SELECTION_METRIC = "betti1_error"  # select_lambda: the validation score a λ must lower


# ------------------------------------------------------------------------- chapter 8's runs


def run_folder(results_dir, arm: str, lam: float | None) -> Path:
    """``<results_dir>/topomortar/<arm>`` (baseline) or ``.../<arm>_lam<λ>``."""
    name = arm if lam is None else f"{arm}_lam{lam:g}"
    return Path(results_dir) / "topomortar" / name


def _run(values: dict, arm: str, lam: float | None, seed: int, results_dir):
    """One run of chapter 8. With ``topo_start_epoch`` k > 0 among ``values`` the design is
    branched (:mod:`topobook.training.trunk`): the baseline saves its state after epoch k and
    every prior of the same seed continues from it with its term; the baseline's own config
    is then the from-scratch baseline's (k is no setting of it)."""
    fields = {**values, **ARMS[arm], "seed": seed}
    if lam is not None:
        fields["lam"] = lam
    start = int(fields.get("topo_start_epoch", 0))
    if arm == "baseline" and start > 0:
        fields.pop("topo_start_epoch")
        fields["trunk_epochs"] = (start,)
    return run_folder(results_dir, arm, lam) / f"seed{seed}", TrainConfig.from_dict(fields)


def _finished(out_dir: Path, config):
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


def chapter_plan(parameters: dict) -> dict:
    """Chapter 8's training runs from its papermill parameters.

    ``parameters``: ``arms`` (names of :data:`ARMS`, the baseline first), ``seeds`` (paired
    across arms), ``sweep_seeds`` (the seeds of the λ sweep, a subset of ``seeds``),
    ``lam_grid`` (arm -> the λ values tried), ``results_dir`` and any
    :class:`topobook.training.config.TrainConfig` field (``dataset`` is set to ``"topomortar"``);
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


def chapter_runs(parameters: dict) -> list[tuple[Path, TrainConfig]]:
    """The training runs chapter 8's parameters ask for now, ``(out_dir, config)`` (see
    :func:`chapter_plan`: until a prior's sweep is finished, only its sweep runs), and the
    baseline ladder's runs (:func:`topobook.study.topomortar_ladder.ladder_runs`) where
    ``train_ladder`` is true."""
    jobs = chapter_plan(parameters)["jobs"]
    if parameters.get("train_ladder"):
        from topobook.study.topomortar_ladder import ladder_runs

        jobs = jobs + ladder_runs(parameters["results_dir"])
    return jobs


def train_chapter_runs(parameters: dict, workers: int | None = None, progress: bool = True):
    """Train every run of chapter 8 (both stages) with :func:`topobook.training.jobs.run_jobs`, and
    return the final :func:`chapter_plan` (no arm pending)."""
    for _ in range(2):
        runs = chapter_plan(parameters)
        run_jobs(runs["jobs"], workers=workers, progress=progress)
    runs = chapter_plan(parameters)
    if runs["pending"]:
        raise RuntimeError(f"the sweeps of {runs['pending']} did not finish")
    return runs


# ---------------------------------------------------------------------------- chapter tables

# The authors' loss that plays each arm (None: not in their published table); both baselines
# are CE + Dice, but their priors are trained from scratch with their own compositions (chapter
# 8 states the differences).
AUTHORS_LOSS = {
    "baseline": "CEDiceLoss",
    "topo_loss": "TopoLoss",
    "betti_matching": None,
    "cldice": "clDiceLoss",
    "skeleton_recall": "CESkeletonRecallLoss",
    "scnp": None,  # not in the authors' published table
}


def per_seed_means(runs: dict[str, list[tuple[Path, object]]]) -> dict[str, dict[int, dict]]:
    """``{arm: {seed: {metric: mean over the test images}}}`` of finished runs, e.g. the
    ``"final"`` of :func:`chapter_plan`."""
    return {
        arm: {config.seed: load_run(out_dir)["mean"] for out_dir, config in arm_runs}
        for arm, arm_runs in runs.items()
    }


def published_per_seed_means(ids, size: str = "large") -> dict[str, dict[int, dict]]:
    """The authors' published results as ``{loss: {seed: {metric: mean over the images ids}}}``
    (ids ``"071"``...; the mean leaves out NaN, as
    :func:`topobook.datasets.topomortar.mean_scores` does)."""
    table = load_published_results(size)
    table = table[table["id"].isin(list(ids))]
    if table["id"].nunique() != len(set(ids)):
        raise ValueError(f"the published results lack some of the images {sorted(ids)}")
    means = table.groupby(["loss", "seed"])[list(SCORE_KEYS)].mean()
    out: dict[str, dict[int, dict]] = {}
    for (loss, seed), row in means.iterrows():
        out.setdefault(loss, {})[int(seed)] = {k: float(row[k]) for k in SCORE_KEYS}
    return out




FROM_SCRATCH_RECORD = Path(__file__).with_name("topomortar_from_scratch_record.yml")


def load_from_scratch_record(path=FROM_SCRATCH_RECORD) -> dict:
    """The committed record of chapter 8's first, from-scratch design (its runs' per-seed test
    means, the commit and machine that trained them): ``{"arms": {arm: {"lam": λ, "seeds":
    {seed: {metric: mean}}}}, ...}``. Numbers from training on that machine, read, never
    recomputed; a clear error when the file lacks a part."""
    import yaml

    record = yaml.safe_load(Path(path).read_text())
    missing = sorted({"design", "commit", "machine", "arms", "test_images"} - set(record or {}))
    if missing or "baseline" not in record.get("arms", {}):
        raise ValueError(f"{path} lacks {missing or ['the baseline arm']}")
    return record


def paired_difference_sds(
    per_seed: dict[str, dict[int, dict]], baseline: str = "baseline", keys=None
) -> dict[str, dict[str, float]]:
    """``{arm: {metric: SD}}``: the SD (ddof 1) over seeds of ``arm - baseline`` for each metric
    of ``keys`` (default the :data:`HEADLINE` metrics), paired by seed (the seeds both have; NaN
    with fewer than 2 pairs). The SD a paired test's power rests on: a design whose arms share
    their noise makes it smaller."""
    keys = tuple(HEADLINE) if keys is None else tuple(keys)
    if baseline not in per_seed:
        raise ValueError(f"no baseline arm {baseline!r} among {sorted(per_seed)}")
    out = {}
    for arm, seeds in per_seed.items():
        if arm == baseline:
            continue
        shared = sorted(set(seeds) & set(per_seed[baseline]))
        out[arm] = {}
        for key in keys:
            d = np.array([seeds[s][key] - per_seed[baseline][s][key] for s in shared], float)
            out[arm][key] = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
    return out


# ---------------------------------------------------------------------------- chapter verdicts

# The headline metrics of chapter 8's paired tests: name -> True when higher is better.
HEADLINE = {"betti0_error": False, "betti1_error": False, "cldice": True, "dice": True}
# Their labels in tables and sentences (↓: lower is better).
METRIC_LABELS = {"betti0_error": "Betti-0 error ↓", "betti1_error": "Betti-1 error ↓",
                 "betti0_error_local": "Betti-0 error, local ↓",
                 "betti1_error_local": "Betti-1 error, local ↓",
                 "cldice": "clDice ↑", "dice": "Dice ↑"}
RECORD_NAME = "chapter8.json"  # in <results_dir>/topomortar: the runs and margins tested


def equivalence_margin(metric: str, baseline_mean: float, dice_margin: float,
                       betti_margin: float) -> float:
    """The TOST margin δ of ``metric`` (> 0): ``dice_margin`` (absolute) for an overlap score
    (Dice, clDice: higher is better in :data:`HEADLINE`), ``betti_margin`` times the baseline's
    mean for an error (a Betti error: a fraction of what the baseline makes)."""
    if metric not in HEADLINE:
        raise ValueError(f"unknown headline metric {metric!r}; known: {sorted(HEADLINE)}")
    for name, value in (("dice_margin", dice_margin), ("betti_margin", betti_margin)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(dice_margin if HEADLINE[metric] else betti_margin * baseline_mean)


FAMILIES = ("prior", "table")  # paired_tests: Holm within each prior's metrics, or the table's


def paired_tests(per_seed: dict[str, dict[int, dict]], baseline: str, dice_margin: float,
                 betti_margin: float, alpha: float = 0.05, family: str = "prior"):
    """Chapter 8's Table 8.3: every arm of ``per_seed`` (``{arm: {seed: {metric: value}}}``, as
    :func:`per_seed_means` gives) against ``baseline`` on the :data:`HEADLINE` metrics, paired by
    seed, exact sign-flip tests with Holm's correction
    (:func:`topobook.study.stats.compare_with_baseline`) over each prior's four metrics
    (``family="prior"``, the default: each prior is its own question, with its own family-wise
    error rate) or over the whole table (``family="table"``: every prior x metric); for each
    comparison that is not rejected, a TOST (paired t, level ``alpha``) at the margin of
    :func:`equivalence_margin`. The table of ``compare_with_baseline`` (its
    ``smallest_reachable_p`` for the family chosen) with three more columns: ``margin`` (δ,
    for every comparison), ``equivalent`` (bool, None where rejected) and ``TOST`` (the same in
    words: ``"equivalent, ±δ"``, ``"not shown, ±δ"`` or ``""``)."""
    import pandas as pd

    from topobook.study import stats
    from topobook.study.tables import significant

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if family == "table":
        table = stats.compare_with_baseline(per_seed, baseline, HEADLINE, alpha=alpha)
    else:
        if baseline not in per_seed:
            raise ValueError(f"baseline run {baseline!r} not among {sorted(per_seed)}")
        parts = [
            stats.compare_with_baseline(
                {baseline: per_seed[baseline], arm: seeds}, baseline, HEADLINE, alpha=alpha
            )
            for arm, seeds in per_seed.items()
            if arm != baseline
        ]
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    margins, equivalent, words = [], [], []
    for _, row in table.iterrows():
        base = float(np.mean([s[row["metric"]] for s in per_seed[baseline].values()]))
        delta = equivalence_margin(row["metric"], base, dice_margin, betti_margin)
        margins.append(delta)
        if row["rejected"]:
            equivalent.append(None)
            words.append("")
            continue
        result = stats.tost(np.asarray(row["differences"]), delta, alpha)
        equivalent.append(bool(result["equivalent"]))
        words.append(f"{'equivalent' if result['equivalent'] else 'not shown'}, "
                     f"±{significant(delta, 2)}")
    table["margin"] = margins
    table["equivalent"] = equivalent
    table["TOST"] = words
    return table


def write_chapter_record(results_dir, plan: dict, test_ids, training_set: str,
                         dice_margin: float, betti_margin: float) -> Path:
    """Write ``<results_dir>/topomortar/chapter8.json``: the runs chapter 8 tested (``plan``:
    :func:`chapter_plan`'s, every arm finished; each run's folder relative to ``results_dir``,
    with its seed and λ), the test images, the authors' training set and the TOST margins.
    Returns the path. The book's closing page reads it with :func:`read_chapter_record`."""
    if plan.get("pending"):
        raise ValueError(f"the sweeps of {plan['pending']} are not finished: nothing to record")
    root = Path(results_dir)
    final = {}
    for arm, runs in plan["final"].items():
        final[arm] = [{"folder": Path(out_dir).relative_to(root).as_posix(),
                       "seed": int(config.seed),
                       "lam": None if arm == "baseline" else float(config.lam)}
                      for out_dir, config in runs]
    record = {"final": final, "test_ids": [str(i) for i in test_ids],
              "training_set": training_set, "dice_margin": float(dice_margin),
              "betti_margin": float(betti_margin)}
    path = root / "topomortar" / RECORD_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def read_chapter_record(results_dir) -> tuple[dict, dict[str, dict[int, dict]]]:
    """What chapter 8 tested in ``results_dir``: its record (:func:`write_chapter_record`) and
    the per-seed means of those runs (``{arm: {seed: {metric: mean over the test images}}}``).
    A ValueError naming the folder when the record or a run is missing: chapter 8 has not been
    executed on this folder (``make book`` executes it)."""
    root = Path(results_dir)
    path = root / "topomortar" / RECORD_NAME
    if not path.is_file():
        raise ValueError(f"{path} does not exist: chapter 8 has not been executed with "
                         f"results_dir={str(results_dir)!r}; run `make book` (or execute "
                         "notebooks/08_topomortar.ipynb) first")
    record = json.loads(path.read_text())
    means: dict[str, dict[int, dict]] = {}
    for arm, runs in record["final"].items():
        for run in runs:
            metrics = root / run["folder"] / "metrics.json"
            if not metrics.is_file():
                raise ValueError(f"{metrics} does not exist: chapter 8's run {run['folder']} "
                                 "is missing; run `make book` to train it")
            means.setdefault(arm, {})[int(run["seed"])] = json.loads(metrics.read_text())["mean"]
    return record, means
