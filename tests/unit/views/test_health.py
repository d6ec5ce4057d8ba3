"""/healthz (app/views/health.py): the database, Redis, the workers and each queue. The
workers are what they announce in Redis (fakeredis here; tests/integration/
test_jobs_across_projects.py has a real worker answering, and none)."""

from __future__ import annotations

from app.task_names import ALL_QUEUES
from app.worker_presence import this_process_info


def announce(app, hostname: str, queues: tuple[str, ...]) -> None:
    """A worker's announcement, as its main process writes it (app/worker_presence.py)."""
    app.extensions["worker_presence"].announce(this_process_info(hostname, queues, 2))


def test_healthz_is_200_when_everything_answers(app, client):
    """Database, Redis and a worker taking every queue: 200 and status ok (no login needed)."""
    announce(app, "celery@worker-1", ALL_QUEUES)
    response = client.get("/healthz")
    assert response.status_code == 200
    payload = response.get_json()
    assert payload["status"] == "ok"
    assert payload["checks"]["workers"] == {"ok": True, "count": 1, "names": ["celery@worker-1"]}
    for queue_name in ALL_QUEUES:
        assert payload["checks"][f"queue:{queue_name}"] == {
            "ok": True,
            "consumers": 1,
            "waiting": 0,
        }


def test_healthz_is_503_without_workers(client):
    """No worker announced is degraded: nothing would run the tasks."""
    response = client.get("/healthz")
    assert response.status_code == 503
    payload = response.get_json()
    assert payload["status"] == "degraded"
    assert payload["checks"]["workers"] == {"ok": False, "count": 0, "names": []}


def test_healthz_names_a_queue_with_messages_and_no_consumer(app, client):
    """A worker that takes only some queues: the queue nobody takes is failed once something
    waits in it, with its consumers and waiting messages."""
    announce(app, "celery@split-only", ("interactive", "celery"))
    app.extensions["redis"].rpush("ocr", b"a page message")
    checks = client.get("/healthz").get_json()["checks"]
    assert checks["queue:ocr"] == {"ok": False, "consumers": 0, "waiting": 1}
    assert checks["queue:interactive"] == {"ok": True, "consumers": 1, "waiting": 0}


def test_healthz_is_503_when_redis_is_down(client, redis_down):
    """Redis unreachable: 503, naming Redis, and workers reported unreachable through it."""
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == {"ok": True}
    assert checks["redis"]["ok"] is False
    assert checks["workers"] == {"ok": False, "error": "redis unreachable"}
