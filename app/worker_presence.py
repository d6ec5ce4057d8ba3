"""Which Celery workers are alive, and what queues they take.

Each worker's main process announces itself every few seconds (worker/celery.py starts the
loop when the worker is ready): a JSON record under ``worker:<hostname>`` that expires unless
renewed, and its hostname in the sorted set ``workers`` scored by when it was last seen. So a
status poll can tell in one round trip, and within PRESENCE_TTL seconds of a worker's death,
that no live worker takes a queue, without asking every worker over the broker (Celery's remote
control needs a broadcast and a timeout for each question).

The same loop asks, at most once per WATCH_INTERVAL across the whole deployment, for the job
watchdog to run (``job_watch:pending``), so that a plain `celery -A worker worker` without beat
still recovers the pages of a worker that died.

Keys (docs/batch-ocr-task-tracking.md):
- ``worker:<hostname>``: JSON ``{"hostname", "queues", "concurrency", "pid", "started_at"}``,
  TTL PRESENCE_TTL, renewed every ANNOUNCE_INTERVAL.
- ``workers``: sorted set hostname -> last seen (Unix time); members older than PRESENCE_TTL
  are removed when read. Permanent by design: it holds only the live workers' names.
- ``job_watch:pending``: set while a watchdog run is queued, TTL WATCH_PENDING_TTL.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

#: Seconds between a worker's announcements.
ANNOUNCE_INTERVAL = 2.0
#: A worker not heard from for this long is gone: a status poll warns within this time.
PRESENCE_TTL = 6
#: The watchdog runs about this often while any worker is alive.
WATCH_INTERVAL = 3.0
#: A queued watchdog run that no process took within this long is asked for again.
WATCH_PENDING_TTL = 60
WORKERS_KEY = "workers"
WATCH_PENDING_KEY = "job_watch:pending"


def worker_key(hostname: str) -> str:
    return f"worker:{hostname}"


@dataclass(frozen=True)
class WorkerInfo:
    hostname: str
    queues: tuple[str, ...]
    concurrency: int
    pid: int
    started_at: float
    last_seen: float


class Presence:
    """Reads and writes the worker records. One per Redis client."""

    def __init__(self, client: redis.Redis, cache_seconds: float = 2.0) -> None:
        self.redis = client
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, list[WorkerInfo]] | None = None
        self._lock = threading.Lock()

    # -- the worker's side -----------------------------------------------------------------

    def announce(self, info: WorkerInfo) -> None:
        now = time.time()
        record = {
            "hostname": info.hostname,
            "queues": list(info.queues),
            "concurrency": info.concurrency,
            "pid": info.pid,
            "started_at": info.started_at,
        }
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(worker_key(info.hostname), json.dumps(record), ex=PRESENCE_TTL)
        pipe.zadd(WORKERS_KEY, {info.hostname: now})
        pipe.execute()

    def withdraw(self, hostname: str) -> None:
        """A worker stopping cleanly says so at once, rather than expiring."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(worker_key(hostname))
        pipe.zrem(WORKERS_KEY, hostname)
        pipe.execute()

    def ask_for_watch(self) -> bool:
        """True if this caller should queue a watchdog run (none is queued already)."""
        return bool(self.redis.set(WATCH_PENDING_KEY, time.time(), nx=True, ex=WATCH_PENDING_TTL))

    def watch_started(self) -> None:
        """A watchdog run began: the next one may be asked for."""
        self.redis.delete(WATCH_PENDING_KEY)

    # -- reading ---------------------------------------------------------------------------

    def workers(self, *, fresh: bool = False) -> list[WorkerInfo]:
        """The live workers, cached for a moment: a status poll of every running job asks."""
        now = time.monotonic()
        with self._lock:
            if not fresh and self._cached and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
        workers = self._read()
        with self._lock:
            self._cached = (now, workers)
        return workers

    def _read(self) -> list[WorkerInfo]:
        cutoff = time.time() - PRESENCE_TTL
        pipe = self.redis.pipeline(transaction=False)
        pipe.zremrangebyscore(WORKERS_KEY, "-inf", cutoff)
        pipe.zrange(WORKERS_KEY, 0, -1, withscores=True)
        _, members = pipe.execute()
        if not members:
            return []
        raws = self.redis.mget([worker_key(name.decode()) for name, _ in members])
        workers = []
        for (name, seen), raw in zip(members, raws, strict=True):
            if raw is None:
                continue
            try:
                data = json.loads(raw)
                workers.append(
                    WorkerInfo(
                        hostname=name.decode(),
                        queues=tuple(data["queues"]),
                        concurrency=int(data["concurrency"]),
                        pid=int(data["pid"]),
                        started_at=float(data["started_at"]),
                        last_seen=float(seen),
                    )
                )
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed %s: %r", worker_key(name.decode()), raw[:200])
        return sorted(workers, key=lambda w: w.hostname)

    def consumers(self, queue: str) -> int:
        """How many live workers take `queue`."""
        return sum(1 for worker in self.workers() if queue in worker.queues)

    def processes(self, queue: str) -> int:
        """How many worker processes, across live workers, may run tasks of `queue`."""
        return sum(worker.concurrency for worker in self.workers() if queue in worker.queues)


class Announcer:
    """The loop in a worker's main process: announce, and ask for the watchdog now and then.

    Runs in a daemon thread and only talks to Redis (never the database), so it is safe in
    the process the pool forks from. A Redis outage is logged and waited out.
    """

    def __init__(
        self,
        presence: Presence,
        info: WorkerInfo,
        request_watch: Callable[[], None],
    ) -> None:
        self.presence = presence
        self.info = info
        self.request_watch = request_watch
        self.stopped = threading.Event()
        self._last_watch = 0.0
        self.thread = threading.Thread(target=self._run, name="worker-presence", daemon=True)

    def start(self) -> Announcer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=ANNOUNCE_INTERVAL * 2)
        try:
            self.presence.withdraw(self.info.hostname)
        except redis.RedisError:
            pass  # it expires by itself

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.presence.announce(self.info)
                now = time.monotonic()
                if now - self._last_watch >= WATCH_INTERVAL:
                    self._last_watch = now
                    if self.presence.ask_for_watch():
                        try:
                            self.request_watch()
                        except Exception:
                            self.presence.watch_started()  # ask again next time
                            raise
            except Exception:  # noqa: BLE001 -- the loop must outlive any outage
                log.warning("worker presence: could not reach Redis", exc_info=True)
            self.stopped.wait(ANNOUNCE_INTERVAL)


def this_process_info(hostname: str, queues: tuple[str, ...], concurrency: int) -> WorkerInfo:
    now = time.time()
    return WorkerInfo(hostname, queues, concurrency, os.getpid(), now, now)
