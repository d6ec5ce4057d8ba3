"""Exports through the real stack: redis-server and a Celery worker (two processes) render the
pages and assemble the file; the test follows ``export_task:<slug>`` from its start to its
deletion, and measures the worker's memory on a 500-page book."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.job_tracking import job_key
from app.models import Export, Job, JobKind, Page, Project
from app.services import exports
from tests.support import ROOT, PeakRss, add_ready_project, wait_for

pytestmark = pytest.mark.integration

#: The issue's bound on every process of an export of 500 pages.
MEMORY_LIMIT_MIB = 400


def book_with_text(slug: str, pages: int, words_per_page: int = 12) -> Project:
    """A ready project whose page n holds `words_per_page` words naming it, with word boxes."""
    project = add_ready_project(slug, pages)
    for page in project.pages:
        words = [f"p{page.number}w{i}" for i in range(words_per_page)]
        boxes = [[w, 10 * i, 10, 9, 9, 95] for i, w in enumerate(words)]
        db.session.execute(
            update(Page)
            .where(Page.id == page.id)
            .values(text=" ".join(words), ocr_boxes=boxes, version=1)
        )
    db.session.commit()
    db.session.expire_all()
    return project


def wait_for_export_end(project: Project, timeout: float = 300):
    def ended():
        db.session.expire_all()
        status = exports.job_status(project)
        return None if status.is_live else status

    return wait_for(ended, timeout, f"the export of {project.slug} to end", interval=0.3)


def exported_path(app, job_id: str) -> Path:
    export = db.session.scalar(select(Export).filter_by(job_id=job_id))
    assert export is not None, "the export has no file"
    return Path(app.config["DATA_DIR"]) / export.path


def test_export_runs_through_the_worker_and_clears_its_record(stack_app):
    project = book_with_text("export-six", 6)
    redis = stack_app.extensions["redis"]
    key = job_key("export-six", JobKind.EXPORT)

    outcome = exports.start_export(project, format_name="txt", min_status=None, user=None)
    assert outcome.started
    raw = redis.get(key)
    assert raw is not None, "no export_task record while the export runs"
    record = json.loads(raw)
    assert {"task_id", "format", "started_at", "project_slug"} <= record.keys()
    assert (record["task_id"], record["format"], record["project_slug"]) == (
        outcome.job_id,
        "txt",
        "export-six",
    )
    assert 0 < redis.ttl(key) <= 24 * 3600

    status = wait_for_export_end(project)
    assert status.state == "succeeded", status
    assert redis.get(key) is None
    job = db.session.get(Job, outcome.job_id)
    assert (job.done, job.failed, job.total) == (6, 0, 6)
    text = exported_path(stack_app, outcome.job_id).read_text()
    for n in range(1, 7):
        words = " ".join(f"p{n}w{i}" for i in range(12))
        assert text.count(f"=== page {n} ===\n{words}\n") == 1, n
    assert text.index("=== page 2 ===") < text.index("=== page 3 ===")


def test_a_zip_export_through_the_worker_holds_each_page(stack_app):
    project = book_with_text("export-zip", 3)
    outcome = exports.start_export(project, format_name="txt-zip", min_status=None, user=None)
    assert wait_for_export_end(project).state == "succeeded"
    with zipfile.ZipFile(exported_path(stack_app, outcome.job_id)) as archive:
        assert archive.read("export-zip/export-zip-0002.txt").decode().startswith("p2w0 p2w1")
        assert len(archive.namelist()) == 3


def test_a_500_page_export_keeps_every_worker_process_small(stack, stack_app):
    """Peak resident memory of each worker process (main and pool) while a 500-page book is
    exported: the issue asks for under 400 MB. The figure and the time are written to
    tests/artifacts/export-memory.txt."""
    worker = stack.workers[0]
    project = book_with_text("export-500", 500, words_per_page=250)
    with PeakRss(worker) as memory:
        started = time.monotonic()
        outcome = exports.start_export(project, format_name="txt", min_status=None, user=None)
        status = wait_for_export_end(project, timeout=900)
        seconds = time.monotonic() - started
    assert status.state == "succeeded", status
    path = exported_path(stack_app, outcome.job_id)
    assert path.read_text().count("=== page ") == 500
    line = (
        f"500-page txt export ({path.stat().st_size} bytes): {seconds:.1f} s, peak RSS of "
        f"the worker's processes {memory.peak_mib:.0f} MiB "
        f"(per process, KiB: {sorted(memory.peak_kib.values())})"
    )
    print(line)
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "export-memory.txt").write_text(line + "\n")
    assert memory.peak_kib, "no worker process was measured"
    assert memory.peak_mib < MEMORY_LIMIT_MIB, line


def test_the_cli_follows_the_export_and_writes_the_file(stack, stack_app, tmp_path):
    """`flask projects export` as an operator runs it, against the stack's worker."""
    book_with_text("export-cli", 5)
    out = tmp_path / "export-cli.txt"
    command = [sys.executable, "-m", "flask", "--app", "app", "projects", "export"]
    result = subprocess.run(
        [*command, "export-cli", "--format", "txt", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, **stack.config},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "export_task:export-cli" in result.stdout and "100%" in result.stdout
    assert out.read_text().count("=== page ") == 5
    again = subprocess.run(
        [
            *command,
            "export-cli",
            "--format",
            "txt-zip",
            "--min-status",
            "proofread-twice",
            "--out",
            str(tmp_path / "none.zip"),
        ],
        cwd=ROOT,
        env={**os.environ, **stack.config},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        "error: No page is at or above proofread twice yet: there is nothing to export."
    ]
