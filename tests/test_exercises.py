"""Every chapter of the book has exercises with solutions, and every glossary link resolves.

The chapters are the pages of the "Chapters" and "Training runs" parts of book/_toc.yml (the
training-run pages carry chapter 4's exercises, on the first one). A page is mapped to its
source the way book/build.py's ``plan`` does: a page listed under ``pages`` in
book/profiles.yml comes from the notebook named there (``04_training_*`` from
``04_training.ipynb``), any other page from the notebook of the same name; a page that is a
Markdown file (such as ``04_training_overview.md``) has no exercises to check.

Exercises are sphinx-exercise directives (``{exercise}`` or the gated ``{exercise-start}``)
with a ``:label:``; a solution (``{solution}`` or ``{solution-start}``) names the label of its
exercise as its argument.
"""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
MIN_EXERCISES = 3

EXERCISE = re.compile(
    r"^(?:`{3,}|:{3,})\{exercise(?:-start)?\}[^\n]*\n((?:[ \t]*:[^\n]*\n)*)", re.M
)
LABEL = re.compile(r"^[ \t]*:label:[ \t]*(\S+)", re.M)
SOLUTION = re.compile(r"^(?:`{3,}|:{3,})\{solution(?:-start)?\}[ \t]+(\S+)", re.M)
TERM = re.compile(r"\{term\}`([^`]+)`")
GLOSSARY = re.compile(r"^(`{3,}|:{3,})\{glossary\}[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)


def chapter_pages() -> list[str]:
    """Page names (file names without folder) of the "Chapters" and "Training runs" parts, in
    order."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    parts = [p for p in toc["parts"] if p.get("caption") in ("Chapters", "Training runs")]
    assert parts and parts[0]["caption"] == "Chapters", 'book/_toc.yml has no "Chapters" part'
    sys.path.insert(0, str(BOOK))
    import build  # the pages build.py writes itself (group pages of the runs) have no source

    names = []
    for part in parts:
        for chapter in part["chapters"]:
            for entry in [chapter, *chapter.get("sections", [])]:
                if Path(entry["file"]).name not in build.GENERATED:
                    names.append(Path(entry["file"]).name)
    return names


def chapter_sources() -> tuple[list[Path], list[Path], list[str]]:
    """(notebooks, markdown pages, pages without a source) of the chapters, each source once."""
    pages = yaml.safe_load((BOOK / "profiles.yml").read_text()).get("pages", {})
    notebooks, markdown, missing = [], [], []
    for name in chapter_pages():
        stem = Path(name).stem if name.endswith((".md", ".ipynb")) else name
        if stem in pages:
            source = NOTEBOOKS / pages[stem]["notebook"]
        elif (NOTEBOOKS / f"{stem}.ipynb").exists():
            source = NOTEBOOKS / f"{stem}.ipynb"
        elif (NOTEBOOKS / f"{stem}.md").exists():
            if NOTEBOOKS / f"{stem}.md" not in markdown:
                markdown.append(NOTEBOOKS / f"{stem}.md")
            continue
        else:
            missing.append(name)
            continue
        if source not in notebooks:
            notebooks.append(source)
    return notebooks, markdown, missing


def markdown_text(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def exercises_and_solutions(text: str) -> tuple[list[str | None], list[str]]:
    """Labels of the exercises (None for one without a label) and the labels the solutions
    name, in order of appearance."""
    exercises = []
    for match in EXERCISE.finditer(text):
        label = LABEL.search(match.group(1))
        exercises.append(label.group(1) if label else None)
    return exercises, SOLUTION.findall(text)


def glossary_terms() -> set[str]:
    """Terms defined in book/glossary.md (lower case: Sphinx matches terms case-insensitively)."""
    text = (BOOK / "glossary.md").read_text()
    blocks = GLOSSARY.findall(text)
    assert blocks, "book/glossary.md has no {glossary} directive"
    terms = set()
    for _, body in blocks:
        for line in body.splitlines():
            if line.strip() and not line[0].isspace() and not line.startswith(":"):
                terms.add(line.strip().lower())
    return terms


def term_targets(text: str) -> set[str]:
    """The glossary terms that the {term} roles of ``text`` link to (``text <term>`` form too)."""
    targets = set()
    for content in TERM.findall(text):
        explicit = re.search(r"<([^<>]+)>\s*$", content)
        targets.add((explicit.group(1) if explicit else content).strip().lower())
    return targets


NOTEBOOK_SOURCES, MARKDOWN_PAGES, MISSING_PAGES = chapter_sources()


def test_parsers_on_a_small_example():
    text = (
        "````{exercise} A title\n:label: ex-a\n\nDo it.\n````\n"
        "````{solution} ex-a\n:class: dropdown\n\nDone.\n````\n"
        "```{exercise-start}\n:label: ex-b\n```\ntext\n```{exercise-end}\n```\n"
        "```{exercise}\nno label\n```\n"
        "See {term}`bars <bar>` and {term}`Elder rule`."
    )
    exercises, solutions = exercises_and_solutions(text)
    assert exercises == ["ex-a", "ex-b", None]
    assert solutions == ["ex-a"]
    assert term_targets(text) == {"bar", "elder rule"}


def test_chapters_are_found():
    assert not MISSING_PAGES, f"chapter pages without a source in notebooks/: {MISSING_PAGES}"
    names = {p.name for p in NOTEBOOK_SOURCES}
    assert {"01_cubical_persistence.ipynb", "02_topological_loss.ipynb"} <= names


@pytest.mark.parametrize("notebook", NOTEBOOK_SOURCES, ids=lambda p: p.name)
def test_chapter_has_exercises_with_solutions(notebook):
    exercises, solutions = exercises_and_solutions(markdown_text(notebook))
    assert None not in exercises, f"{notebook.name}: an exercise without :label:"
    assert len(exercises) >= MIN_EXERCISES, (
        f"{notebook.name}: {len(exercises)} exercises, at least {MIN_EXERCISES} wanted"
    )
    assert len(set(exercises)) == len(exercises), f"{notebook.name}: duplicate exercise labels"
    missing = [label for label in exercises if label not in solutions]
    assert not missing, f"{notebook.name}: exercises without a solution: {missing}"
    orphans = [label for label in solutions if label not in exercises]
    assert not orphans, f"{notebook.name}: solutions of unknown exercises: {orphans}"


def test_every_term_is_in_the_glossary():
    defined = glossary_terms()
    problems = []
    for source in [*NOTEBOOK_SOURCES, *MARKDOWN_PAGES]:
        text = markdown_text(source) if source.suffix == ".ipynb" else source.read_text()
        for term in sorted(term_targets(text) - defined):
            problems.append(f"{source.name}: {{term}}`{term}` is not defined in book/glossary.md")
    assert not problems, "\n".join(problems)


def test_exercise_labels_are_unique_across_the_book():
    seen = {}
    for notebook in NOTEBOOK_SOURCES:
        for label in exercises_and_solutions(markdown_text(notebook))[0]:
            assert label not in seen, f"label {label} in {notebook.name} and {seen[label]}"
            seen[label] = notebook.name


# ---------------------------------------------------------------------------------------------
# Chapters 1-3 and the reference pages (issue 17): every exercise's solution either asserts its
# outcome or says it is open-ended; every glued number is glued by a cell of its page; the
# paper's equation numbers are always named as the paper's.

ASSERTED_CHAPTERS = [
    NOTEBOOKS / name
    for name in (
        "01_cubical_persistence.ipynb",
        "02_topological_loss.ipynb",
        "03_topological_image_processing.ipynb",
    )
]
REFERENCE_PAGES = [BOOK / name for name in ("glossary.md", "notation.md", "reproduction.md",
                                            "topologylayer.md")]
SOLUTION_START = re.compile(r"\{solution-start\}[ \t]+(\S+)")
GLUE_ROLE = re.compile(r"\{glue(?::\w*)?\}`([^`:]+)(?::[^`]*)?`")
GLUE_CALL = re.compile(r"""\bglue\(\s*["']([^"']+)["']""")
BARE_EQUATION = re.compile(r"\b[Ee]qs?\.\s*\((\d)")


def solution_blocks(notebook: Path) -> dict[str, list[dict]]:
    """The cells between each ``{solution-start}`` and the next ``{solution-end}``, by label."""
    cells = json.loads(notebook.read_text())["cells"]
    blocks, current = {}, None
    for cell in cells:
        text = "".join(cell["source"])
        start = SOLUTION_START.search(text) if cell["cell_type"] == "markdown" else None
        if start:
            current = start.group(1)
            blocks[current] = [cell]
            continue
        if current is not None:
            if cell["cell_type"] == "markdown" and "{solution-end}" in text:
                current = None
            else:
                blocks[current].append(cell)
    return blocks


@pytest.mark.parametrize("notebook", ASSERTED_CHAPTERS, ids=lambda p: p.name)
def test_solutions_assert_or_say_open_ended(notebook):
    blocks = solution_blocks(notebook)
    assert blocks, f"{notebook.name}: no gated solutions found"
    problems = []
    for label, cells in blocks.items():
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        if not re.search(r"^\s*(assert\b|np\.testing\.assert)", code, re.M) and (
            "open-ended" not in prose
        ):
            problems.append(label)
    assert not problems, (
        f"{notebook.name}: solutions that neither assert nor say open-ended: {problems}"
    )


@pytest.mark.parametrize("notebook", ASSERTED_CHAPTERS, ids=lambda p: p.name)
def test_every_glued_number_is_glued_on_its_page(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    glued = set(GLUE_CALL.findall(code))
    used = set(GLUE_ROLE.findall(markdown_text(notebook)))
    assert used <= glued, f"{notebook.name}: glue roles without a glue() call: {used - glued}"
    assert glued <= used, f"{notebook.name}: glue() calls never shown: {glued - used}"


def test_parsers_of_glue_and_equations():
    assert GLUE_ROLE.findall("a {glue:text}`x_1:.2f` b {glue}`y` c {glue:}`z`") == ["x_1", "y", "z"]
    assert GLUE_CALL.findall('glue("x_1", 3, display=False)\nglue( \'y\', 2)') == ["x_1", "y"]
    assert [m.start() for m in BARE_EQUATION.finditer("see eq. (2) and eqs. (1)-(3)")] == [4, 16]


def named_as_the_papers(text: str, start: int) -> bool:
    """An equation reference at ``start`` is the paper's when "paper's" precedes it closely or
    "of the paper" follows it."""
    return "paper's" in text[max(0, start - 12):start] or text[start:start + 30].find(
        "of the paper") >= 0


@pytest.mark.parametrize(
    "page", ASSERTED_CHAPTERS + REFERENCE_PAGES, ids=lambda p: p.name
)
def test_the_papers_equation_numbers_are_named_as_such(page):
    text = markdown_text(page) if page.suffix == ".ipynb" else page.read_text()
    bare = [
        text[max(0, m.start() - 40):m.end() + 10].replace("\n", " ")
        for m in BARE_EQUATION.finditer(text)
        if not named_as_the_papers(text, m.start())
    ]
    assert not bare, (
        f"{page.name}: numbered equations that are neither the book's own ({{eq}} roles) nor "
        f"named as the paper's: {bare}"
    )
