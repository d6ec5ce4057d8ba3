"""`GET /api/projects/<slug>/pages/<n>`: a page for scripts, through a session or a token,
with the visibility rules of pages."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Page
from app.services.api_tokens import issue_token
from app.services.pages import save_page_text
from tests.support import BOTH_DATABASES

BOXES = [
    ["धर्मक्षेत्रे", 10, 20, 100, 30, 91.0, 0],
    ["कुरुक्षेत्रे", 120, 20, 90, 30, 88.0, 0],
    ["समवेता", 10, 60, 80, 30, 90.0, 1],
]


def token_of(user) -> dict:
    return {"Authorization": f"Bearer {issue_token(user)}"}


@BOTH_DATABASES
def test_a_token_gets_the_page_with_its_ocr_lines_and_revisions(app, book, people, sign_in):
    page = db.session.scalar(select(Page).filter_by(project_id=book.id, number=1))
    page.ocr_boxes = BOXES
    db.session.commit()
    assert save_page_text(page, people["reader"], "धर्मक्षेत्रे कुरुक्षेत्रे\nसमवेताः", 0).saved
    response = sign_in().get("/api/projects/book/pages/1", headers=token_of(people["second"]))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert (body["number"], body["status"], body["version"], body["revisions"]) == (
        1,
        "proofread-once",
        1,
        1,
    )
    assert body["text"] == "धर्मक्षेत्रे कुरुक्षेत्रे\nसमवेताः"
    assert body["ocr_lines"] == [
        {"text": "धर्मक्षेत्रे कुरुक्षेत्रे", "box": [10, 20, 200, 30]},
        {"text": "समवेता", "box": [10, 60, 80, 30]},
    ]
    assert [entry["line"] for entry in body["line_map"]] == [0, 1]


def test_a_session_works_too_and_a_page_without_ocr_has_no_lines(app, book, sign_in):
    body = sign_in("reader").get("/api/projects/book/pages/5").get_json()
    assert (body["number"], body["ocr_lines"], body["line_map"], body["revisions"]) == (
        5,
        [],
        [],
        0,
    )


def test_no_session_or_token_is_a_401(app, book, sign_in):
    response = sign_in().get("/api/projects/book/pages/1")
    assert response.status_code == 401 and response.get_json()["error"] == "Unauthorized"
    forged = {"Authorization": "Bearer ocrp_forged"}
    assert sign_in().get("/api/projects/book/pages/1", headers=forged).status_code == 401


def test_a_private_page_is_a_404_to_outsiders_as_a_missing_one(app, private_book, people, sign_in):
    outsider = sign_in().get("/api/projects/secret/pages/1", headers=token_of(people["reader"]))
    missing = sign_in().get("/api/projects/nothing/pages/1", headers=token_of(people["reader"]))
    assert outsider.status_code == missing.status_code == 404
    assert outsider.get_json()["error"] == "Not Found"
    member = sign_in().get("/api/projects/secret/pages/1", headers=token_of(people["second"]))
    assert member.status_code == 200 and member.get_json()["text"] == "hidden text"
    admin = sign_in().get("/api/projects/secret/pages/2", headers=token_of(people["admin"]))
    assert admin.status_code == 200
    assert (
        sign_in().get("/api/projects/secret/pages/3", headers=token_of(people["admin"])).status_code
        == 404
    )
