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
* :func:`expected_unanimous`: how many "better in every seed" comparisons chance alone gives.

The seed is the unit of replication: the intervals and tests over seeds ignore the variability
of the six evaluation slices (the same six slices are scored for every run).

For the pre-registered confirmatory study (several folds, many seeds):

* :func:`stratified_sign_flip_test`: the sign-flip test of paired differences stratified by
  fold, exact (all ``2**n`` sign patterns, counted by meeting in the middle) up to
  :data:`MAX_EXACT_PAIRS` pairs, else Monte Carlo with at least ``10**5`` draws, a seed and its
  Monte Carlo standard error.
* :func:`tost`: equivalence within ``±delta`` by two one-sided tests (paired t, or the
  stratified sign-flip test).
* :func:`paired_power`, :func:`seeds_for_power`, :func:`tost_power`,
  :func:`tost_seeds_for_power`: the power of the design and the number of seeds it needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_EXACT_PAIRS = 40  # 2**40 sign patterns, counted exactly from two halves of 2**20 sums each
MAX_EXACT_SEEDS = MAX_EXACT_PAIRS  # the older name
MIN_MONTE_CARLO_DRAWS = 100_000
_TOLERANCE = 1e-12  # relative: patterns equal to the observed one up to rounding count


def _differences(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need two 1-D arrays of equal, non-zero length, got {a.shape}, {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("values must be finite")
    return a - b


def _check_differences(differences) -> np.ndarray:
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"differences must be a non-empty 1-D array, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("differences must be finite")
    return d


def _all_sums(values: np.ndarray) -> np.ndarray:
    """The ``2**k`` sums ``sum(s_i * v_i)`` over every sign pattern ``s`` of ``k`` values."""
    sums = np.zeros(1)
    for v in values:
        sums = np.concatenate([sums + v, sums - v])
    return sums


def _count_at_least(a: np.ndarray, b_sorted: np.ndarray, bound: float) -> int:
    """Number of pairs ``(x, y)`` of ``a`` x ``b`` with ``x + y >= bound``."""
    return int(np.sum(b_sorted.size - np.searchsorted(b_sorted, bound - a, side="left")))


def _exact_p(weighted: np.ndarray, alternative: str) -> float:
    """Exact sign-flip p-value of ``T = sum(weighted)`` over all ``2**n`` patterns: for
    ``"two-sided"`` the share of patterns with ``|T*| >= |T|``, ``"greater"`` ``T* >= T``,
    ``"less"`` ``T* <= T`` (the observed pattern included). The two halves' sums are listed
    (``2**(n/2)`` each) and the pairs counted by binary search: exact, and fast up to n = 40."""
    half = weighted.size // 2
    a, b = _all_sums(weighted[:half]), np.sort(_all_sums(weighted[half:]))
    observed = float(weighted.sum())
    tol = _TOLERANCE * max(1.0, float(np.abs(weighted).sum()))
    total = a.size * b.size
    if alternative == "greater":
        return _count_at_least(a, b, observed - tol) / total
    if alternative == "less":  # T* <= T  <=>  -T* >= -T, and -b is b's pattern set too
        return _count_at_least(a, b, -observed - tol) / total
    if abs(observed) <= tol:
        return 1.0
    return 2 * _count_at_least(a, b, abs(observed) - tol) / total  # the two tails are mirrors


def _monte_carlo_p(
    weighted: np.ndarray, alternative: str, draws: int, seed: int
) -> tuple[float, float]:
    """Monte Carlo sign-flip p-value ``(1 + hits) / (1 + draws)`` (the observed pattern counted
    once: a valid p-value) and its Monte Carlo standard error ``sqrt(p (1 - p) / draws)``."""
    rng = np.random.default_rng(seed)
    observed = float(weighted.sum())
    tol = _TOLERANCE * max(1.0, float(np.abs(weighted).sum()))
    hits, done = 0, 0
    while done < draws:
        chunk = min(20_000, draws - done)
        signs = rng.integers(0, 2, size=(chunk, weighted.size)) * 2.0 - 1.0
        null = signs @ weighted
        if alternative == "greater":
            hits += int(np.sum(null >= observed - tol))
        elif alternative == "less":
            hits += int(np.sum(null <= observed + tol))
        else:
            hits += int(np.sum(np.abs(null) >= abs(observed) - tol))
        done += chunk
    p = (1 + hits) / (1 + draws)
    return p, float(np.sqrt(p * (1 - p) / draws))


def _fold_weights(n: int, folds, statistic: str) -> np.ndarray:
    labels = np.zeros(n, dtype=int) if folds is None else np.asarray(folds)
    if labels.shape != (n,):
        raise ValueError(f"folds must give one fold label per difference ({n}), got {labels.shape}")
    if statistic == "mean":
        return np.full(n, 1.0 / n)
    if statistic == "fold_mean":
        _, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
        return 1.0 / (counts.size * counts[index])
    raise ValueError(f"statistic must be 'mean' or 'fold_mean', got {statistic!r}")


def stratified_sign_flip_test(
    differences,
    folds: Sequence | None = None,
    statistic: str = "mean",
    alternative: str = "two-sided",
    draws: int = MIN_MONTE_CARLO_DRAWS,
    seed: int = 0,
    max_exact: int = MAX_EXACT_PAIRS,
) -> dict:
    """Sign-flip permutation test of paired differences, stratified by fold.

    ``differences``: ``(n,)`` paired differences (one per seed and fold); ``folds``: ``(n,)``
    fold labels (``None``: one fold). Null hypothesis: within each fold the differences are
    symmetric about 0 (the folds may differ in spread and in everything else). Under it every
    difference's sign may be flipped on its own, so the sign patterns of a stratified design are
    all ``2**n`` patterns, flipped within each fold; stratification enters through the statistic
    and the null, never by flipping a whole fold at once.

    ``statistic``: ``"mean"``, the overall mean difference ``sum(d) / n`` (each seed weighs the
    same; equivalent to the sum over folds of the fold sums), or ``"fold_mean"``, the mean over
    folds of the fold means (each fold weighs the same; equivalent to the sum over folds of the
    fold means). With equally many seeds per fold the two are the same test.
    ``alternative``: ``"two-sided"`` (``|T*| >= |T|``), ``"greater"`` (``T* >= T``) or
    ``"less"``.

    Exact (every pattern counted) when ``n <= max_exact`` (default 40); else Monte Carlo with
    ``draws >= 100000`` random patterns from ``numpy.random.default_rng(seed)``, the p-value
    ``(1 + hits) / (1 + draws)`` and its standard error. Returns ``{"p_value", "statistic"
    (the observed T), "method" ("exact" or "monte_carlo"), "n", "n_folds", "draws" (0 when
    exact), "mc_se" (0 when exact), "seed"}``.
    """
    d = _check_differences(differences)
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be two-sided, greater or less, got {alternative!r}")
    weights = _fold_weights(d.size, folds, statistic)
    weighted = weights * d
    n_folds = 1 if folds is None else int(np.unique(np.asarray(folds)).size)
    result = {"statistic": float(weighted.sum()), "n": int(d.size), "n_folds": n_folds}
    if d.size <= min(max_exact, MAX_EXACT_PAIRS):
        p = _exact_p(weighted, alternative)
        return {"p_value": p, **result, "method": "exact", "draws": 0, "mc_se": 0.0, "seed": None}
    if draws < MIN_MONTE_CARLO_DRAWS:
        raise ValueError(f"a Monte Carlo test needs at least {MIN_MONTE_CARLO_DRAWS} draws")
    p, se = _monte_carlo_p(weighted, alternative, draws, seed)
    return {"p_value": p, **result, "method": "monte_carlo", "draws": draws, "mc_se": se,
            "seed": seed}


def smallest_p_value(n: int) -> float:
    """The smallest two-sided p-value the exact sign-flip test can reach with ``n`` pairs."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return min(1.0, 2.0 ** (1 - n))  # a float power: 0.0 beyond float range, never an overflow


def expected_unanimous(seed_counts) -> float:
    """Expected number of comparisons whose every paired difference points to one given side
    ("better in every seed"), under the null hypothesis of the sign-flip test.

    ``seed_counts``: the number ``n_i >= 1`` of paired seeds of each comparison. Under the null
    each difference is positive or negative with probability 1/2, independently across seeds,
    so a comparison is unanimous on a given side with probability ``2**-n_i`` (a difference
    that is exactly 0 counts for neither side, so this is an upper bound with ties); the
    expectation of the count is ``sum_i 2**-n_i`` by linearity, whatever the dependence between
    comparisons (metrics of the same runs are correlated). ``k`` runs with ``n`` seeds each:
    ``k * 2**-n``.
    """
    counts = np.asarray(seed_counts)
    if counts.ndim != 1 or (counts.size and not np.issubdtype(counts.dtype, np.integer)):
        raise ValueError(f"seed_counts must be a 1-d sequence of integers, got {seed_counts!r}")
    if np.any(counts < 1):
        raise ValueError(f"every seed count must be >= 1, got {counts.tolist()}")
    return float(np.sum(0.5 ** counts.astype(float)))


def sign_flip_test(differences) -> float:
    """Two-sided exact p-value of the paired sign-flip permutation test of mean 0.

    ``differences``: the per-pair differences ``(n,)``, ``n <= MAX_EXACT_PAIRS``. The statistic
    is ``|mean(d)|``; every one of the ``2**n`` sign patterns counts (no sampling), and the
    observed pattern counts, so ``p >= 2 / 2**n`` (or 1 when all differences are 0). The same
    as :func:`stratified_sign_flip_test` with one fold.
    """
    d = _check_differences(differences)
    if d.size > MAX_EXACT_PAIRS:
        raise ValueError(f"at most {MAX_EXACT_PAIRS} pairs for the exact test, got {d.size}")
    return _exact_p(d / d.size, "two-sided")


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


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """The two-sided Student-t ``confidence`` interval of the mean of ``values`` ``(n,)``:
    ``mean -/+ t_{(1+c)/2, n-1} * sd / sqrt(n)``; ``(nan, nan)`` for fewer than two values."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean() - half), float(v.mean() + half)


def paired_comparison(values, baseline, confidence: float = 0.95) -> dict:
    """Compare a strategy with the baseline over paired seeds.

    ``values``, ``baseline``: one number per seed ``(n,)``, in the same seed order. Returns
    ``mean_difference`` (values - baseline), ``low`` and ``high`` (Student-t interval of the mean
    difference; equal to the mean for n = 1), ``p_value`` (exact sign-flip test), ``n`` and
    ``differences`` (per seed).
    """
    d = _differences(values, baseline)
    mean = float(d.mean())
    low, high = mean_interval(d, confidence) if d.size > 1 else (mean, mean)
    return {
        "mean_difference": mean,
        "low": low,
        "high": high,
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
    ``mean_difference``, ``low``, ``high``, ``p_value``, ``p_holm``, ``smallest_reachable_p``
    (the smallest Holm-adjusted p-value this comparison could reach with its ``n`` seeds in a
    family of ``m`` comparisons: ``min(1, m * 2 / 2**n)``), ``rejected`` (``p_holm <= alpha``),
    ``verdict`` and ``differences`` (per seed, in seed order). The verdict at family-wise level
    ``alpha``: ``"better"`` or ``"worse"`` when rejected; ``"inconclusive (smallest reachable p =
    X > alpha = A)"`` when the design cannot reach ``alpha`` at all (then nothing can be
    concluded either way); otherwise ``"no detectable difference"`` (the design could have
    detected a consistent difference, and did not).
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
    m = len(table)
    table["smallest_reachable_p"] = [min(1.0, m * smallest_p_value(int(n))) for n in table["n"]]
    table["rejected"] = table["p_holm"].to_numpy() <= alpha
    table["verdict"] = [
        _verdict(up, rejected, reachable, alpha)
        for up, rejected, reachable in zip(
            improved, table["rejected"], table["smallest_reachable_p"], strict=True
        )
    ]
    columns = ["run", "metric", "n", "mean_difference", "low", "high", "p_value", "p_holm"]
    return table[[*columns, "smallest_reachable_p", "rejected", "verdict", "differences"]]


def _verdict(improvement: float, rejected: bool, reachable: float, alpha: float) -> str:
    if rejected:
        return "better" if improvement > 0 else "worse"
    if reachable > alpha:
        return f"inconclusive (smallest reachable p = {reachable:.4g} > alpha = {alpha:g})"
    return "no detectable difference"


def tost(
    differences,
    delta: float,
    alpha: float = 0.05,
    method: str = "t",
    folds: Sequence | None = None,
    draws: int = MIN_MONTE_CARLO_DRAWS,
    seed: int = 0,
) -> dict:
    """Equivalence of paired differences within ``±delta``: two one-sided tests (TOST).

    ``differences``: ``(n,)`` paired differences; ``delta > 0``: the pre-registered margin, in
    the metric's units. The two null hypotheses are ``mean <= -delta`` and ``mean >= +delta``;
    equivalence ("no effect larger than delta") is declared when **both** are rejected at level
    ``alpha``, i.e. ``max(p_lower, p_upper) <= alpha``.

    ``method="t"``: the paired t version (normal differences): ``p_lower`` = upper tail of
    ``t = (mean + delta) / se``, ``p_upper`` = lower tail of ``(mean - delta) / se``, with
    ``n - 1`` degrees of freedom; it rejects exactly when the ``1 - 2 alpha`` Student interval
    (returned as ``low``, ``high``) lies inside ``(-delta, delta)``. ``method="sign_flip"``: the
    same two one-sided hypotheses tested by :func:`stratified_sign_flip_test` of ``d + delta``
    (``"greater"``) and ``d - delta`` (``"less"``), which assumes the differences symmetric about
    the boundary value under each null (stratified by ``folds``; exact or Monte Carlo, as there).

    Returns ``{"p_lower", "p_upper", "p_value" (the larger), "equivalent" (bool), "delta",
    "alpha", "method", "mean_difference", "low", "high", "n"}``.
    """
    from scipy import stats

    d = _check_differences(differences)
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a positive number, got {delta!r}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha!r}")
    if d.size < 2:
        raise ValueError("TOST needs at least two differences")
    mean, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))
    half = float(stats.t.ppf(1 - alpha, d.size - 1) * se)
    if method == "t":
        if se == 0:
            p_lower, p_upper = float(mean <= -delta), float(mean >= delta)
        else:
            p_lower = float(stats.t.sf((mean + delta) / se, d.size - 1))
            p_upper = float(stats.t.cdf((mean - delta) / se, d.size - 1))
    elif method == "sign_flip":
        common = {"folds": folds, "draws": draws, "seed": seed}
        p_lower = stratified_sign_flip_test(d + delta, alternative="greater", **common)["p_value"]
        p_upper = stratified_sign_flip_test(d - delta, alternative="less", **common)["p_value"]
    else:
        raise ValueError(f"method must be 't' or 'sign_flip', got {method!r}")
    p = max(p_lower, p_upper)
    return {
        "p_lower": p_lower,
        "p_upper": p_upper,
        "p_value": p,
        "equivalent": bool(p <= alpha),
        "delta": float(delta),
        "alpha": float(alpha),
        "method": method,
        "mean_difference": mean,
        "low": mean - half,
        "high": mean + half,
        "n": int(d.size),
    }


def _check_design(sd: float, n_per_fold: int, folds: int, alpha: float, family_size: int) -> int:
    if not (np.isfinite(sd) and sd > 0):
        raise ValueError(f"sd must be a positive number, got {sd!r}")
    if n_per_fold < 1 or folds < 1 or family_size < 1:
        raise ValueError("n_per_fold, folds and family_size must be >= 1")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    return int(n_per_fold) * int(folds)


def paired_power(
    sd: float,
    effect: float,
    n_per_fold: int,
    folds: int = 2,
    alpha: float = 0.05,
    family_size: int = 1,
    method: str = "t",
    n_sim: int = 4000,
    draws: int = 2000,
    seed: int = 0,
) -> dict:
    """Power of the two-sided paired test of a mean difference in the confirmatory design.

    Assumptions: the per-seed paired differences are independent and normal with mean
    ``effect`` and standard deviation ``sd`` (the per-seed SD of the paired difference) in every
    fold; ``n_per_fold`` seeds in each of ``folds`` folds (``n = n_per_fold * folds`` pairs);
    the test is at level ``alpha / family_size`` (Holm's first step, i.e. Bonferroni: a lower
    bound on Holm's power for this comparison whatever the others do).

    ``method="t"`` (analytic): the paired t test's power from the noncentral t distribution
    (``n - 1`` degrees of freedom, noncentrality ``effect * sqrt(n) / sd``), an approximation
    to the sign-flip test's power, except that it is set to 0 when the exact sign-flip test
    cannot reach the level at all (``2 / 2**n > alpha / family_size``).
    ``method="sign_flip"`` (simulation): ``n_sim`` data sets drawn with ``seed``, each tested by
    the sign-flip test of the overall mean with ``draws`` random sign patterns (shared by the
    data sets; p = ``(1 + hits) / (1 + draws)``); the power is the share of rejections, with its
    Monte Carlo standard error. The folds enter only through ``n``: with equally many seeds per
    fold and the same distribution in each, the stratified test with ``statistic="mean"`` is
    the plain sign-flip test of all ``n`` differences.

    Returns ``{"power", "mc_se", "method", "n", "level"}``.
    """
    from scipy import stats

    n = _check_design(sd, n_per_fold, folds, alpha, family_size)
    level = alpha / family_size
    if method == "t":
        if n < 2 or smallest_p_value(n) > level:
            power = 0.0
        else:
            crit = stats.t.ppf(1 - level / 2, n - 1)
            ncp = effect * np.sqrt(n) / sd
            # the lower tail by symmetry, P(T <= -c; ncp) = P(T >= c; -ncp): scipy's nct.cdf
            # returns NaN far in the tail (seen at ncp 8.5, 7 df), its sf there returns 0
            power = float(stats.nct.sf(crit, n - 1, ncp) + stats.nct.sf(crit, n - 1, -ncp))
        return {"power": power, "mc_se": 0.0, "method": "t", "n": n, "level": level}
    if method != "sign_flip":
        raise ValueError(f"method must be 't' or 'sign_flip', got {method!r}")
    rng = np.random.default_rng(seed)
    data = rng.normal(effect, sd, size=(n, n_sim))
    signs = rng.integers(0, 2, size=(draws, n)) * 2.0 - 1.0
    observed = np.abs(data.sum(axis=0))
    hits = np.zeros(n_sim)
    for start in range(0, draws, 500):
        null = np.abs(signs[start : start + 500] @ data)
        hits += np.sum(null >= observed - _TOLERANCE * np.abs(data).sum(axis=0), axis=0)
    p = (1 + hits) / (1 + draws)
    power = float(np.mean(p <= level))
    se = float(np.sqrt(power * (1 - power) / n_sim))
    return {"power": power, "mc_se": se, "method": "sign_flip", "n": n, "level": level}


def _smallest_seed_count(power_of, target: float, max_per_fold: int, what: str) -> int:
    """The smallest ``n`` in 1..``max_per_fold`` with ``power_of(n) >= target``."""
    if not 0 < target < 1:
        raise ValueError(f"target must lie in (0, 1), got {target!r}")
    # Power grows with n, so the first n that reaches the target is found by doubling, then
    # bisection: a few evaluations of power_of instead of one per n.
    low, high = 0, 1  # invariant: power_of(high) >= target (once found), power_of(low) < target
    while power_of(high) < target:
        if high >= max_per_fold:
            raise ValueError(f"{what} {target} not reached with {max_per_fold} seeds per fold")
        low, high = high, min(2 * high, max_per_fold)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if power_of(middle) >= target else (middle, high)
    return high


def seeds_for_power(
    sd: float,
    effect: float,
    target: float = 0.8,
    folds: int = 2,
    alpha: float = 0.05,
    family_size: int = 1,
    max_per_fold: int = 1000,
) -> int:
    """The smallest number of seeds per fold whose :func:`paired_power` (``method="t"``, same
    assumptions) reaches ``target``; a ``ValueError`` if none up to ``max_per_fold`` does."""
    return _smallest_seed_count(
        lambda n: paired_power(sd, effect, n, folds, alpha, family_size)["power"],
        target, max_per_fold, "power",
    )


def tost_power(
    sd: float,
    delta: float,
    n_per_fold: int,
    folds: int = 2,
    true_difference: float = 0.0,
    alpha: float = 0.05,
    family_size: int = 1,
) -> float:
    """Power of the paired-t TOST (:func:`tost`, ``method="t"``) to declare equivalence within
    ``±delta`` when the true mean difference is ``true_difference``.

    Assumptions: independent normal paired differences (SD ``sd``), ``n = n_per_fold * folds``
    of them, each one-sided test at level ``alpha / family_size``. Exact for those assumptions:
    the sample mean ``m ~ N(mu, sd^2 / n)`` and SD ``s`` are independent, ``(n - 1) s^2 / sd^2``
    is chi-square with ``n - 1`` degrees of freedom, and TOST declares equivalence when
    ``|m| <= delta - c s / sqrt(n)`` (``c`` the ``1 - level`` Student quantile); the power is
    that probability integrated over the distribution of ``s`` (numerically)."""
    from scipy import integrate, stats

    n = _check_design(sd, n_per_fold, folds, alpha, family_size)
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a positive number, got {delta!r}")
    if n < 2:
        return 0.0
    level = alpha / family_size
    c = stats.t.ppf(1 - level, n - 1)
    df, se_scale = n - 1, sd / np.sqrt(n)
    # s = sd * sqrt(v / df) with v ~ chi2(df); equivalence needs c s / sqrt(n) < delta
    v_max = df * (delta / (c * se_scale)) ** 2

    def given_v(v: float) -> float:
        margin = delta - c * se_scale * np.sqrt(v / df)
        inside = stats.norm.cdf((margin - true_difference) / se_scale) - stats.norm.cdf(
            (-margin - true_difference) / se_scale
        )
        return max(inside, 0.0) * stats.chi2.pdf(v, df)

    power, _ = integrate.quad(given_v, 0.0, v_max, limit=200)
    return float(min(max(power, 0.0), 1.0))


def tost_seeds_for_power(
    sd: float,
    delta: float,
    target: float = 0.8,
    folds: int = 2,
    true_difference: float = 0.0,
    alpha: float = 0.05,
    family_size: int = 1,
    max_per_fold: int = 1000,
) -> int:
    """The smallest number of seeds per fold whose :func:`tost_power` reaches ``target``."""
    return _smallest_seed_count(
        lambda n: tost_power(sd, delta, n, folds, true_difference, alpha, family_size),
        target, max_per_fold, "TOST power",
    )
