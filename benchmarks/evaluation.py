"""Benchmark: the evaluation of one run, before (gudhi) and after (union-find) issue 19.

    .venv/bin/python benchmarks/evaluation.py [--repeats 3]

What a run spends on persistence once it is trained, measured side by side in one run:

1. :func:`topobook.metrics.evaluation.evaluate` on the 6 evaluation slices (512x512) of ISBI 2012
with a realistic cell probability (the truth smoothed by a Gaussian of sigma 2 pixels, plus Gaussian
   noise of sd 0.1, clipped to [0, 1]), with
   :data:`topobook.topology.persistence.DEFAULT_BACKEND` set to ``"gudhi"`` (before) and to
   ``"unionfind"`` (after). The script also counts the calls of
   :func:`topobook.topology.persistence.persistence_pairs` that the evaluation makes: its Betti
   errors count components by labelling and its Betti matching error has its own union-find, so the
   count is printed, not assumed;
2. the persistence that a run does compute on whole slices: the superlevel diagrams (H0 + H1,
   cubical) of one 512x512 probability map, which training records at its diagram epochs
   (``topobook.training.run``), and the Betti numbers of a whole binary slice by persistence
   (:func:`topobook.topology.persistence.betti_numbers`), with each backend.

Medians of ``--repeats`` interleaved rounds, one thread.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import ndimage

from topobook.datasets.isbi2012 import DEFAULT_EVAL_SLICES, load_isbi
from topobook.metrics.evaluation import evaluate
from topobook.topology import persistence


def realistic_probabilities(masks: np.ndarray, seed: int = 0) -> np.ndarray:
    """A network-like cell probability ``(N, H, W)`` float32 in [0, 1] for masks ``(N, H, W)``:
    the truth smoothed (sigma 2 pixels) plus Gaussian noise (sd 0.1), clipped."""
    rng = np.random.default_rng(seed)
    smooth = np.stack([ndimage.gaussian_filter(m.astype(np.float64), 2.0) for m in masks])
    noisy = smooth + rng.normal(0.0, 0.1, smooth.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


class CallCounter:
    """Counts the calls of ``topobook.topology.persistence.persistence_pairs`` made through any
    module that looks it up on ``topobook.topology.persistence`` (wraps it while the block
    runs)."""

    def __init__(self) -> None:
        self.calls = 0

    def __enter__(self) -> CallCounter:
        self.original = persistence.persistence_pairs

        def counted(*args, **kwargs):
            self.calls += 1
            return self.original(*args, **kwargs)

        persistence.persistence_pairs = counted
        return self

    def __exit__(self, *exc) -> None:
        persistence.persistence_pairs = self.original


def timed(fn, backend: str) -> float:
    """Seconds of ``fn()`` with ``DEFAULT_BACKEND = backend`` (restored afterwards)."""
    previous = persistence.DEFAULT_BACKEND
    persistence.DEFAULT_BACKEND = backend
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        persistence.DEFAULT_BACKEND = previous


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images, masks = load_isbi(DEFAULT_EVAL_SLICES)
    probabilities = realistic_probabilities(masks)
    slices = list(DEFAULT_EVAL_SLICES)

    def run_evaluation():
        return evaluate(probabilities, masks, slices)

    # the evaluation itself, and whether it calls persistence at all (direct or via diagrams)
    with CallCounter() as counter:
        run_evaluation()
    times = {"gudhi": [], "unionfind": []}
    for _ in range(args.repeats):
        for backend in times:
            times[backend].append(timed(run_evaluation, backend))
    before, after = (float(np.median(times[b])) for b in ("gudhi", "unionfind"))
    print(f"evaluate(): {len(slices)} slices of {masks.shape[1]}x{masks.shape[2]}, one thread")
    print(f"  calls of persistence_pairs during one evaluation: {counter.calls}")
    print(f"  seconds per evaluation: gudhi {before:.2f}, union-find {after:.2f}")

    # whole-slice persistence that runs do compute
    prob, mask = probabilities[0].astype(np.float64), masks[0]
    cases = {
        "superlevel diagrams of a 512x512 probability map": lambda: persistence.diagrams(
            prob, superlevel=True
        ),
        "betti_numbers of a 512x512 mask (cubical)": lambda: persistence.betti_numbers(mask),
        "betti_numbers of a 512x512 mask (freudenthal)": lambda: persistence.betti_numbers(
            mask, "freudenthal"
        ),
    }
    print(f"\nwhole-slice persistence (ms, medians of {args.repeats}):")
    print(f"  {'':<48s} {'gudhi':>8s} {'union-find':>11s} {'ratio':>7s}")
    for name, fn in cases.items():
        fn()  # warm-up (and the numba cache load)
        per = {"gudhi": [], "unionfind": []}
        for _ in range(args.repeats):
            for backend in per:
                per[backend].append(1e3 * timed(fn, backend))
        g, u = (float(np.median(per[b])) for b in ("gudhi", "unionfind"))
        print(f"  {name:<48s} {g:>8.1f} {u:>11.1f} {g / u:>6.1f}x")


if __name__ == "__main__":
    main()
