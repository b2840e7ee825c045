"""Benchmark: what the evaluation of one TopoMortar run (chapter 8) spends its time on, before and
after counting the Betti numbers by union-find.

    .venv/bin/python benchmarks/topomortar_evaluation.py [--repeats 3]
    .venv/bin/python benchmarks/topomortar_evaluation.py --quick      # 3 + 2 images: a check

A finished run's evaluation (:func:`topobook.training.run.train` after the last epoch, its
``eval_seconds``): load the 50 test images, predict them and the 20 validation images (one
512 x 512 forward pass each, :func:`topobook.training.run.predict`, one thread), score the test
images with the authors' and the book's metrics and the validation images with the authors'
(:func:`topobook.datasets.topomortar.evaluate`). This script times each part on ``--test`` and
``--val`` images and scales it to a run's 50 + 20, in CPU seconds (``time.process_time``), with
chapter 8's network (``UNet(3, 16, depth 4, group norm)``, channels_last, untrained: the cost of
a forward pass does not depend on the weights) and network-like brick probabilities (the truth's
bricks smoothed by a Gaussian of sigma 2 pixels plus noise of sd 0.2, clipped: thin mortar
broken and speckled as a network's is).

Side by side in one run (medians of ``--repeats`` interleaved rounds):

* the scoring, before (Betti numbers by ``scipy.ndimage.label``, ``betti="labels"``, and the
  validation mortar read again from its files) and after (``betti="unionfind"``, the validation
  mortar taken from the run's targets): the same numbers (checked here, and in the tests);
* the Betti counts alone (the whole image and its 16 windows of 128 x 128, prediction and truth);
* the forward passes in float32 and, where the CPU does bfloat16 natively, under bf16 autocast
  (a ``precision="bf16"`` run's evaluation; ``skipped`` elsewhere).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import ndimage

from topobook.datasets import topomortar
from topobook.metrics import topomortar_metrics as tm
from topobook.training.precision import native_bf16
from topobook.training.run import predict
from topobook.training.unet import UNet

RUN_TEST, RUN_VAL = 50, 20  # images a run's evaluation predicts and scores


def network_like(mortar: np.ndarray, seed: int = 0) -> np.ndarray:
    """Brick probabilities ``(N, H, W)`` float32 in [0, 1] for mortar masks ``(N, H, W)``."""
    rng = np.random.default_rng(seed)
    smooth = np.stack([ndimage.gaussian_filter(1.0 - m.astype(np.float64), 2.0) for m in mortar])
    return np.clip(smooth + rng.normal(0.0, 0.2, smooth.shape), 0, 1).astype(np.float32)


def score(p, mortar, betti: str, book_scores: bool) -> dict:
    """The per-image scores of :func:`topobook.datasets.topomortar.evaluate_predictions` with
    ``betti`` as the Betti counter (test images: ``book_scores``; validation images: not)."""
    original = tm._BETTI["unionfind"]
    tm._BETTI["unionfind"] = tm._BETTI[betti]  # evaluate_predictions asks for "unionfind"
    try:
        return topomortar.evaluate_predictions(p, mortar, book_scores=book_scores)
    finally:
        tm._BETTI["unionfind"] = original


def betti_counts(masks: np.ndarray, betti: str) -> list:
    """The Betti numbers the authors' scores count on each mask: whole image and windows."""
    count = tm._BETTI[betti]
    out = []
    for m in masks:
        out.append(count(m))
        out += [count(m[y : y + tm.WINDOW, x : x + tm.WINDOW])
                for y in range(0, m.shape[0], tm.WINDOW) for x in range(0, m.shape[1], tm.WINDOW)]
    return out


def cpu_seconds(fn, *args) -> tuple[float, object]:
    start = time.process_time()
    result = fn(*args)
    return time.process_time() - start, result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test", type=int, default=10, help="test images timed (of 50)")
    parser.add_argument("--val", type=int, default=4, help="validation images timed (of 20)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--quick", action="store_true", help="3 + 2 images, 1 round: a check")
    args = parser.parse_args(argv)
    if args.quick:
        args.test, args.val, args.repeats = 3, 2, 1
    torch.set_num_threads(1)
    test_ids = list(range(71, 71 + args.test))
    val_ids = list(range(51, 51 + args.val))
    seconds, (test_images, test_mortar) = cpu_seconds(topomortar.load_images, test_ids)
    load_per_image = seconds / args.test
    val_images, val_mortar = topomortar.load_images(val_ids)
    test_p, val_p = network_like(test_mortar, 0), network_like(val_mortar, 1)
    model = UNet(in_channels=3, base_width=16, depth=4, norm="group")
    model = model.to(memory_format=torch.channels_last)
    bf16 = native_bf16()

    # warm up: numba kernels (loaded from their cache or compiled), oneDNN primitives
    for betti in ("labels", "unionfind"):
        score(test_p[:1], test_mortar[:1], betti, True)
    predict(model, test_images[:1])
    if bf16:
        predict(model, test_images[:1], precision="bf16")

    times: dict[str, list[float]] = {}
    results = {}
    for _ in range(args.repeats):
        for name, betti in (("before", "labels"), ("after", "unionfind")):
            t, results[f"test {name}"] = cpu_seconds(score, test_p, test_mortar, betti, True)
            t_val, results[f"val {name}"] = cpu_seconds(score, val_p, val_mortar, betti, False)
            # scaled to a run's 50 test and 20 validation images
            times.setdefault(f"scoring {name}", []).append(
                t * RUN_TEST / args.test + t_val * RUN_VAL / args.val)
            masks = np.concatenate([topomortar.mortar_prediction(test_p), test_mortar])
            t, results[f"betti {name}"] = cpu_seconds(betti_counts, masks, betti)
            times.setdefault(f"betti {name}", []).append(t)
        images = np.concatenate([test_images, val_images])
        for prec in ("fp32", "bf16") if bf16 else ("fp32",):
            t, _ = cpu_seconds(predict, model, images, None, prec)
            times.setdefault(f"predict {prec}", []).append(t)
    for part in ("test", "val", "betti"):
        if results[f"{part} before"] != results[f"{part} after"]:
            raise AssertionError(f"the {part} numbers before and after differ")
    median = {k: float(np.median(v)) for k, v in times.items()}

    predict_fp32 = median["predict fp32"] / (args.test + args.val) * (RUN_TEST + RUN_VAL)
    print(f"{args.test} test + {args.val} validation images timed, {args.repeats} round(s), "
          f"1 thread, CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16 "
          f"{bf16}; scaled to a run's {RUN_TEST} + {RUN_VAL} images (CPU seconds)"
          + (" [QUICK]" if args.quick else ""))
    print(f"{'part':50s} {'before':>8s} {'after':>8s} {'ratio':>6s}")

    def row(name: str, before: float, after: float) -> None:
        print(f"{name:50s} {before:8.2f} {after:8.2f} {before / after:6.2f}")

    scale = (RUN_TEST + RUN_VAL) / args.test  # Betti counts: the same on every image
    row("Betti counts (image + 16 windows, both masks)", median["betti before"] * scale,
        median["betti after"] * scale)
    row("scoring (test: authors' + book's; val: authors')", median["scoring before"],
        median["scoring after"])
    load_before = load_per_image * (RUN_TEST + RUN_VAL)
    row("loading the test (+ validation) labels", load_before, load_per_image * RUN_TEST)
    row("forward passes, fp32 (unchanged)", predict_fp32, predict_fp32)
    total_before = median["scoring before"] + load_before + predict_fp32
    total_after = median["scoring after"] + load_per_image * RUN_TEST + predict_fp32
    row("a run's evaluation, fp32", total_before, total_after)
    if bf16:
        predict_bf16 = median["predict bf16"] / (args.test + args.val) * (RUN_TEST + RUN_VAL)
        row("forward passes, fp32 -> bf16 autocast", predict_fp32, predict_bf16)
        row("a run's evaluation, fp32 -> bf16 run", total_before,
            total_after - predict_fp32 + predict_bf16)
    else:
        print(f"{'forward passes under bf16 autocast':50s} skipped: no native bf16")
    print(f"per image: forward pass {median['predict fp32'] / (args.test + args.val):.3f} s")


if __name__ == "__main__":
    main()
