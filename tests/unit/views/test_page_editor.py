"""The editor's own endpoints (app/views/pages.py): the scan's preview, the alignment of the
text's lines to the OCR lines, 'OCR this page again', the conflict's diff, and the
transliteration script of the project."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from app.extensions import db
from app.services import page_previews, page_reocr
from app.services.pages import save_page_text
from tests.support import csrf_token
from tests.unit.views import SLUG, assert_no_traceback, body, login_editor, page_row, post_form

EDITOR = f"/proofing/{SLUG}/1/"


def setup_of(response) -> dict:
    match = re.search(
        r'<script id="editor-setup" type="application/json">(.*?)</script>', body(response), re.S
    )
    assert match, "no editor setup on the page"
    return json.loads(match.group(1))


@pytest.fixture
def boxed(book):
    """Page 1 with two OCR lines of word boxes, and its text as OCR read it."""
    page = page_row(1)
    page.ocr_boxes = [
        ["First", 10, 10, 50, 20, 90.0, 0],
        ["line", 70, 10, 40, 20, 90.0, 0],
        ["Second", 10, 50, 60, 20, 90.0, 1],
        ["line", 80, 50, 40, 20, 90.0, 1],
    ]
    page.text = "First line\nSecond line"
    db.session.commit()
    return page


def test_the_editor_carries_the_ocr_lines_and_their_alignment(client, editor, boxed):
    login_editor(client)
    setup = setup_of(client.get(EDITOR))
    assert setup["ocrLines"] == [[10, 10, 100, 20], [10, 50, 110, 20]]
    assert setup["lineMap"] == [0, 1]
    assert setup["script"] is None  # an English book: transliteration starts off


def test_a_sanskrit_book_types_in_devanagari(client, editor, book):
    book.language = "san+eng"
    db.session.commit()
    login_editor(client)
    assert setup_of(client.get(EDITOR))["script"] == "devanagari"


def test_lines_are_aligned_again_for_the_text_posted(client, editor, boxed):
    """A line added above: it maps to nothing, the others keep their OCR lines."""
    login_editor(client)
    response = post_form(
        client,
        f"{EDITOR}lines",
        {"text": "A new heading\r\nFirst line\nSecond line!"},
        token_from=EDITOR,
    )
    assert response.status_code == 200
    assert response.get_json() == {"lines": [None, 0, 1]}
    too_long = post_form(client, f"{EDITOR}lines", {"text": "x" * 200_001}, token_from=EDITOR)
    assert too_long.status_code == 413


def test_the_preview_is_made_once_scaled_and_remade_for_a_newer_scan(app, client, editor, book):
    page = page_row(1)
    data_dir = Path(app.config["DATA_DIR"])
    Image.new("1", (3600, 4800), 1).save(data_dir / page.image_path, "PNG")
    login_editor(client)
    with client.get(f"{EDITOR}preview") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/jpeg"
        data = response.data
    preview = page_previews.preview_path(data_dir, page.image_path)
    with Image.open(preview) as image:
        assert image.size == (1600, 2133)
        assert image.mode == "L"
    assert preview.read_bytes() == data
    made = preview.stat().st_mtime_ns
    with client.get(f"{EDITOR}preview"):
        pass
    assert preview.stat().st_mtime_ns == made  # kept, not made again
    os.utime(data_dir / page.image_path, (preview.stat().st_mtime + 10,) * 2)
    with client.get(f"{EDITOR}preview"):
        pass
    assert preview.stat().st_mtime_ns != made


def test_a_conflict_shows_the_diff_from_their_text_to_mine(client, editor, proofreader, book):
    login_editor(client)
    token = csrf_token(client, EDITOR)
    save_page_text(page_row(1), proofreader, "their words here", 0)
    response = client.post(
        EDITOR, data={"text": "my words here", "version": "0", "csrf_token": token}
    )
    assert response.status_code == 409
    assert "<del>their</del><ins>my</ins> words here" in body(response)


def test_ocr_again_gives_a_diff_to_poll_and_discard(
    app, client, editor, book, enqueued, fake_tesseract
):
    """Asking answers 202 with the result's URL; once the worker has run, the result is the
    diff against the posted text; discarding forgets it."""
    login_editor(client)
    response = post_form(client, f"{EDITOR}reocr", token_from=EDITOR)
    assert response.status_code == 202
    answer = response.get_json()
    assert "No running worker" in answer["warning"]
    ((name, kwargs),) = enqueued
    assert kwargs["token"] == answer["token"]
    polled = post_form(client, answer["result_url"], {"text": "mine"}, token_from=EDITOR)
    assert polled.get_json()["state"] == "queued"

    page_reocr.run_reocr(kwargs["page_id"], kwargs["token"])  # the fake engine's text
    polled = post_form(client, answer["result_url"], {"text": "text of mine"}, token_from=EDITOR)
    result = polled.get_json()
    assert result["state"] == "done"
    assert result["text"] == "text of page 1"
    assert result["diff"] == "text of <del>mine</del><ins>page 1</ins>"
    assert page_row(1).text != "text of page 1"

    discarded = post_form(client, f"{answer['result_url']}/discard", token_from=EDITOR)
    assert discarded.status_code == 204
    polled = post_form(client, answer["result_url"], {"text": ""}, token_from=EDITOR)
    assert polled.get_json()["state"] == "expired"


def test_ocr_again_while_redis_is_down_says_so(client, editor, redis_down):
    login_editor(client)
    response = post_form(client, f"{EDITOR}reocr", token_from=EDITOR)
    assert response.status_code == 503
    assert "task queue (Redis) cannot be reached" in response.get_json()["error"]
    polled = post_form(client, f"{EDITOR}reocr/abc", {"text": "x"}, token_from=EDITOR)
    assert polled.status_code == 503
    assert polled.get_json()["state"] == "unavailable"
    assert_no_traceback(polled)


def test_the_preview_of_a_missing_scan_is_404(client, editor, book):
    page = page_row(1)
    page.image_path = "projects/view-book/pages/99999.png"
    db.session.commit()
    login_editor(client)
    response = client.get(f"{EDITOR}preview")
    assert response.status_code == 404
    assert_no_traceback(response)
