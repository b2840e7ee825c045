import dataclasses
import json

import numpy as np
import pytest
import torch

import topobook
from topobook.study.chapter4 import chapter_runs
from topobook.training.config import TrainConfig
from topobook.training.run import finished_result, load_results, network_inputs, train

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
    # where it was computed: numbers are bit-reproducible on that machine only
    machine = result["machine"]
    assert machine["torch"] == torch.__version__ and machine["numpy"] == np.__version__
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["torch_threads"] == config.threads and machine["cpu_model"]
    predictions = np.load(run_dir / "predictions.npz")
    assert predictions["probabilities"].shape == (1, 512, 512)
    # a finished run keeps a compact artefact: no resume state
    assert not (run_dir / "checkpoint.pt").exists()
    weights = torch.load(run_dir / "model.pt")
    assert set(weights) == set(topobook.training.unet.UNet(base_width=4, depth=2).state_dict())
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


def test_chapter_runs():
    runs = chapter_runs(
        {"strategy": "topo_loss", "seeds": [3, 4], "results_dir": "r", "run_name": "",
         "lam": 0.01, "workers": 2, "progress": False}
    )
    assert [str(d) for d, _ in runs] == ["r/topo_loss/seed3", "r/topo_loss/seed4"]
    assert [c.seed for _, c in runs] == [3, 4] and runs[0][1].lam == 0.01
    with pytest.raises(ValueError, match="unknown training parameters"):
        chapter_runs({"seeds": [0], "results_dir": "r", "colour": "red"})
    with pytest.raises(ValueError, match="repeats"):
        chapter_runs({"seeds": [0, 0], "results_dir": "r"})


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


def test_recipes_fill_only_the_fields_left_open():
    paper = TrainConfig()
    assert (paper.batch_size, paper.norm, paper.lr_schedule, paper.average_epochs) == (
        1, "batch", "constant", 0
    )
    assert paper.epochs == 100 and paper.lr == 1e-3 and paper.selection == "val_bce"
    stable = TrainConfig(recipe="stable")
    assert stable.norm == "group" and stable.batch_size == 8 and stable.crops_per_slice == 8
    assert stable.lr_schedule == "cosine" and stable.selection == "average_last_10"
    mixed = TrainConfig(recipe="stable", batch_size=4, norm="batch")
    assert mixed.batch_size == 4 and mixed.norm == "batch" and mixed.lr_schedule == "cosine"
    assert TrainConfig.from_dict(dataclasses.asdict(stable)) == stable
    for bad in (
        {"recipe": "fast"},
        {"norm": "layer"},
        {"lr_schedule": "step"},
        {"average_epochs": 101},
        {"membrane_weight": 0.0},
        {"topo_start_epoch": 100},
        {"crops_per_slice": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
            TrainConfig(**bad)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    from topobook.training.run import _learning_rate_factor

    factor = _learning_rate_factor(TrainConfig(recipe="stable", epochs=10), steps_per_epoch=4)
    values = [factor(step) for step in range(40)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]  # one epoch of linear warm-up
    assert all(a >= b for a, b in zip(values[3:], values[4:], strict=False))  # then decreasing
    assert values[-1] < 0.01 and factor(40) == 0.0
    constant = _learning_rate_factor(TrainConfig(), steps_per_epoch=4)
    assert {constant(step) for step in range(400)} == {1.0}


def test_weight_average_is_the_mean_of_the_accumulated_weights():
    from topobook.training.run import _accumulate_weights, _averaged_weights

    model = topobook.training.unet.UNet(base_width=2, depth=1)  # batch norm: an integer counter too
    state = {"weight_sum": None, "weight_count": 0}
    snapshots = []
    for value in (1.0, 2.0, 6.0):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(value)
        model.state_dict()["down.0.1.num_batches_tracked"].fill_(int(value))
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        _accumulate_weights(state, model)
    averaged = _averaged_weights(state, model)
    for key, value in averaged.items():
        expected = sum(s[key].double() for s in snapshots) / 3
        assert value.dtype == snapshots[0][key].dtype
        torch.testing.assert_close(value.double(), expected.round() if "num_batches" in key
                                   else expected, rtol=0, atol=1e-6)
    assert float(averaged["head.weight"].flatten()[0]) == pytest.approx(3.0)


def test_stable_recipe_trains_end_to_end(tmp_path):
    config = TrainConfig(
        recipe="stable", strategy="topo_loss", lam=0.01, average_epochs=2,
        topo_start_epoch=1, membrane_weight=2.0, **{**TINY, "epochs": 3},
    )
    result = train(config, tmp_path, progress=False)
    assert result["selection"] == "average_last_2" and result["best_epoch"] is None
    assert result["last"] is None  # no argmin, so no separate "last epoch" row
    topo = [h["train_topo"] for h in result["history"]]
    assert topo[0] == 0 and all(t > 0 for t in topo[1:])  # warm start: the term from epoch 2
    assert set(torch.load(tmp_path / "model.pt")) == set(
        topobook.training.unet.UNet(base_width=4, depth=2, norm="group").state_dict()
    )
    again = train(config, tmp_path / "again", progress=False)
    assert again["history"] == result["history"] and again["mean"] == result["mean"]


def test_membrane_weight_weighs_the_training_bce_only():
    from topobook.training.run import _loss_parts

    logits = torch.linspace(-2, 2, 16).reshape(1, 1, 4, 4)
    y = (torch.arange(16).reshape(1, 1, 4, 4) % 3 == 0).float()
    plain = _loss_parts(logits, y, TrainConfig(), epoch=0)
    heavy = _loss_parts(logits, y, TrainConfig(membrane_weight=3.0), epoch=0)
    weight = torch.where(y > 0.5, 1.0, 3.0)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, weight=weight)
    torch.testing.assert_close(heavy.bce, expected)
    assert heavy.bce > plain.bce
    validation = _loss_parts(logits, y, TrainConfig(membrane_weight=3.0))
    torch.testing.assert_close(validation.bce, plain.bce)
