"""Build the book: execute every page with papermill, then build HTML with Jupyter Book.

    python book/build.py --profile full      # what `make book` runs
    python book/build.py --profile ci        # small parameters, what the test suite runs

Pages, their parameters and the profiles are in book/profiles.yml. The executed notebooks and
the HTML go to ``build/<profile>/`` and training results to ``results/<profile>/`` (never into the
sources, which stay without outputs). Any error in a notebook, and any Sphinx warning, fails the
build.
"""

from __future__ import annotations

import argparse
import json
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


def page_names() -> list[str]:
    """Page names in the order of the table of contents."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = []
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return [Path(f).name for f in files if f.startswith("notebooks/")]


def plan(profile: str) -> tuple[list[dict], list[dict]]:
    """The pages to execute (source, output name, parameters, title): first the independent
    ones, then those in ``run_last``."""
    spec = yaml.safe_load((BOOK / "profiles.yml").read_text())
    profiles = spec["profiles"]
    if profile not in profiles:
        raise SystemExit(f"unknown profile {profile!r}; choose one of {sorted(profiles)}")
    overrides = profiles[profile] or {}
    pages = []
    for name in page_names():
        page = spec["pages"].get(name, {"notebook": f"{name}.ipynb"})
        source = NOTEBOOKS / page["notebook"]
        if not source.exists():
            raise SystemExit(f"page {name}: notebook {source} does not exist")
        parameters = dict(page.get("parameters", {}))
        parameters.update(overrides.get(page["notebook"], {}))
        parameters.update(overrides.get(name, {}))
        if "results_dir" in _parameter_names(source):  # relative to notebooks/, the cwd
            parameters.setdefault("results_dir", f"../results/{profile}")
        pages.append(
            {"name": name, "source": source, "parameters": parameters, "title": page.get("title")}
        )
    known = {p["name"] for p in pages} | {p["source"].name for p in pages}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SystemExit(f"book/profiles.yml: profile {profile!r} names unknown pages {unknown}")
    last = set(spec.get("run_last", []))
    return [p for p in pages if p["name"] not in last], [p for p in pages if p["name"] in last]


def _parameter_names(notebook: Path) -> set[str]:
    cells = json.loads(notebook.read_text())["cells"]
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"])
            return {line.split("=")[0].strip() for line in source.splitlines() if "=" in line}
    return set()


def execute(page: dict, out_dir: Path) -> float:
    """Execute one page with papermill in its own process; returns the seconds it took."""
    start = time.perf_counter()
    output = out_dir / f"{page['name']}.ipynb"
    command = [
        sys.executable,
        "-m",
        "papermill",
        str(page["source"]),
        str(output),
        "--cwd",
        str(NOTEBOOKS),
        "--kernel",
        "python3",
        "--no-progress-bar",
        "-y",
        yaml.safe_dump(page["parameters"]),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"notebook {page['name']} failed (executed copy: {output}):\n{result.stderr[-4000:]}"
        )
    if page["title"]:  # a page of a parameterised notebook gets its own title
        notebook = json.loads(output.read_text())
        first = next(c for c in notebook["cells"] if c["cell_type"] == "markdown")
        lines = "".join(first["source"]).splitlines()
        first["source"] = "\n".join([f"# {page['title']}", *lines[1:]])
        output.write_text(json.dumps(notebook, indent=1))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="full", help="parameter set from book/profiles.yml")
    parser.add_argument("--out", type=Path, help="output folder (default build/<profile>)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once")
    args = parser.parse_args()

    first, last = plan(args.profile)
    out = (args.out or ROOT / "build" / args.profile).resolve()
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    for name in BOOK_FILES:
        shutil.copy(BOOK / name, src / name)

    start = time.perf_counter()
    for group in (first, last):
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            jobs = {page["name"]: pool.submit(execute, page, src / "notebooks") for page in group}
            for name, job in jobs.items():
                print(f"executed {name} in {job.result():.0f} s", flush=True)

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
