"""The proofing web app: `create_app` builds it, and nothing happens at import time.

The worker builds the same app (worker/celery.py), so tasks share models, config and clients.
"""

from __future__ import annotations

import logging
import unicodedata
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.config import load_config, secret_key, validate
from app.extensions import csrf, db, login_manager, migrate
from app.json_provider import OrjsonProvider

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Make an app: settings from the environment, then `config` overrides (tests use it)."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder="static",
    )
    app.config.update(load_config(create_secret=False))
    if config:
        app.config.update(config)
    validate(app.config)
    # Only now, with the final data directory known and the settings valid, touch the disk.
    data_dir = Path(app.config["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = secret_key({}, data_dir)

    # Status polls return one entry per page: orjson writes them, in insertion order
    # (sorting the keys of thousands of small objects is wasted work on the hottest endpoint).
    app.json = OrjsonProvider(app)
    _configure_logging(app)
    _init_database(app)
    _init_redis(app)
    _init_login(app)
    csrf.init_app(app)

    from app.celery_app import celery_init_app

    celery_init_app(app)
    _register_blueprints(app)
    _register_cli(app)

    from app.errors import register_error_handlers

    register_error_handlers(app)
    return app


def _configure_logging(app: Flask) -> None:
    """One format for web and worker logs, so an operator can grep a job id across both."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    # pikepdf announces its logger bridge at INFO on first use: noise in every CLI error.
    logging.getLogger("pikepdf").setLevel(logging.WARNING)


def _init_database(app: Flask) -> None:
    """SQLAlchemy and Alembic; SQLite in WAL mode so the worker and the web app write at once."""
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed during a write; the busy timeout makes a writer wait for the
    # other process's transaction instead of failing with "database is locked".
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # SQLite has no Unicode normalisation; search compares NFC text (app/services/search.py).
    dbapi_connection.create_function("nfc", 1, _nfc, deterministic=True)


def _nfc(text: str | None) -> str | None:
    return unicodedata.normalize("NFC", text) if isinstance(text, str) else text


def _init_redis(app: Flask) -> None:
    """The client for job records. Short timeouts: an outage must become a 503 quickly."""
    app.extensions["redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"],
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )
    use_redis(app, app.extensions["redis"])


def use_redis(app: Flask, client: redis.Redis) -> None:
    """Build everything that keeps its state in Redis on `client` (tests swap in fakeredis)."""
    from app.job_tracking import JobTracker
    from app.models import JobKind
    from app.worker_presence import Presence

    app.extensions["redis"] = client
    app.extensions["job_trackers"] = {
        kind: JobTracker(client, kind, ttl=app.config["OCR_JOB_TTL"]) for kind in JobKind
    }
    app.extensions["worker_presence"] = Presence(client)


def _init_login(app: Flask) -> None:
    from app.models import User

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see this page."
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        user = db.session.get(User, int(user_id))
        return None if user is None or user.is_bot else user

    # Scripts sign in per request with `Authorization: Bearer <token>` (app/services/api_tokens.py)
    # instead of a session cookie; a wrong token is no user at all, never someone else.
    @login_manager.request_loader
    def load_user_from_token(request: Any) -> User | None:
        from app.services.api_tokens import bearer_token, user_for_token

        token = bearer_token(request.headers.get("Authorization"))
        return user_for_token(token) if token else None

    # The JSON API answers 401 to a request without a session or a valid token; pages
    # redirect to the sign-in form.
    @login_manager.unauthorized_handler
    def unauthorized() -> Any:
        from flask import flash, jsonify, redirect, request, url_for

        if request.path.startswith("/api/"):
            response = jsonify(
                error="Unauthorized",
                message="Sign in, or send Authorization: Bearer <token> (flask users token NAME).",
            )
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        from flask_login.utils import login_url

        flash(login_manager.login_message, login_manager.login_message_category)
        return redirect(login_url(url_for("auth.login"), next_url=request.full_path.rstrip("?")))


def _register_blueprints(app: Flask) -> None:
    from app.views import (
        admin,
        api,
        auth,
        batch_ocr,
        exports,
        health,
        history,
        jobs,
        metrics,
        notifications,
        pages,
        project_settings,
        projects,
        search,
    )

    for module in (
        auth,
        projects,
        pages,
        batch_ocr,
        exports,
        jobs,
        api,
        health,
        admin,
        metrics,
        notifications,
        project_settings,
        history,
        search,
    ):
        app.register_blueprint(module.bp)


def _register_cli(app: Flask) -> None:
    from app.cli import register_commands

    register_commands(app)
