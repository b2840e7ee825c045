"""Training runs as jobs: the numbers do not depend on the number of workers."""

import json

import pytest
from test_train import TINY  # the tiny runs of the training tests

from topobook.training.config import TrainConfig
from topobook.training.jobs import run_jobs


def _numbers(path):
    result = json.loads(path.read_text())
    return result["history"], result["mean"], result["last"]["mean"], result["best_epoch"]


def test_same_runs_with_one_and_two_workers(tmp_path):
    configs = [
        TrainConfig(seed=0, **TINY),
        TrainConfig(strategy="topo_loss", lam=0.01, seed=1, **TINY),
    ]
    one = run_jobs([(tmp_path / "one" / f"r{i}", c) for i, c in enumerate(configs)], workers=1)
    two = run_jobs([(tmp_path / "two" / f"r{i}", c) for i, c in enumerate(configs)], workers=2)
    assert len(one) == len(two) == 2
    for i in range(2):
        assert _numbers(tmp_path / "one" / f"r{i}" / "metrics.json") == _numbers(
            tmp_path / "two" / f"r{i}" / "metrics.json"
        )
    # finished runs are skipped: nothing is run again
    again = [(tmp_path / "two" / f"r{i}", c) for i, c in enumerate(configs)]
    assert run_jobs(again, workers=2) == {}


def test_bad_jobs_raise(tmp_path):
    config = TrainConfig(**TINY)
    with pytest.raises(ValueError, match="same folder"):
        run_jobs([(tmp_path, config), (tmp_path, config)], workers=1)
    with pytest.raises(ValueError, match="workers"):
        run_jobs([(tmp_path, config)], workers=-1)
