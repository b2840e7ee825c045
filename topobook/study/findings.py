"""What the book found: each question of chapters 5-8 answered in one shape, from the chapters'
own runs and records, for the closing page (``notebooks/09_findings.ipynb``), the landing page
and the chapters' summaries. Nothing here trains: a run that is missing is a ValueError naming
its folder.

An **answer** is one row of a ``pandas.DataFrame`` (:data:`ANSWER_COLUMNS`): the ``question``
and ``family`` it belongs to, the ``comparison`` (a prior or a run against its baseline), the
``endpoint`` (a metric), ``n`` paired seeds, ``delta`` (prior − baseline, in the metric's
units) with its 95 % interval ``low``, ``high``, ``improvement`` (``delta`` signed so that
> 0 is better), ``p_holm``, ``margin`` (the equivalence margin δ fixed before the runs; NaN
where none was) and ``verdict``, one of :data:`VERDICTS`, with the ``reason`` of an
inconclusive one (:func:`classify`).

The chapters compute their tables with :mod:`topobook.study.stats`,
:mod:`topobook.study.confirmatory` and :mod:`topobook.study.topomortar_study`; this module calls
the same functions on the same runs and only turns their tables into answers and sentences.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

VERDICTS = ("better", "worse", "equivalent", "inconclusive")
ANSWER_COLUMNS = ("question", "family", "comparison", "endpoint", "n", "delta", "low", "high",
                  "improvement", "p_holm", "margin", "verdict", "reason")
ALPHA = 0.05  # the family-wise level of every verdict of the book
BASELINE_RUN = "baseline"
# Chapter 5 (the defaults of its parameters cell): the runs of chapter 4, the runs that follow
# the paper's text for each column of Table I, and the metrics of its Holm family.
CHAPTER5_RUNS = ("baseline", "topo_loss", "topo_loss_balanced", "topo_input_processed",
                 "topo_input_two_channel", "topo_input_modified", "topo_loss+topo_input")
TABLE_ONE_RUNS = {"topo_loss": "topo_loss", "topo_input": "topo_input_processed"}
TEST_METRICS = ("v_rand", "v_info", "cldice", "betti_8conn", "betti_matching", "dice")
# The metrics of Table I on which the paper's claim is checked (read at 0.5, the paper's way).
TABLE_ONE_METRICS = ("dice", "betti_paper")
# Chapter 6 (its parameters cell): the runs compared with the baseline, and its two controls.
CHAPTER6_RUNS = ("topo_loss", "topo_loss_balanced", "cldice", "betti_matching",
                 "control_sorted_value", "notebook_loss", "notebook_loss_misrouted")
CONTROL_RUN = "control_sorted_value"
NOTEBOOK_RUN = "notebook_loss"
MISROUTED_RUN = "notebook_loss_misrouted"
FIELD_EFFECT = 0.01  # V_rand gains the field reports on ISBI-like data (chapter 7)
# chapter 8: the metrics its verdict list reads (topology of the bricks, and of the mortar)
TOPOMORTAR_ENDPOINTS = ("betti1_error", "cldice")


# ------------------------------------------------------------------------------- verdicts


def classify(improvement: float, rejected: bool, reachable: float, alpha: float = ALPHA,
             equivalent: bool | None = None, margin: float = math.nan,
             n: int | None = None) -> tuple[str, str]:
    """The verdict of one comparison and, for an inconclusive one, why: ``(verdict, reason)``.

    ``improvement``: the mean difference signed so that > 0 is better; ``rejected``: the test
    of no difference rejected at family-wise level ``alpha`` (Holm); ``reachable``: the
    smallest Holm-adjusted p-value the design could give (``m * 2 / 2**n``); ``equivalent``:
    TOST declared the difference within ``±margin`` (None: not tested); ``n``: the paired seeds
    (named in the reason). Rules: a rejection is ``"better"`` or ``"worse"`` by the sign of
    ``improvement``; else equivalence is ``"equivalent"``; else ``"inconclusive"``, because
    the design could not reach ``alpha`` at all, or because no margin was fixed (nothing is
    excluded), or because neither a difference nor equivalence within the margin is shown."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if rejected:
        if not improvement or math.isnan(improvement):
            raise ValueError(f"a rejected comparison needs a non-zero improvement, got "
                             f"{improvement!r}")
        return ("better" if improvement > 0 else "worse"), ""
    if equivalent:
        return "equivalent", ""
    seeds = f"{n} paired seeds" if n is not None else "its seeds"
    if reachable > alpha:
        return "inconclusive", (f"with {seeds} the smallest Holm-adjusted p-value the design "
                                f"can reach is {_number(reachable)}, above α = {alpha:g}")
    if margin is None or math.isnan(margin):
        return "inconclusive", ("no difference detected, and no margin was fixed in advance, "
                                "so no size of effect is excluded")
    return "inconclusive", (f"neither a difference nor equivalence within ±{_number(margin)} "
                            "is shown")


def _number(value: float) -> str:
    from topobook.study.tables import significant

    return significant(value, 3)


def answers_from_table(table, question: str, family: str, higher_is_better: Mapping[str, bool],
                       alpha: float = ALPHA):
    """Answers (:data:`ANSWER_COLUMNS`) from a table of
    :func:`topobook.study.stats.compare_with_baseline` (``run, metric, n, mean_difference, low,
    high, p_holm, smallest_reachable_p, rejected``; optional ``margin`` and ``equivalent``, as
    :func:`topobook.study.topomortar_study.paired_tests` adds), one row per comparison, in its
    order. ``higher_is_better``: metric -> True when higher is better."""
    import pandas as pd

    rows = []
    for row in table.to_dict("records"):
        metric = row["metric"]
        if metric not in higher_is_better:
            raise ValueError(f"metric {metric!r} has no direction in higher_is_better")
        sign = 1.0 if higher_is_better[metric] else -1.0
        margin = row.get("margin", math.nan)
        margin = math.nan if margin is None else float(margin)
        equivalent = row.get("equivalent")
        verdict, reason = classify(
            sign * float(row["mean_difference"]), bool(row["rejected"]),
            float(row["smallest_reachable_p"]), alpha,
            None if equivalent is None or equivalent != equivalent else bool(equivalent),
            margin, int(row["n"]))
        rows.append({
            "question": question, "family": family, "comparison": row["run"],
            "endpoint": metric, "n": int(row["n"]), "delta": float(row["mean_difference"]),
            "low": float(row["low"]), "high": float(row["high"]),
            "improvement": sign * float(row["mean_difference"]),
            "p_holm": float(row["p_holm"]), "margin": margin, "verdict": verdict,
            "reason": reason,
        })
    return pd.DataFrame(rows, columns=list(ANSWER_COLUMNS))


# ----------------------------------------------------------------- ISBI 2012, chapters 5 and 6


def _missing(results_dir, names: Iterable[str], chapter: str) -> ValueError:
    folders = ", ".join(str(Path(results_dir) / name) for name in names)
    return ValueError(f"no finished run in {folders}: the runs of {chapter} are missing in "
                      f"results_dir={str(results_dir)!r}; run `make book` (it trains them) "
                      "first")


def chapter_runs(results_dir, names: Iterable[str], chapter: str) -> dict[str, list[dict]]:
    """The finished runs ``names`` of ``results_dir`` (:func:`topobook.training.run.load_results`),
    ``{name: [metrics.json of each seed, in seed order]}``; a ValueError naming every missing
    folder (``chapter`` says whose runs they are)."""
    from topobook.training.run import load_results

    names = list(dict.fromkeys(names))
    found = load_results(results_dir) if Path(results_dir).is_dir() else []
    by_run = {name: sorted([r for r in found if r["run"] == name],
                           key=lambda r: r["config"]["seed"]) for name in names}
    missing = [name for name, runs in by_run.items() if not runs]
    if missing:
        raise _missing(results_dir, missing, chapter)
    return by_run


def operating_point_scores(by_run: Mapping[str, list[dict]]) -> dict[str, dict[int, dict]]:
    """``{run: {seed: scores}}`` at each run's operating point (the threshold chosen on the
    validation slices; :func:`topobook.study.tables.operating_point_row`), the reading of the
    paired tests of chapters 5 and 6. ``by_run``: :func:`chapter_runs`'s."""
    from topobook.study.tables import operating_point_row

    return {name: {r["config"]["seed"]: operating_point_row(r["at_operating_point"])
                   for r in runs} for name, runs in by_run.items()}


def paper_protocol_scores(by_run: Mapping[str, list[dict]]) -> dict[str, dict[int, dict]]:
    """``{run: {seed: scores}}`` read with the paper's protocol (threshold 0.5, the runs'
    ``mean``), the reading of Table I (chapter 5's Table 5.2)."""
    return {name: {r["config"]["seed"]: r["mean"] for r in runs} for name, runs in by_run.items()}


def table_one_check(scores: Mapping[str, Mapping[int, Mapping[str, float]]],
                    paper: Mapping[str, Mapping[str, float]] | None = None,
                    runs: Mapping[str, str] | None = None,
                    metrics: Iterable[str] = TABLE_ONE_METRICS, baseline: str = BASELINE_RUN):
    """The paper's Table I claim against our runs: for each column of Table I (``runs``:
    column -> our run, default :data:`TABLE_ONE_RUNS`; the baseline's column is skipped) and
    metric, the paper's difference to
    its baseline (one run each, ``paper``: default
    :data:`topobook.metrics.pixel.PAPER_TABLE_I`) beside our paired difference over seeds
    with its 95 % interval (``scores``: :func:`paper_protocol_scores`), and whether our
    interval holds the paper's difference (``holds_paper``) and zero (``holds_zero``). A
    ``pandas.DataFrame`` ``column, run, metric, paper_delta, n, delta, low, high, holds_paper,
    holds_zero``."""
    import pandas as pd

    from topobook.metrics.pixel import PAPER_TABLE_I
    from topobook.study import stats

    paper = PAPER_TABLE_I if paper is None else paper
    runs = TABLE_ONE_RUNS if runs is None else runs
    rows = []
    for column, run in runs.items():
        if run == baseline:  # the baseline's own column: nothing to compare
            continue
        if run not in scores or baseline not in scores:
            raise ValueError(f"no scores of run {run!r} or of the baseline {baseline!r}")
        seeds = sorted(set(scores[run]) & set(scores[baseline]))
        if len(seeds) < 2:
            raise ValueError(f"{run!r} shares {len(seeds)} seed(s) with the baseline: an "
                             "interval needs at least two")
        for metric in metrics:
            result = stats.paired_comparison([scores[run][s][metric] for s in seeds],
                                             [scores[baseline][s][metric] for s in seeds])
            paper_delta = float(paper[column][metric]) - float(paper["baseline"][metric])
            rows.append({
                "column": column, "run": run, "metric": metric, "paper_delta": paper_delta,
                "n": result["n"], "delta": result["mean_difference"], "low": result["low"],
                "high": result["high"],
                "holds_paper": bool(result["low"] <= paper_delta <= result["high"]),
                "holds_zero": bool(result["low"] <= 0 <= result["high"]),
            })
    return pd.DataFrame(rows)


def table_one_sentence(check) -> str:
    """:func:`table_one_check` in words, one clause per column and metric: the paper's
    difference, our interval, and whether ours holds it and zero."""
    from topobook.study.tables import interval, signed

    if len(check) == 0:
        raise ValueError("no column of Table I to check")
    names = {"topo_loss": "the topological loss", "topo_input": "the processed input"}
    clauses = []
    for row in check.to_dict("records"):
        if row["holds_paper"] and row["holds_zero"]:
            reading = "holds both it and zero: our runs neither confirm nor contradict it"
        elif row["holds_paper"]:
            reading = "holds it and excludes zero"
        elif row["holds_zero"]:
            reading = "excludes it and holds zero"
        else:
            reading = "excludes both it and zero"
        clauses.append(
            f"for {names.get(row['column'], row['column'])} on {endpoint_name(row['metric'])} "
            f"the paper's difference is {signed(row['paper_delta'])} (one run each), and our "
            f"95 % interval over {row['n']} seeds, {interval(row['low'], row['high'])}, "
            f"{reading}")
    text = "; ".join(clauses)
    return text[0].upper() + text[1:] + "."


def chapter5_answers(scores: Mapping[str, Mapping[int, Mapping[str, float]]],
                     metrics: Iterable[str] = TEST_METRICS, baseline: str = BASELINE_RUN,
                     alpha: float = ALPHA):
    """Chapter 5's answers: every run of ``scores`` (:func:`operating_point_scores` of
    :data:`CHAPTER5_RUNS`) against the baseline on ``metrics``, one Holm family (its Table
    5.5)."""
    from topobook.metrics.evaluation import METRICS
    from topobook.study import stats

    family = {m: METRICS[m] for m in metrics}
    table = stats.compare_with_baseline(dict(scores), baseline, family, alpha=alpha)
    return answers_from_table(table, "Table I, reproduced (chapter 5)",
                              "against the baseline", family, alpha)


def chapter6_answers(scores: Mapping[str, Mapping[int, Mapping[str, float]]],
                     metrics: Iterable[str] = TEST_METRICS, alpha: float = ALPHA):
    """Chapter 6's answers in its three Holm families (its Tables 6.8-6.10): the losses and
    the control against the baseline (:data:`CHAPTER6_RUNS`); the notebook loss, both
    gradients, against the value-only control; the misrouted gradient against the correct
    one. ``scores``: :func:`operating_point_scores` of those runs and the baseline."""
    import pandas as pd

    from topobook.metrics.evaluation import METRICS
    from topobook.study import stats

    family = {m: METRICS[m] for m in metrics}
    question = "the losses of the field, and controls (chapter 6)"
    parts = []
    for label, runs, reference in (
            ("against the baseline", CHAPTER6_RUNS, BASELINE_RUN),
            ("the notebook loss against the control", (NOTEBOOK_RUN, MISROUTED_RUN),
             CONTROL_RUN),
            ("the misrouted against the correct gradient", (MISROUTED_RUN,), NOTEBOOK_RUN)):
        subset = {name: scores[name] for name in (reference, *runs)}
        table = stats.compare_with_baseline(subset, reference, family, alpha=alpha)
        parts.append(answers_from_table(table, question, label, family, alpha))
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------- ISBI 2012, chapter 7's study


def registered_answers(record: dict | None = None, alpha: float | None = None):
    """The pre-registered study's answers (chapter 7's Table 7.8, registered): each prior and
    primary endpoint over all pairs, read from the committed record
    (:func:`topobook.study.confirmatory.load_record`, default the package's), with the
    registered margin and the TOST decision."""

    from topobook.metrics.evaluation import METRICS
    from topobook.study import confirmatory as cs

    record = cs.load_record() if record is None else record
    spec = cs.load_preregistration()
    alpha = float(spec["analysis"]["alpha"]) if alpha is None else alpha
    primary = cs.registered_primary(record)
    directions = {m: METRICS[m] for m in spec["endpoints"]["primary"]}
    return primary_family_answers(primary[primary["fold"] == "all"],
                                  "the pre-registered study (chapter 7)", directions, alpha)


def primary_family_answers(main, question: str, directions: Mapping[str, bool], alpha: float):
    """Answers (:data:`ANSWER_COLUMNS`) from the ``fold == "all"`` rows of a registered study's
    primary table (``prior, endpoint, n, delta, low, high, p_holm, rejected, margin,
    equivalent``), the family being those rows."""
    import pandas as pd

    from topobook.study import stats

    table = pd.DataFrame({
        "run": main["prior"], "metric": main["endpoint"], "n": main["n"],
        "mean_difference": main["delta"], "low": main["low"], "high": main["high"],
        "p_holm": main["p_holm"], "rejected": main["rejected"].astype(bool),
        "smallest_reachable_p": [min(1.0, len(main) * stats.smallest_p_value(int(n)))
                                 for n in main["n"]],
        "margin": main["margin"], "equivalent": main["equivalent"].astype(bool)})
    return answers_from_table(table, question, "the primary family", directions, alpha)


def registered_limits(record: dict | None = None, field_effect: float = FIELD_EFFECT) -> dict:
    """What the registered study leaves open, from the pre-registration and its record:
    ``margins`` (endpoint -> δ), ``pairs``, ``seeds_per_fold``, the design's ``power``
    against a V_rand effect of ``field_effect`` (two-sided paired test) and the seeds per fold
    TOST would need to exclude it (``seeds_to_exclude``; both
    :func:`topobook.study.confirmatory.field_effect_reading`), the baseline's remaining error
    on V_rand per fold (``remaining``: 1 − V_rand), and ``trivial_gap`` per fold where the
    record has it: the baseline's mean Betti matching error minus the best trivial
    predictor's (≥ 0: the baseline is no better than a constant image)."""
    from topobook.study import confirmatory as cs

    record = cs.load_record() if record is None else record
    spec = cs.load_preregistration()
    reading = cs.field_effect_reading(spec, "v_rand", field_effect)
    baseline = record["study"]["baseline"]
    trivial = record["study"].get("best_trivial_betti_matching", {})
    return {
        "margins": {e: float(v["margin"]) for e, v in spec["endpoints"]["primary"].items()},
        "pairs": int(record["study"]["pairs"]),
        "seeds_per_fold": int(spec["seeds"]["per_fold"]),
        "field_effect": float(field_effect),
        "power": float(reading["power"]),
        "seeds_to_exclude": int(reading["seeds_tost"]),
        "remaining": {fold: 1.0 - float(v["v_rand"]) for fold, v in baseline.items()},
        "trivial_gap": {fold: float(v["betti_matching"]) - float(trivial[fold])
                        for fold, v in baseline.items()
                        if "betti_matching" in v and fold in trivial},
    }


BRANCHED_OUTCOME = "07_branched/study_outcome.json"  # in results_dir, written by chapter 7


def branched_outcome(results_dir) -> dict:
    """The second registration's study as the closing page reads it: what chapter 7 wrote of
    this build's runs (``<results_dir>/07_branched/study_outcome.json``: its primary family, the
    runs, whether they were the registered design; ``"source": "this build"``) where the build
    trained them, else the committed outcome of the registering machine
    (:func:`topobook.study.branched_study.load_registration_outcome`; ``"source":
    "registered"``)."""
    import json

    path = Path(results_dir) / BRANCHED_OUTCOME
    if path.exists():
        return {**json.loads(path.read_text()), "source": "this build"}
    from topobook.study import branched_study as bs

    record = bs.load_registration_outcome()
    return {"registered_design": True, "runs": int(record["runs"]),
            "pairs": int(record["pairs"]), "machines": int(record["machines"]),
            "machine": record["machine"], "commit": record["commit"],
            "primary": [r for r in record["primary"] if r["fold"] == "all"],
            "source": "registered"}


def branched_answers(outcome: dict, alpha: float | None = None):
    """The second registration's answers (:data:`ANSWER_COLUMNS`) from :func:`branched_outcome`:
    each prior and primary endpoint over all pairs, with the registered margin and the TOST
    decision (chapter 7's Table 7.17)."""
    import pandas as pd

    from topobook.study import branched_study as bs

    spec = bs.load_registration()
    alpha = float(spec["analysis"]["alpha"]) if alpha is None else alpha
    main = pd.DataFrame(outcome["primary"])
    if main.empty:
        raise ValueError("the second study's outcome holds no primary comparison")
    directions = {m: higher_is_better(m) for m in spec["endpoints"]["primary"]}
    return primary_family_answers(main, "the second registration (chapter 7)", directions,
                                  alpha)


# ------------------------------------------------------------------ TopoMortar, chapter 8


def topomortar_answers(results_dir, alpha: float = ALPHA):
    """Chapter 8's answers, ours and the authors': the runs and margins its last execution
    recorded in ``results_dir`` (:func:`topobook.study.topomortar_study.read_chapter_record`;
    a ValueError naming the folder when chapter 8 has not run there), tested by its own
    :func:`topobook.study.topomortar_study.paired_tests`, and the authors' published per-seed
    results for the same test images tested the same way. Returns ``(ours, authors)``,
    answers on every :data:`topobook.study.topomortar_study.HEADLINE` metric; ``comparison``
    is our arm's name in both (the authors' losses mapped by
    :data:`topobook.study.topomortar_study.AUTHORS_LOSS`)."""
    from topobook.study import topomortar_study as tmt

    record, ours = tmt.read_chapter_record(results_dir)
    margins = {"dice_margin": record["dice_margin"], "betti_margin": record["betti_margin"]}
    question = "TopoMortar beside its authors (chapter 8)"
    ours_table = tmt.paired_tests(ours, BASELINE_RUN, alpha=alpha, **margins)
    published = tmt.published_per_seed_means(record["test_ids"], record["training_set"])
    theirs = {arm: published[loss] for arm, loss in tmt.AUTHORS_LOSS.items()
              if loss is not None and arm in ours}
    authors_table = tmt.paired_tests(theirs, BASELINE_RUN, alpha=alpha, **margins)
    return (answers_from_table(ours_table, question, "ours", tmt.HEADLINE, alpha),
            answers_from_table(authors_table, question, "the authors'", tmt.HEADLINE, alpha))


# ------------------------------------------------------------------------------ sentences


def endpoint_name(metric: str) -> str:
    """A metric's name in a sentence, without its arrow: ``"v_rand"`` -> ``"V_rand"``,
    ``"betti1_error"`` -> ``"Betti-1 error"``."""
    from topobook.metrics.evaluation import METRICS
    from topobook.study import topomortar_study as tmt
    from topobook.study.tables import THRESHOLD_ONLY_METRICS, metric_label

    if metric in METRICS or metric in THRESHOLD_ONLY_METRICS:
        return metric_label(metric, arrow=False)
    if metric in tmt.METRIC_LABELS:
        return tmt.METRIC_LABELS[metric].rstrip(" ↑↓")
    raise ValueError(f"unknown metric {metric!r}")


def comparison_name(name: str) -> str:
    """A run or prior in a sentence: ``"betti_matching"`` -> ``"Betti matching"``."""
    names = {"topo_loss": "L_topo", "betti_matching": "Betti matching", "cldice": "clDice",
             "skeleton_recall": "Skeleton Recall", "scnp": "SCNP",
             "control_sorted_value": "the value-only control",
             "notebook_loss": "the notebook loss",
             "notebook_loss_misrouted": "the misrouted notebook loss"}
    return names.get(name, name.replace("_", " "))


def effect_text(answer: Mapping) -> str:
    """``"Δ V_rand = +0.0063 [−0.0228, +0.0354]"``: an answer's effect with its 95 % interval."""
    from topobook.study.tables import interval, signed

    return (f"Δ {endpoint_name(answer['endpoint'])} = {signed(answer['delta'])} "
            f"{interval(answer['low'], answer['high'])}")


def answer_sentence(answer: Mapping) -> str:
    """One answer in words: the verdict, then the effect with its interval (and the margin of
    an equivalence, the reason of an inconclusive answer)."""
    from topobook.study.tables import significant

    verdict = answer["verdict"]
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; one of {VERDICTS}")
    who = comparison_name(answer["comparison"])
    effect = effect_text(answer)
    if verdict in ("better", "worse"):
        return f"{who}: {verdict} on {endpoint_name(answer['endpoint'])}, {effect}"
    if verdict == "equivalent":
        return (f"{who}: no effect on {endpoint_name(answer['endpoint'])} larger than "
                f"±{significant(answer['margin'])} (TOST), {effect}")
    return (f"{who}: inconclusive on {endpoint_name(answer['endpoint'])} ({answer['reason']}), "
            f"{effect}")


def verdict_counts(answers) -> dict[str, int]:
    """How many answers reach each verdict of :data:`VERDICTS` (zeros included)."""
    found = list(answers["verdict"])
    unknown = sorted(set(found) - set(VERDICTS))
    if unknown:
        raise ValueError(f"unknown verdicts {unknown}")
    return {v: found.count(v) for v in VERDICTS}


def family_sentence(answers) -> str:
    """What one family of answers decided, in a sentence: how many comparisons, how many
    better, worse or equivalent (named), and why the rest are inconclusive when they share a
    reason."""
    if len(answers) == 0:
        raise ValueError("no answers")
    counts = verdict_counts(answers)
    decided = [f"{comparison_name(a['comparison'])} {a['verdict']} on "
               f"{endpoint_name(a['endpoint'])}" for a in answers.to_dict("records")
               if a["verdict"] in ("better", "worse")]
    equivalent = [f"{comparison_name(a['comparison'])} on {endpoint_name(a['endpoint'])}"
                  for a in answers.to_dict("records") if a["verdict"] == "equivalent"]
    seeds = sorted({int(n) for n in answers["n"]})
    span = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    text = f"{len(answers)} comparisons with {span} paired seeds each: "
    parts = ["; ".join(decided) if decided
             else "none better or worse after Holm's correction"]
    if equivalent:
        parts.append("within the margin (no larger effect): " + ", ".join(equivalent))
    if counts["inconclusive"]:
        reasons = set(answers.loc[answers["verdict"] == "inconclusive", "reason"])
        rest = ("all" if counts["inconclusive"] == len(answers)
                else f"the other {counts['inconclusive']}")
        parts.append(f"{rest} inconclusive"
                     + (f" ({reasons.pop()})" if len(reasons) == 1 else ""))
    return text + "; ".join(parts) + "."


def isbi_line(registered, study: str = "the pre-registered study") -> str:
    """The landing page's line for ISBI 2012, from :func:`registered_answers` (or
    :func:`branched_answers`, with ``study`` naming it): what the registered study showed on
    V_rand, prior by prior, in plain text."""
    from topobook.study.tables import interval, signed

    rows = registered[registered["endpoint"] == "v_rand"].to_dict("records")
    if not rows:
        raise ValueError("no V_rand answer in the registered study")

    def named(group) -> str:
        return " and ".join(f"{comparison_name(r['comparison'])} (Δ = {signed(r['delta'])} "
                            f"{interval(r['low'], r['high'])})" for r in group)

    parts = []
    for verdict in VERDICTS:
        group = [r for r in rows if r["verdict"] == verdict]
        if not group:
            continue
        if verdict == "equivalent":
            parts.append(f"effects on V_rand larger than ±{_number(group[0]['margin'])} are "
                         f"excluded for {named(group)}, and smaller ones neither shown nor "
                         "excluded")
        elif verdict == "inconclusive":
            parts.append(f"for {named(group)} the study is inconclusive on V_rand")
        else:
            parts.append(f"{named(group)} {'raised' if verdict == 'better' else 'lowered'} "
                         "V_rand")
    return (f"ISBI 2012, {study} ({int(rows[0]['n'])} seed pairs): "
            + "; ".join(parts) + ".")


def topomortar_line(ours, authors, endpoint: str = "betti1_error") -> str:
    """The landing page's line for TopoMortar, from :func:`topomortar_answers`: on
    ``endpoint`` (default the Betti-1 error, the broken joints), what our runs and the
    authors' published runs showed, prior by prior, in plain text."""
    def side(answers, who: str) -> str:
        rows = answers[answers["endpoint"] == endpoint].to_dict("records")
        if not rows:
            return f"{who}: no prior tested"
        seeds = max(int(r["n"]) for r in rows)
        named = {v: [comparison_name(r["comparison"]) for r in rows if r["verdict"] == v]
                 for v in VERDICTS}
        found = []
        for verdict, words in (("better", "fewer errors"), ("worse", "more errors")):
            if named[verdict]:
                found.append(f"{words} with {', '.join(named[verdict])}")
        if named["equivalent"]:
            found.append(f"no effect larger than the margin with "
                         f"{', '.join(named['equivalent'])}")
        if named["inconclusive"]:
            rest = "every prior" if len(named["inconclusive"]) == len(rows) else ", ".join(
                named["inconclusive"])
            found.append(f"inconclusive for {rest}")
        return f"{who} ({seeds} seeds): " + "; ".join(found)

    return (f"TopoMortar, {endpoint_name(endpoint)} against the plain baseline: "
            + side(ours, "our runs") + "; " + side(authors, "the authors' runs") + ".")


# ------------------------------------------------------------------------------- figure rows


def higher_is_better(metric: str) -> bool:
    """Whether a higher ``metric`` is better (a metric of ISBI 2012,
    :data:`topobook.metrics.evaluation.METRICS`, or of TopoMortar,
    :data:`topobook.study.topomortar_study.HEADLINE`)."""
    from topobook.metrics.evaluation import METRICS
    from topobook.study import topomortar_study as tmt
    from topobook.study.tables import THRESHOLD_ONLY_METRICS

    if metric in METRICS:
        return bool(METRICS[metric])
    if metric in THRESHOLD_ONLY_METRICS:
        return bool(THRESHOLD_ONLY_METRICS[metric])
    if metric in tmt.HEADLINE:
        return bool(tmt.HEADLINE[metric])
    raise ValueError(f"unknown metric {metric!r}")


def in_margins(answers):
    """The answers that have a margin, with their effect and interval divided by it and signed
    so that > 0 is better (``x``, ``x_low``, ``x_high``): on this scale ±1 are the margins, an
    interval inside (−1, 1) is an equivalence and one that misses 0 a difference, whatever
    the metric's units. A ``pandas.DataFrame`` (a copy)."""
    margin = answers["margin"].astype(float)
    rows = answers[np.isfinite(margin)].copy()
    if (rows["margin"] <= 0).any():
        raise ValueError("a margin must be positive")
    sign = np.array([1.0 if higher_is_better(m) else -1.0 for m in rows["endpoint"]])
    scale = rows["margin"].to_numpy(dtype=float)
    ends = np.stack([rows["low"].to_numpy(dtype=float), rows["high"].to_numpy(dtype=float)])
    ends = ends * sign / scale
    rows["x"] = rows["delta"].to_numpy(dtype=float) * sign / scale
    rows["x_low"], rows["x_high"] = ends.min(axis=0), ends.max(axis=0)
    return rows
