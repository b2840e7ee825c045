"""Benchmark: topological image processing of all 30 ISBI training slices at 512x512.

    .venv/bin/python benchmarks/tip.py

Settings: the authors' notebook (0.01 N(0,1) noise, window 1, border 1) and a smoothing one
(window 5, border 5), each with both pixel lookups. Prints the median seconds per slice and the
total, serial and over a pool of worker processes (one per core), measured in the same run.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from topobook import tip
from topobook.datasets import isbi2012

SETTINGS = {
    "noise, w1, b1": dict(noise=0.01, window_size=1, border_width=1),
    "w5, b5": dict(noise=0.0, window_size=5, border_width=5),
}


def run(args) -> float:
    image, setting, lookup, seed = args
    noise = SETTINGS[setting]["noise"]
    if noise:
        image = image + noise * np.random.default_rng(seed).standard_normal(image.shape)
    start = time.perf_counter()
    tip.process(
        image,
        SETTINGS[setting]["window_size"],
        SETTINGS[setting]["border_width"],
        pixel_lookup=lookup,
    )
    return time.perf_counter() - start


def main() -> None:
    images, _ = isbi2012.load_isbi(range(30))
    workers = os.cpu_count() or 1
    print(f"30 slices of 512x512, {workers} cores\n")
    print(
        f"{'setting':>14s} {'lookup':>9s} {'median s/slice':>15s} {'serial total s':>15s} "
        f"{'pool total s':>13s}"
    )
    with ProcessPoolExecutor(workers) as pool:
        for setting in SETTINGS:
            for lookup in ("critical", "value"):
                jobs = [(im, setting, lookup, i) for i, im in enumerate(images)]
                start = time.perf_counter()
                times = [run(job) for job in jobs]
                serial = time.perf_counter() - start
                start = time.perf_counter()
                list(pool.map(run, jobs))
                pooled = time.perf_counter() - start
                print(
                    f"{setting:>14s} {lookup:>9s} {np.median(times):>15.2f} {serial:>15.1f} "
                    f"{pooled:>13.1f}"
                )


if __name__ == "__main__":
    main()
