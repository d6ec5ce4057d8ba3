"""Who may open what (app/views/access.py), across the blueprints: signed out, every page leads
to the sign-in; a project that does not exist is a 404 naming it."""

from __future__ import annotations

import pytest

from tests.unit.views import (
    SLUG,
    assert_no_traceback,
    assert_redirects_to_login,
    body,
    login_editor,
)


@pytest.mark.parametrize(
    "url",
    [
        "/proofing/",
        "/proofing/create-project",
        f"/proofing/{SLUG}/",
        f"/proofing/{SLUG}/split-status",
        f"/proofing/{SLUG}/1/",
        f"/proofing/{SLUG}/1/image",
        f"/proofing/{SLUG}/batch-ocr",
        f"/proofing/{SLUG}/batch-ocr/status",
    ],
)
def test_every_page_requires_login(client, book, url):
    """Signed out, every page (and the JSON status) redirects to the login page."""
    assert_redirects_to_login(client.get(url))


@pytest.mark.parametrize(
    "url",
    [
        "/proofing/nope/",
        "/proofing/nope/1/",
        "/proofing/nope/1/image",
        "/proofing/nope/batch-ocr",
        "/proofing/nope/split-status",
    ],
)
def test_unknown_project_is_404_with_a_message(client, editor, url):
    """A project that does not exist is a 404 page naming it."""
    login_editor(client)
    response = client.get(url)
    assert response.status_code == 404
    assert "There is no project &#39;nope&#39;" in body(response)
    assert_no_traceback(response)
