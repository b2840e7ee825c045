"""Benchmark: the ISBI challenge scores (V_rand, V_info after border thinning) of one slice.

    .venv/bin/python benchmarks/isbi_metrics.py [--slices 0 6 12 18 24] [--repeats 5]

Real ISBI training slices at 512x512; the probability maps are the truth blurred (Gaussian,
sigma 2), the same with smooth noise added (a map with false membranes and gaps), and, as a
worst case, uniform noise (thousands of tiny components at every threshold). Prints, per map
kind, the median seconds of :func:`topobook.metrics.isbi_challenge.isbi_scores` (all eleven
thresholds) over ``--repeats`` runs of every slice, the slowest slice's median, and the scores;
then the same for :func:`topobook.metrics.pixel.cldice` of the map thresholded at 0.5. Goal: at most
1 s per slice.

Then the stack scores :func:`topobook.metrics.isbi_challenge.isbi_stack_scores` of the first three
slices (a stack of three, as Fiji scores a stack) on Fiji's 11-point grid and on the 99-point
operating-point grid 0.01 ... 0.99, median seconds of ``--repeats`` runs, and how many
thinnings the unchanged-binary-image rule saves.

``--conventions`` also prints the scores under other readings of the challenge's procedure than
the one implemented (the one read in Fiji's source, see :mod:`topobook.metrics.isbi_challenge`): the
truth's borders thinned too, no thinning at all, and skimage's watershed lines instead of Fiji's
flooding order; so the size of each choice can be seen on real slices.

``--trivial`` scores the trivial predictors (:data:`topobook.metrics.evaluation.REFERENCES`) and two
proxies of a network (the blurred truth with smooth noise; *proxies*, not trained networks) at
the operating point chosen on validation slices 21-23, on evaluation slices 24-29
(:func:`topobook.metrics.evaluation.evaluate_at_operating_point`), and the proxies and "all cell" at
0.5 too, to see which trivial predictor wins which metric.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from evaluation_speed import proxy  # network-like cell probabilities (benchmarks/ is on the path)
from scipy import ndimage

from topobook.datasets import isbi2012
from topobook.metrics import evaluation, isbi_challenge, pixel

GOAL_S = 1.0


def probability_maps(truth: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # clipped: the filter's rounding can leave 1 + 2^-52 (seen on an AVX2 machine)
    blurred = np.clip(ndimage.gaussian_filter(truth.astype(np.float64), 2.0), 0.0, 1.0)
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
        isbi_challenge.thin_boundaries(cells_truth)
        if thin_truth
        else label(cells_truth, connectivity=1)
    )
    best = [0.0, 0.0]
    for threshold in isbi_challenge.ISBI_THRESHOLDS:
        cells = p > threshold
        if thin == "fiji":
            proposal = isbi_challenge.thin_boundaries(cells)
        elif thin == "none":
            proposal = label(cells, connectivity=1)
        else:  # skimage's watershed lines (ties broken by its heap)
            markers = label(cells, connectivity=1)
            proposal = (
                watershed(~cells, markers, connectivity=1, watershed_line=True)
                if markers.max()
                else label(~cells, connectivity=1)
            )
        scores = isbi_challenge.foreground_restricted_scores(truth_labels, proposal)
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


def stack_timing(masks, repeats: int) -> None:
    """Median seconds of the stack scores of three slices on the 11- and 99-point grids."""
    truths = masks[:3]
    probability = np.stack(
        [probability_maps(t, seed=i)["blurred + noise"] for i, t in enumerate(truths)]
    )
    grids = {"Fiji 0.0:1.0:0.1 (11)": None, "0.01 ... 0.99 (99)": evaluation.FINE_THRESHOLDS}
    print(f"\nstack of {len(truths)} slices (blurred + noise), median of {repeats} runs")
    print(f"{'grid':>22s} {'median s':>9s} {'thinnings':>10s} {'V_rand':>8s} {'at':>6s}")
    for name, grid in grids.items():
        seconds = median_s(
            lambda g=grid: isbi_challenge.isbi_stack_scores(probability, truths, g), repeats
        )
        calls = []
        original = isbi_challenge.thin_boundaries

        def counting(cells, calls=calls, original=original):
            calls.append(1)
            return original(cells)

        isbi_challenge.thin_boundaries = counting
        try:
            scores = isbi_challenge.isbi_stack_scores(probability, truths, grid)
        finally:
            isbi_challenge.thin_boundaries = original
        n_thresholds = len(scores["thresholds"]) * len(truths)
        print(
            f"{name:>22s} {seconds:>9.2f} {len(calls):>4d}/{n_thresholds:<5d} "
            f"{scores['v_rand']:>8.4f} {scores['threshold_v_rand']:>6.2f}"
        )


def trivial_predictors() -> None:
    """Which trivial predictor wins which metric at the validation-chosen operating point."""
    val_slices, eval_slices = [21, 22, 23], list(range(24, 30))
    val_images, val_masks = isbi2012.load_isbi(val_slices)
    images, masks = isbi2012.load_isbi(eval_slices)

    rows = {}
    for kind in evaluation.REFERENCES:
        rows[kind] = evaluation.evaluate_reference_at_operating_point(
            kind, val_images, val_masks, images, masks, eval_slices
        )
    for noise in (0.6, 1.2):
        name = f"proxy (noise {noise})"
        rows[name] = evaluation.evaluate_at_operating_point(
            proxy(val_masks, 1, noise), val_masks, proxy(masks, 2, noise), masks, eval_slices
        )
        rows[name + " @0.5"] = evaluation.score_at_threshold(
            proxy(masks, 2, noise), masks, eval_slices, 0.5
        )
    rows["all_cell @0.5"] = evaluation.score_at_threshold(
        evaluation.reference_probabilities("all_cell", images), masks, eval_slices, 0.5
    )
    keys = [*evaluation.OPERATING_POINT_METRICS, "membrane_fraction"]
    print("\nevaluation slices 24-29 at the threshold chosen on slices 21-23 (mean over slices)")
    print(f"{'predictor':>24s} {'t':>5s} " + " ".join(f"{k[:11]:>11s}" for k in keys))
    for name, result in rows.items():
        values = " ".join(f"{result['mean'][k]:>11.4f}" for k in keys)
        print(f"{name:>24s} {result['threshold']:>5.2f} {values}")
    truth_fraction = rows["all_cell"]["mean"]["membrane_fraction_truth"]
    print(f"true membrane fraction {truth_fraction:.4f}")
    for name, result in rows.items():
        if "evaluation_oracle" in result:
            oracle = result["evaluation_oracle"]
            print(
                f"{name:>24s} evaluation oracle (Fiji grid on 24-29): V_rand {oracle['v_rand']:.4f}"
                f" at {oracle['threshold_v_rand']:.2f}, V_info {oracle['v_info']:.4f}"
            )


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
    parser.add_argument("--trivial", action="store_true")
    args = parser.parse_args()
    _, masks = isbi2012.load_isbi(args.slices)
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
                lambda p=probability, t=truth: isbi_challenge.isbi_scores(p, t), args.repeats
            )
            scores = isbi_challenge.isbi_scores(probability, truth)
            cl = median_s(
                lambda p=probability, t=truth: pixel.cldice((p > 0.5).astype(np.uint8), t),
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
    stack_timing(masks, args.repeats)
    if args.conventions:
        conventions(masks)
    if args.trivial:
        trivial_predictors()


if __name__ == "__main__":
    main()
