"""The proofing domain: users, projects, pages, revisions, and the record of each OCR job.

The database is the source of truth for everything that must outlive a job; Redis only holds
what a running job needs for live progress (see app/ocr_tracking.py).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Role(enum.StrEnum):
    PROOFREADER = "proofreader"
    EDITOR = "editor"
    ADMIN = "admin"


BOT_USERNAME = "ocr-bot"


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default=Role.PROOFREADER)
    #: The bot authors machine-written revisions and can never log in.
    is_bot: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return not self.is_bot and check_password_hash(self.password_hash, password)

    @property
    def can_edit_projects(self) -> bool:
        """Editors and admins create projects and run batch OCR."""
        return self.role in (Role.EDITOR, Role.ADMIN)


class ProjectStatus(enum.StrEnum):
    SPLITTING = "splitting"
    READY = "ready"
    FAILED = "failed"


class Project(db.Model):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(256))
    #: Tesseract language code(s), e.g. "san", "hin+eng".
    language: Mapped[str] = mapped_column(String(64), default="eng")
    status: Mapped[str] = mapped_column(String(16), default=ProjectStatus.SPLITTING)
    #: Why the source could not be used, in words a user can act on.
    status_message: Mapped[str | None] = mapped_column(Text)
    source_filename: Mapped[str] = mapped_column(String(256))
    #: Pages in the source, known once it is opened; `pages` fills up while it is split.
    source_page_count: Mapped[int | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: A private project is seen only by its members and admins (app/permissions.py).
    is_private: Mapped[bool] = mapped_column(default=False, server_default=false())

    pages: Mapped[list[Page]] = relationship(
        back_populates="project", order_by="Page.number", cascade="all, delete-orphan"
    )
    members: Mapped[list[ProjectMember]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )


class MemberRole(enum.StrEnum):
    """What a member may do in one project (app/permissions.py)."""

    PROOFREADER = "proofreader"
    EDITOR = "editor"


class ProjectMember(db.Model):
    """A user's role in one project: who sees a private project, and who edits it."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16), default=MemberRole.PROOFREADER)

    project: Mapped[Project] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class Page(db.Model):
    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("project_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    #: 1-based position in the book.
    number: Mapped[int]
    #: Path of the page image relative to DATA_DIR.
    image_path: Mapped[str] = mapped_column(String(512))
    width: Mapped[int]
    height: Mapped[int]
    #: Optimistic lock: every saved revision increments it; a save naming an older one conflicts.
    version: Mapped[int] = mapped_column(default=0)
    #: The current text (the latest revision's), kept here so listing pages reads one table.
    text: Mapped[str] = mapped_column(Text, default="")
    #: When a person last saved the page; OCR never overwrites a page saved after its job began.
    proofread_at: Mapped[datetime | None]
    #: Outcome of the last OCR of this page: None, "done", "failed" or "skipped".
    ocr_state: Mapped[str | None] = mapped_column(String(16))
    ocr_error: Mapped[str | None] = mapped_column(Text)
    #: Word boxes of the last OCR: [[text, left, top, width, height, confidence], ...].
    ocr_boxes: Mapped[list | None] = mapped_column(JSON)

    project: Mapped[Project] = relationship(back_populates="pages")
    revisions: Mapped[list[Revision]] = relationship(
        back_populates="page", order_by="Revision.id", cascade="all, delete-orphan"
    )

    @property
    def status(self) -> str:
        if self.proofread_at is not None:
            return "proofread"
        if self.ocr_state == "failed":
            return "ocr failed"
        if self.version > 0:
            return "machine text"
        return "no text"


class Revision(db.Model):
    __tablename__ = "revisions"
    #: One OCR job writes at most one revision per page, whatever a redelivered task does.
    __table_args__ = (UniqueConstraint("page_id", "ocr_job_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ocr_job_id: Mapped[str | None] = mapped_column(ForeignKey("ocr_jobs.id"))

    page: Mapped[Page] = relationship(back_populates="revisions")
    author: Mapped[User] = relationship()


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially_failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def is_terminal(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class OcrJob(db.Model):
    """One batch OCR run over a project; outlives its Redis record."""

    __tablename__ = "ocr_jobs"

    #: The Celery group id, also `task_id` in the Redis record.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    engine: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(64))
    #: Which pages were asked for: "unedited", "all", "failed" or "resume".
    selection: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24), default=JobState.QUEUED)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)

    project: Mapped[Project] = relationship()
    started_by: Mapped[User | None] = relationship()
    pages: Mapped[list[OcrJobPage]] = relationship(
        back_populates="job", order_by="OcrJobPage.position", cascade="all, delete-orphan"
    )


class OcrJobPage(db.Model):
    """The outcome of one page in one job."""

    __tablename__ = "ocr_job_pages"
    __table_args__ = (UniqueConstraint("job_id", "page_id"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("ocr_jobs.id"), primary_key=True)
    #: Index of the page within the job; also its byte in the Redis page-state string.
    position: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"))
    #: "queued", "done", "failed", "skipped" or "cancelled".
    state: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]

    job: Mapped[OcrJob] = relationship(back_populates="pages")
    page: Mapped[Page] = relationship()
