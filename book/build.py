"""Build the book: train every run as a job, execute every page with papermill, build the HTML.

    python book/build.py --profile full      # what `make book` runs
    python book/build.py --profile ci        # small parameters, what the test suite runs
    python book/build.py --workers 8         # training processes (default: one per core / GPU)
    python book/build.py --scheduler tcp://host:8786   # train on an existing Dask cluster

Pages, their parameters and the profiles are in book/profiles.yml. First every training run that
a page asks for (strategy x seed, from the page's parameters) is run as an independent job
(:func:`topobook.jobs.run_jobs`: one progress bar, a line per finished run; finished runs are
reused, interrupted ones resume); then the pages are executed and find their runs finished. The
executed notebooks and the HTML go to ``build/<profile>/`` and training results to
``results/<profile>/`` (never into the sources, which stay without outputs). Any error in a
notebook, and any Sphinx warning, fails the build.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
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
        Path(f).name
        for f in files
        if f.startswith("notebooks/")
        and Path(f).name not in GENERATED
        and not (NOTEBOOKS / f"{Path(f).name}.md").exists()  # a text page, copied as it is
    ]


def plan(profile: str, results: Path | None = None) -> tuple[list[dict], list[dict]]:
    """The pages to execute (source, output name, parameters, title): first the independent
    ones, then those in ``run_last``. Pages with a ``results_dir`` parameter get ``results``
    (default ``results/<profile>``, written relative to notebooks/, the pages' cwd)."""
    spec = yaml.safe_load((BOOK / "profiles.yml").read_text())
    profiles = spec["profiles"]
    if profile not in profiles:
        raise SystemExit(f"unknown profile {profile!r}; choose one of {sorted(profiles)}")
    overrides = profiles[profile] or {}
    pages = []
    first_page_of: dict[str, str] = {}  # notebook -> the first page made from it
    for name in page_names():
        page = spec["pages"].get(name, {"notebook": f"{name}.ipynb"})
        source = NOTEBOOKS / page["notebook"]
        if not source.exists():
            raise SystemExit(f"page {name}: notebook {source} does not exist")
        parameters = dict(page.get("parameters", {}))
        parameters.update(overrides.get(page["notebook"], {}))
        parameters.update(overrides.get(name, {}))
        if "results_dir" in _parameter_names(source):  # relative to notebooks/, the cwd
            parameters.setdefault("results_dir", str(results or f"../results/{profile}"))
        first_page_of.setdefault(page["notebook"], name)
        pages.append(
            {
                "name": name,
                "source": source,
                "parameters": parameters,
                "title": page.get("title"),
                "fixed": page.get("parameters", {}),
                "exercises_on": first_page_of[page["notebook"]],
            }
        )
    known = {p["name"] for p in pages} | {p["source"].name for p in pages}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SystemExit(f"book/profiles.yml: profile {profile!r} names unknown pages {unknown}")
    last = set(spec.get("run_last", []))
    return [p for p in pages if p["name"] not in last], [p for p in pages if p["name"] in last]


def _parameters_cell(notebook: Path) -> str:
    for cell in json.loads(notebook.read_text())["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return "".join(cell["source"])
    return ""


def _comment(line: str) -> str:
    """The comment of a line of the parameters cell (its literals hold no '#')."""
    return line.partition("#")[2].strip()


def parameters_of(notebook: Path) -> list[tuple[str, str, str]]:
    """(name, default, meaning) of each assignment in the notebook's ``parameters`` cell; the
    meaning is the comment on the assignment's first line (or the comment lines just above it);
    the default is the value's code without comments."""
    source = _parameters_cell(notebook)
    lines = source.splitlines()
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            meaning = _comment(lines[node.lineno - 1])
            above = node.lineno - 2
            while not meaning and above >= 0 and lines[above].lstrip().startswith("#"):
                meaning = lines[above].lstrip()[1:].strip()
                above -= 1
            found.append((node.targets[0].id, ast.unparse(node.value), meaning))
    return found


def default_parameters(notebook: Path) -> dict:
    """The values the notebook's ``parameters`` cell assigns (the cell is run on its own)."""
    namespace: dict = {}
    exec(_parameters_cell(notebook), {}, namespace)  # our own notebooks' literal defaults
    return namespace


def training_jobs(pages: list[dict]) -> list[tuple[Path, object]]:
    """Every training run the pages ask for, ``(out_dir, TrainConfig)``: pages of a notebook whose
    parameters include ``strategy``, ``seeds`` and ``results_dir`` (chapter 4)."""
    from topobook.train import page_runs

    jobs = {}
    for page in pages:
        if not {"strategy", "seeds", "results_dir"} <= _parameter_names(page["source"]):
            continue
        values = {**default_parameters(page["source"]), **page["parameters"]}
        values["results_dir"] = (NOTEBOOKS / values["results_dir"]).resolve()  # cwd of a page
        for out_dir, config in page_runs(values):
            if out_dir in jobs and jobs[out_dir] != config:
                raise SystemExit(f"two pages train different runs into {out_dir}")
            jobs[out_dir] = config
    return list(jobs.items())


def show_parameters_used(notebook: dict) -> None:
    """Make an executed notebook show the parameters it ran with in one cell: the values that
    papermill injected replace the defaults in the ``parameters`` cell (comments kept), and the
    injected cell is removed from the page."""
    cells = notebook["cells"]
    injected = next(
        (c for c in cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])), None
    )
    original = next(
        (c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None
    )
    if injected is None or original is None:
        return
    values: dict = {}
    exec("".join(injected["source"]), {}, values)
    source = "".join(original["source"])
    lines = source.splitlines()
    for node in reversed(ast.parse(source).body):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in values:
                comment = _comment(lines[node.lineno - 1])
                line = f"{name} = {values[name]!r}" + (f"  # {comment}" if comment else "")
                lines[node.lineno - 1 : node.end_lineno] = [line]
    original["source"] = "\n".join(lines)
    tags = injected.setdefault("metadata", {}).setdefault("tags", [])
    tags.append("remove-cell")


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
        example = f".venv/bin/papermill --cwd notebooks {rel} build/{source.stem}.ipynb"
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


def point_to_exercises(notebook: dict, page_name: str) -> None:
    """Replace the exercises of an executed notebook (from the cell that opens ``## Exercises``
    to the one before ``## Summary``) by a link to the page that has them: a parameterised
    notebook shows its exercises once, on its first page (their labels must be unique)."""
    cells = notebook["cells"]

    def starts(cell, heading):
        return cell["cell_type"] == "markdown" and "".join(cell["source"]).startswith(heading)

    begin = next((i for i, c in enumerate(cells) if starts(c, "## Exercises")), None)
    end = next((i for i, c in enumerate(cells) if starts(c, "## Summary")), None)
    if begin is None or end is None or end < begin:
        raise RuntimeError("a parameterised notebook needs '## Exercises' and '## Summary' cells")
    link = {
        "cell_type": "markdown",
        "id": "exercises-link",
        "metadata": {},
        "source": f"## Exercises\n\nThe exercises of this chapter are on [its first page]"
        f"({page_name}.ipynb).",
    }
    cells[begin:end] = [link]


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
    notebook = json.loads(output.read_text())
    show_parameters_used(notebook)
    if page["exercises_on"] != page["name"]:
        point_to_exercises(notebook, page["exercises_on"])
    if page["title"]:  # a page of a parameterised notebook gets its own title
        first = next(c for c in notebook["cells"] if c["cell_type"] == "markdown")
        lines = "".join(first["source"]).splitlines()
        first["source"] = "\n".join([f"# {page['title']}", *lines[1:]])
    output.write_text(json.dumps(notebook, indent=1))
    return time.perf_counter() - start


def main() -> int:
    from topobook.jobs import SCHEDULER_VARIABLE, default_workers, run_jobs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="full", help="parameter set from book/profiles.yml")
    parser.add_argument("--out", type=Path, help="output folder (default build/<profile>)")
    parser.add_argument(
        "--results", type=Path, help="training results folder (default results/<profile>)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="training processes and pages executed at once (default: one per core, or one per "
        "GPU where CUDA is available)",
    )
    parser.add_argument(
        "--scheduler",
        default=os.environ.get(SCHEDULER_VARIABLE),
        help=f"address of an existing Dask scheduler to train on (default: ${SCHEDULER_VARIABLE})",
    )
    args = parser.parse_args()
    workers = args.workers or default_workers()

    first, last = plan(args.profile, args.results.resolve() if args.results else None)
    out = (args.out or ROOT / "build" / args.profile).resolve()
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    for pattern in BOOK_FILES:
        for path in BOOK.glob(pattern):
            if path.name != "profiles.yml":
                shutil.copy(path, src / path.name)
    for path in NOTEBOOKS.glob("*.md"):  # text pages among the chapters
        shutil.copy(path, src / "notebooks" / path.name)
    (src / "notebooks" / "rerun.md").write_text(rerun_page(first + last))

    start = time.perf_counter()
    jobs = training_jobs(first + last)
    run_jobs(jobs, workers=workers, scheduler=args.scheduler)
    print(f"{len(jobs)} training runs ready after {time.perf_counter() - start:.0f} s", flush=True)
    for group in (first, last):
        with ThreadPoolExecutor(max_workers=max(1, min(workers, os.cpu_count() or 1))) as pool:
            jobs_of_pages = {
                page["name"]: pool.submit(execute, page, src / "notebooks") for page in group
            }
            for name, job in jobs_of_pages.items():
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
