"""How soon the page editor of a 3600 x 4800 scan is ready to use, on loopback: not a test.

`python -m tests.bench.editor_ready [--runs N]` starts the app (tests/support.py LiveServer)
on a throw-away database, makes a project of one 3600 x 4800 grey scan with paper grain (as
large as a real one), opens its editor in Debian's headless Chromium with an empty cache each
run, and prints the median and range of:

- DOM ready: DOMContentLoaded, from the start of navigation;
- scan visible at reading size: OpenSeadragon's first "fully loaded" of the image fitted to
  the viewer's width (the preview level), the `scan-ready` mark of editor.js;
- text box focused: the `editor-focused` mark, the caret in the box.

It also prints what the scan costs the browser as the full PNG and as the preview (bytes, and
the time to fetch and decode each, measured with `Image.decode()` in the same browser), and
the time to make the preview once on the server. The first run makes the preview; it is
reported apart ("cold") and left out of the medians.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from app.extensions import db
from app.models import Page
from app.services import page_previews
from app.services.accounts import create_user
from tests.support import LiveServer, add_scan_project, make_app, use_fakeredis

CHROMIUM = "/usr/bin/chromium"
SLUG = "bench-editor"
SIZE = (3600, 4800)
VIEWPORT = {"width": 1920, "height": 1080}


def marks(page) -> dict[str, float]:
    return page.evaluate(
        """() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const mark = name => (performance.getEntriesByName(name)[0] || {}).startTime;
            return {dom: nav.domContentLoadedEventEnd, scan: mark('scan-ready'),
                    focused: mark('editor-focused'),
                    active: document.activeElement && document.activeElement.id};
        }"""
    )


def decode_ms(page, url: str) -> float:
    """Milliseconds to fetch (uncached) and decode one image in the page's browser."""
    return page.evaluate(
        """async url => {
            const image = new Image();
            const start = performance.now();
            image.src = url + '?nocache=' + Math.random();
            await image.decode();
            return performance.now() - start;
        }""",
        url,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-editor-"))
    app = make_app(root)
    use_fakeredis(app)
    with app.app_context():
        create_user("bench", "bench-password", "editor")
        add_scan_project(SLUG, 2, size=SIZE, paper_noise=True)
        page_row = db.session.query(Page).filter_by(number=1).one()
        data_dir = Path(app.config["DATA_DIR"])
        full_bytes = (data_dir / page_row.image_path).stat().st_size
        db.session.remove()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = LiveServer(app).start()
    base = server.url
    results, warm, cold = [], [], None
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            for run in range(args.runs + 1):
                context = browser.new_context(base_url=base, viewport=VIEWPORT)
                page = context.new_page()
                page.goto("/login")
                page.get_by_label("Username").fill("bench")
                page.get_by_label("Password").fill("bench-password")
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(f"{base}/proofing/")
                page.goto(f"/proofing/{SLUG}/1/")
                page.wait_for_function(
                    "() => performance.getEntriesByName('scan-ready').length", timeout=60_000
                )
                figures = marks(page)
                assert figures["active"] == "page-text", figures
                if run == 0:
                    cold = figures
                    full_ms = [decode_ms(page, f"/proofing/{SLUG}/1/image") for _ in range(3)]
                    preview_ms = [decode_ms(page, f"/proofing/{SLUG}/1/preview") for _ in range(3)]
                    page.screenshot(path=str(root / "editor-1920.png"))
                else:
                    results.append(figures)
                    # The next page in the same browser: scripts and styles cached, as for a
                    # proofreader going from page to page (its preview is made on this visit).
                    page.goto(f"/proofing/{SLUG}/2/")
                    page.wait_for_function(
                        "() => performance.getEntriesByName('scan-ready').length",
                        timeout=60_000,
                    )
                    if run > 1:
                        warm.append(marks(page))
                    page.goto(f"/proofing/{SLUG}/1/")
                context.close()
            browser.close()
    finally:
        server.stop()
    with app.app_context():
        preview = page_previews.preview_path(data_dir, page_row.image_path)
        preview_bytes = preview.stat().st_size
        preview.unlink()
        started = time.perf_counter()
        page_previews.ensure_preview(data_dir, page_row.image_path)
        make_ms = (time.perf_counter() - started) * 1000

    def line(name: str, key: str) -> str:
        values = [r[key] for r in results]
        warm_values = [r[key] for r in warm] or [float("nan")]
        return (
            f"{name:<30} median {statistics.median(values):5.0f} ms"
            f" (min {min(values):.0f}, max {max(values):.0f}; first open ever"
            f" {cold[key]:.0f}); next page, cached scripts: median"
            f" {statistics.median(warm_values):.0f} ms"
        )

    print(
        f"Editor of a {SIZE[0]} x {SIZE[1]} page, {args.runs} runs with an empty cache,"
        " 1920 x 1080, loopback"
    )
    print(line("DOM ready", "dom"))
    print(line("scan visible at reading size", "scan"))
    print(line("text box focused", "focused"))
    print(
        f"full PNG: {full_bytes / 1e6:.2f} MB, fetch+decode median "
        f"{statistics.median(full_ms):.0f} ms"
    )
    print(
        f"preview JPEG ({page_previews.PREVIEW_WIDTH} px wide): {preview_bytes / 1e3:.0f} kB, "
        f"fetch+decode median {statistics.median(preview_ms):.0f} ms; "
        f"made once on the server in {make_ms:.0f} ms"
    )
    print(f"screenshot: {root / 'editor-1920.png'}")


if __name__ == "__main__":
    main()
