"""Creating a project from an uploaded scan, and splitting the scan into page images.

What may be uploaded, and how it is kept, is app/sources.py; how a page becomes an image,
app/rendering.py. This module owns the project's rows and directory around them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app import queue, task_names
from app.engines.tesseract import detect_rotation
from app.extensions import db
from app.models import (
    Job,
    JobKind,
    MemberRole,
    Page,
    Project,
    ProjectMember,
    ProjectStatus,
    User,
)
from app.rendering import SourceDocument, UnusableSource, iter_pages
from app.services import retention
from app.services.accounts import user_named
from app.sources import Upload, store, stored_source

log = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
LANGUAGE_RE = re.compile(r"^[a-z][a-z_]{1,15}(?:\+[a-z][a-z_]{1,15}){0,3}$", re.IGNORECASE)


class ProjectError(ValueError):
    """A user-facing reason a project cannot be created."""


def check_slug(slug: str) -> str:
    if not SLUG_RE.fullmatch(slug or ""):  # `$` alone lets "book\n" through
        raise ProjectError(
            "A slug is 1 to 64 lowercase letters a-z, digits and hyphens, "
            "starting and ending with a letter or digit (for example: gita-press-1942)."
        )
    return slug


def check_language(language: str) -> str:
    if not LANGUAGE_RE.fullmatch(language or ""):
        raise ProjectError(
            "A language is a Tesseract code such as san, hin, tam or eng, "
            "or several joined with + (hin+eng)."
        )
    return language


def project_dir(project: Project | str) -> Path:
    slug = project if isinstance(project, str) else project.slug
    return Path(current_app.config["DATA_DIR"]) / "projects" / slug


def create_project(
    *,
    slug: str,
    title: str,
    language: str,
    source: BinaryIO | None = None,
    filename: str = "",
    uploads: Sequence[Upload] | None = None,
    created_by: User | None,
    private: bool = False,
    detect_orientation: bool = False,
    on_created: Callable[[Project], object] | None = None,
) -> Project:
    """Store the upload, check it can be opened, record the project and enqueue its split.

    The upload is one file (`source` and its `filename`: a PDF, an image, a multi-page TIFF
    or a ZIP of page images) or several page images (`uploads`), app/sources.py.

    The user who creates it becomes an editor member, so a private project has one from the
    start (app/permissions.py). `on_created` runs once the project is recorded and before its
    split is sent (a batch OCR job started with the upload, app/services/batch_ocr/start.py).

    Any failure leaves nothing behind: no row, no directory, no job, no key, no task.
    """
    check_slug(slug)
    check_language(language)
    title = (title or "").strip() or slug
    if uploads is None:
        uploads = [] if source is None else [Upload(filename, source)]
    if db.session.scalar(select(Project.id).filter_by(slug=slug)) is not None:
        raise ProjectError(f"A project with the slug {slug!r} already exists.")
    directory = project_dir(slug)
    # The upload is stored in a directory of its own and moved into place only once the
    # project's row is committed: two uploads racing for one slug never touch each other's
    # files, and the one that loses the unique constraint removes only its own.
    staging = directory.parent / f".incoming-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    retention.remove_stale_staging(directory.parent)
    try:
        try:
            stored = store(uploads, staging)
            with SourceDocument(stored.path) as document:
                page_count = document.page_count
        except UnusableSource as exc:
            raise ProjectError(str(exc)) from None
        project = Project(
            slug=slug,
            title=title[:256],
            language=language,
            source_filename=stored.label[:256],
            source_page_count=page_count,
            status=ProjectStatus.SPLITTING,
            created_by_id=created_by.id if created_by else None,
            is_private=private,
            detect_orientation=detect_orientation,
        )
        if created_by is not None:
            project.members.append(ProjectMember(user_id=created_by.id, role=MemberRole.EDITOR))
        db.session.add(project)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        shutil.rmtree(staging, ignore_errors=True)
        raise ProjectError(f"A project with the slug {slug!r} already exists.") from None
    except BaseException:
        db.session.rollback()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if directory.exists():  # left by a crash after an earlier commit failed: no row owns it
        shutil.rmtree(directory)
    staging.rename(directory)
    try:
        if on_created is not None:
            on_created(project)
        queue.enqueue(task_names.SPLIT_SOURCE, project_id=project.id)
    except BaseException:
        _undo_created(project)
        shutil.rmtree(directory, ignore_errors=True)
        raise
    log.info("project %s created from %s (%d pages)", slug, stored.label, page_count)
    return project


def _undo_created(project: Project) -> None:
    """Remove a project whose creation failed after its row was committed, with any job
    `on_created` started for it (its rows and its Redis record)."""
    db.session.rollback()
    for job in db.session.scalars(select(Job).filter_by(project_id=project.id)):
        with contextlib.suppress(*queue.REDIS_DOWN):
            tracker = current_app.extensions["job_trackers"][JobKind(job.kind)]
            tracker.forget(project.slug, job.id)
        db.session.delete(job)
    db.session.delete(project)
    db.session.commit()


def set_member(project: Project, user: User, role: str) -> ProjectMember:
    """Make `user` a member of `project` with `role` (editor or proofreader), or change it."""
    if role not in set(MemberRole):
        raise ProjectError(f"A member's role is editor or proofreader, not {role!r}.")
    if user.is_bot:
        raise ProjectError("The OCR bot cannot be a member of a project.")
    member = db.session.get(ProjectMember, (project.id, user.id))
    if member is None:
        member = ProjectMember(project_id=project.id, user_id=user.id)
        db.session.add(member)
    member.role = role
    db.session.commit()
    return member


def set_private(project: Project, private: bool) -> None:
    """Make the project private (members and admins only) or public again."""
    project.is_private = private
    db.session.commit()


def add_member_by_name(project: Project, username: str, role: str) -> ProjectMember:
    """`set_member` for a user named in a form: an unknown name is a ProjectError."""
    user = user_named(username)
    if user is None:
        raise ProjectError(f"There is no user {username.strip()!r}.")
    return set_member(project, user, role)


def remove_member(project: Project, user: User) -> bool:
    """Remove `user` from the members of `project`; False if they were not one."""
    member = db.session.get(ProjectMember, (project.id, user.id))
    if member is None:
        return False
    db.session.delete(member)
    db.session.commit()
    return True


#: Pages rendered by one task. Small enough that a book's split spreads over every worker
#: process; large enough that per-task overhead stays negligible.
SPLIT_CHUNK_PAGES = 8


def split_source(project_id: int) -> None:
    """Split the project's source into page images: the first pages here, the rest in parallel.

    Renders the first chunk itself and enqueues one `render_pages` task for each further
    chunk, so that every worker process renders. Idempotent: only pages not yet recorded are
    rendered, so a redelivered split resumes where a killed one stopped.
    """
    project = db.session.get(Project, project_id)
    if project is None or project.status != ProjectStatus.SPLITTING:
        return
    total = project.source_page_count or 0
    recorded = _recorded_numbers(project)
    missing = [index for index in range(total) if index + 1 not in recorded]
    if _ocr_follows(project):
        # OCR takes each page as it is rendered: one process renders the book in order while
        # the others OCR it, so the first page's text comes within seconds of the upload.
        render_pages(project_id, missing[0] if missing else 0, total)
        return
    chunks = [missing[i : i + SPLIT_CHUNK_PAGES] for i in range(0, len(missing), SPLIT_CHUNK_PAGES)]
    for chunk in chunks[1:]:
        queue.enqueue(
            task_names.RENDER_PAGES, project_id=project_id, start=chunk[0], stop=chunk[-1] + 1
        )
    render_pages(project_id, chunks[0][0] if chunks else 0, chunks[0][-1] + 1 if chunks else 0)


def render_pages(project_id: int, start: int, stop: int) -> None:
    """Render pages [start, stop) (0-based) of the project's source and record each as a Page.

    One page is rendered and committed at a time, keeping memory flat. Whichever task
    records the book's last page marks the project ready.
    """
    project = db.session.get(Project, project_id)
    if project is None or project.status != ProjectStatus.SPLITTING:
        return
    config = current_app.config
    directory = project_dir(project)
    pages_dir = directory / "pages"
    pages_dir.mkdir(exist_ok=True)
    recorded = _recorded_numbers(project)
    todo = [index for index in range(start, stop) if index + 1 not in recorded]
    orient = None
    if project.detect_orientation:
        orient = functools.partial(detect_rotation, cmd=config["TESSERACT_CMD"])
    try:
        for index, rendered in iter_pages(
            stored_source(directory),
            pages_dir,
            default_dpi=config["RENDER_DPI"],
            max_pixels=config["RENDER_MAX_PIXELS"],
            indexes=todo,
            orient=orient,
        ):
            db.session.add(
                Page(
                    project_id=project.id,
                    number=index + 1,
                    image_path=str(rendered.path.relative_to(config["DATA_DIR"])),
                    width=rendered.width,
                    height=rendered.height,
                    dpi=rendered.dpi,
                    rotation=rendered.rotation,
                )
            )
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()  # another task recorded this page first: same image
                continue
            _page_recorded(project, index + 1)
    except UnusableSource as exc:
        db.session.rollback()
        _fail_split(project_id, str(exc))
        return
    _finish_split_if_complete(project_id)


def _ocr_follows(project: Project) -> bool:
    """Whether a batch OCR job started with the upload waits for the project's pages."""
    from app.services import batch_ocr  # batch_ocr builds on this module

    return batch_ocr.waits_for_pages(project)


def _page_recorded(project: Project, number: int) -> None:
    """Page `number` is recorded: a job started with the upload OCRs it now."""
    from app.services import batch_ocr  # batch_ocr builds on this module

    page = db.session.scalar(select(Page).filter_by(project_id=project.id, number=number))
    batch_ocr.page_rendered(project, page)


def _recorded_numbers(project: Project) -> set[int]:
    return set(db.session.scalars(select(Page.number).filter_by(project_id=project.id)))


def _fail_split(project_id: int, reason: str) -> None:
    failed = db.session.execute(
        update(Project)
        .filter_by(id=project_id, status=ProjectStatus.SPLITTING)
        .values(status=ProjectStatus.FAILED, status_message=reason)
    ).rowcount
    db.session.commit()
    if failed:
        log.warning("split of project %d failed: %s", project_id, reason)
        from app.services import batch_ocr  # batch_ocr builds on this module

        batch_ocr.split_failed(db.session.get(Project, project_id), reason)


def _finish_split_if_complete(project_id: int) -> None:
    project = db.session.get(Project, project_id)
    if pages_split(project) < (project.source_page_count or 0):
        return
    # A conditional update: of the chunk tasks finishing together, one marks the project.
    ready = db.session.execute(
        update(Project)
        .filter_by(id=project_id, status=ProjectStatus.SPLITTING)
        .values(status=ProjectStatus.READY, status_message=None)
    ).rowcount
    db.session.commit()
    if ready:
        log.info("split of %s done: %d pages", project.slug, project.source_page_count)


def pages_split(project: Project) -> int:
    return db.session.scalar(select(func.count(Page.id)).filter_by(project_id=project.id)) or 0
