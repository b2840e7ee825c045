"""Benchmark: training throughput of chapter 8's U-Net, in pixels per CPU-second, per setting.

How to run (from the repository root; several minutes, ``torch.compile`` alone about two on a
2-core machine; ``--quick`` checks that every setting runs, its numbers are not measurements)::

    .venv/bin/python benchmarks/train_throughput.py [--steps 10] [--rounds 5] [--threads 1]
    .venv/bin/python benchmarks/train_throughput.py --quick [--no-compile]

The network and step are chapter 8's (``notebooks/08_topomortar.ipynb``, built by
:func:`topobook.training.run.make_model` from a ``dataset="topomortar"``, ``recipe="stable"``
:class:`topobook.training.config.TrainConfig`): ``UNet(in_channels=3, base_width=16, depth=4,
norm="group")``, Adam, the run's BCE (:func:`topobook.training.run._loss_parts`, the baseline
arm), on crops of TopoMortar training images. One step = zero_grad, forward, loss, backward, Adam
update, timed with ``time.process_time`` (the CPU time of the process: waiting for a core on a
shared machine does not count) and one PyTorch thread, as a run trains. Sampling the crops is
left out (the same for every setting up to the crop count).

Settings, each against the reference, today's: float32, 64x64 crops, batches of 8,
``channels_last`` (what :func:`~topobook.training.run.make_model` does):

* ``channels_last`` off (the default contiguous layout);
* batch sizes 4, 16 and 32 (64x64);
* larger crops at the reference's pixels per step (128x128, batch 2) and beyond (128x128, batch 8;
  256x256, batch 1: twice the pixels, the smallest batch);
* bfloat16 autocast (:mod:`topobook.training.precision`), only where the CPU does bfloat16
  natively (``skipped: no native bf16`` elsewhere: emulated bfloat16 is slower than float32);
* ``torch.compile`` of the model (inductor; compiled in the warm-up; a failure prints why).

Every setting gets a fresh model and optimizer, ``--warmup`` untimed steps, then ``--rounds``
rounds in which the settings take turns (``--steps`` timed steps each), so machine noise hits all
alike; the table gives the median over rounds of pixels per CPU-second and its ratio to the
reference measured in the same run. Larger crops or batches change the training itself (fewer,
larger gradient estimates per epoch), not only its speed: a faster setting is a candidate for a
recipe, whose numbers must then be measured again.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch

from topobook.training.config import TrainConfig
from topobook.training.patches import PatchSampler
from topobook.training.precision import as_float32, autocast, native_bf16
from topobook.training.run import _as_input, _loss_parts
from topobook.training.unet import UNet

# chapter 8's training fields (notebooks/08_topomortar.ipynb's parameters, baseline arm)
CHAPTER8 = {"dataset": "topomortar", "recipe": "stable", "width": 16, "depth": 4,
            "membrane_weight": 1.0, "crops_per_slice": 2, "epochs": 40, "average_epochs": 10}
N_IMAGES = 4  # training images the crops come from


@dataclasses.dataclass(frozen=True)
class Setting:
    """One way to train: crop side, batch size, memory layout, precision, compiled or not."""

    name: str
    crop: int = 64
    batch: int = 8
    channels_last: bool = True
    precision: str = "fp32"
    compiled: bool = False

    @property
    def pixels(self) -> int:
        """Training pixels per step."""
        return self.batch * self.crop**2


REFERENCE = Setting("today: fp32, 64x64, batch 8, channels_last")


def settings(bf16: bool, compiled: bool) -> list[Setting]:
    """The settings of the table, the reference first; bf16 ones only where ``bf16``
    (native), compiled ones only with ``compiled``."""
    out = [
        REFERENCE,
        Setting("channels_last off", channels_last=False),
        Setting("batch 4", batch=4),
        Setting("batch 16", batch=16),
        Setting("batch 32", batch=32),
        Setting("crop 128x128, batch 2 (equal pixels)", crop=128, batch=2),
        Setting("crop 128x128, batch 8", crop=128, batch=8),
        Setting("crop 256x256, batch 1 (2x pixels)", crop=256, batch=1),
    ]
    if bf16:
        out += [
            Setting("bf16 autocast", precision="bf16"),
            Setting("bf16 autocast, crop 128x128, batch 2", crop=128, batch=2, precision="bf16"),
            Setting("bf16 autocast, batch 16", batch=16, precision="bf16"),
        ]
    if compiled:
        out.append(Setting("torch.compile", compiled=True))
        if bf16:
            out.append(Setting("torch.compile + bf16 autocast", compiled=True, precision="bf16"))
    return out


def crops(setting: Setting, n_batches: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """``n_batches`` batches ``(x (B, 3, c, c), y (B, 1, c, c))`` of random augmented crops of
    the first :data:`N_IMAGES` TopoMortar training images, targets the bricks (as a run)."""
    from topobook.datasets.topomortar import load_images

    config = TrainConfig.from_dict(CHAPTER8)
    images, mortar = load_images(config.train_slices[:N_IMAGES])
    sampler = PatchSampler(images, 1 - mortar, setting.crop, seed=seed)
    out = []
    for _ in range(n_batches):
        pairs = [sampler.sample() for _ in range(setting.batch)]
        x = _as_input(np.stack([p[0] for p in pairs]))
        y = torch.tensor(np.stack([p[1] for p in pairs]), dtype=torch.float32)[:, None]
        if setting.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out.append((x, y))
    return out


def make_step(setting: Setting) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """A training step of a fresh chapter-8 model (seed 0) in ``setting``: returns the loss."""
    config = TrainConfig.from_dict({**CHAPTER8, "batch_size": setting.batch,
                                    "patch_size": setting.crop})
    torch.manual_seed(0)
    # make_model's network and optimizer, on the CPU whatever the machine has
    model = UNet(in_channels=config.in_channels, base_width=config.width, depth=config.depth,
                 norm=config.norm)
    if setting.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    forward = torch.compile(model) if setting.compiled else model
    model.train()

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        optimizer.zero_grad()
        with autocast(setting.precision, "cpu"):
            logits = forward(x)
        parts = _loss_parts(as_float32(logits), y, config, epoch=0)
        parts.total.backward()
        optimizer.step()
        return float(parts.total.detach())

    return step


def _failure(error: BaseException) -> str:
    lines = str(error).strip().splitlines() or [""]
    return f"{type(error).__name__}: {lines[0][:160]}"


def measure(
    chosen: list[Setting], steps: int, warmup: int, rounds: int
) -> tuple[dict[str, float], dict[str, str]]:
    """Median pixels per CPU-second of each setting over ``rounds`` interleaved rounds of
    ``steps`` steps, after ``warmup`` steps; and why a setting could not run, by name."""
    runners, failed = {}, {}
    for setting in chosen:
        batches = crops(setting, max(steps, warmup, 1))
        try:
            step = make_step(setting)
            start = time.perf_counter()
            for i in range(warmup):
                step(*batches[i % len(batches)])
            print(f"  warmed up {setting.name}: {time.perf_counter() - start:.1f} s wall",
                  flush=True)
        except Exception as error:  # e.g. no C++ compiler for torch.compile
            failed[setting.name] = _failure(error)
            continue
        runners[setting.name] = (setting, step, batches)
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(rounds):
        for name, (setting, step, batches) in runners.items():
            start = time.process_time()
            for i in range(steps):
                step(*batches[i % len(batches)])
            rates[name].append(steps * setting.pixels / (time.process_time() - start))
        print(f"  round {r + 1}/{rounds} done", flush=True)
    return {name: float(np.median(v)) for name, v in rates.items()}, failed


def table(chosen, rates, failed, skipped) -> str:
    """The printed table: setting, pixels per step, pixels per CPU-second, ratio to the
    reference."""
    reference = rates.get(REFERENCE.name)
    lines = [f"{'setting':46s} {'px/step':>8s} {'px per CPU-s':>13s} {'ratio':>6s}"]
    for setting in chosen:
        if setting.name in failed:
            lines.append(f"{setting.name:46s} failed: {failed[setting.name]}")
            continue
        rate = rates[setting.name]
        ratio = f"{rate / reference:6.2f}" if reference else "     -"
        lines.append(f"{setting.name:46s} {setting.pixels:8d} {rate:13,.0f} {ratio}")
    lines += [f"{name:46s} {why}" for name, why in skipped.items()]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per setting and round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads (a run: 1)")
    parser.add_argument("--quick", action="store_true",
                        help="2 steps, 1 warm-up, 1 round: checks that it runs, not a measurement")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.rounds = 2, 1, 1
    torch.set_num_threads(args.threads)
    bf16 = native_bf16("cpu")
    caps = getattr(torch.cpu, "get_capabilities", dict)()
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {bf16} (avx512_bf16 {caps.get('avx512_bf16')}, amx_bf16 "
          f"{caps.get('amx_bf16')}), {args.threads} thread(s), {args.steps} steps x "
          f"{args.rounds} rounds after {args.warmup} warm-up" + (" [QUICK]" if args.quick else ""))
    skipped = {}
    if not bf16:
        skipped["bf16 autocast"] = "skipped: no native bf16"
    if args.no_compile:
        skipped["torch.compile"] = "skipped: --no-compile"
    chosen = settings(bf16, not args.no_compile)
    rates, failed = measure(chosen, args.steps, args.warmup, args.rounds)
    print(table(chosen, rates, failed, skipped))


if __name__ == "__main__":
    main()
