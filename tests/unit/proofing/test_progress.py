"""Proofreading progress on the project page: pages at each level with a bar, the page list
filtered by level, and the next page that needs work."""

from __future__ import annotations

import re

from flask import url_for
from sqlalchemy import event, select

from app.extensions import db
from app.models import Page, PageStatus
from app.services import progress
from app.services.pages import save_page_text
from tests.support import BOTH_DATABASES, add_ready_project
from tests.unit.proofing.conftest import set_pages


def page_of(project, number: int) -> Page:
    return db.session.scalar(select(Page).filter_by(project_id=project.id, number=number))


@BOTH_DATABASES
def test_counts_every_level_with_one_query(app, book):
    """One GROUP BY gives every level's count, zero for a level no page has; shares add up."""
    assert book.id  # loaded before counting: the project row is not what is measured
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        counts = progress.status_counts(book)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(statements) == 1 and "GROUP BY" in statements[0].upper()
    assert [(level.status, level.count) for level in counts.levels] == [
        (PageStatus.NEEDS_WORK, 2),
        (PageStatus.PROOFREAD_ONCE, 2),
        (PageStatus.PROOFREAD_TWICE, 1),
        (PageStatus.NOT_RELEVANT, 1),
    ]
    assert counts.total == 6
    assert abs(sum(level.share for level in counts.levels) - 100) < 1e-9


def test_an_empty_project_counts_nothing(app):
    project = add_ready_project("empty", 0)
    counts = progress.status_counts(project)
    assert counts.total == 0 and all(level.count == 0 for level in counts.levels)


@BOTH_DATABASES
def test_next_needing_work_goes_forward_and_wraps_round(app, book):
    """Pages 5 and 6 need work: after 2 comes 5, after 5 comes 6, after 6 it wraps to 5."""
    assert progress.next_needing_work(book) == 5
    assert progress.next_needing_work(book, after=5) == 6
    assert progress.next_needing_work(book, after=6) == 5
    set_pages(book, {}, {5: PageStatus.PROOFREAD_ONCE, 6: PageStatus.NOT_RELEVANT})
    assert progress.next_needing_work(book) is None


@BOTH_DATABASES
def test_page_list_filters_by_level_and_pages_through(app, book):
    once = progress.page_list(book, PageStatus.PROOFREAD_ONCE)
    assert [row.number for row in once.rows] == [1, 4] and once.total == 2
    screen = progress.page_list(book, page=2, per_page=4)
    assert [row.number for row in screen.rows] == [5, 6]
    assert (screen.pages, screen.has_prev, screen.has_next) == (2, True, False)
    # Past the end: the last screen, not an empty one.
    assert progress.page_list(book, page=99, per_page=4).page == 2
    assert progress.page_list(book).rows[0].excerpt == "धर्मक्षेत्रे कुरुक्षेत्रे\nसमवेता युयुत्सवः"


def test_project_page_shows_the_bar_counts_and_filtered_list(app, book, people, sign_in):
    client = sign_in("reader")
    html = client.get("/proofing/book/").get_data(as_text=True)
    assert 'class="levels"' in html
    counts = dict(re.findall(r'data-count="([a-z-]+)">(\d+)<', html))
    assert counts == {
        "needs-work": "2",
        "proofread-once": "2",
        "proofread-twice": "1",
        "not-relevant": "1",
    }
    # The list builds its links from the project's URL: they must be the routes' own.
    with app.test_request_context():
        editor_url = url_for("pages.edit", slug="book", number=6)
        history_url = url_for("history.page_history", slug="book", number=6)
    assert f'<a href="{editor_url}">Page 6</a>' in html and history_url not in html
    save_page_text(page_of(book, 6), people["reader"], "saved", 0)
    html = client.get("/proofing/book/").get_data(as_text=True)
    assert f'href="{history_url}"' in html
    filtered = client.get("/proofing/book/?status=proofread-once").get_data(as_text=True)
    listed = re.findall(r"Page (\d+)</a></td>", filtered)
    assert listed == ["1", "4"]
    bad = client.get("/proofing/book/?status=finished")
    assert bad.status_code == 200 and "is not a page status" in bad.get_data(as_text=True)


def test_next_needs_work_link_opens_the_editor_there(app, book, sign_in):
    client = sign_in("reader")
    response = client.get("/proofing/book/next-needs-work?after=5")
    assert response.status_code == 302 and response.location.endswith("/proofing/book/6/")
    set_pages(book, {}, {5: PageStatus.PROOFREAD_ONCE, 6: PageStatus.PROOFREAD_ONCE})
    response = client.get("/proofing/book/next-needs-work")
    assert response.location.endswith("/proofing/book/")


def test_a_private_projects_progress_is_a_404_to_others(app, private_book, sign_in):
    assert sign_in("reader").get("/proofing/secret/next-needs-work").status_code == 404
    assert sign_in("second").get("/proofing/secret/next-needs-work").status_code == 302


def test_a_long_book_lists_one_screen(app, sign_in, people):
    project = add_ready_project("long", 250, images=False)
    html = sign_in("reader").get(f"/proofing/{project.slug}/").get_data(as_text=True)
    assert len(re.findall(r"Page \d+</a></td>", html)) == progress.PER_PAGE
    assert "Pages 1–100 of 250" in html


def test_the_project_page_asks_the_database_as_often_for_300_pages_as_for_3(app, sign_in):
    """No query per page, and no page's whole text read: the page's cost does not grow with
    the book (timing is measured in tests/bench/profile_views.py, not asserted)."""
    client = sign_in("reader")
    whole_texts = []

    def statements_for(slug: str, pages: int) -> int:
        add_ready_project(slug, pages, images=False)
        client.get(f"/proofing/{slug}/")  # warm: the first request loads the user and more
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get(f"/proofing/{slug}/").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        whole_texts.extend(s for s in seen if "pages.text" in s.replace("substr(pages.text", ""))
        return len(seen)

    assert statements_for("short", 3) == statements_for("long-one", 300)
    assert whole_texts == []
