"""Scaling of the training jobs: the same short runs with 1 and with 2 workers, in one run.

    .venv/bin/python benchmarks/build_scaling.py            # 4 runs of 10 epochs
    .venv/bin/python benchmarks/build_scaling.py --runs 4 --epochs 20 --repeats 2

Each measurement trains the runs from scratch into a fresh folder through
:func:`topobook.training.jobs.run_jobs` (the path `make book` takes), so it includes starting the
worker processes and evaluating each run on its evaluation slice. Prints the wall times and the
speed-up; the goal on a 2-core machine is at least 1.8x. The numbers of the runs are checked to
be identical for both worker counts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from topobook.training.config import TrainConfig
from topobook.training.jobs import run_jobs


def configs(n_runs: int, epochs: int) -> list[TrainConfig]:
    # the book's network and patches; one short evaluation slice keeps the end of a run small
    return [
        TrainConfig(seed=seed, epochs=epochs, eval_slices=(29,), diagram_epochs=())
        for seed in range(n_runs)
    ]


def measure(workers: int, runs: list[TrainConfig]) -> tuple[float, list]:
    with tempfile.TemporaryDirectory() as folder:
        jobs = [(Path(folder) / f"seed{c.seed}", c) for c in runs]
        start = time.perf_counter()
        run_jobs(jobs, workers=workers, progress=False)
        seconds = time.perf_counter() - start
        numbers = [json.loads((d / "metrics.json").read_text())["mean"] for d, _ in jobs]
    return seconds, numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1, help="alternating measurements each")
    args = parser.parse_args()
    runs = configs(args.runs, args.epochs)
    times = {1: [], 2: []}
    results = {}
    for _ in range(args.repeats):
        for workers in (1, 2):  # alternating, so both see the same machine load
            seconds, numbers = measure(workers, runs)
            times[workers].append(seconds)
            results[workers] = numbers
            print(f"{workers} worker(s): {seconds:.1f} s", flush=True)
    assert results[1] == results[2], "the numbers depend on the worker count"
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"{args.runs} runs of {args.epochs} epochs: 1 worker {one:.1f} s, 2 workers {two:.1f} s "
          f"(medians of {args.repeats}); speed-up {one / two:.2f}x; identical numbers: yes")


if __name__ == "__main__":
    main()
