"""Benchmark: the cost of one U-Net training step with each loss of the book.

How to run (from the repository root; a few minutes; ``--only-topo`` well under one)::

    .venv/bin/python benchmarks/loss_step.py --only-topo --clock cpu            # issue 19's goal
    .venv/bin/python benchmarks/loss_step.py --only-topo --clock process --batch 8  # stable
    .venv/bin/python benchmarks/loss_step.py [--width 16] [--repeats 15] [--threads 1]

One step = forward, loss, backward and Adam update of ``UNet(base_width=16, depth=4)`` on a
mini-batch of 64x64 ISBI 2012 training patches, one PyTorch thread: by default one patch and
batch normalisation (the paper's recipe); ``--batch 8`` takes 8 patches and group normalisation
(the book's stable recipe, whose L_topo is averaged over the crops). The losses are those of
:data:`topobook.study.timing.LOSS_STEP_SETTINGS` (BCE alone; BCE + L_topo with lifetime matching on
the cubical complex, the paper's text; the authors' notebook loss, with and without the
emulated gradient bug; clDice with 3 and with 10 soft-skeleton iterations; Betti matching; the
sorted-value control; Skeleton Recall; SCNP with its 3 x 3 window at weight 1, i.e. the BCE of
the penalised logits alone). The measurement is
:func:`topobook.study.timing.training_step_ms`, the same function chapter 6 calls: the losses take
turns on the same patches within each round, so machine noise hits all alike. Prints the median
ms per step over ``--repeats`` rounds (after 2 warm-up rounds) and the ratio to BCE measured in
the same run. On a machine shared with other jobs use ``--clock cpu`` (the CPU time of the
thread, which waiting for a core does not inflate) and run it two or three times: the ratio of
one run still moves by a few hundredths, so quote the median of the runs. With ``--batch 8``
use ``--clock process``: the gudhi backend computes a batch's crops in threads, whose time the
thread's clock misses (the union-find runs them one after another on the calling thread).

Before and after the union-find persistence backend (issue 19), side by side: L_topo runs
twice, with the default backend (the union-find) and with ``backend="gudhi"`` (the book's path
before). The notebook losses keep TopologyLayer's zero-length bars, which only gudhi computes,
so they are unchanged. ``--only-topo`` times BCE and the two L_topo rows alone (quicker).
"""

from __future__ import annotations

import argparse

from topobook.study.timing import LOSS_STEP_SETTINGS, training_step_ms

TOPO = "BCE + L_topo (lifetime, cubical)"
TOPO_GUDHI = "  the same, gudhi backend (before)"


def settings(only_topo: bool, batch: int = 1) -> dict[str, dict]:
    """The losses to time: every loss of the book with L_topo also on the gudhi backend; with
    a batch of several crops, L_topo averaged over them as in training (``reduction="mean"``)."""
    out = {}
    for name, setting in LOSS_STEP_SETTINGS.items():
        if only_topo and name not in ("BCE", TOPO):
            continue
        if batch > 1 and setting["loss"] == "topo":
            setting = {**setting, "reduction": "mean"}
        out[name] = setting
        if name == TOPO:
            out[TOPO_GUDHI] = {**setting, "backend": "gudhi"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=16, help="U-Net base width")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (>= 9)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only-topo", action="store_true", help="BCE and L_topo only")
    parser.add_argument("--batch", type=int, default=1, help="crops per step (stable recipe: 8)")
    parser.add_argument(
        "--norm",
        choices=("batch", "group"),
        default=None,
        help="U-Net normalisation (default: batch for one crop, group for several, as trained)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu", "process"),
        default="wall",
        help="wall time, the CPU time of the thread (steadier on a shared machine), or of the "
        "process (all threads: the gudhi backend runs a batch's crops in threads)",
    )
    args = parser.parse_args()
    if args.repeats < 9:
        parser.error("--repeats must be >= 9")
    if args.batch < 1:
        parser.error("--batch must be >= 1")
    norm = args.norm or ("batch" if args.batch == 1 else "group")

    medians = training_step_ms(
        settings(args.only_topo, args.batch),
        repeats=args.repeats,
        width=args.width,
        threads=args.threads,
        clock=args.clock,
        batch=args.batch,
        norm=norm,
    )
    print(
        f"U-Net width {args.width}, depth 4, {norm} norm, {args.batch} 64x64 ISBI patch(es) "
        f"per step, {args.threads} thread(s), medians of {args.repeats} steps, "
        f"{args.clock} clock\n"
    )
    bce = medians["BCE"]
    print(f"{'loss':<36s} {'ms/step':>8s} {'ratio':>6s}")
    for name, ms in medians.items():
        print(f"{name:<36s} {ms:>8.1f} {ms / bce:>6.2f}")
    topo, before = medians[TOPO], medians[TOPO_GUDHI]
    print(
        f"\nL_topo step / BCE step: {topo / bce:.3f} (union-find), {before / bce:.3f} (gudhi); "
        f"L_topo's own cost {topo - bce:.1f} ms vs {before - bce:.1f} ms (goal: ratio <= 1.05)"
    )


if __name__ == "__main__":
    main()
