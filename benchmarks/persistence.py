"""Benchmark: forward + backward of PersistenceLayer for each complex and image size.

    .venv/bin/python benchmarks/persistence.py [--repeats 21]

One PyTorch thread; superlevel filtration, H0 and H1, on random likelihood-like maps. Prints the
median time of each case, its speed-up over TopologyLayer's LevelSetLayer2D at 64x64 (52 ms, a
figure measured once on these machines: TopologyLayer cannot be installed here, so it is not
re-measured in the same run), and, measured side by side in this run, the speed-up of processing
a batch of 8 images in parallel threads over one after another.
"""

from __future__ import annotations

import argparse
import os

import torch

from topobook.persistence import COMPLEXES
from topobook.timing import layer_step_ms

TOPOLOGYLAYER_64_MS = 52.0  # LevelSetLayer2D((64, 64)) forward + backward, one thread
GOALS = {"cubical": 5.0, "freudenthal": 2.0}  # required speed-up over TopologyLayer at 64x64


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(f"cores: {os.cpu_count()}, torch threads: 1, repeats: {args.repeats} (medians)\n")
    print(f"{'size':>6s} {'complex':>12s} {'fwd+bwd ms':>11s} {'vs TopologyLayer@64':>20s}")
    for size in args.sizes:
        for cx in COMPLEXES:
            ms = layer_step_ms(cx, size, repeats=args.repeats)
            ratio = f"{TOPOLOGYLAYER_64_MS / ms:.1f}x" if size == 64 else ""
            goal = f" (goal {GOALS[cx]:.0f}x)" if size == 64 and cx in GOALS else ""
            print(f"{size:>6d} {cx:>12s} {ms:>11.1f} {ratio + goal:>20s}")

    print("\nbatch of 8 images at 64x64: serial vs parallel threads, measured side by side")
    print(f"{'complex':>12s} {'serial ms':>10s} {'threads ms':>11s} {'speed-up':>9s}")
    for cx in COMPLEXES:
        serial = layer_step_ms(cx, 64, batch=8, repeats=args.repeats, parallel=False)
        threads = layer_step_ms(cx, 64, batch=8, repeats=args.repeats, parallel=True)
        print(f"{cx:>12s} {serial:>10.1f} {threads:>11.1f} {serial / threads:>8.2f}x")


if __name__ == "__main__":
    main()
