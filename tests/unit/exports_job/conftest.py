"""Fixtures of the export job tests: books with text and statuses, and the recorded tasks run
in this process, one at a time, as a worker would take them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update

from app import task_names
from app.extensions import db
from app.models import Page, Project
from app.services import exports
from tests.support import add_ready_project


@pytest.fixture
def book(app) -> Callable[..., Project]:
    """A ready project whose page n reads "text of page n", with the given statuses (default
    needs-work)."""

    def make(slug: str = "exported", pages: int = 3, statuses: list[str] | None = None):
        project = add_ready_project(slug, pages)
        for page in project.pages:
            values = {"text": f"text of page {page.number}", "version": 1}
            if statuses:
                values["status"] = statuses[page.number - 1]
            db.session.execute(update(Page).where(Page.id == page.id).values(**values))
        db.session.commit()
        db.session.expire_all()
        return project

    return make


@pytest.fixture
def run_tasks(enqueued) -> Callable[[], int]:
    """Run the recorded export tasks (and those they send) until none is left, as one worker
    would; returns how many ran."""

    def run() -> int:
        ran = 0
        while enqueued:
            name, kwargs = enqueued.pop(0)
            if name == task_names.EXPORT_PAGE:
                exports.run_page(kwargs["job_id"], kwargs["position"], worker="test:1")
            elif name == task_names.ASSEMBLE_EXPORT:
                exports.assemble_export(kwargs["job_id"], worker="test:1")
            else:
                continue
            ran += 1
        return ran

    return run


def change_page(project: Project, number: int, **values) -> None:
    """A save of page `number`: its version goes up, with the given text or status."""
    db.session.execute(
        update(Page)
        .where(Page.project_id == project.id, Page.number == number)
        .values(version=Page.version + 1, **values)
    )
    db.session.commit()
    db.session.expire_all()


@pytest.fixture
def save_page():
    return change_page
