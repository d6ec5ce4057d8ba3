"""Redis with a password, on a real redis-server that refuses clients without it: the
password in REDIS_URL reaches the job records and the queue, and a wrong one gives the readable
503 without the URL or the password anywhere. The rest of the security checks need nothing
running: tests/unit/test_security.py."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from app import queue, task_names
from app.extensions import db
from app.job_tracking import JobRecord, job_key
from app.models import JobKind, Project, Role
from app.services.accounts import create_user
from tests.support import (
    CORPUS,
    RedisServer,
    add_ready_project,
    csrf_token,
    logs_captured,
    make_app,
    signed_in,
)

pytestmark = pytest.mark.integration

SECRET_KEY = "secret-key-" + uuid.uuid4().hex
REDIS_PASSWORD = "redis-pass-" + uuid.uuid4().hex
SLUG = "secure-book"


@pytest.fixture
def redis_with_password(tmp_path):
    server = RedisServer(tmp_path / "redis", password=REDIS_PASSWORD).start()
    yield server
    server.stop()


def test_redis_password_in_redis_url_is_used_for_job_records_and_the_queue(
    tmp_path, redis_with_password
):
    """With the password in REDIS_URL, the job tracker writes its record and a task reaches
    the queue on a Redis that refuses clients without it."""
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_with_password.port).get("anything")
    app = make_app(tmp_path, SECRET_KEY=SECRET_KEY, REDIS_URL=redis_with_password.url)
    record = JobRecord(
        task_id=str(uuid.uuid4()),
        engine="tesseract",
        started_at="2026-01-01T00:00:00+00:00",
        project_slug=SLUG,
        language="eng",
        total=3,
    )
    with app.app_context():
        assert app.extensions["job_trackers"][JobKind.OCR].claim(record) is None
        queue.enqueue(task_names.SPLIT_SOURCE, project_id=1)
    server = redis_with_password.client()
    assert JobRecord.from_json(server.get(job_key(SLUG))) == record
    assert server.llen(task_names.INTERACTIVE_QUEUE) == 1


def test_wrong_redis_password_gives_the_readable_503_without_url_or_password(
    tmp_path, redis_with_password, caplog
):
    """A wrong password in REDIS_URL makes the batch OCR page and its status answer the
    readable 503; neither the answer nor the log shows the URL or any password."""
    url = f"redis://:{REDIS_PASSWORD}-wrong@127.0.0.1:{redis_with_password.port}/0"
    app = make_app(tmp_path, SECRET_KEY=SECRET_KEY, REDIS_URL=url)
    with app.app_context():
        add_ready_project(SLUG, pages=2)
        create_user("edna", "editor-password", Role.EDITOR)
    client = signed_in(app, "edna", "editor-password")
    with logs_captured(caplog):
        page = client.get(f"/proofing/{SLUG}/batch-ocr")
        status = client.get(f"/proofing/{SLUG}/batch-ocr/status")
    assert page.status_code == 503
    assert "The task queue is unavailable" in page.get_data(as_text=True)
    assert status.status_code == 503
    assert status.get_json()["error"] == "The task queue is unavailable"
    assert "queue unavailable" in caplog.text  # the failure was logged...
    for text in (page.get_data(as_text=True), status.get_data(as_text=True), caplog.text):
        # ...without the password or the URL
        assert REDIS_PASSWORD not in text and SECRET_KEY not in text
        assert "redis://" not in text


# Without ignore_result, Celery first subscribed to the task's result channel and retried that
# 20 times a second apart, then raised RuntimeError: a 500 after 19 s, the project left behind.
@pytest.mark.timeout(5)
def test_upload_while_redis_refuses_the_password_is_a_quick_503_and_creates_nothing(
    tmp_path, redis_with_password
):
    """An upload whose split cannot be queued (wrong Redis password) is answered 503 at once,
    and no project is left behind."""
    url = f"redis://:{REDIS_PASSWORD}-wrong@127.0.0.1:{redis_with_password.port}/0"
    app = make_app(tmp_path, SECRET_KEY=SECRET_KEY, REDIS_URL=url)
    with app.app_context():
        create_user("edna", "editor-password", Role.EDITOR)
    client = signed_in(app, "edna", "editor-password")
    response = client.post(
        "/proofing/create-project",
        data={
            "slug": "no-queue",
            "title": "t",
            "language": "eng",
            "csrf_token": csrf_token(client, "/proofing/create-project"),
            "source": ((CORPUS / "trivial.pdf").open("rb"), "trivial.pdf"),
        },
    )
    assert response.status_code == 503
    assert "The task queue is unavailable" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Project).filter_by(slug="no-queue").count() == 0
    assert not (Path(app.config["DATA_DIR"]) / "projects" / "no-queue").exists()
