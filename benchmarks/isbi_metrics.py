"""Benchmark: the ISBI challenge scores (V_rand, V_info after border thinning) of one slice.

    .venv/bin/python benchmarks/isbi_metrics.py [--slices 0 6 12 18 24] [--repeats 5]

Real ISBI training slices at 512x512; the probability maps are the truth blurred (Gaussian,
sigma 2), the same with smooth noise added (a map with false membranes and gaps), and, as a
worst case, uniform noise (thousands of tiny components at every threshold). Prints, per map
kind, the median seconds of :func:`topobook.metrics.isbi_scores` (all eleven thresholds) over
``--repeats`` runs of every slice, the slowest slice's median, and the scores; then the same for
:func:`topobook.metrics.cldice` of the map thresholded at 0.5. Goal: at most 1 s per slice.

``--conventions`` also prints the scores under other readings of the challenge's procedure than
the one implemented (Fiji's thinning code could not be read, see ``isbi_scores``): the truth's
borders thinned too, no thinning at all, and skimage's watershed lines instead of Fiji's
flooding order; so the size of each choice can be seen on real slices.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import ndimage

from topobook import data, metrics

GOAL_S = 1.0


def probability_maps(truth: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    blurred = ndimage.gaussian_filter(truth.astype(np.float64), 2.0)
    noise = ndimage.gaussian_filter(rng.standard_normal(truth.shape), 1.5)
    return {
        "blurred truth": blurred,
        "blurred + noise": np.clip(blurred + 0.6 * noise, 0.0, 1.0),
        "uniform noise": rng.random(truth.shape),
    }


def _best(probability, truth, thin_truth=False, thin="fiji") -> tuple[float, float]:
    """V_rand and V_info under another reading of the procedure (for --conventions)."""
    from skimage.measure import label
    from skimage.segmentation import watershed

    p = probability.astype(np.float32).astype(np.float64)
    cells_truth = truth.astype(bool)
    truth_labels = (
        metrics.thin_boundaries(cells_truth) if thin_truth else label(cells_truth, connectivity=1)
    )
    best = [0.0, 0.0]
    for threshold in metrics.ISBI_THRESHOLDS:
        cells = p > threshold
        if thin == "fiji":
            proposal = metrics.thin_boundaries(cells)
        elif thin == "none":
            proposal = label(cells, connectivity=1)
        else:  # skimage's watershed lines (ties broken by its heap)
            markers = label(cells, connectivity=1)
            proposal = (
                watershed(~cells, markers, connectivity=1, watershed_line=True)
                if markers.max()
                else label(~cells, connectivity=1)
            )
        scores = metrics.foreground_restricted_scores(truth_labels, proposal)
        best = [max(best[0], scores["v_rand"]), max(best[1], np.nan_to_num(scores["v_info"]))]
    return best[0], best[1]


def conventions(masks) -> None:
    readings = {
        "implemented": {},
        "truth thinned too": {"thin_truth": True},
        "no thinning": {"thin": "none"},
        "skimage lines": {"thin": "skimage"},
    }
    print("\nmean V_rand / V_info under other readings of the procedure")
    print(f"{'map':>16s} " + " ".join(f"{name:>20s}" for name in readings))
    for kind in ("blurred truth", "blurred + noise"):
        cells = []
        for options in readings.values():
            values = [
                _best(probability_maps(t, seed=i)[kind], t, **options) for i, t in enumerate(masks)
            ]
            cells.append(
                f"{np.mean([v[0] for v in values]):.5f}/{np.mean([v[1] for v in values]):.5f}"
            )
        print(f"{kind:>16s} " + " ".join(f"{c:>20s}" for c in cells))


def median_s(fn, repeats: int) -> float:
    fn()  # warm-up (imports, the cached neighbour table)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, nargs="+", default=[0, 6, 12, 18, 24])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--conventions", action="store_true")
    args = parser.parse_args()
    _, masks = data.load_isbi(args.slices)
    print(
        f"{len(args.slices)} ISBI training slices {args.slices} at 512x512, {os.cpu_count()} "
        f"cores, median of {args.repeats} runs per slice\n"
    )
    print(
        f"{'map':>16s} {'median s/slice':>15s} {'slowest slice s':>16s} "
        f"{'V_rand (mean)':>14s} {'V_info (mean)':>14s}"
    )
    per_kind: dict[str, list] = {}
    for i, truth in enumerate(masks):
        for kind, probability in probability_maps(truth, seed=i).items():
            seconds = median_s(
                lambda p=probability, t=truth: metrics.isbi_scores(p, t), args.repeats
            )
            scores = metrics.isbi_scores(probability, truth)
            cl = median_s(
                lambda p=probability, t=truth: metrics.cldice((p > 0.5).astype(np.uint8), t),
                args.repeats,
            )
            per_kind.setdefault(kind, []).append((seconds, scores, cl))
    for kind, rows in per_kind.items():
        seconds = [r[0] for r in rows]
        print(
            f"{kind:>16s} {np.median(seconds):>15.3f} {max(seconds):>16.3f} "
            f"{np.mean([r[1]['v_rand'] for r in rows]):>14.5f} "
            f"{np.mean([r[1]['v_info'] for r in rows]):>14.5f}"
        )
    print(f"\ngoal: at most {GOAL_S:.0f} s per slice")
    print("\ncldice of the map thresholded at 0.5")
    print(f"{'map':>16s} {'median s/slice':>15s}")
    for kind, rows in per_kind.items():
        print(f"{kind:>16s} {np.median([r[2] for r in rows]):>15.3f}")
    if args.conventions:
        conventions(masks)


if __name__ == "__main__":
    main()
