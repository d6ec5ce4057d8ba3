"""A search and replace over more pages than the request does itself, through the real
stack: redis-server, a Celery worker running `replace_page`, the shared database."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Job, JobKind, Page, Revision, Role
from app.services import jobs, replace
from app.services.accounts import create_user
from tests.support import add_ready_project, wait_for

pytestmark = pytest.mark.integration

PAGES = replace.SYNC_LIMIT + 10


def test_a_replace_job_changes_every_page_once_and_clears_its_key(stack_app):
    project = add_ready_project("replace-job", PAGES, images=False)
    for page in db.session.scalars(select(Page).filter_by(project_id=project.id)):
        page.text = f"पृष्ठ {page.number}: olde booke, olde booke"
    db.session.commit()
    editor = create_user(f"replacer-{time.monotonic_ns()}", "replacer-password", Role.EDITOR)
    redis = stack_app.extensions["redis"]
    key = jobs.tracker(JobKind.REPLACE).record_key(project.slug)
    assert key == "replace_task:replace-job"

    replacement = replace.Replacement.parse("olde booke", "old book")
    shown = replace.preview_replace(project, replacement)
    assert shown.pages == PAGES and shown.runs_as_job
    outcome = replace.apply_replace(project, replacement, shown.versions, editor)
    assert outcome.started and outcome.job_id
    assert redis.exists(key)

    def ended():
        db.session.expire_all()
        return not redis.exists(key) and db.session.get(Job, outcome.job_id).finished_at

    wait_for(ended, 120, "the end of the replace job")
    job = db.session.get(Job, outcome.job_id)
    assert (job.state, job.done, job.skipped, job.failed) == ("succeeded", PAGES, 0, 0)
    for page in db.session.scalars(select(Page).filter_by(project_id=project.id)):
        assert page.text == f"पृष्ठ {page.number}: old book, old book"
        [revision] = db.session.scalars(select(Revision).filter_by(page_id=page.id)).all()
        assert revision.job_id == job.id and revision.author_id == editor.id
        assert revision.summary == "Replaced “olde booke” with “old book” (2×)"
    status = replace.replace_status(project)
    assert (status.state, status.done, status.total) == ("succeeded", PAGES, PAGES)
