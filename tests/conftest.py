"""Fixtures. Unit tests get an app on a fresh SQLite file with fakeredis and a recorded queue;
integration tests get the real stack: redis-server on a free port, a Celery worker process
running real Tesseract, and the app configured to match. The helpers these fixtures use, and
that tests call, are in tests/support.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy
from werkzeug.security import generate_password_hash

from app import models, queue
from app.engines import ENGINES
from app.extensions import db
from app.services.accounts import create_user
from tests.support import (
    FAST_LIMITS,
    FakeEngine,
    PostgresCluster,
    RedisServer,
    Stack,
    make_app,
    use_fakeredis,
)


@pytest.fixture
def app(tmp_path, request):
    """An app with fakeredis, on SQLite; `@BOTH_DATABASES` (tests/support.py) runs a test on
    PostgreSQL as well."""
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

    def record_page(task_name, *, queue, job_id, position):
        sent.append((task_name, {"job_id": job_id, "position": position}))
        return f"{job_id}.{position}"

    monkeypatch.setattr(queue, "enqueue", record)
    monkeypatch.setattr(queue, "send_page", record_page)
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


@pytest.fixture
def cheap_password_hashes(monkeypatch):
    """Hash with one PBKDF2 round instead of scrypt, for tests that sign many people in:
    scrypt's deliberate slowness (0.3-0.8 s a hash) is not what they are about."""
    monkeypatch.setattr(
        models,
        "generate_password_hash",
        lambda password: generate_password_hash(password, method="pbkdf2:sha256:1"),
    )


@pytest.fixture
def fake_engine(monkeypatch) -> FakeEngine:
    """A stand-in engine registered as "fake", answering what the test sets."""
    engine = FakeEngine()
    monkeypatch.setitem(ENGINES, engine.name, engine)
    return engine


@pytest.fixture
def fake_tesseract(monkeypatch) -> FakeEngine:
    """A stand-in registered in Tesseract's place (its name and label), with eng, hin and san
    installed: for tests that start jobs with the default engine but run no OCR, so that they
    need no Tesseract installed."""
    real = ENGINES["tesseract"]
    engine = FakeEngine(name=real.name, label=real.label, languages={"eng", "hin", "san"})
    monkeypatch.setitem(ENGINES, engine.name, engine)
    return engine


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server for the session: TEST_POSTGRES_URL if set, else a
    throw-away cluster started here (tests/support.py PostgresCluster), never the machine's own
    server. Started on first use only, so a run without PostgreSQL tests costs nothing."""
    if url := os.environ.get("TEST_POSTGRES_URL"):
        yield url
        return
    cluster = PostgresCluster().start()
    yield cluster.url
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh PostgreSQL database for one test, dropped afterwards. No server is an error,
    not a skip: the PostgreSQL variants always run."""
    engine = sqlalchemy.create_engine(
        postgres_server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    name = f"ocr_test_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


# -- the real stack ----------------------------------------------------------------------


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


@pytest.fixture
def own_stack(tmp_path):
    """Builds stacks of their own, for tests that break something (stop Redis, kill a worker,
    hang the engine) without disturbing the shared `stack`: each has a private redis-server
    (`appendonly=True` for persistence), a worker only once the test starts one, and
    FAST_LIMITS unless overridden. All are stopped after the test."""
    made: list[Stack] = []

    def build(*, appendonly: bool = False, **overrides: str) -> Stack:
        root = tmp_path / f"stack{len(made)}"
        root.mkdir()
        stack = Stack.on_own_redis(root, appendonly=appendonly, **{**FAST_LIMITS, **overrides})
        made.append(stack)
        return stack

    yield build
    for stack in made:
        stack.stop()
