"""Compare two results folders run by run: the numbers must not move.

    python benchmarks/compare_results.py BEFORE AFTER [--subset]

For every ``metrics.json`` and ``predictions.npz`` under ``BEFORE`` and ``AFTER`` (by relative
path): both folders must hold the same files; with ``--subset`` only the files both hold are
compared (the others are counted, not compared):

* ``predictions.npz``: every array decompressed must be identical (same names, dtype, shape and
  bytes); whether the files' bytes are identical too is reported, and where they are not, whether
  they differ only in the zip members' timestamps (same member names, CRCs and compressed bytes).
* ``metrics.json``: every field identical (exact float equality, lists and dicts recursively)
  except these provenance and timing fields, ignored at any depth: ``train_seconds`` and
  ``eval_seconds`` (wall-clock times), ``code_hash`` (the hash of the package's files, which a
  refactor changes by definition) and ``machine`` (the machine record: host, library versions);
  and a field only ``AFTER`` has, where it holds the default of a field added since
  (``ADDED_DEFAULTS``: ``precision`` ``"fp32"``, what every earlier run computed in).

Prints one line per difference and a summary; exits 1 if any number differs or a run is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np

IGNORED = ("train_seconds", "eval_seconds", "code_hash", "machine")
# fields added to metrics.json (and its config) since runs were recorded: absent before, and at
# this value after, they are the same run
ADDED_DEFAULTS = {"precision": "fp32"}


def compare_json(a, b, path: str = "") -> list[str]:
    """Differences between two JSON values (``IGNORED`` keys skipped at any depth)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key in IGNORED:
                continue
            if key not in a and key in ADDED_DEFAULTS and b[key] == ADDED_DEFAULTS[key]:
                continue
            if key not in a or key not in b:
                out.append(f"{path}/{key}: only in {'after' if key not in a else 'before'}")
            else:
                out += compare_json(a[key], b[key], f"{path}/{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in compare_json(x, y, f"{path}[{i}]")]
    same = a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )
    return [] if same and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]


def compare_npz(a: Path, b: Path) -> tuple[list[str], str]:
    """Differences between the arrays of two npz files, and how their bytes compare."""
    out = []
    with np.load(a) as x, np.load(b) as y:
        if sorted(x.files) != sorted(y.files):
            return [f"arrays {sorted(x.files)} != {sorted(y.files)}"], "different"
        for name in x.files:
            u, v = x[name], y[name]
            if u.dtype != v.dtype or u.shape != v.shape or u.tobytes() != v.tobytes():
                out.append(f"array {name} differs ({u.dtype}{u.shape} vs {v.dtype}{v.shape})")
    if a.read_bytes() == b.read_bytes():
        return out, "identical bytes"
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        ia, ib = za.infolist(), zb.infolist()
        same = [(i.filename, i.CRC, i.compress_size) for i in ia] == [
            (i.filename, i.CRC, i.compress_size) for i in ib
        ]
    return out, "bytes differ only in zip timestamps" if same else "bytes differ"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--subset", action="store_true", help="only the files both folders hold")
    args = parser.parse_args(argv)
    names = ("metrics.json", "predictions.npz")
    before = {p.relative_to(args.before) for n in names for p in args.before.rglob(n)}
    after = {p.relative_to(args.after) for n in names for p in args.after.rglob(n)}
    problems, byte_kinds = [], {}
    if args.subset:
        print(f"{len(before ^ after)} files in one folder only: not compared")
    else:
        for missing in sorted(before ^ after):
            problems.append(f"{missing}: only in {'before' if missing in before else 'after'}")
    common = sorted(before & after)
    for rel in common:
        a, b = args.before / rel, args.after / rel
        if rel.name == "metrics.json":
            diffs = compare_json(json.loads(a.read_text()), json.loads(b.read_text()))
        else:
            diffs, kind = compare_npz(a, b)
            byte_kinds.setdefault(kind, []).append(str(rel))
        problems += [f"{rel}: {d}" for d in diffs]
    for line in problems:
        print(line)
    runs = len({rel.parent for rel in common})
    print(f"compared {len(common)} files of {runs} runs "
          f"({sum(r.name == 'metrics.json' for r in common)} metrics.json, "
          f"{sum(r.name == 'predictions.npz' for r in common)} predictions.npz)")
    for kind, files in sorted(byte_kinds.items()):
        print(f"predictions.npz, {kind}: {len(files)}")
    print("identical" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
