"""/admin (app/services/dashboard.py): admins only; workers with what they run and their recent
pages, queues, running jobs of every project, the last day's failures, and throughput."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from app import metrics
from app.extensions import db
from app.models import JobState, Project
from app.services import cluster
from app.services.cluster import RunningTask, WorkerNode, _Snapshot
from app.worker_presence import this_process_info
from tests.support import make_job, wait_for
from tests.unit.ops import client_of, ready_project


@pytest.fixture
def answering(monkeypatch):
    """Set what the workers answer: a list of nodes, or None for an unreachable broker."""

    def answer(nodes):
        snapshot = _Snapshot(
            taken_at=time.monotonic(), nodes=nodes or [], reachable=nodes is not None
        )
        monkeypatch.setattr(cluster, "_ask_workers", lambda celery: snapshot)

    return answer


def test_only_admins_see_the_dashboard(web, users, answering):
    answering([])
    assert client_of(web, "edna").get("/admin").status_code == 403
    assert client_of(web, "pat").get("/admin").status_code == 403
    assert web.test_client().get("/admin").status_code == 302
    assert "Dashboard" not in client_of(web, "edna").get("/proofing/").get_data(as_text=True)
    ada = client_of(web, "ada")
    assert 'href="/admin">Dashboard' in ada.get("/proofing/").get_data(as_text=True)
    assert ada.get("/admin").status_code == 200


def test_the_dashboard_shows_workers_queues_jobs_failures_and_throughput(web, users, answering):
    ready_project(web, "dash-book", 4)
    with web.app_context():
        project = db.session.query(Project).filter_by(slug="dash-book").one()
        live = make_job(
            project,
            state=JobState.RUNNING,
            ended_ago=None,
            outcomes=["done", "queued", "queued", "queued"],
            job_id="live-job",
        )
        make_job(
            project,
            state=JobState.PARTIALLY_FAILED,
            outcomes=["done", "failed"],
            reason="Tesseract could not read the image",
            job_id="recent-failure",
        )
        make_job(
            project,
            state=JobState.FAILED,
            outcomes=["failed"],
            ended_ago=timedelta(days=2),
            reason="a failure of the day before yesterday",
            job_id="old-failure",
        )
        redis = web.extensions["redis"]
        redis.rpush("ocr", *[b"m"] * 3)
        for _ in range(6):
            metrics.count_page_finished(redis, live, "done", 1.0, "ocr@host-a")
        metrics.count_page_finished(redis, live, "done", 1.0, "gone@host-c")
    answering(
        [
            WorkerNode(
                "ocr@host-a",
                ("ocr",),
                4,
                4242,
                time.time() - 7200,
                time.time(),
                (
                    RunningTask(
                        "ocr@host-a", "worker.tasks.ocr_page", "live-job", 1, time.time() - 3
                    ),
                ),
            ),
            WorkerNode(
                "all@host-b", ("celery", "interactive", "ocr"), 2, 99, time.time(), time.time()
            ),
        ]
    )
    # How many take each queue comes from the workers' own announcements (app/worker_presence.py).
    with web.app_context():
        presence = web.extensions["worker_presence"]
        presence.announce(this_process_info("ocr@host-a", ("ocr",), 4))
        presence.announce(this_process_info("all@host-b", ("celery", "interactive", "ocr"), 2))
    page = client_of(web, "ada").get("/admin").get_data(as_text=True)

    workers = page.split('id="workers"')[1].split("</section>")[0]
    assert "ocr@host-a" in workers and "pid 4242 · up 2 h 0 min" in workers
    assert 'href="/proofing/dash-book/2/">page 2 of dash-book</a>' in workers
    assert "ocr page" in workers
    assert "all@host-b" in workers and "idle" in workers
    # A node that finished pages lately but no longer answers.
    assert "gone@host-c" in workers and "not answering" in workers
    assert "<td>6</td>" in workers

    queues = page.split('id="queues"')[1].split("</section>")[0]
    assert "<td><code>ocr</code></td><td>3</td><td>2" in queues

    jobs = page.split('id="jobs"')[1].split("</section>")[0]
    assert 'href="/proofing/dash-book/batch-ocr"' in jobs
    assert "1 of 4 finished" in jobs

    failures = page.split('id="failures"')[1].split("</section>")[0]
    assert "Tesseract could not read the image" in failures
    assert "day before yesterday" not in failures
    assert "1 page failed" in failures

    throughput = page.split('id="throughput"')[1].split("</section>")[0]
    assert "<strong>42</strong> pages per hour" in throughput  # 7 pages in 10 minutes


def test_with_no_worker_and_no_broker_the_dashboard_says_so(web, users, answering):
    answering([])
    ada = client_of(web, "ada")
    assert "No worker is running" in ada.get("/admin").get_data(as_text=True)
    answering(None)
    web.extensions["cluster_workers"].snapshot.taken_at = 0.0
    assert "The workers cannot be asked" in ada.get("/admin").get_data(as_text=True)


def test_worker_answers_are_cached_and_refreshed_without_waiting(app, monkeypatch):
    """The first request waits for the answers; later ones never do: a stale answer is
    returned at once while a background thread asks again."""
    asked = []
    release = threading.Event()

    def ask(celery):
        asked.append(time.monotonic())
        if len(asked) > 1:
            release.wait(10)  # a wedged worker: the second question hangs until released
        return _Snapshot(taken_at=time.monotonic(), nodes=[], reachable=len(asked) > 1)

    monkeypatch.setattr(cluster, "_ask_workers", ask)
    for _ in range(5):
        assert cluster.workers_reachable() is False  # the first answer, reused
    assert len(asked) == 1
    cache = app.extensions["cluster_workers"]
    cache.snapshot.taken_at -= cluster.CACHE_SECONDS
    assert cluster.workers_reachable() is False  # stale, returned while the refresh hangs
    assert cluster.workers_reachable() is False  # and no second refresh is started
    assert len(asked) == 2
    release.set()
    wait_for(lambda: cluster.workers_reachable(), 5, "the refreshed answer")
