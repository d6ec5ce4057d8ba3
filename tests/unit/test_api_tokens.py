"""API tokens: made by the CLI, shown once, stored hashed, revocable; a request with one is
signed in, one without a session or token gets 401 on the API."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from app.extensions import db
from app.models import ApiToken
from app.services.accounts import create_user
from app.services.api_tokens import bearer_token, issue_token, revoke_tokens, user_for_token


def test_a_token_is_stored_only_as_its_hash(app):
    user = create_user("tok", "token-password", "editor")
    token = issue_token(user)
    (row,) = db.session.scalars(select(ApiToken)).all()
    assert token not in row.token_hash
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert user_for_token(token).id == user.id
    assert row.last_used_at is not None


def test_revoked_unknown_and_bot_tokens_sign_nobody_in(app):
    user = create_user("tok2", "token-password", "editor")
    token = issue_token(user)
    assert revoke_tokens(user) == 1
    assert user_for_token(token) is None
    assert user_for_token("ocrp_not-a-token") is None
    assert user_for_token("") is None


def test_the_bearer_header_is_read_case_insensitively_and_nothing_else_is():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token(None) is None
    assert bearer_token("Bearer ") is None


def test_cli_prints_the_token_last_and_revokes_them(app):
    create_user("cli-tok", "token-password", "proofreader")
    runner = app.test_cli_runner()
    made = runner.invoke(args=["users", "token", "cli-tok"])
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    assert user_for_token(token).username == "cli-tok"
    revoked = runner.invoke(args=["users", "revoke-tokens", "cli-tok"])
    assert "1 token of cli-tok revoked" in revoked.output
    assert user_for_token(token) is None


def test_a_page_asks_a_signed_out_browser_to_sign_in_and_keeps_where_it_was_going(client):
    response = client.get("/proofing/some-book/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login?next=%2Fproofing%2Fsome-book%2F")
