"""Fixtures of the fault suite: a clean run to compare against, and the results table printed
at the end of the session (and kept in tests/artifacts/). Each test builds its private stack
with `own_stack` (tests/conftest.py)."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.chaos import BOOK_PAGES, RESULTS, job_seconds, record_result, start_job
from tests.support import (
    FAST_LIMITS,
    Stack,
    make_ready_project,
    multipage_pdf,
    wait_for_job_end,
)


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory) -> float:
    """Seconds a job over the fault tests' book takes with nothing broken, on its own stack."""
    root = tmp_path_factory.mktemp("clean")
    stack = Stack.on_own_redis(root, **FAST_LIMITS)
    try:
        stack.start_worker()
        with stack.app.app_context():
            project = make_ready_project("clean-run", multipage_pdf(root / "book.pdf", BOOK_PAGES))
            outcome = start_job(project)
            status = wait_for_job_end(project, 180)
            assert status["state"] == "succeeded", status
            seconds = job_seconds(outcome.job_id)
            db.session.remove()
    finally:
        stack.stop()
    record_result(
        "baseline",
        "nothing",
        f"{len(BOOK_PAGES)}-page job succeeded, 2 worker processes",
        f"job took {seconds:.1f} s",
    )
    return seconds


def pytest_terminal_summary(terminalreporter) -> None:
    RESULTS.report(terminalreporter)
