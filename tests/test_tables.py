"""The book's number formats (topobook.study.tables), checked on hand-worked values."""

import math

import numpy as np
import pandas as pd
import pytest

from topobook.study import tables


@pytest.mark.parametrize(
    "value, text",
    [
        (0.923456, "0.923"),
        (127.333, "127"),
        (129.0, "129"),
        (12345.6, "12346"),
        (0.5, "0.5"),
        (0.0625, "0.0625"),
        (0.00123456, "0.00123"),
        (1.23456e-5, "1.23e-05"),
        (-0.0123456, "−0.0123"),
        (0.0, "0"),
        (1.0, "1"),
        (9.9996, "10"),
        (float("nan"), "–"),
        (None, "–"),
        (math.inf, "∞"),
    ],
)
def test_significant(value, text):
    assert tables.significant(value) == text


def test_counts_lambdas_and_signs():
    assert tables.count(129.0) == "129"
    assert tables.count(np.int64(3)) == "3"
    with pytest.raises(ValueError, match="whole number"):
        tables.count(127.333)
    assert tables.fraction(1 / 6000) == "1/6000"
    assert tables.fraction(0.00016666666666666666) == "1/6000"
    assert tables.fraction(1 / 12000) == "1/12000"
    assert tables.fraction(0.01) == "1/100"
    assert tables.fraction(0.001) == "1/1000"
    assert tables.fraction(0.5) == "0.5"
    assert tables.fraction(0.0003) == "0.0003"  # 1/3333.33: not a whole reciprocal
    with pytest.raises(ValueError):
        tables.fraction(-0.1)
    assert tables.signed(0.0123) == "+0.0123"
    assert tables.signed(-0.5) == "−0.5"
    assert tables.signed(0.0) == "0"
    assert tables.interval(-0.0123, 0.0456) == "[−0.0123, +0.0456]"
    assert tables.plus_minus(0.92345, 0.01234) == "0.923 ± 0.012"
    assert tables.fixed(0.92) == "0.920"
    assert tables.p_value(1.0) == "1" and tables.p_value(0.0625) == "0.0625"
    with pytest.raises(ValueError, match="p-value"):
        tables.p_value(1.5)
    with pytest.raises(ValueError, match="not a number"):
        tables.significant("abc")


def test_metric_labels_say_which_way_is_better():
    assert tables.metric_label("v_rand") == "V_rand ↑"
    assert tables.metric_label("betti_matching") == "Betti matching ↓"
    assert tables.metric_label("betti_paper") == "Betti (paper) ↓"
    assert tables.metric_label("dice", arrow=False) == "Dice"
    with pytest.raises(ValueError, match="unknown metric"):
        tables.metric_label("f1")


def test_format_table_by_column_and_by_row():
    frame = pd.DataFrame({"n": [3.0, 5.0], "λ": [1 / 6000, 0.01], "score": [0.91234, 12.3456]})
    text = tables.format_table(frame, {"n": "count", "λ": "lam"})
    assert text.to_dict("list") == {"n": ["3", "5"], "λ": ["1/6000", "1/100"],
                                    "score": ["0.912", "12.3"]}
    assert frame["n"].dtype == float  # the input is left alone
    rows = tables.format_table(frame.T, {"n": "count"}, by="row")
    assert rows.loc["n"].tolist() == ["3", "5"] and rows.loc["λ"].tolist() == ["0.000167", "0.01"]
    with pytest.raises(ValueError, match="not columns"):
        tables.format_table(frame, {"missing": "sig"})
    with pytest.raises(ValueError, match="unknown format"):
        tables.format_table(frame, {"n": "percent"})


def test_label_metrics_on_an_index_and_a_multiindex():
    frame = pd.DataFrame({"x": [1, 2]}, index=pd.Index(["v_rand", "mean"], name="metric"))
    assert tables.label_metrics(frame).index.tolist() == ["V_rand ↑", "mean"]
    multi = pd.DataFrame(
        {"x": [1, 2]},
        index=pd.MultiIndex.from_tuples([("a", "dice"), ("a", "betti_8conn")],
                                        names=["run", "metric"]),
    )
    labelled = tables.label_metrics(multi)
    assert labelled.index.get_level_values("metric").tolist() == ["Dice ↑", "Betti error ↓"]


def test_runs_in_words():
    base = {"strategy": "baseline", "lam": 1 / 12000, "loss": "topo", "width": 16,
            "input_mode": "processed"}
    assert tables.term_label(base) == "BCE only"
    assert "cross-entropy (BCE) alone" in tables.describe_run(base)
    topo = {**base, "strategy": "topo_loss", "matching": "lifetime", "complex": "cubical",
            "keep_zero_length": False, "misroute_gradient": True}
    assert tables.term_label(topo) == "L_topo (lifetime, cubical, misrouted)"
    assert "λ = 1/12000" in tables.describe_run(topo)
    cl = {**topo, "loss": "cldice", "cldice_iterations": 3, "lam": 0.5}
    assert tables.term_label(cl) == "clDice (3 iterations)" and "λ = 0.5" in tables.describe_run(cl)
    modified = {**base, "strategy": "topo_input", "input_mode": "modified"}
    assert "one-pixel frame" in tables.describe_run(modified)
    with pytest.raises(ValueError, match="unknown strategy"):
        tables.describe_run({**base, "strategy": "magic"})


def test_compare_line_uses_shared_seeds_only_and_gives_their_range():
    run = {0: {"v_rand": 0.8, "betti_matching": 10.0}, 1: {"v_rand": 0.9, "betti_matching": 20.0}}
    base = {0: {"v_rand": 0.7, "betti_matching": 30.0}, 2: {"v_rand": 0.1, "betti_matching": 0.0}}
    line = tables.compare_line(run, base)
    assert line == ("V_rand ↑ **0.8** (baseline 0.7); Betti matching ↓ **10** (baseline 30): "
                    "means over seed 0.")
    both = {**base, 1: {"v_rand": 0.5, "betti_matching": 50.0}}
    assert tables.compare_line(run, both) == (
        "V_rand ↑ **0.85**, seeds 0.8 to 0.9 (baseline 0.6, 0.5 to 0.7); Betti matching ↓ "
        "**15**, seeds 10 to 20 (baseline 40, 30 to 50): means over seeds 0, 1.")
    assert "baseline" not in tables.compare_line(run, run).split(":")[0]
    with pytest.raises(ValueError, match="no seed in common"):
        tables.compare_line(run, {5: run[0]})


def test_comparison_tables_split_one_wide_table_into_three_narrow_ones():
    comparisons = pd.DataFrame({
        "run": ["topo_loss", "topo_loss"], "metric": ["v_rand", "betti_8conn"], "n": [3, 3],
        "mean_difference": [0.02, 1.5], "low": [-0.01, 0.5], "high": [0.05, 2.5],
        "p_value": [0.25, 0.25], "p_holm": [0.5, 0.03],
        "verdict": ["inconclusive (smallest reachable p = 0.5 > alpha = 0.05)", "worse"],
        "differences": [[0.01, 0.05, 0.0], [1.0, 2.0, 1.5]],
    })
    out = tables.comparison_tables(comparisons)
    assert out["difference"].loc["topo loss"].tolist() == ["+0.02", "+1.5"]
    assert out["favour"].loc["topo loss"].tolist() == ["2/3", "0/3"]
    assert out["difference"].columns.tolist() == ["V_rand ↑", "Betti error ↓"]
    assert out["p"].loc["topo loss"].tolist() == ["0.5", "0.03 worse"]
    assert out["verdicts"] == "Verdicts of the family's 2 comparisons: 1 inconclusive, 1 worse."
    assert out["interval"].loc[("topo loss", "V_rand ↑"), "95 % interval"] == "[−0.01, +0.05]"
    with pytest.raises(ValueError, match="lack the columns"):
        tables.comparison_tables(comparisons.drop(columns="verdict"))


def test_short_labels_and_one_header_row():
    assert tables.metric_label("completeness", short=True) == "compl. ↑"
    assert tables.metric_label("dice", short=True) == "Dice ↑"
    frame = pd.DataFrame({"x": [1.0]}, index=pd.Index(["a"], name="run"))
    text = tables.format_table(frame)
    assert text.columns.name == "run" and text.index.name is None
    assert "<th>run</th>" in text.to_html()


def _operating_point(v_rand=0.9, threshold=0.63):
    from topobook.metrics.evaluation import OPERATING_POINT_METRICS

    mean = {m: 0.5 for m in OPERATING_POINT_METRICS}
    mean.update(v_rand=v_rand, membrane_fraction=0.21, membrane_fraction_truth=0.196)
    return {"threshold": threshold, "mean": mean,
            "evaluation_oracle": {"v_rand": 0.95, "v_info": 0.97, "threshold_v_rand": 0.9,
                                  "threshold_v_info": 0.8}}


def test_operating_point_row_reads_every_field():
    row = tables.operating_point_row(_operating_point())
    assert row["v_rand"] == 0.9 and row["threshold"] == 0.63
    assert row["membrane_fraction"] == 0.21 and row["membrane_fraction_truth"] == 0.196
    # the oracle stays apart, under its own names
    oracle = (row["oracle_v_rand"], row["oracle_v_info"], row["oracle_threshold"])
    assert oracle == (0.95, 0.97, 0.9)
    assert row["betti_matching"] == 0.5 and "betti_paper" not in row


def test_operating_point_row_rejects_old_runs():
    with pytest.raises(ValueError, match="older version"):
        tables.operating_point_row(None)
    broken = _operating_point()
    del broken["evaluation_oracle"]["v_rand"]
    with pytest.raises(ValueError, match="evaluation_oracle.v_rand"):
        tables.operating_point_row(broken)


def test_label_metrics_names_the_operating_point_rows():
    rows = ["v_rand", "membrane_fraction", "oracle_v_rand"]
    frame = pd.DataFrame({"x": [1.0, 0.2, 0.9]}, index=rows)
    labelled = tables.label_metrics(frame)
    assert list(labelled.index) == ["V_rand ↑", "membrane share", "V_rand ↑, eval. oracle"]
