"""The rendered book as a reader sees it: every page opened in headless Chromium.

Fails on a missing image, a broken internal link, TeX left unrendered after MathJax ran (the
MathJax delimiters, or a TeX command such as ``\\emph`` or ``\\cite`` in the visible text
outside math and code), Markdown left unparsed in the visible text (a table's delimiter row such
as ``| --- |``, or a ``$...$`` pair: what a cell prints as Markdown is parsed as MyST, tables and
math included), a figure or table caption broken into a block quote (a wrapped caption line that
starts with ``>``), a solution whose title links away instead of opening it, a notebook error
cell, a figure whose text the page shrinks to
unreadable size, a code cell's input or output whose lines its box cuts at the right at 1280 px
(they must wrap), an image whose alt text is missing or a file hash, a table wider than its
container, a page wider than the window (at 1280 px, and at 414 px, a phone, where nothing may
make the page pan sideways), a page that logs a console error, and a chapter missing from the
"next" path; saves a screenshot of every page to <book>/screenshots/ (both widths).

Figure size: the book's figures are PNGs rendered at 2x by matplotlib at 100 dpi
(``topobook.plotting.use_book_style``), with their display size set (``style="width: ..px"``): a
figure ``w`` inches wide is meant to be shown ``100 w`` CSS pixels wide, and the page shows it
at most as wide as the content column (``max-width: 100%``). The test loads a copy of each page
in a window 1280 px wide with one small script first in ``<head>``, which records every console
error, uncaught exception and failed resource load, and one before ``</body>``, which defines
the measurements. Once the page has loaded and MathJax has typeset (``SETTLE``), the test calls
them: each image's intended width (its ``width`` attribute, else its natural width), its
rendered width (``getBoundingClientRect``) and its alt text, and each table's width against its
container's. It fails where intended / rendered > MAX_SHRINK (the figure's 10-11 pt text is
shown below half its size). Images that are not displayed (rendered width 0, for example inside
a collapsed solution) are not judged. The page is then loaded again in a window 414 px wide.

Chromium is driven over its DevTools protocol (``--remote-debugging-pipe``): one browser per
worker renders every page of its share at both widths, where a browser launched per page and
width spent most of the test's time starting up (measured on the CI profile's book, 2 cores:
195 s with a launch per render, 72 s with one browser per worker).

Needs Debian's chromium (``apt-get install chromium``); .ci/run installs it. Outside CI the
test is skipped, with that message, when no Chromium is found.
"""

import base64
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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
    # overlay scrollbars, as on a phone (and as Chromium's own --screenshot draws pages): a
    # classic 15 px scrollbar would narrow a 414 px window to 399 px of page
    "--hide-scrollbars",
]
COMMAND_TIMEOUT = 120  # s: the longest a DevTools command (a page load included) may take
SKIPPED_TEXT = {"script", "style", "pre", "code", "mjx-assistive-mml", "textarea", "mjx-container"}
SKIPPED_CLASSES = {"math", "highlight"}  # math (before MathJax ran) and code blocks
VOID_TAGS = set("area base br col embed hr img input link meta source track wbr".split())
RAW_TEX = re.compile(r"\\[A-Za-z]{2,}")  # a backslash and a TeX command name: \emph, \cite
# a Markdown table left as text: its delimiter row (| --- |, |:---|, | — | as some tables write it)
RAW_TABLE = re.compile(r"\|\s*:?(?:-{3,}|—+):?\s*\||\|-{3,}")
# a $...$ pair left as text: opening $ before a non-space, closing $ after one and not before a
# digit (the rule of MyST's dollarmath)
RAW_DOLLAR_MATH = re.compile(r"(?<![\\$])\$(?=\S)[^$]{1,200}?(?<=\S)\$(?![\d$])")
MAX_SHRINK = 2.0  # largest intended / rendered width of a figure
NARROW = 414  # px: the phone-sized window in which no page may be wider than the window
HASH_ALT = re.compile(r"^[0-9a-f]{16,}(\.\w+)?$")  # MyST-NB's file names: sha256 of the image
# first in <head>: every console error, uncaught exception and failed resource load of the page
ERRORS_SCRIPT = """<script>
window.__errors = [];
(function () {
  const record = (text) => window.__errors.push(String(text).slice(0, 300));
  const original = console.error;
  console.error = function (...args) { record(args.join(" ")); original.apply(console, args); };
  window.addEventListener("error", (event) => {
    const target = event.target;
    if (target && target !== window && (target.src || target.href)) {
      record("failed to load " + (target.src || target.href));
    } else {
      record(event.message + " (" + event.filename + ":" + event.lineno + ")");
    }
  }, true);
  window.addEventListener("unhandledrejection", (event) => record("unhandled: " + event.reason));
})();
</script>"""
# called by the test once the page has loaded and MathJax has typeset (SETTLE): sizes, alt
# texts, tables, written into the DOM as <meta> elements that the test parses
MEASURE_SCRIPT = r"""<script>
window.__measure = () => {
  for (const img of document.images) {
    img.setAttribute("data-natural-width", img.naturalWidth);
    // the display size the page sets (MyST-NB writes style="width: ...px"), else the image's own
    const styled = img.style.width.endsWith("px") ? parseFloat(img.style.width) : 0;
    img.setAttribute("data-intended-width",
                     styled || parseFloat(img.getAttribute("width")) || img.naturalWidth);
    img.setAttribute("data-rendered-width", Math.round(img.getBoundingClientRect().width));
  }
  const article = document.querySelector(".bd-article") || document.body;
  article.querySelectorAll("table").forEach((table, i) => {
    // wider than its box: it scrolls inside it (display: block), or it sticks out of it
    const limit = Math.min(table.parentElement.getBoundingClientRect().right,
                           article.getBoundingClientRect().right);
    const wider = Math.max(table.scrollWidth - table.clientWidth,
                           Math.round(table.getBoundingClientRect().right - limit));
    const row = document.createElement("meta");
    row.setAttribute("data-table-overflow", wider);
    row.setAttribute("data-table-index", i);
    const cells = Array.from(table.querySelectorAll("th, td")).slice(0, 4);
    row.setAttribute("data-table-head", cells.map((c) => c.textContent.trim()).join(" | "));
    document.body.appendChild(row);
  });
  // a caption broken into a block quote: a block quote just after a paragraph that opens a
  // figure or table caption (whose emphasis the quote cut off: "*Figure 1.8 — ... of")
  article.querySelectorAll("blockquote").forEach((quote) => {
    const before = quote.previousElementSibling;
    const lead = before && before.tagName === "P" ? before.textContent.trim() : "";
    if (/^\*?(Figures?|Tables?)\s+[0-9]/.test(lead)) {
      const broken = document.createElement("meta");
      broken.setAttribute("data-broken-caption", lead.slice(0, 60));
      document.body.appendChild(broken);
    }
  });
  // a code cell's input or output whose lines are cut at the right of its box (it scrolls):
  // by how many px, and the start of its longest line (boxes not displayed are not judged)
  let codeBoxes = 0;
  article.querySelectorAll(".cell_input pre, .cell_output pre").forEach((pre) => {
    codeBoxes += pre.clientWidth > 0;
    const cut = pre.scrollWidth - pre.clientWidth;
    if (cut > 1) {
      const lines = pre.textContent.split("\n");
      const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
      const row = document.createElement("meta");
      row.setAttribute("data-cut-code", cut);
      row.setAttribute("data-cut-line", longest.trim().slice(0, 60));
      document.body.appendChild(row);
    }
  });
  const page = document.createElement("meta");
  page.setAttribute("data-page-overflow",
                    document.documentElement.scrollWidth - document.documentElement.clientWidth);
  page.setAttribute("data-console-errors", JSON.stringify(window.__errors));
  page.setAttribute("data-code-boxes", codeBoxes);
  document.body.appendChild(page);
  return true;
};
</script>"""
# what the test awaits before it measures: the load event has fired (the test waits for it),
# MathJax's first typesetting (its startup promise, where the page has MathJax), the web fonts,
# and two animation frames (a layout and a paint after them)
SETTLE = """(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  return true;
})()"""
# px by which the page is wider than the window (read at the phone's width)
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


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
        self.sizes = []  # (src, intended width, rendered width) where the page recorded them
        self.alts = []  # (src, alt text or None) of every image
        self.tables = []  # (index, overflow in px, first text) where the page recorded them
        self.page_overflow = None  # px by which the page is wider than the window
        self.console_errors = None  # what the page logged (None: not recorded)
        self.broken_captions = []  # the start of each caption broken into a block quote
        self.cut_code = []  # (px cut, start of the longest line) of each code box cut at the right
        self.code_boxes = 0  # displayed code boxes (inputs and outputs of code cells) judged
        self.solution_title_links = []  # links in a solution's title (they leave, not open)
        self._solutions = 0  # open elements with class "solution"
        self._solution_title = 0  # open admonition titles inside a solution
        self._skip = 0
        # (tag, skips text, is a solution, is a solution's title) of the open elements
        self._open = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        skips = tag in SKIPPED_TEXT or bool(classes & SKIPPED_CLASSES)
        solution = "solution" in classes
        title = bool(self._solutions) and "admonition-title" in classes
        if tag not in VOID_TAGS:
            self._open.append((tag, skips, solution, title))
            self._skip += skips
            self._solutions += solution
            self._solution_title += title
        if tag == "a" and self._solution_title and attrs.get("href"):
            self.solution_title_links.append(attrs["href"])
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if attrs.get("class"):
            self.classes.append(attrs["class"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
            self.alts.append((attrs["src"], attrs.get("alt")))
            if "data-rendered-width" in attrs:
                self.sizes.append(
                    (
                        attrs["src"],
                        float(attrs["data-intended-width"]),
                        int(attrs["data-rendered-width"]),
                    )
                )
        if tag == "meta" and "data-table-overflow" in attrs:
            self.tables.append(
                (
                    int(attrs["data-table-index"]),
                    int(attrs["data-table-overflow"]),
                    attrs.get("data-table-head", ""),
                )
            )
        if tag == "meta" and "data-cut-code" in attrs:
            self.cut_code.append((int(attrs["data-cut-code"]), attrs.get("data-cut-line", "")))
        if tag == "meta" and "data-broken-caption" in attrs:
            self.broken_captions.append(attrs["data-broken-caption"])
        if tag == "meta" and "data-page-overflow" in attrs:
            self.page_overflow = int(attrs["data-page-overflow"])
            self.console_errors = json.loads(attrs["data-console-errors"])
            self.code_boxes = int(attrs.get("data-code-boxes", 0))

    def handle_endtag(self, tag):
        # close up to the matching open element (HTML allows omitted end tags)
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                for _, skips, solution, title in self._open[i:]:
                    self._skip -= skips
                    self._solutions -= solution
                    self._solution_title -= title
                del self._open[i:]
                break

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


class Chromium:
    """One headless Chromium, driven over the DevTools protocol on a pipe
    (``--remote-debugging-pipe``: commands on its file descriptor 3, answers and events on 4,
    each a JSON message ended by a NUL byte). One browser renders many pages: launching one per
    page and width cost about a second of CPU each (measured: 90 launches, 195 s for the CI
    book on 2 cores)."""

    def __init__(self, browser: str):
        self.profile = tempfile.mkdtemp()
        to_browser, self._commands = os.pipe()
        self._answers, from_browser = os.pipe()
        # bash puts the pipes on the descriptors Chromium reads and writes, then execs it (bash:
        # dash's redirections take one-digit descriptors only, and the second browser's are 10+)
        self.process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}', browser,
             *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
             "--window-size=1280,1600", "about:blank"],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._events, self._next_id = b"", [], 0

    def close(self) -> None:
        try:
            self.command("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        for fd in (self._commands, self._answers):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer within {COMMAND_TIMEOUT} s")
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe (it exited)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def command(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self._events.append(answer)

    def wait_for(self, event: str, session: str) -> dict:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            for i, message in enumerate(self._events):
                if message.get("method") == event and message.get("sessionId") == session:
                    return self._events.pop(i)
            self._events.append(self._message(deadline))

    def evaluate(self, session: str, expression: str):
        result = self.command("Runtime.evaluate", session, expression=expression,
                              awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def load(self, session: str, page: Path, width: int) -> None:
        """Load ``page`` in a window ``width`` x 1600 px and wait until it has settled (the
        load event, then :data:`SETTLE`)."""
        self.command("Emulation.setDeviceMetricsOverride", session, width=width, height=1600,
                     deviceScaleFactor=1, mobile=False)
        self.command("Page.navigate", session, url=page.as_uri())
        self.wait_for("Page.loadEventFired", session)
        self.evaluate(session, SETTLE)

    def screenshot(self, session: str, path: Path) -> None:
        data = self.command("Page.captureScreenshot", session, format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def render(self, page: Path, shots: Path) -> tuple[str, int]:
        """The DOM of ``page`` after its scripts (MathJax) ran, in a window 1280 px wide, with
        the <meta> elements of MEASURE_SCRIPT, from a copy of the page that records console
        errors (ERRORS_SCRIPT); and the px by which the page is wider than a :data:`NARROW` px
        window (the same page, loaded again at that width). Saves a screenshot at each width to
        ``shots``."""
        html = page.read_text(encoding="utf-8")
        head = html.find("<head>")
        if head >= 0:
            html = html[: head + 6] + ERRORS_SCRIPT + html[head + 6 :]
        end = html.rfind("</body>")
        # beside the page (same relative links)
        measured = page.with_name(f"{page.stem}.measure-sizes.html")
        measured.write_text(
            html[:end] + MEASURE_SCRIPT + html[end:] if end >= 0 else html + MEASURE_SCRIPT,
            encoding="utf-8",
        )
        target = self.command("Target.createTarget", url="about:blank")["targetId"]
        try:
            session = self.command("Target.attachToTarget", targetId=target,
                                   flatten=True)["sessionId"]
            self.command("Page.enable", session)
            self.load(session, measured, width=1280)
            self.evaluate(session, "window.__measure && window.__measure()")
            dom = self.evaluate(session, "document.documentElement.outerHTML")
            self.screenshot(session, shots / f"{page.stem}.png")
            # a phone: the same page loaded again in a narrow window (loaded, not resized: the
            # theme lays some elements out once, on load)
            self.load(session, measured, width=NARROW)
            narrow_overflow = self.evaluate(session, OVERFLOW)
            self.screenshot(session, shots / f"{page.stem}.{NARROW}px.png")
        finally:
            self.command("Target.closeTarget", targetId=target)
            measured.unlink(missing_ok=True)
        return dom, int(narrow_overflow)


def render_pages(browser: str, pages: list[Path], shots: Path, workers: int) -> dict:
    """``{page: (dom, px wider than a phone's window)}`` (:meth:`Chromium.render`), the pages
    dealt out to ``workers`` browsers that render side by side."""

    def render_share(share: list[Path]) -> dict:
        with Chromium(browser) as chromium:
            return {page: chromium.render(page, shots) for page in share}

    shares = [pages[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rendered = {}
        for part in pool.map(render_share, shares):
            rendered.update(part)
    return rendered


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
        if "_static" not in p.parts
        and p.name not in ("search.html", "genindex.html")
        and 'http-equiv="Refresh"' not in p.read_text(encoding="utf-8")[:300]  # a redirect
    )
    assert len(pages) >= 10
    problems = []
    parsed = {}
    tables_checked = code_boxes = 0
    doms = render_pages(browser, pages, shots, workers=max(1, min(2, os.cpu_count() or 1)))
    for page in pages:
        dom, narrow_overflow = doms[page]
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
        for pattern, what in ((RAW_TABLE, "a Markdown table"), (RAW_DOLLAR_MATH, "math")):
            for match in pattern.finditer(text):
                context = text[max(0, match.start() - 30) : match.end() + 30].replace("\n", " ")
                problems.append(
                    f"{name}: {what} left as text: {match.group()!r} in ...{context}... (Markdown "
                    "that a cell prints must be parsed as MyST: nb_render_markdown_format)"
                )
        problems.extend(
            f"{name}: the caption {lead!r}... is broken into a block quote: a wrapped line of it "
            "starts with '>'; wrap it elsewhere"
            for lead in doc.broken_captions
        )
        problems.extend(
            f"{name}: a solution's title links to {href} instead of opening the solution "
            "(sphinx-exercise's exercise_style: solution_follow_exercise)"
            for href in doc.solution_title_links
        )
        tables_checked += len(doc.tables)
        for src, intended, rendered in doc.sizes:
            if rendered > 0 and intended / rendered > MAX_SHRINK:
                problems.append(
                    f"{name}: figure {src} is meant to be {intended:.0f} px wide but is shown at "
                    f"{rendered} px (text at {rendered / intended:.0%} of its size): draw it "
                    "narrower"
                )
        for src, alt in doc.alts:
            stem = Path(urlsplit(src).path).name
            alt_name = Path(alt.strip()).name if alt else ""
            if not alt_name or HASH_ALT.match(alt_name) or alt_name == stem:
                problems.append(
                    f"{name}: image {src} has alt text {alt!r}, which does not say what it "
                    "shows: give the figure a caption or an alt text (mystnb.image.alt)"
                )
        for index, overflow, head in doc.tables:
            if overflow > 1:
                problems.append(
                    f"{name}: table {index + 1} ({head[:40]!r}...) is {overflow} px wider than "
                    "its container at 1280 px: fewer or narrower columns"
                )
        problems.extend(
            f"{name}: a code cell's box cuts {cut} px of its lines at 1280 px ({line!r}...): "
            "its lines must wrap (book/_static/topobook.css)"
            for cut, line in doc.cut_code
        )
        code_boxes += doc.code_boxes
        if doc.console_errors is None:
            problems.append(f"{name}: the page's measuring script did not run")
        else:
            problems.extend(f"{name}: console error: {e}" for e in doc.console_errors)
        if doc.page_overflow and doc.page_overflow > 1:
            problems.append(
                f"{name}: the page is {doc.page_overflow} px wider than the 1280 px window"
            )
        # a phone: the page must not pan sideways (tables and code blocks scroll in their boxes)
        if narrow_overflow > 1:
            problems.append(
                f"{name}: the page is {narrow_overflow} px wider than a {NARROW} px window "
                "(a long inline code or a wide element: wrap it or let it scroll in its box)"
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
    # shown with pytest -s
    print(f"checked {len(pages)} pages with {tables_checked} tables and {code_boxes} code boxes")
    assert not problems, "\n".join(problems)


def chapter_pages() -> list[str]:
    """The HTML pages of the "Chapters" part of book/_toc.yml, in order, after the landing
    page."""
    import yaml

    toc = yaml.safe_load((Path(__file__).resolve().parents[1] / "book" / "_toc.yml").read_text())
    parts = [p for p in toc["parts"] if p.get("caption") == "Chapters"]
    assert parts, 'book/_toc.yml has no part "Chapters"'
    pages = [f"{toc['root']}.html"]  # the landing page (index.html only redirects to it)
    for chapter in parts[0]["chapters"]:
        for entry in [chapter, *chapter.get("sections", [])]:
            pages.append(f"{entry['file']}.html")
    return pages


class NextLink(HTMLParser):
    """The target of the theme's "next" button (``a.right-next``) of a page."""

    def __init__(self):
        super().__init__()
        self.href = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "right-next" in (attrs.get("class") or "").split():
            self.href = attrs.get("href")


@pytest.mark.book
def test_next_path_goes_from_chapter_to_chapter(built_book):
    """From the landing page, "next" leads through every chapter in order: no chapter is
    missing from the path and no other page (a training run, a reference page) sits between
    two chapters. Read from the built HTML; no browser needed."""
    html = built_book / "_build" / "html"
    pages = chapter_pages()
    problems = []
    for page, following in zip(pages[:-1], pages[1:], strict=True):
        path = html / page
        if not path.is_file():
            problems.append(f"{page}: not built")
            continue
        link = NextLink()
        link.feed(path.read_text(encoding="utf-8"))
        target = (
            (path.parent / unquote(urlsplit(link.href).path)).resolve().relative_to(html.resolve())
            if link.href
            else None
        )
        if target is None or target.as_posix() != following:
            problems.append(
                f"{page}: 'next' goes to {target.as_posix() if target else 'nowhere'}, not to "
                f"the next chapter {following}"
            )
    assert not problems, "\n".join(problems)


def test_checks_of_unparsed_markdown_on_hand_made_text():
    """The patterns and the parser of the page test on hand-made input: a table's delimiter
    row and a $...$ pair left as text are found, prices and plain dashes are not; a link in a
    solution's title is found, one in its body is not."""
    for raw in ("| a | b |\n| --- | --- |", "| — | — |", "|---|---|", "| :--- | ---: |"):
        assert RAW_TABLE.search(raw), raw
    for fine in ("Table 8.1 — ours | theirs", "a - b", "x || y"):
        assert not RAW_TABLE.search(fine), fine
    for raw in ("the $H_1$ bars", "between $\\beta_0$ and", "$x$"):
        assert RAW_DOLLAR_MATH.search(raw), raw
    for fine in ("costs $5 and $6", "a $ sign", "$ 3 $"):
        assert not RAW_DOLLAR_MATH.search(fine), fine
    doc = Page()
    doc.feed(
        '<div class="solution dropdown admonition"><p class="admonition-title">Solution to'
        '<a href="#ex-1"> Exercise 1</a></p><section><a href="#other">see</a></section></div>'
        '<div class="exercise admonition"><p class="admonition-title">Exercise 2'
        '<a href="#x">#</a></p></div><meta data-broken-caption="*Figure 1.8 — the label">'
        '<meta data-cut-code="37" data-cut-line="figure = plotting.overview_figure(">'
    )
    assert doc.solution_title_links == ["#ex-1"]
    assert doc.broken_captions == ["*Figure 1.8 — the label"]
    assert doc.cut_code == [(37, "figure = plotting.overview_figure(")]
