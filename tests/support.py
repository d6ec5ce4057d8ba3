"""What the tests share, one of each: apps and signed-in clients, stand-in engines, books and
ready projects, and the real processes of integration tests (a redis-server on a free port,
Celery workers, the web app under gunicorn or werkzeug, a throw-away PostgreSQL cluster), each
of which can be stopped and started again for the fault tests. Fixtures that use these are in
tests/conftest.py; test modules import helpers from here only, never from one another."""

from __future__ import annotations

import atexit
import contextlib
import csv
import functools
import io
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import fakeredis
import psycopg
import pypdfium2 as pdfium
import pytest
import redis
import requests
from flask import current_app
from flask_migrate import upgrade
from PIL import Image
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.serving import make_server
from werkzeug.test import encode_multipart

from app import create_app, processes, use_redis
from app.config import load_config
from app.engines import OcrResult
from app.extensions import db
from app.models import (
    Job,
    JobKind,
    JobPage,
    JobState,
    Page,
    Project,
    ProjectStatus,
    Role,
    User,
    utcnow,
)
from app.services import batch_ocr
from app.services.accounts import create_user
from app.services.projects import create_project, split_source

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "corpus"

#: Runs a test taking the `app` fixture twice: on SQLite, and on PostgreSQL (marked `postgres`).
BOTH_DATABASES = pytest.mark.parametrize(
    "app", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

#: Small limits for stacks a test breaks, so that recovery is bounded: a page fails after 10 s,
#: a job with no progress for 30 s is interrupted. Tests that need other values pass their own.
FAST_LIMITS = {"OCR_PAGE_TIME_LIMIT": "10", "OCR_STALL_TIMEOUT": "30"}


def corpus(name: str) -> Path:
    return CORPUS / name


# -- apps and signed-in clients ------------------------------------------------------------


@functools.cache
def migrated_sqlite() -> Path:
    """An SQLite database migrated to head, made once per process: each `make_app` database
    starts as a copy of it, since running every migration for each of some 400 tests was a
    fifth of the unit tests' time. Each app still runs `upgrade`, which finds the copy at head."""
    directory = Path(tempfile.mkdtemp(prefix="ocr-test-schema-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    template = directory / "migrated.db"
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(directory / "data"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{template}",
            "SECRET_KEY": "schema",
        }
    )
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return template


def make_app(tmp_path: Path, **overrides):
    """An app on a fresh SQLite file under `tmp_path`, migrated. Redis points at a closed port
    (unit tests swap in fakeredis); Celery follows REDIS_URL when only that is overridden, as
    load_config does."""
    redis_url = overrides.get("REDIS_URL", "redis://127.0.0.1:1/0")
    database = tmp_path / "test.db"
    config = {
        "TESTING": True,
        "DATA_DIR": str(tmp_path / "data"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "SECRET_KEY": "test-secret",
        **overrides,
    }
    if config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{database}" and not database.exists():
        tmp_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_sqlite(), database)
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


def use_fakeredis(app) -> fakeredis.FakeRedis:
    """Point the app's job records at a fresh fakeredis (the queue is stubbed separately)."""
    fake = fakeredis.FakeRedis()
    use_redis(app, fake)
    return fake


def csrf_token(client, url: str = "/login") -> str:
    html = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def login(client, username: str, password: str):
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
    )


def signed_in(app, username: str, password: str):
    """A test client of `app` signed in as an existing user."""
    client = app.test_client()
    assert login(client, username, password).status_code == 302
    return client


def editor_client(app):
    """A test client signed in as a new editor (usernames are unique: the stack is shared)."""
    username = f"editor-{uuid.uuid4().hex[:10]}"
    with app.app_context():
        create_user(username, "editor-password", Role.EDITOR)
    return signed_in(app, username, "editor-password")


def upload_form(client, filename: str, data: bytes, **fields):
    """POST the create-project form with a file, as a browser does."""
    return upload_files(client, [(filename, data)], **fields)


def upload_files(client, files: list[tuple[str, bytes]], **fields):
    """POST the create-project form with several files in its `multiple` file input."""
    form = MultiDict(
        {
            "slug": "uploaded",
            "title": "Uploaded book",
            "language": "eng",
            **fields,
            "csrf_token": csrf_token(client, "/proofing/create-project"),
        }
    )
    for filename, data in files:
        form.add("source", FileStorage(io.BytesIO(data), filename=filename))
    # Encoded here, in memory: the test client spools bodies over 500 kB to a temporary
    # file that it never closes (a ResourceWarning, an error under filterwarnings=error).
    boundary, payload = encode_multipart(form)
    return client.post(
        "/proofing/create-project",
        data=payload,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


@contextlib.contextmanager
def logs_captured(caplog) -> Iterator[None]:
    """Every log record into caplog. Building an app runs Alembic's logging.config.fileConfig
    (app/migrations/env.py), which replaces the root logger's handlers, caplog's among them."""
    root = logging.getLogger()
    level = root.level
    root.addHandler(caplog.handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(caplog.handler)
        root.setLevel(level)


# -- a stand-in engine ---------------------------------------------------------------------


class FakeEngine:
    """An engine that is always available, and answers for each page number what the test set
    in `answers` (text, or an exception to raise; "text of page N" by default). The fixtures
    `fake_engine` and `fake_tesseract` (tests/conftest.py) register one."""

    def __init__(
        self,
        answers: dict[int, object] | None = None,
        *,
        name: str = "fake",
        label: str = "Fake engine",
        languages: set[str] | None = None,
    ) -> None:
        self.name, self.label = name, label
        self.answers = answers or {}
        self.installed = languages
        self.calls: list[int] = []

    def unavailable_reason(self, config):
        return None

    def languages(self, config):
        return self.installed

    def recognize(self, image_path, language, config, timeout):
        number = int(Path(image_path).stem)
        self.calls.append(number)
        answer = self.answers.get(number, f"text of page {number}")
        if isinstance(answer, Exception):
            raise answer
        return OcrResult(text=answer, boxes=[["text", 1, 2, 3, 4, 95.0]])


# -- books and ready projects --------------------------------------------------------------


def blank_png(width: int = 30, height: int = 40, dpi: int = 300) -> bytes:
    """A white greyscale PNG page of that size, with its resolution."""
    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    """A ZIP archive (deflated) of name -> bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def multipage_pdf(path: Path, indices: list[int]) -> Path:
    """A PDF of some pages of multipage.pdf, by 0-based index (2 and 3 are the fastest to
    OCR, about 0.5 s each)."""
    source = pdfium.PdfDocument(str(CORPUS / "multipage.pdf"))
    out = pdfium.PdfDocument.new()
    try:
        out.import_pages(source, indices)
        out.save(str(path))
    finally:
        out.close()
        source.close()
    return path


def scan_pdf(path: Path, sizes: list[tuple[int, int]]) -> Path:
    """A PDF of blank grey scans of the given pixel sizes at 150 DPI: splits in milliseconds,
    for tests about records and files, not recognition."""
    pages = [Image.new("L", size, 255 - 20 * i) for i, size in enumerate(sizes)]
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=150)
    return path


def add_ready_project(
    slug: str, pages: int, *, language: str = "eng", images: bool = True
) -> Project:
    """A ready project inserted directly (no source, no split), in the current app context.
    Its pages share one tiny image, or with `images=False` name one that does not exist (so
    that OCR of them fails)."""
    data_dir = Path(current_app.config["DATA_DIR"])
    image = data_dir / "projects" / slug / "pages" / "00001.png"
    if images:
        image.parent.mkdir(parents=True)
        Image.new("L", (8, 8), 255).save(image)
    project = Project(
        slug=slug,
        title=slug,
        language=language,
        status=ProjectStatus.READY,
        source_filename="scan.png",
        source_page_count=pages,
    )
    db.session.add(project)
    db.session.flush()
    image_path = str(image.relative_to(data_dir))
    db.session.add_all(
        Page(project_id=project.id, number=n, width=8, height=8, image_path=image_path)
        for n in range(1, pages + 1)
    )
    db.session.commit()
    return project


def make_job(
    project: Project,
    *,
    state: str = JobState.SUCCEEDED,
    kind: str = JobKind.OCR,
    started_by: User | None = None,
    outcomes: list[str] | None = None,
    ended_ago: timedelta | None = timedelta(minutes=1),
    reason: str = "engine said no",
    job_id: str | None = None,
) -> Job:
    """A job over the project's first pages, one JobPage per outcome, counts to match."""
    outcomes = outcomes if outcomes is not None else ["done"] * len(project.pages)
    pages = db.session.query(Page).filter_by(project_id=project.id).order_by(Page.number).all()
    finished = None if ended_ago is None else utcnow() - ended_ago
    job = Job(
        id=job_id or f"job-{project.slug}-{db.session.query(Job).count() + 1}",
        kind=kind,
        project_id=project.id,
        engine="tesseract" if kind == JobKind.OCR else None,
        language="eng" if kind == JobKind.OCR else None,
        selection="all",
        state=state,
        started_by_id=started_by.id if started_by else None,
        started_at=(finished or utcnow()) - timedelta(minutes=5),
        finished_at=finished,
        total=len(outcomes),
        done=outcomes.count("done"),
        failed=outcomes.count("failed"),
        skipped=outcomes.count("skipped"),
    )
    db.session.add(job)
    db.session.flush()
    for position, (page, outcome) in enumerate(zip(pages, outcomes, strict=False)):
        db.session.add(
            JobPage(
                job_id=job.id,
                position=position,
                page_id=page.id,
                state=outcome,
                reason=reason if outcome == "failed" else None,
                finished_at=finished if outcome != "queued" else None,
            )
        )
    db.session.commit()
    return job


#: The lines of text `add_scan_project` prints on its scans, one OCR line each.
SCAN_LINES = (
    "The quick brown fox jumps over the lazy dog",
    "Pack my box with five dozen liquor jugs",
    "How vexingly quick daft zebras jump",
    "Sphinx of black quartz judge my vow",
    "The five boxing wizards jump quickly",
    "Jackdaws love my big sphinx of quartz",
)


def add_scan_project(
    slug: str,
    pages: int = 1,
    *,
    size: tuple[int, int] = (1200, 1600),
    language: str = "eng",
    paper_noise: bool = False,
) -> Project:
    """A ready project inserted directly (no split), in the current app context, whose pages
    are grey scans of `size` with SCAN_LINES printed on them, and whose text and word boxes
    (7 elements, with line numbers) are what an engine would have read: for the editor's
    viewer and line sync, without running OCR. `paper_noise` gives the paper the grain of a
    real scan, so that the PNG is as large as one (a blank page compresses to nothing)."""
    from PIL import ImageChops, ImageDraw, ImageFont

    width, height = size
    font = ImageFont.load_default(size=max(12, width // 45))
    if paper_noise:
        scan = ImageChops.add(Image.new("L", size, 110), Image.effect_noise(size, 7))
    else:
        scan = Image.new("L", size, 240)
    draw = ImageDraw.Draw(scan)
    boxes: list[list] = []
    step = height // (len(SCAN_LINES) + 4)
    for number, line in enumerate(SCAN_LINES):
        x, y = width // 10, step * (number + 2)
        for word in line.split():
            left, top, right, bottom = draw.textbbox((x, y), word, font=font)
            draw.text((x, y), word, fill=20, font=font)
            boxes.append([word, left, top, right - left, bottom - top, 93.0, number])
            x = right + font.size // 2
    project = Project(
        slug=slug,
        title=slug,
        language=language,
        status=ProjectStatus.READY,
        source_filename="scan.png",
        source_page_count=pages,
    )
    db.session.add(project)
    db.session.flush()
    data_dir = Path(current_app.config["DATA_DIR"])
    folder = data_dir / "projects" / slug / "pages"
    folder.mkdir(parents=True)
    for n in range(1, pages + 1):
        image = folder / f"{n:05d}.png"
        scan.save(image, dpi=(400, 400))
        db.session.add(
            Page(
                project_id=project.id,
                number=n,
                width=width,
                height=height,
                image_path=str(image.relative_to(data_dir)),
                text="\n".join(SCAN_LINES),
                ocr_boxes=boxes,
                ocr_state="done",
                version=1,
            )
        )
    db.session.commit()
    return project


def new_project(
    slug: str, source: Path, *, language: str = "eng", title: str | None = None
) -> Project:
    """A project created from `source` as an upload makes it (titled with its slug unless
    `title` is given): its split enqueued, not run."""
    with source.open("rb") as fh:
        return create_project(
            slug=slug,
            title=title or slug,
            language=language,
            source=fh,
            filename=source.name,
            created_by=None,
        )


def split_project(slug: str, source: Path, **options) -> Project:
    """A ready project made from `source` (`new_project`), split in this process: no worker
    needed."""
    project = new_project(slug, source, **options)
    split_source(project.id)
    db.session.refresh(project)
    assert project.status == ProjectStatus.READY, project.status_message
    return project


def make_ready_project(slug: str, source: Path, language: str = "eng", **options) -> Project:
    """A ready project made from `source` (`new_project`), split by the stack's worker."""
    project = new_project(slug, source, language=language, **options)

    def ready():
        db.session.expire_all()
        return db.session.get(Project, project.id).status != ProjectStatus.SPLITTING

    wait_for(ready, 120, f"the split of {slug}")
    db.session.refresh(project)
    assert project.status == ProjectStatus.READY, project.status_message
    return project


def wait_for_job_end(project: Project, timeout: float = 300) -> dict:
    """The status of the project's OCR job once it has ended."""

    def ended():
        db.session.expire_all()
        status = batch_ocr.job_status(project)
        return None if status.is_live else status.to_dict()

    return wait_for(ended, timeout, f"the OCR job of {project.slug} to end", interval=0.3)


def tesseract_cli(image: Path, language: str) -> str:
    """What the `tesseract` command prints for the same image: the reference text."""
    return subprocess.run(
        ["tesseract", str(image), "stdout", "-l", language],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    ).stdout


def tesseract_text_and_words(image: Path, language: str, base: Path) -> tuple[str, list[list]]:
    """The text and the word rows of `tesseract IMAGE BASE -l LANGUAGE txt tsv`, the words as
    the engine gives them: [text, left, top, width, height, conf, line], lines from 0."""
    subprocess.run(
        ["tesseract", str(image), str(base), "-l", language, "txt", "tsv"],
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    )
    text = base.with_suffix(".txt").read_text().removesuffix("\f")
    words, lines = [], {}
    tsv = base.with_suffix(".tsv").read_text()
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row["level"] != "5" or not row["text"].strip():
            continue
        line = lines.setdefault((row["block_num"], row["par_num"], row["line_num"]), len(lines))
        box = [int(row[k]) for k in ("left", "top", "width", "height")]
        words.append([row["text"], *box, round(float(row["conf"]), 1), line])
    return text, words


# -- real processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in out.split()]


def _kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` memory field (VmRSS, VmHWM) in KiB; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class PeakRss:
    """The largest resident memory any one process of a worker (its main process and each pool
    process) reached while the block ran: each process's own high-water mark (VmHWM), reset
    when the block starts and read every few hundred milliseconds, so a pool process
    replaced meanwhile still counts."""

    def __init__(self, worker: Worker, interval: float = 0.2) -> None:
        self.worker, self.interval = worker, interval
        self.peak_kib: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self._read()
            if self._stop.wait(self.interval):
                self._read()
                return

    def _read(self) -> None:
        if self.worker.process is None:
            return
        for pid in [self.worker.process.pid, *self.worker.child_pids()]:
            self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), _kib(pid, "VmHWM"))

    @property
    def peak_mib(self) -> float:
        return max(self.peak_kib.values(), default=0) / 1024

    def __enter__(self) -> PeakRss:
        # A process of a shared worker may have peaked before the block (rendering a huge
        # scan for an earlier test): its high-water mark is reset first, so that only the
        # block counts ("5" to clear_refs resets VmHWM to the current RSS; Linux 4.0+).
        if self.worker.process is not None:
            for pid in [self.worker.process.pid, *self.worker.child_pids()]:
                with contextlib.suppress(OSError):
                    Path(f"/proc/{pid}/clear_refs").write_text("5")
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(5)


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    """Poll `condition` until it returns something truthy; fail the test with `what` if not."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def assert_running(process: subprocess.Popen | None, what: str, log_path: Path) -> None:
    """Fail at once, with the end of its log, if a process a test waits for has exited."""
    if process is None or process.poll() is not None:
        log = log_path.read_text(errors="replace")[-3000:]
        raise AssertionError(f"{what} exited; see {log_path}:\n{log}")


class RedisServer:
    """A private redis-server: tests can stop it, restart it, and turn persistence on."""

    def __init__(self, directory: Path, *, appendonly: bool = False, password: str | None = None):
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendonly = appendonly
        self.password = password
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1)

    def start(self) -> RedisServer:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--maxmemory-policy",
            "noeviction",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(self._answers, 10, f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


class ProcessGroup:
    """A process started in a session of its own (`start_new_session=True`), so that a test can
    stop or SIGKILL it together with every child it forked."""

    process: subprocess.Popen | None = None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class Worker(ProcessGroup):
    """`celery -A worker worker` in its own process, configured by environment variables."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        concurrency: int = 2,
        queues: str | None = None,
        extra_args: tuple[str, ...] = (),
    ):
        self.env = {**os.environ, **env, "OMP_THREAD_LIMIT": "1", "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.concurrency = concurrency
        self.queues = queues
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None
        self.name = f"test-{free_port()}@localhost"

    def start(self, redis_url: str) -> Worker:
        # The child keeps its own descriptor of the log; ours is closed at once.
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    *processes.WORKER,
                    *(["-Q", self.queues] if self.queues else []),
                    "--concurrency",
                    str(self.concurrency),
                    "-n",
                    self.name,
                    "--without-mingle",
                    "--without-gossip",
                    *self.extra_args,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis.from_url(redis_url)
        wait_for(
            lambda: self._ready(client),
            60,
            f"the Celery worker (log: {self.log_path})",
            interval=0.3,
        )
        return self

    def _ready(self, client: redis.Redis) -> bool:
        assert_running(self.process, "the worker", self.log_path)
        return b"ready." in self.log_path.read_bytes()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def child_pids(self) -> list[int]:
        return [] if self.process is None else child_pids(self.process.pid)


class WebServer(ProcessGroup):
    """The web app under gunicorn as deployed (app/processes.py), configured by environment
    variables like the worker, in its own process group on a free port, so that a test can
    SIGKILL it and start it again on the same port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebServer:
        command = processes.web(f"127.0.0.1:{self.port}")
        # No control socket: its default path is one per user, which another gunicorn of the
        # same user (a second suite, `make run`) would share.
        options = ["--log-level", "warning", "--no-control-socket"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *command[:-1], *options, command[-1]],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._answers, 60, f"gunicorn on port {self.port} (log: {self.log_path})", 0.1)
        return self

    def _answers(self) -> bool:
        assert_running(self.process, "gunicorn", self.log_path)
        try:
            return requests.get(f"{self.url}/login", timeout=2).status_code == 200
        except requests.RequestException:
            return False


class LiveServer:
    """The Flask app served by werkzeug on a free port, in a thread (for the browser)."""

    def __init__(self, app):
        self.app = app
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


def postgres_bin_dir() -> Path:
    """Where initdb and postgres are: on PATH if there, else the newest of Debian's
    /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda initdb: [int(part) for part in re.findall(r"\d+", initdb.parent.parent.name)],
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: no initdb on PATH or under /usr/lib/postgresql/*/bin "
            "(make test installs Debian's postgresql), or set TEST_POSTGRES_URL to a server"
        )
    return found[-1].parent


class PostgresCluster:
    """A PostgreSQL cluster of its own for one test session: initdb in a temporary folder,
    trust authentication, a free port on 127.0.0.1, its socket in that folder; never the
    machine's own server. Durability is off (fsync, synchronous_commit): the cluster is thrown
    away at the end, and the tests are about SQL, not crash safety."""

    def __init__(self) -> None:
        self.bin_dir = postgres_bin_dir()
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        # initdb and postgres refuse to run as root: as root, run them as an unprivileged user
        # that owns the folder (created outside pytest's tmp tree, which only root may enter).
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                self.user = pwd.getpwnam("nobody")
        self.directory = Path(tempfile.mkdtemp(prefix="ocr-test-postgres-"))
        if self.user:
            os.chown(self.directory, self.user.pw_uid, self.user.pw_gid)
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_user(self) -> dict:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def start(self) -> PostgresCluster:
        initdb = [
            str(self.bin_dir / "initdb"),
            *("-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
            *("--no-locale", "--no-sync", "--no-instructions"),
        ]
        done = subprocess.run(initdb, capture_output=True, text=True, **self._as_user())
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.directory),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, **self._as_user()
            )
        wait_for(self._answers, 30, f"PostgreSQL on port {self.port} (log: {self.log_path})")
        return self

    def _answers(self) -> bool:
        assert_running(self.process, "postgres", self.log_path)
        try:
            psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=1,
            ).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: no waiting for clients
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


class Stack:
    """Redis, workers and an app sharing one data directory and database."""

    def __init__(self, root: Path, redis_server: RedisServer, **overrides):
        self.root = root
        self.redis_server = redis_server
        self.own_redis = False
        self.config = {
            "DATA_DIR": str(root / "data"),
            "DATABASE_URL": f"sqlite:///{root / 'stack.db'}",
            "REDIS_URL": redis_server.url,
            "SECRET_KEY": "stack-secret",
            **overrides,
        }
        # The app reads the same settings as the worker's environment, so both agree.
        self.app = create_app({**load_config(self.config), "TESTING": True})
        with self.app.app_context():
            upgrade()
        self.workers: list[Worker] = []

    @classmethod
    def on_own_redis(cls, root: Path, *, appendonly: bool = False, **overrides) -> Stack:
        """A stack with a redis-server of its own (under `root`), which `stop` stops too."""
        server = RedisServer(root / "redis", appendonly=appendonly).start()
        try:
            stack = cls(root, server, **overrides)
        except BaseException:
            server.stop()
            raise
        stack.own_redis = True
        return stack

    def start_worker(self, name: str = "worker", **kwargs) -> Worker:
        worker = Worker(self.config, self.root / f"{name}.log", **kwargs).start(
            self.redis_server.url
        )
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        with self.app.app_context():
            db.engine.dispose()
        if self.own_redis:
            self.redis_server.stop()


class HttpUser:
    """A person's browser without JavaScript, over real HTTP: a cookie jar, signed in, posting
    forms with the CSRF token the page carries. Close it (or use `with`) to close its
    connections."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        try:
            self.token = self._token_on("/login")
            response = self.post_form("/login", {"username": username, "password": password})
            assert response.status_code == 302, response.text[:500]
            # Flask-WTF keeps one token per session: the one on any signed-in page serves
            # every form.
            self.token = self._token_on("/proofing/")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> HttpUser:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=30, **kwargs)

    def _token_on(self, path: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post_form(self, path: str, data: dict) -> requests.Response:
        return self.session.post(
            self.base_url + path,
            data={**data, "csrf_token": self.token},
            allow_redirects=False,
            timeout=30,
        )


class ResultsTable:
    """Figures a slow suite (`make chaos`, `make load`) measured, one row per test, printed at
    the end of the session and kept in tests/artifacts/<filename> (docs/reliability.md keeps the
    last run's). A test adds its row only once its asserts have passed, so that a failing run
    puts no figure in the table."""

    def __init__(self, title: str, filename: str, columns: tuple[str, ...]) -> None:
        self.title, self.filename, self.columns = title, filename, columns
        self.rows: list[dict[str, str]] = []

    def add(self, *cells: str) -> None:
        assert len(cells) == len(self.columns), (cells, self.columns)
        self.rows.append(dict(zip(self.columns, cells, strict=True)))

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        for row in self.rows:
            cells = (str(row.get(column, "")).replace("|", "/") for column in self.columns)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def report(self, terminalreporter) -> None:
        """For a conftest's pytest_terminal_summary: print the table and keep it."""
        if not self.rows:
            return
        table = self.markdown()
        terminalreporter.write_sep("=", self.title)
        terminalreporter.write_line(table)
        artifacts = ROOT / "tests" / "artifacts"
        artifacts.mkdir(exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        (artifacts / self.filename).write_text(f"Run at {stamp}\n\n{table}\n")
