"""This system, the real thing: a private redis-server, a Celery worker and gunicorn, driven
over HTTP the way a browser drives it."""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import requests
from flask_migrate import upgrade
from PIL import Image
from sqlalchemy import insert, select

from app import create_app
from app.extensions import db
from app.job_tracking import errors_key, job_key, pages_key, progress_key
from app.models import Job, Page, Project, ProjectStatus, Role
from app.services.accounts import create_user
from tests.support import ROOT, RedisServer, Worker, free_port, wait_for

USER = ("bench-editor", "bench-password")
TERMINAL = {"succeeded", "failed", "partially_failed", "cancelled", "interrupted"}
#: Celery's own keys on the broker: the two queues, and the messages taken but not yet acked.
CELERY_KEYS = ("ocr", "celery", "unacked", "unacked_index")
POLL_INTERVAL = 0.2


class BenchStack:
    """redis-server, `celery -A worker worker` and gunicorn sharing a temp data directory."""

    def __init__(self, root: Path, concurrency: int) -> None:
        self.root = root
        self.concurrency = concurrency
        self.redis = RedisServer(root / "redis")
        self.env: dict[str, str] = {}
        self.app = None
        self.worker: Worker | None = None
        self.web: subprocess.Popen | None = None
        self.web_port = free_port()
        self.web_log = root / "gunicorn.log"
        self.worker_log = root / "worker.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def start(self) -> BenchStack:
        self.redis.start()
        self.env = {
            "DATA_DIR": str(self.data_dir),
            "DATABASE_URL": f"sqlite:///{self.root / 'bench.db'}",
            "REDIS_URL": self.redis.url,
            "SECRET_KEY": "bench-secret",
        }
        # The in-process app reads the same environment, so it never falls back to ./data.
        os.environ.update(self.env)
        self.app = create_app()
        with self.app.app_context():
            upgrade()
            create_user(*USER, Role.EDITOR)
        self.start_worker()
        log = self.web_log.open("ab")
        self.web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                "2",
                "--threads",
                "4",
                "-b",
                f"127.0.0.1:{self.web_port}",
                "app:create_app()",
            ],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._web_answers, 60, f"gunicorn on port {self.web_port} (log: {self.web_log})")
        return self

    def start_worker(self) -> None:
        self.worker = Worker(self.env, self.worker_log, concurrency=self.concurrency)
        self.worker.start(self.redis.url)

    def _web_answers(self) -> bool:
        if self.web is None or self.web.poll() is not None:
            raise RuntimeError(f"gunicorn exited; see {self.web_log}")
        try:
            return requests.get(f"{self.base_url}/login", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def web_pids(self) -> list[int]:
        return [self.web.pid] if self.web and self.web.poll() is None else []

    def worker_pids(self) -> list[int]:
        process = self.worker.process if self.worker else None
        return [process.pid] if process and process.poll() is None else []

    def redis_pids(self) -> list[int]:
        process = self.redis.process
        return [process.pid] if process and process.poll() is None else []

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def stop(self) -> None:
        """Stop everything started, whatever state it is in; never raises."""
        for step in (self.stop_worker, self._stop_web, self.redis.stop):
            try:
                step()
            except Exception as exc:  # cleanup must go on to the next process
                print(f"  (cleanup: {step.__name__}: {exc})", file=sys.stderr)
        if self.app is not None:
            with self.app.app_context():
                db.engine.dispose()

    def _stop_web(self) -> None:
        if self.web and self.web.poll() is None:
            os.killpg(self.web.pid, signal.SIGTERM)
            try:
                self.web.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.web.pid, signal.SIGKILL)
                self.web.wait(10)
        self.web = None


def classify(group: str, process: psutil.Process, depth: int) -> str | None:
    """Tesseract started by the worker is counted apart from the worker: the Tesseract kept
    loaded of each pool process (app/engines/tesseract_server.py), and the `tesseract`
    command (orientation detection).

    Below the worker's pool processes (depth 2) anything else is a fork on its way to exec
    one of them: its RSS is its parent's, so it is left out.
    """
    if process.name() == "tesseract" or any(
        part.endswith("tesseract_server.py") for part in process.cmdline()[1:2]
    ):
        return "tesseract"
    if group == "worker" and depth >= 2:
        return None
    return group


# -- the browser's side ------------------------------------------------------------------


class Browser:
    """A signed-in editor's session over HTTP."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.session = requests.Session()
        self.token = ""

    def login(self, username: str, password: str) -> None:
        self.token = self._token("/login")
        answer = self.post("/login", {"username": username, "password": password})
        if answer.status_code != 302:
            raise RuntimeError(f"login failed: HTTP {answer.status_code}")
        self.token = self._token("/proofing/create-project")

    def _token(self, path: str) -> str:
        html = self.session.get(self.base + path, timeout=30).text
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        if not match:
            raise RuntimeError(f"no CSRF token on {path}")
        return match.group(1)

    def post(self, path: str, data: dict[str, str], files: Any = None) -> requests.Response:
        return self.session.post(
            self.base + path,
            data={**data, "csrf_token": self.token},
            files=files,
            allow_redirects=False,
            timeout=120,
        )

    def get(self, path: str) -> requests.Response:
        answer = self.session.get(self.base + path, timeout=60)
        answer.raise_for_status()
        return answer

    def timed_get(self, path: str) -> tuple[float, requests.Response]:
        started = time.perf_counter()
        answer = self.get(path)
        return time.perf_counter() - started, answer


# -- one book, upload to the end of its OCR job -------------------------------------------


@dataclass
class Poll:
    at: float  # seconds since the upload request was sent
    state: str
    done: int
    running: int
    queued: int
    failed: int


@dataclass
class BookRun:
    slug: str
    pages: int
    job_id: str = ""
    #: Seconds since the upload request was sent, as the client saw them.
    upload_answered: float = 0.0
    split_ready_seen: float = 0.0
    start_sent: float = 0.0
    start_answered: float = 0.0
    first_text_seen: float | None = None
    end_seen: float = 0.0
    #: The same instants as the server recorded them (epoch seconds turned relative).
    job_started: float = 0.0
    first_page_started: float | None = None
    job_finished: float | None = None
    final_status: dict[str, Any] = field(default_factory=dict)
    polls: list[Poll] = field(default_factory=list)
    #: Redis memory in bytes: the job's own keys, Celery's keys, and used_memory deltas.
    redis_job_keys: dict[str, int] = field(default_factory=dict)
    redis_celery_keys: dict[str, int] = field(default_factory=dict)
    redis_queue_length: int = 0
    redis_used_delta_mid: int = 0
    redis_used_delta_peak: int = 0
    epoch0: float = 0.0

    @property
    def total(self) -> float:
        return self.end_seen

    @property
    def mean_running(self) -> float | None:
        """Pages running at once, averaged over the polls between first start and end."""
        live = [p.running for p in self.polls if p.state == "running"]
        return statistics.fmean(live) if live else None


def run_book(
    stack: BenchStack,
    browser: Browser,
    book_path: Path,
    slug: str,
    pages: int,
    progress,
    on_phase=lambda _phase: None,
) -> BookRun:
    """Upload, wait for the split, start OCR of every page, poll to the end.

    `on_phase` is told "split" when the upload is sent and "OCR" when the job is started.
    """
    run = BookRun(slug=slug, pages=pages)
    on_phase("split")
    client = stack.redis.client()
    run.epoch0 = epoch0 = time.time()

    def now() -> float:
        return time.time() - epoch0

    with book_path.open("rb") as fh:
        answer = browser.post(
            "/proofing/create-project",
            {"title": "Benchmark book", "slug": slug, "language": "eng"},
            files={"source": (book_path.name, fh, "application/pdf")},
        )
    run.upload_answered = now()
    if answer.status_code != 302:
        raise RuntimeError(f"upload failed: HTTP {answer.status_code}: {answer.text[:500]}")
    progress(f"uploaded in {run.upload_answered:.2f} s; splitting")
    while True:
        split = browser.get(f"/proofing/{slug}/split-status").json()
        if split["status"] == "failed":
            raise RuntimeError(f"the split failed: {split['message']}")
        if split["status"] == "ready":
            break
        if now() > 900:
            raise RuntimeError(f"the split did not end within 900 s: {split}")
        time.sleep(POLL_INTERVAL)
    run.split_ready_seen = now()
    progress(f"split ready at {run.split_ready_seen:.1f} s; starting batch OCR")

    used_before = client.info("memory")["used_memory"]
    on_phase("OCR")
    run.start_sent = now()
    answer = browser.post(f"/proofing/{slug}/batch-ocr", {"engine": "tesseract", "pages": "all"})
    run.start_answered = now()
    if answer.status_code != 303:
        raise RuntimeError(f"starting batch OCR failed: HTTP {answer.status_code}")
    sampled_mid = False
    while True:
        status = browser.get(f"/proofing/{slug}/batch-ocr/status").json()
        at = now()
        run.job_id = status.get("task_id", run.job_id)
        run.polls.append(
            Poll(
                at,
                status["state"],
                status.get("done", 0),
                status.get("running", 0),
                status.get("queued", 0),
                status.get("failed", 0),
            )
        )
        used = client.info("memory")["used_memory"] - used_before
        run.redis_used_delta_peak = max(run.redis_used_delta_peak, used)
        if run.first_text_seen is None and status.get("done", 0) >= 1:
            run.first_text_seen = at
            progress(f"first page text at {at:.1f} s")
        if not sampled_mid and status["state"] == "running" and status["done"] >= pages // 2:
            sampled_mid = True
            _sample_redis(client, run, slug, used)
            progress(f"half the pages done at {at:.1f} s")
        if status["state"] in TERMINAL:
            run.end_seen = at
            run.final_status = status
            break
        if status["state"] == "none" or at > 1800:
            raise RuntimeError(f"the job did not end as expected: {status['state']}")
        time.sleep(POLL_INTERVAL)
    if not sampled_mid:  # a job too short to be seen half way: sample what is left
        _sample_redis(client, run, slug, run.redis_used_delta_peak)
    first = client.hget(progress_key(run.job_id), "first_started")
    run.first_page_started = float(first) - epoch0 if first else None
    with stack.app.app_context():
        job = db.session.get(Job, run.job_id)
        run.job_started = _epoch(job.started_at) - epoch0
        run.job_finished = _epoch(job.finished_at) - epoch0 if job.finished_at else None
    return run


def _sample_redis(client, run: BookRun, slug: str, used_delta: int) -> None:
    job_keys = {
        job_key(slug): job_key(slug),
        "ocr_job:<id>:pages": pages_key(run.job_id),
        "ocr_job:<id>:progress": progress_key(run.job_id),
        "ocr_job:<id>:errors": errors_key(run.job_id),
    }
    run.redis_job_keys = {
        name: client.memory_usage(key, samples=0) or 0 for name, key in job_keys.items()
    }
    run.redis_celery_keys = {key: client.memory_usage(key, samples=0) or 0 for key in CELERY_KEYS}
    run.redis_queue_length = client.llen("ocr")
    run.redis_used_delta_mid = used_delta


def _epoch(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def page_text(stack: BenchStack, slug: str, number: int) -> tuple[str, Path]:
    """The page's text in the database, and the path of the image the split made of it."""
    with stack.app.app_context():
        page = db.session.scalar(
            select(Page).join(Project).filter(Project.slug == slug, Page.number == number)
        )
        return page.text, Path(stack.app.config["DATA_DIR"]) / page.image_path


def page_images(stack: BenchStack, slug: str) -> dict[int, Path]:
    with stack.app.app_context():
        rows = db.session.execute(
            select(Page.number, Page.image_path).join(Project).filter(Project.slug == slug)
        ).all()
        return {number: Path(stack.app.config["DATA_DIR"]) / path for number, path in rows}


# -- starting and polling jobs of many pages ---------------------------------------------


@dataclass
class StartLatency:
    pages: int
    #: Seconds `POST .../batch-ocr` took to answer, one per start.
    post_seconds: list[float] = field(default_factory=list)
    #: Seconds of each `GET .../batch-ocr/status` (filled for the sizes that are polled).
    poll_seconds: list[float] = field(default_factory=list)
    #: Seconds of the progress page (HTML) the start redirects to.
    page_seconds: list[float] = field(default_factory=list)
    status_bytes: int = 0


def make_ready_project(stack: BenchStack, slug: str, pages: int) -> None:
    """A project of `pages` ready pages inserted directly, every page the same tiny image."""
    with stack.app.app_context():
        tiny = Path(stack.app.config["DATA_DIR"]) / "bench-tiny.png"
        if not tiny.exists():
            Image.new("L", (8, 8), 255).save(tiny)
        project = Project(
            slug=slug,
            title=f"{pages} tiny pages",
            language="eng",
            status=ProjectStatus.READY,
            source_filename="bench-tiny.png",
            source_page_count=pages,
        )
        db.session.add(project)
        db.session.flush()
        db.session.execute(
            insert(Page),
            [
                {
                    "project_id": project.id,
                    "number": n + 1,
                    "image_path": tiny.name,
                    "width": 8,
                    "height": 8,
                }
                for n in range(pages)
            ],
        )
        db.session.commit()


def measure_starts(
    stack: BenchStack, browser: Browser, sizes: list[int], *, starts: int, polls: int, progress
) -> dict[int, StartLatency]:
    """Time `POST .../batch-ocr` for projects of each size, then status polls.

    The worker is stopped first: the jobs stay queued, and nothing else competes with the
    requests (the dispatch task and the pages would otherwise run meanwhile).
    Each start is cancelled (POST .../cancel) before the next; the smallest and the largest
    job stay live for the status polls, which alternate between them so that load from
    elsewhere on the machine falls on both alike.
    """
    results = {}
    polled = (min(sizes), max(sizes))
    for size in sizes:
        slug = f"bench-start-{size}"
        make_ready_project(stack, slug, size)
        latency = results[size] = StartLatency(size)
        for attempt in range(starts):
            started = time.perf_counter()
            answer = browser.post(
                f"/proofing/{slug}/batch-ocr", {"engine": "tesseract", "pages": "all"}
            )
            latency.post_seconds.append(time.perf_counter() - started)
            if answer.status_code != 303:
                raise RuntimeError(f"start of {slug} failed: HTTP {answer.status_code}")
            status = browser.get(f"/proofing/{slug}/batch-ocr/status").json()
            if status["state"] != "queued" or status["total"] != size:
                raise RuntimeError(f"{slug}: expected a queued job of {size} pages: {status}")
            if attempt < starts - 1 or size not in polled:
                _cancel(browser, slug)
        progress(
            f"POST batch-ocr, {size} pages: "
            + ", ".join(f"{s * 1000:.0f} ms" for s in latency.post_seconds)
        )
    for _ in range(polls):
        for size in polled:
            seconds, answer = browser.timed_get(f"/proofing/bench-start-{size}/batch-ocr/status")
            if answer.json()["total"] != size:
                raise RuntimeError("the status poll answered for another job")
            results[size].poll_seconds.append(seconds)
            results[size].status_bytes = len(answer.content)
    for _ in range(5):
        for size in polled:
            seconds, _answer = browser.timed_get(f"/proofing/bench-start-{size}/batch-ocr")
            results[size].page_seconds.append(seconds)
    for size in polled:
        _cancel(browser, f"bench-start-{size}")
    return results


def _cancel(browser: Browser, slug: str) -> None:
    answer = browser.post(f"/proofing/{slug}/batch-ocr/cancel", {})
    if answer.status_code != 303:
        raise RuntimeError(f"cancel of {slug} failed: HTTP {answer.status_code}")
    state = browser.get(f"/proofing/{slug}/batch-ocr/status").json()["state"]
    if state != "cancelled":
        raise RuntimeError(f"{slug}: the job is {state} after cancel")


# -- the worker's log --------------------------------------------------------------------

_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ")
_RECOGNISED = re.compile(r"job (\S+) page (\d+) recognised in ([\d.]+) s")
_SUCCEEDED = re.compile(r"Task worker\.tasks\.(\w+)\[[^\]]+\] succeeded in ([\d.]+)s")


@dataclass
class WorkerLog:
    #: Page number -> seconds Tesseract took on it (logged by run_page).
    recognition: dict[int, float] = field(default_factory=dict)
    #: Epoch seconds of notable lines: name -> first time seen.
    events: dict[str, float] = field(default_factory=dict)
    #: Task name -> seconds each run of it took, as Celery logged them.
    task_seconds: dict[str, list[float]] = field(default_factory=dict)


def read_worker_log(path: Path, slug: str, job_id: str, offset: int = 0) -> WorkerLog:
    """What the worker logged about the book's split and OCR job, from byte `offset` on."""
    result = WorkerLog()
    patterns = {
        "split received": "Task worker.tasks.split_source[",
        "split done": f"split of {slug} done",
        "dispatch received": "Task worker.tasks.dispatch_ocr_job[",
        "pages sent": f"job {job_id}: ",
        "first page received": "Task worker.tasks.ocr_page[",
    }
    with path.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", "replace")
    for line in text.splitlines():
        stamp = _LOG_TIME.match(line)
        if not stamp:
            continue
        at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for name, needle in patterns.items():
            if name not in result.events and needle in line:
                if name.endswith("received") and "received" not in line:
                    continue
                result.events[name] = at
        match = _RECOGNISED.search(line)
        if match and match.group(1) == job_id:
            result.recognition[int(match.group(2))] = float(match.group(3))
        match = _SUCCEEDED.search(line)
        if match:
            result.task_seconds.setdefault(match.group(1), []).append(float(match.group(2)))
    return result
