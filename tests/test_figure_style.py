"""One figure style for the whole book: no text below 10 pt.

The check reads the code as text (the notebooks' code cells and ``topobook/plotting.py``, parsed
with :mod:`ast`) and the style file ``topobook/book.mplstyle``; nothing is drawn. At the book's
100 dpi a figure is shown at its own size (``topobook.plotting.use_book_style``), so a size in
points here is the size a reader sees. It rejects

* a ``fontsize=``, ``labelsize=``, ``titlesize=`` or ``title_fontsize=`` below 10, in any call;
* a ``size=`` below 10 in a call that draws text (``text``, ``annotate``, ``set_title``, ...;
  ``size`` elsewhere is a marker's area or an image's side);
* ``.set_fontsize(n)`` / ``.set_size(n)`` with ``n`` below 10, and a ``prop={"size": n}``;
* a relative size (``"small"``, ``"x-small"``, ``"smaller"``): below 10 pt at the style's 11 pt;
* an rcParams size below 10 set in code (``plt.rcParams["font.size"] = 8``,
  ``rc_context({"xtick.labelsize": 8})``) or in the style file.

A size given by a name is resolved where the same source assigns that name a number.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIN_POINTS = 10.0
SIZE_KEYWORDS = {"fontsize", "labelsize", "titlesize", "title_fontsize"}
TEXT_CALLS = {
    "text", "annotate", "set_title", "set_xlabel", "set_ylabel", "suptitle", "supxlabel",
    "supylabel", "title", "xlabel", "ylabel", "figtext", "set_text", "clabel", "bar_label",
    "table", "legend", "set_xticklabels", "set_yticklabels", "set_ticklabels",
}
SETTERS = {"set_fontsize", "set_size"}
RELATIVE_SIZES = {"xx-small", "x-small", "small", "smaller"}  # of 11 pt: 6.4 to 9.2 pt
# chapters restyled on another branch at the time of writing: their figures are checked as soon
# as that branch is merged (the test then reports XPASS; remove them from this set)
RESTYLED_ELSEWHERE: set[str] = set()


def _numbers_assigned(tree: ast.AST) -> dict[str, float]:
    """``name -> number`` for every plain ``name = <number>`` of the source."""
    found = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, int | float)
        ):
            found[node.targets[0].id] = float(node.value.value)
    return found


def _too_small(node: ast.AST, names: dict[str, float]) -> str | None:
    """Why a size expression is below :data:`MIN_POINTS` (its text), or None."""
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(node, ast.Name) and node.id in names:
        value = names[node.id]
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value < MIN_POINTS:
        named = f"{ast.unparse(node)} = " if isinstance(node, ast.Name) else ""
        return f"{named}{value:g} pt"
    if isinstance(value, str) and value in RELATIVE_SIZES:
        return f"{value!r} (below 10 pt at the style's 11 pt)"
    return None


def _called_name(call: ast.Call) -> str:
    function = call.func
    if isinstance(function, ast.Attribute):
        return function.attr
    return function.id if isinstance(function, ast.Name) else ""


def _rc_size_items(mapping: ast.Dict):
    for key, value in zip(mapping.keys, mapping.values, strict=True):
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and "size" in key.value:
            yield key.value, value


def small_text(source: str, names: dict[str, float] | None = None) -> list[str]:
    """Every place in ``source`` (Python) that sets text below 10 pt, as ``line n: what``;
    ``names`` gives numbers assigned elsewhere (other cells of a notebook)."""
    tree = ast.parse(source)
    names = {**(names or {}), **_numbers_assigned(tree)}
    problems: list[tuple[int, str]] = []

    def report(node: ast.AST, what: str, why: str | None) -> None:
        if why:
            problems.append((node.lineno, f"line {node.lineno}: {what} {why}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = _called_name(node)
            for keyword in node.keywords:
                if keyword.arg in SIZE_KEYWORDS or (
                    keyword.arg == "size" and called in TEXT_CALLS
                ):
                    report(node, f"{called}({keyword.arg}=...)", _too_small(keyword.value, names))
                if keyword.arg == "prop" and isinstance(keyword.value, ast.Dict):
                    for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
                        if isinstance(key, ast.Constant) and key.value in ("size", "fontsize"):
                            report(node, f"{called}(prop={{'size': ...}})",
                                   _too_small(value, names))
            if called in SETTERS and node.args:
                report(node, f".{called}(...)", _too_small(node.args[0], names))
            for argument in node.args:
                if isinstance(argument, ast.Dict):  # rc_context({...}), rcParams.update({...})
                    for key, value in _rc_size_items(argument):
                        report(node, f"rc {key!r}", _too_small(value, names))
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.slice, ast.Constant)
                    and isinstance(target.slice.value, str)
                    and "size" in target.slice.value
                    and ast.unparse(target.value).endswith("rcParams")
                ):
                    report(node, f"rcParams[{target.slice.value!r}]",
                           _too_small(node.value, names))
    return [text for _, text in sorted(problems)]


def code_cells(path: Path) -> list[tuple[int, str]]:
    """(index, source) of each code cell of a notebook, IPython magics left out."""
    cells = json.loads(path.read_text())["cells"]
    return [
        (index, "\n".join(line for line in "".join(cell["source"]).splitlines()
                          if not line.lstrip().startswith(("%", "!"))))
        for index, cell in enumerate(cells)
        if cell["cell_type"] == "code"
    ]


def notebook_problems(path: Path) -> list[str]:
    """:func:`small_text` of every code cell of a notebook, as ``cell i, line n: what``."""
    cells = code_cells(path)
    names: dict[str, float] = {}
    for _, source in cells:
        names.update(_numbers_assigned(ast.parse(source)))
    return [f"cell {index}, {problem}" for index, source in cells
            for problem in small_text(source, names)]


def style_problems(text: str) -> list[str]:
    """Every size of a matplotlib style file (``key: value`` lines) below 10 pt."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        key, _, value = line.split("#", 1)[0].partition(":")
        key, value = key.strip(), value.strip()
        if "size" not in key or key.endswith(("figsize", "markersize")) or not value:
            continue
        try:
            points = float(value)
        except ValueError:
            if value in RELATIVE_SIZES:
                problems.append(f"line {number}: {key}: {value} (below 10 pt)")
            continue
        if points < MIN_POINTS:
            problems.append(f"line {number}: {key}: {value} pt")
    return problems


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            id=p.name,
            marks=[pytest.mark.xfail(reason="restyled on another branch", strict=False)]
            if p.name in RESTYLED_ELSEWHERE
            else [],
        )
        for p in NOTEBOOKS
    ],
)
def test_no_notebook_draws_text_below_10_pt(path):
    problems = notebook_problems(path)
    assert not problems, f"{path.name}: text below 10 pt:\n" + "\n".join(problems)


def test_plotting_draws_no_text_below_10_pt():
    source = (ROOT / "topobook" / "plotting.py").read_text()
    problems = small_text(source)
    assert not problems, "topobook/plotting.py: text below 10 pt:\n" + "\n".join(problems)


def test_style_file_sets_no_size_below_10_pt():
    text = (ROOT / "topobook" / "book.mplstyle").read_text()
    assert "font.size" in text
    problems = style_problems(text)
    assert not problems, "topobook/book.mplstyle:\n" + "\n".join(problems)


def test_checker_finds_small_text_on_hand_made_code():
    """The checks can fail: each kind of small text is found, and legitimate sizes pass."""
    bad = """
small = 8
ax.text(0, 0, "a", fontsize=9)
ax.set_title("b", size=7)
ax.legend(fontsize="small")
ax.tick_params(labelsize=small)
ax.legend(prop={"size": 6})
label.set_fontsize(8.5)
plt.rcParams["font.size"] = 9
with plt.rc_context({"xtick.labelsize": 8}):
    pass
"""
    found = small_text(bad)
    assert [p.split(":")[0] for p in found] == [f"line {n}" for n in (3, 4, 5, 6, 7, 8, 9, 10)]
    fine = """
ax.text(0, 0, "a", fontsize=10)
ax.scatter(x, y, s=4)
plot_diagram(d, size=3)  # a marker's area, not text
ax.set_title("b", fontsize="large")
ax.legend(fontsize=big)
"""
    assert small_text(fine) == []
    assert style_problems("font.size: 11\nxtick.labelsize: 9  # small\nfigure.figsize: 6, 3\n") == [
        "line 2: xtick.labelsize: 9 pt"
    ]
    assert style_problems("legend.fontsize: x-small\n") == [
        "line 1: legend.fontsize: x-small (below 10 pt)"
    ]
