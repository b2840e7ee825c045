"""Every training run of chapter 7, planned from the page's parameters: the first registration's
runs (:func:`topobook.study.confirmatory.chapter_runs`), the pilot of the second
(:func:`topobook.study.branched_study.pilot_runs`) and the second registration's study
(:func:`topobook.study.branched_study.study_runs`). The page and ``book/build.py`` both call
:func:`chapter_runs`, so the runs the build trains are the runs the page loads."""

from __future__ import annotations

from pathlib import Path

from topobook.study import branched_study, confirmatory
from topobook.training.config import TrainConfig

# The parameters that make a page chapter 7 (book/build.py picks its planner by them).
PAGE_PARAMETERS = confirmatory.PAGE_PARAMETERS
BRANCHED_PARAMETERS = ("branched_seeds", "branched_lam_grid", "branched_study",
                       "branched_seeds_per_fold")


def chapter_runs(parameters: dict) -> list[tuple[Path, TrainConfig]]:
    """The first registration's runs from the parameters it knows, then, when
    ``branched_seeds`` is non-empty, the second registration's pilot on those seeds with
    ``branched_lam_grid`` (``{prior: [λ, ...]}``) and the same ``overrides``, then, when
    ``branched_study`` is true, the second registration's study (``branched_seeds_per_fold``
    seeds per fold; ``None``: the registered number)."""
    first = {k: v for k, v in parameters.items() if k not in BRANCHED_PARAMETERS}
    runs = confirmatory.chapter_runs(first)
    seeds = list(parameters.get("branched_seeds") or [])
    if seeds:
        runs += branched_study.pilot_runs(
            parameters["results_dir"], seeds, dict(parameters.get("branched_lam_grid") or {}),
            parameters.get("overrides") or {},
        )
    if parameters.get("branched_study"):
        runs += branched_study.study_runs(
            parameters["results_dir"], branched_study.load_registration(),
            parameters.get("branched_seeds_per_fold"), parameters.get("overrides") or {},
        )
    return runs
