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
