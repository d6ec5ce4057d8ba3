"""Fixtures. Unit tests get an app on a fresh SQLite file with fakeredis and a recorded queue;
integration tests get the real stack: redis-server on a free port, a Celery worker process
running real Tesseract, and the app configured to match (tests/support.py)."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import fakeredis
import pytest
from flask_migrate import upgrade
from PIL import Image
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app import create_app, queue
from app.config import load_config
from app.extensions import db
from app.models import Page, Project, ProjectStatus
from app.ocr_tracking import OcrJobTracker
from app.services.accounts import create_user
from tests.support import CORPUS, RedisServer, Worker

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def make_app(tmp_path: Path, **overrides):
    config = {
        "TESTING": True,
        "DATA_DIR": str(tmp_path / "data"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # unit tests swap in fakeredis
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:1/0",
        "SECRET_KEY": "test-secret",
        **overrides,
    }
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


def use_fakeredis(app) -> fakeredis.FakeRedis:
    """Point the app's job records at a fresh fakeredis (the queue is stubbed separately)."""
    fake = fakeredis.FakeRedis()
    app.extensions["redis"] = fake
    app.extensions["ocr_tracker"] = OcrJobTracker(fake, ttl=app.config["OCR_JOB_TTL"])
    return fake


@pytest.fixture
def app(tmp_path, request):
    """An app with fakeredis; `@pytest.mark.parametrize('app', ['postgres'], indirect=True)`
    runs a test on PostgreSQL as well."""
    overrides = {}
    if getattr(request, "param", "sqlite") == "postgres":
        overrides["SQLALCHEMY_DATABASE_URI"] = request.getfixturevalue("postgres_url")
    app = make_app(tmp_path, **overrides)
    use_fakeredis(app)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def enqueued(monkeypatch):
    """Tasks the code under test sent, as (name, kwargs); nothing reaches a broker."""
    sent: list[tuple[str, dict]] = []

    def record(task_name, *, queue=None, **kwargs):
        sent.append((task_name, kwargs))
        return str(uuid.uuid4())

    monkeypatch.setattr(queue, "enqueue", record)
    return sent


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def editor(app):
    return create_user("edna", "editor-password", "editor")


@pytest.fixture
def proofreader(app):
    return create_user("pat", "proofreader-password", "proofreader")


def csrf_token(client, url: str = "/login") -> str:
    html = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def login(client, username: str, password: str):
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
    )


def upload_form(client, filename: str, data: bytes, **fields):
    """POST the create-project form with a file, as a browser does."""
    return upload_files(client, [(filename, data)], **fields)


def upload_files(client, files: list[tuple[str, bytes]], **fields):
    """POST the create-project form with several files in its `multiple` file input."""
    form = MultiDict(
        {
            "slug": "uploaded",
            "title": "Uploaded book",
            "language": "eng",
            **fields,
            "csrf_token": csrf_token(client, "/proofing/create-project"),
        }
    )
    for filename, data in files:
        form.add("source", FileStorage(io.BytesIO(data), filename=filename))
    # Encoded here, in memory: the test client spools bodies over 500 kB to a temporary
    # file that it never closes (a ResourceWarning, an error under filterwarnings=error).
    boundary, payload = encode_multipart(form)
    return client.post(
        "/proofing/create-project",
        data=payload,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def add_ready_project(app, slug: str, pages: int) -> None:
    """A ready project whose pages share one tiny image, inserted directly (no split)."""
    with app.app_context():
        image = Path(app.config["DATA_DIR"]) / "projects" / slug / "pages" / "00001.png"
        image.parent.mkdir(parents=True)
        Image.new("L", (8, 8), 255).save(image)
        project = Project(
            slug=slug,
            title=slug,
            language="eng",
            status=ProjectStatus.READY,
            source_filename="scan.png",
            source_page_count=pages,
        )
        db.session.add(project)
        db.session.flush()
        image_path = str(image.relative_to(app.config["DATA_DIR"]))
        db.session.add_all(
            Page(project_id=project.id, number=n, width=8, height=8, image_path=image_path)
            for n in range(1, pages + 1)
        )
        db.session.commit()


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped afterwards; skipped without a server."""
    import os

    import sqlalchemy

    base = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG_URL)
    try:
        engine = sqlalchemy.create_engine(
            base, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 2}
        )
        with engine.connect() as conn:
            name = f"ocr_test_{uuid.uuid4().hex[:12]}"
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server, no driver, no rights: all mean "not available here"
        pytest.skip(
            f"PostgreSQL not available at {base} ({type(exc).__name__}); set TEST_POSTGRES_URL"
        )
    url = base.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


# -- the real stack ----------------------------------------------------------------------


class Stack:
    """Redis, a worker and an app sharing one data directory and database."""

    def __init__(self, root: Path, redis_server: RedisServer, **overrides):
        self.root = root
        self.redis_server = redis_server
        self.config = {
            "DATA_DIR": str(root / "data"),
            "DATABASE_URL": f"sqlite:///{root / 'stack.db'}",
            "REDIS_URL": redis_server.url,
            "SECRET_KEY": "stack-secret",
            **overrides,
        }
        # The app reads the same settings as the worker's environment, so both agree.
        self.app = create_app({**load_config(self.config), "TESTING": True})
        with self.app.app_context():
            upgrade()
        self.workers: list[Worker] = []

    def start_worker(self, name: str = "worker", **kwargs) -> Worker:
        worker = Worker(self.config, self.root / f"{name}.log", **kwargs).start(
            self.redis_server.url
        )
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        with self.app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory, redis_server):
    """The shared real stack with one worker (two processes); tests use their own slugs."""
    stack = Stack(tmp_path_factory.mktemp("stack"), redis_server)
    stack.start_worker()
    yield stack
    stack.stop()


@pytest.fixture
def stack_app(stack):
    with stack.app.app_context():
        yield stack.app
        db.session.remove()


def corpus(name: str) -> Path:
    return CORPUS / name
