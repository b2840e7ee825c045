"""Chapter 7's second registration: arms branched from a shared trunk, read where their noise is.

The first registration (:mod:`topobook.study.confirmatory`) trained every arm from scratch and
read each run at a threshold chosen on two validation slices. Its paired differences carried two
noises the priors do not cause: a training trajectory per arm, and a threshold per run. This
design removes both from the comparison, and its pilot measures what is left:

* **Arms that share their noise** (:mod:`topobook.training.trunk`). Per seed one baseline run of
  the stable recipe (40 epochs) saves its state after epoch :data:`BRANCH_EPOCH` (28, 70 %, as
  the authors of TopoMortar switch their TopoLoss on); each prior continues from that state with
  its term for the last 12 epochs, on the same crops. The baseline run itself is the arm
  "baseline continued". A prior costs 30 % of a run.
* **Folds with four validation slices next to the evaluation block** (:data:`FOLDS`): a threshold
  chosen on slices beside the block transfers better than one chosen on slices further away.
* **Two readings of every run.** The deployable one, at the threshold chosen on the validation
  slices (``at_operating_point``), and a threshold-free one, at the evaluated stack's own best
  V_rand threshold on the 0.01 grid, the same rule for every arm (``at_best_threshold``,
  :func:`topobook.metrics.evaluation.evaluate_at_best_threshold`).
* **A topology endpoint scored on the segmentation V_rand scores**: the Betti matching error of
  the thinned segmentation (``betti_matching_thinned``,
  :func:`topobook.metrics.evaluation.thinned_betti_matching`).

**The pilot** (:func:`pilot_runs`) trains on fold ``"P"``: it evaluates slices 12-17, which the
study never evaluates, and trains on slices 0-8 and 21-29, among them the study's evaluation
slices: those are seen by the pilot's networks, never scored by it. Everything the registration
fixes (the λ, the reading, the endpoint, the planning SDs) is read from the pilot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from topobook.study.confirmatory import PRIORS, lambda_label, load_run, prior_of, study_seeds
from topobook.training.config import TrainConfig
from topobook.training.trunk import own_train_seconds

# ISBI 2012 slices 0-29. A one-slice guard between training and validation slices (neighbours
# in the stack are nearly alike); the validation slices touch the evaluation block.
FOLDS: dict[str, dict[str, tuple[int, ...]]] = {
    "A": {
        "train_slices": tuple(range(0, 19)),
        "val_slices": (20, 21, 22, 23),
        "eval_slices": tuple(range(24, 30)),
    },
    "B": {
        "train_slices": tuple(range(11, 30)),
        "val_slices": (6, 7, 8, 9),
        "eval_slices": tuple(range(0, 6)),
    },
    "P": {  # the pilot's: its evaluation block is no study fold's
        "train_slices": (*range(0, 9), *range(21, 30)),
        "val_slices": (10, 11, 18, 19),
        "eval_slices": tuple(range(12, 18)),
    },
}
RECIPE = "stable"
EPOCHS = 40  # the stable recipe's
BRANCH_EPOCH = 28  # 70 % of 40: the arms share epochs 1-28
BEST_THRESHOLD_STEP = 0.01  # the grid of the threshold-free reading
FOLDER = "07_branched"  # <results_dir>/07_branched/{pilot,study}/<arm>/seed<k>
ENDPOINTS = ("v_rand", "betti_8conn_thinned", "betti_matching_thinned", "betti_8conn",
             "betti_matching")
READINGS = ("at_operating_point", "at_best_threshold")


def run_config(arm: str, lam: float | None, fold: str, seed: int, overrides=None) -> TrainConfig:
    """The configuration of one run of the design: ``arm`` ``"baseline"`` (the trunk, which saves
    its state after :data:`BRANCH_EPOCH`) or a prior of
    :data:`topobook.study.confirmatory.PRIORS` at ``lam``, branched there."""
    if fold not in FOLDS:
        raise ValueError(f"fold must be one of {sorted(FOLDS)}, got {fold!r}")
    values = {
        "recipe": RECIPE,
        "epochs": EPOCHS,
        "best_threshold_step": BEST_THRESHOLD_STEP,
        **FOLDS[fold],
        **dict(overrides or {}),
        "seed": int(seed),
    }
    branch = min(BRANCH_EPOCH, int(values["epochs"]) - 1) if "epochs" in values else BRANCH_EPOCH
    if arm == "baseline":
        return TrainConfig.from_dict({**values, "strategy": "baseline", "trunk_epochs": (branch,)})
    if arm not in PRIORS:
        raise ValueError(f"arm must be 'baseline' or one of {sorted(PRIORS)}, got {arm!r}")
    if lam is None or not lam > 0:
        raise ValueError(f"a prior needs a positive lam, got {lam!r}")
    return TrainConfig.from_dict(
        {**values, **PRIORS[arm], "lam": float(lam), "topo_start_epoch": branch}
    )


def pilot_runs(
    results_dir: str | Path,
    seeds: list[int],
    lam_grid: dict[str, list[float]],
    overrides: dict | None = None,
) -> list[tuple[Path, TrainConfig]]:
    """The pilot's runs on fold ``"P"``: per seed the baseline trunk and every prior of
    ``lam_grid`` (``{prior: [λ, ...]}``) at every λ, branched from it. Folders:
    ``<results_dir>/07_branched/pilot/<baseline | prior_lamλ>/seed<k>``; the baselines come
    first (the job runner also trains trunks before branches)."""
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list without repeats, got {seeds}")
    unknown = sorted(set(lam_grid) - set(PRIORS))
    if unknown:
        raise ValueError(f"lam_grid names unknown priors {unknown}; known: {sorted(PRIORS)}")
    root = Path(results_dir) / FOLDER / "pilot"
    runs = [(root / "baseline" / f"seed{s}", run_config("baseline", None, "P", s, overrides))
            for s in seeds]
    for prior, grid in lam_grid.items():
        for lam in grid:
            for s in seeds:
                out = root / f"{prior}_{lambda_label(lam)}" / f"seed{s}"
                runs.append((out, run_config(prior, lam, "P", s, overrides)))
    return runs


def run_readings(out_dir: str | Path) -> dict:
    """One finished run's numbers for the pilot's table: per reading (:data:`READINGS`) and
    endpoint (:data:`ENDPOINTS`) ``"<reading>:<endpoint>"``, the two thresholds, and what the
    run's validation slices say (``val_v_rand``: the validation stack's V_rand at its chosen
    threshold, the first registration's λ criterion; ``val_betti_8conn_thinned``: the thinned
    segmentation's Betti error of the validation slices at that threshold; ``val_bce``: the mean
    validation cross-entropy of the averaged epochs)."""
    result = load_run(out_dir)
    if "at_best_threshold" not in result:
        raise ValueError(
            f"{out_dir} has no best-threshold reading: it was trained without "
            "best_threshold_step; retrain it with this design's configuration (run_config)"
        )
    missing = [e for e in ENDPOINTS if e not in result["at_best_threshold"]["mean"]]
    if missing:
        raise ValueError(
            f"{out_dir} was scored before the endpoint(s) {missing} existed: delete the run's "
            "folder and build again, or rescore it from its saved weights"
        )
    row = {}
    for reading in READINGS:
        scores = result[reading]
        for endpoint in ENDPOINTS:
            row[f"{reading}:{endpoint}"] = float(scores["mean"][endpoint])
        row[f"{reading}:threshold"] = float(scores["threshold"])
    operating_point = result["at_operating_point"]["operating_point"]
    row["val_v_rand"] = float(operating_point["validation_value"])
    if "validation_scores" not in operating_point:
        raise ValueError(
            f"{out_dir} was scored before the validation slices' scores were recorded: delete "
            "the run's folder and build again, or rescore it from its saved weights")
    row["val_betti_8conn_thinned"] = float(
        operating_point["validation_scores"]["betti_8conn_thinned"])
    history = result["history"][-int(result["config"]["average_epochs"] or 1):]
    row["val_bce"] = float(np.mean([h["val_bce"] for h in history]))
    row["trunk_loaded"] = bool((result.get("trunk") or {}).get("loaded", False))
    row["train_seconds"] = own_train_seconds(result)
    return row


def pilot_table(runs: list[tuple[Path, TrainConfig]]):
    """A DataFrame with one row per pilot run: ``arm`` (baseline or prior), ``lam`` (NaN for the
    baseline), ``seed`` and :func:`run_readings`."""
    import pandas as pd

    rows = []
    for out_dir, config in runs:
        arm = "baseline" if not config.uses_topo_loss else prior_of(config)
        lam = float(config.lam) if config.uses_topo_loss else float("nan")
        rows.append({"arm": arm, "lam": lam, "seed": config.seed, **run_readings(out_dir)})
    return pd.DataFrame(rows)


def paired_differences(table, column: str):
    """``prior - baseline`` of ``column`` for each (prior, λ) and seed: a DataFrame with ``arm``,
    ``lam``, ``seed`` and ``difference`` (the baseline of the same seed: the trunk's own
    continuation)."""
    import pandas as pd

    base = table[table["arm"] == "baseline"].set_index("seed")[column]
    rows = []
    for (arm, lam), group in table[table["arm"] != "baseline"].groupby(["arm", "lam"]):
        for seed, value in group.set_index("seed")[column].items():
            if seed in base.index:
                rows.append({"arm": arm, "lam": float(lam), "seed": int(seed),
                             "difference": float(value - base[seed])})
    return pd.DataFrame(rows, columns=["arm", "lam", "seed", "difference"])


def paired_sd(table, column: str, pairs=None, confidence: float = 0.8) -> dict:
    """The SD of the paired difference of ``column``, pooled over the (prior, λ) of ``pairs``
    (default all) with its degrees of freedom and its one-sided ``confidence`` upper bound (the
    planning value): as :func:`topobook.study.confirmatory.planning_sd`, on this design."""
    from topobook.study.confirmatory import _pooled_sd, sd_upper_bound

    diffs = paired_differences(table, column)
    groups = [
        g["difference"].to_numpy()
        for (arm, lam), g in diffs.groupby(["arm", "lam"])
        if pairs is None or (arm, float(lam)) in pairs
    ]
    sd, df = _pooled_sd(groups)
    if df == 0:
        raise ValueError(f"no (prior, λ) has two paired seeds for {column}: no SD to pool")
    return {"sd": sd, "df": df, "sd_upper": sd_upper_bound(sd, df, confidence),
            "confidence": confidence}


def correlation(x, y) -> float:
    """Pearson's correlation of two equal-length sequences (NaN when either is constant)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.size < 3:
        raise ValueError(f"need two sequences of equal length >= 3, got {x.shape} and {y.shape}")
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


# validation criteria of λ (all read on the validation slices only): column -> +1 when higher
# is better, -1 when lower is
CRITERIA = {"val_v_rand": 1.0, "val_betti_8conn_thinned": -1.0, "val_bce": -1.0}


def criterion_correlations(table, target: str = "at_best_threshold:v_rand",
                           higher_is_better: bool = True) -> dict:
    """How well each validation criterion (:data:`CRITERIA`) predicts the pilot's evaluation
    score ``target``: the correlation over the prior runs of the criterion's paired difference
    (prior - baseline, same seed) with the target's, both signed so that positive is better.
    Paired, because a λ is chosen among branches of one trunk, so only what the branch changes
    matters. ``val_v_rand`` is the first registration's criterion."""
    target_diff = paired_differences(table, target)["difference"] * (
        1.0 if higher_is_better else -1.0)
    out = {}
    for criterion, sign in CRITERIA.items():
        if criterion in table:
            diff = paired_differences(table, criterion)["difference"] * sign
            out[criterion] = correlation(diff, target_diff)
    return out


def threshold_correlation(table) -> float:
    """The correlation, over every pilot run, of the threshold chosen on the validation slices
    with the V_rand it gives on the evaluation slices: how much of a run's score is its
    threshold's luck."""
    return correlation(
        table["at_operating_point:threshold"], table["at_operating_point:v_rand"]
    )


def pair_correlation(table, column: str) -> float:
    """The correlation over (prior, λ, seed) of a prior run's ``column`` with its own trunk's
    (baseline of the same seed): near 1 when the arms share their noise."""
    base = table[table["arm"] == "baseline"].set_index("seed")[column]
    priors = table[table["arm"] != "baseline"]
    return correlation(priors[column], base.loc[priors["seed"]].to_numpy())


def trivial_readings(fold: str = "P", thresholds=None) -> dict:
    """The trivial predictors (:data:`topobook.metrics.evaluation.REFERENCES`) on ``fold``'s
    evaluation slices, read as a run is: at the threshold chosen on its validation slices, and at
    the evaluation stack's best threshold; ``{kind: {"<reading>:<endpoint>": value}}``."""
    from topobook.datasets import isbi2012
    from topobook.metrics import evaluation

    grid = thresholds or evaluation.FINE_THRESHOLDS
    split = FOLDS[fold]
    val_images, val_masks = isbi2012.load_isbi(split["val_slices"])
    images, masks = isbi2012.load_isbi(split["eval_slices"])
    out = {}
    for kind in evaluation.REFERENCES:
        at_op = evaluation.evaluate_reference_at_operating_point(
            kind, val_images, val_masks, images, masks, split["eval_slices"], grid
        )
        best = evaluation.evaluate_at_best_threshold(
            evaluation.reference_probabilities(kind, images), masks, split["eval_slices"], grid
        )
        out[kind] = {
            f"{reading}:{endpoint}": float(scores["mean"][endpoint])
            for reading, scores in (("at_operating_point", at_op), ("at_best_threshold", best))
            for endpoint in ENDPOINTS
        }
    return out


# ------------------------------------------------------------------ the registered study


def load_registration(path: str | Path | None = None) -> dict:
    """The second registration (``path``; ``None``: ``topobook/study/
    preregistration_branched.yml``), checked for the keys the study and its analysis read."""
    from topobook.study.branched_analysis import PREREGISTRATION
    from topobook.study.confirmatory import _read_yaml

    keys = {"title", "registered", "question", "hypotheses", "recipe", "branch_epoch", "arms",
            "folds", "seeds", "endpoints", "analysis", "power", "pilot"}
    return _read_yaml(path, PREREGISTRATION, "registration", keys)[1]


def load_registration_record(path: str | Path | None = None) -> dict:
    """What the second registration recorded when it was registered (``path``; ``None``:
    ``topobook/study/preregistration_branched_record.yml``): the pilot's numbers on the
    registering machine, that machine, the date, and the SHA-256 of the registration and of its
    analysis code (:func:`topobook.study.branched_analysis.check_fingerprint`)."""
    from topobook.study.branched_analysis import RECORD
    from topobook.study.confirmatory import _read_yaml

    keys = {"registered", "machine", "pilot", "power", "sha256"}
    return _read_yaml(path, RECORD, "registration record", keys)[1]


OUTCOME = Path(__file__).resolve().parent / "preregistration_branched_outcome.yml"


def load_registration_outcome(path: str | Path | None = None) -> dict:
    """The second study's outcome on its registering machine (``path``; ``None``:
    ``topobook/study/preregistration_branched_outcome.yml``): its runs, the machine, per fold and
    arm the mean and SD of each endpoint (``arms``, keyed ``"<fold>/<arm>"``), the noise per
    prior and endpoint (``spread``), and the registered analysis' primary table (``primary``,
    the rows of :func:`topobook.study.branched_analysis.primary_analysis`)."""
    from topobook.study.confirmatory import _read_yaml

    keys = {"trained", "commit", "machine", "machines", "runs", "pairs", "arms", "spread",
            "primary", "secondary"}
    return _read_yaml(path, OUTCOME, "outcome record", keys)[1]


def outcome_primary(outcome: dict):
    """The primary table of :func:`load_registration_outcome` as a DataFrame, with the columns
    of :func:`topobook.study.branched_analysis.primary_analysis` (fold rows carry NaN where
    the study tested nothing)."""
    import pandas as pd

    table = pd.DataFrame(outcome["primary"])
    for column in ("rejected", "equivalent"):
        table[column] = table[column].astype(object)
    return table


def study_runs(
    results_dir: str | Path,
    spec: dict,
    per_fold: int | None = None,
    overrides: dict | None = None,
) -> list[tuple[Path, TrainConfig]]:
    """The registered study's runs: per fold and seed (:func:`study_seeds`) the baseline trunk,
    then each registered prior at its registered λ, branched from it after
    ``spec["branch_epoch"]``. Every run carries the registration's SHA-256
    (``registration_sha256``: in its identity and its ``metrics.json``). Folders
    ``<results_dir>/07_branched/study/<fold>/<arm>/seed<k>``; trunks before branches."""
    from topobook.study.branched_analysis import registration_sha256

    if int(spec["branch_epoch"]) != BRANCH_EPOCH or spec["recipe"] != RECIPE:
        raise ValueError(
            f"the registration branches at epoch {spec['branch_epoch']} of recipe "
            f"{spec['recipe']!r}; this code runs epoch {BRANCH_EPOCH} of {RECIPE!r}")
    sha = registration_sha256()
    extra = {**dict(overrides or {}), "registration_sha256": sha}
    root = Path(results_dir) / FOLDER / "study"
    runs = []
    for fold, seeds in study_seeds(spec, per_fold).items():
        for seed in seeds:
            runs.append((root / fold / "baseline" / f"seed{seed}",
                         run_config("baseline", None, fold, seed, extra)))
        for arm, fields in spec["arms"].items():
            if arm == "baseline":
                continue
            for seed in seeds:
                runs.append((root / fold / arm / f"seed{seed}",
                             run_config(arm, float(fields["lam"]), fold, seed, extra)))
    return runs


# ------------------------------------------------------------------ the pilot, summed up

# The readings and endpoints the pilot's tables show, with their labels.
PILOT_COLUMNS = {
    "at_operating_point:v_rand": "V_rand at the validation threshold",
    "at_best_threshold:v_rand": "V_rand at the stack's best threshold",
    "at_operating_point:betti_matching_thinned": "BM error, thinned, validation thr.",
    "at_best_threshold:betti_matching_thinned": "BM error, thinned, best thr.",
    "at_operating_point:betti_8conn_thinned": "Betti error, thinned, validation thr.",
    "at_best_threshold:betti_8conn_thinned": "Betti error, thinned, best thr.",
    "at_best_threshold:betti_matching": "BM error, raw mask, best thr.",
    "val_v_rand": "validation V_rand (criterion)",
}
# The first registration's from-scratch paired SDs (its study, pooled within folds; the record)
FIRST_DESIGN = {"at_operating_point:v_rand": "v_rand",
                "at_operating_point:betti_matching": "betti_matching"}


# The pilot's summary table (Table 7.10): what the registration reads, with labels short enough
# for the column (the noise table, one reading per row, shows every reading of PILOT_COLUMNS)
SUMMARY_COLUMNS = {
    "at_operating_point:v_rand": "V_rand, val. thr.",
    "at_best_threshold:v_rand": "V_rand, best thr.",
    "at_best_threshold:betti_8conn_thinned": "Betti err., thinned",
    "at_best_threshold:betti_matching_thinned": "BM err., thinned",
    "val_betti_8conn_thinned": "criterion (val.)",
}


def pilot_summary(table):
    """Mean over seeds of :data:`SUMMARY_COLUMNS` per arm and λ (the baseline first)."""
    columns = [c for c in SUMMARY_COLUMNS if c in table]
    out = table.fillna({"lam": 0.0}).groupby(["arm", "lam"], sort=False)[columns].mean()
    return out.rename(columns=SUMMARY_COLUMNS)


def noise_table(table, record: dict | None = None):
    """Per reading and endpoint: the SD of the baseline over seeds, the pooled SD of the paired
    difference of the branches (prior - its own trunk's continuation), and the correlation of a
    branch with its trunk; beside them, where the first registration's record has it, the
    paired SD of its from-scratch study (``record["study"]["spread"]``, mean of its priors)."""
    import pandas as pd

    rows = []
    base = table[table["arm"] == "baseline"]
    for column, label in PILOT_COLUMNS.items():
        if column == "val_v_rand" or column not in table:
            continue
        row = {"reading": label, "baseline SD": float(base[column].std(ddof=1)),
               "paired SD (branched)": paired_sd(table, column)["sd"],
               "branch–trunk correlation": pair_correlation(table, column)}
        first = FIRST_DESIGN.get(column)
        if record is not None and first in record["study"]["spread"]:
            row["paired SD (first study, from scratch)"] = float(
                np.mean(list(record["study"]["spread"][first]["paired_sd"].values())))
        rows.append(row)
    return pd.DataFrame(rows).set_index("reading")


def choose_lambda(table, criterion: str = "val_v_rand", higher_is_better: bool = True) -> dict:
    """Per prior, the λ whose mean paired difference of ``criterion`` (prior - its trunk's
    continuation, validation slices only) is best; ties to the smallest λ."""
    diffs = paired_differences(table, criterion)
    chosen = {}
    for prior, rows in diffs.groupby("arm"):
        means = rows.groupby("lam")["difference"].mean().sort_index()
        values = means.to_numpy() * (1.0 if higher_is_better else -1.0)
        chosen[prior] = float(means.index[int(np.argmax(values))])
    return chosen


def trivial_margin(baseline: float, trivial: dict, endpoint: str) -> dict:
    """How far the baseline beats each trivial predictor on an error endpoint: ``{kind:
    (trivial - baseline) / trivial}`` (0.2: the baseline makes 20 % fewer errors)."""
    return {kind: (scores[endpoint] - baseline) / scores[endpoint]
            for kind, scores in trivial.items() if scores[endpoint] > 0}
