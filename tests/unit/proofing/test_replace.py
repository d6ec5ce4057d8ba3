"""Search and replace: the preview (every page changed, with its diff and count), applying it
in the request for a few pages and as a REPLACE job for more, and never overwriting a page
saved since the preview."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    ItemState,
    Job,
    JobKind,
    JobPage,
    JobState,
    Notification,
    Page,
    Revision,
)
from app.services import jobs, replace
from app.services.pages import save_page_text
from app.services.replace import ReplaceError, Replacement
from tests.support import BOTH_DATABASES, add_ready_project, csrf_token
from tests.unit.proofing.conftest import set_pages


def page_of(project, number: int) -> Page:
    return db.session.scalar(select(Page).filter_by(project_id=project.id, number=number))


def revisions_of(page: Page) -> list[Revision]:
    return list(db.session.scalars(select(Revision).filter_by(page_id=page.id)))


# -- the replacement itself ----------------------------------------------------------------


def test_a_literal_find_is_exact_and_case_sensitive():
    assert Replacement.parse("a.b", "X").apply("a.b axb A.B") == ("X axb A.B", 1)


def test_a_regex_replaces_with_groups():
    r = Replacement.parse(r"(\w+)@(\w+)", r"\2 at \1", regex=True)
    assert r.apply("me@home, you@work") == ("home at me, work at you", 2)


@pytest.mark.parametrize(
    "find, replacement, regex, message",
    [
        ("", "x", False, "Type the text to find"),
        ("(", "x", True, "not a valid regular expression"),
        ("a", r"\3", True, "not a valid regular expression"),
        ("x*", "y", True, "matches empty text"),
        ("(?P<a>x)", r"\g<b>", True, "names a group the pattern lacks"),
    ],
)
def test_a_bad_replacement_says_why(find, replacement, regex, message):
    with pytest.raises(ReplaceError, match=message):
        Replacement.parse(find, replacement, regex)


# -- preview -------------------------------------------------------------------------------


@BOTH_DATABASES
def test_preview_lists_each_changed_page_with_its_diff_and_count(app, book):
    shown = replace.preview_replace(book, Replacement.parse("कुरुक्षेत्रे", "कुरुक्षेत्रे॥"))
    assert [(e.number, e.count) for e in shown.entries] == [(1, 1), (4, 2)]
    assert shown.matches == 3 and shown.pages == 2
    assert "<del>कुरुक्षेत्रे</del><ins>कुरुक्षेत्रे॥</ins>" in shown.entries[0].diff
    assert shown.versions == {page_of(book, 1).id: 0, page_of(book, 4).id: 0}
    # A preview changes nothing.
    assert page_of(book, 1).text.startswith("धर्मक्षेत्रे कुरुक्षेत्रे\n")


@BOTH_DATABASES
def test_a_literal_find_with_like_wildcards_is_literal(app, book):
    shown = replace.preview_replace(book, Replacement.parse("100%", "all"))
    assert [e.number for e in shown.entries] == [6]
    # LIKE on SQLite ignores ASCII case, but the replacement does not.
    assert replace.preview_replace(book, Replacement.parse("the quick", "a")).pages == 0


# -- applying in the request ---------------------------------------------------------------


@BOTH_DATABASES
def test_apply_saves_each_page_as_a_revision_with_a_summary(app, book, people):
    replacement = Replacement.parse("कुरुक्षेत्रे", "कुरुक्षेत्रम्")
    shown = replace.preview_replace(book, replacement)
    outcome = replace.apply_replace(book, replacement, shown.versions, people["editor"])
    assert outcome.job_id is None and outcome.replaced == [1, 4] and outcome.skipped == []
    page = page_of(book, 4)
    assert page.text == "कुरुक्षेत्रम् again and कुरुक्षेत्रम्" and page.version == 1
    [revision] = revisions_of(page)
    assert revision.author_id == people["editor"].id and revision.job_id is None
    assert revision.summary == "Replaced “कुरुक्षेत्रे” with “कुरुक्षेत्रम्” (2×)"
    assert page.status == "proofread-once"  # the level stays


@BOTH_DATABASES
def test_a_page_saved_since_the_preview_is_skipped_and_reported(app, book, people):
    replacement = Replacement.parse("कुरुक्षेत्रे", "X")
    shown = replace.preview_replace(book, replacement)
    page = page_of(book, 4)
    assert save_page_text(page, people["reader"], "कुरुक्षेत्रे typed meanwhile", 0).saved
    outcome = replace.apply_replace(book, replacement, shown.versions, people["editor"])
    assert outcome.replaced == [1]
    assert outcome.skipped == [(4, replace.CHANGED_SINCE)]
    db.session.expire_all()
    assert page.text == "कुरुक्षेत्रे typed meanwhile" and len(revisions_of(page)) == 1


def test_the_status_rule_still_holds_a_replace_skips_a_page_it_refuses(app, book, people):
    """A replace keeps each page's level, so it is refused (and reported) where keeping
    `proofread-twice` would be: here nobody is on record as having read the page once."""
    replacement = Replacement.parse("lazy", "sleepy")
    outcome = replace.apply_replace(
        book, replacement, replace.preview_replace(book, replacement).versions, people["editor"]
    )
    assert outcome.replaced == [] and "proofread twice" in outcome.skipped[0][1]
    assert page_of(book, 2).text.endswith("lazy dog")


def test_the_versions_sent_back_must_be_the_projects_pages(app, book, private_book):
    other = page_of(private_book, 1)
    with pytest.raises(ReplaceError, match="not in this project"):
        replace.parse_versions(book, {str(other.id): 0})
    with pytest.raises(ReplaceError, match="damaged"):
        replace.parse_versions(book, {"x": "y"})
    with pytest.raises(ReplaceError):
        replace.parse_versions(book, None)


def test_preview_and_apply_through_the_views(app, book, people, sign_in):
    client = sign_in("editor")
    token = csrf_token(client, "/proofing/book/search")
    preview = client.post(
        "/proofing/book/replace/preview",
        data={"find": "sure_thing", "replace": "sure thing", "csrf_token": token},
    )
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "<del>sure_thing</del><ins>sure thing</ins>" in html and "1</strong> match" in html
    versions = re.search(r'name="versions" value="([^"]+)"', html).group(1)
    versions = versions.replace("&#34;", '"')
    applied = client.post(
        "/proofing/book/replace",
        data={
            "find": "sure_thing",
            "replace": "sure thing",
            "versions": versions,
            "csrf_token": token,
        },
    )
    html = applied.get_data(as_text=True)
    assert applied.status_code == 200 and 'href="/proofing/book/6/history"' in html
    assert page_of(book, 6).text == "100% sure thing"


def test_a_bad_pattern_is_a_clear_400_and_keeps_what_was_typed(app, book, sign_in):
    client = sign_in("editor")
    token = csrf_token(client, "/proofing/book/search")
    response = client.post(
        "/proofing/book/replace/preview",
        data={"find": "(unclosed", "replace": "x", "regex": "on", "csrf_token": token},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "not a valid regular expression" in html
    assert 'value="(unclosed"' in html


def test_only_the_projects_editors_replace(app, book, private_book, people, sign_in):
    reader = sign_in("reader")
    token = csrf_token(reader, "/proofing/book/search")
    data = {"find": "lazy", "replace": "x", "csrf_token": token}
    assert reader.post("/proofing/book/replace/preview", data=data).status_code == 403
    versions = json.dumps({str(page_of(book, 2).id): 0})
    assert (
        reader.post("/proofing/book/replace", data={**data, "versions": versions}).status_code
        == 403
    )
    # A public project's editor is not an editor of a private one they are not a member of.
    editor = sign_in("editor")
    token = csrf_token(editor, "/proofing/book/search")
    response = editor.post(
        "/proofing/secret/replace/preview", data={**data, "find": "hidden", "csrf_token": token}
    )
    assert response.status_code == 404
    assert page_of(book, 2).text.endswith("lazy dog")


# -- as a job ------------------------------------------------------------------------------


@pytest.fixture
def long_book(app):
    project = add_ready_project("long-book", replace.SYNC_LIMIT + 5)
    set_pages(project, {n: f"Page {n} of the olde booke" for n in range(1, replace.SYNC_LIMIT + 6)})
    return project


def run_job(job_id: str) -> list:
    positions = db.session.scalars(
        select(JobPage.position).filter_by(job_id=job_id).order_by(JobPage.position)
    ).all()
    return [replace.run_replace_page(job_id, position, worker="test:1") for position in positions]


@BOTH_DATABASES
def test_more_pages_than_the_limit_run_as_a_replace_job(app, long_book, people, enqueued):
    replacement = Replacement.parse("olde booke", "old book")
    shown = replace.preview_replace(long_book, replacement)
    assert shown.runs_as_job
    outcome = replace.apply_replace(long_book, replacement, shown.versions, people["editor"])
    assert outcome.job_id and outcome.started
    job = db.session.get(Job, outcome.job_id)
    assert (job.kind, job.selection, job.total) == (JobKind.REPLACE, "replace", 25)
    assert job.options["find"] == "olde booke" and len(job.options["versions"]) == 25
    assert {name for name, _ in enqueued} == {"worker.tasks.replace_page"}
    # One page is saved by someone after the preview: the job leaves it.
    page3 = page_of(long_book, 3)
    assert save_page_text(page3, people["reader"], "Page 3 of the olde booke, read", 0).saved

    outcomes = run_job(job.id)

    assert [o.outcome for o in outcomes].count(ItemState.DONE) == 24
    assert outcomes[2].outcome == ItemState.SKIPPED
    db.session.expire_all()
    job = db.session.get(Job, outcome.job_id)
    assert job.state == JobState.SUCCEEDED  # a page left as it was is no failure
    assert (job.done, job.skipped, job.failed) == (24, 1, 0)
    assert jobs.tracker(JobKind.REPLACE).current(long_book.slug) is None
    written = db.session.scalars(select(Revision).filter_by(job_id=job.id)).all()
    assert len(written) == 24 and len({r.page_id for r in written}) == 24
    assert all(r.author_id == people["editor"].id for r in written)
    assert page3.text == "Page 3 of the olde booke, read"
    # Who started it hears of its end, with a link to its summary.
    [told] = db.session.scalars(select(Notification).filter_by(job_id=job.id)).all()
    assert told.user_id == people["editor"].id
    assert told.link == "/proofing/long-book/replace/progress"


def test_a_redelivered_page_task_writes_nothing_twice(app, long_book, people, enqueued):
    replacement = Replacement.parse("olde", "old")
    shown = replace.preview_replace(long_book, replacement)
    outcome = replace.apply_replace(long_book, replacement, shown.versions, people["editor"])
    first = replace.run_replace_page(outcome.job_id, 0, worker="test:1")
    again = replace.run_replace_page(outcome.job_id, 0, worker="test:2")
    assert first.outcome == ItemState.DONE and again.outcome == ItemState.DONE
    count = db.session.scalar(select(func.count(Revision.id)).filter_by(job_id=outcome.job_id))
    assert count == 1 and page_of(long_book, 1).version == 1


def test_a_second_apply_while_a_job_runs_shows_that_job(app, long_book, people, enqueued):
    replacement = Replacement.parse("olde", "old")
    shown = replace.preview_replace(long_book, replacement)
    first = replace.apply_replace(long_book, replacement, shown.versions, people["editor"])
    second = replace.apply_replace(long_book, replacement, shown.versions, people["admin"])
    assert (second.job_id, second.started) == (first.job_id, False)


def test_the_progress_page_and_status_follow_the_job(app, long_book, people, enqueued, sign_in):
    client = sign_in("editor")
    token = csrf_token(client, "/proofing/long-book/search")
    shown = replace.preview_replace(long_book, Replacement.parse("olde", "old"))
    versions = json.dumps({str(k): v for k, v in shown.versions.items()})
    response = client.post(
        "/proofing/long-book/replace",
        data={"find": "olde", "replace": "old", "versions": versions, "csrf_token": token},
    )
    assert response.status_code == 303
    assert response.location.endswith("/proofing/long-book/replace/progress")
    html = client.get("/proofing/long-book/replace/progress").get_data(as_text=True)
    assert 'id="progress-live"' in html and "js/job-progress.js" in html
    status = client.get("/proofing/long-book/replace/status").get_json()
    assert (status["kind"], status["state"], status["total"]) == ("replace", "queued", 25)
    run_job(status["task_id"])
    status = client.get("/proofing/long-book/replace/status").get_json()
    assert (status["state"], status["done"]) == ("succeeded", 25)
    html = client.get("/proofing/long-book/replace/progress").get_data(as_text=True)
    assert 'id="summary"' in html and "25</strong> of 25 pages changed" in html


def test_jobs_lists_a_replace_job_linked_to_its_progress(app, long_book, people, sign_in, enqueued):
    replacement = Replacement.parse("olde", "old")
    shown = replace.preview_replace(long_book, replacement)
    replace.apply_replace(long_book, replacement, shown.versions, people["editor"])
    html = sign_in("admin").get("/jobs").get_data(as_text=True)
    assert 'href="/proofing/long-book/replace/progress"' in html
