"""topobook.training.precision: detection of native bfloat16, the choice of a run's precision, the
identity of float32 runs (unchanged), and the training step (float32 bit-identical to the code
before; bfloat16 autocast with float32 losses)."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import topobook
from topobook.training import precision
from topobook.training.config import TrainConfig
from topobook.training.patches import PatchSampler
from topobook.training.run import (
    _batches,
    _epoch_crops,
    _loss_parts,
    _train_epoch,
    _validation_loss,
    make_model,
    predict,
    run_record,
)

TINY = dict(width=4, depth=2, patch_size=16, n_val_patches=3, train_slices=(0, 1),
            val_slices=(28,), eval_slices=(29,), recipe="stable", batch_size=2,
            crops_per_slice=2, epochs=2, average_epochs=1)


@pytest.fixture
def native(monkeypatch):
    """Set whether the CPU counts as doing bfloat16 natively (``native(True)``)."""
    def set_native(value: bool) -> None:
        monkeypatch.setattr(precision, "_cpu_native_bf16", lambda: value)
    return set_native


# ---------------------------------------------------------------------------------------------
# detection and resolution


def test_native_bf16_is_a_bool_and_agrees_with_the_kernel_flags():
    assert isinstance(precision.native_bf16(), bool)
    assert isinstance(precision.native_bf16("cuda"), bool)
    assert precision.native_bf16("meta") is False
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and "flags" in cpuinfo.read_text():  # Linux on x86: an oracle
        flags = next(line for line in cpuinfo.read_text().splitlines()
                     if line.startswith("flags")).split(":", 1)[1].split()
        assert precision.native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_detection_reads_the_bf16_features_not_the_vector_width(monkeypatch):
    def detect(capabilities):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
        precision._cpu_native_bf16.cache_clear()
        try:
            return precision._cpu_native_bf16()
        finally:
            precision._cpu_native_bf16.cache_clear()

    assert detect({"avx512_f": True, "avx512_bw": True, "avx2": True}) is False  # plain AVX-512
    assert detect({"avx2": True}) is False
    assert detect({"avx512_f": True, "avx512_bf16": True}) is True
    assert detect({"amx_tile": True, "amx_bf16": True}) is True
    assert detect({"architecture": "arm64", "bf16": True}) is True


def test_resolve_precision(native):
    native(False)
    assert precision.resolve_precision("fp32") == "fp32"
    assert precision.resolve_precision("auto") == "fp32"  # no native bf16: fp32
    with pytest.raises(ValueError, match="no native bfloat16.*precision='fp32'.*'auto'"):
        precision.resolve_precision("bf16")
    with pytest.raises(ValueError, match="precision must be one of.*'fp16'"):
        precision.resolve_precision("fp16")
    native(True)
    assert precision.resolve_precision("auto") == "bf16"
    assert precision.resolve_precision("bf16") == "bf16"
    assert precision.resolve_precision("fp32") == "fp32"
    assert precision.resolve_precision("auto", "meta") == "fp32"


def test_autocast_is_nothing_under_fp32_and_refuses_emulated_bf16(native):
    native(False)
    conv = torch.nn.Conv2d(1, 2, 3)
    with precision.autocast("fp32"):
        assert not torch.is_autocast_enabled("cpu")
        assert conv(torch.ones(1, 1, 5, 5)).dtype == torch.float32
    with pytest.raises(ValueError, match="bfloat16"):
        precision.autocast("bf16")
    native(True)
    with precision.autocast("bf16"):
        out = conv(torch.ones(1, 1, 5, 5))
    assert out.dtype == torch.bfloat16
    assert precision.as_float32(out).dtype == torch.float32
    x = torch.ones(3)
    assert precision.as_float32(x) is x  # no copy for float32


# ---------------------------------------------------------------------------------------------
# the configuration


def test_identity_of_a_default_config_is_unchanged():
    """The identity of every run recorded before the precision field: the same dict."""
    expected = {
        "strategy": "baseline", "seed": 0, "dataset": "isbi2012", "training_set": "large",
        "recipe": "paper", "lr": 0.001, "width": 16, "depth": 4, "lam": 1 / 12000,
        "loss": "topo", "matching": "lifetime", "complex": "cubical",
        "keep_zero_length": False, "misroute_gradient": False, "cldice_iterations": 3,
        "input_mode": "processed", "tip_window": 1, "tip_border": 1, "tip_noise": 0.01,
        "patch_size": 64, "batch_size": 1, "crops_per_slice": 1, "norm": "batch",
        "lr_schedule": "constant", "average_epochs": 0, "membrane_weight": 1.0,
        "topo_start_epoch": 0, "n_val_patches": 24, "diagram_epochs": [5, 95],
        "protocol": "held_out", "train_slices": list(range(21)), "val_slices": [21, 22, 23],
        "eval_slices": [24, 25, 26, 27, 28, 29], "betti_patches": 100,
        "operating_point_step": 0.01, "code_version": topobook.__version__,
    }
    assert TrainConfig().identity() == expected
    assert TrainConfig(precision="fp32").identity() == expected
    assert TrainConfig(dataset="topomortar", recipe="stable").identity().keys() == expected.keys()
    bf16 = TrainConfig(precision="bf16").identity()  # made anywhere; trained only where native
    assert bf16 == {**expected, "precision": "bf16"}


def test_auto_is_resolved_when_the_config_is_made(native):
    native(False)
    auto = TrainConfig(precision="auto")
    assert auto.precision == "fp32" and auto.identity() == TrainConfig().identity()
    native(True)
    auto = TrainConfig(precision="auto")
    assert auto.precision == "bf16" and auto.identity()["precision"] == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="float16")
    assert TrainConfig.from_dict({"precision": "bf16"}).precision == "bf16"


def test_registered_studies_keep_float32():
    """The confirmatory study (chapter 7) and chapter 8's plan name no precision: fp32, with the
    identities they were registered with."""
    from topobook.study import confirmatory, topomortar_study

    spec = confirmatory.load_preregistration()
    runs = confirmatory.study_runs("/nonexistent", spec, per_fold=1)
    runs += confirmatory.pilot_runs("/nonexistent", [0], {"topo_loss": [0.01]})
    plan = topomortar_study.chapter_plan({
        "arms": ["baseline", "cldice"], "seeds": [0], "sweep_seeds": [0],
        "lam_grid": {"cldice": [0.1]}, "results_dir": "/nonexistent"})
    for _, config in runs + plan["jobs"]:
        assert config.precision == "fp32" and "precision" not in config.identity()


def test_precision_is_a_hashed_training_module():
    from topobook.training import config

    assert "training/precision" in config._TRAINING_MODULES


# ---------------------------------------------------------------------------------------------
# the training step


def _setup(config: TrainConfig, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.random((2, 32, 32)).astype(np.float32)
    masks = (rng.random((2, 32, 32)) < 0.6).astype(np.uint8)
    torch.manual_seed(seed)
    fit = make_model(config)
    return fit, PatchSampler(images, masks, config.patch_size, seed=seed)


def _train_epoch_before(config, fit, sampler, epoch):
    """The training pass as it was before the precision field (the oracle)."""
    fit.model.train()
    sums = np.zeros(2)
    n_batches = 0
    for x, y in _batches(_epoch_crops(sampler, config.crops_per_slice), config.batch_size):
        fit.optimizer.zero_grad()
        x = x.to(fit.device, memory_format=torch.channels_last)
        parts = _loss_parts(fit.model(x), y.to(fit.device), config, epoch)
        parts.total.backward()
        fit.optimizer.step()
        fit.scheduler.step()
        sums += (parts.bce.item(), parts.topo.item())
        n_batches += 1
    return {"train_bce": sums[0] / n_batches, "train_topo": sums[1] / n_batches}


@pytest.mark.parametrize("strategy", ["baseline", "topo_loss"])
def test_fp32_training_is_bit_identical_to_the_code_before(strategy):
    config = TrainConfig(strategy=strategy, lam=0.01, **TINY)
    new_fit, new_sampler = _setup(config)
    old_fit, old_sampler = _setup(config)
    for epoch in range(2):
        new = _train_epoch(config, new_fit, new_sampler, epoch)
        old = _train_epoch_before(config, old_fit, old_sampler, epoch)
        assert new == old
    new_state, old_state = new_fit.model.state_dict(), old_fit.model.state_dict()
    assert all(torch.equal(new_state[k], old_state[k]) for k in old_state)
    val_pairs = [new_sampler.sample() for _ in range(3)]
    old_fit.model.eval()
    with torch.no_grad():
        x, y = next(_batches(val_pairs, 3))
        logits = old_fit.model(x.to(memory_format=torch.channels_last))
        bce = np.mean([_loss_parts(logits[i:i + 1], y[i:i + 1], config).bce.item()
                       for i in range(3)])
    assert _validation_loss(config, new_fit, val_pairs)["val_bce"] == bce
    images = np.random.default_rng(1).random((2, 32, 32)).astype(np.float32)
    with torch.no_grad():
        before = np.stack([torch.sigmoid(old_fit.model(torch.tensor(im)[None, None]))[0, 0]
                           .numpy() for im in images])
    assert np.array_equal(predict(new_fit.model, images), before)


def test_bf16_training_keeps_float32_weights_and_losses(native):
    """The bf16 path (emulated here when the CPU lacks it: only the code path is tested): the
    forward pass in bfloat16, the loss, the weights and the probabilities float32, the run's
    record names the precision."""
    native(True)
    config = TrainConfig(precision="bf16", **TINY)
    fit, sampler = _setup(config)
    seen = []
    hook = fit.model.head.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    record = _train_epoch(config, fit, sampler, 0)
    assert np.isfinite(record["train_bce"]) and seen and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in fit.model.parameters())
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in fit.model.parameters())
    fp32_fit, _ = _setup(dataclasses.replace(config, precision="fp32"))
    images = np.random.default_rng(1).random((1, 32, 32)).astype(np.float32)
    probabilities = predict(fit.model, images, precision="bf16")
    assert probabilities.dtype == np.float32 and probabilities.shape == (1, 32, 32)
    assert np.isfinite(_validation_loss(config, fit, [sampler.sample()])["val_bce"])
    hook.remove()
    # bf16 and fp32 predictions of one network differ by bfloat16 rounding only
    state = {k: v.clone() for k, v in fit.model.state_dict().items()}
    fp32_fit.model.load_state_dict(state)
    assert np.abs(predict(fp32_fit.model, images) - probabilities).max() < 0.05
    state = {"best_epoch": None, "train_seconds": 0.0, "history": [], "diagrams": {}}
    assert run_record(config, state, 0.0)["precision"] == "bf16"
    assert run_record(TrainConfig(**TINY), state, 0.0)["precision"] == "fp32"
    native(False)
    with pytest.raises(ValueError, match="no native bfloat16"):
        _train_epoch(config, fit, sampler, 1)
