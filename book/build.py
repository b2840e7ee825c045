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
import ast
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
GENERATED = {"rerun"}  # pages that build.py writes itself
BOOK_FILES = ("*.md", "*.yml", "*.bib")  # every page and setting of book/, copied into the build


def page_names() -> list[str]:
    """Page names in the order of the table of contents."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = []
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return [
        Path(f).name for f in files if f.startswith("notebooks/") and Path(f).name not in GENERATED
    ]


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
            {
                "name": name,
                "source": source,
                "parameters": parameters,
                "title": page.get("title"),
                "fixed": page.get("parameters", {}),
            }
        )
    known = {p["name"] for p in pages} | {p["source"].name for p in pages}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SystemExit(f"book/profiles.yml: profile {profile!r} names unknown pages {unknown}")
    last = set(spec.get("run_last", []))
    return [p for p in pages if p["name"] not in last], [p for p in pages if p["name"] in last]


def parameters_of(notebook: Path) -> list[tuple[str, str, str]]:
    """(name, default, meaning) of each assignment in the notebook's ``parameters`` cell; the
    meaning is the comment on the assignment's first line."""
    for cell in json.loads(notebook.read_text())["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"])
            lines = source.splitlines()
            found = []
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    default = ast.get_source_segment(source, node.value)
                    first = lines[node.lineno - 1]
                    meaning = first.split("#", 1)[1].strip() if "#" in first else ""
                    found.append((node.targets[0].id, " ".join(default.split()), meaning))
            return found
    return []


def _parameter_names(notebook: Path) -> set[str]:
    return {name for name, _, _ in parameters_of(notebook)}


def rerun_page(pages: list[dict]) -> str:
    """The "How to rerun" page, generated from the notebooks' parameters cells."""
    out = [
        "# How to rerun",
        "",
        "Every chapter is a notebook with a cell tagged `parameters`. Run one with your own",
        "values with papermill from the repository root; `--cwd notebooks` makes relative paths",
        "(such as `results_dir`) mean what they mean in the book's own build. This page is",
        "generated from the notebooks when the book is built, so it lists exactly the parameters",
        "they have.",
        "",
    ]
    by_source: dict[Path, list[dict]] = {}
    for page in pages:
        by_source.setdefault(page["source"], []).append(page)
    for source, its_pages in by_source.items():
        rel = f"notebooks/{source.name}"
        out += [f"## `{rel}`", "", "| parameter | default | meaning |", "| --- | --- | --- |"]
        for name, default, meaning in parameters_of(source):
            out.append(f"| `{name}` | `{default.replace('|', '&#124;')}` | {meaning} |")
        out.append("")
        example = f".venv/bin/papermill --cwd notebooks {rel} out.ipynb"
        fixed = [p for p in its_pages if p["title"]]
        if fixed:
            out += ["The book executes it once per page, with these parameters fixed:", ""]
            for page in fixed:
                values = ", ".join(f"`{k}={v}`" for k, v in page["fixed"].items())
                out.append(f"- [{page['title']}]({page['name']}.ipynb): {values}")
            out.append("")
            example += "".join(f" -p {k} {v}" for k, v in fixed[0]["fixed"].items())
        out += ["```", example, "```", ""]
    return "\n".join(out)


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
    for pattern in BOOK_FILES:
        for path in BOOK.glob(pattern):
            if path.name != "profiles.yml":
                shutil.copy(path, src / path.name)
    (src / "notebooks" / "rerun.md").write_text(rerun_page(first + last))

    start = time.perf_counter()
    for group in (first, last):
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            jobs = {page["name"]: pool.submit(execute, page, src / "notebooks") for page in group}
            for name, job in jobs.items():
                print(f"executed {name} in {job.result():.0f} s", flush=True)

    html = out / "_build" / "html"
    if (out / "_build").exists():  # a stale Sphinx environment misses new pages and settings
        shutil.rmtree(out / "_build")
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
