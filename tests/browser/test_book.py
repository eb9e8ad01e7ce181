"""Browser test of the built book: every chapter loads cleanly in headless Chromium.

Run by `make test` after the book is built (`make browser-test`); skipped when Chromium
or ChromeDriver is not installed (`.ci/run` installs them in CI). The network is not
needed: the book is served from loopback and MathJax from the book itself.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HTML = REPO / "book" / "_build" / "html"
SCREENSHOTS = REPO / "book" / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="headless Chromium and ChromeDriver are not installed")


def chapter_pages() -> list[str]:
    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML / 'index.html'} is missing: build the book first (make book-stored)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.startup) { done("no-mathjax"); return; }
MathJax.startup.promise.then(() => done("typeset")).catch(e => done("error: " + e));
"""

IMAGES = """
return Array.from(document.images).map(img => [img.currentSrc || img.src, img.complete,
                                               img.naturalWidth]);
"""


@pytest.mark.parametrize("page", chapter_pages())
def test_chapter_page_loads_with_images_and_math(page, server, browser):
    browser.get(f"{server}/{page}.html")
    browser.set_script_timeout(60)
    state = browser.execute_async_script(WAIT_FOR_MATHJAX)
    source = (HTML / f"{page}.html").read_text()
    # Sphinx loads MathJax only on pages that have formulas.
    assert state in ("typeset", "no-mathjax"), f"{page}: MathJax failed ({state})"
    if 'class="math' in source:
        assert state == "typeset", f"{page}: MathJax did not finish ({state})"
        typeset = browser.execute_script("return document.querySelectorAll('mjx-container').length")
        assert typeset > 0, f"{page}: the page has formulas but none was typeset"
    images = browser.execute_script(IMAGES)
    broken = [src for src, complete, width in images if not complete or width == 0]
    assert not broken, f"{page}: images that did not decode: {broken}"
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"{page}: console errors: {errors}"
    if page == chapter_pages()[1]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOTS / "first_chapter.png"))


def test_formulas_render_without_network(server, browser):
    """The intro's formula is typeset from the local MathJax copy, no CDN involved."""
    source = (HTML / f"{chapter_pages()[0]}.html").read_text()
    assert "cdn.jsdelivr.net" not in source and "_static/mathjax/tex-chtml.js" in source
    browser.get(f"{server}/{chapter_pages()[0]}.html")
    assert browser.execute_async_script(WAIT_FOR_MATHJAX) == "typeset"
    assert browser.execute_script("return document.querySelectorAll('mjx-container').length") > 0


# Matplotlib figures of a chapter (PNG cell outputs). At the series' dpi (>= 100) the
# narrowest figure (5 x 3 inches, tight bounding box) is about 430 px wide; at dpi 60 it
# was 258 px, with text about 6 px high.
FIGURES = """
return Array.from(document.querySelectorAll('.cell_output img'))
  .filter(img => /\\.png(\\?|$)/i.test(img.currentSrc || img.src) || (img.src || '').startsWith('data:image/png'))
  .map(img => [img.currentSrc || img.src, img.naturalWidth, img.getBoundingClientRect().width]);
"""
MIN_FIGURE_PX = 400        # natural width of a figure's PNG
MIN_RENDERED_PX = 300      # width on the page, at the test's 1280 px wide window


@pytest.mark.parametrize("page", [page for page in chapter_pages() if page.startswith("notebooks/")])
def test_chapter_figures_are_readable(page, server, browser):
    browser.get(f"{server}/{page}.html")
    figures = browser.execute_script(FIGURES)
    small = [(src.rsplit("/", 1)[-1][:40], natural, round(rendered))
             for src, natural, rendered in figures
             if natural < MIN_FIGURE_PX or rendered < min(natural, MIN_RENDERED_PX)]
    assert not small, f"{page}: figures too small to read (src, natural px, rendered px): {small}"
    if page.split("/")[-1][:2] in ("03", "07", "08"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.execute_script("const f = document.querySelector('.cell_output img');"
                               "if (f) f.scrollIntoView();")
        assert browser.save_screenshot(str(SCREENSHOTS / f"{page.split('/')[-1]}.png"))
