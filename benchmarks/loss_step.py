"""Benchmark: the cost of one U-Net training step with each loss of the book.

    .venv/bin/python benchmarks/loss_step.py [--width 16] [--repeats 15] [--threads 1]

One step = forward, loss, backward and Adam update of ``UNet(base_width=16, depth=4)`` on one
64x64 ISBI 2012 training patch (batch 1), one PyTorch thread: the losses of
:data:`topobook.timing.LOSS_STEP_SETTINGS` (BCE alone; BCE + L_topo with lifetime matching on
the cubical complex, the paper's text; the authors' notebook loss, with and without the
emulated gradient bug; clDice with 3 and with 10 soft-skeleton iterations; Betti matching; the
sorted-value control). The measurement is :func:`topobook.timing.training_step_ms`, the same
function chapter 6 calls: the losses take turns on the same patch within each round, so
machine noise hits all alike. Prints the median ms per step over ``--repeats`` rounds (after 2
warm-up rounds) and the ratio to BCE measured in the same run.
"""

from __future__ import annotations

import argparse

from topobook.timing import LOSS_STEP_SETTINGS, training_step_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=16, help="U-Net base width")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (>= 9)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.repeats < 9:
        parser.error("--repeats must be >= 9")

    medians = training_step_ms(
        LOSS_STEP_SETTINGS, repeats=args.repeats, width=args.width, threads=args.threads
    )
    print(
        f"U-Net width {args.width}, depth 4, one 64x64 ISBI patch per step, "
        f"{args.threads} thread(s), medians of {args.repeats} steps\n"
    )
    bce = medians["BCE"]
    print(f"{'loss':<36s} {'ms/step':>8s} {'ratio':>6s}")
    for name, ms in medians.items():
        print(f"{name:<36s} {ms:>8.1f} {ms / bce:>6.2f}")


if __name__ == "__main__":
    main()
