"""Splitting uploads and the `flask` commands, on the real stack: the commands run as real
subprocesses against the stack's Redis, database and data directory, as an operator runs them.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.job_tracking import job_key
from app.models import Job, Page, Project
from tests.support import (
    ROOT,
    corpus,
    csrf_token,
    editor_client,
    make_ready_project,
    multipage_pdf,
    wait_for,
    wait_for_job_end,
)

pytestmark = pytest.mark.integration

JOB_STARTED = re.compile(r"^job ([0-9a-f-]{36}) started", re.MULTILINE)


def flask_cli(stack, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m flask --app app ARGS` configured like the stack's worker."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env={**os.environ, **stack.config, "OMP_THREAD_LIMIT": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def redis_cli_get(stack, key: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(stack.redis_server.port), "GET", key],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.strip()


def project_count(slug: str) -> int:
    return db.session.scalar(select(func.count(Project.id)).filter_by(slug=slug))


# -- flask projects create -------------------------------------------------------------------


def test_projects_create_wait_splits_every_page(stack, stack_app):
    """`flask projects create SLUG PDF --wait` exits 0 once the worker has split all six
    pages, and the database has them."""
    result = flask_cli(stack, "projects", "create", "demo2", str(corpus("multipage.pdf")), "--wait")
    assert result.returncode == 0, result.stderr
    assert "project demo2 ready: 6 pages" in result.stdout, result.stdout
    project = db.session.scalar(select(Project).filter_by(slug="demo2"))
    assert project.status == "ready"
    numbers = db.session.scalars(select(Page.number).filter_by(project_id=project.id)).all()
    assert sorted(numbers) == [1, 2, 3, 4, 5, 6]


def test_invalid_pdf_is_refused_with_one_line_the_web_form_shows_too(stack, tmp_path):
    """A damaged PDF makes `flask projects create` exit non-zero with a one-line reason on
    stderr, the web form shows the same reason, and neither leaves a project behind."""
    result = flask_cli(stack, "projects", "create", "bad-cli", str(corpus("invalid.pdf")), "--wait")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    reason = lines[0].removeprefix("error: ")
    assert "damaged" in reason, reason

    client = editor_client(stack.app)
    form = {
        "csrf_token": csrf_token(client, "/proofing/create-project"),
        "title": "Bad",
        "slug": "bad-web",
        "language": "eng",
        "source": (io.BytesIO(corpus("invalid.pdf").read_bytes()), "invalid.pdf"),
    }
    response = client.post("/proofing/create-project", data=form)
    assert response.status_code == 400
    assert reason in html.unescape(response.get_data(as_text=True))

    projects_dir = Path(stack.config["DATA_DIR"]) / "projects"
    with stack.app.app_context():
        for slug in ("bad-cli", "bad-web"):
            assert project_count(slug) == 0, slug
            assert not (projects_dir / slug).exists(), slug


# -- flask ocr ---------------------------------------------------------------------------------


def test_ocr_start_wait_status_json_and_cancel_with_nothing_running(stack, stack_app, tmp_path):
    """`flask ocr start --wait` prints the job id and exits 0 when the job succeeded; `ocr
    status --json` then reports it succeeded; `ocr cancel` with no job running fails."""
    project = make_ready_project("cli-ocr", multipage_pdf(tmp_path / "p.pdf", [2, 3]))

    result = flask_cli(stack, "ocr", "start", project.slug, "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    started = JOB_STARTED.search(result.stdout)
    assert started, result.stdout
    job_id = started.group(1)
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert (job.state, job.done, job.total) == ("succeeded", 2, 2)

    result = flask_cli(stack, "ocr", "status", project.slug, "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert (status["state"], status["task_id"], status["done"]) == ("succeeded", job_id, 2)

    result = flask_cli(stack, "ocr", "cancel", project.slug)
    assert result.returncode != 0
    assert "No batch OCR job is running" in result.stderr, result.stderr


def test_redis_cli_shows_the_record_while_the_job_runs_and_nothing_after(
    stack, stack_app, tmp_path
):
    """While a job started by `flask ocr start` runs, `redis-cli GET ocr_task:<slug>` shows
    its JSON record; once the job has ended it shows nothing."""
    project = make_ready_project("cli-redis-key", corpus("multipage.pdf"))
    key = job_key(project.slug)

    result = flask_cli(stack, "ocr", "start", project.slug)
    assert result.returncode == 0, result.stderr
    job_id = JOB_STARTED.search(result.stdout).group(1)

    def record_or_end():
        shown = redis_cli_get(stack, key)
        if shown:
            return shown
        db.session.expire_all()
        ended = db.session.get(Job, job_id).finished_at is not None
        return "(the job ended before redis-cli saw its record)" if ended else None

    shown = wait_for(record_or_end, 60, f"redis-cli to show {key}")
    record = json.loads(shown)
    assert (record["task_id"], record["project_slug"], record["total"]) == (
        job_id,
        project.slug,
        6,
    )
    assert record["engine"] == "tesseract"

    status = wait_for_job_end(project, 180)
    assert status["state"] == "succeeded", status
    assert redis_cli_get(stack, key) == ""


# -- the web upload ------------------------------------------------------------------------------


def test_web_upload_is_split_by_the_worker_and_every_page_image_served(stack, tmp_path):
    """A PDF uploaded through the form is split by the worker: the project becomes ready and
    each page's image is served as the file stored for it (page 3, a JPEG scan, as it is)."""
    client = editor_client(stack.app)
    source = multipage_pdf(tmp_path / "upload.pdf", [2, 3, 0])
    form = {
        "csrf_token": csrf_token(client, "/proofing/create-project"),
        "title": "Uploaded through the form",
        "slug": "web-upload",
        "language": "eng",
        "source": (io.BytesIO(source.read_bytes()), "upload.pdf"),
    }
    response = client.post("/proofing/create-project", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/proofing/web-upload/")

    def split_ended():
        state = client.get("/proofing/web-upload/split-status").get_json()
        return state if state["status"] != "splitting" else None

    state = wait_for(split_ended, 60, "the split of the upload")
    assert (state["status"], state["pages_done"], state["pages_total"]) == ("ready", 3, 3)

    data_dir = Path(stack.config["DATA_DIR"])
    with stack.app.app_context():
        project = db.session.scalar(select(Project).filter_by(slug="web-upload"))
        pages = [(p.number, p.image_path, p.width, p.height) for p in project.pages]
    assert [number for number, *_ in pages] == [1, 2, 3]
    for number, image_path, width, height in pages:
        with client.get(f"/proofing/web-upload/{number}/image") as response:
            assert response.status_code == 200, number
            expected = {".jpg": "image/jpeg", ".png": "image/png"}[Path(image_path).suffix]
            assert response.mimetype == expected, number
            served = response.data
        assert served == (data_dir / image_path).read_bytes(), number
        with Image.open(io.BytesIO(served)) as image:
            assert image.size == (width, height), number
