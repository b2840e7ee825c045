"""Benchmark: the union-find persistence backend against gudhi, side by side, one thread.

    .venv/bin/python benchmarks/persistence.py [--repeats 7] [--sizes 64 128 256 512]

Every figure is a median over interleaved rounds of this one run (the machine is shared, so only
ratios measured together mean something):

1. superlevel H0 + H1 of the cubical complex on random likelihood-like maps (uniform in [0, 1],
   float32: the most bars, the worst case) at each size: gudhi's plain
   ``CubicalComplex(top_dimensional_cells=...)`` persistence (no critical pixels: the issue's
   reference), ``persistence_pairs(backend="gudhi")`` (critical pixels: the book's path before)
   and ``persistence_pairs(backend="unionfind")`` (critical pixels included). Goals: >= 5x gudhi
   at 64x64, >= 8x at 512x512 (what GPL-3 CubicalRipser reaches on these machines);
2. the vertex and freudenthal complexes at 64 and 512, against the gudhi backend;
3. ``PersistenceLayer`` forward + backward at 64x64 with each backend (goal <= 1 ms);
4. a batch of 8 crops in one layer call: one after another vs parallel threads (the numba
   kernels release the GIL), with the union-find backend (its default is serial: see table 4);
5. the cost of the first call in a fresh process (numba loads its cached machine code; without
   the cache, after an edit of topobook/unionfind.py, it compiles once: 15 to 45 s here).

``--clock cpu`` times tables 1 and 2 by the CPU time of the thread (``time.thread_time``),
which the other jobs of a shared machine inflate much less than the wall time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch

from topobook.timing import layer_step_ms, persistence_backend_ms

GOALS = {64: 5.0, 512: 8.0}  # required speed-up over gudhi's plain cubical persistence
LAYER_GOAL_MS = 1.0  # PersistenceLayer forward + backward at 64x64

FIRST_CALL = (
    "import time; t = time.perf_counter(); import numpy as np; "
    "from topobook.persistence import persistence_pairs; "
    "persistence_pairs(np.random.default_rng(0).random((64, 64)), True); "
    "print(time.perf_counter() - t)"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="tables 1 and 2: wall or the thread's CPU time (3 shows both; 4 is wall: threads)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"cores: {os.cpu_count()}, one thread, medians of {args.repeats} interleaved rounds, "
        f"{args.clock} clock\n"
    )

    print("1. superlevel H0 + H1, cubical complex (ms)")
    header = f"{'size':>6s} {'gudhi':>9s} {'gudhi+pixels':>13s} {'union-find':>11s}"
    print(header + f" {'ratio':>7s} {'vs pixels':>10s} {'goal':>6s}")
    for row in persistence_backend_ms(tuple(args.sizes), args.repeats, "cubical", clock=args.clock):
        size = int(row["size"])
        goal = f"{GOALS[size]:.0f}x" if size in GOALS else ""
        print(
            f"{size:>6d} {row['gudhi']:>9.2f} {row['gudhi_pairs']:>13.2f} "
            f"{row['unionfind']:>11.2f} {row['ratio']:>6.1f}x "
            f"{row['gudhi_pairs'] / row['unionfind']:>9.1f}x {goal:>6s}"
        )

    print("\n2. the other complexes, against the gudhi backend (ms, critical pixels included)")
    print(f"{'complex':>12s} {'size':>6s} {'gudhi+pixels':>13s} {'union-find':>11s} {'ratio':>7s}")
    for cx in ("vertex", "freudenthal"):
        for row in persistence_backend_ms((64, 512), min(args.repeats, 3), cx, clock=args.clock):
            print(
                f"{cx:>12s} {int(row['size']):>6d} {row['gudhi_pairs']:>13.2f} "
                f"{row['unionfind']:>11.2f} {row['ratio']:>6.1f}x"
            )

    print("\n3. PersistenceLayer forward + backward, 64x64, superlevel, H0 + H1 (ms)")
    print("   wall time, and the CPU time of the thread (what a shared machine does not inflate)")
    print(f"{'complex':>12s} {'clock':>6s} {'gudhi':>8s} {'union-find':>11s} {'ratio':>7s}")
    for cx in ("cubical", "vertex", "freudenthal"):
        for clock in ("wall", "cpu"):
            # alternate the two backends a few times so that both see the same machine
            gudhi_ms, ours_ms = [], []
            for _ in range(3):
                for backend, out in (("gudhi", gudhi_ms), ("unionfind", ours_ms)):
                    out.append(
                        layer_step_ms(cx, 64, repeats=args.repeats, backend=backend, clock=clock)
                    )
            g, u = sorted(gudhi_ms)[1], sorted(ours_ms)[1]
            goal = f" (goal <= {LAYER_GOAL_MS:.0f} ms)" if cx == "cubical" else ""
            print(f"{cx:>12s} {clock:>6s} {g:>8.2f} {u:>11.2f} {g / u:>6.1f}x{goal}")

    print("\n4. a batch of 8 crops in one layer call, union-find: serial vs threads (ms)")
    print(f"{'size':>6s} {'complex':>12s} {'serial':>8s} {'threads':>8s} {'speed-up':>9s}")
    for size in (64, 256):
        for cx in ("cubical", "freudenthal"):
            serial = layer_step_ms(cx, size, batch=8, repeats=args.repeats, parallel=False)
            threads = layer_step_ms(cx, size, batch=8, repeats=args.repeats, parallel=True)
            print(f"{size:>6d} {cx:>12s} {serial:>8.2f} {threads:>8.2f} {serial / threads:>8.2f}x")

    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True
    )
    print(
        f"\n5. first persistence_pairs call in a fresh process (imports included): "
        f"{float(out.stdout):.2f} s (process {time.perf_counter() - start:.2f} s)"
    )


if __name__ == "__main__":
    main()
