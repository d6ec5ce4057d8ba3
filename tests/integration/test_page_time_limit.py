"""Celery's soft time limit ends a page whose engine ignores its own timeout, on a real worker.

Tesseract stops itself at the page limit (tests/integration/test_batch_ocr_faults.py
proves that path). Here the engine is Google Vision against a stand-in on loopback that answers
one byte a second: every read gets data before the client's timeout, so the call never times
out by itself, and only the soft time limit (the page limit + 5 s, app/celery_app.py) stops it.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.services import batch_ocr
from tests.support import RedisServer, Stack, make_ready_project, multipage_pdf, wait_for_job_end

pytestmark = pytest.mark.integration

PAGE_LIMIT = 5


@pytest.fixture
def dripping_vision():
    """A Vision stand-in that promises a large answer and sends it a byte a second."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                while not stop.wait(1.0):
                    self.wfile.write(b" ")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the worker gave up, as it should

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stop.set()
    server.shutdown()
    server.server_close()


def test_the_soft_time_limit_fails_a_page_whose_engine_never_returns(dripping_vision, tmp_path):
    """The page fails with the page limit named, after the soft limit and before the hard one;
    the job ends and the worker lives on."""
    server = RedisServer(tmp_path / "redis").start()
    stack = Stack(
        tmp_path,
        server,
        OCR_PAGE_TIME_LIMIT=str(PAGE_LIMIT),
        GOOGLE_VISION_ENDPOINT=dripping_vision,
    )
    try:
        worker = stack.start_worker(concurrency=1)
        with stack.app.app_context():
            project = make_ready_project("dripping", multipage_pdf(tmp_path / "p.pdf", [3]))
            started = time.monotonic()
            batch_ocr.start_batch_ocr(
                project, engine="google", language="eng", selection="all", user=None
            )
            status = wait_for_job_end(project, 120)
            took = time.monotonic() - started
        assert status["state"] == "failed", status
        reason = status["pages"][0]["reason"]
        assert reason == f"OCR took longer than the {PAGE_LIMIT} s page time limit", reason
        # The soft limit, not the engine's own timeout (never reached) nor the hard limit
        # (which kills the process): behaviour, not speed, so only the order is asserted.
        assert took >= PAGE_LIMIT + 5
        log = worker.log_path.read_text(errors="replace")
        assert "SoftTimeLimitExceeded" in log or "Soft time limit" in log, worker.log_tail()
        assert "Hard time limit" not in log, worker.log_tail()
        assert worker.process.poll() is None
    finally:
        stack.stop()
        server.stop()
