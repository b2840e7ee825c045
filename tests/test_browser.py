"""The rendered book as a reader sees it: every page opened in headless Chromium.

Fails on a missing image, a broken internal link, TeX left unrendered after MathJax ran (the
MathJax delimiters, or a TeX command such as ``\\emph`` or ``\\cite`` in the visible text
outside math and code), a notebook error cell, or a figure whose text the page shrinks to
unreadable size, and saves a screenshot of every page to <book>/screenshots/.

Figure size: the book's figures are PNGs drawn by matplotlib at 100 dpi, so a figure ``w``
inches wide is ``100 w`` pixels wide, and the page shows it at most as wide as the content
column (``max-width: 100%``). The test renders a copy of each page, with a small script added
that records every image's natural width and its rendered width (``getBoundingClientRect``)
in the browser window of 1280 px, and fails where natural / rendered > MAX_SHRINK: the text
of such a figure (drawn at 10 pt, about 14 px) is shown below half its size. Images that are
not displayed (rendered width 0, for example inside a collapsed solution) are not judged.

Needs Debian's chromium (``apt-get install chromium``); .ci/run installs it. Outside CI the
test is skipped, with that message, when no Chromium is found.
"""

import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--allow-file-access-from-files",
    "--virtual-time-budget=15000",
]
SKIPPED_TEXT = {"script", "style", "pre", "code", "mjx-assistive-mml", "textarea", "mjx-container"}
SKIPPED_CLASSES = {"math", "highlight"}  # math (before MathJax ran) and code blocks
VOID_TAGS = set("area base br col embed hr img input link meta source track wbr".split())
RAW_TEX = re.compile(r"\\[A-Za-z]{2,}")  # a backslash and a TeX command name: \emph, \cite
MAX_SHRINK = 2.0  # largest natural / rendered width of a figure
MEASURE_SCRIPT = """<script>
window.addEventListener("load", () => {
  for (const img of document.images) {
    img.setAttribute("data-natural-width", img.naturalWidth);
    img.setAttribute("data-rendered-width", Math.round(img.getBoundingClientRect().width));
  }
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    message = "no Chromium found: apt-get install chromium (the browser test needs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Page(HTMLParser):
    """Links, images, ids, visible text and classes of one rendered page."""

    def __init__(self):
        super().__init__()
        self.links, self.images, self.ids, self.classes, self.text = [], [], set(), [], []
        self.sizes = []  # (src, natural width, rendered width) where the page recorded them
        self._skip = 0
        self._open = []  # (tag, skips text) of the open elements

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        skips = tag in SKIPPED_TEXT or bool(classes & SKIPPED_CLASSES)
        if tag not in VOID_TAGS:
            self._open.append((tag, skips))
            self._skip += skips
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if attrs.get("class"):
            self.classes.append(attrs["class"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
            if "data-rendered-width" in attrs:
                self.sizes.append(
                    (
                        attrs["src"],
                        int(attrs["data-natural-width"]),
                        int(attrs["data-rendered-width"]),
                    )
                )

    def handle_endtag(self, tag):
        # close up to the matching open element (HTML allows omitted end tags)
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                for _, skips in self._open[i:]:
                    self._skip -= skips
                del self._open[i:]
                break

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def render(browser: str, page: Path, screenshot: Path) -> str:
    """The DOM after scripts (MathJax) ran, rendered in a 1280 px wide window from a copy of the
    page that records each image's natural and rendered width (MEASURE_SCRIPT); also saves a
    screenshot of the page itself."""
    profile = tempfile.mkdtemp()
    url = page.as_uri()
    html = page.read_text(encoding="utf-8")
    end = html.rfind("</body>")
    measured = page.with_name(f"{page.stem}.measure-sizes.html")  # beside it: same relative links
    measured.write_text(
        html[:end] + MEASURE_SCRIPT + html[end:] if end >= 0 else html + MEASURE_SCRIPT,
        encoding="utf-8",
    )
    try:
        dom = subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--window-size=1280,1600",
                "--dump-dom",
                measured.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    finally:
        measured.unlink(missing_ok=True)
    subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tempfile.mkdtemp()}",
            "--window-size=1280,1600",
            f"--screenshot={screenshot}",
            url,
        ],
        capture_output=True,
        timeout=120,
    )
    shutil.rmtree(profile, ignore_errors=True)
    return dom


def local_target(page: Path, href: str) -> tuple[Path | None, str]:
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith("mailto:"):
        return None, ""
    target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
    return target, parts.fragment


@pytest.mark.book
def test_every_page_renders_cleanly(built_book):
    browser = chromium()
    html = built_book / "_build" / "html"
    shots = built_book / "screenshots"
    shots.mkdir(exist_ok=True)
    pages = sorted(
        p
        for p in html.rglob("*.html")
        if "_static" not in p.parts and p.name not in ("search.html", "genindex.html")
    )
    assert len(pages) >= 10
    problems = []
    parsed = {}
    for page in pages:
        dom = render(browser, page, shots / f"{page.stem}.png")
        assert dom, f"Chromium returned nothing for {page}"
        doc = Page()
        doc.feed(dom)
        parsed[page] = doc
        text = " ".join(doc.text)
        name = page.relative_to(html)
        for src in doc.images:
            target, _ = local_target(page, src)
            if not src.startswith("data:") and target is not None and not target.is_file():
                problems.append(f"{name}: missing image {src}")
        for marker in ("\\(", "\\[", "$$"):
            if marker in text:
                problems.append(f"{name}: raw TeX {marker!r} left on the page")
        for match in RAW_TEX.finditer(text):
            context = text[max(0, match.start() - 30) : match.end() + 30].replace("\n", " ")
            problems.append(f"{name}: raw TeX command {match.group()!r} in ...{context}...")
        for src, natural, rendered in doc.sizes:
            if rendered > 0 and natural / rendered > MAX_SHRINK:
                problems.append(
                    f"{name}: figure {src} is {natural} px wide but shown at {rendered} px "
                    f"(text at {rendered / natural:.0%} of its size): draw it narrower"
                )
        if "Traceback (most recent call last)" in text or any(
            "traceback" in c for c in doc.classes
        ):
            problems.append(f"{name}: a notebook error cell")
        assert (shots / f"{page.stem}.png").is_file(), f"no screenshot of {name}"
    for page, doc in parsed.items():
        for href in doc.links:
            target, fragment = local_target(page, href)
            if target is None:
                continue
            if not target.exists():
                problems.append(f"{page.relative_to(html)}: broken link {href}")
            elif fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else set()
                if target in parsed and fragment not in ids:
                    problems.append(f"{page.relative_to(html)}: link {href} to a missing anchor")
    assert not problems, "\n".join(problems)
