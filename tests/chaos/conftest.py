"""Fixtures of the fault suite: a private stack per test, a clean run to compare against, and
the results table printed at the end of the session (and kept in tests/artifacts/)."""

from __future__ import annotations

import time

import pytest

from app.extensions import db
from tests.chaos import (
    BOOK_PAGES,
    RESULT_COLUMNS,
    RESULTS,
    book_pdf,
    job_seconds,
    markdown_table,
    record_result,
    start_job,
)
from tests.conftest import Stack
from tests.integration.test_batch_ocr_job import make_ready_project, wait_for_job_end
from tests.support import ROOT, RedisServer

#: Small limits keep recovery bounded: a page fails after 10 s, a job with no progress for 30 s
#: is interrupted. Tests that need other values pass their own.
FAST_LIMITS = {"OCR_PAGE_TIME_LIMIT": "10", "OCR_STALL_TIMEOUT": "30"}


@pytest.fixture
def chaos_stack(tmp_path):
    """Builds private stacks (own redis-server; a worker only if the test starts one)."""
    made: list[Stack] = []

    def build(*, appendonly: bool = False, **overrides: str) -> Stack:
        root = tmp_path / f"stack{len(made)}"
        root.mkdir()
        server = RedisServer(root / "redis", appendonly=appendonly).start()
        try:
            stack = Stack(root, server, **{**FAST_LIMITS, **overrides})
        except BaseException:
            server.stop()
            raise
        made.append(stack)
        return stack

    yield build
    for stack in made:
        stack.stop()
        stack.redis_server.stop()


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory) -> float:
    """Seconds a job over the fault tests' book takes with nothing broken, on its own stack."""
    root = tmp_path_factory.mktemp("clean")
    server = RedisServer(root / "redis").start()
    stack = Stack(root, server, **FAST_LIMITS)
    try:
        stack.start_worker()
        with stack.app.app_context():
            project = make_ready_project("clean-run", book_pdf(root / "book.pdf", BOOK_PAGES))
            outcome = start_job(project)
            status = wait_for_job_end(project, 180)
            assert status["state"] == "succeeded", status
            seconds = job_seconds(outcome.job_id)
            db.session.remove()
    finally:
        stack.stop()
        server.stop()
    record_result(
        "baseline",
        "nothing",
        f"{len(BOOK_PAGES)}-page job succeeded, 2 worker processes",
        f"job took {seconds:.1f} s",
    )
    return seconds


def pytest_terminal_summary(terminalreporter) -> None:
    if not RESULTS:
        return
    table = markdown_table(RESULTS, RESULT_COLUMNS)
    terminalreporter.write_sep("=", "fault results")
    terminalreporter.write_line(table)
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    (artifacts / "chaos-results.md").write_text(f"Run at {stamp}\n\n{table}\n")
