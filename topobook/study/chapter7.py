"""Every training run of chapter 7, planned from the page's parameters: the first registration's
runs (:func:`topobook.study.confirmatory.chapter_runs`) and the pilot of the second
(:func:`topobook.study.branched_study.pilot_runs`). The page and ``book/build.py`` both call
:func:`chapter_runs`, so the runs the build trains are the runs the page loads."""

from __future__ import annotations

from pathlib import Path

from topobook.study import branched_study, confirmatory
from topobook.training.config import TrainConfig

# The parameters that make a page chapter 7 (book/build.py picks its planner by them).
PAGE_PARAMETERS = confirmatory.PAGE_PARAMETERS
BRANCHED_PARAMETERS = ("branched_seeds", "branched_lam_grid")


def chapter_runs(parameters: dict) -> list[tuple[Path, TrainConfig]]:
    """The first registration's runs from the parameters it knows, then, when
    ``branched_seeds`` is non-empty, the second registration's pilot on those seeds with
    ``branched_lam_grid`` (``{prior: [λ, ...]}``) and the same ``overrides``."""
    first = {k: v for k, v in parameters.items() if k not in BRANCHED_PARAMETERS}
    runs = confirmatory.chapter_runs(first)
    seeds = list(parameters.get("branched_seeds") or [])
    if seeds:
        runs += branched_study.pilot_runs(
            parameters["results_dir"], seeds, dict(parameters.get("branched_lam_grid") or {}),
            parameters.get("overrides") or {},
        )
    return runs
