"""A page's history: revisions newest first with the OCR bot named as such, each revision's
word diff against the one before, and restoring an old text as a new revision."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from app.models import Page, Revision
from app.services import history
from app.services.accounts import bot_user
from app.services.pages import save_page_text
from tests.support import BOTH_DATABASES, csrf_token


def page_of(project, number: int) -> Page:
    return db.session.scalar(select(Page).filter_by(project_id=project.id, number=number))


def ocr_then_two_saves(project, people) -> Page:
    """Page 5: the bot's OCR, then the reader's correction, then the editor's."""
    page = page_of(project, 5)
    bot = bot_user()
    db.session.commit()
    assert save_page_text(page, bot, "धर्मक्षेत्रे कुरुक्षेत्रे समवेता", 0, "OCR (fake, san)").saved
    assert save_page_text(page, people["reader"], "धर्मक्षेत्रे कुरुक्षेत्रे समवेताः", 1, "fix").saved
    assert save_page_text(page, people["editor"], "धर्मक्षेत्रे समवेताः युयुत्सवः", 2, "edit").saved
    return page


@BOTH_DATABASES
def test_history_lists_revisions_newest_first_with_the_bot_named(app, book, people):
    page = ocr_then_two_saves(book, people)
    found = history.page_history(page)
    assert [(e.number, e.author, e.revision.summary) for e in found.entries] == [
        (3, "editor", "edit"),
        (2, "reader", "fix"),
        (1, history.BOT_LABEL, "OCR (fake, san)"),
    ]
    assert found.total == 3


def test_history_is_paginated(app, book, people):
    page = page_of(book, 6)
    for version in range(7):
        assert save_page_text(page, people["reader"], f"text {version}", version).saved
    first = history.page_history(page, 1, per_page=3)
    last = history.page_history(page, 3, per_page=3)
    assert [e.number for e in first.entries] == [7, 6, 5] and first.has_next
    assert [e.number for e in last.entries] == [1] and not last.has_next and last.pages == 3


def test_history_page_shows_author_time_summary_and_status(app, book, people, sign_in):
    page = ocr_then_two_saves(book, people)
    html = sign_in("second").get("/proofing/book/5/history").get_data(as_text=True)
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[1], re.S)
    assert len(rows) == 3
    assert "editor" in rows[0] and "OCR bot" in rows[2] and "ocr-bot" not in html
    assert "Needs work" in rows[0]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", rows[0])
    newest = db.session.scalars(
        select(Revision).filter_by(page_id=page.id).order_by(Revision.id.desc())
    ).first()
    assert f"/proofing/book/5/revisions/{newest.id}" in rows[0]


def test_a_revision_shows_its_word_diff_against_the_one_before(app, book, people, sign_in):
    page = ocr_then_two_saves(book, people)
    second = history.page_history(page).entries[1].revision
    html = sign_in("reader").get(f"/proofing/book/5/revisions/{second.id}").get_data(as_text=True)
    diff = re.search(r'<div class="diff" id="diff">(.*?)</div>', html, re.S).group(1)
    # The whole word is replaced, its visarga with it: no cluster is cut.
    assert diff == "धर्मक्षेत्रे कुरुक्षेत्रे <del>समवेता</del><ins>समवेताः</ins>"
    first = history.page_history(page).entries[2].revision
    html = sign_in("reader").get(f"/proofing/book/5/revisions/{first.id}").get_data(as_text=True)
    assert "<ins>धर्मक्षेत्रे कुरुक्षेत्रे समवेता</ins>" in html and "The first revision" in html


def test_a_revision_of_another_page_is_a_404(app, book, people, sign_in):
    ocr_then_two_saves(book, people)
    other = page_of(book, 6)
    assert save_page_text(other, people["reader"], "x", 0).saved
    revision = db.session.scalar(select(Revision).filter_by(page_id=other.id))
    client = sign_in("reader")
    assert client.get(f"/proofing/book/5/revisions/{revision.id}").status_code == 404
    assert client.get("/proofing/book/5/revisions/999999").status_code == 404


def test_restore_adds_a_revision_and_rewrites_nothing(app, book, people, sign_in):
    page = ocr_then_two_saves(book, people)
    before = [(r.id, r.text, r.summary) for r in page.revisions]
    oldest = page.revisions[0]
    client = sign_in("second")
    url = f"/proofing/book/5/revisions/{oldest.id}"
    response = client.post(
        url + "/restore", data={"version": "3", "csrf_token": csrf_token(client, url)}
    )
    assert response.status_code == 303 and response.location.endswith("/proofing/book/5/history")
    db.session.expire_all()
    assert page.text == oldest.text and page.version == 4
    after = [(r.id, r.text, r.summary) for r in page.revisions]
    assert after[:3] == before
    assert after[3][1:] == (oldest.text, "Restored revision 1")
    assert page.revisions[3].author.username == "second"


def test_restore_over_a_newer_save_is_a_conflict_and_changes_nothing(app, book, people, sign_in):
    page = ocr_then_two_saves(book, people)
    oldest = page.revisions[0]
    client = sign_in("second")
    url = f"/proofing/book/5/revisions/{oldest.id}"
    token = csrf_token(client, url)  # the form as opened: version 3
    assert save_page_text(page, people["reader"], "saved meanwhile", 3, "meanwhile").saved
    response = client.post(url + "/restore", data={"version": "3", "csrf_token": token})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "was saved by reader since you opened" in html
    assert 'name="version" value="4"' in html  # restoring again is against the page as it is
    db.session.expire_all()
    assert page.text == "saved meanwhile" and len(page.revisions) == 4


def test_restore_without_a_version_is_a_400(app, book, people, sign_in):
    page = ocr_then_two_saves(book, people)
    client = sign_in("reader")
    url = f"/proofing/book/5/revisions/{page.revisions[0].id}"
    response = client.post(url + "/restore", data={"csrf_token": csrf_token(client, url)})
    assert response.status_code == 400


def test_history_of_a_private_page_is_a_404_to_others(app, private_book, people, sign_in):
    page = page_of(private_book, 1)
    assert save_page_text(page, people["second"], "member's text", 0).saved
    revision = page.revisions[0]
    outsider = sign_in("reader")
    assert outsider.get("/proofing/secret/1/history").status_code == 404
    assert outsider.get(f"/proofing/secret/1/revisions/{revision.id}").status_code == 404
    member = sign_in("second")
    assert member.get("/proofing/secret/1/history").status_code == 200
    url = f"/proofing/secret/1/revisions/{revision.id}/restore"
    token = csrf_token(member, "/proofing/secret/1/history")
    assert outsider.post(url, data={"version": "1", "csrf_token": token}).status_code in (400, 404)


def test_a_restore_the_status_rule_refuses_says_why_and_changes_nothing(app, book, people, sign_in):
    """Restoring keeps the page's level; on a proofread-twice page the person who read it once
    may not keep it there, so their restore is refused with the rule's reason."""
    page = page_of(book, 6)
    assert save_page_text(page, people["reader"], "first", 0, status="proofread-once").saved
    assert save_page_text(page, people["second"], "second", 1, status="proofread-twice").saved
    client = sign_in("reader")
    url = f"/proofing/book/6/revisions/{page.revisions[0].id}"
    response = client.post(
        url + "/restore", data={"version": "2", "csrf_token": csrf_token(client, url)}
    )
    assert response.status_code == 422 and "someone else must confirm" in response.get_data(
        as_text=True
    )
    db.session.expire_all()
    assert page.text == "second" and len(page.revisions) == 2
