"""Fixtures of the operations tests: an app with no context held (so that several signed-in
clients never share Flask-Login's cached user), and its users."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.services.accounts import create_user
from tests.support import make_app, use_fakeredis
from tests.unit.ops import PASSWORD


@pytest.fixture
def web(tmp_path):
    app = make_app(tmp_path, WEBHOOK_SECRET="test-webhook-secret")
    use_fakeredis(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def users(web) -> dict[str, int]:
    """An admin, two editors and a proofreader: name -> id."""
    with web.app_context():
        made = {
            name: create_user(name, PASSWORD, role).id
            for name, role in (
                ("ada", "admin"),
                ("edna", "editor"),
                ("ravi", "editor"),
                ("pat", "proofreader"),
            )
        }
        db.session.remove()
    return made
