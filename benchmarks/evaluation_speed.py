"""Benchmark: the CPU time of one ISBI 2012 run's evaluation, before and after the faster
evaluation kernels, side by side, and a check that both give the same numbers.

    .venv/bin/python benchmarks/evaluation_speed.py [--rounds 3] [--baseline REV]
    .venv/bin/python benchmarks/evaluation_speed.py --predictions RUN/predictions.npz
    .venv/bin/python benchmarks/evaluation_speed.py --quick      # 2 + 1 slices, 1 round: a check

What a finished run of the CI profile spends on scoring (:func:`topobook.datasets.isbi2012.evaluate`
with the paper recipe, operating points on the 0.1 grid, 100 Betti windows per slice): the six
evaluation slices 24-29 scored twice by :func:`topobook.metrics.evaluation.evaluate` (the final
and the last epoch's probabilities) and once at the operating point chosen on the validation
slices 21-23 (:func:`topobook.metrics.evaluation.evaluate_at_operating_point`, with the
challenge's oracle reading). The cell probabilities are network-like proxies (each truth smoothed
by a Gaussian of sigma 2 pixels plus smooth noise of sd 0.6, clipped to [0, 1]; the last epoch's
with other noise), or, with ``--predictions``, the saved ``probabilities`` and
``val_probabilities`` of a run (``--last`` another run's file for the last epoch's).

*Before* is the package at git revision ``--baseline`` (default: the last commit before the
faster kernels), extracted by ``git archive`` into a folder of the temporary directory that is
kept (its numba kernels compile the first time only, a minute or two); *after* is this working
tree. Each round runs each side in a fresh process, the sides alternating: one untimed
evaluation (imports, numba kernels loaded from their cache), then one timed; the table gives the
median over ``--rounds`` of the CPU seconds (``time.process_time``, one thread) of one
evaluation, and the ratio. Every number of the two
results is then compared: floats to the last bit (NaN equal to NaN), counts exactly.

Measured on the project's shared 2-core machine (medians of 3 rounds, results identical each
time): loaded about 3.5 times over, proxies 5.94 s before and 3.54 s after (1.68x), the saved
predictions of a CI run (``cldice_lam0.1``, seeds 0 and 1) 5.90 s and 3.31 s (1.78x); loaded
about twice over, proxies 6.08 s and 3.32 s (1.83x), the CI run 6.22 s and 3.13 s (1.99x). The
new numba kernels cost about 9 s of CPU more to compile once, into an empty numba cache.
Where the time went before: the contingency counts and the labelling of the V_rand
thinning, the stable argsort and the union-finds of the Betti matching error, and
``scipy.ndimage.label`` on the Betti windows; after, the Betti matching error's dual
union-finds (about half of it), the thinning and clDice's skeletons.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "b59fbe9"  # the last commit before the faster evaluation kernels

# run in each side's process, with that side's package first on the path
CHILD = '''
import pickle, sys, time
import numpy as np
from topobook.datasets import isbi2012
from topobook.training.config import TrainConfig

inputs, out, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = np.load(inputs)
config = TrainConfig(strategy="baseline", recipe="paper", epochs=2,
                     operating_point_step=float(data["step"]),
                     eval_slices=tuple(int(s) for s in data["eval_slices"]),
                     val_slices=tuple(int(s) for s in data["val_slices"]))
args = (config, data["probabilities"], data["masks"], data["val_probabilities"],
        data["val_masks"])
result = isbi2012.evaluate(*args, last=data["last"])  # untimed: imports, kernels
seconds = []
for _ in range(rounds):
    start = time.process_time()
    isbi2012.evaluate(*args, last=data["last"])
    seconds.append(time.process_time() - start)
with open(out, "wb") as f:
    pickle.dump({"result": result, "seconds": seconds}, f)
'''


def proxy(truths: np.ndarray, seed: int, noise: float = 0.6) -> np.ndarray:
    """Network-like cell probabilities ``(N, H, W)`` float32 for masks ``(N, H, W)``."""
    rng = np.random.default_rng(seed)
    maps = [
        np.clip(
            ndimage.gaussian_filter(t.astype(np.float64), 2.0)
            + noise * ndimage.gaussian_filter(rng.standard_normal(t.shape), 1.5),
            0.0,
            1.0,
        )
        for t in truths
    ]
    return np.stack(maps).astype(np.float32)


def inputs(args) -> dict[str, np.ndarray]:
    from topobook.datasets import isbi2012

    eval_slices, val_slices = (24, 25), (21,)
    if not args.quick:
        eval_slices, val_slices = tuple(range(24, 30)), (21, 22, 23)
    _, masks = isbi2012.load_isbi(list(eval_slices))
    _, val_masks = isbi2012.load_isbi(list(val_slices))
    if args.predictions:
        saved = np.load(args.predictions)
        probabilities = saved["probabilities"].astype(np.float32)
        val_probabilities = saved["val_probabilities"].astype(np.float32)
        last = (np.load(args.last)["probabilities"].astype(np.float32) if args.last
                else probabilities)
    else:
        probabilities, val_probabilities = proxy(masks, 2), proxy(val_masks, 1)
        last = proxy(masks, 3)
    return {
        "probabilities": probabilities,
        "masks": masks,
        "val_probabilities": val_probabilities,
        "val_masks": val_masks,
        "last": last,
        "eval_slices": np.array(eval_slices),
        "val_slices": np.array(val_slices),
        "step": np.array(0.25 if args.quick else 0.1),
    }


def extract(revision: str) -> Path:
    """A folder holding the package ``topobook/`` at ``revision``, kept between runs (in the
    temporary directory) so that its numba kernels compile once."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", revision],
                            capture_output=True, text=True)
    if commit.returncode:
        raise SystemExit(f"unknown revision {revision!r} ({commit.stderr.strip()}): pass "
                         "--baseline with a revision of this repository")
    side = Path(tempfile.gettempdir()) / f"topobook-baseline-{commit.stdout.strip()[:12]}"
    if not (side / "topobook").is_dir():
        side.mkdir(parents=True, exist_ok=True)
        archive = side / "package.tar"
        with open(archive, "wb") as f:
            subprocess.run(["git", "-C", str(ROOT), "archive", revision, "topobook"], stdout=f,
                           check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(side, filter="data")
        archive.unlink()
    return side


def run_side(package_root: Path, script: Path, data: Path, out: Path) -> dict:
    """One process with ``package_root`` first on the path: one untimed evaluation, one timed."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    subprocess.run([sys.executable, str(script), str(data), str(out), "1"], check=True, env=env,
                   cwd=script.parent)
    with open(out, "rb") as f:
        return pickle.load(f)


def differences(a, b, path: str = "") -> list[str]:
    """Where two results differ: floats bit for bit (NaN = NaN), everything else by ``==``."""
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} vs {type(b).__name__}"]
    if isinstance(a, dict):
        if list(a) != list(b):
            return [f"{path}: keys {list(a)} vs {list(b)}"]
        return [d for k in a for d in differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float):
        same = np.float64(a).tobytes() == np.float64(b).tobytes() or (math.isnan(a)
                                                                       and math.isnan(b))
        return [] if same else [f"{path}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--predictions", help="a run's predictions.npz")
    parser.add_argument("--last", help="another predictions.npz for the last epoch's")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    roots = {"before": extract(args.baseline), "after": ROOT}
    results: dict[str, list] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data, script = folder / "inputs.npz", folder / "score_run.py"
        np.savez(data, **inputs(args))
        script.write_text(CHILD)
        for _ in range(rounds):  # the sides alternate, a fresh process each
            for name, root in roots.items():
                results[name].append(run_side(root, script, data, folder / f"{name}.pkl"))
    seconds = {name: [r["seconds"][0] for r in runs] for name, runs in results.items()}
    before, after = (np.median(seconds[k]) for k in ("before", "after"))
    slices = "2 + 1 slices (--quick)" if args.quick else "6 evaluation + 3 validation slices"
    source = args.predictions or "proxy probabilities"
    print(f"one run's ISBI evaluation ({slices}, {source}), CPU seconds, median of {rounds}")
    print(f"{'before (' + args.baseline + ')':>20s} {'after':>8s} {'ratio':>7s}")
    print(f"{before:>20.2f} {after:>8.2f} {before / after:>6.2f}x")
    print("rounds before:", " ".join(f"{s:.2f}" for s in seconds["before"]))
    print("rounds after: ", " ".join(f"{s:.2f}" for s in seconds["after"]))
    diff = differences(results["before"][0]["result"], results["after"][0]["result"])
    print("results identical" if not diff else f"{len(diff)} differences, e.g. {diff[:5]}")


if __name__ == "__main__":
    main()
