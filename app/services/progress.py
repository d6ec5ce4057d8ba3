"""How far the proofreading of a project has got: pages at each status level, the list of
pages filtered by level, and the next page that needs work.

Everything here is one or two SQL queries whatever the book's length: the project page of a
500-page book counts with one GROUP BY and lists one screenful of pages, never loading every
page (and its text) into Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.extensions import db
from app.models import Page, PageStatus, Project
from app.services.pagination import Paginated

#: Pages per screen of the project's page list.
PER_PAGE = 100
#: Characters of each page's text shown in the list.
EXCERPT = 80


@dataclass(frozen=True)
class LevelCount:
    status: PageStatus
    count: int
    #: Share of the book, 0-100, for the width of its part of the bar (float: the parts add
    #: up to the whole bar, where whole percents would leave a gap or overflow).
    share: float

    @property
    def percent(self) -> int:
        """Whole percent, for people (a level with any page shows at least 1 %)."""
        return max(1, round(self.share)) if self.count else 0


@dataclass(frozen=True)
class StatusCounts:
    total: int
    levels: list[LevelCount]

    def count(self, status: PageStatus | str) -> int:
        return next((level.count for level in self.levels if level.status == status), 0)


def status_counts(project: Project) -> StatusCounts:
    """Pages at each level, in PageStatus order, with one GROUP BY query."""
    rows = db.session.execute(
        select(Page.status, func.count(Page.id))
        .where(Page.project_id == project.id)
        .group_by(Page.status)
    ).all()
    by_status = {status: count for status, count in rows}
    total = sum(by_status.values())
    levels = [
        LevelCount(status, count, count * 100 / total if total else 0.0)
        for status in PageStatus
        for count in [by_status.get(status.value, 0)]
    ]
    return StatusCounts(total=total, levels=levels)


def next_needing_work(project: Project, after: int = 0) -> int | None:
    """The number of the first page after `after` that needs work, wrapping round to the
    start of the book; None when no page does."""
    query = (
        select(Page.number)
        .where(Page.project_id == project.id, Page.status == PageStatus.NEEDS_WORK)
        .order_by(Page.number)
        .limit(1)
    )
    found = db.session.scalar(query.where(Page.number > after))
    if found is None and after > 0:
        found = db.session.scalar(query)
    return found


@dataclass(frozen=True)
class PageRow:
    """What the project's page list shows of a page: no full text."""

    number: int
    status: str
    width: int
    height: int
    excerpt: str
    version: int
    proofread_at: object
    ocr_state: str | None

    @property
    def status_label(self) -> str:
        return PageStatus(self.status).label

    @property
    def text_source(self) -> str:
        # The same rule as Page.text_source, on the columns read.
        return Page.text_source.fget(self)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PageList(Paginated):
    rows: list[PageRow]
    page: int
    per_page: int
    total: int
    #: The status filtered by, or None for every page.
    status: PageStatus | None


def page_list(
    project: Project,
    status: PageStatus | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
    total: int | None = None,
) -> PageList:
    """One screen of the project's pages in book order, only those at `status` if given.
    `total`: the number of pages matching, when the caller has counted them already."""
    where = [Page.project_id == project.id]
    if status is not None:
        where.append(Page.status == status.value)
    if total is None:
        total = db.session.scalar(select(func.count(Page.id)).where(*where)) or 0
    last = max(1, -(-total // per_page))
    page = min(max(1, page), last)
    rows = db.session.execute(
        select(
            Page.number,
            Page.status,
            Page.width,
            Page.height,
            func.substr(Page.text, 1, EXCERPT),
            Page.version,
            Page.proofread_at,
            Page.ocr_state,
        )
        .where(*where)
        .order_by(Page.number)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return PageList(
        rows=[PageRow(*row) for row in rows],
        page=page,
        per_page=per_page,
        total=total,
        status=status,
    )
