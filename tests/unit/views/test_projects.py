"""The project list and creating a project by upload (app/views/projects.py): who may, what a
refused upload shows, the upload limit, and the queue being down."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import task_names
from app.extensions import db
from app.models import Project
from app.services.accounts import create_user
from tests.support import CORPUS, make_app, upload_form, use_fakeredis
from tests.unit.views import (
    assert_no_traceback,
    assert_queue_unavailable_page,
    body,
    login_editor,
    login_proofreader,
    post_form,
)


def test_home_leads_to_the_projects(client):
    """/ is the project list."""
    response = client.get("/")
    assert (response.status_code, response.headers["Location"]) == (302, "/proofing/")


def test_proofreader_cannot_create_projects(client, proofreader, enqueued):
    """A proofreader gets 403 on the create form and its POST, and nothing is created."""
    login_proofreader(client)
    assert client.get("/proofing/create-project").status_code == 403
    response = post_form(
        client,
        "/proofing/create-project",
        {
            "slug": "by-proofreader",
            "title": "x",
            "language": "eng",
            "source": (io.BytesIO((CORPUS / "trivial.pdf").read_bytes()), "trivial.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 403
    assert "Only editors" in body(response)
    assert db.session.scalar(select(func.count(Project.id))) == 0
    assert enqueued == []


def test_editor_creates_a_project_by_uploading_a_pdf(app, client, editor, enqueued):
    """Uploading multipage.pdf creates the project, enqueues its split, and shows its page."""
    login_editor(client)
    response = upload_form(client, "multipage.pdf", (CORPUS / "multipage.pdf").read_bytes())
    assert (response.status_code, response.headers["Location"]) == (302, "/proofing/uploaded/")
    project = db.session.scalar(select(Project).filter_by(slug="uploaded"))
    assert (project.title, project.source_page_count, project.created_by_id) == (
        "Uploaded book",
        6,
        editor.id,
    )
    assert enqueued == [(task_names.SPLIT_SOURCE, {"project_id": project.id})]
    shown = client.get("/proofing/uploaded/")
    assert shown.status_code == 200
    assert "being prepared" in body(shown)
    assert "0</span> of 6 pages ready" in body(shown)


@pytest.mark.parametrize(
    ("filename", "data", "fields", "words"),
    [
        ("invalid.pdf", (CORPUS / "invalid.pdf").read_bytes(), {}, "damaged"),
        ("empty.pdf", b"", {}, "empty (0 bytes)"),
        ("notes.txt", b"just some text\n", {}, "neither a PDF"),
        ("trivial.pdf", (CORPUS / "trivial.pdf").read_bytes(), {"slug": "Bad Slug"}, "slug"),
        ("trivial.pdf", (CORPUS / "trivial.pdf").read_bytes(), {"language": "x!"}, "language"),
    ],
    ids=["damaged", "empty", "text", "bad-slug", "bad-language"],
)
def test_refused_upload_shows_the_reason_and_creates_nothing(
    app, client, editor, enqueued, filename, data, fields, words
):
    """An unusable upload is answered 400 with the reason on the form; nothing is made."""
    login_editor(client)
    response = upload_form(client, filename, data, **fields)
    assert response.status_code == 400
    text = body(response)
    assert words in text
    assert 'value="Uploaded book"' in text  # what the user typed is kept
    assert_no_traceback(response)
    assert db.session.scalar(select(func.count(Project.id))) == 0
    projects_dir = Path(app.config["DATA_DIR"]) / "projects"
    assert not projects_dir.exists() or list(projects_dir.iterdir()) == []
    assert enqueued == []


def test_form_without_a_file_is_refused(client, editor, enqueued):
    """Submitting the form without choosing a file asks for one."""
    login_editor(client)
    response = post_form(
        client,
        "/proofing/create-project",
        {"slug": "no-file", "title": "t", "language": "eng"},
        token_from="/proofing/create-project",
    )
    assert response.status_code == 400
    assert "Choose a PDF" in body(response)
    assert enqueued == []


@pytest.fixture
def small_upload_app(tmp_path):
    """An app accepting uploads of 1000 bytes at most, on fakeredis."""
    app = make_app(tmp_path / "small", MAX_CONTENT_LENGTH=1000)
    use_fakeredis(app)
    with app.app_context():
        create_user("edna", "editor-password", "editor")
        yield app
        db.session.remove()
        db.engine.dispose()


def test_upload_over_the_limit_gives_413_with_a_readable_message(small_upload_app, enqueued):
    """An upload over MAX_CONTENT_LENGTH is answered 413 saying the file is too large."""
    client = small_upload_app.test_client()
    login_editor(client)
    response = upload_form(client, "multipage.pdf", (CORPUS / "trivial.pdf").read_bytes() * 4)
    assert response.status_code == 413
    text = body(response)
    assert "The file is too large" in text
    assert "MAX_UPLOAD_MB" in text
    assert_no_traceback(response)
    assert db.session.scalar(select(func.count(Project.id))) == 0
    assert enqueued == []


def test_create_project_is_503_when_the_queue_is_down_and_creates_nothing(
    app, client, editor, redis_down
):
    """An upload that cannot be queued for splitting is refused whole, with a readable page."""
    login_editor(client)
    response = upload_form(client, "trivial.pdf", (CORPUS / "trivial.pdf").read_bytes())
    assert_queue_unavailable_page(response)
    assert db.session.scalar(select(Project).filter_by(slug="uploaded")) is None
    assert not (Path(app.config["DATA_DIR"]) / "projects" / "uploaded").exists()
