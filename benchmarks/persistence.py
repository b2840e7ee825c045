"""Benchmark: the union-find persistence backend against gudhi, side by side, one thread.

How to run (from the repository root; about ten minutes on a busy 2-core machine, most of it
gudhi at 512x512; ``--tables`` picks some of the tables)::

    .venv/bin/python benchmarks/persistence.py --clock cpu
    .venv/bin/python benchmarks/persistence.py --tables 4 5   # the batch tables only
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
5. the topological term of a mini-batch of 8 64x64 crops (the stable recipe's batch), forward
   and backward (:func:`topobook.study.timing.batch_term_ms`): the union-find crop after crop (what
   training does) against the whole batch in one numba call over ``prange`` threads, with one
   thread and with every core; wall time and the CPU time of the whole process (the threads'
   cost to the other jobs). Run last: numba's thread pool, once started, stays;
6. the cost of the first call in a fresh process (numba loads its cached machine code; without
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

from topobook.study.timing import batch_term_ms, layer_step_ms, persistence_backend_ms

GOALS = {64: 5.0, 512: 8.0}  # required speed-up over gudhi's plain cubical persistence
LAYER_GOAL_MS = 1.0  # PersistenceLayer forward + backward at 64x64

FIRST_CALL = (
    "import time; t = time.perf_counter(); import numpy as np; "
    "from topobook.topology.persistence import persistence_pairs; "
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
    parser.add_argument(
        "--tables", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6], help="which tables to run"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"cores: {os.cpu_count()}, one thread, medians of {args.repeats} interleaved rounds, "
        f"{args.clock} clock\n"
    )

    if 1 in args.tables:
        table_1(args)
    if 2 in args.tables:
        table_2(args)
    if 3 in args.tables:
        table_3(args)
    if 4 in args.tables:
        table_4(args)
    if 5 in args.tables:
        table_5(args)
    if 6 in args.tables:
        table_6()


def table_1(args) -> None:
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


def table_2(args) -> None:
    print("\n2. the other complexes, against the gudhi backend (ms, critical pixels included)")
    print(f"{'complex':>12s} {'size':>6s} {'gudhi+pixels':>13s} {'union-find':>11s} {'ratio':>7s}")
    for cx in ("vertex", "freudenthal"):
        for row in persistence_backend_ms((64, 512), min(args.repeats, 3), cx, clock=args.clock):
            print(
                f"{cx:>12s} {int(row['size']):>6d} {row['gudhi_pairs']:>13.2f} "
                f"{row['unionfind']:>11.2f} {row['ratio']:>6.1f}x"
            )


def table_3(args) -> None:
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


def table_4(args) -> None:
    print("\n4. a batch of 8 crops in one layer call, union-find: serial vs threads (ms)")
    print(f"{'size':>6s} {'complex':>12s} {'serial':>8s} {'threads':>8s} {'speed-up':>9s}")
    for size in (64, 256):
        for cx in ("cubical", "freudenthal"):
            serial = layer_step_ms(cx, size, batch=8, repeats=args.repeats, parallel=False)
            threads = layer_step_ms(cx, size, batch=8, repeats=args.repeats, parallel=True)
            print(f"{size:>6d} {cx:>12s} {serial:>8.2f} {threads:>8.2f} {serial / threads:>8.2f}x")


def table_5(args) -> None:
    print(
        "\n5. L_topo of a batch of 8 64x64 crops, forward + backward: the union-find crop by "
        "crop\n   (as in training) vs the batch in one numba call (prange), ms; "
        f"{os.cpu_count()} cores"
    )
    rows = batch_term_ms(batch=8, size=64, repeats=args.repeats, threads=(1, 0))
    serial = rows["serial"]
    print(f"{'':>26s} {'wall':>8s} {'cpu (all threads)':>18s} {'speed-up (wall)':>16s}")
    for name, row in rows.items():
        print(
            f"{name:>26s} {row['wall']:>8.2f} {row['cpu']:>18.2f} "
            f"{serial['wall'] / row['wall']:>15.2f}x"
        )


def table_6() -> None:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True
    )
    print(
        f"\n6. first persistence_pairs call in a fresh process (imports included): "
        f"{float(out.stdout):.2f} s (process {time.perf_counter() - start:.2f} s)"
    )


if __name__ == "__main__":
    main()
