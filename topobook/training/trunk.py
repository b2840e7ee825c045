"""Branched runs: arms that share their first epochs, and with them their noise.

A run whose topological term starts at epoch ``k = topo_start_epoch`` > 0 trains, until then,
exactly as the baseline of the same seed: the same crops in the same order, the same steps, the
same validation loss (the term is switched off in validation too before ``k``). Its state at the
end of epoch ``k`` (weights, Adam's moments, the schedule, the random generators, the history) is
therefore the baseline's: the *trunk*. The run is a *branch* from there
(:attr:`topobook.training.config.TrainConfig.branch_epoch`).

A trunk is saved once, by the first run that reaches epoch ``k`` (a baseline asks for it with
``trunk_epochs=(k,)``; a branch saves its own), under ``<results>/_trunks/<key>.pt``, and every
later branch of that trunk starts from it instead of retraining ``k`` epochs. A branch gives the
same numbers either way, on one machine (tested): loading a trunk is the resume of an interrupted
run. So a prior arm costs ``1 - k / epochs`` of a run, and the arms of one seed differ only by
what happens after ``k``: the design of the authors' TopoMortar configurations
(``activate_when: 0.7``) and of the shared-trunk pilot of chapter 7.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from topobook.training.config import TrainConfig

# The settings that act only once the topological term is on: a trunk does not depend on them.
TERM_FIELDS = (
    "lam", "loss", "matching", "complex", "keep_zero_length", "misroute_gradient",
    "cldice_iterations", "topo_start_epoch", "scnp_window",
)
# A strategy with a topological term and the strategy of its trunk (the same inputs, no term).
TRUNK_STRATEGY = {"topo_loss": "baseline", "topo_loss+topo_input": "topo_input"}
TRUNK_FOLDER = "_trunks"  # beside the run folders of a results directory; never a run's name


def own_train_seconds(result: dict) -> float:
    """The training seconds a finished run spent itself (``result``: its ``metrics.json``): its
    ``train_seconds`` less those of the trunk it loaded (a branch that trained its own trunk, or
    a run that is no branch, keeps them all)."""
    trunk = result.get("trunk") or {}
    loaded = float(trunk.get("seconds", 0.0)) if trunk.get("loaded") else 0.0
    return float(result["train_seconds"]) - loaded


def trunk_identity(config: TrainConfig) -> dict:
    """What two runs must share for one's state at the end of an epoch to be the other's: every
    setting of :meth:`TrainConfig.identity` but the topological term's, the strategy mapped to
    its trunk's (:data:`TRUNK_STRATEGY`), and the epoch count (the schedule depends on it)."""
    values = config.identity()
    for name in TERM_FIELDS:
        values.pop(name, None)
    values["strategy"] = TRUNK_STRATEGY.get(config.strategy, config.strategy)
    values["epochs"] = config.epochs
    return values


def trunk_key(config: TrainConfig, epoch: int) -> str:
    """The file stem of the trunk of ``config`` at the end of ``epoch`` (1-based count of epochs
    done): 16 hex digits of the SHA-256 of :func:`trunk_identity`, and the epoch."""
    if not 1 <= epoch < config.epochs:
        raise ValueError(f"a trunk epoch must lie in [1, {config.epochs}), got {epoch}")
    digest = hashlib.sha256(json.dumps(trunk_identity(config), sort_keys=True).encode())
    return f"{digest.hexdigest()[:16]}-epoch{epoch}"


def default_trunk_dir(out_dir: str | Path) -> Path:
    """Where the trunks of a run in ``<results>/<run>/seed<k>`` are kept: ``<results>/_trunks``,
    shared by every run of that results directory. A run folder not named ``seed<k>`` keeps them
    beside itself, in ``<parent>/_trunks``: never above the folder the caller gave."""
    out_dir = Path(out_dir).resolve()
    if out_dir.name.startswith("seed") and out_dir.name[4:].isdigit():
        return out_dir.parent.parent / TRUNK_FOLDER
    return out_dir.parent / TRUNK_FOLDER


def trunk_path(config: TrainConfig, epoch: int, trunk_dir: str | Path) -> Path:
    """The file of the trunk of ``config`` at the end of ``epoch`` in ``trunk_dir``."""
    return Path(trunk_dir) / f"{trunk_key(config, epoch)}.pt"


def epochs_to_save(config: TrainConfig) -> tuple[int, ...]:
    """The epochs at whose end ``config``'s run saves its state as a trunk: those it was asked
    for (``trunk_epochs``; for a run with a topological term, at most its branch epoch, checked
    by the config) and, for a branch, its own branch point (for its sibling arms)."""
    epochs = set(config.trunk_epochs)
    if config.branch_epoch:
        epochs.add(config.branch_epoch)
    return tuple(sorted(epochs))


def branch_cost(config: TrainConfig) -> float:
    """The share of a whole run that a branch trains when its trunk is there: ``1 - k / epochs``
    (1.0 for a run that is no branch)."""
    return 1.0 - config.branch_epoch / config.epochs


def describe(config: TrainConfig) -> str:
    """One line for a reader: what the run shares with its baseline."""
    if not config.branch_epoch:
        return "trained from scratch"
    trunk, share = TRUNK_STRATEGY[config.strategy], config.branch_epoch / config.epochs
    return (
        f"a branch of the {trunk} run of seed {config.seed} after epoch {config.branch_epoch} "
        f"of {config.epochs} ({share:.0%} shared)"
    )
