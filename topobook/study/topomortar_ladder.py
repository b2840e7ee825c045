"""Chapter 8's baseline ladder: the TopoMortar recipe chosen on the validation images only.

The book's first TopoMortar baseline (BCE on raw RGB, 64 x 64 crops) made about five times the
topological errors of the authors' CE + Dice at the same Dice. The ladder tries the authors'
choices one at a time on that baseline, then together, on seeds 0-2, and reads the **validation
images only** (51-70): the test images of chapter 8 choose nothing.

* Rungs (:data:`RUNGS`): each a set of :class:`topobook.training.config.TrainConfig` fields
  changed from :data:`BASE`, the first TopoMortar baseline of the book. Every rung already has
  the rot90 and flip augmentation of every crop (:mod:`topobook.training.patches`) and
  whole-image inference at the authors' argmax (:mod:`topobook.datasets.topomortar`), so these
  two of the authors' choices are not rungs.
* Rule (:func:`choose_rung`, fixed before the runs): among the rungs whose mean validation Dice
  is at least :data:`DICE_FLOOR` (the issue's 0.90), the lowest mean validation Betti-0 plus
  Betti-1 error (whole image, the authors' metrics); ties to the fewer training pixels, then
  the order of :data:`RUNGS`. Added once the first rungs' costs were measured: only rungs whose
  median run costs at most :data:`MAX_CPU_MINUTES` (the budget's cap, derived there).
* The ladder is not trained by the default build (its runs cost a third of chapter 8's
  budget); its outcome, trained once, is committed as data
  (``topobook/study/topomortar_ladder_outcome.yml``, with the commit and machine that trained it)
  and read by the chapter; the profile ``topomortar_ladder`` of ``book/profiles.yml`` trains it
  again (:func:`ladder_runs`), and the chapter then shows this build's ladder beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from topobook.training.config import TrainConfig
from topobook.training.run import load_run

# The first TopoMortar baseline of the book (chapter 8's parameters before the ladder).
BASE: dict = {
    "dataset": "topomortar",
    "strategy": "baseline",
    "recipe": "stable",
    "epochs": 40,
    "average_epochs": 10,
    "membrane_weight": 1.0,
    "crops_per_slice": 2,
    "width": 16,
    "n_val_patches": 24,
    "diagram_epochs": (),
}
# rung -> (label, the fields changed from BASE); 128 x 128 crops at one crop per image and
# epoch train on twice the pixels of two 64 x 64 crops (the whole-image budget is out of reach)
RUNGS: dict[str, tuple[str, dict]] = {
    "bce_raw_64": ("BCE, raw RGB, 64² (the first)", {}),
    "ce_dice": ("+ CE + Dice", {"base_loss": "ce_dice"}),
    "zscore": ("+ z-score per image", {"input_norm": "zscore"}),
    "crop_128": ("+ 128² crops", {"patch_size": 128, "crops_per_slice": 1}),
    "ce_dice_zscore": ("+ CE + Dice and z-score", {"base_loss": "ce_dice", "input_norm": "zscore"}),
    "together": (
        "all three",
        {"base_loss": "ce_dice", "input_norm": "zscore", "patch_size": 128, "crops_per_slice": 1},
    ),
    "together_longer": (
        "all three, 1.5 × steps",
        {"base_loss": "ce_dice", "input_norm": "zscore", "patch_size": 128, "crops_per_slice": 1,
         "epochs": 60, "average_epochs": 15},
    ),
}
SEEDS = (0, 1, 2)
DICE_FLOOR = 0.90
# The budget's cap on a baseline run (training and evaluation, CPU-minutes on one thread).
# `make book` must stay within 150 minutes on 2 cores; the last measured build (f5974c9: 266
# CPU-minutes of runs in 131 minutes) leaves chapter 8 about 100 CPU-minutes beside chapters
# 4-7. At 8 seeds, with 13 λ-sweep branches on seed 0 and 35 more on seeds 1-7, each branch 30 %
# of a baseline's training plus an evaluation of about 0.8 minute, a baseline of b minutes
# costs chapter 8 about 8 b + 48 (0.3 (b - 0.8) + 0.8) = 22.4 b + 27 CPU-minutes: b <= 3.2.
# The cap was added to the rule after the first rungs had been trained (their costs measured
# and their validation scores seen); the chapter says so, and shows the rung the rule chooses
# without it.
MAX_CPU_MINUTES = 3.2
READ_KEYS = ("dice", "betti0_error", "betti1_error", "cldice")
OUTCOME_FILE = Path(__file__).with_name("topomortar_ladder_outcome.yml")


def rung_config(rung: str, seed: int) -> TrainConfig:
    """The config of one ladder run: :data:`BASE` with the rung's fields, at ``seed``."""
    if rung not in RUNGS:
        raise ValueError(f"rung must be one of {tuple(RUNGS)}, got {rung!r}")
    return TrainConfig.from_dict({**BASE, **RUNGS[rung][1], "seed": int(seed)})


def ladder_runs(results_dir, rungs=None, seeds=SEEDS) -> list[tuple[Path, TrainConfig]]:
    """``(out_dir, config)`` of every ladder run, in
    ``<results_dir>/topomortar_ladder/<rung>/seed<k>``."""
    rungs = tuple(RUNGS) if rungs is None else tuple(rungs)
    return [
        (Path(results_dir) / "topomortar_ladder" / rung / f"seed{seed}", rung_config(rung, seed))
        for rung in rungs
        for seed in seeds
    ]


def training_pixels(config: TrainConfig) -> int:
    """Training pixels a run sees: epochs x training images x crops per image x crop area."""
    return (
        config.epochs * len(config.train_slices) * config.crops_per_slice * config.patch_size**2
    )


def rung_summary(results: dict[str, list[dict]]) -> dict[str, dict]:
    """Per rung, from the ``metrics.json`` of its runs (``results[rung]``): the seeds, the mean
    and SD over seeds of each validation score of :data:`READ_KEYS`, the training pixels and the
    median CPU-minutes of a run (training and evaluation)."""
    out = {}
    for rung, runs in results.items():
        if not runs:
            raise ValueError(f"rung {rung!r} has no finished run")
        row = {"seeds": sorted(int(r["config"]["seed"]) for r in runs)}
        for key in READ_KEYS:
            values = np.array([r["val_mean"][key] for r in runs], dtype=float)
            row[key] = float(values.mean())
            row[f"{key}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        row["training_pixels"] = training_pixels(TrainConfig.from_dict(runs[0]["config"]))
        row["cpu_minutes"] = float(
            np.median([(r["train_seconds"] + r["eval_seconds"]) / 60 for r in runs])
        )
        out[rung] = row
    return out


def choose_rung(
    summary: dict[str, dict], max_cpu_minutes: float | None = MAX_CPU_MINUTES
) -> tuple[str, str]:
    """The rung of the rule stated in the module docstring, among the rungs whose median run
    costs at most ``max_cpu_minutes`` (:data:`MAX_CPU_MINUTES`, the budget's cap; ``None``:
    no cap), and why; ``(rung, reason)``."""
    if not summary:
        raise ValueError("no rung to choose from")
    if max_cpu_minutes is not None:
        summary = {r: row for r, row in summary.items() if row["cpu_minutes"] <= max_cpu_minutes}
        if not summary:
            raise ValueError(f"no rung's run costs at most {max_cpu_minutes} CPU-minutes")
    kept = [r for r in RUNGS if r in summary and summary[r]["dice"] >= DICE_FLOOR]
    if not kept:
        best = max(summary, key=lambda r: summary[r]["dice"])
        return best, f"no rung reached validation Dice {DICE_FLOOR}: the highest Dice"

    def key(rung: str):
        row = summary[rung]
        return (row["betti0_error"] + row["betti1_error"], row["training_pixels"],
                list(RUNGS).index(rung))

    chosen = min(kept, key=key)
    errors = summary[chosen]["betti0_error"] + summary[chosen]["betti1_error"]
    return chosen, (
        f"lowest mean validation Betti-0 + Betti-1 error ({errors:.2f}) among the "
        f"{len(kept)} of {len(summary)} rungs with validation Dice >= {DICE_FLOOR}"
        + ("" if max_cpu_minutes is None else f" and a run of <= {max_cpu_minutes:g} CPU-minutes")
    )


def load_outcome(path=OUTCOME_FILE) -> dict:
    """The committed ladder outcome: ``commit``, ``machine``, ``date``, ``seeds``, ``rungs``
    (rung -> :func:`rung_summary` row), ``max_cpu_minutes``, ``chosen`` and ``reason`` (the
    rule with the budget's cap), ``chosen_without_cap`` and ``reason_without_cap``. A clear
    error if it is missing or malformed."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: train the ladder with `make book PROFILE=topomortar_ladder` "
            "and write its outcome with topobook.study.topomortar_ladder.write_outcome"
        )
    outcome = yaml.safe_load(path.read_text())
    missing = sorted({"commit", "machine", "date", "seeds", "rungs", "chosen", "reason",
                      "max_cpu_minutes", "chosen_without_cap"} - set(outcome or {}))
    if missing:
        raise ValueError(f"{path} lacks {missing}")
    unknown = sorted(set(outcome["rungs"]) - set(RUNGS))
    if unknown or outcome["chosen"] not in outcome["rungs"]:
        raise ValueError(f"{path}: unknown rungs {unknown} or chosen {outcome['chosen']!r}")
    return outcome


def ladder_results(results_dir) -> dict[str, list[dict]]:
    """``{rung: [metrics.json of each seed]}`` of the finished ladder runs of ``results_dir``
    (:func:`ladder_runs`, read with :func:`topobook.training.run.load_run`); a
    ``FileNotFoundError`` names the first unfinished run."""
    by_rung: dict[str, list[dict]] = {}
    for out_dir, _ in ladder_runs(results_dir):
        by_rung.setdefault(out_dir.parent.name, []).append(load_run(out_dir))
    return by_rung


def write_outcome(results_dir, commit: str, date: str, path=OUTCOME_FILE) -> dict:
    """Summarise the finished ladder runs of ``results_dir`` (:func:`ladder_runs`) with
    :func:`rung_summary` and :func:`choose_rung`, and write them to ``path`` with the ``commit``
    that trained them, the ``date`` and the machine of the first run's record. Returns the
    outcome. A ``FileNotFoundError`` names the first unfinished run."""
    by_rung = ladder_results(results_dir)
    summary = rung_summary(by_rung)
    chosen, reason = choose_rung(summary)
    uncapped, uncapped_reason = choose_rung(summary, max_cpu_minutes=None)
    machine = next(iter(by_rung.values()))[0]["machine"]
    outcome = {
        "commit": commit,
        "date": date,
        "machine": {k: machine[k] for k in ("cpu_model", "cpu_capability", "cores", "torch")},
        "seeds": list(SEEDS),
        "dice_floor": DICE_FLOOR,
        "max_cpu_minutes": MAX_CPU_MINUTES,
        "chosen": chosen,
        "reason": reason,
        "chosen_without_cap": uncapped,
        "reason_without_cap": uncapped_reason,
        "rungs": {rung: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
                  for rung, row in summary.items()},
    }
    header = (
        "# Chapter 8's baseline ladder (topobook.study.topomortar_ladder): the validation scores\n"
        "# of each rung, mean and SD over seeds 0-2, trained once at the commit and on the\n"
        "# machine below; read by the chapter, never recomputed by the default build (numbers\n"
        "# from training differ between machines). `make book PROFILE=topomortar_ladder`\n"
        "# trains the ladder again and shows it beside this record.\n"
    )
    Path(path).write_text(header + yaml.safe_dump(outcome, sort_keys=False, width=100))
    return outcome
