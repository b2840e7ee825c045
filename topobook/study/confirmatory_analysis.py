"""The analysis of chapter 7's confirmatory study: its runs' scores, the paired differences per
fold, the registered primary test (sign-flip over seeds, Holm across the family, TOST), the
secondary endpoints, per-slice effects, and the answer in words.

The design, the runs and the pre-registration are in :mod:`topobook.study.confirmatory`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from topobook.study.confirmatory import _pooled_sd, load_run
from topobook.training.config import TrainConfig


def study_scores(runs: list[tuple[Path, TrainConfig]], spec: dict):
    """One row per (fold, arm, seed) of the confirmatory runs: every metric of the evaluation
    slices at the run's operating point (``at_operating_point["mean"]``), the threshold, and
    the CPU minutes of the run. A ``pandas.DataFrame``."""
    import pandas as pd

    rows = []
    for out_dir, config in runs:
        fold, arm = Path(out_dir).parts[-3], Path(out_dir).parts[-2]
        if arm not in spec["arms"]:
            raise ValueError(f"{out_dir}: arm {arm!r} is not registered in the study")
        result = load_run(out_dir)
        at = result["at_operating_point"]
        rows.append({
            "fold": fold, "arm": arm, "seed": config.seed, "threshold": at["threshold"],
            **at["mean"],
            "cpu_minutes": (result["train_seconds"] + result["eval_seconds"]) / 60,
        })
    return pd.DataFrame(rows)


def study_slice_scores(runs: list[tuple[Path, TrainConfig]]):
    """One row per (fold, arm, seed, slice): the per-slice metrics at the run's operating point
    (for the forest plot of per-slice effects). A ``pandas.DataFrame``."""
    import pandas as pd

    rows = []
    for out_dir, config in runs:
        fold, arm = Path(out_dir).parts[-3], Path(out_dir).parts[-2]
        for row in load_run(out_dir)["at_operating_point"]["per_slice"]:
            rows.append({"fold": fold, "arm": arm, "seed": config.seed, **row})
    return pd.DataFrame(rows)


def paired_differences(scores, prior: str, metric: str):
    """``(differences, folds)``: prior - baseline of ``metric`` per (fold, seed), paired on the
    same fold and seed, in the order fold, seed. An error if a pair is missing."""
    wide = scores.pivot_table(index=["fold", "seed"], columns="arm", values=metric)
    if wide[[prior, "baseline"]].isna().any().any():
        raise ValueError(f"{metric}: a {prior} or baseline run is missing for some fold and seed")
    d = (wide[prior] - wide["baseline"]).sort_index()
    return d.to_numpy(dtype=float), [fold for fold, _ in d.index]


def primary_analysis(scores, spec: dict):
    """The pre-registered analysis of the primary family (every prior x primary endpoint):
    per comparison the mean paired difference ``delta`` (prior - baseline, metric units) with
    its 95 % Student interval over all pairs, the stratified sign-flip test
    (:func:`topobook.study.stats.stratified_sign_flip_test`: by fold, statistic the overall mean,
    two-sided; exact up to 40 pairs, else Monte Carlo with the pre-registered draws and seed),
    Holm over the family, and TOST within the pre-registered margin (sign-flip version,
    stratified, its p-values Holm-adjusted over the same family). Plus one descriptive row per
    fold (``fold`` = its name; ``"all"`` for the pre-registered test). A ``pandas.DataFrame``
    with ``prior, endpoint, fold, n, delta, low, high, improvement`` (``delta`` signed so that
    positive means better), and for ``fold == "all"``: ``p, p_holm, mc_se, method, rejected,
    tost_p, tost_p_holm, equivalent, margin``."""
    import pandas as pd

    from topobook.study import stats

    analysis = spec["analysis"]
    alpha, confidence = float(analysis["alpha"]), float(analysis["confidence"])
    draws, mc_seed = int(analysis["monte_carlo_draws"]), int(analysis["monte_carlo_seed"])
    rows = []
    for prior in [a for a in spec["arms"] if a != "baseline"]:
        for endpoint, info in spec["endpoints"]["primary"].items():
            d, folds = paired_differences(scores, prior, endpoint)
            sign = 1.0 if info["higher_is_better"] else -1.0
            test = stats.stratified_sign_flip_test(
                d, folds, statistic="mean", alternative="two-sided", draws=draws, seed=mc_seed)
            equivalence = stats.tost(d, float(info["margin"]), alpha, method="sign_flip",
                                     folds=folds, draws=draws, seed=mc_seed)
            low, high = stats.mean_interval(d, confidence)
            rows.append({
                "prior": prior, "endpoint": endpoint, "fold": "all", "n": d.size,
                "delta": float(d.mean()), "low": low, "high": high,
                "improvement": sign * float(d.mean()), "p": test["p_value"],
                "mc_se": test["mc_se"], "method": test["method"],
                "tost_p": equivalence["p_value"], "margin": float(info["margin"]),
            })
            for fold in sorted(set(folds)):
                mask = np.array([f == fold for f in folds])
                low, high = stats.mean_interval(d[mask], confidence)
                rows.append({
                    "prior": prior, "endpoint": endpoint, "fold": fold, "n": int(mask.sum()),
                    "delta": float(d[mask].mean()), "low": low, "high": high,
                    "improvement": sign * float(d[mask].mean()),
                })
    table = pd.DataFrame(rows)
    main = table["fold"] == "all"
    table.loc[main, "p_holm"] = stats.holm(table.loc[main, "p"].to_numpy())
    table.loc[main, "tost_p_holm"] = stats.holm(table.loc[main, "tost_p"].to_numpy())
    table.loc[main, "rejected"] = table.loc[main, "p_holm"] <= alpha
    table.loc[main, "equivalent"] = table.loc[main, "tost_p_holm"] <= alpha
    return table


def secondary_analysis(scores, spec: dict, primary):
    """Secondary endpoints, tested only for a prior whose primary family rejected at least once
    (the pre-registered gate), Holm over that prior's secondary family. Same columns as the
    primary table's ``fold == "all"`` rows without TOST; empty when no prior passed the gate."""
    import pandas as pd

    from topobook.study import stats

    analysis = spec["analysis"]
    rows = []
    passed = primary[(primary["fold"] == "all") & (primary["rejected"] == True)]  # noqa: E712
    for prior in sorted(set(passed["prior"])):
        family = []
        for endpoint, higher in spec["endpoints"]["secondary"].items():
            d, folds = paired_differences(scores, prior, endpoint)
            test = stats.stratified_sign_flip_test(
                d, folds, draws=int(analysis["monte_carlo_draws"]),
                seed=int(analysis["monte_carlo_seed"]))
            low, high = stats.mean_interval(d, float(analysis["confidence"]))
            family.append({
                "prior": prior, "endpoint": endpoint, "n": d.size, "delta": float(d.mean()),
                "low": low, "high": high,
                "improvement": (1.0 if higher else -1.0) * float(d.mean()),
                "p": test["p_value"],
            })
        adjusted = stats.holm([r["p"] for r in family])
        for row, p_holm in zip(family, adjusted, strict=True):
            rows.append({**row, "p_holm": float(p_holm),
                         "rejected": bool(p_holm <= float(analysis["alpha"]))})
    return pd.DataFrame(rows)


def slice_effects(slice_scores, prior: str, metric: str, confidence: float = 0.95):
    """Per evaluation slice of each fold: the mean over seeds of the paired difference (prior -
    baseline) of ``metric`` on that slice, with its Student interval over seeds (for the
    forest plot; descriptive, no test). A ``pandas.DataFrame`` ``fold, slice, n, delta, low,
    high``."""
    import pandas as pd

    from topobook.study import stats

    wide = slice_scores.pivot_table(index=["fold", "slice", "seed"], columns="arm", values=metric)
    d = (wide[prior] - wide["baseline"]).dropna()
    rows = []
    for (fold, slice_), values in d.groupby(level=["fold", "slice"]):
        v = values.to_numpy(dtype=float)
        low, high = stats.mean_interval(v, confidence)
        rows.append({"fold": fold, "slice": int(slice_), "n": v.size, "delta": float(v.mean()),
                     "low": low, "high": high})
    return pd.DataFrame(rows)


def answer(primary) -> dict[str, str]:
    """The study's answer for each prior, in words, from the primary table: ``"helps"`` /
    ``"hurts"`` with the endpoint when a test rejected; ``"no effect larger than the margins"``
    when TOST declared equivalence on every primary endpoint; else ``"inconclusive"`` (the
    interval holds neither a rejection nor equivalence)."""
    out = {}
    main = primary[primary["fold"] == "all"]
    for prior, rows in main.groupby("prior", sort=False):
        parts = []
        for row in rows.itertuples():
            if row.rejected:
                parts.append(f"{'helps' if row.improvement > 0 else 'hurts'} on {row.endpoint}")
        if parts:
            out[prior] = "; ".join(parts)
        elif bool(rows["equivalent"].all()):
            out[prior] = "no effect larger than the margins on either primary endpoint"
        else:
            out[prior] = "inconclusive: neither a difference nor equivalence is shown"
    return out


def seed_spread(scores, prior: str, metric: str) -> dict:
    """How much ``metric`` varies from seed to seed, pooled within folds (``scores``: rows of
    ``fold, arm, seed, <metric>``, as :func:`study_scores` gives): ``baseline_sd``, the SD over
    seeds of the baseline's score, and ``paired_sd``, the SD over seeds of the paired
    difference prior - baseline; each pooled over folds (df-weighted variances), with the pairs
    counted (``n``). These are the numbers a power calculation needs."""
    base = scores[scores["arm"] == "baseline"]
    d, folds = paired_differences(scores, prior, metric)
    folds = np.asarray(folds)
    return {
        "baseline_sd": _pooled_sd(rows[metric] for _, rows in base.groupby("fold"))[0],
        "paired_sd": _pooled_sd(d[folds == f] for f in np.unique(folds))[0],
        "n": int(d.size),
    }
