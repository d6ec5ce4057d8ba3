"""GET /metrics (app/metrics.py): counters kept in Redis by job_events, gauges read when
scraped, every label from a fixed set, and the METRICS_TOKEN check. Parsed with
prometheus_client's own text parser, as Prometheus would read it."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import metrics
from app.extensions import db
from app.models import Job, JobState, Project
from app.services import cluster, job_events
from app.services.cluster import RunningTask, WorkerNode, _Snapshot
from app.worker_presence import this_process_info
from tests.support import add_ready_project, make_job


@pytest.fixture
def two_workers(app, monkeypatch):
    """What remote control would answer, and what the nodes announce in Redis: an OCR-only
    node and a node taking every queue."""
    nodes = [
        WorkerNode("ocr-1@host-a", ("ocr",), 4, 101, time.time() - 60, time.time()),
        WorkerNode(
            "all@host-b",
            ("celery", "interactive", "ocr"),
            2,
            202,
            time.time() - 30,
            time.time(),
            (RunningTask("all@host-b", "worker.tasks.ocr_page", "j", 0, time.time()),),
        ),
    ]
    monkeypatch.setattr(
        cluster,
        "_ask_workers",
        lambda celery: _Snapshot(taken_at=time.monotonic(), nodes=nodes, reachable=True),
    )
    for node in nodes:
        app.extensions["worker_presence"].announce(
            this_process_info(node.hostname, node.queues, node.concurrency)
        )
    return nodes


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """name of each sample -> {labels as sorted tuples: value}."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def the_project(slug: str) -> Project:
    return db.session.query(Project).filter_by(slug=slug).one()


def test_page_and_job_counters_sum_what_job_events_reported(app, client, two_workers):
    add_ready_project("counted-book", 3)
    job = make_job(the_project("counted-book"), state=JobState.RUNNING, ended_ago=None)
    job_events.job_started(job)
    for outcome, seconds in (("done", 0.4), ("done", 3.0), ("failed", 150.0), ("skipped", None)):
        job_events.page_finished(job, outcome, seconds, "all@host-b")
    job.state = JobState.PARTIALLY_FAILED
    db.session.commit()
    job_events.job_ended(job)
    job_events.job_ended(job)  # a lifecycle calling twice counts once

    samples = scrape(client)
    pages = samples["proofing_pages_finished_total"]
    assert pages == {
        (("engine", "tesseract"), ("kind", "ocr"), ("outcome", "done")): 2.0,
        (("engine", "tesseract"), ("kind", "ocr"), ("outcome", "failed")): 1.0,
        (("engine", "tesseract"), ("kind", "ocr"), ("outcome", "skipped")): 1.0,
    }
    assert samples["proofing_jobs_started_total"] == {(("kind", "ocr"),): 1.0}
    assert samples["proofing_jobs_ended_total"] == {
        (("kind", "ocr"), ("state", "partially_failed")): 1.0
    }
    # The skipped page did no work: three observations, in cumulative buckets.
    buckets = samples["proofing_page_ocr_seconds_bucket"]
    assert buckets[(("engine", "tesseract"), ("le", "0.25"))] == 0
    assert buckets[(("engine", "tesseract"), ("le", "0.5"))] == 1
    assert buckets[(("engine", "tesseract"), ("le", "5.0"))] == 2
    assert buckets[(("engine", "tesseract"), ("le", "120.0"))] == 2
    assert buckets[(("engine", "tesseract"), ("le", "300.0"))] == 3
    assert buckets[(("engine", "tesseract"), ("le", "+Inf"))] == 3
    assert samples["proofing_page_ocr_seconds_count"] == {(("engine", "tesseract"),): 3.0}
    assert samples["proofing_page_ocr_seconds_sum"] == {(("engine", "tesseract"),): 153.4}


def test_gauges_are_read_when_scraped(app, client, two_workers):
    add_ready_project("gauge-book", 2)
    make_job(the_project("gauge-book"), state=JobState.RUNNING, ended_ago=None, job_id="live-1")
    make_job(the_project("gauge-book"), state=JobState.SUCCEEDED, job_id="over-1")
    fake = app.extensions["redis"]
    fake.rpush("ocr", *[b"m"] * 5)
    fake.rpush("ocr\x06\x166", b"m", b"m")  # kombu's list for priority 6 of the same queue
    fake.rpush("interactive", b"m")

    samples = scrape(client)
    running = samples["proofing_jobs_running"]
    assert running[(("kind", "ocr"), ("state", "running"))] == 1
    assert running[(("kind", "ocr"), ("state", "queued"))] == 0
    assert running[(("kind", "export"), ("state", "running"))] == 0
    assert samples["proofing_queue_messages"] == {
        (("queue", "celery"),): 0,
        (("queue", "interactive"),): 1,
        (("queue", "ocr"),): 7,
    }
    assert samples["proofing_workers_online"] == {(): 2}
    assert samples["proofing_queue_consumers"] == {
        (("queue", "celery"),): 1,
        (("queue", "interactive"),): 1,
        (("queue", "ocr"),): 2,
    }
    assert samples["proofing_scrape_ok"] == {
        (("part", "broker"),): 1,
        (("part", "database"),): 1,
        (("part", "redis"),): 1,
        (("part", "workers"),): 1,
    }


def test_no_label_carries_a_slug_a_user_or_a_free_value(app, client, two_workers):
    add_ready_project("secret-slug-4711", 1)
    job = make_job(the_project("secret-slug-4711"), job_id="job-id-0815")
    job.engine = "engine-typed-by-someone"
    job.kind = "kind-nobody-knows"
    job.state = "state-from-nowhere"
    job_events.job_started(job)
    job_events.page_finished(job, "outcome-made-up", 1.0, "worker-name-9@host")
    job_events.job_ended(job)
    db.session.rollback()

    body = client.get("/metrics").get_data(as_text=True)
    for unbounded in (
        "secret-slug-4711",
        "job-id-0815",
        "typed-by",
        "nobody",
        "nowhere",
        "made-up",
        "worker-name-9",
    ):
        assert unbounded not in body
    samples = scrape(client)
    assert samples["proofing_pages_finished_total"] == {
        (("engine", "other"), ("kind", "other"), ("outcome", "other")): 1.0
    }
    assert samples["proofing_jobs_ended_total"] == {(("kind", "other"), ("state", "other")): 1.0}


def test_metrics_token_is_required_when_set(app, client, two_workers):
    app.config["METRICS_TOKEN"] = "scrape-me-please"
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-not"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "proofing_" not in wrong.get_data(as_text=True)
    assert "proofing_workers_online" in scrape(client, Authorization="Bearer scrape-me-please")


def test_a_redis_outage_is_a_scrape_that_says_so(app, client, two_workers, monkeypatch):
    import redis

    def down(*args, **kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(app.extensions["redis"], "pipeline", down)
    samples = scrape(client)
    assert samples["proofing_scrape_ok"][(("part", "redis"),)] == 0
    assert samples["proofing_scrape_ok"][(("part", "broker"),)] == 0
    assert samples["proofing_scrape_ok"][(("part", "database"),)] == 1
    assert "proofing_pages_finished_total" not in samples
    assert "proofing_jobs_running" in samples


def test_job_events_never_raise_when_redis_is_down(app, monkeypatch):
    import redis

    add_ready_project("quiet-book", 1)
    job = make_job(the_project("quiet-book"))

    def down(*args, **kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(app.extensions["redis"], "eval", down)
    monkeypatch.setattr(app.extensions["redis"], "pipeline", down)
    job_events.job_started(job)
    job_events.page_finished(job, "done", 1.0, "w@h")
    job_events.job_ended(job)
    assert db.session.get(Job, job.id).state == JobState.SUCCEEDED


def test_pages_by_worker_and_per_hour_cover_their_window(app):
    fake = app.extensions["redis"]
    add_ready_project("window-book", 1)
    job = make_job(the_project("window-book"))
    now = 1_800_000_000.0
    for minutes_ago, worker in ((0, "a@h"), (3, "a@h"), (9, "b@h"), (10, "b@h"), (61, "a@h")):
        metrics.count_page_finished(fake, job, "done", 1.0, worker, now=now - minutes_ago * 60)
    assert metrics.pages_by_worker(fake, 10, now=now) == {"a@h": 2, "b@h": 1}
    hourly = metrics.pages_per_hour(fake, 3, now=now)
    assert [hour for hour, _ in hourly] == [
        (int(now // 3600) - 2) * 3600,
        (int(now // 3600) - 1) * 3600,
        int(now // 3600) * 3600,
    ]
    assert sum(pages for _, pages in hourly) == 5
    assert 0 < fake.ttl(metrics.worker_pages_key(int(now // 60))) <= metrics.WORKER_MINUTE_TTL
    assert fake.ttl(metrics.PAGES_FINISHED_KEY) == -1  # a counter: permanent by design
