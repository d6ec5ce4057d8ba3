"""GET /metrics against real processes: gunicorn with two processes, a real redis-server as
broker, and a Celery worker that comes and goes. Every scrape, whichever gunicorn process
answers it, gives the same counts; the queue gauge counts the broker's real lists (priority
lists included); workers and consumers follow the worker. Parsed with prometheus_client."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app import queue, task_names
from app.extensions import db
from app.models import Job, JobState, Project
from app.services import job_events
from tests.support import RedisServer, Stack, WebServer, add_ready_project, wait_for

pytestmark = pytest.mark.integration

TOKEN = "integration-metrics-token"


@pytest.fixture
def metrics_stack(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    stack = Stack(tmp_path, server, METRICS_TOKEN=TOKEN)
    web = None
    try:
        web = WebServer(stack.config, tmp_path / "gunicorn.log").start()
        yield stack, web
    finally:
        if web is not None:
            web.stop()
        stack.stop()
        server.stop()


def scrape(web: WebServer) -> dict[str, dict[tuple, float]]:
    """One scrape on a new connection (so that either gunicorn process may take it)."""
    response = requests.get(
        f"{web.url}/metrics",
        headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_every_gunicorn_process_gives_the_whole_deployments_figures(metrics_stack):
    stack, web = metrics_stack
    assert requests.get(f"{web.url}/metrics", timeout=10).status_code == 401

    with stack.app.app_context():
        # Messages waiting with nobody to take them: three plain, two of priority 6.
        for _ in range(3):
            queue.enqueue(task_names.CLEAN_UP)
        celery = stack.app.extensions["celery"]
        for _ in range(2):
            celery.send_task(task_names.CLEAN_UP, priority=6, ignore_result=True)
        # Pages counted by "another host": this process, as a worker's pool process would.
        add_ready_project("scraped-book", 1)
        project = db.session.query(Project).filter_by(slug="scraped-book").one()
        job = Job(
            id="scraped-job",
            project_id=project.id,
            engine="tesseract",
            language="eng",
            selection="all",
            state=JobState.RUNNING,
            total=3,
        )
        db.session.add(job)
        db.session.commit()
        job_events.job_started(job)
        for seconds in (0.6, 1.5, 7.0):
            job_events.page_finished(job, "done", seconds, "w1@host-a")
        db.session.remove()

    scrapes = [scrape(web) for _ in range(8)]
    for samples in scrapes:
        assert samples["proofing_queue_messages"][(("queue", "celery"),)] == 5
        assert samples["proofing_workers_online"] == {(): 0}
        assert samples["proofing_queue_consumers"][(("queue", "ocr"),)] == 0
        done = (("engine", "tesseract"), ("kind", "ocr"), ("outcome", "done"))
        assert samples["proofing_pages_finished_total"][done] == 3
        assert samples["proofing_page_ocr_seconds_count"] == {(("engine", "tesseract"),): 3}
        assert samples["proofing_jobs_running"][(("kind", "ocr"), ("state", "running"))] == 1
        assert samples["proofing_jobs_started_total"] == {(("kind", "ocr"),): 1}

    worker = stack.start_worker()

    def drained_and_seen():
        samples = scrape(web)
        waiting = samples["proofing_queue_messages"][(("queue", "celery"),)]
        online = samples["proofing_workers_online"][()]
        return samples if (waiting, online) == (0, 1) else None

    # The answers of the workers are cached for a few seconds in each gunicorn process.
    samples = wait_for(drained_and_seen, 60, "the worker to drain the queue and be seen")
    for name in task_names.ALL_QUEUES:
        assert samples["proofing_queue_consumers"][(("queue", name),)] == 1
    assert samples["proofing_scrape_ok"] == {
        (("part", "broker"),): 1,
        (("part", "database"),): 1,
        (("part", "redis"),): 1,
        (("part", "workers"),): 1,
    }

    worker.stop()
    wait_for(
        lambda: scrape(web)["proofing_workers_online"][()] == 0,
        30,
        "the stopped worker to drop out of workers_online",
    )
