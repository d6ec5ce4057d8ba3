"""A page's history: its revisions newest first, one revision beside the one before it, and
restoring an old text as a new revision (nothing is ever rewritten).

Revisions are numbered per page from 1 in the order they were written, which is what people
see and what a restore's summary names; the URL names the revision by its id.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import Page, Revision, User
from app.services.pages import SaveOutcome, save_page_text
from app.services.pagination import Paginated

#: Revisions per screen of a page's history.
PER_PAGE = 50

BOT_LABEL = "OCR bot"


def author_label(user: User | None) -> str:
    """Who wrote a revision, as people read it: the OCR bot is shown as such."""
    if user is None:
        return "unknown"
    return BOT_LABEL if user.is_bot else user.username


@dataclass(frozen=True)
class HistoryEntry:
    revision: Revision
    #: 1 for the page's first revision.
    number: int

    @property
    def author(self) -> str:
        return author_label(self.revision.author)


@dataclass(frozen=True)
class History(Paginated):
    entries: list[HistoryEntry]
    page: int
    per_page: int
    total: int


def revision_count(page: Page) -> int:
    return db.session.scalar(select(func.count(Revision.id)).filter_by(page_id=page.id)) or 0


def page_history(page: Page, screen: int = 1, per_page: int = PER_PAGE) -> History:
    """One screen of the page's revisions, newest first, with their authors."""
    total = revision_count(page)
    screen = min(max(1, screen), max(1, -(-total // per_page)))
    offset = (screen - 1) * per_page
    revisions = db.session.scalars(
        select(Revision)
        .filter_by(page_id=page.id)
        .options(joinedload(Revision.author))
        .order_by(Revision.id.desc())
        .limit(per_page)
        .offset(offset)
    ).all()
    entries = [HistoryEntry(r, total - offset - i) for i, r in enumerate(revisions)]
    return History(entries=entries, page=screen, per_page=per_page, total=total)


def revision_of(page: Page, revision_id: int) -> Revision | None:
    """The page's revision with that id; None if it is another page's, or none at all."""
    revision = db.session.get(Revision, revision_id)
    return revision if revision is not None and revision.page_id == page.id else None


def revision_number(revision: Revision) -> int:
    """The revision's place in its page's history, from 1."""
    return (
        db.session.scalar(
            select(func.count(Revision.id)).where(
                Revision.page_id == revision.page_id, Revision.id <= revision.id
            )
        )
        or 0
    )


def previous_revision(revision: Revision) -> Revision | None:
    """The page's revision just before `revision`, or None for its first."""
    return db.session.scalar(
        select(Revision)
        .where(Revision.page_id == revision.page_id, Revision.id < revision.id)
        .order_by(Revision.id.desc())
        .limit(1)
    )


def restore_revision(page: Page, revision: Revision, user: User, base_version: int) -> SaveOutcome:
    """Save `revision`'s text as a new revision by `user`, against the version of the page
    they saw (`base_version`): if someone saved since, that is a conflict, reported and not
    forced. The page keeps its status level; the history keeps every revision."""
    return save_page_text(
        page,
        user,
        revision.text,
        base_version,
        summary=f"Restored revision {revision_number(revision)}",
    )
