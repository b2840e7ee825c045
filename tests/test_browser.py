"""The rendered book as a reader sees it: every page opened in headless Chromium.

Fails on a missing image, a broken internal link, TeX left unrendered after MathJax ran, or a
notebook error cell, and saves a screenshot of every page to <book>/screenshots/. Needs Debian's
chromium (``apt-get install chromium``); .ci/run installs it. Outside CI the test is skipped,
with that message, when no Chromium is found.
"""

import os
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
SKIPPED_TEXT = {"script", "style", "pre", "code", "mjx-assistive-mml", "textarea"}


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
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in SKIPPED_TEXT:
            self._skip += 1
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if attrs.get("class"):
            self.classes.append(attrs["class"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in SKIPPED_TEXT and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def render(browser: str, page: Path, screenshot: Path) -> str:
    """The DOM after scripts (MathJax) ran; also saves a screenshot."""
    profile = tempfile.mkdtemp()
    url = page.as_uri()
    dom = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
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
