"""Saving page text (app/services/pages.py): revisions, and optimistic locking that loses
nothing when two people save the same page."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Page, PageStatus, Revision, User
from app.services.accounts import create_user
from app.services.pages import SaveOutcome, StatusError, parse_status, save_page_text
from tests.support import BOTH_DATABASES, add_ready_project


@pytest.fixture
def page(app) -> Page:
    """A page of a ready project, as a split leaves it: version 0, no text, no revision."""
    return add_ready_project("pages-test", 1, language="san").pages[0]


@pytest.fixture
def alice(app) -> User:
    return create_user("alice", "alice-password", "proofreader")


@pytest.fixture
def bob(app) -> User:
    return create_user("bob", "bob-password", "proofreader")


def revisions(page: Page) -> list[Revision]:
    query = select(Revision).filter_by(page_id=page.id).order_by(Revision.id)
    return list(db.session.scalars(query))


@BOTH_DATABASES
def test_save_bumps_version_and_writes_a_revision_by_the_author(page, alice):
    """A save against the current version stores the text, bumps the version and records who."""
    outcome = save_page_text(page, alice, "धर्मक्षेत्रे कुरुक्षेत्रे", 0, summary="first pass")
    assert outcome == SaveOutcome(saved=True, current_text="धर्मक्षेत्रे कुरुक्षेत्रे", current_version=1)
    db.session.expire_all()
    assert (page.version, page.text) == (1, "धर्मक्षेत्रे कुरुक्षेत्रे")
    assert page.proofread_at is not None
    [revision] = revisions(page)
    assert (revision.author_id, revision.text, revision.summary) == (
        alice.id,
        "धर्मक्षेत्रे कुरुक्षेत्रे",
        "first pass",
    )
    assert revision.job_id is None


def test_successive_saves_each_add_a_revision(page, alice, bob):
    """Saving against each new version in turn keeps every revision, in order."""
    assert save_page_text(page, alice, "one", 0).saved
    assert save_page_text(page, bob, "two", 1).saved
    assert [(r.author.username, r.text) for r in revisions(page)] == [
        ("alice", "one"),
        ("bob", "two"),
    ]
    assert (page.version, page.text) == (2, "two")


@BOTH_DATABASES
@pytest.mark.parametrize("stale_version", [0, 7], ids=["older", "unknown-newer"])
def test_save_against_another_version_conflicts_and_writes_nothing(page, alice, bob, stale_version):
    """A save naming a version that is not the page's gets the current text and author back."""
    assert save_page_text(page, alice, "alice's text", 0).saved
    before = (page.version, page.text, page.proofread_at)

    outcome = save_page_text(page, bob, "bob's text", stale_version)

    assert outcome == SaveOutcome(
        saved=False, current_text="alice's text", current_version=1, current_author="alice"
    )
    db.session.expire_all()
    assert (page.version, page.text, page.proofread_at) == before
    assert [r.author.username for r in revisions(page)] == ["alice"]


def test_conflict_on_a_page_without_revisions_names_no_author(page, alice):
    """A version bumped without a revision (never by this app) still conflicts, authorless."""
    page.version = 3
    db.session.commit()
    outcome = save_page_text(page, alice, "text", 0)
    assert (outcome.saved, outcome.current_version, outcome.current_author) == (False, 3, "")
    assert revisions(page) == []


@BOTH_DATABASES
def test_sequential_saves_on_the_same_base_version_save_once(page, alice, bob):
    """Two saves that both started from version 0: the first is saved, the second conflicts."""
    first = save_page_text(page, alice, "first", 0)
    second = save_page_text(page, bob, "second", 0)
    assert (first.saved, second.saved) == (True, False)
    assert second.current_text == "first"
    assert db.session.scalar(select(func.count(Revision.id))) == 1


@BOTH_DATABASES
def test_racing_saves_from_two_sessions_save_exactly_once(app, page, alice, bob):
    """Two requests saving version 0 at the same moment, each in its own session and
    connection: exactly one is saved and the other gets the winner's text."""
    page_id, authors = page.id, {"alice": alice.id, "bob": bob.id}
    db.session.remove()  # the threads' sessions must not wait on this one's transaction
    barrier = threading.Barrier(2, timeout=30)

    def save(name: str) -> SaveOutcome:
        with app.app_context():
            racing_page = db.session.get(Page, page_id)
            author = db.session.get(User, authors[name])
            barrier.wait()
            return save_page_text(racing_page, author, f"text by {name}", 0)

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = dict(zip(authors, pool.map(save, authors), strict=True))

    saved = [name for name, outcome in outcomes.items() if outcome.saved]
    assert len(saved) == 1
    [winner] = saved
    [loser] = set(authors) - {winner}
    assert outcomes[loser].current_text == f"text by {winner}"
    assert outcomes[loser].current_author == winner
    stored = db.session.get(Page, page_id)
    assert (stored.version, stored.text) == (1, f"text by {winner}")
    assert [r.author_id for r in revisions(stored)] == [authors[winner]]


def test_windows_line_endings_are_normalised(page, alice):
    """Browsers send \\r\\n from a textarea; the page and its revision store \\n only."""
    outcome = save_page_text(page, alice, "line one\r\nline two\r\n", 0)
    assert outcome.current_text == "line one\nline two\n"
    db.session.expire_all()
    assert page.text == "line one\nline two\n"
    assert revisions(page)[0].text == "line one\nline two\n"


def test_long_summary_is_cut_to_the_column_size(page, alice):
    """A summary longer than 256 characters is stored cut, not refused or failing."""
    assert save_page_text(page, alice, "text", 0, summary="x" * 300).saved
    assert revisions(page)[0].summary == "x" * 256


# -- status levels -------------------------------------------------------------------------


@BOTH_DATABASES
def test_every_save_records_the_status_on_the_page_and_its_revision(page, alice):
    assert save_page_text(page, alice, "text", 0, status=PageStatus.PROOFREAD_ONCE).saved
    db.session.expire_all()
    assert (page.status, page.proofread_once_by_id) == (PageStatus.PROOFREAD_ONCE, alice.id)
    assert [r.status for r in revisions(page)] == [PageStatus.PROOFREAD_ONCE]
    # No status given: the page keeps the one it has.
    assert save_page_text(page, alice, "text, again", 1).saved
    db.session.expire_all()
    assert [r.status for r in revisions(page)] == [PageStatus.PROOFREAD_ONCE] * 2


def test_proofread_twice_needs_a_second_reader(page, alice, bob):
    """Whoever set proofread-once may not confirm it; somebody else may."""
    assert save_page_text(page, alice, "read once", 0, status="proofread-once").saved
    refused = save_page_text(page, alice, "read twice?", 1, status="proofread-twice")
    assert not refused.saved and "someone else must confirm" in refused.refused
    db.session.expire_all()
    assert (page.version, page.text, page.status) == (1, "read once", "proofread-once")
    assert save_page_text(page, bob, "read twice", 1, status="proofread-twice").saved
    db.session.expire_all()
    assert (page.status, page.proofread_once_by_id) == ("proofread-twice", alice.id)
    # The first reader cannot keep it at proofread-twice with edits of their own...
    assert save_page_text(page, alice, "my change", 2).refused
    # ...but may send it back to needs-work, which forgets the first reading.
    assert save_page_text(page, alice, "my change", 2, status="needs-work").saved
    db.session.expire_all()
    assert (page.status, page.proofread_once_by_id) == ("needs-work", None)


def test_proofread_twice_is_refused_before_anyone_proofread_once(page, bob):
    outcome = save_page_text(page, bob, "straight to twice", 0, status="proofread-twice")
    assert outcome.refused and "not been proofread once" in outcome.refused
    assert revisions(page) == []


def test_an_unknown_status_is_a_clear_error():
    with pytest.raises(StatusError, match="'done' is not a page status; use one of needs-work"):
        parse_status("done")
    assert parse_status("") is None and parse_status("not-relevant") == PageStatus.NOT_RELEVANT
