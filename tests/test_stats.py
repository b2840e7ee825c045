"""Paired statistics over seeds, checked against hand-worked cases and scipy."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from topobook.study import stats


def test_sign_flip_test_by_hand():
    # d = (1, 2, 3): of the 8 sign patterns only (+,+,+) and (-,-,-) reach |mean| = 2
    assert stats.sign_flip_test([1, 2, 3]) == pytest.approx(2 / 8)
    # d = (1, -1): every pattern has |mean| 0 or 1; observed 0 -> all 4 count
    assert stats.sign_flip_test([1, -1]) == 1.0
    # (3, 1, -1): |mean| of the 8 patterns: 1, 5/3, 1/3, 1, 1, 1/3, 5/3, 1 -> 6 of 8 reach 1
    assert stats.sign_flip_test([3, 1, -1]) == pytest.approx(6 / 8)
    assert stats.sign_flip_test([0, 0, 0]) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_sign_flip_test_matches_scipy_permutation_test(seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(0.3, 1.0, 7)
    ours = stats.sign_flip_test(d)
    theirs = scipy_stats.permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    ).pvalue
    assert ours == pytest.approx(theirs)


def test_smallest_p_value_is_reached_by_a_consistent_difference():
    for n in (3, 5, 8):
        assert stats.sign_flip_test(np.arange(1, n + 1)) == pytest.approx(stats.smallest_p_value(n))
    assert stats.smallest_p_value(5) == 0.0625
    assert stats.smallest_p_value(2000) == 0.0  # beyond float range: 0, not an OverflowError


def test_holm_by_hand_and_order():
    # sorted: 0.01*4=0.04, 0.02*3=0.06, 0.03*2=0.06 (monotone), 0.5*1=0.5
    adjusted = stats.holm([0.03, 0.01, 0.5, 0.02])
    assert adjusted == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]).size == 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.holm([0.5, 1.5])


def test_holm_is_never_below_the_raw_p_and_controls_like_bonferroni_at_the_top():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 12)
    adjusted = stats.holm(p)
    assert np.all(adjusted >= p - 1e-15)
    assert adjusted.min() == pytest.approx(min(1.0, p.min() * p.size))


def test_paired_comparison():
    base = np.array([0.80, 0.85, 0.90, 0.75, 0.82])
    better = base + np.array([0.02, 0.03, 0.01, 0.04, 0.02])
    result = stats.paired_comparison(better, base)
    assert result["mean_difference"] == pytest.approx(0.024)
    assert result["low"] < 0.024 < result["high"]
    assert result["p_value"] == pytest.approx(1 / 16)  # all positive: the smallest p for 5
    # the interval is the one-sample t interval of the differences
    d = better - base
    low, high = scipy_stats.t.interval(0.95, 4, loc=d.mean(), scale=scipy_stats.sem(d))
    assert (result["low"], result["high"]) == pytest.approx((low, high))
    with pytest.raises(ValueError, match="equal"):
        stats.paired_comparison([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        stats.paired_comparison([1, np.nan], [1, 2])


def test_compare_with_baseline_pairs_by_seed_and_corrects_over_the_table():
    rng = np.random.default_rng(0)
    base = {s: {"dice": 0.9 + 0.01 * rng.normal(), "betti": 2 + rng.normal()} for s in range(8)}
    # clearly better Dice and clearly lower (better) Betti error for every seed
    good = {s: {"dice": base[s]["dice"] + 0.05, "betti": base[s]["betti"] - 1} for s in range(8)}
    same = {s: dict(base[s]) for s in range(8)}
    table = stats.compare_with_baseline(
        {"baseline": base, "good": good, "same": same}, "baseline", {"dice": True, "betti": False}
    )
    assert len(table) == 4
    row = table[(table.run == "good") & (table.metric == "dice")].iloc[0]
    assert row.mean_difference == pytest.approx(0.05) and row.p_value == pytest.approx(2 / 256)
    assert row.p_holm == pytest.approx(4 * 2 / 256)  # the two smallest of 4: times 4 and 3
    # with 6 seeds the same consistent gain cannot pass Holm over 4 comparisons: 4 * 2/64 > 0.05
    six = {run: {s: v[s] for s in range(6)} for run, v in (("baseline", base), ("good", good))}
    six["same"] = {s: same[s] for s in range(6)}
    small = stats.compare_with_baseline(six, "baseline", {"dice": True, "betti": False})
    # the design cannot reach alpha at all: inconclusive, never "no detectable difference"
    assert set(small.verdict) == {"inconclusive (smallest reachable p = 0.125 > alpha = 0.05)"}
    assert not small.rejected.any() and (small.smallest_reachable_p == 4 * 2 / 64).all()
    assert row.verdict == "better"
    assert table[(table.run == "good") & (table.metric == "betti")].iloc[0].verdict == "better"
    # 8 seeds, 4 comparisons: 4 * 2/256 <= 0.05, so a consistent difference was detectable
    assert set(table[table.run == "same"].verdict) == {"no detectable difference"}
    assert list(table.rejected) == [True, True, False, False]
    # a run with fewer seeds is paired on the seeds it shares with the baseline
    three = {s: good[s] for s in (2, 4, 5)}
    row = stats.compare_with_baseline(
        {"baseline": base, "three": three}, "baseline", {"dice": True}
    ).iloc[0]
    assert row.n == 3 and row.differences == pytest.approx([0.05] * 3)
    with pytest.raises(ValueError, match="paired by seed"):
        stats.compare_with_baseline(
            {"baseline": base, "short": {0: base[0]}}, "baseline", {"dice": True}
        )


# ---------------------------------------------------------------------------------------------
# The confirmatory study: stratified sign-flip test, TOST, power
# ---------------------------------------------------------------------------------------------


def brute_force_sign_flip(d, weights, alternative):
    """Oracle: every sign pattern enumerated."""
    import itertools

    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    null, observed = signs @ (weights * d), float(np.sum(weights * d))
    tol = 1e-12 * max(1.0, float(np.abs(weights * d).sum()))
    if alternative == "greater":
        return float(np.mean(null >= observed - tol))
    if alternative == "less":
        return float(np.mean(null <= observed + tol))
    return float(np.mean(np.abs(null) >= abs(observed) - tol))


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("statistic", ["mean", "fold_mean"])
def test_stratified_sign_flip_exact_matches_enumeration(alternative, statistic):
    rng = np.random.default_rng(3)
    d = rng.normal(0.2, 1.0, 11)
    folds = np.array([0] * 4 + [1] * 7)  # unequal folds: the two statistics differ
    counts = np.bincount(folds)
    weights = np.full(11, 1 / 11) if statistic == "mean" else 1 / (2 * counts[folds])
    result = stats.stratified_sign_flip_test(d, folds, statistic, alternative)
    assert result["method"] == "exact" and result["mc_se"] == 0.0
    assert result["p_value"] == pytest.approx(brute_force_sign_flip(d, weights, alternative))
    assert result["statistic"] == pytest.approx(np.sum(weights * d))


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_stratified_sign_flip_one_fold_matches_scipy(alternative):
    d = np.random.default_rng(4).normal(0.4, 1.0, 10)
    theirs = scipy_stats.permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative=alternative
    ).pvalue
    assert stats.stratified_sign_flip_test(d, alternative=alternative)["p_value"] == (
        pytest.approx(theirs)
    )
    assert stats.sign_flip_test(d) == pytest.approx(
        stats.stratified_sign_flip_test(d)["p_value"]
    )


def test_equal_folds_make_the_two_statistics_the_same_test():
    d = np.random.default_rng(5).normal(0.3, 1.0, 12)
    folds = np.repeat([0, 1], 6)
    a = stats.stratified_sign_flip_test(d, folds, "mean")["p_value"]
    assert a == pytest.approx(stats.stratified_sign_flip_test(d, folds, "fold_mean")["p_value"])


def test_monte_carlo_agrees_with_the_exact_count_within_its_error():
    d = np.random.default_rng(6).normal(0.25, 1.0, 30)
    folds = np.repeat([0, 1], 15)
    exact = stats.stratified_sign_flip_test(d, folds)
    assert exact["method"] == "exact" and exact["n_folds"] == 2
    mc = stats.stratified_sign_flip_test(d, folds, max_exact=10, draws=100_000, seed=1)
    assert mc["method"] == "monte_carlo" and mc["draws"] == 100_000 and mc["seed"] == 1
    assert mc["mc_se"] == pytest.approx(np.sqrt(mc["p_value"] * (1 - mc["p_value"]) / 1e5))
    assert abs(mc["p_value"] - exact["p_value"]) < 4 * mc["mc_se"] + 1e-5
    again = stats.stratified_sign_flip_test(d, folds, max_exact=10, draws=100_000, seed=1)
    assert again["p_value"] == mc["p_value"]  # seeded
    # beyond MAX_EXACT_PAIRS pairs the test is Monte Carlo by default
    big = stats.stratified_sign_flip_test(np.ones(41), draws=100_000)
    assert big["method"] == "monte_carlo" and big["p_value"] == pytest.approx(1 / 100_001)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: stats.stratified_sign_flip_test([]), "non-empty"),
        (lambda: stats.stratified_sign_flip_test([1.0, np.nan]), "finite"),
        (lambda: stats.stratified_sign_flip_test([1.0, 2.0], folds=[0]), "fold label"),
        (lambda: stats.stratified_sign_flip_test([1.0, 2.0], statistic="median"), "statistic"),
        (lambda: stats.stratified_sign_flip_test([1.0, 2.0], alternative="up"), "alternative"),
        (lambda: stats.stratified_sign_flip_test(np.ones(50), draws=1000), "draws"),
        (lambda: stats.tost([0.1, 0.2], delta=0), "delta"),
        (lambda: stats.tost([0.1], delta=1), "two"),
        (lambda: stats.tost([0.1, 0.2], delta=1, method="z"), "method"),
        (lambda: stats.paired_power(0, 1, 5), "sd"),
        (lambda: stats.paired_power(1, 1, 0), ">= 1"),
        (lambda: stats.seeds_for_power(1.0, 1e-6, max_per_fold=5), "not reached"),
    ],
)
def test_confirmatory_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_tost_t_matches_two_one_sided_scipy_tests_and_the_interval():
    rng = np.random.default_rng(7)
    for delta, shift in ((0.05, 0.0), (0.05, 0.04), (0.02, 0.0)):
        d = rng.normal(shift, 0.03, 12)
        result = stats.tost(d, delta)
        lower = scipy_stats.ttest_1samp(d, -delta, alternative="greater").pvalue
        upper = scipy_stats.ttest_1samp(d, delta, alternative="less").pvalue
        assert result["p_lower"] == pytest.approx(lower)
        assert result["p_upper"] == pytest.approx(upper)
        low, high = scipy_stats.t.interval(0.90, 11, loc=d.mean(), scale=scipy_stats.sem(d))
        assert (result["low"], result["high"]) == pytest.approx((low, high))
        assert result["equivalent"] == (-delta < low and high < delta)


def test_tost_sign_flip_by_hand():
    # all ten differences inside the margin and far from both boundaries: each one-sided
    # sign-flip test reaches its floor 1 / 2**10
    d = np.linspace(-0.01, 0.01, 10)
    result = stats.tost(d, delta=0.1, method="sign_flip")
    assert result["p_lower"] == result["p_upper"] == pytest.approx(1 / 1024)
    assert result["equivalent"]
    # a clear effect of 0.2 is not equivalent within 0.1
    assert not stats.tost(d + 0.2, delta=0.1, method="sign_flip")["equivalent"]


def test_paired_power_t_matches_a_simulated_t_test():
    rng = np.random.default_rng(8)
    sd, effect, n_per_fold = 1.0, 0.6, 6
    analytic = stats.paired_power(sd, effect, n_per_fold, folds=2, family_size=2)["power"]
    data = rng.normal(effect, sd, (4000, 12))
    simulated = np.mean(scipy_stats.ttest_1samp(data, 0, axis=1).pvalue <= 0.025)
    assert analytic == pytest.approx(simulated, abs=4 * np.sqrt(0.25 / 4000))
    # a design whose exact sign-flip test cannot reach the level has no power
    assert stats.paired_power(sd, 10.0, 2, folds=2)["power"] == 0.0  # 2/16 > 0.05


def test_paired_power_of_the_sign_flip_test_is_close_to_the_t_tests():
    t_power = stats.paired_power(1.0, 0.7, 8, folds=2)["power"]
    sim = stats.paired_power(1.0, 0.7, 8, folds=2, method="sign_flip", n_sim=3000, draws=2000)
    assert sim["method"] == "sign_flip" and sim["mc_se"] > 0
    assert abs(sim["power"] - t_power) < 0.03 + 4 * sim["mc_se"]


def test_seeds_for_power_is_the_textbook_number_and_minimal():
    # one-sample t test, d = 0.5, alpha = 0.05 two-sided, power 0.8: n = 34 (Cohen's tables)
    assert stats.seeds_for_power(1.0, 0.5, target=0.8, folds=1) == 34
    n = stats.seeds_for_power(0.026, 0.015, target=0.8, folds=2, family_size=2)
    assert stats.paired_power(0.026, 0.015, n, 2, family_size=2)["power"] >= 0.8
    assert stats.paired_power(0.026, 0.015, n - 1, 2, family_size=2)["power"] < 0.8


@pytest.mark.parametrize("true_difference", [0.0, 0.01])
def test_tost_power_matches_simulation(true_difference):
    rng = np.random.default_rng(9)
    sd, delta, n_per_fold = 0.03, 0.025, 6
    analytic = stats.tost_power(sd, delta, n_per_fold, folds=2, true_difference=true_difference)
    data = rng.normal(true_difference, sd, (4000, 12))
    mean, se = data.mean(axis=1), data.std(axis=1, ddof=1) / np.sqrt(12)
    c = scipy_stats.t.ppf(0.95, 11)
    simulated = np.mean((mean - c * se > -delta) & (mean + c * se < delta))
    assert analytic == pytest.approx(simulated, abs=4 * np.sqrt(0.25 / 4000))
    n = stats.tost_seeds_for_power(sd, delta, target=0.8, folds=2)
    assert stats.tost_power(sd, delta, n, 2) >= 0.8 > stats.tost_power(sd, delta, n - 1, 2)


def test_expected_unanimous_by_hand_and_by_simulation():
    # 6 runs x 5 seeds: 6 / 32; mixed seed counts add up
    assert stats.expected_unanimous([5] * 6) == pytest.approx(6 / 32)
    assert stats.expected_unanimous([5, 3, 3]) == pytest.approx(1 / 32 + 2 / 8)
    assert stats.expected_unanimous([]) == 0.0
    # simulation under the null: symmetric differences, comparisons correlated on purpose
    rng = np.random.default_rng(0)
    draws, counts = 20_000, [5, 5, 3]
    shared = rng.standard_normal((draws, 5))
    total = 0
    for n in counts:
        d = shared[:, :n] + 0.5 * rng.standard_normal((draws, n))  # correlated with the others
        total += np.sum(np.all(d > 0, axis=1))
    expected = stats.expected_unanimous(counts)
    se = np.sqrt(expected / draws)  # Poisson-like bound on the error of the mean count
    assert abs(total / draws - expected) < 5 * se


@pytest.mark.parametrize("bad", [[0, 5], [2.5], [[5, 5]]])
def test_expected_unanimous_rejects_bad_counts(bad):
    with pytest.raises(ValueError):
        stats.expected_unanimous(bad)


def test_paired_power_is_finite_far_in_the_tail():
    """scipy's noncentral t cdf returns NaN far in its lower tail (noncentrality 8.5, 7 df, seen
    with scipy 1.17): the power must still be a number, near 1, and the seed search must not
    skip the seed counts where it was NaN (it returned 10 instead of 8 here)."""
    powers = [stats.paired_power(0.01, 0.03, n, folds=1, family_size=4)["power"]
              for n in range(8, 12)]
    assert all(np.isfinite(powers)) and min(powers) > 0.999
    assert stats.seeds_for_power(0.01, 0.03, 0.8, folds=1, family_size=4) == 8


def test_seed_search_is_the_first_n_that_reaches_the_target():
    """The doubling-and-bisection search gives the first n of a walk n = 1, 2, ... ."""
    for sd, effect in ((0.0477, 0.046), (29.55, 28.5), (0.03, 0.01), (1.0, 0.35)):
        found = stats.seeds_for_power(sd, effect, 0.8, family_size=4)
        power = [stats.paired_power(sd, effect, n, family_size=4)["power"] for n in (found - 1,
                                                                                   found)]
        assert power[1] >= 0.8 and (found == 1 or power[0] < 0.8)
        found = stats.tost_seeds_for_power(sd, effect, 0.8, family_size=4)
        assert stats.tost_power(sd, effect, found, family_size=4) >= 0.8
        assert found == 1 or stats.tost_power(sd, effect, found - 1, family_size=4) < 0.8
