"""A whole batch OCR job through the real stack: redis-server, a Celery worker, Tesseract."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.job_tracking import job_key
from app.models import Job, Page, Project, Revision
from app.services import batch_ocr
from app.services.projects import create_project
from tests.conftest import corpus
from tests.support import wait_for

pytestmark = pytest.mark.integration


def make_ready_project(slug: str, source: Path, language: str = "eng") -> Project:
    with source.open("rb") as fh:
        project = create_project(
            slug=slug,
            title=slug,
            language=language,
            source=fh,
            filename=source.name,
            created_by=None,
        )

    def ready():
        db.session.expire_all()
        return db.session.get(Project, project.id).status != "splitting"

    wait_for(ready, 120, f"the split of {slug}")
    db.session.refresh(project)
    assert project.status == "ready", project.status_message
    return project


def wait_for_job_end(project: Project, timeout: float = 300) -> dict:
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


def test_six_page_job_runs_to_the_end_and_clears_its_key(stack_app):
    project = make_ready_project("six-pages", corpus("multipage.pdf"))
    assert len(project.pages) == 6
    redis = stack_app.extensions["redis"]

    outcome = batch_ocr.start_batch_ocr(
        project, engine="tesseract", language=None, selection="unedited", user=None
    )
    assert outcome.started
    assert redis.get(job_key("six-pages")) is not None
    assert 0 < redis.ttl(job_key("six-pages")) <= 24 * 3600

    status = wait_for_job_end(project)
    assert status["state"] == "succeeded", status
    assert (status["done"], status["failed"], status["total"], status["percent"]) == (6, 0, 6, 100)
    assert redis.get(job_key("six-pages")) is None

    job = db.session.get(Job, outcome.job_id)
    assert (job.state, job.done, job.failed) == ("succeeded", 6, 0)
    data_dir = Path(stack_app.config["DATA_DIR"])
    for page in db.session.scalars(select(Page).filter_by(project_id=project.id)):
        revisions = db.session.scalars(select(Revision).filter_by(page_id=page.id)).all()
        assert len(revisions) == 1, f"page {page.number} has {len(revisions)} revisions"
        assert revisions[0].job_id == job.id
        assert page.text == tesseract_cli(data_dir / page.image_path, "eng"), page.number
        assert page.ocr_boxes is not None
    # Pages with text yield word boxes whose words appear in the text.
    first = db.session.scalar(select(Page).filter_by(project_id=project.id, number=1))
    assert first.ocr_boxes and all(box[0] in first.text for box in first.ocr_boxes)
