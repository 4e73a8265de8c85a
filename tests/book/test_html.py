"""The HTML book: built strictly (``-n -W``, as ``make html`` does) from the smoke chapters, then as a reader
gets it: every page opened in headless Chromium from a local server.

A page fails on: a load that does not succeed, a console error or uncaught exception, a local resource
that does not load (script, stylesheet, image, font), or an image that is missing or empty (no pixels,
or every pixel the same colour). Then what a reader does: every internal link and anchor of every page is
followed over HTTP and fails on a 404; the header's download button serves the notebook and its Colab and
repository buttons point at the repository of ``_config.yml``; every formula is typeset by the book's own
MathJax (no raw TeX left, no MathJax error); at 1400 px no code cell or table is wider than the column and no
display equation is cut off; at 420 px (a phone) the page does not scroll sideways and every claims table
keeps its status column on screen. Full-page PNG screenshots of every book page (1400 px) and of every chapter
and the scorecard at 420 px are kept in ``build/screenshots/`` (``TRADEOFFS_SCREENSHOTS`` moves it; CI keeps
it as an artifact).

The pages come from the smoke book built once (``smoke_book``, ``built_book``: tests/conftest.py),
so nothing is executed twice; ``TRADEOFFS_HTML=_build/html`` checks an existing build instead
(``make check-html``). Chromium is driven over its DevTools protocol on a pipe (``--remote-debugging-pipe``),
no extra package. Without a Chromium the browser tests are skipped with the command to install one.
Requests to other hosts are refused, so the test sees the book as a reader without a network does, and a page
fails if it asks for anything from another host (MathJax and the Colab badge are served by the build).

Also here, without a browser: the Scorecard and Environment pages are complete, Colab links point at
the committed notebooks, and every widget output has a static fallback (the page generators on made-up
records: test_pages.py).
"""

from __future__ import annotations

import base64
import functools
import html
import http.server
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urljoin, urlsplit
from urllib.request import urlopen

import nbformat
import pytest
from tradeoffs.book import claims, pages, profiles, repository

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = list(profiles.CHAPTERS)
HTML_ENV, SHOTS_ENV, CHROMIUM_ENV = "TRADEOFFS_HTML", "TRADEOFFS_SCREENSHOTS", "CHROMIUM"
CHROMIUM = os.environ.get(CHROMIUM_ENV) or next(
    (path for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
     if (path := shutil.which(name))), None)
NO_CHROMIUM = ("no Chromium found: install it (Debian/Ubuntu: `sudo apt-get install -y chromium`; "
               f".ci/run does) or point ${CHROMIUM_ENV} at a Chrome/Chromium binary")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
IGNORED_PATHS = {"/favicon.ico"}  # the browser asks for it by itself; the book has none
pytestmark = pytest.mark.chapter


# -- the pages under test ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(request):
    """(HTML root, results dir, executed chapters dir): $TRADEOFFS_HTML's book, or the smoke book built
    once."""
    given = os.environ.get(HTML_ENV)
    if given:
        html_root = Path(given).resolve()
        assert (html_root
                / "index.html").exists(), f"${HTML_ENV}={given} has no index.html: run `make html` first"
        return html_root, claims.results_dir(), ROOT / "book" / "chapters"
    (out, _), (site_dir,
               result) = request.getfixturevalue("smoke_book"), request.getfixturevalue("built_book")
    assert result.returncode == 0, ("the book does not build (see test_book_builds_without_warnings):\n"
                                    + result.stderr[-3000:])
    return site_dir / "_build" / "html", out / "_results", out / "chapters"


def html_pages(html_root: Path) -> list[str]:
    """Every page of the built book, relative to the root (not the theme's templates under _static)."""
    return sorted(p.relative_to(html_root).as_posix() for p in html_root.rglob("*.html")
                  if not p.relative_to(html_root).parts[0].startswith("_"))


def text_of(page: Path) -> str:
    """A page's text: tags dropped, entities decoded, white space collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def records(results: Path) -> list[dict]:
    return [claims.load_record(p) for p in sorted(results.glob("*.json")) if not p.name.endswith(".run.json")]


# -- the build ------------------------------------------------------------------------------------


def test_book_builds_without_warnings(built_book):
    site, result = built_book  # tests/conftest.py: built once from smoke_book, as `make html` builds
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    page = (site / "_build" / "html" / "book" / "chapters" / f"{CHAPTERS[0]}.html").read_text()
    colab = "colab.research.google.com/github/tradeoffs-book/tradeoffs/blob/main/notebooks"
    assert f"{colab}/{CHAPTERS[0]}.ipynb" in page
    assert "book/chapters/" not in page.split("colab.research.google.com", 1)[1].split('"', 1)[0]
    assert "reproduced" in (site / "_build" / "html" / "book" / "scorecard.html").read_text()


# -- a minimal DevTools-protocol client ---------------------------------------------------------------


class Chromium:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (commands on fd 3, replies on fd 4)."""

    def __init__(self, binary: str, profile: Path):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()

        def child_fds():  # in the child, before exec: the pipe ends go to fds 3 and 4 (dup2 clears CLOEXEC)
            read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.log = (profile / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--mute-audio", "--hide-scrollbars", "--force-color-profile=srgb",
             f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
             "about:blank"],
            preexec_fn=child_fds, close_fds=False, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)
        self._out = os.fdopen(to_chrome_w, "wb", buffering=0)
        self._in = os.fdopen(from_chrome_r, "rb", buffering=0)
        self._messages: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self._id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buffer = b""
        while chunk := self._in.read(1 << 16):
            *messages, buffer = (buffer + chunk).split(b"\0")
            for message in messages:
                self._messages.put(json.loads(message))
        self._messages.put(None)  # Chromium closed the pipe

    def _next(self, deadline: float) -> dict:
        try:
            message = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("Chromium did not answer in time") from None
        if message is None:
            raise RuntimeError(f"Chromium exited (code {self.proc.poll()}); its log: {self.log.name}")
        return message

    def send(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        """Send one command and wait for its reply; events that arrive meanwhile go to `events`."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while (reply := self._next(deadline)).get("id") != self._id:
            self.events.append(reply)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        return reply["result"]

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        """The first event `method` not waited for yet (it is taken out of `events`)."""
        deadline = time.monotonic() + timeout
        while (event := self.take(method)) is None:
            self.events.append(self._next(deadline))
        return event

    def take(self, method: str) -> dict | None:
        """The first event `method` received and not waited for yet, or None (does not wait)."""
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        return None

    def settle(self, seconds: float) -> None:
        """Collect the events of the next `seconds` (late console messages)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.events.append(self._next(deadline))
            except TimeoutError:
                return

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
            self.proc.wait(10)
        except (RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Tab:
    """One page target with the Page, Runtime, Log and Network domains on."""

    def __init__(self, browser: Chromium, width: int = 1400, height: int = 900):
        self.browser, self.width, self.height = browser, width, height
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def send(self, method: str, **params) -> dict:
        return self.browser.send(method, session=self.session, **params)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> list[str]:
        """Load `url` and wait for its images; return what went wrong (empty: a clean load)."""
        self.browser.settle(0)
        self.browser.events.clear()
        navigation = self.send("Page.navigate", url=url)
        if navigation.get("errorText"):
            return [f"the page did not load: {navigation['errorText']}"]
        self.browser.wait_for("Page.frameStartedLoading")
        for _ in range(3):  # a page that redirects (index.html) starts loading again after its load
            self.browser.wait_for("Page.loadEventFired")
            try:
                self.evaluate(WAIT_FOR_IMAGES)
            except RuntimeError as error:
                if "navigated" not in str(error):
                    raise
            self.browser.settle(0.3)
            if self.browser.take("Page.frameStartedLoading") is None:
                break
        return self.problems(url) + self.image_problems()

    def problems(self, url: str) -> list[str]:
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))

        def local(address: str) -> bool:
            return address.startswith(origin) and urlsplit(address).path not in IGNORED_PATHS

        found, requests = [], {}
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            method, params = event["method"], event["params"]
            if method == "Network.requestWillBeSent":
                requests[params["requestId"]] = address = params["request"]["url"]
                if urlsplit(address).scheme in ("http", "https") and not address.startswith(origin):
                    found.append(f"loads from another host (not offline): {address}")
            elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
                if local(params["response"]["url"]):
                    found.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                address = requests.get(params["requestId"], "?")
                if local(address):
                    found.append(f"failed to load {address}: {params['errorText']}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                description = details.get("exception", {}).get("description") or details.get("text")
                found.append("uncaught exception at "
                             f"{details.get('url', '?')}:{details.get('lineNumber', 0) + 1}: {description}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                          for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                if entry.get("source") == "network" and not local(entry.get("url", origin)):
                    continue  # another host, refused on purpose (see the module docstring); or the favicon
                if entry.get("source") == "network" and any(entry.get("url", "") in f for f in found):
                    continue  # already reported from the Network domain
                found.append(f"console ({entry['source']}): {entry['text']} {entry.get('url', '')}".rstrip())
        return list(dict.fromkeys(found))

    def image_problems(self) -> list[str]:
        return [f"image {'not loaded' if not i['width'] else 'blank (one colour)'}: {i['src']}"
                for i in self.evaluate(IMAGES) if i["local"] and (not i["width"] or i["blank"])]

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page: the viewport is stretched to the page's height for the shot.

        (``captureBeyondViewport`` alone leaves pages with wide tables scrolled sideways.)"""
        height = self.send("Page.getLayoutMetrics")["cssContentSize"]["height"]
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=int(height),
                  deviceScaleFactor=1, mobile=False)
        try:
            self.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
            shot = self.send("Page.captureScreenshot", format="png", optimizeForSpeed=True)
        finally:
            self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                      deviceScaleFactor=1, mobile=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


WAIT_FOR_IMAGES = """(async () => {
  for (const img of document.images) img.loading = "eager";
  await Promise.all(Array.from(document.images, img => img.decode().catch(() => null)));
  await document.fonts.ready;
  await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
})()"""

IMAGES = """Array.from(document.images, img => {
  const local = new URL(img.currentSrc || img.src, location.href).origin === location.origin;
  let blank = false;
  if (local && img.naturalWidth > 0) {  // one colour everywhere: an empty figure
    const canvas = document.createElement("canvas");
    canvas.width = Math.min(img.naturalWidth, 400);
    canvas.height = Math.max(1, Math.round(img.naturalHeight * canvas.width / img.naturalWidth));
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0, canvas.width, canvas.height);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    blank = true;
    for (let i = 4; i < pixels.length && blank; i += 4)
      if (pixels[i] !== pixels[0] || pixels[i + 1] !== pixels[1] || pixels[i + 2] !== pixels[2]
          || pixels[i + 3] !== pixels[3]) blank = false;
  }
  return {src: img.currentSrc || img.src, local, width: img.naturalWidth, blank};
})"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reports failures itself
        pass


@pytest.fixture(scope="module")
def server(site):
    """The built HTML served over HTTP on a free local port, as a reader's browser gets it."""
    handler = functools.partial(QuietHandler, directory=str(site[0]))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    profile = Path(tempfile.mkdtemp(prefix="tradeoffs-chromium-"))
    chromium = Chromium(CHROMIUM, profile)
    try:
        yield chromium
    finally:
        chromium.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def tab(browser):
    """A desktop window, 1400 px wide."""
    return Tab(browser, width=1400)


@pytest.fixture(scope="module")
def phone(browser):
    """A phone's width, 420 px."""
    return Tab(browser, width=420, height=860)


def screenshots() -> Path:
    return Path(os.environ.get(SHOTS_ENV, ROOT / "build" / "screenshots"))


def shot_name(page: str, suffix: str = "") -> str:
    return page.removeprefix("book/").replace("/", "__").removesuffix(".html") + suffix + ".png"


# -- in the browser ---------------------------------------------------------------------------------


@needs_chromium
def test_every_page_loads_cleanly_and_chapters_have_figures(site, server, tab):
    html_root = site[0]
    shots = screenshots()
    for old in shots.glob("*.png"):
        old.unlink()
    problems = {}
    for page in html_pages(html_root):
        found = tab.open(server + page)
        if page.startswith("book/chapters/"):
            figures = tab.evaluate("Array.from(document.images).filter(i => "
                                   "i.src.includes('/_images/')).length")
            if not figures:
                found.append("a chapter without a single figure image")
        if page.startswith("book/"):
            tab.screenshot(shots / shot_name(page))
        if found:
            problems[page] = found
    assert html_pages(html_root), f"no pages in {html_root}"
    assert not problems, "pages with problems:\n" + "\n".join(
        f"  {page}:\n" + "\n".join(f"    - {p}" for p in found) for page, found in problems.items())
    assert {p.stem for p in shots.glob("*.png")} >= {f"chapters__{n}" for n in chapter_pages(html_root)}


@needs_chromium
def test_the_check_sees_a_broken_page(site, server, tab):
    """The browser check is not vacuous: a missing page, a script error, a missing and an empty image, and an
    image from another host fail."""
    html_root = site[0]
    broken = html_root / "_test_broken.html"
    (html_root / "_test_empty.png").write_bytes(b"")
    broken.write_text('<html><body><img src="_test_missing.png"><img src="_test_empty.png">'
                      '<img src="https://example.org/badge.svg">'
                      '<script>console.error("boom"); undefined_function();</script></body></html>')
    try:
        found = "\n".join(tab.open(server + broken.name))
        assert "_test_missing.png" in found and "_test_empty.png" in found
        assert "console.error: boom" in found and "undefined_function" in found
        assert "loads from another host (not offline): https://example.org/badge.svg" in found
        assert "HTTP 404" in "\n".join(tab.open(server + "no_such_page.html"))
    finally:
        broken.unlink()
        (html_root / "_test_empty.png").unlink()


@needs_chromium
def test_scorecard_filters_claims_by_status(site, server, tab):
    html_root, results, _ = site
    all_claims = [c for r in records(results) for c in r["claims"]]
    counts = {s: sum(c["status"] == s for c in all_claims) for s in claims.STATUSES}
    tab.open(server + "book/scorecard.html")
    visible = """Array.from(document.querySelectorAll("tr[data-status]"))
                   .filter(tr => tr.offsetParent !== null).map(tr => tr.dataset.status)"""
    buttons = tab.evaluate("Array.from(document.querySelectorAll('.claims-filter-button[data-status]'), "
                           "b => b.textContent)")
    labels = [f"{s.replace('-', ' ')} ({counts[s]})" for s in claims.STATUSES]
    assert buttons == [f"all ({len(all_claims)})", *labels]
    assert sorted(tab.evaluate(visible)) == sorted(c["status"] for c in all_claims)
    for status in (*claims.STATUSES, "all"):
        tab.evaluate(f"document.querySelector('.claims-filter-button[data-status=\"{status}\"]').click()")
        shown = tab.evaluate(visible)
        expected = len(all_claims) if status == "all" else counts[status]
        assert len(shown) == expected and (status == "all" or set(shown) <= {status}), (status, shown)
        assert tab.evaluate("document.querySelector('.claims-filter-empty').hidden") == (expected > 0)
    assert tab.open(server + "book/scorecard.html?status=differs") == []
    assert tab.evaluate(visible) == ["differs"] * counts["differs"]
    for kind in claims.KINDS:  # the kind buttons narrow the status chosen (still "differs")
        tab.evaluate(f"document.querySelector('.claims-filter-button[data-kind=\"{kind}\"]').click()")
        shown = tab.evaluate(visible.replace("dataset.status", "dataset.kind"))
        expected = [c for c in all_claims if c["kind"] == kind and c["status"] == "differs"]
        assert shown == [kind] * len(expected), (kind, shown)


MATH = """(async () => {
  const loaded = Boolean(window.MathJax && MathJax.startup);  // Sphinx loads MathJax only on pages with math
  if (loaded) await MathJax.startup.promise;
  const article = document.querySelector(".bd-article") || document.body;
  const prose = article.cloneNode(true);
  const rawTex = /\\$\\$|\\\\\\(|\\\\\\)|\\\\\\[|\\\\\\]|\\\\begin\\{/g;
  prose.querySelectorAll("pre, code, script, style, mjx-container, mjx-assistive-mml")
    .forEach(e => e.remove());
  const scripts = Array.from(document.scripts, s => s.src).filter(src => /mathjax/i.test(src));
  return {loaded, version: loaded && MathJax.version, scripts,
          local: scripts.every(src => src.startsWith(location.origin)),
          formulas: article.querySelectorAll("mjx-container").length,
          errors: Array.from(article.querySelectorAll("mjx-merror"), e => e.textContent.slice(0, 80)),
          raw: (prose.textContent.match(rawTex) || []).length};
})()"""

VISIBLE_SEARCH_FIELDS = """Array.from(document.querySelectorAll(".search-button-field, form.bd-search"))
  .filter(e => e.offsetParent !== null && e.getBoundingClientRect().width > 0).length"""

OVERFLOW = """(() => {
  const found = [];
  const describe = e => e.tagName.toLowerCase() + (e.className ? "." + String(e.className).split(" ")[0] : "")
    + ": " + e.textContent.trim().slice(0, 60).replace(/\\s+/g, " ");
  const article = document.querySelector(".bd-article");
  if (!article) return found;
  const right = article.getBoundingClientRect().right;
  article.querySelectorAll("pre, table, .pst-scrollable-table-container, div.cell_output").forEach(e => {
    if (e.offsetParent === null) return;
    if (e.scrollWidth > e.clientWidth + 1)
      found.push(`scrolls sideways (${e.scrollWidth} > ${e.clientWidth} px): ${describe(e)}`);
    else if (e.getBoundingClientRect().right > right + 1) found.push(`wider than the column: ${describe(e)}`);
  });
  article.querySelectorAll('mjx-container[display="true"]').forEach(e => {
    const scrolls = ["auto", "scroll"].includes(getComputedStyle(e).overflowX);
    if (e.scrollWidth > e.clientWidth + 1 && !scrolls) found.push(`display equation cut off: ${describe(e)}`);
    if (!scrolls && e.getBoundingClientRect().right > right + 1)
      found.push(`display equation cut off: ${describe(e)}`);
  });
  return found;
})()"""

PHONE = """(() => {
  const found = [];
  if (document.documentElement.scrollWidth > innerWidth + 1)
    found.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px > ${innerWidth} px`);
  let rows = 0;
  document.querySelectorAll(".bd-article table").forEach(table => {
    const head = Array.from(table.querySelectorAll("thead th"), th => th.textContent.trim().toLowerCase());
    const column = head.indexOf("status");
    if (column < 0) return;
    table.querySelectorAll("tbody tr").forEach(tr => {
      if (tr.offsetParent === null) return;
      rows += 1;
      const cell = tr.children[column], box = cell && cell.getBoundingClientRect();
      const where = box ? `${Math.round(box.left)}-${Math.round(box.right)}` : "no cell";
      if (!box || box.width < 1 || box.left < -0.5 || box.right > innerWidth + 0.5)
        found.push(`status off screen (${where} px): `
                   + tr.textContent.trim().slice(0, 60).replace(/\\s+/g, " "));
    });
  });
  return {found, rows};
})()"""


def reader_pages(html_root: Path) -> list[str]:
    """The pages a reader reads: the book's own (not search, the index or the theme's templates)."""
    return [p for p in html_pages(html_root) if p.startswith("book/")]


@needs_chromium
def test_formulas_render_with_the_books_own_mathjax(site, server, tab):
    problems, typeset = {}, 0
    for page in reader_pages(site[0]):
        found = tab.open(server + page)
        math = tab.evaluate(MATH)
        typeset += math["formulas"]
        if math["loaded"] and not math["local"]:
            found.append(f"MathJax is not served by the book: {math['scripts']}")
        if math["errors"]:
            found.append(f"MathJax errors: {math['errors']}")
        if math["raw"]:
            found.append(f"{math['raw']} raw TeX delimiters left in the text")
        if page.startswith("book/chapters/") and not (math["loaded"] and math["formulas"]):
            found.append("a chapter without a single typeset formula")
        if found:
            problems[page] = found
    assert not problems, "\n".join(f"{page}: {found}" for page, found in problems.items())
    assert typeset > 50, f"only {typeset} formulas typeset in the whole book"


@needs_chromium
def test_the_math_check_sees_raw_tex_and_errors(site, server, tab):
    """Not vacuous: a page whose formula does not typeset, and one with TeX MathJax rejects, fail."""
    html_root = site[0]
    head = (html_root / "book" / "intro.html").read_text()
    config = re.search(r"<script>window\.MathJax = .*?</script>", head)
    script = re.search(r'<script[^>]*src="[^"]*mathjax/tex-chtml\.js[^"]*"[^>]*>\s*</script>', head)
    assert config and script, "the intro does not load the book's MathJax"
    mathjax = script[0].replace('src="../', 'src="')  # the test page is at the root, the intro one level down
    broken = html_root / "_test_math.html"
    broken.write_text(f'<html><head>{config[0]}{mathjax}</head><body>'
                      '<div class="bd-article"><p class="math">\\(x^2\\) and \\(\\frac{1}\\)</p>'
                      '<section class="tex2jax_ignore mathjax_ignore"><p>$$ x^2 '
                      '$$</p></section></div></body></html>')
    try:
        tab.open(server + broken.name)
        math = tab.evaluate(MATH)
        assert math["loaded"] and math["formulas"] >= 1
        assert math["errors"], "a TeX error was not reported"
        assert math["raw"] >= 2, "unrendered $$ ... $$ was not seen"
    finally:
        broken.unlink()


@needs_chromium
def test_nothing_is_wider_than_the_column_at_1400px(site, server, tab):
    problems = {}
    for page in reader_pages(site[0]):
        found = tab.open(server + page)
        tab.evaluate(MATH)
        found += tab.evaluate(OVERFLOW)
        visible = tab.evaluate(VISIBLE_SEARCH_FIELDS)
        if visible != 1:
            found.append(f"{visible} search fields on the page (one is enough)")
        if found:
            problems[page] = found
    assert not problems, "\n".join(f"{page}:\n  " + "\n  ".join(found) for page, found in problems.items())


@needs_chromium
def test_claims_tables_keep_their_status_on_a_phone(site, server, phone):
    html_root, shots = site[0], screenshots()
    problems, rows = {}, 0
    for page in reader_pages(html_root):
        found = phone.open(server + page)
        phone.evaluate(MATH)
        layout = phone.evaluate(PHONE)
        rows += layout["rows"]
        if page.startswith("book/chapters/") or page == "book/scorecard.html":
            phone.screenshot(shots / shot_name(page, "-420"))
        if found + layout["found"]:
            problems[page] = found + layout["found"]
    assert not problems, "\n".join(f"{page}:\n  " + "\n  ".join(found) for page, found in problems.items())
    assert rows, "no claims table rows found: the check would pass on any page"


# -- in the HTML, without a browser -----------------------------------------------------------------


def chapter_pages(html_root: Path) -> list[str]:
    return sorted(p.stem for p in (html_root / "book" / "chapters").glob("[0-9][0-9]_*.html"))


def test_scorecard_lists_every_claim_of_every_chapter(site):
    html_root, results, _ = site
    text = text_of(html_root / "book" / "scorecard.html")
    recs = records(results)
    recorded, pages_ = {r["chapter"] for r in recs}, set(chapter_pages(html_root))
    assert recorded == pages_, f"chapter pages without a claims record: {sorted(pages_ - recorded)}; " \
                               f"claims records without a chapter page: {sorted(recorded - pages_)}"
    for record in recs:
        counts = ", ".join(f"{sum(c['status'] == s for c in record['claims'])} {s.replace('-', ' ')}"
                           for s in claims.STATUSES)
        assert f"{len(record['claims'])} claims ({counts})" in text
        missing = [c["id"] for c in record["claims"] if c["id"] not in text]
        assert not missing, f"{record['chapter']}: claims not on the scorecard: {missing}"
    raw = (html_root / "book" / "scorecard.html").read_text()
    assert 'id="claims-filter"' in raw and "scorecard.js" in raw
    assert not re.search(r"<(tr|section|table)\b[^>]*\bhidden\b", raw), "content hidden without JS"


def test_status_page_has_versions_device_profile_time_and_memory(site):
    html_root, results, _ = site
    text = text_of(html_root / "book" / "status.html")
    runs = [json.loads(p.read_text()) for p in sorted(results.glob("*.run.json"))]
    assert runs
    for run in runs:
        row = re.search(re.escape(run["finished_at"]), text)
        assert row, f"{run['chapter']} is not on the status page"
        assert f"{run['peak_memory_mb']:.0f} MB" in text
        assert pages._duration(run["wall_seconds"]) in text
    total = pages._duration(sum(r["wall_seconds"] for r in runs))
    assert f"Executed chapters: {len(runs)}, {total} in total" in text
    for package, version in runs[-1]["environment"]["versions"].items():
        assert f"{package} {version}" in text
    assert "device" in text and "profile" in text


def test_colab_links_point_at_the_committed_notebooks(site):
    """Every Colab link of a chapter (header button and badge) opens that chapter's committed notebook in the
    repository of _config.yml, and the badge image is served by the book."""
    html_root, repo = site[0], repository.read()
    for name in chapter_pages(html_root):
        page = (html_root / "book" / "chapters" / f"{name}.html").read_text()
        links = set(re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page))
        assert links == {repo.colab_url(f"notebooks/{name}.ipynb")}, f"{name}: {links}"
        assert (ROOT / "notebooks" / f"{name}.ipynb").exists()
        badges = re.findall(r'<img alt="Open In Colab" src="([^"]+)"', page)
        assert badges and all("://" not in src
                              for src in badges), f"{name}: the badge image is not local: {badges}"


LINK_ATTRIBUTES = {"a": "href", "link": "href", "script": "src", "img": "src", "source": "src",
                   "iframe": "src"}


class Links(HTMLParser):
    """The addresses a page links to or loads (a, link, script, img, source, iframe) and the ids it
    defines."""

    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        address = attrs.get(LINK_ATTRIBUTES.get(tag, ""))
        if address:
            self.links.append((tag, address))


def parse(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urlopen(url, timeout=30) as response:  # a local server (the `server` fixture) only
            return response.status, response.read()
    except HTTPError as error:
        return error.code, b""


def broken_links(html_root: Path, server: str, page_names: list[str]) -> tuple[int, list[str]]:
    """Follow every internal link and anchor of `page_names` over HTTP: (links followed, what is broken)."""
    checked, ids, broken = {}, {}, []
    followed = 0
    for page in page_names:
        base = server + page
        for tag, address in parse(html_root / page).links:
            parts = urlsplit(address)
            if parts.scheme in ("mailto", "javascript", "data") or (parts.scheme or parts.netloc) and \
                    not urljoin(base, address).startswith(server):
                continue
            url = urljoin(base, address)
            target = url.split("#", 1)[0].split("?", 1)[0]
            followed += 1
            if target not in checked:
                checked[target] = fetch(target)[0]
            if checked[target] != 200:
                broken.append(f"{page}: <{tag}> {address} -> HTTP {checked[target]}")
                continue
            fragment = urlsplit(url).fragment
            if fragment and target.endswith(".html"):
                local = html_root / urlsplit(target).path.removeprefix("/")
                if local not in ids:
                    ids[local] = parse(local).ids
                if fragment not in ids[local]:
                    broken.append(f"{page}: <{tag}> {address} -> no id {fragment!r} in {local.name}")
    return followed, broken


def test_every_internal_link_resolves(site, server):
    html_root = site[0]
    followed, broken = broken_links(html_root, server, html_pages(html_root))
    print(f"followed {followed} internal links and anchors on {len(html_pages(html_root))} pages")
    assert not broken, f"{len(broken)} of {followed} internal links are broken:\n  " + "\n  ".join(broken)
    assert followed > 100 * len(chapter_pages(html_root)) // 5, f"only {followed} internal links found"


def test_the_link_check_sees_a_broken_link_and_anchor(site, server):
    html_root = site[0]
    page = html_root / "_test_links.html"
    page.write_text('<a href="book/intro.html">ok</a><a href="no_such_page.html">gone</a>'
                    '<a href="book/intro.html#no-such-section">missing anchor</a><img src="_images/none.png">'
                    '<a href="https://example.org/elsewhere">another host, not followed</a>')
    try:
        followed, broken = broken_links(html_root, server, [page.name])
    finally:
        page.unlink()
    assert followed == 4
    assert [b.split(" -> ")[0].split("> ")[1] for b in broken] == [
        "no_such_page.html", "book/intro.html#no-such-section", "_images/none.png"]


def header_links(page_html: str) -> list[str]:
    header = re.search(r'<div class="article-header-buttons">(.*?)</div>\s*</div>\s*</div>', page_html,
                       re.DOTALL)
    assert header, "the page has no header buttons"
    return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', header[1])]


def test_header_buttons_download_the_notebook_and_open_the_repository_and_colab(site, server):
    html_root, repo = site[0], repository.read()
    for name in chapter_pages(html_root):
        page = f"book/chapters/{name}.html"
        links = header_links((html_root / page).read_text())
        downloads = [link for link in links if link.endswith(".ipynb") and "://" not in link]
        assert downloads, f"{name}: no .ipynb download button in {links}"
        for link in downloads:
            status, body = fetch(urljoin(server + page, link))
            assert status == 200, f"{name}: the download button {link} answers HTTP {status}"
            notebook = nbformat.reads(body.decode(), as_version=4)
            assert notebook.cells and name.split("_", 1)[1].split("_")[0] in notebook.cells[0].source.lower()
        colab = [link for link in links if link.startswith(repository.COLAB)]
        assert colab == [repo.colab_url(f"notebooks/{name}.ipynb")], (name, colab)
        assert (ROOT / "notebooks" / f"{name}.ipynb").exists()
        assert repo.url in links, f"{name}: no repository button pointing at {repo.url}"


def test_every_widget_has_a_static_fallback(site):
    """A widget output shows nothing without a live kernel: it must carry an image or HTML beside it."""
    chapters_dir = site[2]
    notebooks = sorted(chapters_dir.glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    for path in notebooks:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "application/vnd.jupyter.widget-view+json" in data:
                    assert {"image/png", "image/svg+xml", "text/html"} & set(data), (
                        f"{path.name} cell {i}: a widget with no static fallback (add a figure output)")


FIGURE = re.compile(r"<figure\b[^>]*>(.*?)</figure>", re.DOTALL)


def chapter_figures(page_html: str) -> tuple[list[str], list[str]]:
    """(figures, images outside a figure) of a chapter page; the Colab badge is not a figure."""
    figures = FIGURE.findall(page_html)
    outside = [img for img in re.findall(r"<img\b[^>]*>", FIGURE.sub("", page_html))
               if "colab" not in img.lower()]
    return figures, outside


def figure_problems(page_html: str) -> list[str]:
    """What a reader misses about a chapter's figures: an image shown without a numbered caption, a figure
    without a number or caption text, an image whose alt text does not describe it."""
    figures, outside = chapter_figures(page_html)
    problems = [f"an image outside a numbered figure: {img[:80]}" for img in outside]
    for figure in figures:
        caption = re.search(r"<figcaption>(.*?)</figcaption>", figure, re.DOTALL)
        number = caption and re.search(r'class="caption-number">Fig\. \d+', caption[1])
        text = caption and html.unescape(re.sub(r"<[^>]+>", " ", caption[1])).split()
        alt = re.search(r'<img\b[^>]*\balt="([^"]*)"', figure)
        if not (number and len(text or []) > 6):
            problems.append(f"a figure without a number and a caption: {figure[:80]}")
        if not alt or len(alt[1].split()) < 8:
            problems.append(f"a figure whose alt text does not describe it: {alt[1] if alt else 'none'!r}")
    return problems


def test_chapter_figures_are_numbered_captioned_and_described(site):
    html_root = site[0]
    problems, count = {}, 0
    for name in chapter_pages(html_root):
        page = (html_root / "book" / "chapters" / f"{name}.html").read_text()
        count += len(chapter_figures(page)[0])
        if found := figure_problems(page):
            problems[name] = found
    assert not problems, "\n".join(f"{name}:\n  " + "\n  ".join(found) for name, found in problems.items())
    assert count >= 5 * len(chapter_pages(html_root)) // 2, f"only {count} figures in the chapters"


def test_the_figure_check_sees_a_bare_image_and_a_figure_without_caption_or_alt():
    bare = '<p><img alt="" src="a.svg" /></p>'
    no_caption = '<figure class="align-default" id="x"><img alt="A plot." src="b.svg" /></figure>'
    good = ('<figure id="y"><img alt="A line rising from the lower left to the upper right corner." '
            'src="c.svg" /><figcaption><p><span class="caption-number">Fig. 3 </span><span '
            'class="caption-text">The errors of every hyperplane, for two settings.</span></p></figcaption>'
            '</figure>')
    assert figure_problems(good) == []
    found = figure_problems(bare + no_caption + good)
    assert len(found) == 3 and found[0].startswith("an image outside")
    assert "without a number" in found[1] and "alt text" in found[2]
