"""Benchmark: the cost of one U-Net training step with each loss of the book.

    .venv/bin/python benchmarks/loss_step.py [--width 16] [--repeats 15] [--threads 1]

One step = forward, loss, backward and Adam update of ``UNet(base_width=16, depth=4)`` on one
64x64 ISBI 2012 training patch (batch 1), one PyTorch thread. The losses are
:func:`topobook.losses.training_loss` with: BCE alone; BCE + L_topo (lifetime matching, cubical
complex: the paper's text); BCE + the authors' notebook loss (birth matching, Freudenthal
complex, zero-length bars kept), with and without the emulated gradient bug; BCE + clDice
(3 iterations, and 10, the reference class's fixed value); BCE + the sorted-value control;
BCE + Betti matching when ``topobook.betti_matching`` can be imported. The losses take turns
on the same patch within each round (so machine noise hits all alike), on one model that every
step updates. Prints the median ms per step over ``--repeats`` rounds (after 2 warm-up rounds)
and the ratio to BCE.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from topobook.data import DEFAULT_TRAIN_SLICES, PatchSampler, load_isbi
from topobook.losses import LAMBDA_NOTEBOOK, LAMBDA_PAPER, training_loss
from topobook.unet import UNet

NOTEBOOK = dict(matching="birth", complex="freudenthal", keep_zero_length=True)
VARIANTS = {
    "BCE": ("none", 0.0, {}),
    "BCE+topo (lifetime, cubical)": ("topo", LAMBDA_PAPER, dict(complex="cubical")),
    "BCE+topo (notebook)": ("topo", LAMBDA_NOTEBOOK, NOTEBOOK),
    "BCE+topo (notebook, misrouted)": (
        "topo",
        LAMBDA_NOTEBOOK,
        {**NOTEBOOK, "misroute_gradient": True},
    ),
    "BCE+clDice (3 iterations)": ("cldice", 1.0, dict(iterations=3)),
    "BCE+clDice (10 iterations)": ("cldice", 1.0, dict(iterations=10)),
    "BCE+sorted_value": ("sorted_value", LAMBDA_NOTEBOOK, {}),
    "BCE+betti_matching": ("betti_matching", 1.0, {}),
}


def available_variants() -> dict:
    variants = dict(VARIANTS)
    try:
        import topobook.betti_matching  # noqa: F401
    except ImportError as error:
        print(f"(Betti matching left out: {error})")
        del variants["BCE+betti_matching"]
    return variants


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=16, help="U-Net base width")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (>= 9)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.repeats < 9:
        parser.error("--repeats must be >= 9")
    torch.set_num_threads(args.threads)

    images, masks = load_isbi(DEFAULT_TRAIN_SLICES)
    sampler = PatchSampler(images, masks, patch_size=64, seed=0)
    variants = available_variants()
    torch.manual_seed(0)
    model = UNet(base_width=args.width, depth=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times: dict[str, list[float]] = {name: [] for name in variants}
    warm_up = 2
    for round_ in range(args.repeats + warm_up):
        image, mask = sampler.sample()
        x = torch.tensor(image)[None, None]
        y = torch.tensor(mask, dtype=torch.float32)[None, None]
        for name, (loss, lam, kwargs) in variants.items():
            start = time.perf_counter()
            optimizer.zero_grad()
            parts = training_loss(model(x), y, loss, lam, **kwargs)
            parts.total.backward()
            optimizer.step()
            if round_ >= warm_up:
                times[name].append(time.perf_counter() - start)

    print(
        f"U-Net width {args.width}, depth 4, one 64x64 ISBI patch per step, "
        f"{args.threads} thread(s), medians of {args.repeats} steps\n"
    )
    bce = float(np.median(times["BCE"]))
    print(f"{'loss':<34s} {'ms/step':>8s} {'ratio':>6s}")
    for name, t in times.items():
        median = float(np.median(t))
        print(f"{name:<34s} {1e3 * median:>8.1f} {median / bce:>6.2f}")


if __name__ == "__main__":
    main()
