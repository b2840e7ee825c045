"""Paired statistics over seeds: is a strategy better than the baseline?

The runs of a strategy and of the baseline are *paired* by seed: the same seed gives the same
initial weights and the same sequence of training patches. So the right question is whether the
per-seed differences ``d_s = metric(strategy, seed s) - metric(baseline, seed s)`` are centred
away from zero, not whether two confidence intervals overlap (overlap is a much stricter, and
wrong, test of a difference).

* :func:`sign_flip_test`: the exact paired permutation test. Under the null hypothesis (no
  difference) each ``d_s`` is as likely to be positive as negative; the p-value is the fraction
  of all ``2**n`` sign patterns whose mean is at least as far from 0 as the observed one
  (two-sided). With ``n`` seeds the smallest p-value it can give is ``2 / 2**n``
  (:func:`smallest_p_value`): 0.0625 for 5 seeds, 0.0078 for 8.
* :func:`holm`: Holm's step-down correction of a family of p-values (controls the probability of
  any false verdict in the family).
* :func:`paired_comparison`: mean difference, its Student-t 95 % interval, the test.

The seed is the unit of replication: the intervals and tests over seeds ignore the variability
of the six evaluation slices (the same six slices are scored for every run).
"""

from __future__ import annotations

import itertools

import numpy as np

MAX_EXACT_SEEDS = 20  # 2**20 sign patterns; beyond this the exact test is too slow


def _differences(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need two 1-D arrays of equal, non-zero length, got {a.shape}, {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("values must be finite")
    return a - b


def smallest_p_value(n: int) -> float:
    """The smallest two-sided p-value the exact sign-flip test can reach with ``n`` pairs."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return min(1.0, 2.0 / 2**n)


def sign_flip_test(differences) -> float:
    """Two-sided exact p-value of the paired sign-flip permutation test of mean 0.

    ``differences``: the per-pair differences ``(n,)``, ``n <= 20``. The statistic is
    ``|mean(d)|``; every one of the ``2**n`` sign patterns is enumerated (no sampling), and the
    observed pattern counts, so ``p >= 2 / 2**n`` (or 1 when all differences are 0).
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"differences must be a non-empty 1-D array, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("differences must be finite")
    if d.size > MAX_EXACT_SEEDS:
        raise ValueError(f"at most {MAX_EXACT_SEEDS} pairs for the exact test, got {d.size}")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    means = np.abs(signs @ d) / d.size
    observed = abs(d.mean())
    # a relative tolerance so that patterns equal to the observed one up to rounding count
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order (each in [0, 1]).

    Sort the ``m`` p-values ascending, multiply the k-th smallest (k = 0, 1, ...) by ``m - k``,
    make the sequence non-decreasing and cap it at 1. A hypothesis is rejected at level alpha
    when its adjusted p-value is <= alpha.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted


def paired_comparison(values, baseline, confidence: float = 0.95) -> dict:
    """Compare a strategy with the baseline over paired seeds.

    ``values``, ``baseline``: one number per seed ``(n,)``, in the same seed order. Returns
    ``mean_difference`` (values - baseline), ``low`` and ``high`` (Student-t interval of the mean
    difference; equal to the mean for n = 1), ``p_value`` (exact sign-flip test), ``n`` and
    ``differences`` (per seed).
    """
    from scipy import stats

    d = _differences(values, baseline)
    mean = float(d.mean())
    if d.size > 1:
        t = stats.t.ppf(0.5 + confidence / 2, d.size - 1)
        half = float(t * d.std(ddof=1) / np.sqrt(d.size))
    else:
        half = 0.0
    return {
        "mean_difference": mean,
        "low": mean - half,
        "high": mean + half,
        "p_value": sign_flip_test(d),
        "n": int(d.size),
        "differences": d.tolist(),
    }


def compare_with_baseline(
    scores: dict[str, dict[int, dict[str, float]]],
    baseline: str,
    metrics: dict[str, bool],
    alpha: float = 0.05,
    confidence: float = 0.95,
):
    """Every strategy against the baseline on every metric, paired by seed, Holm-corrected.

    ``scores[run][seed][metric]``: one number per run, seed and metric. Each run is paired with
    the baseline on the seeds both have (at least two; a run with fewer seeds than the baseline,
    such as a sweep, is compared on its own seeds). ``metrics``: metric -> True when higher is
    better. The family for Holm's correction is every (run, metric) comparison of the table.
    Returns a ``pandas.DataFrame`` with one row per comparison: ``run``, ``metric``, ``n``,
    ``mean_difference``, ``low``, ``high``, ``p_value``, ``p_holm``, ``verdict`` ("better",
    "worse" or "no detectable difference" at family-wise level ``alpha``) and ``differences``
    (per seed, in seed order).
    """
    import pandas as pd

    if baseline not in scores:
        raise ValueError(f"baseline run {baseline!r} not among {sorted(scores)}")
    rows = []
    for run, by_seed in scores.items():
        if run == baseline:
            continue
        seeds = sorted(set(by_seed) & set(scores[baseline]))
        if len(seeds) < 2:
            raise ValueError(
                f"run {run!r} shares {len(seeds)} seed(s) with the baseline ({sorted(by_seed)} "
                f"vs {sorted(scores[baseline])}): runs are paired by seed and need at least two"
            )
        for metric in metrics:
            result = paired_comparison(
                [by_seed[s][metric] for s in seeds],
                [scores[baseline][s][metric] for s in seeds],
                confidence,
            )
            rows.append({"run": run, "metric": metric, **result})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_holm"] = holm(table["p_value"].to_numpy())
    improved = table["mean_difference"].to_numpy() * [
        1 if metrics[m] else -1 for m in table["metric"]
    ]
    table["verdict"] = [
        ("better" if up > 0 else "worse") if p <= alpha else "no detectable difference"
        for up, p in zip(improved, table["p_holm"], strict=True)
    ]
    columns = ["run", "metric", "n", "mean_difference", "low", "high", "p_value", "p_holm"]
    return table[[*columns, "verdict", "differences"]]
