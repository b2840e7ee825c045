"""Chapter 7: the λ pilot on validation, the pre-registered confirmatory runs, their analysis.

Everything the confirmatory study does is fixed by its pre-registration,
``topobook/preregistration.yml`` (:func:`load_preregistration`), committed before any
confirmatory run was trained: the arms and their λ, the folds, the seeds, the endpoints, the
test, the margins and the power calculation that fixed the number of seeds.

* **Folds** (:data:`FOLDS`): two splits of the 30 ISBI 2012 slices with a one-slice guard band
  between training, validation and evaluation slices (neighbouring slices of the stack are
  nearly alike). Fold A evaluates on slices 24-29 (the exploratory chapters' evaluation slices),
  fold B on slices 0-5, which no run of chapters 4-6 and no choice of the pilot ever saw.
* **The λ pilot** (:func:`pilot_runs`, :func:`pilot_table`, :func:`choose_lambda`): the stable
  recipe (:data:`topobook.training.config.RECIPES`) with each prior at a grid of λ, on fold A's
  training and *validation* slices only; the λ of each prior is read from the validation
  slices by the rule of :func:`choose_lambda`.
* **The confirmatory runs** (:func:`study_runs`): arms x folds x seeds of the pre-registration,
  seeds never used by the pilot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from topobook.training.config import TrainConfig
from topobook.training.run import load_run

# One-slice guard bands between the parts of each fold (ISBI 2012 slices 0-29).
FOLDS: dict[str, dict[str, tuple[int, ...]]] = {
    "A": {
        "train_slices": tuple(range(0, 20)),
        "val_slices": (21, 22),
        "eval_slices": tuple(range(24, 30)),
    },
    "B": {
        "train_slices": tuple(range(10, 30)),
        "val_slices": (7, 8),
        "eval_slices": tuple(range(0, 6)),
    },
}
# The priors of the study: name -> the TrainConfig fields that make it (λ added per run).
PRIORS: dict[str, dict] = {
    "topo_loss": {"strategy": "topo_loss", "loss": "topo", "matching": "lifetime",
                  "complex": "cubical"},
    "betti_matching": {"strategy": "topo_loss", "loss": "betti_matching"},
}
BASELINE = {"strategy": "baseline"}
RECIPE = "stable"
FOLDER = "07_confirmatory"  # the chapter's runs: <results_dir>/07_confirmatory/{pilot,study}/...
# The parameters that make a page chapter 7 (book/build.py plans its runs with chapter_runs),
# and those that only change how the page shows its runs.
PAGE_PARAMETERS = ("pilot_seeds", "results_dir")
PAGE_ONLY_PARAMETERS = ("workers", "progress")


def lambda_label(lam: float) -> str:
    """The folder-name form of a λ (``0.03`` -> ``"lam0.03"``)."""
    return f"lam{lam:g}"


def _config(arm_fields: dict, fold: str, seed: int, overrides: dict) -> TrainConfig:
    if fold not in FOLDS:
        raise ValueError(f"fold must be one of {sorted(FOLDS)}, got {fold!r}")
    values = {"recipe": RECIPE, **FOLDS[fold], **arm_fields, **overrides, "seed": int(seed)}
    return TrainConfig.from_dict(values)


def pilot_runs(
    results_dir: str | Path,
    seeds: list[int],
    lam_grid: dict[str, list[float]],
    overrides: dict | None = None,
) -> list[tuple[Path, TrainConfig]]:
    """The λ pilot's runs, ``(out_dir, config)``: the baseline and each prior of ``lam_grid``
    (``{prior: [λ, ...]}``, priors of :data:`PRIORS`) at each λ, for every seed, all on fold A
    (its validation slices decide; the evaluation slices are scored but never read by the
    choice). Folders: ``<results_dir>/07_confirmatory/pilot/<baseline | prior_lamλ>/seed<k>``.
    ``overrides``: further :class:`TrainConfig` fields for every run (the CI profile's sizes)."""
    overrides = dict(overrides or {})
    unknown = sorted(set(lam_grid) - set(PRIORS))
    if unknown:
        raise ValueError(f"lam_grid names unknown priors {unknown}; known: {sorted(PRIORS)}")
    _check_seeds(seeds)
    root = Path(results_dir) / FOLDER / "pilot"
    runs = [(root / "baseline" / f"seed{s}", _config(BASELINE, "A", s, overrides)) for s in seeds]
    for prior, grid in lam_grid.items():
        if not grid or any(not (lam > 0) for lam in grid):
            raise ValueError(f"the λ grid of {prior} must be non-empty and positive, got {grid}")
        for lam in grid:
            fields = {**PRIORS[prior], "lam": float(lam)}
            for s in seeds:
                out = root / f"{prior}_{lambda_label(lam)}" / f"seed{s}"
                runs.append((out, _config(fields, "A", s, overrides)))
    return runs


def _check_seeds(seeds) -> None:
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list without repeats, got {seeds}")


# ------------------------------------------------------------------------------- the λ pilot

# The pilot's scores on the validation slices, read at each run's validation threshold.
PILOT_VALIDATION_METRICS = ("v_rand", "dice", "betti_matching", "membrane_fraction")
DICE_TOLERANCE = 0.01  # choose_lambda: how far validation Dice may fall below the baseline's


def validation_scores(out_dir: str | Path) -> dict:
    """A finished run's validation slices scored at its operating point (the threshold chosen
    on those same slices, so V_rand here is optimistic for every arm alike): the dict of
    :func:`topobook.metrics.evaluation.score_at_threshold`. Only the λ pilot reads it."""
    from topobook.datasets import isbi2012
    from topobook.metrics.evaluation import score_at_threshold

    out_dir = Path(out_dir)
    result = load_run(out_dir)
    with np.load(out_dir / "predictions.npz") as saved:
        probabilities = saved["val_probabilities"].astype(np.float32)
        slices = [int(s) for s in saved["val_slices"]]
    _, masks = isbi2012.load_isbi(slices)
    threshold = result["at_operating_point"]["threshold"]
    return score_at_threshold(probabilities, masks, slices, threshold)


def pilot_table(runs: list[tuple[Path, TrainConfig]]):
    """One row per pilot run: ``arm`` (``"baseline"`` or the prior), ``lam`` (0 for the
    baseline), ``seed``, ``threshold`` (its operating point), the validation scores
    (``val_<metric>`` for :data:`PILOT_VALIDATION_METRICS`) and the evaluation slices' scores at
    the same threshold (``eval_v_rand``, ``eval_betti_matching``: read only for the variance of
    the paired differences in :func:`planning_sd`, never for choosing λ). A ``pandas.DataFrame``."""
    import pandas as pd

    rows = []
    for out_dir, config in runs:
        result = load_run(out_dir)
        arm = "baseline" if config.strategy == "baseline" else prior_of(config)
        val = validation_scores(out_dir)["mean"]
        at = result["at_operating_point"]
        rows.append({
            "arm": arm,
            "lam": 0.0 if arm == "baseline" else config.lam,
            "seed": config.seed,
            "threshold": at["threshold"],
            **{f"val_{m}": val[m] for m in PILOT_VALIDATION_METRICS},
            "eval_v_rand": at["mean"]["v_rand"],
            "eval_betti_matching": at["mean"]["betti_matching"],
            "cpu_minutes": (result["train_seconds"] + result["eval_seconds"]) / 60,
        })
    return pd.DataFrame(rows)


def prior_of(config: TrainConfig) -> str:
    """The name in :data:`PRIORS` whose fields ``config`` has."""
    for prior, fields in PRIORS.items():
        if all(getattr(config, k) == v for k, v in fields.items()):
            return prior
    raise ValueError(f"run with loss={config.loss!r} is none of the priors {sorted(PRIORS)}")


def choose_lambda(table, tolerance: float = DICE_TOLERANCE) -> dict[str, float]:
    """The λ of each prior, read from the pilot's **validation** scores (``table`` from
    :func:`pilot_table`). The rule, fixed before the pilot ran:

    1. average each (prior, λ) over the pilot seeds, and the baseline likewise;
    2. a λ *qualifies* when its mean validation Dice is at least the baseline's minus
       ``tolerance`` (0.01): the term has not yet started to cost segmentation quality;
    3. the chosen λ is the qualifying λ of highest mean validation V_rand (ties: the smaller
       λ); when no λ qualifies, the smallest λ of the grid.

    Returns ``{prior: λ}``."""
    means = table.groupby(["arm", "lam"], as_index=False)[["val_v_rand", "val_dice"]].mean()
    base = means[means["arm"] == "baseline"]
    if base.empty:
        raise ValueError("the pilot table has no baseline rows")
    floor = float(base["val_dice"].iloc[0]) - tolerance
    chosen = {}
    for prior, rows in means[means["arm"] != "baseline"].groupby("arm"):
        rows = rows.sort_values("lam")
        ok = rows[rows["val_dice"] >= floor]
        if ok.empty:
            chosen[prior] = float(rows["lam"].iloc[0])
        else:
            best = ok["val_v_rand"].to_numpy().argmax()  # first of equal best: the smaller λ
            chosen[prior] = float(ok["lam"].iloc[best])
    return chosen


def qualifying(table, tolerance: float = DICE_TOLERANCE):
    """The (prior, λ) pairs whose mean validation Dice qualifies (rule 2 of
    :func:`choose_lambda`), as a set of tuples."""
    means = table.groupby(["arm", "lam"], as_index=False)["val_dice"].mean()
    floor = float(means.loc[means["arm"] == "baseline", "val_dice"].iloc[0]) - tolerance
    ok = means[(means["arm"] != "baseline") & (means["val_dice"] >= floor)]
    return {(a, float(lam)) for a, lam in zip(ok["arm"], ok["lam"], strict=True)}


def _pooled_sd(groups) -> tuple[float, int]:
    """The pooled SD of several groups of values (their variances weighted by their degrees of
    freedom, groups of fewer than two values skipped) and its degrees of freedom; ``(nan, 0)``
    when no group has two values."""
    num, df = 0.0, 0
    for values in groups:
        values = np.asarray(values, dtype=float)
        if values.size >= 2:
            num += (values.size - 1) * values.var(ddof=1)
            df += values.size - 1
    return (float(np.sqrt(num / df)), df) if df else (float("nan"), 0)


def planning_sd(table, endpoint: str, pairs=None, confidence: float = 0.8) -> dict:
    """The per-seed SD of the paired difference (prior - baseline, same seed) of ``endpoint``
    (a column of ``table`` without its ``eval_`` prefix: ``"v_rand"`` or ``"betti_matching"``),
    pooled over the pilot's (prior, λ) pairs ``pairs`` (default: every prior and λ).

    Within each (prior, λ) the seeds' differences give a variance with ``k - 1`` degrees of
    freedom; the pooled variance is their df-weighted mean. Returns ``{"sd" (pooled),
    "df", "sd_upper" (the one-sided ``confidence`` upper bound, ``sqrt(df s^2 / chi2_{1-c,
    df})``: the planning value, conservative against an SD estimated from few seeds),
    "confidence"}``. Only the *spread* of the differences is read here, never their sign or
    size: the λ and the margins are fixed without them."""
    column = f"eval_{endpoint}"
    base = table[table["arm"] == "baseline"].set_index("seed")[column]
    groups = [
        (rows.set_index("seed")[column] - base).dropna().to_numpy()
        for (arm, lam), rows in table[table["arm"] != "baseline"].groupby(["arm", "lam"])
        if pairs is None or (arm, float(lam)) in pairs
    ]
    sd, df = _pooled_sd(groups)
    if df == 0:
        raise ValueError("no (prior, λ) of the pilot has two paired seeds: no SD to pool")
    return {"sd": sd, "df": df, "sd_upper": sd_upper_bound(sd, df, confidence),
            "confidence": confidence}


def sd_upper_bound(sd: float, df: int, confidence: float = 0.8) -> float:
    """The one-sided ``confidence`` upper bound of an SD estimated with ``df`` degrees of
    freedom, ``sqrt(df s^2 / chi2_{1-c, df})``: the planning value of a power calculation."""
    from scipy import stats as sps

    return float(np.sqrt(df * sd**2 / sps.chi2.ppf(1 - confidence, df)))


# -------------------------------------------------------------------- the pre-registration

PREREGISTRATION = Path(__file__).resolve().parent / "preregistration.yml"
_PREREGISTRATION_KEYS = {"title", "registered", "question", "hypotheses", "recipe", "arms",
                         "folds", "seeds", "endpoints", "analysis", "power", "pilot"}


def _read_yaml(path, default: Path, what: str, keys: set, short: str | None = None):
    """``(path, content)`` of the YAML file ``path`` (``None``: ``default``), with every key of
    ``keys``; the errors name it ``what`` (``short`` once the path is shown)."""
    import yaml

    path = default if path is None else Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    content = yaml.safe_load(path.read_text())
    missing = sorted(keys - set(content))
    if missing:
        raise ValueError(f"{path}: the {short or what} lacks {missing}")
    return path, content


def load_preregistration(path: str | Path | None = None) -> dict:
    """The pre-registration (``path``; ``None``: :data:`PREREGISTRATION`,
    ``topobook/study/preregistration.yml``), checked: every
    section present, the arms the baseline and priors of :data:`PRIORS` with a positive λ, the
    folds those of :data:`FOLDS`, the seeds fresh (none below ``seeds.first``, which lies above
    every seed the pilot and chapters 4-6 use) and distinct across folds."""
    path, spec = _read_yaml(path, PREREGISTRATION, "pre-registration", _PREREGISTRATION_KEYS)
    arms = spec["arms"]
    if "baseline" not in arms or set(arms) - {"baseline"} - set(PRIORS):
        raise ValueError(f"{path}: arms must be the baseline and priors of {sorted(PRIORS)}")
    for prior in set(arms) - {"baseline"}:
        if not (float(arms[prior]["lam"]) > 0):
            raise ValueError(f"{path}: the λ of {prior} must be positive")
    if set(spec["folds"]) - set(FOLDS):
        raise ValueError(f"{path}: folds must be among {sorted(FOLDS)}")
    seeds = study_seeds(spec)
    flat = [s for fold_seeds in seeds.values() for s in fold_seeds]
    if len(set(flat)) != len(flat):
        raise ValueError(f"{path}: a seed is used in two folds")
    return spec


def study_seeds(spec: dict, per_fold: int | None = None) -> dict[str, list[int]]:
    """The seeds of each fold: fold k (0, 1, ...) in the order of ``spec["folds"]`` takes
    ``seeds.first + k * seeds.fold_stride + i`` for ``i < per_fold`` (default: the
    pre-registered ``seeds.per_fold``; a smaller ``per_fold`` is the CI profile's, never a
    verdict)."""
    block = spec["seeds"]
    per_fold = int(block["per_fold"] if per_fold is None else per_fold)
    if per_fold < 1 or per_fold > int(block["fold_stride"]):
        raise ValueError(f"seeds per fold must lie in [1, fold_stride], got {per_fold}")
    first, stride = int(block["first"]), int(block["fold_stride"])
    return {
        fold: [first + k * stride + i for i in range(per_fold)]
        for k, fold in enumerate(spec["folds"])
    }


def study_runs(
    results_dir: str | Path,
    spec: dict,
    per_fold: int | None = None,
    overrides: dict | None = None,
) -> list[tuple[Path, TrainConfig]]:
    """The confirmatory runs, ``(out_dir, config)``: every arm of the pre-registration ``spec``
    on every fold and seed (:func:`study_seeds`), the stable recipe, the pre-registered λ.
    Folders: ``<results_dir>/07_confirmatory/study/<fold>/<arm>/seed<k>``."""
    overrides = dict(overrides or {})
    runs = []
    for fold, seeds in study_seeds(spec, per_fold).items():
        for arm, fields in spec["arms"].items():
            arm_fields = dict(BASELINE) if arm == "baseline" else {
                **PRIORS[arm], "lam": float(fields["lam"])}
            for s in seeds:
                out = Path(results_dir) / FOLDER / "study" / fold / arm / f"seed{s}"
                runs.append((out, _config(arm_fields, fold, s, overrides)))
    return runs


def chapter_runs(parameters: dict) -> list[tuple[Path, TrainConfig]]:
    """Every training run of chapter 7, from the page's parameters: ``results_dir``,
    ``pilot_seeds`` (empty, the default build: no pilot run, the page reads the registered
    pilot from :data:`RECORD`), ``pilot_lam_grid``, ``overrides`` (:class:`TrainConfig` fields
    for every run: the CI profile's small sizes; empty in the book), ``rerun_study`` (``False``,
    the default build: the study's outcome is read from :data:`RECORD`; ``True``: the
    registered study's runs too) and ``seeds_per_fold`` (``None``: the pre-registered number).
    The page and ``book/build.py`` both call it, so the runs the build trains are the runs the
    page loads."""
    values = {k: v for k, v in parameters.items() if k not in PAGE_ONLY_PARAMETERS}
    expected = {"results_dir", "pilot_seeds", "pilot_lam_grid", "seeds_per_fold", "overrides",
                "rerun_study"}
    unknown, missing = sorted(set(values) - expected), sorted(expected - set(values))
    if unknown or missing:
        raise ValueError(f"chapter 7 parameters: unknown {unknown}, missing {missing}")
    if not isinstance(values["rerun_study"], bool):
        raise ValueError(f"rerun_study must be True or False, got {values['rerun_study']!r}")
    overrides = values["overrides"] or {}
    # no pilot seeds: the first registration's pilot is read from its record, not retrained
    runs = (pilot_runs(values["results_dir"], values["pilot_seeds"], values["pilot_lam_grid"],
                       overrides) if list(values["pilot_seeds"] or []) else [])
    if values["rerun_study"]:
        runs += study_runs(values["results_dir"], load_preregistration(),
                           values["seeds_per_fold"], overrides)
    return runs


def design(spec: dict):
    """The power calculation of the pre-registration, recomputed: for each primary endpoint
    its planning SD and margin, the seeds per fold that the two-sided paired test needs for
    ``power.target`` against an effect of the margin (:func:`topobook.study.stats.seeds_for_power`)
    and that TOST needs to declare equivalence when the true effect is 0
    (:func:`topobook.study.stats.tost_seeds_for_power`), both at ``alpha / family size``
    (Bonferroni, a lower bound on Holm's power). The design's seeds per fold are the largest
    of these. ``smallest_margin``: the smallest margin (on the grid ``power.margin_step``) that
    the registered seeds per fold power (:func:`smallest_margin`), for a design whose seeds were
    fixed by its budget and whose margins are its minimum detectable effects."""
    import pandas as pd

    from topobook.study import stats

    power = spec["power"]
    family = len(spec["endpoints"]["primary"]) * (len(spec["arms"]) - 1)
    rows = []
    for endpoint, info in spec["endpoints"]["primary"].items():
        sd, margin = float(power["planning_sd"][endpoint]), float(info["margin"])
        common = {"folds": len(spec["folds"]), "alpha": spec["analysis"]["alpha"],
                  "family_size": family}
        rows.append({
            "endpoint": endpoint,
            "planning_sd": sd,
            "margin": margin,
            "family_size": family,
            "seeds_per_fold_test": stats.seeds_for_power(
                sd, margin, power["target"], **common),
            "seeds_per_fold_tost": stats.tost_seeds_for_power(
                sd, margin, power["target"], **common),
        })
    table = pd.DataFrame(rows)
    table["seeds_per_fold"] = table[["seeds_per_fold_test", "seeds_per_fold_tost"]].max(axis=1)
    table["smallest_margin"] = [
        smallest_margin(float(power["planning_sd"][e]), int(spec["seeds"]["per_fold"]),
                        float(power["margin_step"][e]), len(spec["folds"]), family,
                        float(power["target"]), float(spec["analysis"]["alpha"]))
        for e in table["endpoint"]
    ]
    return table


def seeds_needed(sd: float, margin: float, folds: int, family: int, target: float,
                 alpha: float) -> int:
    """Seeds per fold for power ``target`` of both the two-sided paired test (effect =
    ``margin``) and TOST (true effect 0), each at ``alpha / family``."""
    from topobook.study import stats

    common = {"folds": folds, "alpha": alpha, "family_size": family}
    return max(stats.seeds_for_power(sd, margin, target, **common),
               stats.tost_seeds_for_power(sd, margin, target, **common))


def smallest_margin(sd: float, per_fold: int, step: float, folds: int = 2, family: int = 4,
                    target: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest margin on the grid ``step, 2 step, ...`` that ``per_fold`` seeds per fold
    power (:func:`seeds_needed` <= ``per_fold``): the minimum detectable effect of a design
    whose number of seeds is fixed by its budget."""
    from topobook.study import stats

    if not (sd > 0 and step > 0 and per_fold >= 1):
        raise ValueError("sd and step must be positive and per_fold >= 1")
    common = {"folds": folds, "alpha": alpha, "family_size": family}
    smallest_p = stats.smallest_p_value(per_fold * folds)
    if smallest_p > alpha / family:  # paired_power is then 0 whatever the margin
        raise ValueError(
            f"{per_fold} seed(s) per fold in {folds} folds cannot reach the level "
            f"{alpha}/{family} at all (the sign-flip test's smallest p is {smallest_p:.3g}): "
            "no margin is powered; use more seeds")

    def powered(k: int) -> bool:
        # seeds_needed(...) <= per_fold, read at per_fold alone: both powers grow with the seeds
        # (the premise of the seed search in stats), so the search's answer is at most per_fold
        # exactly when per_fold already reaches the target (one TOST integral, not a search's)
        margin = k * step
        return (stats.paired_power(sd, margin, per_fold, **common)["power"] >= target
                and stats.tost_power(sd, margin, per_fold, **common) >= target)

    # The seeds needed fall as the margin grows, so the first powered grid value is found by
    # doubling, then bisection (a step-by-step walk takes minutes when sd is many steps wide).
    low = max(1, int(np.floor(sd / step / 4))) - 1  # far below any margin 2 seeds could power
    high = low + 1
    while not powered(high):
        low, high = high, 2 * high
    while high - low > 1:  # invariant: powered(high), not powered(low) (or low below the walk)
        middle = (low + high) // 2
        low, high = (low, middle) if powered(middle) else (middle, high)
    return round(high * step, 10)


# ------------------------------------------------------------- the registration's own numbers

RECORD = Path(__file__).resolve().parent / "preregistration_record.yml"
_RECORD_KEYS = {"registration", "registered", "registering_commit", "machines", "machine",
                "pilot", "study"}


def load_record(path: str | Path | None = None) -> dict:
    """What the first registration recorded on its registering machine (``path``; ``None``:
    :data:`RECORD`, ``topobook/study/preregistration_record.yml``): the λ pilot's table, the λ it
    chose, the planning SDs, and the study's outcome. These are data, read, never recomputed:
    training numbers differ from machine to machine (:mod:`topobook.training.machine`), so a page
    sets its own recomputation *beside* them. Checked: every section present, and the pilot's
    chosen λ and planning SDs equal to those the pre-registration fixed."""
    path, record = _read_yaml(path, RECORD, "registration record", _RECORD_KEYS, "record")
    spec = load_preregistration(path.parent / record["registration"])
    if record["pilot"]["chosen"] != spec["pilot"]["chosen"]:
        raise ValueError(f"{path}: pilot.chosen {record['pilot']['chosen']} is not the "
                         f"registered {spec['pilot']['chosen']}")
    for endpoint, sd in spec["power"]["planning_sd"].items():
        if record["pilot"]["planning"][endpoint]["sd_upper"] != sd:
            raise ValueError(f"{path}: the planning SD of {endpoint} is not the registered {sd}")
    return record


def pilot_means(table):
    """The λ pilot's means over seeds of each (arm, λ): ``table`` from :func:`pilot_table`
    (one row per run), or a table of means already (the record's), indexed ``arm, lam`` in the
    order of first appearance. A ``pandas.DataFrame`` of the numeric columns."""
    columns = [c for c in table.columns if c not in ("arm", "lam", "seed")]
    return table.groupby(["arm", "lam"], sort=False)[columns].mean()


def registered_pilot_table(record: dict):
    """The record's pilot means as a table :func:`choose_lambda` and :func:`pilot_means` read:
    one row per (arm, λ) with ``val_v_rand`` and ``val_dice``."""
    import pandas as pd

    return pd.DataFrame(record["pilot"]["means"])


def compare_choices(registered: dict[str, float], this_build: dict[str, float],
                    registered_table, this_table,
                    tolerance: float = DICE_TOLERANCE) -> list[str]:
    """Sentences saying, prior by prior, whether this build's pilot (``this_build``, chosen by
    :func:`choose_lambda` from ``this_table``) chose the λ the registration recorded
    (``registered``, from ``registered_table``), and when not, why: the validation Dice of each
    of the two λ against the rule's floor, and their validation V_rand. Both tables: one row
    per run or per (arm, λ), as :func:`choose_lambda` reads them."""
    def reading(table, prior, lam):
        means = pilot_means(table[["arm", "lam", "val_v_rand", "val_dice"]])
        floor = float(means.loc["baseline", "val_dice"].iloc[0]) - tolerance
        if (prior, lam) not in means.index:
            return "not in this pilot's grid"
        row = means.loc[(prior, lam)]
        side = "above" if row["val_dice"] >= floor else "below"
        return (f"Dice {row['val_dice']:.4f}, {abs(row['val_dice'] - floor):.4f} {side} the "
                f"floor {floor:.4f}; V_rand {row['val_v_rand']:.4f}")

    lines = []
    for prior in registered:
        name = prior.replace("_", " ")
        ours = this_build.get(prior)
        if ours is None:
            lines.append(f"{name}: this build's pilot did not try this prior; the study uses "
                         f"the registered λ = {registered[prior]:g}.")
        elif ours == registered[prior]:
            lines.append(f"{name}: this build's pilot chooses the registered λ = {ours:g}.")
        else:
            lines.append(
                f"{name}: **on this build the rule would have chosen λ = {ours:g}**, not the "
                f"registered λ = {registered[prior]:g} (this build at λ = {ours:g}: "
                f"{reading(this_table, prior, ours)}; at λ = {registered[prior]:g}: "
                f"{reading(this_table, prior, registered[prior])}). The study keeps the "
                f"registered λ, as pre-registered.")
    return lines


def registered_primary(record: dict):
    """The record's primary family in the shape of :func:`primary_analysis` (one ``"all"`` row
    per prior and endpoint, then one row per fold), so that the same tables and
    :func:`answer` read both the registered outcome and this build's."""
    import pandas as pd

    spec = load_preregistration(RECORD.parent / record["registration"])
    alpha = float(spec["analysis"]["alpha"])
    rows = []
    for entry in record["study"]["primary"]:
        higher = spec["endpoints"]["primary"][entry["endpoint"]]["higher_is_better"]
        sign = 1.0 if higher else -1.0
        common = {"prior": entry["prior"], "endpoint": entry["endpoint"]}
        rows.append({
            **common, "fold": "all", "n": int(entry["n"]), "delta": float(entry["delta"]),
            "low": float(entry["low"]), "high": float(entry["high"]),
            "improvement": sign * float(entry["delta"]), "p": float(entry["p"]),
            "p_holm": float(entry["p_holm"]), "tost_p_holm": float(entry["tost_p_holm"]),
            "margin": float(entry["margin"]), "rejected": float(entry["p_holm"]) <= alpha,
            "equivalent": float(entry["tost_p_holm"]) <= alpha,
            "method": record["study"]["test_method"], "mc_se": 0.0,
        })
        for fold in spec["folds"]:
            delta, low, high = (float(v) for v in entry[f"fold_{fold}"])
            rows.append({**common, "fold": fold, "n": int(entry["n"]) // len(spec["folds"]),
                         "delta": delta, "low": low, "high": high,
                         "improvement": sign * delta})
    return pd.DataFrame(rows)


def field_effect_reading(spec: dict, endpoint: str, effect: float, sd: float | None = None,
                         target: float = 0.8) -> dict:
    """What the registered design can say about an effect of ``effect`` on ``endpoint`` (for
    example the ≈ 0.01 V_rand that the field reports): ``power`` of the two-sided paired test
    against it and ``tost_power`` of TOST at margin ``effect`` when the true effect is 0, both
    with the registered seeds per fold, folds and family (level alpha / family), and the seeds
    per fold each would need for ``target`` power (``seeds_test``, ``seeds_tost``). ``sd``:
    the planning SD (default: the registered one)."""
    from topobook.study import stats

    sd = float(spec["power"]["planning_sd"][endpoint] if sd is None else sd)
    per_fold = int(spec["seeds"]["per_fold"])
    common = {"folds": len(spec["folds"]), "alpha": float(spec["analysis"]["alpha"]),
              "family_size": len(spec["endpoints"]["primary"]) * (len(spec["arms"]) - 1)}
    return {
        "effect": effect, "sd": sd, "seeds_per_fold": per_fold,
        "power": stats.paired_power(sd, effect, per_fold, **common)["power"],
        "tost_power": stats.tost_power(sd, effect, per_fold, **common),
        "seeds_test": stats.seeds_for_power(sd, effect, target, max_per_fold=5000, **common),
        "seeds_tost": stats.tost_seeds_for_power(sd, effect, target, max_per_fold=5000,
                                                 **common),
    }


def power_curve(spec: dict, endpoint: str, effects, sd: float | None = None):
    """The registered design's power as a function of the true effect on ``endpoint``: for each
    effect of ``effects`` (>= 0, in the endpoint's units) the power of the two-sided paired
    test to reject "no effect" (``test_power``, :func:`topobook.study.stats.paired_power`) and
    of TOST to declare equivalence within the registered margin (``tost_power``,
    :func:`topobook.study.stats.tost_power` with that true difference), with the registered
    seeds per fold, folds and family (each at level alpha / family, as :func:`design`).
    ``sd``: the planning SD (default: the registered one). Returns a DataFrame with columns
    ``effect``, ``test_power``, ``tost_power``."""
    import pandas as pd

    from topobook.study import stats

    effects = np.asarray(effects, dtype=float)
    if effects.ndim != 1 or effects.size == 0 or np.any(effects < 0):
        raise ValueError(f"effects must be a non-empty 1-D list of effects >= 0, got {effects}")
    if endpoint not in spec["endpoints"]["primary"]:
        raise ValueError(f"endpoint must be one of {list(spec['endpoints']['primary'])}, "
                         f"got {endpoint!r}")
    sd = float(spec["power"]["planning_sd"][endpoint] if sd is None else sd)
    margin = float(spec["endpoints"]["primary"][endpoint]["margin"])
    per_fold = int(spec["seeds"]["per_fold"])
    common = {"folds": len(spec["folds"]), "alpha": float(spec["analysis"]["alpha"]),
              "family_size": len(spec["endpoints"]["primary"]) * (len(spec["arms"]) - 1)}
    return pd.DataFrame({
        "effect": effects,
        "test_power": [stats.paired_power(sd, e, per_fold, **common)["power"] for e in effects],
        "tost_power": [stats.tost_power(sd, margin, per_fold, true_difference=e, **common)
                       for e in effects],
    })


def registration_fingerprint() -> dict:
    """What identifies the registration a page reads: the SHA-256 of the pre-registration
    (:data:`PREREGISTRATION`), of its record (:data:`RECORD`) and of this module (the analysis
    code), and ``commit``, the commit that added the pre-registration, read from git where the
    build has the repository's history (``None`` elsewhere, e.g. an installed package)."""
    import hashlib
    import subprocess

    digests = {f"sha256_{name}": hashlib.sha256(path.read_bytes()).hexdigest()
               for name, path in (("preregistration", PREREGISTRATION), ("record", RECORD),
                                  ("analysis", Path(__file__).resolve()))}
    try:
        found = subprocess.run(
            ["git", "log", "--follow", "--diff-filter=A", "--format=%h %cs", "--",
             PREREGISTRATION.name],
            cwd=PREREGISTRATION.parent, capture_output=True, text=True, timeout=30, check=True)
        commit = found.stdout.strip().splitlines()[-1] if found.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {**digests, "commit": commit}


def machine_count(runs: list[tuple[Path, TrainConfig]]) -> int:
    """How many distinct machines (:func:`topobook.training.machine.machine_key`) trained ``runs``;
    runs recorded before the machine record count as one unknown machine."""
    from topobook.training.machine import machine_key

    return len({machine_key(load_run(out_dir).get("machine")) for out_dir, _ in runs})


# ------------------------------------------------------------------------------ the analysis
