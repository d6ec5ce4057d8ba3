"""GET /healthz: is each part up? For load balancers, `make run` and operators."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.extensions import db
from app.queue import REDIS_DOWN

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    checks: dict[str, dict] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 -- any database failure is a failed check, not a 500
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        current_app.extensions["redis"].ping()
        checks["redis"] = {"ok": True}
    except REDIS_DOWN as exc:
        checks["redis"] = {"ok": False, "error": type(exc).__name__}
    if checks["redis"]["ok"]:
        try:
            replies = current_app.extensions["celery"].control.ping(timeout=1.0)
            names = sorted(name for reply in replies for name in reply)
            checks["workers"] = {"ok": bool(names), "count": len(names), "names": names}
        except REDIS_DOWN as exc:
            checks["workers"] = {"ok": False, "error": type(exc).__name__}
    else:
        checks["workers"] = {"ok": False, "error": "redis unreachable"}
    healthy = all(check["ok"] for check in checks.values())
    return jsonify(status="ok" if healthy else "degraded", checks=checks), 200 if healthy else 503
