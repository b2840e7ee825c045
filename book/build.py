"""Build the book: train every run as a job, execute every page with papermill, build the HTML.

    python book/build.py --profile full      # what `make book` runs
    python book/build.py --profile ci        # small parameters, what the test suite runs
    python book/build.py --workers 8         # training processes (default: one per core / GPU)
    python book/build.py --scheduler tcp://host:8786   # train on an existing Dask cluster

Pages, their parameters and the profiles are in book/profiles.yml. First every training run that
a page asks for (strategy x seed, from the page's parameters) is run as an independent job
(:func:`topobook.training.jobs.run_jobs`: one progress bar, a line per finished run; finished runs
are reused, interrupted ones resume); then the pages are executed and find their runs finished. The
executed notebooks and the HTML go to ``build/<profile>/`` and training results to
``results/<profile>/`` (never into the sources, which stay without outputs). Any error in a
notebook, and any Sphinx warning, fails the build.

Generated at build time: the "How to rerun" page (from the parameters cells), the API pages
(one per sub-package, each module a section, so a new module appears by itself), the pages that
group the training runs by chapter, the landing page's hero figure, the alt text of every
figure (from the caption that follows it), the figure numbers of each training-run page (from
its title) and the repository link (``$TOPOBOOK_REPOSITORY_URL``; without it the pages say that
no address was configured).
After Sphinx, what readers never load is removed from the HTML: source maps and the MathJax
components other than the one the book loads.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import pkgutil
import re
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
# pages that build.py writes itself: "How to rerun", and the pages that group the training runs
# by chapter in the contents (run_group_page)
GENERATED = {"rerun", "runs_04", "runs_06"}
# the chapter whose runs a group holds, and the chapter (page) that compares them
RUN_GROUP_CHAPTERS = {"runs_04": ("4", "5"), "runs_06": ("6", "6 (page 6c)")}
BOOK_FILES = ("*.md", "*.yml", "*.bib")  # every page and setting of book/, copied into the build
# copied into the build too: the book's CSS and scripts, and its Sphinx extension (the
# author-year bibliography, book/_config.yml's local_extensions)
BOOK_FOLDERS = ("_static", "_ext")
REPOSITORY_VARIABLE = "TOPOBOOK_REPOSITORY_URL"  # where readers find the sources
# the one MathJax configuration the book loads (sphinx-mathjax-offline's mathjax_path), and what
# it loads itself: the CHTML fonts, and the TeX extensions its autoload fetches on demand
MATHJAX_KEEP = ("tex-chtml.js", "output/chtml/fonts/woff-v2/", "input/tex/extensions/")


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


# profiles.yml's keys of the pages executed after the others, stage by stage: each stage starts
# when the one before it has finished
LATER_STAGES = ("run_last", "run_at_end")


def plan(profile: str, results: Path | None = None) -> list[list[dict]]:
    """The pages to execute (source, output name, parameters, title), in stages: first the
    independent ones, then those in ``run_last``, then those in ``run_at_end``
    (:data:`LATER_STAGES`). Pages with a ``results_dir`` parameter get ``results`` (default
    ``results/<profile>``, written relative to notebooks/, the pages' cwd)."""
    spec = yaml.safe_load((BOOK / "profiles.yml").read_text())
    overrides, root = profile_parameters(spec["profiles"], profile)
    results = results or Path(f"../results/{root}")  # a profile shares its base's runs
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
            parameters.setdefault("results_dir", str(results))
        first_page_of.setdefault(page["notebook"], name)
        pages.append(
            {
                "name": name,
                "source": source,
                "parameters": parameters,
                "title": page.get("title"),
                "fixed": page.get("parameters", {}),
                "exercises_on": first_page_of[page["notebook"]],
                "exercises_title": spec["pages"]
                .get(first_page_of[page["notebook"]], {})
                .get("title"),
            }
        )
    known = {p["name"] for p in pages} | {p["source"].name for p in pages}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SystemExit(f"book/profiles.yml: profile {profile!r} names unknown pages {unknown}")
    stage_of: dict[str, int] = {}
    for number, key in enumerate(LATER_STAGES, start=1):
        for name in spec.get(key) or []:
            if name in stage_of:
                raise SystemExit(f"book/profiles.yml: page {name} is in two stages")
            stage_of[name] = number
    unplanned = sorted(set(stage_of) - {p["name"] for p in pages})
    if unplanned:
        raise SystemExit(f"book/profiles.yml: {unplanned} are in a stage but not in the book")
    return [[p for p in pages if stage_of.get(p["name"], 0) == number]
            for number in range(len(LATER_STAGES) + 1)]


def profile_parameters(profiles: dict, profile: str) -> tuple[dict, str]:
    """A profile's parameters by page, with those of the profile it ``extends`` (and so on)
    underneath, page by page; and the name of the profile at the root of that chain, whose
    results folder it shares (its runs have the same settings, so they are reused)."""
    if profile not in profiles:
        raise SystemExit(f"unknown profile {profile!r}; choose one of {sorted(profiles)}")
    own = dict(profiles[profile] or {})
    base = own.pop("extends", None)
    if base is None:
        return own, profile
    if base == profile:
        raise SystemExit(f"book/profiles.yml: profile {profile!r} extends itself")
    merged, root = profile_parameters(profiles, base)
    for page, values in own.items():
        merged[page] = {**merged.get(page, {}), **(values or {})}
    return merged, root


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
    parameters include ``strategy``, ``seeds`` and ``results_dir`` (chapter 4), and those with
    ``arms``, ``seeds`` and ``results_dir`` (chapter 8, whose runs after its λ sweep appear once
    the sweep is finished: call again after training), and chapter 7's (``pilot_seeds`` and
    ``results_dir``: the λ pilot, the pre-registered study, the second registration's pilot)."""
    from topobook.study import chapter4, chapter7, topomortar_study

    planners = (chapter4, topomortar_study, chapter7)  # the first whose parameters match
    jobs = {}
    for page in pages:
        names = _parameter_names(page["source"])
        planner = next((p for p in planners if set(p.PAGE_PARAMETERS) <= names), None)
        if planner is None:
            continue
        values = {**default_parameters(page["source"]), **page["parameters"]}
        values["results_dir"] = (NOTEBOOKS / values["results_dir"]).resolve()  # cwd of a page
        for out_dir, config in planner.chapter_runs(values):
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


def point_to_exercises(notebook: dict, page_name: str, title: str | None = None) -> None:
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
        "source": "## Exercises\n\nThe exercises on the training runs, the same for every page "
        f"made from this notebook, are on the page [{title or page_name}]({page_name}.ipynb).",
    }
    cells[begin:end] = [link]


# cells that only pages whose network sees chapter 3's processed input show (the TIP figure)
TOPO_INPUT_ONLY = "topo-input-only"


def drop_cells_not_for(notebook: dict, strategy: str) -> int:
    """Remove from an executed notebook the cells tagged :data:`TOPO_INPUT_ONLY` when the page's
    ``strategy`` does not process the input (no ``topo_input`` in it). Returns how many."""
    cells = notebook["cells"]
    keep = [c for c in cells if "topo_input" in strategy
            or TOPO_INPUT_ONLY not in c.get("metadata", {}).get("tags", [])]
    dropped = len(cells) - len(keep)
    notebook["cells"] = keep
    return dropped


PAGE_NUMBER = re.compile(r"^(\d+(?:\.\d+)*)\s")  # "6.3 Betti matching loss" -> "6.3"
FIGURE_REFERENCE = re.compile(r"\b(Figures?|Fig\.)(\s+)(\d+\.\d+)\b")


def number_figures(notebook: dict, number: str) -> dict[str, str]:
    """Number the figures of a page by the page: the captions of its Markdown cells (``*Figure
    4.2 — ...``), in the order they appear, become ``Figure <number>.1``, ``<number>.2``, ...,
    and every mention of an old number in its Markdown follows (``Figure 4.2`` on page 6.3 ->
    ``Figure 6.3.1`` where the TIP figure was dropped). Returns ``{old: new}``."""
    renumbered: dict[str, str] = {}
    for cell in notebook["cells"]:
        match = CAPTION.match("".join(cell["source"])) if cell["cell_type"] == "markdown" else None
        if match:
            old = FIGURE_REFERENCE.match(match.group(1))
            if old and old.group(3) not in renumbered:
                renumbered[old.group(3)] = f"{number}.{len(renumbered) + 1}"

    def new_number(found: re.Match) -> str:
        return found.group(1) + found.group(2) + renumbered.get(found.group(3), found.group(3))

    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = FIGURE_REFERENCE.sub(new_number, "".join(cell["source"]))
    return renumbered


MARKUP = [
    (re.compile(r"\{[a-z:]+\}`~?([^`<]*?)(?:\s*<[^>]*>)?`"), r"\1"),  # {term}`x`, {py:func}`~a.b`
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),  # [text](link)
    (re.compile(r"[*`$]"), ""),  # emphasis, code and math delimiters
    (re.compile(r"\\(?:text|mathrm|operatorname)\{([^}]*)\}"), r"\1"),
    (re.compile(r"\s+"), " "),
]
CAPTION = re.compile(r"^\s*\*((?:Figures?|Figure)\s[^*]*?)\*", re.S)


def plain_text(markdown: str) -> str:
    """The text of a caption without MyST markup, for an alt attribute."""
    for pattern, replacement in MARKUP:
        markdown = pattern.sub(replacement, markdown)
    return markdown.strip()


def add_alt_text(notebook: dict) -> int:
    """Give every figure of an executed notebook an alt text that says what it shows: the
    caption that follows it (a Markdown cell that starts with ``*Figure``), set as MyST-NB's
    cell option ``mystnb.image.alt``. A cell that sets its own alt text keeps it; a figure
    without a caption gets a generic alt text naming the page's title (and build.py prints
    it). Returns the number of figures without a caption."""
    cells = notebook["cells"]
    title = next(
        (
            "".join(c["source"]).lstrip("# ").splitlines()[0]
            for c in cells
            if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("# ")
        ),
        "this page",
    )
    uncaptioned = 0
    used: set[int] = set()  # caption cells already given to a figure
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not any(
            "image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {})
            for o in cell.get("outputs", [])
        ):
            continue
        options = cell.setdefault("metadata", {}).setdefault("mystnb", {}).setdefault("image", {})
        if options.get("alt"):
            continue
        # the caption: a Markdown cell between this cell and the next code cell, else the
        # Markdown cell just before this one
        after = []
        for other in cells[i + 1 :]:
            if other["cell_type"] == "code":
                break
            after.append(other)
        before = [cells[i - 1]] if i and cells[i - 1]["cell_type"] == "markdown" else []
        match = next(
            (
                m
                for c in after + before
                if id(c) not in used and (m := CAPTION.match("".join(c["source"])))
            ),
            None,
        )
        if match:
            used.add(next(id(c) for c in after + before if match.string == "".join(c["source"])))
            options["alt"] = plain_text(match.group(1))
        else:
            uncaptioned += 1
            options["alt"] = f"A figure of the page {title!r}, computed by the code above it"
    return uncaptioned


API_FOLDER = "api"  # the API's pages, one per sub-package, under api.md in the contents


def api_pages(header: str) -> dict[str, str]:
    """The API pages, ``{path in the book: Markdown}``: ``api.md`` (``header``, book/api.md,
    then one line per page with its summary), one page per sub-package of the package
    (``api/topobook_<name>.md``: the package's docstring, then each of its modules), and one
    for the top-level modules (``api/topobook.md``). Found by walking the package (every
    ``topobook.<name>`` and ``topobook.<package>.<name>`` whose name has no leading
    underscore), each documented by autodoc from its docstrings, so a new module or
    sub-package appears by itself; :func:`api_sections` puts the pages in the contents."""
    import topobook

    found = sorted(pkgutil.iter_modules(topobook.__path__), key=lambda m: (m.ispkg, m.name))
    found = [info for info in found if not info.name.startswith("_")]
    modules = [f"topobook.{info.name}" for info in found if not info.ispkg]
    pages = {}
    if modules:
        body = ["# `topobook`: the top-level modules", ""]
        for name in modules:
            body += _api_section(name, "##")
        pages[f"{API_FOLDER}/topobook.md"] = "\n".join(body)
    for info in found:
        if not info.ispkg:
            continue
        name = f"topobook.{info.name}"
        package = importlib.import_module(name)
        body = [f"# `{name}`", "", *_api_section(name, None)]
        for sub in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not sub.name.startswith("_"):
                body += _api_section(f"{name}.{sub.name}", "##")
        pages[f"{API_FOLDER}/topobook_{info.name}.md"] = "\n".join(body)
    index = [header.rstrip(), ""]
    for path in pages:
        stem = Path(path).stem
        if stem == "topobook":
            index.append(f"- [the top-level modules]({path}): "
                         + "; ".join(f"`{m}`, {_summary(m).rstrip('.')}" for m in modules))
        else:
            index.append(f"- [`{stem.replace('_', '.', 1)}`]({path}): "
                         + _summary(stem.replace("_", ".", 1)))
    return {"api.md": "\n".join(index) + "\n", **pages}


def api_sections(pages: dict[str, str]) -> list[dict]:
    """The contents entries under ``api`` for the pages of :func:`api_pages`."""
    return [{"file": str(Path(path).with_suffix(""))} for path in pages if path != "api.md"]


RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :mod:`topobook.x` -> `topobook.x`


def _summary(name: str) -> str:
    """The first paragraph of a module's docstring, on one line and in MyST (``x`` and
    :mod:`x` become `x`); a module needs one."""
    module = importlib.import_module(name)
    summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    if not summary:
        raise SystemExit(f"{name} has no module docstring: the API page needs one")
    return RST_ROLE.sub(r"`\1`", summary.replace("``", "`"))


def _api_section(name: str, level: str | None) -> list[str]:
    """A module documented by autodoc, under a heading of ``level`` (None: no heading)."""
    _summary(name)  # fails without a docstring
    heading = [f"{level} `{name}`", ""] if level else []
    return [
        *heading,
        "```{eval-rst}",
        f".. automodule:: {name}",
        "   :members:",
        "```",
        "",
    ]


def run_group_page(name: str, pages: list[dict]) -> str:
    """The page that heads one group of training-run pages in the contents (``runs_04``:
    chapter 4's runs): what the runs are, and one line per page of the group with its title
    and the parameters it fixes (``pages``: :func:`plan`'s entries of the group, in order)."""
    if name not in RUN_GROUP_CHAPTERS:
        raise SystemExit(f"{name}: no chapter known for this group of runs (RUN_GROUP_CHAPTERS)")
    chapter, compared_in = RUN_GROUP_CHAPTERS[name]
    sources = sorted({f"`notebooks/{p['source'].name}`" for p in pages})
    out = [
        f"# The training runs of chapter {chapter}",
        "",
        f"One page per run, each made from {', '.join(sources)} with the parameters below "
        "fixed: what the run is and its result first, then how it trained. Chapter "
        f"{compared_in} compares the runs with the baseline, seed by seed.",
        "",
    ]
    for page in pages:
        values = ", ".join(f"`{k}={v}`" for k, v in page["fixed"].items())
        out.append(f"- [{page['title']}]({page['name']}.ipynb): {values}")
    return "\n".join(out) + "\n"


def write_generated_pages(src: Path, pages: list[dict]) -> None:
    """Write the pages that build.py generates into the build's sources ``src``: "How to rerun",
    the API pages (:func:`api_pages`, put under ``api`` in the build's contents), and the
    pages that head each group of training runs (:func:`run_group_page`)."""
    (src / "notebooks" / "rerun.md").write_text(rerun_page(pages))
    api = api_pages((BOOK / "api.md").read_text())
    for path, text in api.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(text)
    toc = yaml.safe_load((src / "_toc.yml").read_text())
    by_name = {page["name"]: page for page in pages}
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            name = Path(chapter["file"]).name
            if chapter["file"] == "api":
                chapter["sections"] = api_sections(api)
            elif name in RUN_GROUP_CHAPTERS:
                group = [by_name[Path(s["file"]).name] for s in chapter.get("sections", [])]
                (src / "notebooks" / f"{name}.md").write_text(run_group_page(name, group))
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))


def configure(src: Path, repository_url: str | None) -> None:
    """Put the repository's address into the build's _config.yml (its ``repository`` entry,
    the repository and issues buttons, and the ``repository`` substitution that the pages use);
    without one, the substitution says that none was configured."""
    path = src / "_config.yml"
    config = yaml.safe_load(path.read_text())
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    substitutions = sphinx_config.setdefault("myst_substitutions", {})
    if repository_url:
        config.setdefault("repository", {})["url"] = repository_url
        config.setdefault("html", {}).update(use_repository_button=True, use_issues_button=True)
        substitutions["repository"] = f"[{repository_url}]({repository_url})"
    else:
        config.get("repository", {}).pop("url", None)
        # no parentheses of its own: the pages write it in parentheses as well as in a sentence
        substitutions["repository"] = (
            f"*no address was configured for this build; set `{REPOSITORY_VARIABLE}` when "
            "building the book*"
        )
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def hero_figure(path: Path) -> None:
    """The landing page's figure: an ISBI 2012 crop, its cells, and the superlevel persistence
    diagram of the crop (:func:`topobook.plotting.overview_figure`), as a PNG at 2x."""
    import matplotlib

    matplotlib.use("Agg")
    from topobook import plotting
    from topobook.datasets import isbi2012

    plotting.use_book_style(retina=False)
    images, masks = isbi2012.load_isbi([0])
    figure = plotting.overview_figure(images[0][160:288, 160:288], masks[0][160:288, 160:288])
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=200, bbox_inches="tight")


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


INLINE_SCRIPT = re.compile(r"[ \t]*<script>(?:(?!</script>).)*</script>\n?", re.S)


def drop_repeated_scripts(page: str) -> str:
    """A page without a second copy of an inline script it already has: sphinx-thebe adds its
    ``const THEBE_JS_URL = ...`` snippet once per reading pass, and the second copy throws
    "Identifier has already been declared" in the reader's console."""
    seen: set[str] = set()

    def keep_first(match: re.Match) -> str:
        script = match.group(0).strip()
        if script in seen:
            return ""
        seen.add(script)
        return match.group(0)

    return INLINE_SCRIPT.sub(keep_first, page)


def smaller_png(data: bytes) -> bytes:
    """The same pixels in fewer bytes where possible, else ``data``: an opaque RGBA image
    (matplotlib's white figures) loses its alpha channel, an image of at most 256 colours
    becomes a palette image, and zlib compresses at level 9. Lossless: the result decodes to
    exactly the pixels of ``data`` (checked)."""
    import io

    import numpy as np
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    pixels = np.asarray(image.convert("RGBA"))
    if (pixels[..., 3] == 255).all():
        image = image.convert("RGB")
        if image.getcolors(256) is not None:  # None: more than 256 colours
            rgb = pixels[..., :3].astype(np.uint32)
            keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
            colours, indices = np.unique(keys, return_inverse=True)
            image = Image.fromarray(indices.reshape(keys.shape).astype(np.uint8), "P")
            image.putpalette(np.stack([colours >> 16, colours >> 8 & 255, colours & 255], 1)
                             .astype(np.uint8).ravel().tolist())
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    smaller = out.getvalue()
    same = np.array_equal(np.asarray(Image.open(out).convert("RGBA")), pixels)
    return smaller if same and len(smaller) < len(data) else data


# what a download shows where the page shows a figure
FIGURE_LEFT_OUT = ("[figure left out of the downloaded notebook to keep the book small: it is on "
                   "the book's page, and running the notebook draws it]")


def drop_notebook_images(notebook: dict) -> int:
    """Replace every image output (PNG, JPEG, GIF) of an executed notebook by the text
    :data:`FIGURE_LEFT_OUT`, followed by the figure's alt text (``mystnb.image.alt``) where the
    cell has one; text, HTML and Markdown outputs are kept. Returns how many outputs changed."""
    changed = 0
    for cell in notebook["cells"]:
        alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            images = [k for k in data if k.startswith("image/") and k != "image/svg+xml"]
            if images:
                for kind in images:
                    data.pop(kind)
                    output.get("metadata", {}).pop(kind, None)
                data["text/plain"] = FIGURE_LEFT_OUT + (f" {alt}" if alt else "")
                changed += 1
    return changed


def slim_png_file(path: Path) -> None:
    """Rewrite the PNG file ``path`` with :func:`smaller_png` where that makes it smaller."""
    data = path.read_bytes()
    smaller = smaller_png(data)
    if smaller is not data:
        path.write_bytes(smaller)


def slim_html(html: Path) -> None:
    """Make the built HTML smaller without changing what a page shows: every PNG re-encoded
    (:func:`smaller_png`), and the executed notebooks that readers download (``_sources``,
    ``_downloads``) without their images (:func:`drop_notebook_images`), which the pages
    already carry."""
    from concurrent.futures import ProcessPoolExecutor

    # one process per core: re-encoding at zlib level 9 is the slow part (measured: 22 s of
    # PNGs in one process for the CI profile's book)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(slim_png_file, sorted(html.rglob("*.png")), chunksize=8))
    for folder in ("_sources", "_downloads"):
        for path in (html / folder).rglob("*.ipynb"):
            notebook = json.loads(path.read_text(encoding="utf-8"))
            if drop_notebook_images(notebook):
                path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                                encoding="utf-8")


def trim_html(html: Path) -> tuple[int, int]:
    """Remove from the built HTML what readers never load or should not get: source maps
    (``*.map``), every MathJax file outside :data:`MATHJAX_KEEP`, and repeated inline scripts
    (:func:`drop_repeated_scripts`); then :func:`slim_html`. Returns the folder's size before
    and after."""
    before = folder_size(html)
    slim_html(html)
    for path in html.rglob("*.map"):
        path.unlink()
    for path in html.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        fixed = drop_repeated_scripts(text)
        if fixed != text:
            path.write_text(fixed, encoding="utf-8")
    mathjax = html / "_static" / "mathjax"
    if mathjax.is_dir():
        for path in sorted(mathjax.rglob("*"), reverse=True):
            relative = path.relative_to(mathjax).as_posix()
            if path.is_file() and not any(
                relative == keep or relative.startswith(keep) for keep in MATHJAX_KEEP
            ):
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return before, folder_size(html)


def finish_page(notebook: dict, page: dict) -> None:
    """What a page of a parameterised notebook needs beyond its outputs: the cells meant for
    other runs dropped (:func:`drop_cells_not_for`, by the page's ``strategy``) and its figures
    numbered by the number of its title (:func:`number_figures`: page 6.3's are 6.3.1, ...)."""
    if not page.get("title"):
        return
    strategy = {**default_parameters(page["source"]), **page["parameters"]}.get("strategy")
    if strategy is not None:
        drop_cells_not_for(notebook, str(strategy))
    number = PAGE_NUMBER.match(page["title"])
    if number:
        number_figures(notebook, number.group(1))


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
        point_to_exercises(notebook, page["exercises_on"], page.get("exercises_title"))
    finish_page(notebook, page)
    uncaptioned = add_alt_text(notebook)
    if uncaptioned:
        print(f"{page['name']}: {uncaptioned} figure(s) without a caption", flush=True)
    if page["title"]:  # a page of a parameterised notebook gets its own title
        first = next(c for c in notebook["cells"] if c["cell_type"] == "markdown")
        lines = "".join(first["source"]).splitlines()
        first["source"] = "\n".join([f"# {page['title']}", *lines[1:]])
    output.write_text(json.dumps(notebook, indent=1))
    return time.perf_counter() - start


def main() -> int:
    from topobook.training.jobs import SCHEDULER_VARIABLE, default_workers, run_jobs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="full", help="parameter set from book/profiles.yml")
    parser.add_argument("--out", type=Path, help="output folder (default build/<profile>)")
    parser.add_argument(
        "--results",
        type=Path,
        help="training results folder (default results/<profile>, or that of the profile it "
        "extends)",
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

    stages = plan(args.profile, args.results.resolve() if args.results else None)
    pages = [page for stage in stages for page in stage]
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
    for folder in BOOK_FOLDERS:
        if (BOOK / folder).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(BOOK / folder, src / folder, ignore=ignore)
    write_generated_pages(src, pages)
    configure(src, os.environ.get(REPOSITORY_VARIABLE))
    hero_figure(src / "_static" / "hero.png")

    start = time.perf_counter()
    jobs, trained = training_jobs(pages), set()
    while {d for d, _ in jobs} != trained:  # chapter 8 adds runs once its λ sweep is finished
        run_jobs(jobs, workers=workers, scheduler=args.scheduler)
        trained = {d for d, _ in jobs}
        jobs = training_jobs(pages)
    print(f"{len(jobs)} training runs ready after {time.perf_counter() - start:.0f} s", flush=True)
    for group in stages:  # a stage starts when the one before it has finished
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
    before, after = trim_html(html)
    print(f"HTML trimmed from {before / 2**20:.1f} MiB to {after / 2**20:.1f} MiB (source maps, "
          "unused MathJax and the downloads' copies of the figures removed, PNGs recompressed)")
    print(f"book built in {time.perf_counter() - start:.0f} s: {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
