"""Fixtures of the proofing views' tests: people, and a small book with text."""

from __future__ import annotations

import pytest
from flask import g
from flask.testing import FlaskClient

from app.extensions import db
from app.models import Page, PageStatus, Project, ProjectMember, Role
from app.services.accounts import create_user
from tests.support import add_ready_project, login

PASSWORD = "proofing-password"


@pytest.fixture
def people(app, cheap_password_hashes):
    return {
        name: create_user(name, PASSWORD, role)
        for name, role in (
            ("reader", Role.PROOFREADER),
            ("second", Role.PROOFREADER),
            ("editor", Role.EDITOR),
            ("admin", Role.ADMIN),
        )
    }


class Browser(FlaskClient):
    """A test client that is only ever its own user. The tests run inside the app's context,
    which the client's requests share, and Flask-Login and CSRF keep their user and token in
    `g`: forget them before each request, so that two browsers in one test stay two."""

    def open(self, *args, **kwargs):
        g.pop("_login_user", None)
        g.pop("csrf_token", None)
        return super().open(*args, **kwargs)


@pytest.fixture
def sign_in(app, people):
    app.test_client_class = Browser

    def client_of(name: str | None = None):
        browser = app.test_client()
        if name is not None:
            assert login(browser, name, PASSWORD).status_code == 302
        return browser

    return client_of


def set_pages(project: Project, texts: dict[int, str], statuses: dict[int, str] | None = None):
    """Give pages text (and a status) directly, as if saved long ago."""
    for page in db.session.query(Page).filter_by(project_id=project.id):
        if page.number in texts:
            page.text = texts[page.number]
        if statuses and page.number in statuses:
            page.status = statuses[page.number]
    db.session.commit()


@pytest.fixture
def book(app) -> Project:
    """A public 6-page book: Devanagari and Latin text, pages at every level."""
    project = add_ready_project("book", 6, language="san")
    set_pages(
        project,
        {
            1: "धर्मक्षेत्रे कुरुक्षेत्रे\nसमवेता युयुत्सवः",
            2: "The Quick brown fox\njumps over the lazy dog",
            3: "Café au lait; CAFÉ noir\nnothing here",
            4: "कुरुक्षेत्रे again and कुरुक्षेत्रे",
            5: "",
            6: "100% sure_thing",
        },
        {
            1: PageStatus.PROOFREAD_ONCE,
            2: PageStatus.PROOFREAD_TWICE,
            3: PageStatus.NOT_RELEVANT,
            4: PageStatus.PROOFREAD_ONCE,
        },
    )
    return project


@pytest.fixture
def private_book(app, people) -> Project:
    """A private 2-page book whose only member is `second`."""
    project = add_ready_project("secret", 2)
    project.is_private = True
    db.session.add(ProjectMember(project_id=project.id, user_id=people["second"].id))
    db.session.commit()
    set_pages(project, {1: "hidden text", 2: "more hidden text"})
    return project
