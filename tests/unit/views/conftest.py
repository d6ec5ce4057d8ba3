"""Fixtures of the view tests: a ready two-page book, and Redis taken down."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from app import queue, use_redis
from app.models import Project
from tests.support import free_port, scan_pdf, split_project
from tests.unit.views import SLUG


@pytest.fixture(autouse=True)
def cheap_hashes_and_a_fake_engine(cheap_password_hashes, fake_engine):
    """Every test here signs someone in (cheap hashes are enough) and none runs OCR (the fake
    engine stands in for one)."""


@pytest.fixture
def scan(tmp_path) -> Path:
    """A two-page scan, small enough to split in milliseconds."""
    return scan_pdf(tmp_path / "scan.pdf", [(200, 260), (240, 200)])


@pytest.fixture
def book(app, enqueued, scan) -> Project:
    """A ready project of two pages; the tasks its creation sent are forgotten."""
    project = split_project(SLUG, scan, title="View book")
    enqueued.clear()
    return project


@pytest.fixture
def redis_down(app, book, monkeypatch):
    """Redis unreachable: job records on a closed port, and the queue refusing tasks."""
    # Made like create_app's client (from_url): redis.Redis(host=...) would retry ten times
    # with backoff, taking seconds per call to fail.
    closed = redis.Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, socket_timeout=0.2
    )
    use_redis(app, closed)

    def unavailable(*args, **kwargs):
        raise queue.QueueUnavailable()

    monkeypatch.setattr(queue, "enqueue", unavailable)
    monkeypatch.setattr(queue, "send_page", unavailable)
