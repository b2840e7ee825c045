import dataclasses
import json

import numpy as np
import pytest
import torch

import topobook
from topobook.train import (
    TrainConfig,
    finished_result,
    load_results,
    network_inputs,
    page_runs,
    train,
)

TINY = dict(
    epochs=2,
    width=4,
    depth=2,
    patch_size=32,
    n_val_patches=2,
    train_slices=(0, 1),
    val_slices=(28,),
    eval_slices=(29,),
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
    run_dir = tmp_path / "baseline" / "seed0"
    train(config, run_dir, progress=False)
    runs = load_results(tmp_path)
    assert len(runs) == 1 and runs[0]["run"] == "baseline"
    result = json.loads((run_dir / "metrics.json").read_text())
    for key in (
        "accuracy",
        "dice",
        "betti_paper",
        "betti_8conn",
        "betti_matching",
        "v_rand",
        "v_info",
        "cldice",
    ):
        assert key in result["mean"] and key in result["last"]["mean"]
        assert key in result["per_slice"][0]
    assert "1" in result["diagrams"]
    # the selected epoch is the lowest validation cross-entropy
    val_bce = [h["val_bce"] for h in result["history"]]
    assert result["best_epoch"] == int(np.argmin(val_bce)) + 1 and result["selection"] == "val_bce"
    assert result["code_version"] == topobook.__version__ and len(result["code_hash"]) == 12
    predictions = np.load(run_dir / "predictions.npz")
    assert predictions["probabilities"].shape == (1, 512, 512)
    # a finished run keeps a compact artefact: no resume state
    assert not (run_dir / "checkpoint.pt").exists()
    weights = torch.load(run_dir / "model.pt")
    assert set(weights) == set(topobook.unet.UNet(base_width=4, depth=2).state_dict())
    assert json.loads((run_dir / "status.json").read_text()) == {"epoch": 2, "epochs": 2}


def test_a_finished_run_is_not_reused_by_another_code_version(tmp_path, monkeypatch):
    config = TrainConfig(**{**TINY, "epochs": 1})
    train(config, tmp_path, progress=False)
    assert finished_result(config, tmp_path) is not None
    monkeypatch.setattr(topobook, "__version__", "0.0.0-other")
    assert finished_result(config, tmp_path) is None


def test_protocols():
    held_out = TrainConfig()
    assert held_out.train_slices == tuple(range(21))
    assert held_out.val_slices == (21, 22, 23) and held_out.eval_slices == tuple(range(24, 30))
    assert held_out.selection == "val_bce"
    authors = TrainConfig(protocol="authors")
    assert authors.train_slices == tuple(range(24)) and authors.val_slices == authors.eval_slices
    assert authors.selection == "val_total"
    with pytest.raises(ValueError, match="never selects on them"):
        TrainConfig(val_slices=(23, 24))
    with pytest.raises(ValueError, match="training slices"):
        TrainConfig(train_slices=(0, 21))
    assert TrainConfig.from_dict(dataclasses.asdict(held_out)) == held_out


def test_page_runs():
    runs = page_runs(
        {"strategy": "topo_loss", "seeds": [3, 4], "results_dir": "r", "run_name": "",
         "lam": 0.01, "workers": 2, "progress": False}
    )
    assert [str(d) for d, _ in runs] == ["r/topo_loss/seed3", "r/topo_loss/seed4"]
    assert [c.seed for _, c in runs] == [3, 4] and runs[0][1].lam == 0.01
    with pytest.raises(ValueError, match="unknown training parameters"):
        page_runs({"seeds": [0], "results_dir": "r", "colour": "red"})
    with pytest.raises(ValueError, match="repeats"):
        page_runs({"seeds": [0, 0], "results_dir": "r"})


def test_topological_inputs(tmp_path):
    images = np.random.default_rng(0).random((2, 64, 64)).astype(np.float32)
    modified_config = TrainConfig(strategy="topo_input", input_mode="modified", **TINY)
    modified = network_inputs(images, modified_config, (0, 1))
    # window 1, border 1: the image plus noise, with a one-pixel frame at min - 1
    assert np.abs(modified[:, 1:-1, 1:-1] - images[:, 1:-1, 1:-1]).max() < 0.1
    assert (modified[:, 0, :] < images.min() - 0.5).all()
    processed = network_inputs(
        images, TrainConfig(strategy="topo_input", input_mode="processed", **TINY), (0, 1)
    )
    assert processed.shape == images.shape and np.isfinite(processed).all()
    both = network_inputs(
        images, TrainConfig(strategy="topo_input", input_mode="raw+processed", **TINY), (0, 1)
    )
    assert both.shape == (2, 2, 64, 64)
    assert np.array_equal(both[:, 0], images) and np.array_equal(both[:, 1], processed)
    baseline = network_inputs(images, TrainConfig(**TINY), (0, 1))
    assert baseline is images
    # a two-channel run trains end to end
    config = TrainConfig(strategy="topo_input", input_mode="raw+processed", **{**TINY, "epochs": 1})
    assert config.in_channels == 2
    result = train(config, tmp_path, progress=False)
    assert 0 <= result["mean"]["v_rand"] <= 1


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="strategy"):
        TrainConfig(strategy="topo")
    with pytest.raises(ValueError, match="unknown training parameters"):
        TrainConfig.from_dict({"strategy": "baseline", "learning_rate": 0.1})
    with pytest.raises(ValueError, match="divisible"):
        TrainConfig(patch_size=60)
