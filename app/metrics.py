"""The deployment's Prometheus metrics: counters kept in Redis, gauges read when scraped.

Counters (pages finished, page OCR seconds, jobs started and ended) are counted where the work
happens, in Celery pool processes on any number of worker hosts, and read by whichever gunicorn
process a scrape reaches. prometheus_client's multiprocess mode sums the files of the processes
of one host only, so every worker host would need a scrape endpoint of its own and every scrape
config would have to know the hosts. Redis is already shared by every process of every host:
a HINCRBY from app/services/job_events.py counts once for the whole deployment, and any web
process answers a scrape with the whole figure. Gauges (jobs running, messages waiting, workers
online) are read at scrape time from the database, the broker and the workers, so that they are
never stale and never counted twice.

This module owns every ``metrics:*`` key (docs/operations.md lists them):

- ``metrics:pages_finished``: hash ``<kind>|<engine>|<outcome>`` -> pages. Permanent by design:
  a counter, a few dozen fields at most (every label comes from a fixed set).
- ``metrics:page_seconds:<engine>``: hash ``b<i>`` (pages in bucket i, not cumulative) and
  ``sum``. Permanent by design, one per engine.
- ``metrics:jobs_started``: hash ``<kind>``; ``metrics:jobs_ended``: hash ``<kind>|<state>``.
  Permanent by design.
- ``metrics:counted:<event>:<job_id>``: marks a job's start or end as counted, so that a
  lifecycle calling twice counts once. TTL ``COUNTED_MARK_TTL``.
- ``metrics:worker_pages:<minute>``: hash Celery node -> pages finished in that minute (the
  dashboard's "last 10 minutes"). TTL ``WORKER_MINUTE_TTL``.
- ``metrics:pages_hourly:<hour>``: pages finished in that hour (the dashboard's throughput).
  TTL ``HOURLY_TTL``.

A flushed Redis resets the counters to zero, which Prometheus's rate() treats as a counter
reset: nothing is lost but the increments between the last scrape and the flush.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app import task_names
from app.engines import ENGINES
from app.extensions import db
from app.models import FINISHED_ITEM_STATES, Job, JobKind, JobState
from app.services import cluster

log = logging.getLogger(__name__)

PREFIX = "proofing"
PAGES_FINISHED_KEY = "metrics:pages_finished"
JOBS_STARTED_KEY = "metrics:jobs_started"
JOBS_ENDED_KEY = "metrics:jobs_ended"
#: Upper bounds of the page OCR time buckets, in seconds: a clean Tesseract page is 0.5 to
#: 5 s, Google Vision 1 to 3 s, and the page time limit defaults to 120 s.
SECONDS_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
#: Long enough to cover any second call of one job's start or end hook.
COUNTED_MARK_TTL = 7 * 24 * 3600
#: The dashboard reads the last 10 minutes; a few more survive a slow clock between hosts.
WORKER_MINUTE_TTL = 15 * 60
#: The dashboard shows the last 24 hours.
HOURLY_TTL = 26 * 3600


def page_seconds_key(engine: str) -> str:
    return f"metrics:page_seconds:{engine}"


def counted_key(event: str, job_id: str) -> str:
    return f"metrics:counted:{event}:{job_id}"


def worker_pages_key(minute: int) -> str:
    return f"metrics:worker_pages:{minute}"


def hourly_key(hour: int) -> str:
    return f"metrics:pages_hourly:{hour}"


# -- labels: each from a fixed set, so no label can carry a slug, a name or a free value -----


def kind_label(kind: str | None) -> str:
    return kind if kind in set(JobKind) else "other"


def engine_label(engine: str | None) -> str:
    if engine is None:
        return "none"
    return engine if engine in ENGINES else "other"


def outcome_label(outcome: str) -> str:
    return outcome if outcome in set(FINISHED_ITEM_STATES) else "other"


def state_label(state: str) -> str:
    return state if state in set(JobState) else "other"


def bucket_index(seconds: float) -> int:
    """Index of the first bucket whose bound holds `seconds`; len(SECONDS_BUCKETS) is +Inf."""
    for index, bound in enumerate(SECONDS_BUCKETS):
        if seconds <= bound:
            return index
    return len(SECONDS_BUCKETS)


# -- counting (called from app/services/job_events.py) ---------------------------------------

# Counts a job's start or end once: SET NX of the mark, and the increment only if it was set.
_COUNT_ONCE = """
if redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  return 1
end
return 0
"""


def count_job_started(client: redis.Redis, job: Job) -> bool:
    """Count the start of `job` (once, whatever calls this twice); True if it counted."""
    return bool(
        client.eval(
            _COUNT_ONCE,
            2,
            counted_key("started", job.id),
            JOBS_STARTED_KEY,
            kind_label(job.kind),
            COUNTED_MARK_TTL,
        )
    )


def count_job_ended(client: redis.Redis, job: Job) -> bool:
    """Count the end of `job` with its final state (once); True if it counted."""
    return bool(
        client.eval(
            _COUNT_ONCE,
            2,
            counted_key("ended", job.id),
            JOBS_ENDED_KEY,
            f"{kind_label(job.kind)}|{state_label(job.state)}",
            COUNTED_MARK_TTL,
        )
    )


def count_page_finished(
    client: redis.Redis,
    job: Job,
    outcome: str,
    seconds: float | None,
    worker: str | None,
    *,
    now: float | None = None,
) -> None:
    """Count one finished page: by kind, engine and outcome; its OCR time when work was done;
    and, for the dashboard, per worker per minute and per hour. One round trip."""
    now = time.time() if now is None else now
    engine = engine_label(job.engine)
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(PAGES_FINISHED_KEY, f"{kind_label(job.kind)}|{engine}|{outcome_label(outcome)}")
    if seconds is not None and job.kind == JobKind.OCR and seconds >= 0:
        key = page_seconds_key(engine)
        pipe.hincrby(key, f"b{bucket_index(seconds)}", 1)
        pipe.hincrbyfloat(key, "sum", float(seconds))
    minute, hour = int(now // 60), int(now // 3600)
    if worker:
        pipe.hincrby(worker_pages_key(minute), worker, 1)
        pipe.expire(worker_pages_key(minute), WORKER_MINUTE_TTL)
    pipe.incr(hourly_key(hour))
    pipe.expire(hourly_key(hour), HOURLY_TTL)
    pipe.execute()


# -- reading, for the dashboard ---------------------------------------------------------------


def pages_by_worker(client: redis.Redis, minutes: int = 10, *, now: float | None = None) -> dict:
    """Pages each Celery node finished in the last `minutes` minutes (this one included)."""
    now = time.time() if now is None else now
    current = int(now // 60)
    pipe = client.pipeline(transaction=False)
    for minute in range(current - minutes + 1, current + 1):
        pipe.hgetall(worker_pages_key(minute))
    totals: dict[str, int] = {}
    for counts in pipe.execute():
        for worker, pages in counts.items():
            name = worker.decode() if isinstance(worker, bytes) else worker
            totals[name] = totals.get(name, 0) + int(pages)
    return totals


def pages_per_hour(
    client: redis.Redis, hours: int = 24, *, now: float | None = None
) -> list[tuple[int, int]]:
    """(hour as a Unix time, pages finished in it) for the last `hours` hours, oldest first;
    the last one is the hour under way."""
    now = time.time() if now is None else now
    current = int(now // 3600)
    hour_numbers = list(range(current - hours + 1, current + 1))
    values = client.mget([hourly_key(hour) for hour in hour_numbers])
    return [
        (hour * 3600, int(value or 0)) for hour, value in zip(hour_numbers, values, strict=True)
    ]


# -- the scrape ---------------------------------------------------------------------------------


@dataclass
class Gauges:
    """What a scrape reads besides the counters; None where that part could not be read."""

    ok: dict[str, bool] = field(default_factory=dict)
    #: (kind, state) -> jobs, for the states that are not terminal.
    jobs_running: dict[tuple[str, str], int] | None = None
    queue_depths: dict[str, int] | None = None
    workers: list[Any] | None = None
    consumers: dict[str, int] = field(default_factory=dict)


def _fields(raw: dict[Any, Any]) -> Iterator[tuple[list[str], float]]:
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else key
        yield name.split("|"), float(value)


def read_gauges() -> Gauges:
    """The scrape-time figures: jobs from the database, queues and workers from
    app/services/cluster.py. Each part that fails is reported, never raised."""
    gauges = Gauges()
    try:
        rows = db.session.execute(
            select(Job.kind, Job.state, func.count())
            .where(Job.state.in_((JobState.QUEUED, JobState.RUNNING)))
            .group_by(Job.kind, Job.state)
        ).all()
        gauges.jobs_running = {(kind, state): count for kind, state, count in rows}
        gauges.ok["database"] = True
    except Exception as exc:  # noqa: BLE001 -- a database outage is a gauge left out, not a 500
        db.session.rollback()
        log.warning("metrics: database unreadable (%s)", type(exc).__name__)
        gauges.ok["database"] = False
    try:
        gauges.queue_depths = cluster.queue_depths()
        gauges.ok["broker"] = True
    except redis.RedisError as exc:
        log.warning("metrics: broker unreadable (%s)", type(exc).__name__)
        gauges.ok["broker"] = False
    if cluster.workers_reachable():
        gauges.workers = cluster.workers()
        gauges.ok["workers"] = True
    else:
        gauges.ok["workers"] = False
    try:
        gauges.consumers = {queue: cluster.consumers(queue) for queue in task_names.ALL_QUEUES}
    except redis.RedisError as exc:
        log.warning("metrics: workers' announcements unreadable (%s)", type(exc).__name__)
        gauges.ok["workers"] = False
    return gauges


class DeploymentCollector(Collector):
    """Every metric, built afresh at each scrape from Redis, the database and the workers.

    `gauges` is a callable returning the scrape-time figures (app/services/cluster.py and the
    database); a part that cannot be read is left out and `proofing_scrape_ok{part}` says 0.
    """

    def __init__(self, client: redis.Redis, gauges: Callable[[], Gauges]) -> None:
        self.client = client
        self.gauges = gauges

    def collect(self) -> Iterator[Any]:
        ok = GaugeMetricFamily(
            f"{PREFIX}_scrape_ok",
            "1 if this part could be read for this scrape, 0 if not.",
            labels=["part"],
        )
        try:
            yield from self._counters()
            ok.add_metric(["redis"], 1)
        except redis.RedisError as exc:
            log.warning("metrics: Redis unreadable (%s)", type(exc).__name__)
            ok.add_metric(["redis"], 0)
        figures = self.gauges()
        for part, readable in figures.ok.items():
            ok.add_metric([part], 1 if readable else 0)
        yield ok
        if figures.jobs_running is not None:
            running = GaugeMetricFamily(
                f"{PREFIX}_jobs_running",
                "Jobs not yet ended (queued or running), by kind and state.",
                labels=["kind", "state"],
            )
            for kind in JobKind:
                for state in (JobState.QUEUED, JobState.RUNNING):
                    running.add_metric(
                        [kind.value, state.value], figures.jobs_running.get((kind, state), 0)
                    )
            yield running
        if figures.queue_depths is not None:
            waiting = GaugeMetricFamily(
                f"{PREFIX}_queue_messages",
                "Messages waiting in each Celery queue (not yet taken by a worker).",
                labels=["queue"],
            )
            for queue, depth in sorted(figures.queue_depths.items()):
                waiting.add_metric([queue], depth)
            yield waiting
        if figures.workers is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_workers_online",
                "Celery worker nodes answering (each node runs several processes).",
                value=len(figures.workers),
            )
            processes = GaugeMetricFamily(
                f"{PREFIX}_queue_consumers",
                "Worker processes able to take from each queue.",
                labels=["queue"],
            )
            for queue, count in sorted(figures.consumers.items()):
                processes.add_metric([queue], count)
            yield processes

    def _counters(self) -> Iterator[Any]:
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(PAGES_FINISHED_KEY)
        pipe.hgetall(JOBS_STARTED_KEY)
        pipe.hgetall(JOBS_ENDED_KEY)
        engines = sorted({*ENGINES, "other"})
        for engine in engines:
            pipe.hgetall(page_seconds_key(engine))
        pages, started, ended, *seconds = pipe.execute()

        finished = CounterMetricFamily(
            f"{PREFIX}_pages_finished",
            "Pages of jobs finished, by kind of job, engine and outcome.",
            labels=["kind", "engine", "outcome"],
        )
        for labels, value in _fields(pages):
            if len(labels) == 3:
                finished.add_metric(labels, value)
        yield finished

        jobs_started = CounterMetricFamily(
            f"{PREFIX}_jobs_started", "Jobs started, by kind.", labels=["kind"]
        )
        for labels, value in _fields(started):
            jobs_started.add_metric(labels[:1], value)
        yield jobs_started

        jobs_ended = CounterMetricFamily(
            f"{PREFIX}_jobs_ended",
            "Jobs ended, by kind and final state (succeeded, partially_failed, failed, "
            "cancelled, interrupted).",
            labels=["kind", "state"],
        )
        for labels, value in _fields(ended):
            if len(labels) == 2:
                jobs_ended.add_metric(labels, value)
        yield jobs_ended

        histogram = HistogramMetricFamily(
            f"{PREFIX}_page_ocr_seconds",
            "Seconds of OCR work per page, by engine (pages skipped without work are left out).",
            labels=["engine"],
        )
        for engine, raw in zip(engines, seconds, strict=True):
            if not raw:
                continue
            values = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}
            cumulative, buckets = 0.0, []
            for index, bound in enumerate((*SECONDS_BUCKETS, float("inf"))):
                cumulative += values.get(f"b{index}", 0.0)
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            histogram.add_metric([engine], buckets, sum_value=values.get("sum", 0.0))
        yield histogram
