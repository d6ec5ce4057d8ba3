"""Private projects and project members (app/permissions.py), through the views a user clicks.

A private project is seen only by its members and admins, and its batch OCR is run only by
its member editors and admins; a public project is seen by every signed-in user and its OCR
run by every editor.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.job_tracking import job_key
from app.models import Job, MemberRole, Project, User
from app.services.accounts import create_user
from app.services.projects import ProjectError, remove_member, set_member
from tests.support import (
    CORPUS,
    add_ready_project,
    csrf_token,
    make_app,
    signed_in,
    upload_form,
    use_fakeredis,
)

PRIVATE, PUBLIC = "private-book", "public-book"
PASSWORD = "a-long-password"
# Starts use the tesseract engine but run no OCR: a stand-in answers for it. Everyone signs in
# many times: cheap hashes.
pytestmark = pytest.mark.usefixtures("fake_tesseract", "cheap_password_hashes")


@pytest.fixture
def web(tmp_path):
    """An app on fakeredis, with no app context held: each client's requests are their own
    (inside one context, Flask-Login's cached user would leak from one client to the next)."""
    app = make_app(tmp_path)
    use_fakeredis(app)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def people(web):
    """An admin, two editors and two proofreaders; `member-*` belong to the private project."""
    with web.app_context():
        add_ready_project(PRIVATE, pages=2)
        add_ready_project(PUBLIC, pages=2)
        users = {
            name: create_user(name, PASSWORD, role)
            for name, role in [
                ("admin", "admin"),
                ("member-editor", "editor"),
                ("outside-editor", "editor"),
                ("member-reader", "proofreader"),
                ("outside-reader", "proofreader"),
            ]
        }
        private = db.session.scalar(select(Project).filter_by(slug=PRIVATE))
        private.is_private = True
        db.session.commit()
        set_member(private, users["member-editor"], MemberRole.EDITOR)
        set_member(private, users["member-reader"], MemberRole.PROOFREADER)
        return {name: user.id for name, user in users.items()}


def client_of(app, name: str):
    return signed_in(app, name, PASSWORD)


def status_of(client, url: str) -> int:
    """The answer's status, with the answer closed (an image answer holds its file open)."""
    response = client.get(url)
    response.close()
    return response.status_code


def project_urls(slug: str) -> list[str]:
    return [
        f"/proofing/{slug}/",
        f"/proofing/{slug}/split-status",
        f"/proofing/{slug}/1/",
        f"/proofing/{slug}/1/image",
        f"/proofing/{slug}/batch-ocr",
        f"/proofing/{slug}/batch-ocr/status",
    ]


@pytest.mark.parametrize("name", ["outside-editor", "outside-reader"])
def test_a_private_project_is_a_404_to_those_outside_it_and_not_listed(web, people, name):
    """Every page of it answers 404, as for a project that does not exist, and the project
    list leaves it out; the public project stays visible to them."""
    client = client_of(web, name)
    for url in project_urls(PRIVATE):
        assert status_of(client, url) == 404, url
    listing = client.get("/proofing/").get_data(as_text=True)
    assert PRIVATE not in listing and PUBLIC in listing
    assert all(status_of(client, url) == 200 for url in project_urls(PUBLIC))


@pytest.mark.parametrize("name", ["member-editor", "member-reader", "admin"])
def test_members_and_admins_see_a_private_project(web, people, name):
    client = client_of(web, name)
    for url in project_urls(PRIVATE):
        assert status_of(client, url) == 200, url
    assert PRIVATE in client.get("/proofing/").get_data(as_text=True)


def start(client, slug: str):
    url = f"/proofing/{slug}/batch-ocr"
    return client.post(url, data={"csrf_token": csrf_token(client, url), "engine": "tesseract"})


def jobs(app, slug: str) -> int:
    with app.app_context():
        project = db.session.scalar(select(Project).filter_by(slug=slug))
        return db.session.query(Job).filter_by(project_id=project.id).count()


@pytest.mark.parametrize(
    ("name", "slug", "expected"),
    [
        ("member-editor", PRIVATE, 303),
        ("admin", PRIVATE, 303),
        ("member-reader", PRIVATE, 403),  # sees the project, is not one of its editors
        ("outside-editor", PRIVATE, 404),  # an editor, but not of this project
        ("outside-editor", PUBLIC, 303),  # any editor edits a public project
        ("outside-reader", PUBLIC, 403),
    ],
)
def test_only_the_projects_editors_start_its_batch_ocr(web, people, enqueued, name, slug, expected):
    client = client_of(web, name)
    response = start(client, slug)
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    assert jobs(web, slug) == (1 if expected == 303 else 0)


@pytest.mark.parametrize(("name", "expected"), [("member-reader", 403), ("outside-editor", 404)])
def test_cancel_needs_an_editor_of_the_project(web, people, enqueued, name, expected):
    assert start(client_of(web, "member-editor"), PRIVATE).status_code == 303
    client = client_of(web, name)
    url = f"/proofing/{PRIVATE}/batch-ocr/cancel"
    token = csrf_token(client, "/proofing/")
    assert client.post(url, data={"csrf_token": token}).status_code == expected
    assert web.extensions["redis"].exists(job_key(PRIVATE)), "the job was cancelled"


def test_the_start_form_is_shown_only_to_the_projects_editors(web, people):
    reader = client_of(web, "member-reader").get(f"/proofing/{PRIVATE}/batch-ocr")
    editor = client_of(web, "member-editor").get(f"/proofing/{PRIVATE}/batch-ocr")
    assert 'id="start-form"' not in reader.get_data(as_text=True)
    assert 'id="start-form"' in editor.get_data(as_text=True)


def test_a_private_upload_makes_its_creator_an_editor_member(web, people, enqueued):
    client = client_of(web, "outside-editor")
    response = upload_form(
        client,
        "trivial.pdf",
        (CORPUS / "trivial.pdf").read_bytes(),
        slug="mine",
        private="on",
    )
    assert response.status_code == 302
    with web.app_context():
        project = db.session.scalar(select(Project).filter_by(slug="mine"))
        assert project.is_private
        members = [(m.user.username, m.role) for m in project.members]
    assert members == [("outside-editor", "editor")]
    assert client_of(web, "member-editor").get("/proofing/mine/").status_code == 404


def test_removing_a_member_closes_the_project_to_them(web, people):
    client = client_of(web, "member-reader")
    assert client.get(f"/proofing/{PRIVATE}/").status_code == 200
    with web.app_context():
        private = db.session.scalar(select(Project).filter_by(slug=PRIVATE))
        reader = db.session.get(User, people["member-reader"])
        assert remove_member(private, reader)
    assert client.get(f"/proofing/{PRIVATE}/").status_code == 404
    with web.app_context():
        private = db.session.scalar(select(Project).filter_by(slug=PRIVATE))
        assert not remove_member(private, db.session.get(User, people["member-reader"]))


def test_a_member_role_must_be_editor_or_proofreader(web, people):
    with web.app_context():
        private = db.session.scalar(select(Project).filter_by(slug=PRIVATE))
        reader = db.session.get(User, people["outside-reader"])
        with pytest.raises(ProjectError, match="editor or proofreader"):
            set_member(private, reader, "admin")


def add_on_the_page(client, username: str, role: str = "proofreader"):
    token = csrf_token(client, f"/proofing/{PRIVATE}/")
    return client.post(
        f"/proofing/{PRIVATE}/members",
        data={"csrf_token": token, "username": username, "role": role},
    )


def test_a_project_editor_adds_and_removes_members_on_the_project_page(web, people):
    """The member editor adds a proofreader from the project page; the proofreader then sees
    the project; removing them closes it again."""
    editor = client_of(web, "member-editor")
    page = editor.get(f"/proofing/{PRIVATE}/").get_data(as_text=True)
    assert 'id="members"' in page and "Add member" in page
    answer = add_on_the_page(editor, "outside-reader")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("#members")
    assert client_of(web, "outside-reader").get(f"/proofing/{PRIVATE}/").status_code == 200

    remove = f"/proofing/{PRIVATE}/members/{people['outside-reader']}/remove"
    token = csrf_token(editor, f"/proofing/{PRIVATE}/")
    assert editor.post(remove, data={"csrf_token": token}).status_code == 303
    assert client_of(web, "outside-reader").get(f"/proofing/{PRIVATE}/").status_code == 404


def test_an_unknown_user_or_role_is_a_message_on_the_page(web, people):
    editor = client_of(web, "member-editor")
    shown = editor.get(add_on_the_page(editor, "nobody").headers["Location"])
    assert "There is no user &#39;nobody&#39;." in shown.get_data(as_text=True)
    shown = editor.get(add_on_the_page(editor, "outside-reader", role="admin").headers["Location"])
    assert "editor or proofreader" in shown.get_data(as_text=True)
    assert client_of(web, "outside-reader").get(f"/proofing/{PRIVATE}/").status_code == 404


def test_a_proofreader_member_cannot_change_the_members(web, people):
    reader = client_of(web, "member-reader")
    assert 'action="/proofing/private-book/members"' not in reader.get(
        f"/proofing/{PRIVATE}/"
    ).get_data(as_text=True)
    assert add_on_the_page(reader, "outside-reader").status_code == 403
    assert client_of(web, "outside-reader").get(f"/proofing/{PRIVATE}/").status_code == 404


def test_a_project_editor_makes_the_project_public_and_private_again(web, people):
    """Public: those outside it see it; private again: a 404 to them. A proofreader member
    cannot change it."""
    editor, outsider = client_of(web, "member-editor"), client_of(web, "outside-reader")
    url = f"/proofing/{PRIVATE}/visibility"

    def post(client, **form):
        token = csrf_token(client, "/proofing/")
        return client.post(url, data={"csrf_token": token, **form})

    assert post(editor).status_code == 303  # no "private" field: public
    assert outsider.get(f"/proofing/{PRIVATE}/").status_code == 200
    assert post(client_of(web, "member-reader"), private="on").status_code == 403
    assert outsider.get(f"/proofing/{PRIVATE}/").status_code == 200
    assert post(editor, private="on").status_code == 303
    assert outsider.get(f"/proofing/{PRIVATE}/").status_code == 404
