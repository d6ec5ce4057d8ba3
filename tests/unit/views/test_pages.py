"""The page editor and page images (app/views/pages.py): showing, saving, conflicts, and
proofreading while Redis is down."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from app.extensions import db
from app.services.pages import save_page_text
from tests.support import csrf_token
from tests.unit.views import (
    BOOK_PAGES,
    SLUG,
    assert_no_traceback,
    body,
    login_editor,
    login_proofreader,
    page_row,
    post_form,
)


def test_proofreader_can_edit_pages(client, proofreader, book):
    """Proofreading is what proofreaders do: their save is stored."""
    login_proofreader(client)
    url = f"/proofing/{SLUG}/1/"
    response = post_form(client, url, {"text": "proofread", "version": "0"}, token_from=url)
    assert response.status_code == 302
    assert page_row(1).text == "proofread"


def textarea_text(response) -> str:
    """The page text box's content as a browser reads it (one leading newline is dropped)."""
    match = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', body(response), re.S)
    assert match, "no text box on the page"
    return html.unescape(match.group(1).removeprefix("\n"))


def test_page_editor_shows_the_image_and_the_text(client, editor, book):
    """GET shows the page image (its preview first, the full scan for deep zoom), a textarea
    with the text, and the version being edited."""
    save_page_text(page_row(1), editor, "existing text", 0)
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/1/")
    assert response.status_code == 200
    text = body(response)
    assert f'"image": "/proofing/{SLUG}/1/image"' in text
    assert f'"url": "/proofing/{SLUG}/1/preview"' in text
    assert '<textarea name="text"' in text
    assert textarea_text(response) == "existing text"
    assert 'name="version" value="1"' in text


def test_saving_a_page_stores_it_and_redirects(client, editor, book):
    """POST saves the text as a revision and redirects back to the page with a notice."""
    login_editor(client)
    url = f"/proofing/{SLUG}/1/"
    response = post_form(
        client,
        url,
        {"text": "line one\r\nline two", "version": "0", "summary": "typed"},
        token_from=url,
    )
    assert (response.status_code, response.headers["Location"]) == (302, url)
    page = page_row(1)
    assert (page.version, page.text) == (1, "line one\nline two")
    assert [(r.author.username, r.summary) for r in page.revisions] == [("edna", "typed")]
    assert "Page 1 saved." in body(client.get(url))


def test_save_and_next_goes_to_the_next_page(client, editor, book):
    """'Save and go to next page' saves and redirects to page 2; on the last page it stays."""
    login_editor(client)
    first, last = f"/proofing/{SLUG}/1/", f"/proofing/{SLUG}/{BOOK_PAGES}/"
    response = post_form(
        client, first, {"text": "a", "version": "0", "go": "next"}, token_from=first
    )
    assert response.headers["Location"] == f"/proofing/{SLUG}/2/"
    response = post_form(client, last, {"text": "b", "version": "0", "go": "next"}, token_from=last)
    assert response.headers["Location"] == last


def test_stale_save_gives_409_with_both_texts(client, editor, proofreader, book):
    """Saving over a version someone else replaced answers 409, shows their text and author,
    and keeps the user's own text in the box."""
    login_proofreader(client)
    url = f"/proofing/{SLUG}/1/"
    token = csrf_token(client, url)  # the page was opened at version 0...
    save_page_text(page_row(1), editor, "the editor's text", 0)  # ...then edna saved
    response = client.post(
        url, data={"text": "the proofreader's text", "version": "0", "csrf_token": token}
    )
    assert response.status_code == 409
    text = body(response)
    assert "the editor&#39;s text" in text
    assert textarea_text(response) == "the proofreader's text"
    assert "<strong>edna</strong> saved" in text
    assert 'name="version" value="1"' in text  # saving again merges on top of edna's
    assert page_row(1).text == "the editor's text"


def test_save_without_a_version_is_refused(client, editor, book):
    """A form that does not say which version it edits is refused with 400, not a crash."""
    login_editor(client)
    url = f"/proofing/{SLUG}/1/"
    response = post_form(client, url, {"text": "x", "version": "abc"}, token_from=url)
    assert response.status_code == 400
    assert "which version" in body(response)
    assert_no_traceback(response)
    assert page_row(1).version == 0


def test_page_image_is_served(app, client, editor, book):
    """The page image is sent as the file the split wrote (the book's JPEG scan, copied)."""
    login_editor(client)
    with client.get(f"/proofing/{SLUG}/1/image") as response:  # closes the file it streams
        assert response.status_code == 200
        stored = Path(app.config["DATA_DIR"]) / page_row(1).image_path
        assert response.mimetype == {".jpg": "image/jpeg", ".png": "image/png"}[stored.suffix]
        assert response.data == stored.read_bytes()


@pytest.mark.parametrize(
    "image_path", ["../../etc/passwd", "/etc/passwd", "projects/view-book/pages/99999.png"]
)
def test_image_path_outside_data_dir_or_missing_is_404(client, editor, book, image_path):
    """A stored image path leading out of DATA_DIR (or to nothing) is never served."""
    page = page_row(1)
    page.image_path = image_path
    db.session.commit()
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/1/image")
    assert response.status_code == 404
    assert "root:" not in body(response)
    assert_no_traceback(response)


def test_unknown_page_is_404(client, editor, book):
    """A page number past the end of the book is a 404 page."""
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/{BOOK_PAGES + 1}/")
    assert response.status_code == 404
    assert f"has no page {BOOK_PAGES + 1}" in body(response)


def test_proofreading_works_while_redis_is_down(client, editor, redis_down):
    """The project list, project page and page editor need no Redis: they answer 200."""
    login_editor(client)
    assert client.get("/proofing/").status_code == 200
    assert client.get(f"/proofing/{SLUG}/").status_code == 200
    url = f"/proofing/{SLUG}/1/"
    assert client.get(url).status_code == 200
    response = post_form(
        client, url, {"text": "saved without redis", "version": "0"}, token_from=url
    )
    assert response.status_code == 302
    assert page_row(1).text == "saved without redis"


def test_a_refused_status_keeps_the_text_typed_and_says_why(client, proofreader, book):
    """The proofreader who set proofread-once asks for proofread-twice: 422, nothing saved,
    their new text still in the box, and the reason on the page."""
    login_proofreader(client)
    url = f"/proofing/{SLUG}/1/"
    first = {"text": "read once", "version": "0", "status": "proofread-once"}
    assert post_form(client, url, first, token_from=url).status_code == 302
    again = {"text": "typed after", "version": "1", "status": "proofread-twice"}
    response = post_form(client, url, again, token_from=url)
    assert response.status_code == 422
    assert "someone else must confirm it" in html.unescape(body(response))
    assert textarea_text(response) == "typed after"
    assert (page_row(1).text, page_row(1).status) == ("read once", "proofread-once")
    bogus = {"text": "typed", "version": "1", "status": "done"}
    response = post_form(client, url, bogus, token_from=url)
    assert response.status_code == 422 and "is not a page status" in html.unescape(body(response))


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("delete", "The scan of this page is missing on the server"),
        ("truncate", "The scan of this page cannot be read (the file is damaged)"),
    ],
)
def test_a_missing_or_damaged_scan_is_said_and_the_text_stays_editable(
    app, client, editor, book, damage, said
):
    """The editor opens, says what is wrong with the scan, draws a placeholder instead of
    asking for a preview that cannot be made, and still saves the text."""
    image = Path(app.config["DATA_DIR"]) / page_row(1).image_path
    if damage == "delete":
        image.unlink()
    else:
        image.write_bytes(image.read_bytes()[:200])
    login_editor(client)
    url = f"/proofing/{SLUG}/1/"
    response = client.get(url)
    assert response.status_code == 200
    text = html.unescape(body(response))
    assert said in text
    assert "missing-scan.svg" in text and f"/proofing/{SLUG}/1/preview" not in text
    response = post_form(client, url, {"text": "typed anyway", "version": "0"}, token_from=url)
    assert response.status_code == 302 and page_row(1).text == "typed anyway"
