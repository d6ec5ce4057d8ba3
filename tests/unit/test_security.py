"""Security checks not covered by test_views.py: Redis passwords, secrets kept out of responses
and logs, forged sessions, the bot account, and the editor-only batch OCR forms.

Requests are made outside any app context (the `web` fixture holds none): inside one, Flask
reuses it for the request, and `g` (where Flask-Login caches the signed-in user) would carry
one client's user into another client's request. Tests needing a real Redis (a password)
start their own redis-server and say so in their marker.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from app import create_app, queue, task_names
from app.extensions import db
from app.job_tracking import JobRecord, job_key
from app.models import (
    BOT_USERNAME,
    Job,
    JobKind,
    JobState,
    Project,
    Role,
    User,
)
from app.services import batch_ocr
from app.services.accounts import bot_user, create_user
from tests.conftest import add_ready_project, csrf_token, login, make_app, use_fakeredis
from tests.support import CORPUS, RedisServer, free_port

SECRET_KEY = "secret-key-" + uuid.uuid4().hex
REDIS_PASSWORD = "redis-pass-" + uuid.uuid4().hex
DB_PASSWORD = "db-pass-" + uuid.uuid4().hex
SECRETS = (SECRET_KEY, REDIS_PASSWORD, DB_PASSWORD)
SLUG = "secure-book"


def add_users(app) -> None:
    with app.app_context():
        create_user("edna", "editor-password", Role.EDITOR)
        create_user("pat", "proofreader-password", Role.PROOFREADER)


@pytest.fixture
def web(tmp_path):
    """An app on fakeredis with a ready project and an editor and a proofreader; no context."""
    app = make_app(tmp_path, SECRET_KEY=SECRET_KEY)
    use_fakeredis(app)
    add_ready_project(app, SLUG, pages=2)
    add_users(app)
    yield app
    with app.app_context():
        db.engine.dispose()


def signed_in(app, username: str, password: str):
    client = app.test_client()
    assert login(client, username, password).status_code == 302
    return client


@contextlib.contextmanager
def logs_captured(caplog):
    """Every log record into caplog. Building an app runs Alembic's logging.config.fileConfig
    (app/migrations/env.py), which replaces the root logger's handlers, caplog's among them."""
    root = logging.getLogger()
    level = root.level
    root.addHandler(caplog.handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(caplog.handler)
        root.setLevel(level)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# -- Redis with a password ---------------------------------------------------------------


@pytest.fixture
def redis_with_password(tmp_path):
    server = RedisServer(tmp_path / "redis", password=REDIS_PASSWORD).start()
    yield server
    server.stop()


def app_on(tmp_path: Path, redis_url: str):
    return make_app(
        tmp_path,
        SECRET_KEY=SECRET_KEY,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        CELERY_RESULT_BACKEND=redis_url,
    )


@pytest.mark.integration
def test_redis_password_in_redis_url_is_used_for_job_records_and_the_queue(
    tmp_path, redis_with_password
):
    """With the password in REDIS_URL, the job tracker writes its record and a task reaches
    the queue on a Redis that refuses clients without it."""
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_with_password.port).get("anything")
    app = app_on(tmp_path, redis_with_password.url)
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


@pytest.mark.integration
def test_wrong_redis_password_gives_the_readable_503_without_url_or_password(
    tmp_path, redis_with_password, caplog
):
    """A wrong password in REDIS_URL makes the batch OCR page and its status answer the
    readable 503; neither the answer nor the log shows the URL or any password."""
    url = f"redis://:{REDIS_PASSWORD}-wrong@127.0.0.1:{redis_with_password.port}/0"
    app = app_on(tmp_path, url)
    add_ready_project(app, SLUG, pages=2)
    add_users(app)
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
        assert_no_secret(text)  # ...without the password or the URL
        assert "redis://" not in text


@pytest.mark.integration
# Without ignore_result, Celery first subscribed to the task's result channel and retried that
# 20 times a second apart, then raised RuntimeError: a 500 after 19 s, the project left behind.
@pytest.mark.timeout(5)
def test_upload_while_redis_refuses_the_password_is_a_quick_503_and_creates_nothing(
    tmp_path, redis_with_password
):
    """An upload whose split cannot be queued (wrong Redis password) is answered 503 at once,
    and no project is left behind."""
    url = f"redis://:{REDIS_PASSWORD}-wrong@127.0.0.1:{redis_with_password.port}/0"
    app = app_on(tmp_path, url)
    add_users(app)
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


# -- secrets stay out of answers and logs ------------------------------------------------


def test_redis_outage_shows_no_secret_in_answers_or_logs(tmp_path, caplog):
    """Redis unreachable at a URL with a password: the 503 answers and the log records name
    neither the password nor SECRET_KEY."""
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"
    app = app_on(tmp_path, url)
    add_ready_project(app, SLUG, pages=2)
    add_users(app)
    client = signed_in(app, "edna", "editor-password")
    with logs_captured(caplog):
        answers = [
            client.get(f"/proofing/{SLUG}/batch-ocr"),
            client.get(f"/proofing/{SLUG}/batch-ocr/status"),
            client.post(
                f"/proofing/{SLUG}/batch-ocr",
                data={
                    "engine": "tesseract",
                    "pages": "all",
                    "csrf_token": csrf_token(client, "/proofing/"),
                },
            ),
            client.get("/healthz"),
        ]
    assert [a.status_code for a in answers] == [503, 503, 503, 503]
    assert "queue unavailable" in caplog.text  # the outage was logged...
    for text in [a.get_data(as_text=True) for a in answers] + [caplog.text]:
        assert_no_secret(text)  # ...without the secrets


def test_database_outage_shows_no_secret_in_answers_or_logs(tmp_path, caplog):
    """A database unreachable at a URL with a password: the sign-in is a plain 500 and
    /healthz a 503; the log has the traceback, but no password and no SECRET_KEY."""
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(tmp_path / "data"),
            "SQLALCHEMY_DATABASE_URI": (
                f"postgresql+psycopg://ocr:{DB_PASSWORD}@127.0.0.1:{free_port()}/ocr"
                "?connect_timeout=2"
            ),
            "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0",
            "SECRET_KEY": SECRET_KEY,
        }
    )
    client = app.test_client()
    with logs_captured(caplog):
        signin = client.post(
            "/login",
            data={
                "username": "edna",
                "password": "editor-password",
                "csrf_token": csrf_token(client),
            },
        )
        health = client.get("/healthz")
    assert signin.status_code == 500
    assert "Something went wrong" in signin.get_data(as_text=True)
    assert health.status_code == 503
    assert health.get_json()["checks"]["database"]["ok"] is False
    assert "OperationalError" in caplog.text  # the cause is logged for the operator
    assert "Traceback" not in signin.get_data(as_text=True)
    for text in (signin.get_data(as_text=True), health.get_data(as_text=True), caplog.text):
        assert_no_secret(text)


# -- sessions and accounts ---------------------------------------------------------------


def forged_session_cookie(secret: str, user_id: int) -> str:
    """A session cookie saying user `user_id` is signed in, signed with `secret`."""
    forger = Flask(__name__)
    forger.secret_key = secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    return serializer.dumps({"_user_id": str(user_id), "_fresh": True})


def test_session_signed_with_another_key_is_not_signed_in(web):
    """A session cookie naming the editor but signed with another key is ignored; the same
    cookie signed with SECRET_KEY is accepted (so the check is the signature)."""
    with web.app_context():
        editor_id = db.session.query(User).filter_by(username="edna").one().id
    for secret, expected in ((SECRET_KEY + "x", 302), (SECRET_KEY, 200)):
        client = web.test_client()
        client.set_cookie("session", forged_session_cookie(secret, editor_id))
        assert client.get("/proofing/").status_code == expected, secret


def test_the_ocr_bot_cannot_sign_in(web):
    """The bot that authors OCR revisions has no usable password and no session."""
    with web.app_context():
        bot_id = bot_user().id
        db.session.commit()
    client = web.test_client()
    response = client.post(
        "/login",
        data={"username": BOT_USERNAME, "password": "", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 401
    client = web.test_client()
    client.set_cookie("session", forged_session_cookie(SECRET_KEY, bot_id))
    assert client.get("/proofing/").status_code == 302


@pytest.mark.parametrize("selection", ["failed", "resume", "all"])
def test_proofreader_cannot_retry_resume_or_start(web, enqueued, selection):
    """Retry of failed pages and resume are editor actions too: a proofreader gets 403 and no
    job is recorded."""
    with web.app_context():
        project = db.session.query(Project).filter_by(slug=SLUG).one()
        job = batch_ocr.start_batch_ocr(
            project, engine="tesseract", language="eng", selection="all", user=None
        )
        batch_ocr.cancel_batch_ocr(project)
    client = signed_in(web, "pat", "proofreader-password")
    response = client.post(
        f"/proofing/{SLUG}/batch-ocr",
        data={
            "pages": selection,
            "engine": "tesseract",
            "csrf_token": csrf_token(client, "/proofing/"),
        },
    )
    assert response.status_code == 403
    assert "editors and admins can do this" in response.get_data(as_text=True)
    with web.app_context():
        assert db.session.query(Job).count() == 1
        assert db.session.get(Job, job.job_id).state == JobState.CANCELLED
