"""Numbers and labels of the book's tables, formatted once for every chapter.

The chapters build their tables as pandas DataFrames of numbers and turn them into text here:
counts as integers, measurements to 3 significant digits, weights λ as fractions (1/6000),
p-values with their leading zeros, intervals as ``[low, high]``, and each metric named by a
short label with the direction in which it is better (↑ higher, ↓ lower, read from
:data:`topobook.metrics.evaluation.METRICS`). A formatted table is a DataFrame of strings, which
Jupyter Book shows as a plain HTML table; its width is then set by its labels, which are kept
short on purpose.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pandas as pd

from topobook.metrics.evaluation import METRICS, OPERATING_POINT_METRICS

MISSING = "–"  # shown for NaN and None

# short labels of the metrics of topobook.metrics.evaluation (the arrow is added by metric_label)
METRIC_NAMES = {
    "v_rand": "V_rand",
    "v_info": "V_info",
    "cldice": "clDice",
    "betti_8conn": "Betti error",
    "betti_matching": "Betti matching",
    "dice": "Dice",
    "accuracy": "accuracy",
    "completeness": "completeness",
    "correctness": "correctness",
    "quality": "quality",
    "betti_paper": "Betti (paper)",
    "betti_8conn_thinned": "Betti error, thinned",
    "betti_matching_thinned": "Betti matching, thinned",
}
# metrics read at one threshold only (topobook.metrics.evaluation.score_at_threshold), on the
# thinned segmentation that V_rand scores; lower is better
THRESHOLD_ONLY_METRICS = {"betti_8conn_thinned": False, "betti_matching_thinned": False}


def _number(value) -> float | None:
    """``value`` as a float, or None for None/NaN; a clear error for anything else."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {value!r}") from None
    return None if math.isnan(number) else number


def significant(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, without an exponent between 1e-4 and 1e6.

    Values of at least ``10**digits`` are rounded to integers (``12345.6`` -> ``"12346"``: no
    digit is hidden behind zeros); values below 1e-4 in magnitude use an exponent
    (``"1.23e-05"``). ``0.923456`` -> ``"0.923"``, ``127.333`` -> ``"127"``, ``0.5`` -> ``"0.5"``
    (trailing zeros dropped), NaN -> ``"–"``, ``inf`` -> ``"∞"``.
    """
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    number = _number(value)
    if number is None:
        return MISSING
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    if number == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(number)))
    if abs(number) < 1e-4 or abs(number) >= 1e6:
        return f"{number:.{digits - 1}e}"
    decimals = max(digits - 1 - magnitude, 0)
    text = f"{round(number, decimals):.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace("-", "−") if text not in ("-0", "−0") else "0"


def fixed(value, decimals: int = 3) -> str:
    """``value`` with exactly ``decimals`` decimals (for a column of comparable scores, so
    that they line up): ``0.92`` -> ``"0.920"``; NaN -> ``"–"``."""
    number = _number(value)
    if number is None:
        return MISSING
    return f"{number:.{decimals}f}".replace("-", "−")


def signed(value, digits: int = 3) -> str:
    """A difference with its sign: ``0.0123`` -> ``"+0.0123"``, ``-0.5`` -> ``"−0.5"``."""
    number = _number(value)
    if number is None:
        return MISSING
    text = significant(number, digits)
    return text if text.startswith("−") or text == "0" else f"+{text}"


def count(value) -> str:
    """A count as an integer: ``129.0`` -> ``"129"``. A value that is not a whole number
    (a mean of counts, say) is an error: format it with :func:`significant` instead."""
    number = _number(value)
    if number is None:
        return MISSING
    if abs(number - round(number)) > 1e-9 * max(1.0, abs(number)):
        raise ValueError(f"a count must be a whole number, got {value!r}")
    return str(int(round(number)))


def fraction(value, max_denominator: int = 1_000_000) -> str:
    """A weight λ: ``1/6000`` for the reciprocal of a whole number (to 1e-9 relative),
    otherwise :func:`significant` (``0.5`` -> ``"0.5"``, ``0.3`` -> ``"0.3"``). Values of at
    least 0.1 are written as decimals; 0 -> ``"0"``."""
    number = _number(value)
    if number is None:
        return MISSING
    if number < 0:
        raise ValueError(f"a weight must not be negative, got {value!r}")
    if number == 0 or number >= 0.1:
        return significant(number)
    reciprocal = 1.0 / number
    whole = round(reciprocal)
    if whole <= max_denominator and abs(reciprocal - whole) <= 1e-9 * reciprocal:
        return f"1/{whole}"
    return significant(number)


def p_value(value) -> str:
    """A p-value to 3 significant digits; 1 stays ``"1"``, values below 1e-4 get an exponent."""
    number = _number(value)
    if number is not None and not 0 <= number <= 1:
        raise ValueError(f"a p-value lies in [0, 1], got {value!r}")
    return significant(number)


def interval(low, high, digits: int = 3) -> str:
    """A confidence interval of a difference: ``[−0.0123, +0.0456]``."""
    return f"[{signed(low, digits)}, {signed(high, digits)}]"


def plus_minus(mean, half_width, digits: int = 3) -> str:
    """``mean ± half-width``, both to ``digits`` significant digits."""
    return f"{significant(mean, digits)} ± {significant(half_width, 2)}"


# still shorter labels, for tables with many metric columns (say so in the caption)
METRIC_ABBREVIATIONS = {
    "accuracy": "acc.",
    "completeness": "compl.",
    "correctness": "corr.",
    "quality": "qual.",
    "betti_matching": "BM error",
    "betti_8conn": "Betti err.",
    "betti_paper": "Betti (paper)",
}


def metric_label(name: str, arrow: bool = True, short: bool = False) -> str:
    """The short label of a metric of :data:`topobook.metrics.evaluation.METRICS`, with ↑ when
    higher is better and ↓ when lower is: ``"betti_matching"`` -> ``"Betti matching ↓"``; with
    ``short``, the abbreviation of :data:`METRIC_ABBREVIATIONS` where there is one
    (``"completeness"`` -> ``"compl. ↑"``)."""
    known = {**METRICS, **THRESHOLD_ONLY_METRICS}
    if name not in known:
        raise ValueError(f"unknown metric {name!r}; known: {sorted(known)}")
    label = METRIC_NAMES.get(name, name)
    if short:
        label = METRIC_ABBREVIATIONS.get(name, label)
    return f"{label} {'↑' if known[name] else '↓'}" if arrow else label


FORMATS: dict[str, Callable] = {
    "sig": significant,
    "fixed": fixed,
    "signed": signed,
    "count": count,
    "lam": fraction,
    "p": p_value,
    "text": lambda v: MISSING if v is None or (isinstance(v, float) and math.isnan(v)) else str(v),
}


def format_table(
    frame: pd.DataFrame, formats: Mapping[str, str | Callable] | str = "sig", by: str = "column"
) -> pd.DataFrame:
    """A copy of ``frame`` with every value turned into text.

    ``formats`` maps a column (``by="column"``) or a row label (``by="row"``, for tables with
    one metric or quantity per row) to a kind of :data:`FORMATS` (``"sig"``, ``"fixed"``,
    ``"signed"``, ``"count"``, ``"lam"``, ``"p"``, ``"text"``) or to a function of one value;
    a single kind applies to every column. Columns or rows not named are formatted with
    ``"sig"``. Labels are kept, except that the name of a plain index moves to the header's
    corner (``columns.name``), so that the table has one header row.
    """
    if by not in ("column", "row"):
        raise ValueError(f"by must be 'column' or 'row', got {by!r}")
    if isinstance(formats, str):
        formats = {key: formats for key in (frame.columns if by == "column" else frame.index)}
    keys = frame.columns if by == "column" else frame.index
    unknown = [k for k in formats if k not in keys]
    if unknown:
        raise ValueError(f"formats name {unknown}, which are not {by}s of the table")

    def formatter(key) -> Callable:
        kind = formats.get(key, "sig")
        if callable(kind):
            return kind
        if kind not in FORMATS:
            raise ValueError(f"unknown format {kind!r} for {key!r}; known: {sorted(FORMATS)}")
        return FORMATS[kind]

    text = frame.astype(object).copy()
    if not isinstance(text.index, pd.MultiIndex) and text.index.name and text.columns.name is None:
        # pandas draws an index name as a second header row; the corner cell holds it instead
        text.columns.name, text.index.name = text.index.name, None
    if by == "column":
        for position, key in enumerate(frame.columns):
            text.iloc[:, position] = [formatter(key)(v) for v in frame.iloc[:, position]]
    else:
        for position, key in enumerate(frame.index):
            text.iloc[position, :] = [formatter(key)(v) for v in frame.iloc[position, :]]
    return text


def label_metrics(frame: pd.DataFrame, axis: str = "index", short: bool = False) -> pd.DataFrame:
    """A copy of ``frame`` with the metric names of its index (or of its columns, or of the
    level named ``metric`` of a MultiIndex) replaced by their labels (:func:`metric_label`,
    abbreviated with ``short``)."""
    if axis not in ("index", "columns"):
        raise ValueError(f"axis must be 'index' or 'columns', got {axis!r}")
    labels = getattr(frame, axis)

    def rename(name):
        if name in METRICS:
            return metric_label(name, short=short)
        return OPERATING_POINT_LABELS.get(name, name)

    if isinstance(labels, pd.MultiIndex):
        if "metric" not in labels.names:
            raise ValueError("a MultiIndex needs a level named 'metric' to label")
        new = labels.set_levels(
            [rename(v) for v in labels.levels[labels.names.index("metric")]], level="metric"
        )
    else:
        new = pd.Index([rename(v) for v in labels], name=labels.name)
    out = frame.copy()
    setattr(out, axis, new)
    return out


# --- the training runs, in words --------------------------------------------------------------

INPUT_MODES = {
    "processed": "the image processed by Algorithm 1 and interpolated (chapter 3, the paper's "
    "text)",
    "raw+processed": "the raw image and the processed image as two input channels",
    "modified": "the raw image with a one-pixel frame at min − 1 (the authors' notebook)",
}


def _field(config, name: str):
    return config[name] if isinstance(config, Mapping) else getattr(config, name)


def _uses_loss(config) -> bool:
    return "topo_loss" in _field(config, "strategy") and _field(config, "lam") > 0


def term_label(config) -> str:
    """The term a run adds to the cross-entropy, short: ``"L_topo (lifetime, cubical)"``,
    ``"clDice (3 iterations)"``, ``"Betti matching"``, ``"sorted values (control)"``, or
    ``"BCE only"``. ``config`` is a :class:`topobook.training.config.TrainConfig` or its dict (as in
    ``metrics.json``)."""
    if not _uses_loss(config):
        return "BCE only"
    loss = _field(config, "loss")
    if loss == "topo":
        details = [_field(config, "matching"), _field(config, "complex")]
        details += ["zero-length bars"] * bool(_field(config, "keep_zero_length"))
        details += ["misrouted"] * bool(_field(config, "misroute_gradient"))
        return f"L_topo ({', '.join(details)})"
    if loss == "cldice":
        return f"clDice ({_field(config, 'cldice_iterations')} iterations)"
    if loss == "scnp":
        return f"SCNP ({_field(config, 'scnp_window')}×{_field(config, 'scnp_window')} window)"
    names = {"betti_matching": "Betti matching", "sorted_value": "sorted values (control)",
             "skeleton_recall": "Skeleton Recall"}
    if loss not in names:
        raise ValueError(f"unknown loss {loss!r}")
    return names[loss]


def describe_run(config) -> str:
    """One sentence, in Markdown, that says what a run trains: the network's input and the
    loss, with λ as a fraction (:func:`fraction`)."""
    strategy = _field(config, "strategy")
    if strategy not in ("baseline", "topo_loss", "topo_input", "topo_loss+topo_input"):
        raise ValueError(f"unknown strategy {strategy!r}")
    seen = "the raw image"
    if "topo_input" in strategy:
        seen = INPUT_MODES.get(_field(config, "input_mode"), _field(config, "input_mode"))
    if not _uses_loss(config):
        loss = "the cross-entropy (BCE) alone"
    else:
        term = {
            "topo": "the topological loss of chapter 2",
            "cldice": "the clDice loss of the membranes (chapter 6)",
            "betti_matching": "the Betti matching loss (chapter 6)",
            "sorted_value": "the sorted-value term alone, a control without topology (chapter 6)",
        }.get(_field(config, "loss"), _field(config, "loss"))
        loss = f"BCE + λ × {term}, λ = {fraction(_field(config, 'lam'))}"
        if _field(config, "loss") == "topo":
            loss += f" ({term_label(config)[len('L_topo ('):-1]})"
    width = _field(config, "width")
    return f"A U-Net of base width {width} sees {seen} and is trained with {loss}."


def _mean_and_range(values: list[float]) -> tuple[str, str]:
    """The mean of ``values`` and, for more than one, ``"a to b"`` (their range), as text."""
    mean = significant(sum(values) / len(values))
    spread = f"{significant(min(values))} to {significant(max(values))}" if len(values) > 1 else ""
    return mean, spread


def compare_line(
    run: Mapping[int, Mapping[str, float]],
    baseline: Mapping[int, Mapping[str, float]],
    metrics: tuple[str, ...] = ("v_rand", "betti_matching"),
) -> str:
    """A one-line result in Markdown: for each metric the mean over seeds of a run and the range
    of its seeds, and the same for the baseline, over the seeds the two share. ``run`` and
    ``baseline`` map a seed to that seed's metrics (the ``"mean"`` of its ``metrics.json``);
    the same mapping twice describes the baseline itself."""
    shared = sorted(set(run) & set(baseline))
    if not shared:
        raise ValueError(f"no seed in common: run {sorted(run)}, baseline {sorted(baseline)}")
    parts = []
    for name in metrics:
        mine, mine_range = _mean_and_range([run[s][name] for s in shared])
        theirs, theirs_range = _mean_and_range([baseline[s][name] for s in shared])
        text = f"{metric_label(name)} **{mine}**" + (f", seeds {mine_range}" if mine_range else "")
        if run is not baseline:
            text += f" (baseline {theirs}" + (f", {theirs_range})" if theirs_range else ")")
        parts.append(text)
    seeds = ", ".join(str(s) for s in shared)
    return f"{'; '.join(parts)}: means over seed{'s' * (len(shared) > 1)} {seeds}."


def run_label(name: str) -> str:
    """A run's folder name as a table label that can wrap: ``"topo_input_two_channel"`` ->
    ``"topo input two channel"``, ``"topo_loss+topo_input"`` -> ``"topo loss + topo input"``."""
    return name.replace("_", " ").replace("+", " + ")


def comparison_tables(
    comparisons: pd.DataFrame, label: Callable[[str], str] = run_label
) -> dict:
    """The paired comparisons of :func:`topobook.study.stats.compare_with_baseline` as narrow
    formatted tables instead of one wide one:

    * ``"difference"``: runs (rows) by metrics (columns), the mean paired difference Δ;
    * ``"favour"``: the same grid, how many seeds point to the better side (``"4/5"``);
    * ``"p"``: the same grid, the Holm-adjusted p-value, followed by ``better`` or ``worse``
      where the test reached that verdict;
    * ``"interval"``: one row per run and metric: Δ, its 95 % interval and the unadjusted
      p-value;
    * ``"verdicts"``: one sentence (Markdown) counting the verdicts of the family, the other
      kinds (``"no detectable difference"``, ``"inconclusive"``) included.

    Metrics are labelled with their better direction (:func:`metric_label`); run names by
    ``label``. The seeds in favour are those whose difference points to the better side
    (``differences`` of each row, direction from :data:`topobook.metrics.evaluation.METRICS`)."""
    needed = {"run", "metric", "mean_difference", "low", "high", "p_value", "p_holm",
              "verdict", "differences"}
    missing = needed - set(comparisons.columns)
    if missing:
        raise ValueError(f"comparisons lack the columns {sorted(missing)}")
    rows = comparisons.copy()
    rows["favour"] = [
        f"{sum(d != 0 and (d > 0) == METRICS[m] for d in ds)}/{len(ds)}"
        for m, ds in zip(rows["metric"], rows["differences"], strict=True)
    ]
    rows["Δ"] = [signed(d) for d in rows["mean_difference"]]
    verdicts = [str(v).split(" (")[0] for v in rows["verdict"]]  # "inconclusive (why)": short
    rows["p (Holm)"] = [
        p_value(p) + (f" {v}" if v in ("better", "worse") else "")
        for p, v in zip(rows["p_holm"], verdicts, strict=True)
    ]
    rows["run"] = [label(r) for r in rows["run"]]
    order = list(dict.fromkeys(rows["metric"]))
    runs = list(dict.fromkeys(rows["run"]))

    def grid(column: str) -> pd.DataFrame:
        table = rows.pivot(index="run", columns="metric", values=column)
        table = table.loc[runs, order]
        table.columns = pd.Index([metric_label(m) for m in order], name=None)
        return table.rename_axis(None)

    long = pd.DataFrame({
        "run": rows["run"],
        "metric": [metric_label(m) for m in rows["metric"]],
        "Δ": rows["Δ"],
        "95 % interval": [interval(lo, hi) for lo, hi in zip(rows["low"], rows["high"],
                                                             strict=True)],
        "p": [p_value(p) for p in rows["p_value"]],
    }).set_index(["run", "metric"])
    counts = pd.Series(verdicts).value_counts()
    sentence = "Verdicts of the family's {} comparisons: {}.".format(
        len(rows), ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return {"difference": grid("Δ"), "favour": grid("favour"), "p": grid("p (Holm)"),
            "interval": long, "verdicts": sentence}


# --- one run's scores at its operating point ---------------------------------------------------

# labels of the rows of :func:`operating_point_row` that are not metrics (used by label_metrics)
OPERATING_POINT_LABELS = {
    "membrane_fraction": "membrane share",
    "membrane_fraction_truth": "membrane share, truth",
    "threshold": "threshold (validation)",
    "oracle_v_rand": "V_rand ↑, eval. oracle",
    "oracle_v_info": "V_info ↑, eval. oracle",
    "oracle_threshold": "threshold, eval. oracle",
}
ORACLE_ROWS = {"v_rand": "oracle_v_rand", "v_info": "oracle_v_info",
               "threshold_v_rand": "oracle_threshold"}


def operating_point_row(at_operating_point: Mapping) -> dict[str, float]:
    """The scores of one run (or trivial predictor) at its operating point, as one flat row.

    ``at_operating_point``: the ``"at_operating_point"`` entry of a run's ``metrics.json``
    (:func:`topobook.metrics.evaluation.evaluate_at_operating_point`). Returns every metric of
    :data:`topobook.metrics.evaluation.OPERATING_POINT_METRICS` (mean over the evaluation slices,
    read at the threshold chosen on the validation slices), ``membrane_fraction`` (share of the
    evaluation pixels predicted membrane there, in [0, 1]), ``membrane_fraction_truth``, the
    ``threshold`` itself, and the evaluation-set oracle apart (the challenge's own reading:
    Fiji's 0.1 grid, best threshold *of the evaluation slices*): ``oracle_v_rand``,
    ``oracle_v_info``, ``oracle_threshold`` (the threshold of the oracle V_rand). A run trained
    before the operating point was recorded has no such entry: ValueError naming what to do."""
    if not isinstance(at_operating_point, Mapping) or "mean" not in at_operating_point:
        raise ValueError(
            "no scores at the operating point (metrics.json lacks 'at_operating_point'): the run "
            "was trained by an older version; delete its folder and train it again"
        )
    mean = at_operating_point["mean"]
    missing = [m for m in (*OPERATING_POINT_METRICS, "membrane_fraction") if m not in mean]
    oracle = at_operating_point.get("evaluation_oracle", {})
    missing += [f"evaluation_oracle.{k}" for k in ORACLE_ROWS if k not in oracle]
    if missing or "threshold" not in at_operating_point:
        lacks = missing or ["threshold"]
        raise ValueError(f"at_operating_point lacks {lacks}: train the run again")
    row = {m: float(mean[m]) for m in OPERATING_POINT_METRICS}
    row["membrane_fraction"] = float(mean["membrane_fraction"])
    row["membrane_fraction_truth"] = float(mean.get("membrane_fraction_truth", math.nan))
    row["threshold"] = float(at_operating_point["threshold"])
    row.update({name: float(oracle[key]) for key, name in ORACLE_ROWS.items()})
    return row
