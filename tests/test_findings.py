"""The closing page's answers (topobook.study.findings) and chapter 8's verdicts and record
(topobook.study.topomortar_study.paired_tests, write/read_chapter_record), on hand-made tables."""

from __future__ import annotations

import copy
import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from topobook import plotting  # noqa: E402
from topobook.study import confirmatory as cs  # noqa: E402
from topobook.study import findings, stats  # noqa: E402
from topobook.study import topomortar_study as tmt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------- classify


def test_classify_follows_the_rules_in_order():
    assert findings.classify(+0.02, True, 0.001) == ("better", "")
    # an error metric: the caller signs the improvement, so a lower error is > 0
    assert findings.classify(-3.0, True, 0.001) == ("worse", "")
    # equivalence only where nothing was rejected
    assert findings.classify(0.001, False, 0.001, equivalent=True, margin=0.05) == (
        "equivalent", "")
    verdict, reason = findings.classify(0.01, False, 1.0, n=2)
    assert verdict == "inconclusive"
    assert "2 paired seeds" in reason and "is 1, above α = 0.05" in reason
    verdict, reason = findings.classify(0.01, False, 0.001)
    assert verdict == "inconclusive" and "no margin was fixed" in reason
    verdict, reason = findings.classify(0.01, False, 0.001, equivalent=False, margin=0.046)
    assert verdict == "inconclusive" and "within ±0.046" in reason
    with pytest.raises(ValueError, match="alpha"):
        findings.classify(0.01, False, 0.1, alpha=0)
    with pytest.raises(ValueError, match="non-zero improvement"):
        findings.classify(0.0, True, 0.001)


# ---------------------------------------------------------------------- chapters 5 and 6


def _scores(runs: dict[str, dict[str, list[float]]]) -> dict[str, dict[int, dict]]:
    """``{run: {metric: [value per seed]}}`` -> ``{run: {seed: {metric: value}}}``."""
    out = {}
    for run, metrics in runs.items():
        n = len(next(iter(metrics.values())))
        out[run] = {seed: {m: values[seed] for m, values in metrics.items()} for seed in range(n)}
    return out


def test_answers_from_a_family_with_six_seeds():
    """Six seeds, one run, two metrics: every seed better on V_rand and a lower Betti matching
    error in every seed: both exact p = 2/64, Holm over 2 gives 0.0625 > 0.05, the smallest
    p-value this family can reach at all; with one metric, 2/64 <= 0.05 is a verdict."""
    base = {"v_rand": [0.80, 0.82, 0.81, 0.79, 0.83, 0.80],
            "betti_matching": [100.0, 90.0, 95.0, 105.0, 98.0, 92.0]}
    prior = {"v_rand": [v + 0.01 * (k + 1) for k, v in enumerate(base["v_rand"])],
             "betti_matching": [v - 5.0 for v in base["betti_matching"]]}
    answers = findings.chapter5_answers(_scores({"baseline": base, "topo_loss": prior}),
                                        metrics=("v_rand", "betti_matching"))
    assert list(answers.columns) == list(findings.ANSWER_COLUMNS)
    assert np.allclose(answers["p_holm"], 2 * 2 / 64)
    assert (answers["verdict"] == "inconclusive").all()
    assert all("6 paired seeds" in r and "can reach is 0.0625" in r for r in answers["reason"])
    row = answers.set_index("endpoint").loc["betti_matching"]
    assert row["delta"] == pytest.approx(-5.0) and row["improvement"] == pytest.approx(5.0)
    # one metric alone: Holm changes nothing and 2/64 <= 0.05 is a verdict
    alone = findings.chapter5_answers(_scores({"baseline": base, "topo_loss": prior}),
                                      metrics=("betti_matching",))
    assert alone["verdict"].tolist() == ["better"]
    assert findings.answer_sentence(alone.iloc[0]).startswith(
        "L_topo: better on Betti matching, Δ Betti matching = −5 [")


def test_two_seeds_make_every_answer_inconclusive_by_design():
    base = {"v_rand": [0.8, 0.9], "dice": [0.9, 0.91]}
    runs = {"baseline": base,
            "topo_loss": {"v_rand": [0.85, 0.95], "dice": [0.95, 0.96]},
            "cldice": {"v_rand": [0.7, 0.8], "dice": [0.8, 0.81]}}
    answers = findings.chapter5_answers(_scores(runs), metrics=("v_rand", "dice"))
    assert (answers["verdict"] == "inconclusive").all()
    sentence = findings.family_sentence(answers)
    assert sentence.startswith("4 comparisons with 2 paired seeds each: none better or worse")
    assert "all inconclusive (with 2 paired seeds the smallest Holm-adjusted p-value the " \
           "design can reach is 1, above α = 0.05)" in sentence
    assert findings.verdict_counts(answers) == {"better": 0, "worse": 0, "equivalent": 0,
                                                "inconclusive": 4}


def test_chapter6_answers_form_three_families():
    seeds = 2
    metrics = {"v_rand": [0.8, 0.9]}
    runs = {name: {"v_rand": [0.8 + 0.01 * k, 0.9 - 0.01 * k]}
            for k, name in enumerate(findings.CHAPTER6_RUNS)}
    runs["baseline"] = metrics
    answers = findings.chapter6_answers(_scores(runs), metrics=("v_rand",))
    sizes = answers.groupby("family", sort=False).size()
    assert sizes.tolist() == [len(findings.CHAPTER6_RUNS), 2, 1]
    bug = answers[answers["family"] == "the misrouted against the correct gradient"]
    assert bug["comparison"].tolist() == [findings.MISROUTED_RUN]
    assert (answers["n"] == seeds).all()


def test_missing_runs_name_their_folder_and_make_book(tmp_path):
    with pytest.raises(ValueError, match=r"baseline.*make book"):
        findings.chapter_runs(tmp_path / "nowhere", ["baseline"], "chapter 4")
    run = tmp_path / "baseline" / "seed0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"config": {"seed": 0}, "mean": {}}))
    with pytest.raises(ValueError, match=r"topo_loss:.*chapter 4"):
        findings.chapter_runs(tmp_path, ["baseline", "topo_loss"], "chapter 4")
    found = findings.chapter_runs(tmp_path, ["baseline"], "chapter 4")
    assert [r["config"]["seed"] for r in found["baseline"]] == [0]


def test_table_one_check_against_a_hand_made_paper():
    paper = {"baseline": {"dice": 0.90}, "topo_loss": {"dice": 0.95},
             "topo_input": {"dice": 0.90}}
    scores = _scores({"baseline": {"dice": [0.90, 0.90, 0.90]},
                      "topo_loss": {"dice": [0.94, 0.96, 0.95]},  # Δ 0.05 ± t·0.01/√3
                      "topo_input_processed": {"dice": [0.89, 0.90, 0.91]}})
    runs = {"baseline": "baseline", "topo_loss": "topo_loss", "topo_input": "topo_input_processed"}
    check = findings.table_one_check(scores, paper=paper, runs=runs, metrics=("dice",))
    assert check["column"].tolist() == ["topo_loss", "topo_input"]  # the baseline skipped
    loss, processed = check.to_dict("records")
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert loss["delta"] == pytest.approx(0.05) and loss["low"] == pytest.approx(0.05 - half)
    assert loss["paper_delta"] == pytest.approx(0.05)
    assert loss["holds_paper"] and not loss["holds_zero"]
    assert processed["holds_paper"] and processed["holds_zero"]  # the paper's Δ is 0 here
    sentence = findings.table_one_sentence(check)
    assert sentence.startswith("For the topological loss on Dice the paper's difference is "
                               "+0.05 (one run each)")
    assert "holds it and excludes zero" in sentence
    assert "neither confirm nor contradict" in sentence
    with pytest.raises(ValueError, match="two"):
        findings.table_one_check({k: {0: v[0]} for k, v in scores.items()}, paper=paper,
                                 runs=runs, metrics=("dice",))


# --------------------------------------------------------------------------- chapter 7


def test_registered_answers_read_the_record():
    record = cs.load_record()
    answers = findings.registered_answers(record)
    assert len(answers) == len(record["study"]["primary"])
    for row, entry in zip(answers.to_dict("records"), record["study"]["primary"], strict=True):
        assert (row["comparison"], row["endpoint"]) == (entry["prior"], entry["endpoint"])
        assert row["delta"] == entry["delta"] and row["margin"] == entry["margin"]
        expected = "equivalent" if entry["tost_p_holm"] <= 0.05 else "inconclusive"
        assert row["verdict"] == expected
    # a hand-made outcome: a rejected V_rand row becomes "better", an unrejected one without
    # equivalence "inconclusive"
    changed = copy.deepcopy(record)
    changed["study"]["primary"][0].update(p_holm=0.01, delta=0.05, low=0.02, high=0.08)
    changed["study"]["primary"][2].update(tost_p_holm=0.2)
    answers = findings.registered_answers(changed)
    assert answers["verdict"].tolist()[:3] == ["better", "equivalent", "inconclusive"]
    assert "within ±0.046" in answers["reason"].iloc[2]
    line = findings.isbi_line(answers)
    assert line == ("ISBI 2012, the pre-registered study (16 seed pairs): L_topo (Δ = +0.05 "
                    "[+0.02, +0.08]) raised V_rand; for Betti matching (Δ = +0.0129 [−0.0205, "
                    "+0.0463]) the study is inconclusive on V_rand.")
    line = findings.isbi_line(findings.registered_answers(record))
    assert "effects on V_rand larger than ±0.046 are excluded for L_topo (Δ = +0.0063" in line


def test_registered_limits_from_the_record():
    record = copy.deepcopy(cs.load_record())
    record["study"]["baseline"]["A"].update(v_rand=0.9, betti_matching=120.0)
    record["study"]["best_trivial_betti_matching"]["A"] = 117.5
    limits = findings.registered_limits(record)
    assert limits["remaining"]["A"] == pytest.approx(0.1)
    assert limits["trivial_gap"] == {"A": pytest.approx(2.5)}  # fold B records no error
    assert limits["margins"] == {"v_rand": 0.046, "betti_matching": 28.5}
    assert 0 < limits["power"] < 0.5 and limits["seeds_to_exclude"] > 8


# --------------------------------------------------------------------------- chapter 8


def _topomortar(seeds: int, shift: dict[str, float], base: float = 10.0) -> dict:
    """Per-seed means of a baseline and one prior: every metric of HEADLINE, the prior's
    shifted by ``shift`` in every seed plus a little noise."""
    rng = np.random.default_rng(0)
    baseline = {s: {"betti0_error": base + s, "betti1_error": 2 * base + s,
                    "cldice": 0.8 + 0.001 * s, "dice": 0.9 + 0.001 * s} for s in range(seeds)}
    prior = {s: {m: v + shift.get(m, 0.0) + 1e-4 * rng.standard_normal()
                 for m, v in row.items()} for s, row in baseline.items()}
    return {"baseline": baseline, "cldice": prior}


def test_paired_tests_reject_or_test_equivalence():
    per_seed = _topomortar(10, {"dice": 0.02})
    table = tmt.paired_tests(per_seed, "baseline", dice_margin=0.01, betti_margin=0.2)
    by_metric = table.set_index("metric")
    # ten seeds all in favour: exact p = 2/1024, Holm over 4 metrics: 4 * 2/1024 < 0.05
    assert by_metric.loc["dice", "rejected"] and by_metric.loc["dice", "TOST"] == ""
    assert by_metric.loc["dice", "equivalent"] is None
    assert by_metric.loc["dice", "margin"] == 0.01
    # unchanged metrics are equivalent within their margins; a Betti margin is a fraction (here
    # 20 %) of the baseline's mean error (10 + 4.5 over seeds 0-9)
    assert by_metric.loc["betti0_error", "margin"] == pytest.approx(2.9)
    assert by_metric.loc["betti0_error", "TOST"] == "equivalent, ±2.9"
    assert by_metric.loc["cldice", "equivalent"] is True
    answers = findings.answers_from_table(table, "q", "ours", tmt.HEADLINE)
    assert answers.set_index("endpoint")["verdict"].to_dict() == {
        "betti0_error": "equivalent", "betti1_error": "equivalent", "cldice": "equivalent",
        "dice": "better"}
    with pytest.raises(ValueError, match="betti_margin"):
        tmt.equivalence_margin("betti1_error", 10.0, 0.01, -0.1)
    with pytest.raises(ValueError, match="unknown headline metric"):
        tmt.equivalence_margin("hd95", 10.0, 0.01, 0.1)


def test_paired_tests_holm_runs_per_prior_so_eight_seeds_can_reach_alpha():
    """Eight seeds all in favour: exact p = 2/256. Holm over one prior's four metrics gives
    4 x 2/256 = 0.031 (a verdict); over two priors' eight it would give 0.0625 (none)."""
    per_seed = _topomortar(8, {"dice": 0.02})
    per_seed["skeleton_recall"] = per_seed["cldice"]
    by_prior = tmt.paired_tests(per_seed, "baseline", dice_margin=0.01, betti_margin=0.2)
    whole = tmt.paired_tests(per_seed, "baseline", dice_margin=0.01, betti_margin=0.2,
                             family="table")
    for table, reachable, rejected in ((by_prior, 4 * 2 / 256, True),
                                       (whole, 8 * 2 / 256, False)):
        dice = table[table["metric"] == "dice"]
        assert len(dice) == 2 and (dice["rejected"] == rejected).all()
        assert dice["smallest_reachable_p"].tolist() == pytest.approx([reachable] * 2)
        assert dice["p_holm"].tolist() == pytest.approx([reachable] * 2)
    with pytest.raises(ValueError, match="family must be one of"):
        tmt.paired_tests(per_seed, "baseline", 0.01, 0.2, family="metric")
    with pytest.raises(ValueError, match="baseline run"):
        tmt.paired_tests(per_seed, "plain", 0.01, 0.2)


def test_paired_difference_sds_pair_by_seed():
    per_seed = {"baseline": {0: {"dice": 0.9}, 1: {"dice": 0.8}, 2: {"dice": 0.7}},
                "prior": {0: {"dice": 0.91}, 1: {"dice": 0.83}, 2: {"dice": 0.70}, 5: {"dice": 0}}}
    sds = tmt.paired_difference_sds(per_seed, keys=("dice",))
    assert sds["prior"]["dice"] == pytest.approx(np.std([0.01, 0.03, 0.0], ddof=1))
    one = tmt.paired_difference_sds({"baseline": per_seed["baseline"],
                                     "prior": {0: {"dice": 1.0}}}, keys=("dice",))
    assert math.isnan(one["prior"]["dice"])
    record = tmt.load_from_scratch_record()
    assert set(record["arms"]["baseline"]["seeds"]) == {0, 1, 2}


class _Config:
    def __init__(self, seed: int, lam: float = 0.0):
        self.seed, self.lam = seed, lam


def _write_runs(root, per_seed: dict) -> dict:
    """Fake finished runs (metrics.json with ``mean``) and the plan that names them."""
    final = {}
    for arm, seeds in per_seed.items():
        lam = None if arm == "baseline" else 0.3
        final[arm] = []
        for seed, mean in seeds.items():
            out_dir = tmt.run_folder(root, arm, lam) / f"seed{seed}"
            out_dir.mkdir(parents=True)
            (out_dir / "metrics.json").write_text(json.dumps({"mean": mean}))
            final[arm].append((out_dir, _Config(seed, lam or 0.0)))
    return {"final": final, "pending": []}


def test_chapter_record_round_trip_and_missing_runs(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"chapter8.json does not exist.*make book"):
        tmt.read_chapter_record(tmp_path)
    per_seed = _topomortar(3, {"betti1_error": -5.0})
    plan = _write_runs(tmp_path, per_seed)
    with pytest.raises(ValueError, match="not finished"):
        tmt.write_chapter_record(tmp_path, {**plan, "pending": ["cldice"]}, ["071"], "large",
                                 0.01, 0.1)
    path = tmt.write_chapter_record(tmp_path, plan, ["071", "072"], "large", 0.01, 0.1)
    record, means = tmt.read_chapter_record(tmp_path)
    assert path == tmp_path / "topomortar" / tmt.RECORD_NAME
    assert record["final"]["cldice"][0] == {"folder": "topomortar/cldice_lam0.3/seed0",
                                            "seed": 0, "lam": 0.3}
    assert means == per_seed  # JSON keeps the floats exactly

    # the closing page tests our runs and the authors' (here a hand-made stand-in) alike
    authors = _topomortar(10, {"cldice": 0.02})
    seen = {}

    def published(ids, size):
        seen.update(ids=list(ids), size=size)
        return {"CEDiceLoss": authors["baseline"], "clDiceLoss": authors["cldice"]}

    monkeypatch.setattr(tmt, "published_per_seed_means", published)
    ours, theirs = findings.topomortar_answers(tmp_path)
    assert seen == {"ids": ["071", "072"], "size": "large"}
    assert set(ours["family"]) == {"ours"} and set(theirs["family"]) == {"the authors'"}
    assert (ours["n"] == 3).all() and (theirs["n"] == 10).all()
    assert ours.set_index("endpoint").loc["betti1_error", "verdict"] == "inconclusive"
    assert theirs.set_index("endpoint").loc["cldice", "verdict"] == "better"
    line = findings.topomortar_line(ours, theirs)
    assert line.startswith("TopoMortar, Betti-1 error against the plain baseline: our runs "
                           "(3 seeds): ")
    assert "the authors' runs (10 seeds): no effect larger than the margin with clDice" in line

    (tmp_path / "topomortar" / "cldice_lam0.3" / "seed2" / "metrics.json").unlink()
    with pytest.raises(ValueError, match=r"cldice_lam0.3/seed2.*make book"):
        tmt.read_chapter_record(tmp_path)


# ---------------------------------------------------------------------- margins, figure


def test_in_margins_scales_and_signs_by_the_metric():
    answers = pd.DataFrame([
        {"endpoint": "betti_matching", "delta": -10.0, "low": -15.0, "high": -5.0,
         "improvement": 10.0, "margin": 20.0},
        {"endpoint": "v_rand", "delta": 0.01, "low": -0.02, "high": 0.04, "improvement": 0.01,
         "margin": 0.04},
        {"endpoint": "dice", "delta": 0.0, "low": -0.01, "high": 0.01, "improvement": 0.0,
         "margin": math.nan},
    ])
    rows = findings.in_margins(answers)
    assert len(rows) == 2  # the row without a margin is left out
    assert rows[["x", "x_low", "x_high"]].to_numpy() == pytest.approx(
        np.array([[0.5, 0.25, 0.75], [0.25, -0.5, 1.0]]))


def test_margin_plot_cuts_long_intervals():
    groups = {"study": {"a": (0.2, -0.5, 0.9), "b": (2.0, 0.5, 9.0)},
              "other": {"c": (-4.0, -12.0, 1.0)}}
    fig = plotting.margin_plot(groups, limit=3.0)
    axes = fig.axes
    assert len(axes) == 2 and axes[0].get_title() == "study"
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["a", "b"]
    ends = [line for line in axes[1].lines if line.get_marker() in ("<", ">")]
    assert [line.get_marker() for line in ends] == ["<"]  # c is cut on the left only
    squares = [line for line in axes[1].lines if line.get_marker() == "s"]
    assert not squares  # c's effect, -4, lies beyond the axis: its arrow shows the side
    assert axes[1].get_xlim() == pytest.approx((-3.15, 3.15))
    with pytest.raises(ValueError, match="at least one"):
        plotting.margin_plot({"empty": {}})


def test_sentences_reject_unknown_verdicts_and_metrics():
    row = {"comparison": "cldice", "endpoint": "dice", "delta": 0.1, "low": 0.0, "high": 0.2,
           "verdict": "maybe", "margin": math.nan, "reason": ""}
    with pytest.raises(ValueError, match="unknown verdict"):
        findings.answer_sentence(row)
    with pytest.raises(ValueError, match="unknown metric"):
        findings.endpoint_name("hd95")
    assert findings.endpoint_name("betti1_error") == "Betti-1 error"
    assert stats.smallest_p_value(16) * 4 < 0.05  # the registered family can reach α


def test_the_second_registration_s_outcome_round_trips_to_answers(tmp_path):
    from topobook.study import branched_analysis as ba
    from topobook.study import branched_study as bs

    spec = bs.load_registration()
    rng = np.random.default_rng(5)
    rows = []
    for fold in spec["folds"]:
        for seed in range(6):
            base = 0.94 + rng.normal(0, 0.01)
            rows.append({"fold": fold, "arm": "baseline", "seed": seed, "v_rand": base,
                         "betti_8conn_thinned": 1.3})
            for prior, shift in (("topo_loss", 0.03), ("betti_matching", 0.0)):
                rows.append({"fold": fold, "arm": prior, "seed": seed,
                             "v_rand": base + shift + rng.normal(0, 0.001),
                             "betti_8conn_thinned": 1.3 + rng.normal(0, 0.01)})
    primary = ba.primary_analysis(pd.DataFrame(rows), spec)
    main = primary[primary["fold"] == "all"]
    outcome = {"registered_design": True, "runs": 36, "machines": 1,
               "primary": main[["prior", "endpoint", "n", "delta", "low", "high", "p_holm",
                                "rejected", "tost_p_holm", "equivalent", "margin"]]
               .astype(object).to_dict("records")}
    path = tmp_path / findings.BRANCHED_OUTCOME
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(outcome, default=float))
    answers = findings.branched_answers(findings.branched_outcome(tmp_path))
    verdicts = {(r.comparison, r.endpoint): r.verdict for r in answers.itertuples()}
    assert verdicts[("topo_loss", "v_rand")] == "better"  # +0.03 in every pair
    assert verdicts[("betti_matching", "v_rand")] == "equivalent"  # within ±0.019
    topology = answers[answers["endpoint"] == "betti_8conn_thinned"]
    assert topology["improvement"].abs().max() < 0.1
    # without this build's runs, the committed outcome of the registering machine is read
    registered = findings.branched_outcome(tmp_path / "elsewhere")
    assert registered["source"] == "registered" and registered["registered_design"]
    committed = findings.branched_answers(registered)
    assert len(committed) == 4 and set(committed["n"]) == {registered["pairs"]}
    assert set(committed["margin"]) == {v["margin"]
                                        for v in spec["endpoints"]["primary"].values()}
