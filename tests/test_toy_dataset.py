"""A third data set as a plug-in: this test module *is* the data set (the protocol of
:mod:`topobook.datasets`), trained and evaluated through the same trainer and job runner as
ISBI 2012 and TopoMortar, with no change to either.

The toy data: 32x32 images of a bright disc on a noisy background, the target the disc
(1 = disc); "slices" 0-1 train, 2 validates, 3 is evaluated.
"""

import json

import numpy as np
import pytest

from topobook.datasets import get_dataset
from topobook.metrics.pixel import pixel_metrics
from topobook.training.config import TrainConfig
from topobook.training.jobs import run_jobs
from topobook.training.run import train

NAME = "toy"
SIZE = 32
METRIC_KEYS = ("dice", "accuracy")
TRIVIAL_PREDICTORS = ("all_disc", "no_disc")
SCORES_LAST_EPOCH = False
RECORDS_VALIDATION_PATCH = False


def _images(numbers) -> tuple[np.ndarray, np.ndarray]:
    images, masks = [], []
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    for n in numbers:
        rng = np.random.default_rng(n)
        centre = rng.uniform(10, SIZE - 10, size=2)
        disc = ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < 49).astype(np.uint8)
        images.append(np.clip(0.2 + 0.6 * disc + 0.1 * rng.standard_normal(disc.shape), 0, 1))
        masks.append(disc)
    return np.stack(images).astype(np.float32), np.stack(masks)


def check_config(config) -> None:
    defaults = {"train_slices": (0, 1), "val_slices": (2,), "eval_slices": (3,)}
    for name, value in defaults.items():
        if getattr(config, name) is None:
            object.__setattr__(config, name, value)
    if config.uses_topo_input:
        raise ValueError("the toy data set has no topological input")


def in_channels(config) -> int:
    return 1


def load_training_data(config):
    return _images(config.train_slices), _images(config.val_slices)


def load_evaluation_data(config):
    return _images(config.eval_slices)


def evaluate(config, probabilities, truth, val_probabilities, val_targets, last=None) -> dict:
    pairs = zip(probabilities, truth, strict=True)
    scores = [pixel_metrics((p >= 0.5).astype(np.uint8), t) for p, t in pairs]
    mean = {k: float(np.mean([s[k] for s in scores])) for k in METRIC_KEYS}
    return {"dataset": NAME, "mean": mean}


def trivial_prediction(kind: str, images: np.ndarray) -> np.ndarray:
    return np.full(np.shape(images), 1.0 if kind == "all_disc" else 0.0, np.float32)


TINY = dict(dataset=__name__, epochs=2, width=4, depth=2, patch_size=32, n_val_patches=2,
            diagram_epochs=(1,), lam=0.01)


def test_registry_finds_the_toy_module_and_refuses_others():
    import sys

    assert get_dataset(__name__) is sys.modules[__name__]
    assert get_dataset("isbi2012").NAME == "isbi2012"
    with pytest.raises(ValueError, match="dataset must be one of"):
        TrainConfig(dataset="no_such_dataset")
    with pytest.raises(ValueError, match="lacks"):
        TrainConfig(dataset="json")  # a module, but not a data set
    with pytest.raises(ValueError, match="no topological input"):
        TrainConfig(**{**TINY, "strategy": "topo_input"})


@pytest.mark.parametrize("strategy", ["baseline", "topo_loss"])
def test_toy_dataset_trains_and_evaluates_through_the_trainer_and_the_job_runner(
    tmp_path, strategy
):
    config = TrainConfig(**{**TINY, "strategy": strategy})
    assert config.train_slices == (0, 1) and config.in_channels == 1
    result = train(config, tmp_path / "direct", progress=False)
    assert result["dataset"] == "toy" and set(result["mean"]) == set(METRIC_KEYS)
    assert 0 <= result["mean"]["dice"] <= 1
    assert len(result["history"]) == 2 and "val_patch" not in result
    run_jobs([(tmp_path / "job", config)], workers=1, progress=False)  # a spawned worker
    job = json.loads((tmp_path / "job" / "metrics.json").read_text())
    assert job["mean"] == result["mean"]
    a = np.load(tmp_path / "direct" / "predictions.npz")
    b = np.load(tmp_path / "job" / "predictions.npz")
    assert np.array_equal(a["probabilities"], b["probabilities"])
    assert a["probabilities"].shape == (1, SIZE, SIZE)
