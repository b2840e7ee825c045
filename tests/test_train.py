import json

import numpy as np
import pytest
import torch

from topobook.train import TrainConfig, load_results, network_inputs, train

TINY = dict(
    epochs=2,
    width=4,
    depth=2,
    patch_size=32,
    n_val_patches=2,
    train_slices=(0, 1),
    eval_slices=(28, 29),
    diagram_epochs=(1,),
    betti_patches=5,
)


@pytest.mark.parametrize("strategy", ["baseline", "topo_loss"])
def test_same_seed_same_numbers(tmp_path, strategy):
    config = TrainConfig(strategy=strategy, lam=0.01, **TINY)
    a = train(config, tmp_path / "a", progress=False)
    b = train(config, tmp_path / "b", progress=False)
    assert a["history"] == b["history"] and a["mean"] == b["mean"]
    if strategy == "topo_loss":
        assert all(r["train_topo"] > 0 for r in a["history"])
    else:
        assert all(r["train_topo"] == 0 for r in a["history"])
    other = train(
        TrainConfig(strategy=strategy, lam=0.01, **{**TINY, "seed": 1}),
        tmp_path / "c",
        progress=False,
    )
    assert other["history"] != a["history"]


def test_interrupted_run_resumes_without_losing_epochs(tmp_path):
    config = TrainConfig(**{**TINY, "epochs": 3})
    whole = train(config, tmp_path / "whole", progress=False)

    def interrupt(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=False, callback=interrupt)
    assert not (tmp_path / "cut" / "metrics.json").exists()
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["state"]["epoch"] == 2
    seen = []
    resumed = train(
        config, tmp_path / "cut", progress=False, callback=lambda epoch, record: seen.append(epoch)
    )
    assert seen == [3]  # only the missing epoch was trained
    assert resumed["history"] == whole["history"] and resumed["mean"] == whole["mean"]
    # a finished run is reused, not retrained
    again = train(
        config, tmp_path / "cut", progress=False, callback=lambda epoch, record: seen.append(epoch)
    )
    assert seen == [3] and again["mean"] == whole["mean"]


def test_results_files(tmp_path):
    config = TrainConfig(**TINY)
    train(config, tmp_path / "baseline" / "seed0", progress=False)
    runs = load_results(tmp_path)
    assert len(runs) == 1 and runs[0]["run"] == "baseline"
    result = json.loads((tmp_path / "baseline" / "seed0" / "metrics.json").read_text())
    for key in (
        "accuracy",
        "completeness",
        "correctness",
        "quality",
        "dice",
        "betti_paper",
        "betti_standard",
    ):
        assert key in result["mean"]
    assert "1" in result["diagrams"]
    predictions = np.load(tmp_path / "baseline" / "seed0" / "predictions.npz")
    assert predictions["probabilities"].shape == (2, 512, 512)


def test_topological_inputs():
    images = np.random.default_rng(0).random((2, 64, 64)).astype(np.float32)
    modified = network_inputs(images, TrainConfig(strategy="topo_input", **TINY), (0, 1))
    # window 1, border 1: the image plus noise, with a one-pixel frame at min - 1
    assert np.abs(modified[:, 1:-1, 1:-1] - images[:, 1:-1, 1:-1]).max() < 0.1
    assert (modified[:, 0, :] < images.min() - 0.5).all()
    processed = network_inputs(
        images, TrainConfig(strategy="topo_input", input_mode="processed", **TINY), (0, 1)
    )
    assert processed.shape == images.shape and np.isfinite(processed).all()
    baseline = network_inputs(images, TrainConfig(**TINY), (0, 1))
    assert baseline is images


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="strategy"):
        TrainConfig(strategy="topo")
    with pytest.raises(ValueError, match="unknown training parameters"):
        TrainConfig.from_dict({"strategy": "baseline", "learning_rate": 0.1})
    with pytest.raises(ValueError, match="divisible"):
        TrainConfig(patch_size=60)
