"""Chapter 4's runs: one training run per seed of a page's parameters, and their results.

The chapter-run planners of the book have one shape: ``chapter_runs(parameters)`` takes a
page's papermill parameters and returns its training runs as ``(out_dir, TrainConfig)``;
``PAGE_PARAMETERS`` names the parameters that make a page one of the chapter (``book/build.py``
plans every page's runs with it). The other two: :mod:`topobook.study.confirmatory` (chapter 7)
and :mod:`topobook.study.topomortar_study` (chapter 8).
"""

from __future__ import annotations

from pathlib import Path

from topobook.training.config import TrainConfig

# The parameters that make a page one of chapter 4 (book/build.py).
PAGE_PARAMETERS = ("strategy", "seeds", "results_dir")
# Parameters of a chapter-4 page that only change how the page shows its runs.
PAGE_ONLY_PARAMETERS = ("workers", "progress")


def chapter_runs(parameters: dict) -> list[tuple[Path, TrainConfig]]:
    """The training runs of one chapter-4 page, as ``(out_dir, config)``, one per seed.

    ``parameters`` are the page's papermill parameters: ``seeds`` (list), ``run_name`` (folder
    name; empty: the strategy), ``results_dir`` and any :class:`TrainConfig` field. The page and
    ``book/build.py`` both call this, so the runs the build trains are the runs the page loads.
    Page-only parameters (:data:`PAGE_ONLY_PARAMETERS`) are ignored, anything else is an error.
    """
    values = {k: v for k, v in parameters.items() if k not in PAGE_ONLY_PARAMETERS}
    missing = sorted({"seeds", "results_dir"} - set(values))
    if missing:
        raise ValueError(f"page parameters lack {missing}")
    seeds = list(values.pop("seeds"))
    results_dir = Path(values.pop("results_dir"))
    run_name = values.pop("run_name", "") or values.get("strategy", "baseline")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list without repeats, got {seeds}")
    return [
        (results_dir / run_name / f"seed{seed}", TrainConfig.from_dict({**values, "seed": seed}))
        for seed in seeds
    ]


# ---------------------------------------------------------------------------------------------
# What a run page says first and last: the trivial predictors it must beat, and its summary
# ---------------------------------------------------------------------------------------------

# The constant trivial predictors of topobook.metrics.evaluation: the same binary image at every
# threshold, so their scores at any operating point are their scores at 0.5 (chapter 5 scores
# the third, the thresholded raw image, which needs a threshold sweep).
CONSTANT_PREDICTORS = ("all_cell", "all_membrane")
TRIVIAL_CACHE = "trivial_predictors.json"  # in a results folder, beside the runs
# how a run chose its checkpoint (TrainConfig.selection), in words
SELECTION_RULES = {
    "val_bce": "the validation cross-entropy",
    "val_total": "the total loss on the evaluation slices (the authors' protocol)",
}


def trivial_scores(results_dir, eval_slices, images=None, masks=None) -> dict[str, dict]:
    """The constant trivial predictors (:data:`CONSTANT_PREDICTORS`) scored on the ISBI 2012
    evaluation slices ``eval_slices`` as a run is scored at its operating point
    (:func:`topobook.metrics.evaluation.score_at_threshold`): ``{kind: {metric: mean over the
    slices}}``, every metric of the operating point and the predicted ``membrane_fraction``.
    ``images`` and ``masks`` ``(N, H, W)`` are those slices (default: loaded).
    Kept in ``results_dir/trivial_predictors.json``, keyed by the slices and the code hash of
    the scoring modules, so the pages of one build compute them once."""
    import json
    import os
    import tempfile

    from topobook.datasets import isbi2012
    from topobook.metrics import evaluation
    from topobook.training.config import code_hash

    slices = [int(s) for s in eval_slices]
    if not slices:
        raise ValueError("eval_slices is empty: name the evaluation slices to score")
    key = {"eval_slices": slices, "code_hash": code_hash()}
    path = Path(results_dir) / TRIVIAL_CACHE
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            return stored["scores"]
    if images is None or masks is None:
        images, masks = isbi2012.load_isbi(slices)
    scores = {}
    for kind in CONSTANT_PREDICTORS:
        probabilities = evaluation.reference_probabilities(kind, images)
        mean = evaluation.score_at_threshold(probabilities, masks, slices, 0.5)["mean"]
        kept = (*evaluation.OPERATING_POINT_METRICS, "membrane_fraction")
        scores[kind] = {m: float(mean[m]) for m in kept}
    path.parent.mkdir(parents=True, exist_ok=True)
    # written whole or not at all: pages that run at once may both write it
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump({"key": key, "scores": scores}, f, indent=1)
    os.replace(f.name, path)
    return scores


def _better_or_equal(metric: str, a: float, b: float) -> bool:
    from topobook.metrics.evaluation import METRICS

    return a >= b if METRICS[metric] else a <= b


def trivial_line(
    run: dict[int, dict[str, float]],
    trivial: dict[str, dict[str, float]],
    metrics: tuple[str, ...] = ("v_rand", "betti_matching"),
) -> str:
    """One Markdown sentence naming each trivial predictor that scores at least as well as the
    run's mean over seeds on a metric of ``metrics`` (``run``: seed -> scores at the operating
    point; ``trivial``: :func:`trivial_scores`), with how many seeds it matches or beats; ""
    when none does. A metric on which a constant image does as well says nothing on its own
    about the run's topology."""
    from topobook.study.tables import metric_label, significant

    if not run:
        raise ValueError("no seed's scores: the run is not trained")
    found = []
    for metric in metrics:
        values = [seed_scores[metric] for seed_scores in run.values()]
        mean = sum(values) / len(values)
        doing_as_well = [
            f"“{kind.replace('_', ' ')}” scores {significant(scores[metric])} (as good or better "
            f"than {sum(_better_or_equal(metric, scores[metric], v) for v in values)} of "
            f"{len(values)} seeds)"
            for kind, scores in trivial.items()
            if _better_or_equal(metric, scores[metric], mean)
        ]
        if doing_as_well:
            found.append(f"on {metric_label(metric)}, {' and '.join(doing_as_well)} against "
                         f"this run's mean {significant(mean)}")
    if not found:
        return ""
    text = "; ".join(found)
    return ("**A trivial predictor does as well.** " + text[0].upper() + text[1:]
            + ": on such a metric this run shows nothing that a constant image does not.")


def run_summary(
    results: list[dict],
    run: dict[int, dict[str, float]],
    baseline: dict[int, dict[str, float]] | None,
    trivial: dict[str, dict[str, float]],
) -> str:
    """The summary of one training-run page, in Markdown bullets computed from its numbers:
    how the seeds trained (epochs, the selected epochs, minutes), V_rand and the Betti matching
    error at the operating point (mean and seed range; against the baseline seed by seed where
    ``baseline`` has the same seeds), the membrane share it predicts against the truth's (a
    share near 0 is a network collapsed to "all cell"), how its diagram's count changed during
    training, and :func:`trivial_line`. ``results``: the runs' ``metrics.json`` (one per
    seed); ``run`` and ``baseline``: seed -> scores at the operating point
    (:func:`topobook.study.tables.operating_point_row`)."""
    from topobook.metrics.evaluation import METRICS
    from topobook.study.tables import metric_label, significant

    if not results or not run:
        raise ValueError("no finished run to summarise")
    seeds = sorted(run)
    epochs = sorted({int(r["epochs"]) for r in results})
    selected = sorted(int(r["best_epoch"]) for r in results)
    seconds = sum(r["train_seconds"] for r in results) / len(results)
    took = f"{seconds / 60:.1f} CPU-minutes" if seconds >= 60 else f"{seconds:.0f} CPU-seconds"
    picked = (f"epoch {selected[0]}" if selected[0] == selected[-1]
              else f"epochs {selected[0]} to {selected[-1]}")
    rule = SELECTION_RULES.get(results[0].get("selection"), "the selection rule")
    lines = [
        f"* {len(seeds)} seed{'s' * (len(seeds) > 1)} ({', '.join(map(str, seeds))}) trained "
        f"{' or '.join(map(str, epochs))} epochs in {took} each; {rule} selected {picked}."
    ]
    for metric in ("v_rand", "betti_matching"):
        values = [run[s][metric] for s in seeds]
        text = (f"* {metric_label(metric)}: **{significant(sum(values) / len(values))}** "
                f"(seeds {significant(min(values))} to {significant(max(values))})")
        shared = [s for s in seeds if baseline and s in baseline and baseline is not run]
        if shared:
            wins = sum(run[s][metric] != baseline[s][metric]
                       and (run[s][metric] > baseline[s][metric]) == METRICS[metric]
                       for s in shared)
            theirs = sum(baseline[s][metric] for s in shared) / len(shared)
            text += (f"; better than the baseline's same seed in {wins} of {len(shared)} "
                     f"(baseline mean {significant(theirs)})")
        lines.append(text + ".")
    predicted = sum(run[s]["membrane_fraction"] for s in seeds) / len(seeds)
    truth = run[seeds[0]]["membrane_fraction_truth"]
    share = (f"* It calls {100 * predicted:.1f} % of the evaluation pixels membrane at its "
             f"operating point; the truth has {100 * truth:.1f} %")
    if predicted < 0.25 * truth:
        share += ": almost no membrane, a network that has collapsed towards \"all cell\""
    lines.append(share + ".")
    first = results[0]
    recorded = sorted(first.get("diagrams", {}), key=int)
    if len(recorded) >= 2:
        counts = {e: sum(len(d) for d in first["diagrams"][e]) for e in (recorded[0], recorded[-1])}
        change = "fell" if counts[recorded[-1]] < counts[recorded[0]] else "did not fall"
        lines.append(
            f"* Its diagram on the validation crop (seed {first['config']['seed']}) {change}: "
            f"{counts[recorded[0]]} points at epoch {recorded[0]}, "
            f"{counts[recorded[-1]]} at epoch {recorded[-1]}."
        )
    beaten = trivial_line(run, trivial)
    if beaten:
        lines.append(f"* {beaten}")
    return "\n".join(lines)
