"""Starting batch OCR: which pages, which engine, and the job that covers them.

A job is started from the batch OCR page or the CLI over a selection of the project's pages,
or together with an upload (`start_with_upload`), when it covers every page of the book and
each page is OCR'd as soon as its image is ready.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from app import queue
from app.engines import ENGINES, get_engine
from app.extensions import db
from app.models import (
    ItemState,
    Job,
    JobKind,
    JobPage,
    JobState,
    Page,
    Project,
    ProjectStatus,
    User,
)
from app.services import jobs
from app.services.accounts import bot_user
from app.services.projects import check_language, create_project

#: Which pages a job covers, as offered on the form and the CLI.
SELECTIONS = {
    "unedited": "Pages never edited by a person",
    "all": "All pages (pages edited by a person are still kept)",
    "failed": "Pages whose last OCR failed",
}
RESUME = "resume"
#: The selection of a job started with its upload: every page, as it is rendered.
UPLOAD = "upload"


class BatchOcrError(jobs.JobError):
    """A user-facing reason a batch OCR action cannot be done."""


def engine_choices() -> list[dict[str, str | None]]:
    """Every engine, with why it cannot run here (None: it can), for the forms."""
    return [
        {
            "name": engine.name,
            "label": engine.label,
            "unavailable": engine.unavailable_reason(current_app.config),
        }
        for engine in ENGINES.values()
    ]


def check_engine(engine_name: str, language: str) -> None:
    engine = get_engine(engine_name)
    if engine is None:
        raise BatchOcrError(f"Unknown OCR engine {engine_name!r}.")
    reason = engine.unavailable_reason(current_app.config)
    if reason:
        raise BatchOcrError(f"The {engine.label} engine is unavailable: {reason}.")
    try:
        check_language(language)
    except ValueError as exc:
        raise BatchOcrError(str(exc)) from None
    installed = engine.languages(current_app.config)
    if installed is not None:
        missing = [code for code in language.split("+") if code not in installed]
        if missing:
            raise BatchOcrError(
                f"No {engine.label} language data is installed for {', '.join(missing)}; "
                f"installed: {', '.join(sorted(installed)) or 'none'}."
            )


def _selected_pages(project: Project, selection: str) -> list[int]:
    query = select(Page.id).filter_by(project_id=project.id).order_by(Page.number)
    if selection == "unedited":
        # Every save by a person sets proofread_at, whatever status level it sets; so this
        # stays "never edited by a person" with the proofreading levels.
        query = query.where(Page.proofread_at.is_(None))
    elif selection == "failed":
        query = query.where(Page.ocr_state == ItemState.FAILED)
    elif selection == RESUME:
        return _pages_to_resume(project)
    elif selection != "all":
        raise BatchOcrError(f"Unknown page selection {selection!r}.")
    return list(db.session.scalars(query))


def _pages_to_resume(project: Project) -> list[int]:
    last = jobs.latest_job(project, JobKind.OCR)
    if last is None or last.state not in (JobState.INTERRUPTED, JobState.CANCELLED):
        raise BatchOcrError("There is no interrupted or cancelled job to resume.")
    unfinished = db.session.execute(
        select(JobPage.position, JobPage.page_id)
        .filter_by(job_id=last.id)
        .where(JobPage.state.in_((ItemState.QUEUED, ItemState.CANCELLED, ItemState.PREPARING)))
        .order_by(JobPage.position)
    ).all()
    # A job started with its upload may have ended before some pages were rendered: those
    # rows have no page yet, and its positions are the book's pages in order.
    by_number = dict(
        db.session.execute(select(Page.number, Page.id).filter_by(project_id=project.id)).all()
    )
    ids = [page_id or by_number.get(position + 1) for position, page_id in unfinished]
    return [page_id for page_id in ids if page_id is not None]


@queue.needs_redis
def start_batch_ocr(
    project: Project,
    *,
    engine: str,
    language: str | None,
    selection: str,
    user: User | None,
) -> jobs.StartOutcome:
    """Start OCR over the selected pages, or return the job already running."""
    running = jobs.current_job(project, JobKind.OCR)
    if running is not None:
        return jobs.StartOutcome(job_id=running.task_id, started=False)
    if project.status != ProjectStatus.READY:
        raise BatchOcrError("The project's pages are not ready yet; wait for the split to end.")
    language = (language or project.language).strip()
    resumed = jobs.latest_job(project, JobKind.OCR) if selection == RESUME else None
    if resumed is not None and resumed.engine:
        engine, language = resumed.engine, resumed.language or language
    check_engine(engine, language)
    page_ids = _selected_pages(project, selection)
    if not page_ids:
        raise BatchOcrError("No pages match that selection: there is nothing to OCR.")
    bot_user()  # exists before any page task needs it
    return jobs.start_job(
        project,
        JobKind.OCR,
        page_ids=page_ids,
        selection=selection,
        user=user,
        engine=engine,
        language=language,
    )


@queue.needs_redis
def start_with_upload(
    project: Project, *, engine: str, language: str | None, user: User | None
) -> jobs.StartOutcome:
    """Start OCR of every page of a project being split: each page is sent as it is ready."""
    language = (language or project.language).strip()
    check_engine(engine, language)
    bot_user()
    return jobs.start_job(
        project,
        JobKind.OCR,
        page_ids=[None] * (project.source_page_count or 0),
        selection=UPLOAD,
        user=user,
        engine=engine,
        language=language,
        preparing=True,
    )


def create_project_with_ocr(*, engine: str, ocr_language: str | None, **fields: Any) -> Project:
    """Create a project from an upload (app/services/projects.py `create_project` takes
    `fields`) with a batch OCR job over every page, each OCR'd as soon as it is rendered.

    The engine is checked before anything is stored; any failure leaves no project, no job
    and no key.
    """
    check_engine(engine, (ocr_language or fields["language"]).strip())

    def start_ocr(project: Project) -> None:
        start_with_upload(
            project, engine=engine, language=ocr_language, user=fields.get("created_by")
        )

    return create_project(**fields, on_created=start_ocr)


def waits_for_pages(project: Project) -> bool:
    """Whether the project's live OCR job was started with its upload."""
    record = jobs.current_job(project, JobKind.OCR)
    job = db.session.get(Job, record.task_id) if record else None
    return job is not None and job.selection == UPLOAD


def page_rendered(project: Project, page: Page) -> None:
    """A page of a project being split has its image: OCR it now if a job waits for it."""
    jobs.pages_ready(project, JobKind.OCR, {page.number - 1: page.id})


def split_failed(project: Project, reason: str) -> None:
    """The split of the project stopped: a job started with the upload ends failed, keeping
    the pages it has done."""
    record = jobs.current_job(project, JobKind.OCR)
    job = db.session.get(Job, record.task_id) if record else None
    if job is None or job.selection != UPLOAD:
        return
    db.session.query(JobPage).filter_by(job_id=job.id, state=ItemState.PREPARING).update(
        {"state": ItemState.FAILED, "reason": f"the page could not be prepared: {reason}"[:500]}
    )
    db.session.commit()
    jobs.stop_job(project, JobKind.OCR, JobState.FAILED, f"The split stopped: {reason}")
