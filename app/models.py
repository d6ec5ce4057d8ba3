"""The proofing domain: users, projects, pages, revisions, and the record of each job.

The database is the source of truth for everything that must outlive a job; Redis only holds
what a running job needs for live progress (see app/job_tracking.py).

The enums here are the one definition of each set of states: project, page (proofreading
level), job, and a page within a job.
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
    #: Turn pages scanned sideways or upside down upright when splitting (Tesseract OSD).
    detect_orientation: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: Where a job's end is POSTed (app/services/webhooks.py); None: no webhook.
    webhook_url: Mapped[str | None] = mapped_column(String(2048))

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
    #: An editor who asked to be told when any job of the project ends.
    notify: Mapped[bool] = mapped_column(default=False, server_default=false())

    project: Mapped[Project] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class PageStatus(enum.StrEnum):
    """A page's proofreading level, set by every save (app/services/pages.py)."""

    NEEDS_WORK = "needs-work"
    PROOFREAD_ONCE = "proofread-once"
    #: Only someone other than whoever set PROOFREAD_ONCE may set this.
    PROOFREAD_TWICE = "proofread-twice"
    #: Blank pages, plates and covers: nothing to proofread.
    NOT_RELEVANT = "not-relevant"

    @property
    def label(self) -> str:
        return self.value.replace("-", " ").capitalize()

    @property
    def rank(self) -> int:
        """Place on the ladder needs-work < proofread-once < proofread-twice; -1 off it."""
        return PAGE_STATUS_LADDER.index(self) if self in PAGE_STATUS_LADDER else -1


PAGE_STATUS_LADDER = (PageStatus.NEEDS_WORK, PageStatus.PROOFREAD_ONCE, PageStatus.PROOFREAD_TWICE)


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
    #: Resolution of the stored image, from the scan itself (None: unknown, an old page).
    dpi: Mapped[float | None]
    #: Degrees (clockwise) the scan was turned to stand upright when split (orientation
    #: detection); 0 when it was upright or detection was off.
    rotation: Mapped[int] = mapped_column(default=0, server_default="0")
    #: The proofreading level (PageStatus), set by every save.
    status: Mapped[str] = mapped_column(
        String(16), default=PageStatus.NEEDS_WORK, server_default=PageStatus.NEEDS_WORK.value
    )
    #: Who set `proofread-once`: only someone else may set `proofread-twice`.
    proofread_once_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    project: Mapped[Project] = relationship(back_populates="pages")
    revisions: Mapped[list[Revision]] = relationship(
        back_populates="page", order_by="Revision.id", cascade="all, delete-orphan"
    )

    @property
    def text_source(self) -> str:
        """Where the page's text comes from, for lists: a person, OCR, or nowhere yet."""
        if self.proofread_at is not None:
            return "edited"
        if self.ocr_state == "failed":
            return "ocr failed"
        if self.version > 0:
            return "machine text"
        return "no text"


class Revision(db.Model):
    __tablename__ = "revisions"
    #: A job writes at most one revision per page, whatever a redelivered task does.
    __table_args__ = (UniqueConstraint("page_id", "job_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The job that wrote it (OCR, search and replace); None for a person's save.
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    #: The page's PageStatus as this revision set it (None: written before status levels).
    status: Mapped[str | None] = mapped_column(String(16))

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


LIVE_JOB_STATES = (JobState.QUEUED, JobState.RUNNING)


class JobKind(enum.StrEnum):
    """What a job does to each of its pages. Every kind is tracked the same way
    (app/job_tracking.py); only the work per page differs."""

    OCR = "ocr"
    EXPORT = "export"
    REPLACE = "replace"


class ItemState(enum.StrEnum):
    """The state of one page within a job: in Redis while the job runs (one byte each,
    app/job_tracking.py), in `job_pages` for good."""

    #: Its image is not rendered yet (a job started with the upload).
    PREPARING = "preparing"
    #: Ready, and waiting for a worker (sent to the queue, or about to be).
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_ITEM_STATES


#: The outcomes a page's task records; with CANCELLED, the states a page never leaves.
OUTCOME_STATES = (ItemState.DONE, ItemState.FAILED, ItemState.SKIPPED)
FINISHED_ITEM_STATES = (*OUTCOME_STATES, ItemState.CANCELLED)


class Job(db.Model):
    """One background job over a project's pages (batch OCR, an export, a search and
    replace); outlives its Redis record."""

    __tablename__ = "jobs"

    #: The Celery group id, also `task_id` in the Redis record.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=JobKind.OCR, index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    #: OCR: the engine and language. None for other kinds.
    engine: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(64))
    #: Which pages were asked for: "unedited", "all", "failed", "resume", "upload", ...
    selection: Mapped[str] = mapped_column(String(16))
    #: What the kind needs besides (an export's format, a replace's pattern), as JSON.
    options: Mapped[dict | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(24), default=JobState.QUEUED, index=True)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    #: Why the job ended as it did, when that is not in the counts (interrupted: workers lost).
    message: Mapped[str | None] = mapped_column(Text)

    project: Mapped[Project] = relationship()
    started_by: Mapped[User | None] = relationship()
    pages: Mapped[list[JobPage]] = relationship(
        back_populates="job", order_by="JobPage.position", cascade="all, delete-orphan"
    )


class JobPage(db.Model):
    """The outcome of one page in one job."""

    __tablename__ = "job_pages"
    __table_args__ = (UniqueConstraint("job_id", "page_id"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    #: Index of the page within the job; also its byte in the Redis page-state string.
    position: Mapped[int] = mapped_column(primary_key=True)
    #: None while the page is being prepared (a job started with its upload).
    page_id: Mapped[int | None] = mapped_column(ForeignKey("pages.id"), index=True)
    #: An ItemState: "queued" until the page finishes, then its outcome.
    state: Mapped[str] = mapped_column(String(16), default=ItemState.QUEUED)
    reason: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]

    job: Mapped[Job] = relationship(back_populates="pages")
    page: Mapped[Page | None] = relationship()


class ApiToken(db.Model):
    """A bearer token for the JSON API (`flask users token NAME`); only its hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: SHA-256 of the token, hex: a stolen database gives no usable token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class Export(db.Model):
    """A finished export file, kept for EXPORT_RETENTION_HOURS and served again while the
    text it was made from has not changed."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    format: Mapped[str] = mapped_column(String(16))
    min_status: Mapped[str | None] = mapped_column(String(16))
    #: Digest of what the file was made from (each page's id, version and status).
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    #: Relative to DATA_DIR.
    path: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship()


class Notification(db.Model):
    """Something a user should know about: a job they wait on has ended."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    title: Mapped[str] = mapped_column(String(256))
    body: Mapped[str] = mapped_column(Text, default="")
    #: A path in the app (the job's summary).
    link: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    read_at: Mapped[datetime | None]

    job: Mapped[Job | None] = relationship()


class WebhookDelivery(db.Model):
    """One event sent, or being sent, to a project's webhook URL, with its attempts."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    url: Mapped[str] = mapped_column(String(2048))
    event: Mapped[str] = mapped_column(String(64))
    #: The exact body sent (and signed), so every attempt sends the same bytes.
    body: Mapped[str] = mapped_column(Text)
    #: "pending", "delivered" or "failed".
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
