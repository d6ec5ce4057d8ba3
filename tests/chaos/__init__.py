"""Fault tests (`make chaos`): real processes are killed and restarted mid-job, and what happened
and how long recovery took is written to a results table (docs/reliability.md).

The helpers here are shared with the load suite (tests/load): gunicorn serving a stack's app in
its own process group on a free port, a signed-in HTTP user, books made of corpus pages, and the
results table.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from app.extensions import db
from app.models import Job, Page, Project, Revision
from app.services import batch_ocr
from tests.support import ROOT, ProcessGroup, Worker, free_port, multipage_pdf, wait_for

#: The book of the fault tests: 12 of the fastest pages of multipage.pdf (~0.5 s each, idle).
BOOK_PAGES = [2, 3] * 6

#: tests/support.py `Worker.start` never closes its log file, and pyproject turns the
#: ResourceWarning into an error; narrowed to the workers' logs until support.py closes it.
IGNORE_WORKER_LOG_LEAK = pytest.mark.filterwarnings(
    r"ignore:unclosed file .*worker[0-9]*\.log:ResourceWarning"
)

#: Rows of the fault table, in the order the tests ran; printed at the end of the session.
RESULTS: list[dict[str, str]] = []
RESULT_COLUMNS = ("fault", "what was broken", "what happened", "recovery")


def record_result(fault: str, broken: str, happened: str, recovery: str) -> None:
    RESULTS.append(
        {"fault": fault, "what was broken": broken, "what happened": happened, "recovery": recovery}
    )


def markdown_table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = (str(row.get(column, "")).replace("|", "/") for column in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


book_pdf = multipage_pdf


def start_job(project: Project, selection: str = "all") -> batch_ocr.StartOutcome:
    outcome = batch_ocr.start_batch_ocr(
        project, engine="tesseract", language=None, selection=selection, user=None
    )
    assert outcome.started
    return outcome


def job_seconds(job_id: str) -> float:
    """From the job's start to its end, as the database recorded them."""
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.finished_at is not None, job.state
    return (job.finished_at - job.started_at).total_seconds()


def revisions_per_page(project_id: int, job_id: str) -> dict[int, int]:
    """Page number -> revisions written by the job (0 for pages it did not write)."""
    rows = db.session.execute(
        select(Page.number, func.count(Revision.id))
        .outerjoin(Revision, (Revision.page_id == Page.id) & (Revision.job_id == job_id))
        .filter(Page.project_id == project_id)
        .group_by(Page.number)
    ).all()
    return dict(rows)


def live_counts(project: Project) -> dict:
    db.session.expire_all()
    return batch_ocr.job_status(project).to_dict()


def ocr_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in out.split()]


def process_mid_page(worker: Worker, project) -> int | None:
    """A pool process running Tesseract, once the job has done at least one page."""
    if live_counts(project).get("done", 0) < 1:
        return None
    for pid in worker.child_pids():
        if ocr_children(pid):
            return pid
    return None


def every_page_has_one_revision(project, job_id: str) -> None:
    per_page = revisions_per_page(project.id, job_id)
    assert per_page == {number: 1 for number in range(1, len(BOOK_PAGES) + 1)}, per_page


class WebServer(ProcessGroup):
    """gunicorn serving `app:create_app()` configured by environment variables (like the
    worker), in its own process group so a test can SIGKILL it and start it again on the same
    port."""

    def __init__(
        self, env: dict[str, str], log_path: Path, *, workers: int = 2, threads: int = 4
    ) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebServer:
        with self.log_path.open("ab") as log:
            self.process = self._spawn(log)
        wait_for(self._answers, 60, f"gunicorn on port {self.port} (log: {self.log_path})", 0.1)
        return self

    def _spawn(self, log) -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(self.workers),
                "--threads",
                str(self.threads),
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "app:create_app()",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _answers(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            log = self.log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"gunicorn exited; see {self.log_path}:\n{log}")
        try:
            return requests.get(f"{self.url}/login", timeout=2).status_code == 200
        except requests.RequestException:
            return False


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class HttpUser:
    """A person's browser without JavaScript: a cookie jar, signed in, posting forms with the
    CSRF token the page carries."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.token = self._token_on("/login")
        response = self.post_form("/login", {"username": username, "password": password})
        assert response.status_code == 302, response.text[:500]
        # Flask-WTF keeps one token per session: the one on any signed-in page serves every form.
        self.token = self._token_on("/proofing/")

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=30, **kwargs)

    def _token_on(self, path: str) -> str:
        match = CSRF_RE.search(self.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post_form(self, path: str, data: dict) -> requests.Response:
        return self.session.post(
            self.base_url + path,
            data={**data, "csrf_token": self.token},
            allow_redirects=False,
            timeout=30,
        )
