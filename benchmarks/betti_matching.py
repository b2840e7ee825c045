"""Benchmark: the Betti matching loss in a training step, and the Betti matching error of a slice.

    .venv/bin/python benchmarks/betti_matching.py [--repeats 25] [--slices 3]

1. One training step of ``UNet(base_width=16, depth=4)`` on 64x64 patches, batch 1, one
   PyTorch thread, with BCE alone and with BCE + lam * betti_matching_loss, measured side by
   side in one run (the two kinds of step alternate, so machine noise hits both alike). Prints
   median ms per step and the ratio (goal: <= 1.5).
2. ``betti_matching_error`` of full 512x512 ISBI slices (a U-Net-free stand-in prediction: the
   truth with its membranes perturbed by noise and thresholded), median seconds (goal: <= 2 s).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from topobook.datasets.isbi2012 import load_isbi
from topobook.datasets.synthetic import synthetic_em
from topobook.topology.betti_matching import betti_matching_error, betti_matching_loss
from topobook.training.patches import PatchSampler
from topobook.training.unet import UNet

LAM = 0.01


def training_steps(repeats: int) -> None:
    torch.set_num_threads(1)
    images, masks = synthetic_em(n_images=8, size=128, seed=0)
    sampler = PatchSampler(images, masks, patch_size=64, seed=0)
    torch.manual_seed(0)
    model = UNet(base_width=16, depth=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    betti_matching_loss(torch.rand(64, 64), torch.rand(64, 64).round())  # compile (numba)
    times: dict[float, list[float]] = {0.0: [], LAM: []}
    for step in range(repeats + 2):
        image, mask = sampler.sample()
        x = torch.tensor(image)[None, None]
        y = torch.tensor(mask, dtype=torch.float32)[None, None]
        for lam in times:  # alternate the two kinds of step
            start = time.perf_counter()
            optimizer.zero_grad()
            likelihood = torch.sigmoid(model(x))
            loss = F.binary_cross_entropy(likelihood, y)
            if lam:
                loss = loss + lam * betti_matching_loss(likelihood, y)
            loss.backward()
            optimizer.step()
            if step >= 2:  # warm-up
                times[lam].append(time.perf_counter() - start)
    bce, both = (1e3 * float(np.median(t)) for t in times.values())
    print("training step, UNet(base_width=16, depth=4), 64x64, batch 1, 1 thread")
    print(f"  BCE only:              {bce:7.1f} ms (median of {repeats})")
    print(f"  BCE + lam * BM loss:   {both:7.1f} ms")
    print(f"  ratio:                 {both / bce:7.2f}  (goal <= 1.5)")


def slice_errors(n_slices: int) -> None:
    _, masks = load_isbi(slices=range(n_slices))
    rng = np.random.default_rng(0)
    betti_matching_error(masks[0][:8, :8], masks[0][:8, :8])  # compile (numba)
    seconds, errors = [], []
    for truth in masks:
        noisy = truth + rng.normal(0.0, 0.35, truth.shape)
        pred = (noisy > 0.5).astype(np.uint8)
        start = time.perf_counter()
        errors.append(betti_matching_error(pred, truth))
        seconds.append(time.perf_counter() - start)
    print(f"\nbetti_matching_error of a 512x512 slice ({n_slices} ISBI slices, noisy prediction)")
    print(f"  median: {np.median(seconds):.3f} s, max: {max(seconds):.3f} s  (goal <= 2 s)")
    print(f"  errors of the first slice: {errors[0]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--slices", type=int, default=3)
    args = parser.parse_args()
    training_steps(args.repeats)
    slice_errors(args.slices)


if __name__ == "__main__":
    main()
