"""Execute every chapter with papermill (CI parameter set) and build the book from the results.

This is the slow end-to-end test: it fails on any notebook error and on any Sphinx warning.
"""

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _chapters():
    """Every notebook page of the table of contents (part "Chapters"), sections included."""
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = []
    for part in toc["parts"]:
        if part["caption"] != "Chapters":
            continue
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return files


@pytest.mark.book
def test_every_chapter_executes_and_renders(built_book):
    html = built_book / "_build" / "html"
    assert (html / "index.html").is_file()
    for chapter in _chapters():
        if (ROOT / f"{chapter}.md").exists():  # a text page (chapter 4's overview)
            assert (html / f"{chapter}.html").is_file()
            continue
        executed = json.loads((built_book / "src" / f"{chapter}.ipynb").read_text())
        code = [c for c in executed["cells"] if c["cell_type"] == "code"]
        assert code, f"{chapter} has no code cell"
        errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors
        assert any(o.get("data", {}).get("image/png") for c in code for o in c["outputs"]), (
            f"{chapter} produced no figure"
        )
        page = (html / f"{chapter}.html").read_text()
        assert "Summary" in page and "<img" in page, f"{chapter} lacks a summary or a figure"


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
    assert "topobook.persistence.diagrams" in (html / "api.html").read_text()
    assert "Vandaele" in (html / "references.html").read_text()
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()  # math renders offline


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
