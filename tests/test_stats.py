"""Paired statistics over seeds, checked against hand-worked cases and scipy."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from topobook import stats


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
    assert set(small.verdict) == {"no detectable difference"}
    assert row.verdict == "better"
    assert table[(table.run == "good") & (table.metric == "betti")].iloc[0].verdict == "better"
    assert set(table[table.run == "same"].verdict) == {"no detectable difference"}
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
