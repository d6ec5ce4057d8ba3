"""What the workers and the queues look like right now: the one place that asks.

The dashboard, /metrics and whatever else needs the live workers or the queue depths call
`workers`, `consumers`, `queue_depths` and `running_tasks`, never Celery or the broker directly,
so that the way of asking can change here alone. The workers and what they run come from
Celery's remote control (`stats`, `active_queues`, `active`); how many take a queue comes from
the workers' own announcements in Redis (app/worker_presence.py), which the status poll and
/healthz read too; the depths are LLENs on the broker's Redis.

Remote control is a broadcast whose answers are collected until nobody has answered for a
timeout, so every call waits at least that long: the three questions go out at once, each with
REMOTE_CONTROL_TIMEOUT, and their answers are kept for CACHE_SECONDS in each process. When they
are older, the previous answers are returned at once while a background thread asks again, so
only the first request of a web process ever waits for the workers, and a slow or wedged worker
never makes a page slow.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery
from flask import current_app

from app import task_names
from app.queue import REDIS_DOWN

log = logging.getLogger(__name__)

#: Seconds a remote-control question waits for answers (each worker answers in milliseconds
#: from its main process, even while every pool process runs Tesseract).
REMOTE_CONTROL_TIMEOUT = 0.8
#: Seconds the workers' answers are reused in one process.
CACHE_SECONDS = 5.0
#: kombu's Redis transport keeps a queue's messages of priority p > 0 in `<queue>\x06\x16<p>`,
#: with p rounded to one of these steps (kombu.transport.redis.PRIORITY_STEPS).
PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEPARATOR = "\x06\x16"


@dataclass(frozen=True)
class RunningTask:
    """A task a worker process is running now."""

    worker: str
    name: str
    job_id: str | None
    position: int | None
    started_at: float | None


@dataclass(frozen=True)
class WorkerNode:
    """A live Celery node: one `celery worker` process and its pool."""

    hostname: str
    queues: tuple[str, ...]
    concurrency: int
    pid: int | None
    started_at: float | None
    last_seen: float
    running: tuple[RunningTask, ...] = ()


@dataclass
class _Snapshot:
    taken_at: float = 0.0
    nodes: list[WorkerNode] = field(default_factory=list)
    reachable: bool = False


class _WorkerCache:
    """The last answers of the workers in this process. Once there is an answer, a stale one is
    still returned at once while one background thread asks again: only the very first request
    of a process waits for the workers."""

    def __init__(self) -> None:
        self.snapshot = _Snapshot()
        self.lock = threading.Lock()

    def get(self, celery: Celery) -> _Snapshot:
        fresh = time.monotonic() - self.snapshot.taken_at < CACHE_SECONDS
        if self.snapshot.taken_at and fresh:
            return self.snapshot
        if not self.snapshot.taken_at:
            with self.lock:
                if not self.snapshot.taken_at:
                    self.snapshot = _ask_workers(celery)
            return self.snapshot
        if self.lock.acquire(blocking=False):
            threading.Thread(target=self._refresh, args=(celery,), daemon=True).start()
        return self.snapshot

    def _refresh(self, celery: Celery) -> None:
        try:
            self.snapshot = _ask_workers(celery)
        except Exception:  # noqa: BLE001 -- the previous answer stays; the next get asks again
            log.exception("asking the workers failed")
        finally:
            self.lock.release()


def _cache() -> _WorkerCache:
    return current_app.extensions.setdefault("cluster_workers", _WorkerCache())


def workers() -> list[WorkerNode]:
    """Every live Celery node, by host name; [] when none answers or Redis is down."""
    return list(_cache().get(current_app.extensions["celery"]).nodes)


def workers_reachable() -> bool:
    """False when the workers could not be asked at all (the broker is down)."""
    return _cache().get(current_app.extensions["celery"]).reachable


def consumers(queue: str) -> int:
    """Live worker nodes taking messages from `queue` (their announcements, not a broadcast)."""
    return current_app.extensions["worker_presence"].consumers(queue)


def running_tasks() -> dict[str, list[RunningTask]]:
    """What each node is running now, by host name."""
    return {node.hostname: list(node.running) for node in workers()}


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue of app/task_names.py (taken ones are not counted)."""
    client = _broker()
    options = current_app.extensions["celery"].conf.broker_transport_options or {}
    steps = options.get("priority_steps", PRIORITY_STEPS)
    prefix = options.get("global_keyprefix", "")
    pipe = client.pipeline(transaction=False)
    for queue in task_names.ALL_QUEUES:
        for step in steps:
            pipe.llen(prefix + (f"{queue}{PRIORITY_SEPARATOR}{step}" if step else queue))
    lengths = iter(pipe.execute())
    return {queue: sum(next(lengths) for _ in steps) for queue in task_names.ALL_QUEUES}


def _broker() -> redis.Redis:
    """The broker's Redis: the app's own client when they are one (the default)."""
    config = current_app.config
    if config["CELERY_BROKER_URL"] == config["REDIS_URL"]:
        return current_app.extensions["redis"]
    client = current_app.extensions.get("broker_redis")
    if client is None:
        client = redis.Redis.from_url(
            config["CELERY_BROKER_URL"], socket_connect_timeout=2, socket_timeout=2
        )
        current_app.extensions["broker_redis"] = client
    return client


def _ask_workers(celery: Celery) -> _Snapshot:
    """Ask every worker three questions at once; one answer set per node."""
    inspect = celery.control.inspect(timeout=REMOTE_CONTROL_TIMEOUT)
    questions = {"stats": inspect.stats, "queues": inspect.active_queues, "active": inspect.active}
    answers: dict[str, dict[str, Any]] = {}
    reachable = True
    # Each question is a broadcast that waits out its timeout: asked in parallel, the three
    # cost one timeout. (kombu gives each thread its own reply queue.)
    with ThreadPoolExecutor(max_workers=len(questions)) as pool:
        futures = {name: pool.submit(ask) for name, ask in questions.items()}
        for name, future in futures.items():
            try:
                answers[name] = future.result() or {}
            except (*REDIS_DOWN, OSError) as exc:
                log.warning("workers could not be asked (%s): %s", name, type(exc).__name__)
                answers[name] = {}
                reachable = False
    seen = time.time()
    nodes = []
    for hostname in sorted({*answers["stats"], *answers["queues"], *answers["active"]}):
        stats = answers["stats"].get(hostname) or {}
        pool_stats = stats.get("pool") or {}
        uptime = stats.get("uptime")
        nodes.append(
            WorkerNode(
                hostname=hostname,
                queues=tuple(
                    sorted(q.get("name", "") for q in answers["queues"].get(hostname) or [])
                ),
                concurrency=int(pool_stats.get("max-concurrency") or 0),
                pid=stats.get("pid"),
                started_at=seen - float(uptime) if uptime is not None else None,
                last_seen=seen,
                running=tuple(_running(hostname, answers["active"].get(hostname) or [])),
            )
        )
    return _Snapshot(taken_at=time.monotonic(), nodes=nodes, reachable=reachable)


def _running(hostname: str, active: list[dict[str, Any]]) -> list[RunningTask]:
    tasks = []
    for task in active:
        kwargs = task.get("kwargs") if isinstance(task.get("kwargs"), dict) else {}
        position = kwargs.get("position")
        tasks.append(
            RunningTask(
                worker=hostname,
                name=str(task.get("name") or "?"),
                job_id=kwargs.get("job_id") if isinstance(kwargs.get("job_id"), str) else None,
                position=position if isinstance(position, int) else None,
                started_at=task.get("time_start"),
            )
        )
    return tasks
