"""book/build.py's slimming of the built HTML on tiny hand-made files: PNGs re-encoded without
changing a pixel, and the downloadable executed notebooks without their images."""

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))
import build  # noqa: E402


def _png(pixels: np.ndarray, mode: str) -> bytes:
    """``pixels`` as an uncompressed PNG (zlib level 0), as a wasteful writer would save it."""
    out = io.BytesIO()
    Image.fromarray(pixels, mode).save(out, "PNG", compress_level=0)
    return out.getvalue()


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def _figure_like(height: int = 40, width: int = 60) -> np.ndarray:
    """An opaque RGBA picture of three colours: white, with a blue bar and a black line."""
    pixels = np.full((height, width, 4), 255, np.uint8)
    pixels[10:20, 5:50, :3] = (0, 114, 178)
    pixels[30, :, :3] = 0
    return pixels


def test_an_opaque_figure_of_few_colours_becomes_a_smaller_palette_png_of_the_same_pixels():
    data = _png(_figure_like(), "RGBA")
    smaller = build.smaller_png(data)
    assert len(smaller) < len(data) / 4
    assert Image.open(io.BytesIO(smaller)).mode == "P"
    assert np.array_equal(_decoded(smaller), _figure_like())


def test_many_colours_stay_true_colour_and_transparency_is_kept():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)  # over 256 colours
    noisy = np.concatenate([noise, np.full((32, 32, 1), 255, np.uint8)], axis=2)
    smaller = build.smaller_png(_png(noisy, "RGBA"))
    assert Image.open(io.BytesIO(smaller)).mode == "RGB"  # the opaque alpha channel dropped
    assert np.array_equal(_decoded(smaller), noisy)
    seethrough = _figure_like()
    seethrough[:5, :, 3] = 0  # a transparent strip: the alpha channel must stay
    smaller = build.smaller_png(_png(seethrough, "RGBA"))
    assert np.array_equal(_decoded(smaller), seethrough)


def test_a_png_that_cannot_shrink_is_returned_as_it_is():
    best = build.smaller_png(_png(_figure_like(), "RGBA"))
    assert build.smaller_png(best) is best


def _notebook() -> dict:
    figure = {"output_type": "display_data", "metadata": {"image/png": {"width": 680}},
              "data": {"image/png": "iVBORw0KGgo=", "text/plain": ["<Figure size 680x360>"]}}
    return {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# A page"]},
        {"cell_type": "code", "metadata": {"mystnb": {"image": {"alt": "Figure 1.1 — a bar."}}},
         "source": ["plot()"], "outputs": [
             {"output_type": "stream", "name": "stdout", "text": ["loss 0.5\n"]}, figure]},
        {"cell_type": "code", "metadata": {}, "source": ["table"], "outputs": [
            {"output_type": "execute_result", "metadata": {}, "execution_count": 2,
             "data": {"text/html": "<table></table>", "text/plain": "   a\n0  1",
                      "image/svg+xml": "<svg/>"}},
            {"output_type": "display_data", "metadata": {},
             "data": {"image/jpeg": "/9j/", "image/png": "iVBO"}}]},
    ]}


def test_image_outputs_become_a_note_with_the_alt_text_and_the_rest_is_kept():
    notebook = _notebook()
    assert build.drop_notebook_images(notebook) == 2
    first, second = notebook["cells"][1]["outputs"], notebook["cells"][2]["outputs"]
    assert first[0] == _notebook()["cells"][1]["outputs"][0]  # the printed text is kept
    assert first[1]["data"] == {"text/plain": f"{build.FIGURE_LEFT_OUT} Figure 1.1 — a bar."}
    assert first[1]["metadata"] == {}
    assert second[0] == _notebook()["cells"][2]["outputs"][0]  # HTML and SVG (text) are kept
    assert second[1]["data"] == {"text/plain": build.FIGURE_LEFT_OUT}
    assert build.drop_notebook_images(notebook) == 0


def test_slim_html_shrinks_pngs_and_the_downloads_but_not_the_pages(tmp_path):
    html = tmp_path / "html"
    for folder in ("_images", "_sources/notebooks", "_downloads/abc", "notebooks"):
        (html / folder).mkdir(parents=True)
    data = _png(_figure_like(), "RGBA")
    (html / "_images" / "f.png").write_bytes(data)
    for path in (html / "_sources/notebooks/a.ipynb", html / "_downloads/abc/a.ipynb"):
        path.write_text(json.dumps(_notebook()))
    plain = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["text"]}]}
    (html / "_sources/notebooks/b.ipynb").write_text(json.dumps(plain))
    page = html / "notebooks" / "a.html"
    page.write_text('<img src="../_images/f.png">')

    build.slim_html(html)
    assert len((html / "_images" / "f.png").read_bytes()) < len(data)
    assert np.array_equal(_decoded((html / "_images" / "f.png").read_bytes()), _figure_like())
    for path in (html / "_sources/notebooks/a.ipynb", html / "_downloads/abc/a.ipynb"):
        text = path.read_text(encoding="utf-8")
        assert "image/png" not in text and "image/jpeg" not in text
        assert "Figure 1.1 — a bar." in text  # written as UTF-8, not escaped
        assert len(json.loads(text)["cells"]) == 3
    assert json.loads((html / "_sources/notebooks/b.ipynb").read_text()) == plain
    assert page.read_text() == '<img src="../_images/f.png">'


def test_a_corrupt_png_is_an_error_not_a_silent_pass():
    with pytest.raises(Exception, match="image"):
        build.smaller_png(b"\x89PNG\r\n\x1a\n not an image")
