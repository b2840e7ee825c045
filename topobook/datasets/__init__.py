"""Data sets as plug-ins of the trainer, and the files they are made of.

A data set is one module that supplies, by these names (the protocol
:class:`DataSetModule` states their signatures):

* ``NAME``; ``check_config(config)``: fills and checks the split fields of a
  :class:`topobook.training.config.TrainConfig` (``train_slices``, ``val_slices``,
  ``eval_slices``: slice or image numbers) and rejects settings it does not define;
* ``load_training_data(config)`` -> ``((train_images, train_targets), (val_images,
  val_targets))`` and ``load_evaluation_data(config)`` -> ``(images, truth)``, the files checked
  against their hashes (:mod:`topobook.datasets.datafiles`); images ``(N, H, W)`` or
  ``(N, C, H, W)``, targets ``(N, H, W)`` with 1 = the class the network's sigmoid predicts;
* ``in_channels(config)``: the channels the network sees;
* ``evaluate(config, probabilities, truth, val_probabilities, val_targets, last)`` -> the
  scores of ``metrics.json``, at the data set's operating point (``last``: the last epoch's
  probabilities, or ``None``); ``SCORES_LAST_EPOCH`` says whether it wants them, and
  ``RECORDS_VALIDATION_PATCH`` whether ``metrics.json`` shows the first validation crop;
* ``METRIC_KEYS`` (its scores), ``TRIVIAL_PREDICTORS`` and ``trivial_prediction(kind,
  images)``.

:func:`get_dataset` maps a config's ``dataset`` to its module: a name of :data:`REGISTRY`, or the
import path of any module that follows the protocol (a new data set needs no change elsewhere).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Protocol

import numpy as np

# config.dataset -> the module of that data set
REGISTRY = {
    "isbi2012": "topobook.datasets.isbi2012",
    "topomortar": "topobook.datasets.topomortar",
}
PROTOCOL = (
    "NAME", "check_config", "load_training_data", "load_evaluation_data", "in_channels",
    "evaluate", "SCORES_LAST_EPOCH", "RECORDS_VALIDATION_PATCH", "METRIC_KEYS",
    "TRIVIAL_PREDICTORS", "trivial_prediction",
)


class DataSetModule(Protocol):
    """What the trainer reads of a data set's module."""

    NAME: str
    METRIC_KEYS: tuple[str, ...]
    TRIVIAL_PREDICTORS: tuple[str, ...]
    SCORES_LAST_EPOCH: bool
    RECORDS_VALIDATION_PATCH: bool

    def check_config(self, config) -> None: ...

    def load_training_data(self, config) -> tuple[tuple, tuple]: ...

    def load_evaluation_data(self, config) -> tuple[np.ndarray, np.ndarray]: ...

    def in_channels(self, config) -> int: ...

    def evaluate(self, config, probabilities, truth, val_probabilities, val_targets, last): ...

    def trivial_prediction(self, kind: str, images: np.ndarray) -> np.ndarray: ...


def get_dataset(name: str) -> ModuleType:
    """The module of the data set ``name``: a name of :data:`REGISTRY` or a module's import
    path; ``ValueError`` if there is none, or if it lacks a name of the protocol."""
    path = REGISTRY.get(name, name)
    try:
        module = importlib.import_module(path)
    except ImportError as error:
        raise ValueError(
            f"dataset must be one of {tuple(REGISTRY)} or the import path of a data-set module, "
            f"got {name!r} ({error})"
        ) from None
    missing = [attr for attr in PROTOCOL if not hasattr(module, attr)]
    if missing:
        raise ValueError(f"data-set module {path} lacks {missing} of the protocol")
    return module
