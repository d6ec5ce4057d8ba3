"""Saving a page's text as a new revision, with optimistic locking so nothing is lost, and
the page's proofreading level with it.

Every save sets the page's status (PageStatus). `proofread-twice` confirms somebody else's
work: it is refused to the person who set `proofread-once`, and to anyone while nobody has,
as Wikisource's validation is. A refused save changes nothing; the caller keeps the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update

from app.extensions import db
from app.models import Page, PageStatus, Revision, User, utcnow


@dataclass(frozen=True)
class SaveOutcome:
    saved: bool
    #: On a conflict: the text someone else saved meanwhile, and the version to save against.
    current_text: str = ""
    current_version: int = 0
    current_author: str = ""
    #: Why the save was refused though nobody else saved (the status rule); "" otherwise.
    refused: str = ""


class StatusError(ValueError):
    """A status that is not a PageStatus."""


def parse_status(value: str | None) -> PageStatus | None:
    if value is None or value == "":
        return None
    try:
        return PageStatus(value)
    except ValueError:
        raise StatusError(
            f"{value!r} is not a page status; use one of "
            + ", ".join(s.value for s in PageStatus)
            + "."
        ) from None


def status_refusal(page: Page, author: User, status: PageStatus) -> str:
    """Why `author` may not set `status` on `page` now, or "" when they may."""
    if status != PageStatus.PROOFREAD_TWICE:
        return ""
    if page.proofread_once_by_id is None:
        return (
            "This page has not been proofread once yet, so it cannot be marked proofread "
            "twice. Save it as proofread once; someone else then confirms it."
        )
    if page.proofread_once_by_id == author.id:
        return (
            "You marked this page proofread once, so someone else must confirm it: "
            "proofread twice needs a second reader. Save it as proofread once, or ask a "
            "colleague to check it."
        )
    return ""


def save_page_text(
    page: Page,
    author: User,
    text: str,
    base_version: int,
    summary: str = "",
    status: PageStatus | str | None = None,
    job_id: str | None = None,
) -> SaveOutcome:
    """Save `text` as a revision, at `status` (None: the page's current one), if nobody saved
    the page since `base_version` and the status rule allows it.

    The version check and increment are one UPDATE, so of two saves racing on the same
    version exactly one succeeds; the other gets the winner's text back to merge by hand.
    The status rule is checked against the page as of `base_version`, which the same UPDATE
    guarantees is still the page saved over. `job_id`: the job that saves on the person's
    behalf (search and replace), recorded on the revision; a job writes a page once.
    """
    text = text.replace("\r\n", "\n")
    new_status = PageStatus(status) if status else PageStatus(page.status)
    refusal = status_refusal(page, author, new_status) if page.version == base_version else ""
    if refusal:
        return SaveOutcome(saved=False, current_version=page.version, refused=refusal)
    if new_status == PageStatus.PROOFREAD_ONCE:
        once_by = author.id
    elif new_status == PageStatus.PROOFREAD_TWICE:
        once_by = page.proofread_once_by_id
    else:
        once_by = None
    now = utcnow()
    bumped = db.session.execute(
        update(Page)
        .where(Page.id == page.id, Page.version == base_version)
        .values(
            version=Page.version + 1,
            text=text,
            proofread_at=now,
            status=new_status.value,
            proofread_once_by_id=once_by,
        )
    ).rowcount
    if bumped != 1:
        db.session.rollback()
        db.session.refresh(page)
        last = page.revisions[-1] if page.revisions else None
        return SaveOutcome(
            saved=False,
            current_text=page.text,
            current_version=page.version,
            current_author=last.author.username if last else "",
        )
    db.session.add(
        Revision(
            page_id=page.id,
            author_id=author.id,
            text=text,
            summary=summary[:256],
            created_at=now,
            status=new_status.value,
            job_id=job_id,
        )
    )
    db.session.commit()
    db.session.refresh(page)
    return SaveOutcome(saved=True, current_text=text, current_version=page.version)
