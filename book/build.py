"""Build the book: execute every chapter with papermill, then build HTML with Jupyter Book.

    python book/build.py --profile full      # what `make book` runs
    python book/build.py --profile ci        # small parameters, what the test suite runs

The executed notebooks and the HTML go to ``build/<profile>/`` (never into the sources, which
stay without outputs). Any error in a notebook, and any Sphinx warning, fails the build.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
BOOK_FILES = ("_config.yml", "_toc.yml", "intro.md")


def chapters() -> list[str]:
    """Notebook names in the order of the table of contents."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    return [Path(f).name + ".ipynb" for f in files if f.startswith("notebooks/")]


def profile_parameters(profile: str) -> dict[str, dict]:
    profiles = yaml.safe_load((BOOK / "profiles.yml").read_text())
    if profile not in profiles:
        raise SystemExit(f"unknown profile {profile!r}; choose one of {sorted(profiles)}")
    params = profiles[profile] or {}
    unknown = sorted(set(params) - set(chapters()))
    if unknown:
        raise SystemExit(f"book/profiles.yml names notebooks not in the book: {unknown}")
    return params


def execute(name: str, out_dir: Path, parameters: dict) -> tuple[str, float]:
    """Execute one notebook with papermill in its own process; returns (name, seconds)."""
    start = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "papermill",
        str(NOTEBOOKS / name),
        str(out_dir / name),
        "--cwd",
        str(NOTEBOOKS),
        "--kernel",
        "python3",
        "--no-progress-bar",
        "-y",
        yaml.safe_dump(parameters or {}),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"notebook {name} failed (executed copy: {out_dir / name}):\n{result.stderr[-4000:]}"
        )
    return name, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="full", help="parameter set from book/profiles.yml")
    parser.add_argument("--out", type=Path, help="output folder (default build/<profile>)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once")
    args = parser.parse_args()

    params = profile_parameters(args.profile)
    out = (args.out or ROOT / "build" / args.profile).resolve()
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    for name in BOOK_FILES:
        shutil.copy(BOOK / name, src / name)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        jobs = [
            pool.submit(execute, name, src / "notebooks", params.get(name, {}))
            for name in chapters()
        ]
        for job in jobs:
            name, seconds = job.result()
            print(f"executed {name} in {seconds:.0f} s", flush=True)

    html = out / "_build" / "html"
    if html.exists():
        shutil.rmtree(html)
    subprocess.run(
        [
            str(Path(sys.executable).with_name("jupyter-book")),
            "build",
            str(src),
            "--path-output",
            str(out),
            "--warningiserror",
            "--keep-going",
            "--quiet",
        ],
        check=True,
    )
    print(f"book built in {time.perf_counter() - start:.0f} s: {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
