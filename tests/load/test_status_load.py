"""200 users polling the progress of 20 running 500-page jobs over HTTP, plus the pages they
open while they wait; and what those jobs cost in Redis.

Loopback only, bounded: each client polls once a second for DURATION seconds, then stops. The
jobs are started with `start_batch_ocr` and dispatched by a worker on the `celery` queue only,
so their 10,000 page messages wait in the `ocr` queue and the jobs stay running throughout.
Projects, pages and users are inserted directly (one tiny shared page image, cheap password
hashes): building them is not what is measured.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import resource
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image
from sqlalchemy import insert
from werkzeug.security import generate_password_hash

from app import processes
from app.extensions import db
from app.job_tracking import TRACKED, job_key
from app.models import JobKind, Page, Project, ProjectStatus, Role, User
from app.services import batch_ocr
from app.services.jobs.window import MIN_WINDOW
from tests.load import RESULTS
from tests.support import Stack, WebServer, child_pids, wait_for

pytestmark = [pytest.mark.load]

JOBS = 20
PAGES = 500
CLIENTS = 200
DURATION = 45.0
#: Every Nth poll a client also opens the progress page, or a page editor.
PROGRESS_PAGE_EVERY, EDITOR_EVERY = 15, 20
#: Pages of each job shown done, failed (with a reason) and running while the load runs.
DONE, FAILED, RUNNING = 100, 5, 2
TARGET_P99_MS = 50
#: The p99 the test fails above. The target is for the deployment's own cores; here the 200
#: client threads share the machine's 2 cores with gunicorn (and with other work), so a busy
#: moment delays a poll's thread by tens of ms without the app being any slower. Twice the
#: target still fails the regression the target is about: before the status read was O(1) per
#: poll, its p99 was 824 ms (docs/reliability.md).
FAIL_P99_MS = 2 * TARGET_P99_MS
TARGET_BYTES_PER_PAGE = 100


def build_projects(app) -> list[str]:
    """JOBS ready projects of PAGES pages sharing one 8x8 PNG; returns their slugs."""
    data_dir = app.config["DATA_DIR"]
    image = os.path.join(data_dir, "load", "page.png")
    os.makedirs(os.path.dirname(image))
    Image.new("L", (8, 8), 255).save(image)
    slugs = []
    for j in range(JOBS):
        project = Project(
            slug=f"load-{j:02d}",
            title=f"Load book {j}",
            language="eng",
            status=ProjectStatus.READY,
            source_filename="page.png",
            source_page_count=PAGES,
        )
        db.session.add(project)
        db.session.flush()
        db.session.execute(
            insert(Page),
            [
                {
                    "project_id": project.id,
                    "number": n,
                    "image_path": "load/page.png",
                    "width": 8,
                    "height": 8,
                }
                for n in range(1, PAGES + 1)
            ],
        )
        slugs.append(project.slug)
    db.session.execute(
        insert(User),
        [
            {
                "username": f"reader-{i}",
                "role": Role.PROOFREADER,
                "password_hash": generate_password_hash("reader-password", "pbkdf2:sha256:1"),
            }
            for i in range(CLIENTS)
        ],
    )
    db.session.commit()
    return slugs


def show_progress(app, slug: str) -> None:
    """Pages done, failed and running, written as the worker would (Redis only)."""
    tracker = app.extensions["job_trackers"][JobKind.OCR]
    record = tracker.current(slug)
    for position in range(DONE + FAILED + RUNNING):
        tracker.mark_running(record, position)
        if position < DONE:
            tracker.finish_page(record, position, "done")
        elif position < DONE + FAILED:
            tracker.finish_page(
                record, position, "failed", "Tesseract could not read the page image: truncated"
            )


def sign_in(base_url: str, username: str) -> str:
    """The session cookie of `username`, signed in (the clients send it on their own
    connections)."""
    with requests.Session() as session:
        login_page = session.get(f"{base_url}/login", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page)
        response = session.post(
            f"{base_url}/login",
            data={
                "username": username,
                "password": "reader-password",
                "csrf_token": token.group(1),
            },
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302, response.text[:300]
        return session.cookies["session"]


class Client(threading.Thread):
    """One user's browser tab: polls its job's status once a second on a kept-alive
    connection, and now and then opens the progress page or a page editor."""

    def __init__(self, index: int, port: int, cookie: str, slug: str, start: float, end: float):
        super().__init__(daemon=True)
        self.port, self.slug, self.start_at, self.end = port, slug, start, end
        self.headers = {"Cookie": f"session={cookie}"}
        self.random = random.Random(index)
        self.offset = self.random.randrange(PROGRESS_PAGE_EVERY * EDITOR_EVERY)
        self.samples: list[tuple[str, float]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        due, n = self.start_at, 0
        while due < self.end:
            time.sleep(max(0.0, due - time.monotonic()))
            n += 1
            kind, path = "status", f"/proofing/{self.slug}/batch-ocr/status"
            # Each user opens pages at moments of their own: without the offset, all 200 would
            # open the progress page in the same second, a burst no real audience makes.
            if (n + self.offset) % PROGRESS_PAGE_EVERY == 0:
                kind, path = "progress page", f"/proofing/{self.slug}/batch-ocr"
            elif (n + self.offset) % EDITOR_EVERY == 0:
                number = self.random.randint(1, PAGES)
                kind, path = "page editor", f"/proofing/{self.slug}/{number}/"
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=self.headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.errors.append(f"{kind} {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{kind} {type(exc).__name__}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.samples.append((kind, time.perf_counter() - started))
            due = max(due + 1.0, time.monotonic())
        conn.close()


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


@pytest.mark.timeout(900)
def test_200_users_polling_20_running_500_page_jobs(tmp_path):
    """200 clients polling 20 running 500-page jobs for 45 s get no error; each job's Redis
    keys cost under 100 bytes per page. Latency and throughput are measured and tabulated."""
    stack = Stack.on_own_redis(tmp_path)
    web = None
    try:
        redis = stack.app.extensions["redis"]
        with stack.app.app_context():
            slugs = build_projects(stack.app)
            baseline_memory = redis.info("memory")["used_memory"]
            # No worker: the jobs stay running, each with its first window of pages queued.
            job_ids = []
            for slug in slugs:
                project = db.session.query(Project).filter_by(slug=slug).one()
                outcome = batch_ocr.start_batch_ocr(
                    project, engine="tesseract", language="eng", selection="all", user=None
                )
                job_ids.append(outcome.job_id)
            window = MIN_WINDOW  # no worker has announced itself: the smallest window
            wait_for(lambda: redis.llen("ocr") == JOBS * window, 30, "each job's window queued")
            for slug in slugs:
                show_progress(stack.app, slug)

        per_job = [
            sum(
                redis.memory_usage(key, samples=0) or 0
                for key in (job_key(slug), *TRACKED[JobKind.OCR].job_keys(job))
            )
            for slug, job in zip(slugs, job_ids, strict=True)
        ]
        bytes_per_page = max(per_job) / PAGES
        used_memory = redis.info("memory")["used_memory"]
        queue_bytes = redis.memory_usage("ocr", samples=0)

        web = WebServer(stack.config, tmp_path / "web.log").start()
        with ThreadPoolExecutor(8) as pool:
            cookies = list(pool.map(lambda i: sign_in(web.url, f"reader-{i}"), range(CLIENTS)))
        worker_pids = child_pids(web.process.pid)
        cpu_before = cpu_seconds(worker_pids)
        client_cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic() + 1.0
        clients = [
            Client(i, web.port, cookies[i], slugs[i % JOBS], start + i / CLIENTS, start + DURATION)
            for i in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(DURATION + 120)
        elapsed = time.monotonic() - start
        server_cpu = cpu_seconds(worker_pids) - cpu_before
        usage = resource.getrusage(resource.RUSAGE_SELF)
        client_cpu = (usage.ru_utime - client_cpu_before.ru_utime) + (
            usage.ru_stime - client_cpu_before.ru_stime
        )
        with stack.app.app_context():
            still_running = [
                batch_ocr.job_status(db.session.query(Project).filter_by(slug=slug).one()).state
                for slug in slugs
            ]
    finally:
        if web is not None:
            web.stop()
        stack.stop()

    samples = [sample for client in clients for sample in client.samples]
    errors = [error for client in clients for error in client.errors]
    every = [seconds for _, seconds in samples]
    status = [seconds for kind, seconds in samples if kind == "status"]
    opened = [seconds for kind, seconds in samples if kind != "status"]
    p99 = percentile(status, 99)
    rows = []

    def row(measure: str, value: str, target: str = "", met: str = "") -> None:
        rows.append((measure, value, target, met))

    row(
        "set-up",
        f"{JOBS} running jobs x {PAGES} pages, {CLIENTS} clients polling once a "
        f"second for {DURATION:.0f} s; {' '.join(processes.WEB[:-1])}; 2-core machine shared "
        "with other work",
    )
    row(
        "requests",
        f"{len(samples)} in {elapsed:.1f} s = {len(samples) / elapsed:.0f} req/s "
        f"({len(status)} status, {len(opened)} progress pages and page editors)",
    )
    row(
        "errors",
        str(len(errors)) + (f" ({sorted(set(errors))[:5]})" if errors else ""),
        "0",
        "yes" if not errors else "no",
    )
    row(
        "status JSON latency p50 / p99",
        f"{ms(percentile(status, 50))} / {ms(p99)}",
        f"p99 < {TARGET_P99_MS} ms",
        "yes" if p99 * 1000 < TARGET_P99_MS else "no",
    )
    row(
        "progress page + page editor p50 / p99",
        f"{ms(percentile(opened, 50))} / {ms(percentile(opened, 99))}",
    )
    row(
        "all requests p50 / p99 / max",
        f"{ms(percentile(every, 50))} / {ms(percentile(every, 99))} / {ms(max(every))}",
    )
    row(
        "CPU",
        f"gunicorn workers {server_cpu / elapsed:.2f} cores, "
        f"load client {client_cpu / elapsed:.2f} cores",
    )
    row(
        "Redis per running job (ocr_task + ocr_job:* keys)",
        f"{max(per_job)} bytes = {bytes_per_page:.1f} bytes/page",
        f"< {TARGET_BYTES_PER_PAGE} bytes/page",
        "yes" if bytes_per_page < TARGET_BYTES_PER_PAGE else "no",
    )
    row(
        "Redis used_memory of the running jobs, their queued messages included",
        f"+{(used_memory - baseline_memory) / 1e6:.2f} MB for {JOBS * PAGES} pages = "
        f"{(used_memory - baseline_memory) / (JOBS * PAGES):.0f} bytes/page "
        f"(the `ocr` list holds each job's window only: {queue_bytes} bytes in all)",
    )

    figures = "\n".join(f"{measure}: {value}" for measure, value, *_ in rows)
    assert len(samples) >= CLIENTS * DURATION * 0.5, (
        f"the clients could not keep polling\n{figures}"
    )
    assert errors == [], f"{sorted(set(errors))[:20]}\n{figures}"
    assert set(still_running) == {"running"}, still_running
    assert bytes_per_page < TARGET_BYTES_PER_PAGE, f"{per_job}\n{figures}"
    assert p99 * 1000 < FAIL_P99_MS, f"status p99 {ms(p99)}\n{figures}"
    for cells in rows:  # only now: a failing run writes no figure into the table
        RESULTS.add(*cells)
