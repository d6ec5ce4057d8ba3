"""/healthz (app/views/health.py): the database, Redis and the workers, each answering or not.
The worker ping is stubbed here (fakeredis is no broker)."""

from __future__ import annotations

import pytest


@pytest.fixture
def worker_replies(app, monkeypatch):
    """What `celery control ping` answers; fakeredis is no broker, so the ping is stubbed."""
    replies: list[dict] = []
    monkeypatch.setattr(app.extensions["celery"].control, "ping", lambda timeout: replies)
    return replies


def test_healthz_is_200_when_everything_answers(client, worker_replies):
    """Database, Redis and a worker answering: 200 and status ok (no login needed)."""
    worker_replies.append({"celery@worker-1": {"ok": "pong"}})
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "checks": {
            "database": {"ok": True},
            "redis": {"ok": True},
            "workers": {"ok": True, "count": 1, "names": ["celery@worker-1"]},
        },
    }


def test_healthz_is_503_without_workers(client, worker_replies):
    """No worker answering the ping is degraded: nothing would run the tasks."""
    response = client.get("/healthz")
    assert response.status_code == 503
    payload = response.get_json()
    assert payload["status"] == "degraded"
    assert payload["checks"]["workers"] == {"ok": False, "count": 0, "names": []}


def test_healthz_is_503_when_redis_is_down(client, redis_down, worker_replies):
    """Redis unreachable: 503, naming Redis, and workers reported unreachable through it."""
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == {"ok": True}
    assert checks["redis"]["ok"] is False
    assert checks["workers"] == {"ok": False, "error": "redis unreachable"}
