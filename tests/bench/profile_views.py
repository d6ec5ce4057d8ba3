"""Profiles of the pages a user keeps open while a long book is OCR'd (docs/profiling.md).

    .venv/bin/python -m tests.bench.profile_views [--pages 2000] [--html DIR]

Builds, in a temp directory, a project of `--pages` ready pages (one tiny shared image) with a
running job on fakeredis, part done and part failed, and for each of the status JSON, the
progress page and a page editor: the mean time of 200 requests through Flask's test client
(no network, no other process), then a pyinstrument profile of 200 more. Time is in-process
only: what a gunicorn worker spends, not what a client waits.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from pyinstrument import Profiler

from app import queue
from app.extensions import db
from app.models import JobKind, Project
from app.services import batch_ocr
from app.services.accounts import create_user
from tests.support import add_ready_project, login, make_app, use_fakeredis

SLUG = "profiled"
REQUESTS = 200


def build(root: Path, pages: int):
    app = make_app(root)
    use_fakeredis(app)
    with app.app_context():
        project = add_ready_project(SLUG, pages)
        # A page of text each (about 1800 characters), as a proofread book has.
        line = "धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः । मामकाः पाण्डवाश्चैव किमकुर्वत सञ्जय ॥"
        for page in project.pages:
            page.text = "\n".join([line] * 20)
        db.session.commit()
    with app.app_context():
        create_user("editor", "a-long-password", "editor")
        project = db.session.query(Project).filter_by(slug=SLUG).one()
        batch_ocr.start_batch_ocr(
            project, engine="tesseract", language="eng", selection="all", user=None
        )
        tracker = app.extensions["job_trackers"][JobKind.OCR]
        record = tracker.current(SLUG)
        for position in range(pages // 2):
            tracker.mark_running(record, position)
            outcome = "failed" if position % 50 == 7 else "done"
            tracker.finish_page(record, position, outcome, "the scan is unreadable")
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.profile_views")
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--html", type=Path, help="also write each profile as HTML here")
    args = parser.parse_args(argv)
    queue.enqueue = lambda name, **kwargs: "task-id"  # nothing reaches a broker
    queue.send_page = lambda name, **kwargs: "task-id"
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp), args.pages)
        client = app.test_client()
        assert login(client, "editor", "a-long-password").status_code == 302
        for name, url in [
            ("status JSON", f"/proofing/{SLUG}/batch-ocr/status"),
            ("progress page", f"/proofing/{SLUG}/batch-ocr"),
            ("page editor", f"/proofing/{SLUG}/{args.pages // 2}/"),
            ("project page", f"/proofing/{SLUG}/"),
            ("project page, one level", f"/proofing/{SLUG}/?status=needs-work"),
            ("search", f"/proofing/{SLUG}/search?q=" + "क्षेत्रे"),
        ]:
            assert client.get(url).status_code == 200, url
            started = time.perf_counter()
            for _ in range(REQUESTS):
                client.get(url)
            mean_ms = (time.perf_counter() - started) / REQUESTS * 1000
            print(f"\n=== {name}, {args.pages} pages: {mean_ms:.2f} ms per request ===")
            profiler = Profiler(interval=0.0005)
            with profiler:
                for _ in range(REQUESTS):
                    client.get(url)
            print(profiler.output_text(unicode=False, color=False, show_all=False))
            if args.html:
                args.html.mkdir(parents=True, exist_ok=True)
                out = args.html / f"{name.replace(' ', '-')}.html"
                out.write_text(profiler.output_html())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
