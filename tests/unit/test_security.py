"""Security checks not covered by the view tests: secrets kept out of responses and logs,
forged sessions, the bot account, and the editor-only batch OCR forms. Redis with a password,
which needs a real redis-server, is in tests/integration/test_security.py.

Requests are made outside any app context (the `web` fixture holds none): inside one, Flask
reuses it for the request, and `g` (where Flask-Login caches the signed-in user) would carry
one client's user into another client's request.
"""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from app import create_app
from app.extensions import db
from app.models import (
    BOT_USERNAME,
    Job,
    JobState,
    Project,
    Role,
    User,
)
from app.services import batch_ocr
from app.services.accounts import bot_user, create_user
from tests.support import (
    add_ready_project,
    csrf_token,
    free_port,
    logs_captured,
    make_app,
    signed_in,
    use_fakeredis,
)

SECRET_KEY = "secret-key-" + uuid.uuid4().hex
REDIS_PASSWORD = "redis-pass-" + uuid.uuid4().hex
DB_PASSWORD = "db-pass-" + uuid.uuid4().hex
SECRETS = (SECRET_KEY, REDIS_PASSWORD, DB_PASSWORD)
SLUG = "secure-book"
# What is checked here is sessions and secrets, not password hashing: cheap hashes.
pytestmark = pytest.mark.usefixtures("cheap_password_hashes")


def add_users(app) -> None:
    with app.app_context():
        create_user("edna", "editor-password", Role.EDITOR)
        create_user("pat", "proofreader-password", Role.PROOFREADER)


@pytest.fixture
def web(tmp_path):
    """An app on fakeredis with a ready project and an editor and a proofreader; no context."""
    app = make_app(tmp_path, SECRET_KEY=SECRET_KEY)
    use_fakeredis(app)
    with app.app_context():
        add_ready_project(SLUG, pages=2)
    add_users(app)
    yield app
    with app.app_context():
        db.engine.dispose()


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# -- secrets stay out of answers and logs ------------------------------------------------


def test_redis_outage_shows_no_secret_in_answers_or_logs(tmp_path, caplog):
    """Redis unreachable at a URL with a password: the 503 answers and the log records name
    neither the password nor SECRET_KEY."""
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"
    app = make_app(tmp_path, SECRET_KEY=SECRET_KEY, REDIS_URL=url)
    with app.app_context():
        add_ready_project(SLUG, pages=2)
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
def test_proofreader_cannot_retry_resume_or_start(web, enqueued, fake_tesseract, selection):
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
