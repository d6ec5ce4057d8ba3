"""Error pages: what a user sees when something cannot be done, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.queue import REDIS_DOWN, QueueUnavailable

log = logging.getLogger(__name__)


def wants_json() -> bool:
    return (
        request.path.startswith("/api/")
        or request.path.endswith("/status")
        or request.accept_mimetypes.best == "application/json"
    )


def error_response(status: int, title: str, message: str):
    if wants_json():
        return jsonify(error=title, message=message), status
    return render_template("error.html", title=title, message=message), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(QueueUnavailable)
    def queue_unavailable(exc: QueueUnavailable):
        log.warning("queue unavailable on %s: %s", request.path, exc)
        return error_response(
            503,
            "The task queue is unavailable",
            "Redis, which holds the OCR queue, cannot be reached right now. Nothing was "
            "started or changed. Try again in a minute; if it persists, tell an operator.",
        )

    for exc_type in REDIS_DOWN:
        app.register_error_handler(exc_type, queue_unavailable)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(
            400,
            "The form expired",
            "The form was missing its security token or it was stale. Go back, reload the "
            "page and submit again.",
        )

    @app.errorhandler(413)
    def too_large(exc: HTTPException):
        limit = app.config["MAX_CONTENT_LENGTH"]
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
        return error_response(
            413, "The file is too large", f"Uploads are limited to {size} (MAX_UPLOAD_MB)."
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_response(exc.code or 500, exc.name, exc.description or "")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s", request.path)
        return error_response(
            500,
            "Something went wrong",
            "The error was logged. Nothing you saved before this page was lost.",
        )
