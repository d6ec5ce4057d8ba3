"""GET /healthz: is each part up? For load balancers, `make run` and operators.

Workers and queues come from the workers' own announcements in Redis (app/worker_presence.py),
so the check costs two Redis round trips and never waits on a slow worker.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.extensions import db
from app.queue import REDIS_DOWN
from app.services import cluster
from app.task_names import ALL_QUEUES

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
            checks.update(_workers_and_queues())
        except REDIS_DOWN as exc:
            checks["workers"] = {"ok": False, "error": type(exc).__name__}
    else:
        checks["workers"] = {"ok": False, "error": "redis unreachable"}
    healthy = all(check["ok"] for check in checks.values())
    return jsonify(status="ok" if healthy else "degraded", checks=checks), 200 if healthy else 503


def _workers_and_queues() -> dict[str, dict]:
    presence = current_app.extensions["worker_presence"]
    workers = presence.workers(fresh=True)
    depths = cluster.queue_depths()
    checks = {
        "workers": {
            "ok": bool(workers),
            "count": len(workers),
            "names": [worker.hostname for worker in workers],
        }
    }
    for queue in ALL_QUEUES:
        consumers = sum(1 for worker in workers if queue in worker.queues)
        # A queue nobody takes is a problem only while something waits in it.
        checks[f"queue:{queue}"] = {
            "ok": consumers > 0 or depths[queue] == 0,
            "consumers": consumers,
            "waiting": depths[queue],
        }
    return checks
