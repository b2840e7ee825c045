"""Benchmark: one training step of the book's U-Net with BCE alone and with BCE + lam * L_topo.

    .venv/bin/python benchmarks/topo_step.py [--width 16] [--repeats 15]

64x64 patches, batch 1 and batch 8, 1 and 2 PyTorch threads, measured side by side in one run
(the two losses alternate, so machine noise hits both alike). Prints median ms per step and the
ratio topo / BCE. Goal: <= 1.3 at batch 1.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from topobook.datasets.synthetic import synthetic_em
from topobook.losses.topological import LAMBDA_PAPER, combined_loss
from topobook.training.patches import PatchSampler
from topobook.training.unet import UNet


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=16, help="U-Net base width")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--complex", default="cubical")
    args = parser.parse_args()

    images, masks = synthetic_em(n_images=8, size=128, seed=0)
    sampler = PatchSampler(images, masks, patch_size=64, seed=0)
    print(
        f"U-Net width {args.width}, 64x64 patches, complex={args.complex}, "
        f"medians of {args.repeats} steps\n"
    )
    print(f"{'threads':>7s} {'batch':>5s} {'BCE ms':>8s} {'BCE+topo ms':>12s} {'ratio':>6s}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in (1, 8):
            torch.manual_seed(0)
            model = UNet(base_width=args.width)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
            times = {0.0: [], LAMBDA_PAPER: []}
            for step in range(args.repeats + 2):
                pairs = [sampler.sample() for _ in range(batch)]
                x = torch.tensor(np.stack([p[0] for p in pairs]))[:, None]
                y = torch.tensor(np.stack([p[1] for p in pairs]), dtype=torch.float32)[:, None]
                for lam in times:  # alternate the two kinds of step
                    start = time.perf_counter()
                    optimizer.zero_grad()
                    loss = combined_loss(model(x), y, lam=lam, complex=args.complex).total
                    loss.backward()
                    optimizer.step()
                    if step >= 2:  # warm-up
                        times[lam].append(time.perf_counter() - start)
            bce, topo = (1e3 * float(np.median(t)) for t in times.values())
            print(f"{threads:>7d} {batch:>5d} {bce:>8.1f} {topo:>12.1f} {topo / bce:>6.2f}")


if __name__ == "__main__":
    main()
