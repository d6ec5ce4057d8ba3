"""Saving a page's text as a new revision, with optimistic locking so nothing is lost."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update

from app.extensions import db
from app.models import Page, Revision, User, utcnow


@dataclass(frozen=True)
class SaveOutcome:
    saved: bool
    #: On a conflict: the text someone else saved meanwhile, and the version to save against.
    current_text: str = ""
    current_version: int = 0
    current_author: str = ""


def save_page_text(
    page: Page, author: User, text: str, base_version: int, summary: str = ""
) -> SaveOutcome:
    """Save `text` as a revision if nobody saved the page since `base_version`.

    The version check and increment are one UPDATE, so of two saves racing on the same
    version exactly one succeeds; the other gets the winner's text back to merge by hand.
    """
    text = text.replace("\r\n", "\n")
    now = utcnow()
    bumped = db.session.execute(
        update(Page)
        .where(Page.id == page.id, Page.version == base_version)
        .values(version=Page.version + 1, text=text, proofread_at=now)
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
            page_id=page.id, author_id=author.id, text=text, summary=summary[:256], created_at=now
        )
    )
    db.session.commit()
    db.session.refresh(page)
    return SaveOutcome(saved=True, current_text=text, current_version=page.version)
