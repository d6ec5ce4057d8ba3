"""Configuration: every setting, its default, and the check that fails fast at start-up.

Settings come from environment variables (docs/configuration.md lists them all). `load_config`
turns them into the dict that `create_app` hands to Flask; tests pass overrides on top.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any


class ConfigError(RuntimeError):
    """A setting is missing or invalid: the app refuses to start rather than fail later."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def secret_key(env: dict[str, str], data_dir: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data directory.

    Keeping it on disk means sessions survive a restart of `make run` without the newcomer
    having to invent a secret; production deployments set SECRET_KEY explicitly.
    """
    if env.get("SECRET_KEY"):
        return env["SECRET_KEY"]
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Written aside, then linked into place: the web app and the worker may start at the same
    # moment, and whichever links second reads the first one's complete key.
    fd, partial = tempfile.mkstemp(dir=data_dir, prefix=".secret_key.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        os.chmod(partial, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(partial, path)
    finally:
        os.unlink(partial)
    return path.read_text().strip()


def load_config(env: dict[str, str] | None = None, *, create_secret: bool = True) -> dict[str, Any]:
    """Read every setting from `env` (default: the process environment).

    With `create_secret=False` a missing SECRET_KEY stays None, for a caller that validates
    first and only then lets `secret_key` write one into the data directory.
    """
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("DATA_DIR") or "data").resolve()
    redis_url = env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    page_time_limit = _int(env, "OCR_PAGE_TIME_LIMIT", 120)
    return {
        #: Where page images, uploaded sources and the SQLite file live.
        "DATA_DIR": str(data_dir),
        #: SQLAlchemy URL; SQLite under DATA_DIR unless PostgreSQL is named.
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL")
        or f"sqlite:///{data_dir / 'proofing.db'}",
        #: Redis for the job records; also Celery's broker and result backend unless overridden.
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": env.get("CELERY_BROKER_URL") or redis_url,
        "CELERY_RESULT_BACKEND": env.get("CELERY_RESULT_BACKEND") or redis_url,
        #: Signs session cookies and CSRF tokens.
        "SECRET_KEY": secret_key(env, data_dir) if create_secret else env.get("SECRET_KEY"),
        #: Largest upload accepted, in megabytes (a 1000-page scan at 300 DPI is ~400 MB).
        "MAX_CONTENT_LENGTH": _int(env, "MAX_UPLOAD_MB", 512) * 1024 * 1024,
        #: Seconds one page may take to OCR before it is failed (a hung engine never blocks a job).
        "OCR_PAGE_TIME_LIMIT": page_time_limit,
        #: Seconds without progress after which a running job is declared interrupted.
        "OCR_STALL_TIMEOUT": _int(env, "OCR_STALL_TIMEOUT", page_time_limit * 2 + 60),
        #: Lifetime of the `ocr_task:<slug>` record; renewed while the job makes progress.
        "OCR_JOB_TTL": _int(env, "OCR_JOB_TTL", 24 * 3600),
        #: Pages of one job in the broker at a time; 0: twice the worker processes that take
        #: the job's queue (fair share between jobs, app/services/jobs/window.py).
        "JOB_WINDOW": _int(env, "JOB_WINDOW", 0),
        #: Seconds between a running page's heartbeats; a page silent for four of them is
        #: given to another worker.
        "JOB_HEARTBEAT_SECONDS": _int(env, "JOB_HEARTBEAT_SECONDS", 3),
        #: Resolution used when a PDF page has no embedded image to take the resolution from.
        "RENDER_DPI": _int(env, "RENDER_DPI", 300),
        #: Upper bound on pixels per rendered page; larger pages are rendered at a lower DPI.
        "RENDER_MAX_PIXELS": _int(env, "RENDER_MAX_PIXELS", 40_000_000),
        #: Path of a Google service-account key; without it the Google engine is unavailable.
        "GOOGLE_APPLICATION_CREDENTIALS": env.get("GOOGLE_APPLICATION_CREDENTIALS") or None,
        #: host:port of the Vision API; only tests point this at a local stand-in.
        "GOOGLE_VISION_ENDPOINT": env.get("GOOGLE_VISION_ENDPOINT") or None,
        #: The tesseract command: installed languages and orientation detection (OCR itself runs
        #: in libtesseract, app/engines/loaded_tesseract.py).
        "TESSERACT_CMD": env.get("TESSERACT_CMD") or "tesseract",
        #: Resident MB past which a worker process's Tesseract helper ends after its page.
        "TESSERACT_HELPER_MAX_MB": _int(env, "TESSERACT_HELPER_MAX_MB", 256),
        #: The address users reach the app at, for links sent outside it (webhook payloads).
        "PUBLIC_URL": (env.get("PUBLIC_URL") or "http://localhost:5000").rstrip("/"),
        #: When set, GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>`.
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        #: Key of the HMAC-SHA256 signature of webhook bodies; without it no webhook is set.
        "WEBHOOK_SECRET": env.get("WEBHOOK_SECRET") or None,
        #: 1 lets webhooks reach loopback and private addresses (a receiver on the same network).
        "WEBHOOK_ALLOW_PRIVATE": env.get("WEBHOOK_ALLOW_PRIVATE", "") == "1",
        #: Seconds one webhook attempt may take (connect and answer) before it counts as failed.
        "WEBHOOK_TIMEOUT": _int(env, "WEBHOOK_TIMEOUT", 10),
        #: Hours an export file is kept after it was made (`flask cleanup`).
        "EXPORT_RETENTION_HOURS": _int(env, "EXPORT_RETENTION_HOURS", 7 * 24),
        #: Days the per-page outcomes of an ended job are kept; the job's summary row stays.
        "JOB_PAGE_RETENTION_DAYS": _int(env, "JOB_PAGE_RETENTION_DAYS", 90),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env.get("SESSION_COOKIE_SECURE", "") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,  # a proofreader may keep a page open all afternoon
    }


def validate(config: dict[str, Any]) -> None:
    """Fail at start-up on settings that could only fail later, and confusingly."""
    if not 72 <= config["RENDER_DPI"] <= 1200:
        raise ConfigError("RENDER_DPI must be between 72 and 1200")
    if config["RENDER_MAX_PIXELS"] < 1_000_000:
        raise ConfigError("RENDER_MAX_PIXELS must be at least 1000000 (one megapixel)")
    if config["MAX_CONTENT_LENGTH"] is not None and config["MAX_CONTENT_LENGTH"] <= 0:
        raise ConfigError("MAX_UPLOAD_MB must be at least 1")
    if config["OCR_PAGE_TIME_LIMIT"] < 5:
        raise ConfigError("OCR_PAGE_TIME_LIMIT must be at least 5 seconds")
    if config["OCR_STALL_TIMEOUT"] <= config["OCR_PAGE_TIME_LIMIT"]:
        raise ConfigError("OCR_STALL_TIMEOUT must be longer than OCR_PAGE_TIME_LIMIT")
    if config["OCR_JOB_TTL"] <= config["OCR_STALL_TIMEOUT"]:
        raise ConfigError("OCR_JOB_TTL must be longer than OCR_STALL_TIMEOUT")
    if config["JOB_WINDOW"] < 0:
        raise ConfigError("JOB_WINDOW must be 0 (automatic) or a number of pages")
    if not 1 <= config["JOB_HEARTBEAT_SECONDS"] <= 60:
        raise ConfigError("JOB_HEARTBEAT_SECONDS must be between 1 and 60")
    if not 1 <= config["WEBHOOK_TIMEOUT"] <= 60:
        raise ConfigError("WEBHOOK_TIMEOUT must be between 1 and 60 seconds")
    if config["EXPORT_RETENTION_HOURS"] < 1:
        raise ConfigError("EXPORT_RETENTION_HOURS must be at least 1")
    if config["JOB_PAGE_RETENTION_DAYS"] < 1:
        raise ConfigError("JOB_PAGE_RETENTION_DAYS must be at least 1")
    if not config["PUBLIC_URL"].startswith(("http://", "https://")):
        raise ConfigError("PUBLIC_URL must be an http:// or https:// URL")
    if not config["REDIS_URL"].startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL must be a redis://, rediss:// or unix:// URL")


def page_task_time_limit(config: Any) -> int:
    """Seconds after which Celery kills a page task outright (its hard time limit): the
    engine's own limit, then the soft limit 5 s later, then this (app/celery_app.py)."""
    return int(config["OCR_PAGE_TIME_LIMIT"]) + 20
