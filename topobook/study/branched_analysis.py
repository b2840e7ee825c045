"""The registered analysis of chapter 7's second study (arms branched from one trunk).

This module is part of the registration: chapter 7 prints its SHA-256 beside that of
``preregistration_branched.yml`` and stops if either differs from the values committed in
``preregistration_branched_record.yml`` (:func:`check_fingerprint`). A change to it after the
registration is a deviation, and the record has to say so.

What it does, in the registration's words:

* **Scores** (:func:`study_scores`): one row per (fold, arm, seed). The primary reading is
  ``endpoints.reading`` of the registration (the evaluated stack's own best V_rand threshold on
  the 0.01 grid, one rule for every arm); its metrics keep their names (``v_rand``,
  ``betti_8conn_thinned``, ...). The deployable reading, at the threshold chosen on the four
  validation slices, is prefixed ``validation_``.
* **Primary family** (:func:`primary_analysis`): per prior and primary endpoint, the mean paired
  difference (prior - the same seed's baseline continuation), the stratified sign-flip test
  (by fold, two-sided), Holm over the family, and TOST at the registered margins; the same code
  as the first study's (:func:`topobook.study.confirmatory_analysis.primary_analysis`).
* **Secondary family, behind a serial gate** (:func:`secondary_analysis`): the secondary
  endpoints of every prior form one family, tested only if *every* hypothesis of the primary
  family was rejected, then with Holm over that family at the full α. This serial gate (Westfall
  and Krishen 2001; Dmitrienko et al. 2003) keeps the family-wise error of both families
  together at α: while a primary null hypothesis is true, a secondary is tested only after that
  true null was rejected, an error the primary family's α already pays for; once every primary
  null is false, Holm keeps the secondary family at α. The first study's gate (a prior's
  secondaries tested when one of its primaries was rejected, Holm per prior) let the
  family-wise error approach 2α.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from topobook.study import confirmatory_analysis
from topobook.study.confirmatory import load_run
from topobook.training.config import TrainConfig

HERE = Path(__file__).resolve().parent
PREREGISTRATION = HERE / "preregistration_branched.yml"
RECORD = HERE / "preregistration_branched_record.yml"
# the analysis code the registration fixes: this module and the test machinery it calls
ANALYSIS_FILES = (Path(__file__).resolve(), HERE / "confirmatory_analysis.py", HERE / "stats.py")
DEPLOYABLE = "validation_"  # prefix of the deployable reading's columns


def registration_sha256(path: str | Path | None = None) -> str:
    """SHA-256 (64 hex digits) of the registration file (default :data:`PREREGISTRATION`)."""
    return hashlib.sha256(Path(path or PREREGISTRATION).read_bytes()).hexdigest()


def analysis_sha256(files=ANALYSIS_FILES) -> str:
    """SHA-256 of the analysis code: the bytes of :data:`ANALYSIS_FILES`, in order."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def registering_commit(path: str | Path | None = None) -> str | None:
    """The commit (short hash and date) that added the registration file, read from git where
    the build has the repository's history; ``None`` elsewhere (an installed package, a copy)."""
    import subprocess

    path = Path(path or PREREGISTRATION)
    try:
        found = subprocess.run(
            ["git", "log", "--diff-filter=A", "--format=%h %cs", "--", path.name],
            cwd=path.parent, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = found.stdout.strip().splitlines()
    return lines[-1] if lines else None


def check_fingerprint(record: dict) -> dict:
    """The registration's fingerprint now (``registration``, ``analysis``: SHA-256; ``commit``),
    after checking both digests against ``record["sha256"]``: a ``RuntimeError`` naming the file
    that changed if either differs (the registered design or analysis was edited after its
    registration)."""
    now = {"registration": registration_sha256(), "analysis": analysis_sha256()}
    for key, value in now.items():
        registered = str(record["sha256"][key])
        if value != registered:
            what = (PREREGISTRATION.name if key == "registration"
                    else ", ".join(p.name for p in ANALYSIS_FILES))
            raise RuntimeError(
                f"the {key} SHA-256 is {value}, but the registration recorded {registered}: "
                f"{what} changed after the registration. Restore it (git checkout the "
                "registering commit's version), or record the deviation in "
                f"{RECORD.name} with its reason.")
    return {**now, "commit": registering_commit()}


def study_scores(runs: list[tuple[Path, TrainConfig]], spec: dict):
    """One row per (fold, arm, seed) of the study's runs (folders ``.../<fold>/<arm>/seed<k>``):
    the metrics of the registered reading (``spec["endpoints"]["reading"]``) under their own
    names, those of the deployable reading (threshold chosen on the validation slices) prefixed
    :data:`DEPLOYABLE`, and both thresholds. An error for a run of an arm the registration does
    not name, or one trained under another registration (``registration_sha256``)."""
    import pandas as pd

    reading = spec["endpoints"]["reading"]
    expected = registration_sha256()
    rows = []
    for out_dir, config in runs:
        fold, arm = Path(out_dir).parts[-3], Path(out_dir).parts[-2]
        if arm not in spec["arms"]:
            raise ValueError(f"{out_dir}: arm {arm!r} is not registered in the study")
        result = load_run(out_dir)
        recorded = result["config"].get("registration_sha256", "")
        if recorded != expected:
            raise ValueError(
                f"{out_dir} was trained under registration {recorded[:12] or '(none)'}, not "
                f"{expected[:12]}: it is not a run of this registration")
        primary, deployable = result[reading], result["at_operating_point"]
        rows.append({
            "fold": fold, "arm": arm, "seed": config.seed,
            "threshold": primary["threshold"], **primary["mean"],
            f"{DEPLOYABLE}threshold": deployable["threshold"],
            **{f"{DEPLOYABLE}{k}": v for k, v in deployable["mean"].items()},
        })
    return pd.DataFrame(rows)


def primary_analysis(scores, spec: dict):
    """The primary family, as registered: :func:`topobook.study.confirmatory_analysis.
    primary_analysis` on :func:`study_scores` (columns ``prior, endpoint, fold, n, delta, low,
    high, improvement`` and, for ``fold == "all"``, ``p, p_holm, rejected, tost_p,
    tost_p_holm, equivalent, margin``)."""
    return confirmatory_analysis.primary_analysis(scores, spec)


def gate_open(primary) -> bool:
    """Whether the serial gate opens: every hypothesis of the primary family (each prior x
    primary endpoint, Holm-adjusted) was rejected."""
    main = primary[primary["fold"] == "all"]
    return bool(len(main)) and bool(main["rejected"].astype(bool).all())


def secondary_analysis(scores, spec: dict, primary):
    """The secondary family, behind the serial gate (:func:`gate_open`): for every prior and
    every endpoint of ``spec["endpoints"]["secondary"]`` (``{name: higher_is_better}``), the
    mean paired difference with its interval and the stratified sign-flip test, Holm over the
    whole family (all priors together) at the full α. Columns ``prior, endpoint, n, delta, low,
    high, improvement, p, p_holm, rejected``; empty when the gate stays shut."""
    import pandas as pd

    from topobook.study import stats

    analysis = spec["analysis"]
    columns = ["prior", "endpoint", "n", "delta", "low", "high", "improvement", "p", "p_holm",
               "rejected"]
    if not gate_open(primary):
        return pd.DataFrame([], columns=columns)
    family = []
    for prior in [a for a in spec["arms"] if a != "baseline"]:
        for endpoint, higher in spec["endpoints"]["secondary"].items():
            d, folds = confirmatory_analysis.paired_differences(scores, prior, endpoint)
            test = stats.stratified_sign_flip_test(
                d, folds, draws=int(analysis["monte_carlo_draws"]),
                seed=int(analysis["monte_carlo_seed"]))
            low, high = stats.mean_interval(d, float(analysis["confidence"]))
            family.append({
                "prior": prior, "endpoint": endpoint, "n": d.size, "delta": float(d.mean()),
                "low": low, "high": high,
                "improvement": (1.0 if higher else -1.0) * float(d.mean()),
                "p": test["p_value"],
            })
    adjusted = stats.holm([r["p"] for r in family])
    rows = [{**row, "p_holm": float(p_holm), "rejected": bool(p_holm <= float(analysis["alpha"]))}
            for row, p_holm in zip(family, adjusted, strict=True)]
    return pd.DataFrame(rows, columns=columns)


def answer(primary) -> dict[str, str]:
    """Per prior, the answer in words (:func:`topobook.study.confirmatory_analysis.answer`): a
    rejection with its sign, "no effect larger than the margins" when TOST shows equivalence on
    every primary endpoint, else "inconclusive"."""
    return confirmatory_analysis.answer(primary)
