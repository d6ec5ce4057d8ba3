"""A whole batch OCR job through the real stack: redis-server, a Celery worker, Tesseract."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.job_tracking import job_key
from app.models import Job, Page, Revision
from app.services import batch_ocr
from tests.support import corpus, make_ready_project, tesseract_cli, wait_for_job_end

pytestmark = pytest.mark.integration


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
