"""Signing in and out (app/views/auth.py): credentials, where the sign-in leads, and the
cookies it sets."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import BOT_USERNAME
from app.services.accounts import bot_user
from tests.support import csrf_token, login
from tests.unit.views import (
    SLUG,
    assert_redirects_to_login,
    body,
    login_editor,
    post_form,
)


def test_login_with_the_right_password_opens_the_projects(client, editor):
    """The right username and password sign in and lead to the project list."""
    response = login(client, "edna", "editor-password")
    assert (response.status_code, response.headers["Location"]) == (302, "/proofing/")
    assert client.get("/proofing/").status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("edna", "wrong-password"), ("nobody", "editor-password"), (BOT_USERNAME, "")],
)
def test_wrong_credentials_give_401_and_a_message(client, editor, username, password):
    """A wrong password, an unknown user or the OCR bot is answered 401 with a message."""
    bot_user()
    db.session.commit()
    response = login(client, username, password)
    assert response.status_code == 401
    assert "Wrong username or password." in body(response)
    assert_redirects_to_login(client.get("/proofing/"))


def test_logout_signs_out(client, editor):
    """After signing out, pages ask to sign in again."""
    login_editor(client)
    response = post_form(client, "/logout")
    assert (response.status_code, response.headers["Location"]) == (302, "/login")
    assert_redirects_to_login(client.get("/proofing/"))


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example/x", "//evil.example/proofing/"]
)
def test_login_does_not_follow_a_next_to_another_site(client, editor, target):
    """`next` naming another site is ignored: the user lands on the project list."""
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "edna", "password": "editor-password", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/proofing/"


def test_login_follows_a_same_site_next(client, editor, book):
    """A same-site `next` (where the login redirect came from) is followed."""
    target = f"/proofing/{SLUG}/1/"
    redirect = client.get(target)
    assert_redirects_to_login(redirect)
    response = client.post(
        redirect.headers["Location"],
        data={"username": "edna", "password": "editor-password", "csrf_token": csrf_token(client)},
    )
    assert response.headers["Location"] == target


def set_cookie(response, name: str) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    return header


def test_session_and_remember_cookies_are_httponly_and_samesite_lax(client, editor):
    """Scripts cannot read the sign-in cookies, and other sites' forms do not send them."""
    response = client.post(
        "/login",
        data={
            "username": "edna",
            "password": "editor-password",
            "remember": "1",
            "csrf_token": csrf_token(client),
        },
    )
    for name in ("session", "remember_token"):
        cookie = set_cookie(response, name)
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
