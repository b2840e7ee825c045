"""Execute every chapter with papermill (CI parameter set) and build the book from the results.

This is the slow end-to-end test: it fails on any notebook error and on any Sphinx warning.
"""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _chapters():
    """Every notebook page of the chapters and of the training runs (parts "Chapters" and
    "Training runs" of the table of contents), sections included."""
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = []
    for part in toc["parts"]:
        if part["caption"] not in ("Chapters", "Training runs"):
            continue
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return files


# pages whose findings are tables, with no figure: 6b, the costs of a step and the controls
PAGES_OF_TABLES = {"notebooks/06_costs"}


@pytest.mark.book
def test_every_chapter_executes_and_renders(built_book):
    html = built_book / "_build" / "html"
    assert (html / "index.html").is_file()
    for chapter in _chapters():
        # a text page (chapter 4's overview, the pages that group the runs by chapter)
        if (built_book / "src" / f"{chapter}.md").exists():
            assert (html / f"{chapter}.html").is_file()
            continue
        executed = json.loads((built_book / "src" / f"{chapter}.ipynb").read_text())
        code = [c for c in executed["cells"] if c["cell_type"] == "code"]
        assert code, f"{chapter} has no code cell"
        errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors
        if chapter in PAGES_OF_TABLES:
            continue
        assert any(o.get("data", {}).get("image/png") for c in code for o in c["outputs"]), (
            f"{chapter} produced no figure"
        )
        page = (html / f"{chapter}.html").read_text()
        assert "Summary" in page and "<img" in page, f"{chapter} lacks a summary or a figure"


def _output_text(notebook: dict) -> str:
    """Every text and Markdown output of an executed notebook, joined."""
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            for kind in ("text/markdown", "text/plain"):
                value = data.get(kind)
                if value:
                    parts.append("".join(value) if isinstance(value, list) else value)
            if output.get("output_type") == "stream":
                parts.append("".join(output["text"]))
    return "\n".join(parts)


@pytest.mark.book
def test_chapter_7_completes_with_a_pilot_unlike_the_registered_one(built_book):
    """The build of issue 25 stopped in chapter 7 on another machine, whose pilot chose another
    λ than the registered one. The CI profile's pilot (another grid, tiny runs) always differs
    from the registered pilot: the page must complete, say that the rule would have chosen
    otherwise, show the registered numbers beside this build's, and keep the registered λ."""
    executed = json.loads((built_book / "src" / "notebooks" / "07_confirmatory.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert not errors
    text = _output_text(executed)
    assert "on this build the rule would have chosen" in text
    assert "The study keeps the registered λ" in text
    for table in ("7.3", "7.5", "7.8a, registered", "7.8a, this build"):
        assert table in text or table in json.dumps(executed["cells"]), table
    page = (built_book / "_build" / "html" / "notebooks" / "07_confirmatory.html").read_text()
    assert "V_rand ↑ reg." in page and "V_rand ↑ here" in page
    assert "planning SD, registered" in page and "planning SD, this build" in page


@pytest.mark.book
def test_notebook_sources_have_no_outputs_and_a_parameters_cell():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), path.name
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"


@pytest.mark.book
def test_reference_pages_render(built_book):
    html = built_book / "_build" / "html"
    rerun = (html / "notebooks" / "rerun.html").read_text()
    # generated from the parameters cells: every parameter of chapter 4 is listed
    for name in ("strategy", "seeds", "lam", "matching", "input_mode", "protocol", "results_dir"):
        assert (
            f'<code class="docutils literal notranslate"><span class="pre">{name}</span>' in rerun
        )
    api = (html / "api" / "topobook_topology.html").read_text()
    assert "topobook.topology.persistence.diagrams" in api
    assert "Vandaele" in (html / "references.html").read_text()
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()  # math renders offline


@pytest.mark.book
def test_api_pages_document_every_module(built_book):
    """Every public module of the package and of its sub-packages has its section on the API
    pages, generated from its docstrings (autodoc writes an anchor ``module-<name>`` for
    each): one page per sub-package, none of them the whole package, and the API page links
    to each."""
    html = built_book / "_build" / "html"
    pages = {p.stem: p.read_text() for p in (html / "api").glob("*.html")}
    modules = _public_modules()
    assert {"topobook.metrics.evaluation", "topobook.study.stats", "topobook.training.jobs",
            "topobook.topology.betti_matching", "topobook.datasets"} <= set(modules)
    everything = "".join(pages.values())
    missing = [name for name in modules if f'id="module-{name}"' not in everything]
    assert not missing, f"the API pages lack {missing}"
    packages = {name for name in modules
                if name.count(".") == 1 and f"topobook_{name[9:]}" in pages}
    assert len(packages) >= 6
    for package in packages:  # a sub-package's modules are on its page, and only there
        own = pages[f"topobook_{package[9:]}"]
        assert all(f'id="module-{m}"' in own for m in modules if m.startswith(package + "."))
    index = (html / "api.html").read_text()
    assert all(f"api/{stem}.html" in index for stem in pages)


@pytest.mark.book
def test_html_carries_only_what_it_uses(built_book):
    """No source maps; of MathJax only the configuration the book loads, its fonts and the TeX
    extensions it loads on demand (book/build.py's MATHJAX_KEEP)."""
    sys.path.insert(0, str(ROOT / "book"))
    import build

    html = built_book / "_build" / "html"
    assert not list(html.rglob("*.map"))
    mathjax = html / "_static" / "mathjax"
    kept = [p.relative_to(mathjax).as_posix() for p in mathjax.rglob("*") if p.is_file()]
    assert "tex-chtml.js" in kept
    assert all(any(k == keep or k.startswith(keep) for keep in build.MATHJAX_KEEP) for k in kept)


HTML_LIMIT = 40 * 10**6  # bytes: the whole built HTML book (issue 29)
PNG_LIMIT = 2**20  # bytes: one figure; the book's largest, six image panels at 2x, are ~0.6 MiB


@pytest.mark.book
def test_html_is_small_and_the_downloads_carry_no_figures(built_book):
    """The built HTML stays under HTML_LIMIT and no PNG is over PNG_LIMIT (book/build.py's
    slim_html recompresses them); the executed notebooks that readers download (``_sources``)
    carry a note where the page shows a figure, not a second copy of it."""
    sys.path.insert(0, str(ROOT / "book"))
    import build

    html = built_book / "_build" / "html"
    sizes = {p: p.stat().st_size for p in html.rglob("*") if p.is_file()}
    parts: dict[str, int] = {}
    for path, size in sizes.items():
        top = path.relative_to(html).parts[0]
        parts[top] = parts.get(top, 0) + size
    largest = sorted(parts.items(), key=lambda item: -item[1])[:5]
    total = sum(sizes.values())
    assert total <= HTML_LIMIT, f"the HTML is {total / 1e6:.1f} MB; largest parts: {largest}"
    big = [(p.name, s) for p, s in sizes.items() if p.suffix == ".png" and s > PNG_LIMIT]
    assert not big, f"PNGs over {PNG_LIMIT} bytes: {big}"
    downloads = list((html / "_sources").rglob("*.ipynb"))
    assert downloads
    for path in downloads:
        text = path.read_text(encoding="utf-8")
        assert '"image/png"' not in text, path.name
    chapter = (html / "_sources" / "notebooks" / "01_cubical_persistence.ipynb").read_text()
    assert build.FIGURE_LEFT_OUT in chapter


@pytest.mark.book
def test_landing_and_strategy_pages_say_what_they_are(built_book):
    """The landing page gives the two paths, the licence, the authors and a BibTeX entry; each
    training-run page opens with what its strategy is and a computed result; the pages of
    chapter 6's runs do not call themselves chapter 4."""
    html = built_book / "_build" / "html"
    intro = (html / "intro.html").read_text()  # index.html only redirects to it
    assert "hero.png" in intro
    text = re.sub(r"<[^>]+>", "", intro)  # highlighted code is split into spans
    for needed in ("Learn the topology", "Judge the evidence", "MIT", "the topobook authors",
                   "@misc{topobook", "CITATION.cff"):
        assert needed in text, needed
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    groups = next(p for p in toc["parts"] if p["caption"] == "Training runs")["chapters"]
    assert [Path(g["file"]).name for g in groups] == ["runs_04", "runs_06"]  # by chapter
    runs = [section for group in groups for section in group["sections"]]
    assert len(runs) >= 10
    for entry in runs:
        page = (html / f"{entry['file']}.html").read_text()
        assert "What this run is." in page and "Result" in page, entry["file"]
        assert "V_rand" in page and "means over seed" in page, entry["file"]
        if Path(entry["file"]).name.startswith("06_"):
            assert "4. A training run" not in page and "exercises of this chapter" not in page


def test_citation_file_matches_the_package():
    import topobook

    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["version"] == topobook.__version__
    assert citation["license"] == "MIT"
    assert citation["authors"] == [{"name": "the topobook authors"}]


@pytest.mark.book
def test_pages_show_the_parameters_they_ran_with(built_book):
    """papermill's injected cell is removed from the page and its values replace the defaults
    in the one parameters cell a reader sees."""
    page = built_book / "src" / "notebooks" / "04_training_topo_loss_balanced.ipynb"
    executed = json.loads(page.read_text())
    tagged = [c for c in executed["cells"] if "parameters" in c["metadata"].get("tags", [])]
    injected = [c for c in executed["cells"]
                if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and len(injected) == 1
    assert "remove-cell" in injected[0]["metadata"]["tags"]
    shown = "".join(tagged[0]["source"])
    assert "lam = 0.01  # weight of the topological term" in shown
    assert "run_name = 'topo_loss_balanced'" in shown
    assert "epochs = 2  #" in shown  # the CI profile's value, not the default 100


def test_every_parameter_has_a_meaning_for_the_rerun_page():
    sys.path.insert(0, str(ROOT / "book"))
    import build

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        found = build.parameters_of(path)
        assert found, f"{path.name} has no parameters"
        for name, default, meaning in found:
            assert meaning, f"{path.name}: parameter {name} has no comment to explain it"
            assert "#" not in default, f"{path.name}: a comment leaked into {name}'s default"


def test_build_helpers_alt_text_scripts_and_api_page():
    """book/build.py's post-processing on hand-made inputs: alt text from the caption after a
    figure, a repeated inline script dropped, every module on the generated API page."""
    sys.path.insert(0, str(ROOT / "book"))
    import build

    figure = {"cell_type": "code", "metadata": {}, "outputs": [{"data": {"image/png": "x"}}]}
    notebook = {"cells": [
        {"cell_type": "markdown", "source": ["# 9. A page\n"]},
        figure,
        {"cell_type": "markdown", "source": ["*Figure 9.1 — the {term}`barcode` of $f$ and "
                                             "[its diagram](x.md).* More text."]},
        {"cell_type": "code", "metadata": {}, "outputs": [{"data": {"image/png": "y"}}]},
        {"cell_type": "code", "metadata": {}, "outputs": []},
    ]}
    assert build.add_alt_text(notebook) == 1
    assert figure["metadata"]["mystnb"]["image"]["alt"] == (
        "Figure 9.1 — the barcode of f and its diagram.")
    assert "9. A page" in notebook["cells"][3]["metadata"]["mystnb"]["image"]["alt"]

    page = "<script>const A = 1;</script>\n<p>x</p>\n<script>const A = 1;</script>\n"
    assert build.drop_repeated_scripts(page) == "<script>const A = 1;</script>\n<p>x</p>\n"

    api = build.api_pages("# API\n")
    assert api["api.md"].startswith("# API\n")
    for name in _public_modules():
        where = [path for path, text in api.items() if f".. automodule:: {name}\n" in text]
        assert len(where) == 1, (name, where)  # documented once
        package = name.split(".")[1] if name.count(".") >= 1 else ""
        if (ROOT / "topobook" / package).is_dir():
            assert where == [f"api/topobook_{package}.md"]  # on its sub-package's page
        assert f"]({where[0]})" in api["api.md"]  # linked from the API page
    assert {"file": "api/topobook_losses"} in build.api_sections(api)


def _public_modules() -> list[str]:
    """Every public module and sub-package of topobook, walked (``topobook.<name>`` and
    ``topobook.<package>.<name>``; no name with a leading underscore)."""
    import pkgutil

    import topobook

    found = pkgutil.walk_packages(topobook.__path__, "topobook.")
    return [m.name for m in found if not any(p.startswith("_") for p in m.name.split("."))]


def _bibliography_style():
    """book/_ext/bibliography_style.py, the Sphinx extension of the book's citations."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import bibliography_style

    bibliography_style.register()
    return bibliography_style


HAND_MADE_BIB = r"""
@inproceedings{one, author = {Sofi, Shakir and others}, title = {{U-Net} and {clDice} Priors},
  booktitle = {B}, year = {2023}}
@article{two, author = {Bauer, Ulrich and Lesnick, Michael}, title = {Induced Matchings},
  journal = {J}, year = {2015}}
@article{three, author = {Hu, X. and Li, F. and Chen, C.}, title = {T}, journal = {J},
  year = {2019}}
@article{threeb, author = {Hu, X. and Wang, Y. and Chen, C.}, title = {U}, journal = {J},
  year = {2019}}
@article{solo, author = {Br{\"u}el, Rickard}, title = {S}, journal = {J}, year = {2020}}
"""


def test_bibliography_is_author_year_with_et_al():
    """The bibliography's labels are author and year, with a letter where two would be equal;
    an author list that ends in BibTeX's ``and others`` ends in "et al." (not "and others");
    braced words keep their capitals in pybtex's sentence-case titles."""
    import pybtex.plugin
    from pybtex.database import parse_string

    _bibliography_style()
    style = pybtex.plugin.find_plugin("pybtex.style.formatting", "author_year")()
    entries = parse_string(HAND_MADE_BIB, "bibtex").entries
    formatted = {e.key: e for e in style.format_entries(entries.values())}
    labels = {key: e.label for key, e in formatted.items()}
    assert labels == {
        "one": "Sofi et al., 2023",
        "two": "Bauer and Lesnick, 2015",
        "three": "Hu et al., 2019a",
        "threeb": "Hu et al., 2019b",
        "solo": "Brüel, 2020",
    }
    one = formatted["one"].text.render_as("text")
    assert one.startswith("Shakir Sofi et al. U-Net and clDice priors."), one
    assert "others" not in one
    assert formatted["two"].text.render_as("text").startswith("Ulrich Bauer and Michael Lesnick.")


def test_citations_in_the_text_say_et_al_for_and_others():
    """The referencing style of the text (``author_year_et_al``): "Sofi et al." for a list that
    ends in ``others``, "Hu et al." for three authors, both names for two; the ``s`` roles
    (full lists) keep every named author."""
    from pybtex.database import parse_string
    from pybtex.style.template import FieldIsMissing

    module = _bibliography_style()
    reference_style = module.AuthorYearEtAlReferenceStyle()
    person = reference_style.person
    entries = parse_string(HAND_MADE_BIB, "bibtex").entries

    def authors(key, full=False):
        data = {"entry": entries[key], "style": reference_style.styles[0]}
        return person.author_or_editor_or_title(full).format_data(data).render_as("text")

    assert authors("one") == "Sofi et al."
    assert authors("one", full=True) == "Sofi et al."
    assert authors("two") == "Bauer and Lesnick"
    assert authors("three") == "Hu et al."
    assert authors("three", full=True) == "Hu, Li, and Chen"
    with pytest.raises(FieldIsMissing):
        person.names("editor", False).format_data(
            {"entry": entries["two"], "style": reference_style.styles[0]}
        )


def test_missing_repository_address_brings_no_parentheses_of_its_own(tmp_path):
    """The landing page writes ``({{ repository }})``: the text that says no address was
    configured must not bring parentheses of its own (it gave "((no address ...))")."""
    sys.path.insert(0, str(ROOT / "book"))
    import build

    (tmp_path / "_config.yml").write_text((ROOT / "book" / "_config.yml").read_text())
    build.configure(tmp_path, None)
    config = yaml.safe_load((tmp_path / "_config.yml").read_text())
    text = config["sphinx"]["config"]["myst_substitutions"]["repository"]
    assert "no address" in text and "(" not in text and ")" not in text
    build.configure(tmp_path, "https://example.org/topobook")
    config = yaml.safe_load((tmp_path / "_config.yml").read_text())
    assert config["repository"]["url"] == "https://example.org/topobook"


def test_book_renders_printed_markdown_as_myst_and_solutions_open():
    """_config.yml: Markdown that cells print is parsed as MyST (tables, $math$; MyST-NB's
    default is CommonMark), a solution's title opens it rather than linking to its exercise,
    and the citations use the author-year styles of book/_ext."""
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    sphinx = config["sphinx"]["config"]
    assert sphinx["nb_render_markdown_format"] == "myst"
    assert sphinx["exercise_style"] == "solution_follow_exercise"
    assert {"dollarmath", "amsmath"} <= set(config["parse"]["myst_enable_extensions"])
    assert sphinx["bibtex_reference_style"] == "author_year_et_al"
    assert sphinx["bibtex_default_style"] == "author_year"
    assert (ROOT / "book" / config["sphinx"]["local_extensions"]["bibliography_style"]
            / "bibliography_style.py").is_file()


def _reader_texts(parameters: bool = False) -> dict[str, str]:
    """The Markdown a reader sees, by file name: book/*.md, notebooks/*.md and the notebooks'
    Markdown cells (with ``parameters``, their parameters cells too: the "How to rerun" page
    shows those cells' comments)."""
    texts = {p.name: p.read_text() for p in (ROOT / "book").glob("*.md")}
    texts.update({p.name: p.read_text() for p in (ROOT / "notebooks").glob("*.md")})
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        texts[path.name] = "\n\n".join(
            "".join(c["source"]) for c in cells
            if c["cell_type"] == "markdown"
            or (parameters and "parameters" in c["metadata"].get("tags", [])))
    return texts


def test_reader_text_has_no_internal_wording_and_every_exercise_a_title():
    """The Markdown a reader sees (book/*.md, notebooks' Markdown cells) names no test file and
    no internal notes, no caption line starts with '>' (it would become a block quote), and
    every exercise has a title."""
    internal = re.compile(r"tests/|test_\w+\.py|project's (?:toolchain )?notes|project's kind")
    texts = _reader_texts()
    problems = []
    for name, text in texts.items():
        problems += [f"{name}: {m.group()!r}" for m in internal.finditer(text)]
        problems += [f"{name}: exercise without a title" for _ in
                     re.finditer(r"^`{3,}\{exercise\}\s*$", text, re.M)]
        problems += [f"{name}: caption line starts with '>': {m.group()!r}" for m in
                     re.finditer(r"^\*(?:Figure|Table)[^\n]*\n> [^\n]*", text, re.M)]
    assert not problems, "\n".join(problems)


def test_run_pages_number_their_figures_and_show_the_tip_figure_only_for_processed_input():
    """book/build.py on a hand-made run page: the TIP cells leave a page whose input is raw,
    the figures are numbered by the page's title (mentions follow), and the group page of
    the runs lists each run with its parameters."""
    sys.path.insert(0, str(ROOT / "book"))
    import build

    def md(text, tags=()):
        return {"cell_type": "markdown", "metadata": {"tags": list(tags)}, "source": [text]}

    def page():
        return {"cells": [
            md("# A training run"),
            md("## What the network sees", [build.TOPO_INPUT_ONLY]),
            {"cell_type": "code", "metadata": {"tags": [build.TOPO_INPUT_ONLY]}, "outputs": [],
             "source": []},
            md("*Figure 4.1 — the input.*", [build.TOPO_INPUT_ONLY]),
            md("*Figure 4.2 — the curves.*"),
            md("*Figure 4.3 — the diagrams; compare Figure 4.2 and Fig. 4.3, not Table 4.2.*"),
            md("Read Figure 4.2, then Figures 4.3 and chapter 6's Figure 6.7."),
        ]}

    raw = page()
    assert build.drop_cells_not_for(raw, "topo_loss") == 3
    assert build.number_figures(raw, "6.3") == {"4.2": "6.3.1", "4.3": "6.3.2"}
    texts = ["".join(c["source"]) for c in raw["cells"]]
    assert texts[1] == "*Figure 6.3.1 — the curves.*"
    assert texts[2] == ("*Figure 6.3.2 — the diagrams; compare Figure 6.3.1 and Fig. 6.3.2, "
                        "not Table 4.2.*")
    assert texts[3] == "Read Figure 6.3.1, then Figures 6.3.2 and chapter 6's Figure 6.7."
    processed = page()
    assert build.drop_cells_not_for(processed, "topo_loss+topo_input") == 0
    assert build.number_figures(processed, "4.4")["4.1"] == "4.4.1"

    pages = [{"name": "04_training_baseline", "title": "4.1 Plain U-Net",
              "source": ROOT / "notebooks" / "04_training.ipynb",
              "fixed": {"strategy": "baseline"}}]
    group = build.run_group_page("runs_04", pages)
    assert group.startswith("# The training runs of chapter 4\n")
    assert "- [4.1 Plain U-Net](04_training_baseline.ipynb): `strategy=baseline`" in group
    with pytest.raises(SystemExit, match="no chapter"):
        build.run_group_page("runs_09", pages)


def test_every_literal_equation_number_is_named_as_the_papers():
    """The book numbers its own equations ({eq}`label`, shown as "(n)" on their chapter's
    page); a number typed in the text ("eq. (2)", "eqs. (1)–(3)", "eq. 2") is the paper's and
    must say so ("the paper's eq. (2)", "eqs. (1)–(3) of the paper"), in the Markdown a reader
    sees and in the comments of the parameters cells (the "How to rerun" page shows them)."""
    typed = re.compile(r"\b[Ee]qs?\.\s*\(?\d")
    texts = _reader_texts(parameters=True)
    problems = []
    for name, text in texts.items():
        for match in typed.finditer(text):
            before = text[max(0, match.start() - 40):match.start()].replace("\n", " ")
            after = text[match.end():match.end() + 30].replace("\n", " ")
            if "paper's" not in before and "of the paper" not in after:
                problems.append(f"{name}: ...{before}{match.group()}{after}...")
    assert not problems, "an equation number not named as the paper's:\n" + "\n".join(problems)


def test_the_closing_page_executes_after_chapters_5_to_8_and_closes_the_chapters():
    """book/build.py's plan, for the published book and the test suite's: the closing page
    "What the book found" is a page of its own stage, executed after chapters 5-8 (it reads
    their runs and the record chapter 8 writes), with the chapters' results folder; it comes
    right after chapter 8 in the contents and is the target of chapter 8's "What's next"; the
    landing page glues its answer lines from keys the page glues."""
    sys.path.insert(0, str(ROOT / "book"))
    import build

    for profile in ("full", "ci"):
        stages = build.plan(profile)
        names = [[page["name"] for page in stage] for stage in stages]
        assert names[-1] == ["09_findings"], (profile, names)
        stage_of = {name: k for k, stage in enumerate(names) for name in stage}
        assert sum(name == "09_findings" for stage in names for name in stage) == 1
        for chapter in ("05_results", "06_beyond", "07_confirmatory", "08_topomortar"):
            assert stage_of[chapter] < stage_of["09_findings"], (profile, chapter)
        by_name = {page["name"]: page for stage in stages for page in stage}
        results = by_name["05_results"]["parameters"]["results_dir"]
        assert results == f"../results/{profile}"
        assert by_name["09_findings"]["parameters"]["results_dir"] == results
        assert by_name["08_topomortar"]["parameters"]["results_dir"] == results
    chapters = [Path(f).name for f in _chapters()]
    assert chapters[chapters.index("08_topomortar") + 1] == "09_findings"
    cells = json.loads((ROOT / "notebooks" / "08_topomortar.ipynb").read_text())["cells"]
    next_section = "".join(
        "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
    ).split("## What's next", 1)[1].split("\n## ", 1)[0]
    assert "(09_findings.ipynb)" in next_section
    findings_code = "".join(
        "".join(c["source"]) for c in json.loads(
            (ROOT / "notebooks" / "09_findings.ipynb").read_text())["cells"]
        if c["cell_type"] == "code")
    keys = re.findall(r"09_findings\.ipynb::(\w+)", (ROOT / "book" / "intro.md").read_text())
    assert len(keys) == 2  # one line per data set
    assert all(f'glue("{key}", ' in findings_code for key in keys)
    # MyST-NB reads `path::key:format` from the last colon: without a format the key is lost
    # (`{glue:text}` of another page needs `:s` or another format spec)
    intro = (ROOT / "book" / "intro.md").read_text()
    assert not re.findall(r"\{glue:text\}`[^`]*::\w+`", intro), "a cross-page glue:text without :s"


@pytest.mark.book
def test_the_answers_stand_where_a_reader_looks(built_book):
    """The landing page carries one computed line per data set, the closing page sets out each
    question with its design, answer, limits and open questions, and the summaries of chapters
    5 and 8 state their findings."""
    html = built_book / "_build" / "html"

    def text(page: str) -> str:
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", (html / page).read_text()))

    intro = text("intro.html")
    assert "ISBI 2012, the pre-registered study (16 seed pairs):" in intro
    assert "TopoMortar, Betti-1 error against the plain baseline:" in intro
    closing = text("notebooks/09_findings.html")
    for needed in ("1. Table I, reproduced", "2. The losses of the field",
                   "3. The pre-registered study", "4. TopoMortar beside its authors",
                   "Table 9.1", "Figure 9.1", "effects on V_rand larger than"):
        assert needed in closing, needed
    assert closing.count("Limits.") == 4 and closing.count("Open.") == 4
    # the HTML has typographic apostrophes (smartquotes)
    summary5 = text("notebooks/05_results.html").replace("’", "'").split("Summary", 1)[1]
    assert "comparisons with" in summary5 and "the paper's difference is" in summary5
    summary8 = text("notebooks/08_topomortar.html").replace("’", "'").split("Summary", 1)[1]
    assert "comparisons with" in summary8 and "the authors' runs (" in summary8
