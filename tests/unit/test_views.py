"""The web pages (app/views/) through Flask's test client: sign-in, permissions, CSRF, the page
editor, batch OCR pages, error pages, and how each behaves when Redis is down.

Projects are made the real way (create_project + split_source on a small scan made here);
tasks are recorded by `enqueued`, Redis is fakeredis unless a test takes it down.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest
import redis
from flask import url_for
from PIL import Image
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from app import models, queue, task_names
from app.engines import ENGINES
from app.extensions import db
from app.models import BOT_USERNAME, Job, JobState, Page, Project, ProjectStatus
from app.ocr_tracking import OcrJobTracker
from app.services import batch_ocr
from app.services.accounts import bot_user, create_user
from app.services.pages import save_page_text
from app.services.projects import create_project, split_source
from app.views import projects as projects_views
from tests.conftest import csrf_token, login, make_app, upload_form, use_fakeredis
from tests.support import CORPUS, free_port

SLUG = "view-book"
BOOK_PAGES = 2
#: The keys of GET .../batch-ocr/status (app/services/batch_ocr.py job_status), which the
#: progress page's script and `flask ocr status --json` read.
STATUS_FIELDS = {
    "state",
    "task_id",
    "engine",
    "language",
    "started_at",
    "finished_at",
    "total",
    "queued",
    "running",
    "done",
    "failed",
    "skipped",
    "cancelled",
    "percent",
    "eta_seconds",
    "pages",
}


def body(response) -> str:
    return response.get_data(as_text=True)


def textarea_text(response) -> str:
    """The page text box's content as a browser reads it (one leading newline is dropped)."""
    match = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', body(response), re.S)
    assert match, "no text box on the page"
    return html.unescape(match.group(1).removeprefix("\n"))


def assert_no_traceback(response) -> None:
    text = body(response)
    assert "Traceback" not in text
    assert 'File "' not in text


def assert_redirects_to_login(response) -> None:
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def post_form(
    client, url: str, data: dict | None = None, *, token_from: str = "/proofing/", **kwargs
):
    """POST `data` with the CSRF token a signed-in user's page carries."""
    return client.post(
        url, data={**(data or {}), "csrf_token": csrf_token(client, token_from)}, **kwargs
    )


def login_editor(client):
    assert login(client, "edna", "editor-password").status_code == 302


def login_proofreader(client):
    assert login(client, "pat", "proofreader-password").status_code == 302


class FakeEngine:
    """An engine that is always available; no test here runs OCR."""

    name = "fake"
    label = "Fake engine"

    def unavailable_reason(self, config):
        return None

    def languages(self, config):
        return None


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch):
    """Hash with one PBKDF2 round instead of scrypt: every test here signs someone in, and
    scrypt's deliberate slowness (0.3-0.8 s a hash) is not what these tests are about."""
    monkeypatch.setattr(
        models,
        "generate_password_hash",
        lambda password: generate_password_hash(password, method="pbkdf2:sha256:1"),
    )


@pytest.fixture(autouse=True)
def fake_engine(monkeypatch):
    monkeypatch.setitem(ENGINES, FakeEngine.name, FakeEngine())


@pytest.fixture
def scan(tmp_path) -> Path:
    """A two-page scan, small enough to split in milliseconds."""
    path = tmp_path / "scan.pdf"
    pages = [Image.new("L", (200, 260), 255), Image.new("L", (240, 200), 230)]
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=150)
    return path


@pytest.fixture
def book(app, enqueued, scan) -> Project:
    """A ready project of two pages; the tasks its creation sent are forgotten."""
    with scan.open("rb") as fh:
        project = create_project(
            slug=SLUG,
            title="View book",
            language="eng",
            source=fh,
            filename="scan.pdf",
            created_by=None,
        )
    split_source(project.id)
    db.session.refresh(project)
    assert project.status == ProjectStatus.READY, project.status_message
    enqueued.clear()
    return project


def page_row(number: int) -> Page:
    db.session.expire_all()
    return db.session.scalar(
        select(Page).join(Project).filter(Project.slug == SLUG, Page.number == number)
    )


def start_job(project: Project) -> str:
    outcome = batch_ocr.start_batch_ocr(
        project, engine="fake", language=None, selection="all", user=None
    )
    assert outcome.started
    return outcome.job_id


def job_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(Job.id)))


# -- signing in and out ------------------------------------------------------------------


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


# -- who may do what ---------------------------------------------------------------------


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


def test_proofreader_cannot_start_or_cancel_batch_ocr(client, proofreader, book, enqueued):
    """A proofreader gets 403 on start and cancel; the running job is untouched."""
    login_proofreader(client)
    page = client.get(f"/proofing/{SLUG}/batch-ocr")
    assert page.status_code == 200
    assert "Only editors can start batch OCR." in body(page)
    assert post_form(client, f"/proofing/{SLUG}/batch-ocr", {"engine": "fake"}).status_code == 403
    assert job_count() == 0

    job_id = start_job(book)
    assert post_form(client, f"/proofing/{SLUG}/batch-ocr/cancel").status_code == 403
    assert db.session.get(Job, job_id).state == JobState.QUEUED


def test_proofreader_can_edit_pages(client, proofreader, book):
    """Proofreading is what proofreaders do: their save is stored."""
    login_proofreader(client)
    url = f"/proofing/{SLUG}/1/"
    response = post_form(client, url, {"text": "proofread", "version": "0"}, token_from=url)
    assert response.status_code == 302
    assert page_row(1).text == "proofread"


# -- creating a project ------------------------------------------------------------------


upload = upload_form


def test_editor_creates_a_project_by_uploading_a_pdf(app, client, editor, enqueued):
    """Uploading multipage.pdf creates the project, enqueues its split, and shows its page."""
    login_editor(client)
    response = upload(client, "multipage.pdf", (CORPUS / "multipage.pdf").read_bytes())
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
    response = upload(client, filename, data, **fields)
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


# -- CSRF --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/login", {"username": "edna", "password": "editor-password"}),
        ("/proofing/create-project", {"slug": "no-token", "title": "t", "language": "eng"}),
        (f"/proofing/{SLUG}/1/", {"text": "no token", "version": "0"}),
        (f"/proofing/{SLUG}/batch-ocr", {"engine": "fake", "pages": "all"}),
        (f"/proofing/{SLUG}/batch-ocr/cancel", {}),
        ("/logout", {}),
    ],
    ids=["login", "create", "page-save", "batch-start", "batch-cancel", "logout"],
)
def test_post_without_csrf_token_is_refused(client, editor, book, enqueued, url, data):
    """A POST without its CSRF token is refused with 400 and a readable page, changing nothing."""
    login_editor(client)
    job_id = start_job(book) if url.endswith("/cancel") else None
    sent = list(enqueued)
    response = client.post(url, data=data)
    assert response.status_code == 400
    assert "The form expired" in body(response)
    assert_no_traceback(response)
    assert page_row(1).version == 0
    assert db.session.scalar(select(func.count(Project.id))) == 1
    assert enqueued == sent
    assert job_count() == (1 if job_id else 0)
    if job_id:
        assert db.session.get(Job, job_id).state == JobState.QUEUED
    assert client.get("/proofing/").status_code == 200  # still signed in


def test_post_with_a_forged_csrf_token_is_refused(client, editor, book):
    """A token that this server did not sign is as bad as none."""
    login_editor(client)
    response = client.post(
        f"/proofing/{SLUG}/1/", data={"text": "forged", "version": "0", "csrf_token": "x" * 40}
    )
    assert response.status_code == 400
    assert page_row(1).version == 0


# -- the page editor ---------------------------------------------------------------------


def test_page_editor_shows_the_image_and_the_text(client, editor, book):
    """GET shows the page image, a textarea with the text, and the version being edited."""
    save_page_text(page_row(1), editor, "existing text", 0)
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/1/")
    assert response.status_code == 200
    text = body(response)
    assert f'src="/proofing/{SLUG}/1/image"' in text
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


# -- batch OCR pages ---------------------------------------------------------------------


def test_batch_ocr_page_shows_the_start_form_when_no_job_runs(client, editor, book):
    """Without a running job the page offers the start form."""
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/batch-ocr")
    assert response.status_code == 200
    text = body(response)
    assert 'id="start-form"' in text
    assert 'value="fake"' in text
    assert "Batch OCR in progress" not in text


def test_batch_ocr_page_shows_progress_while_a_job_runs(client, proofreader, book, enqueued):
    """With a running job (whoever started it) the page shows its progress, for anyone."""
    job_id = start_job(book)
    login_proofreader(client)
    response = client.get(f"/proofing/{SLUG}/batch-ocr")
    assert response.status_code == 200
    text = body(response)
    assert "Batch OCR in progress" in text
    assert job_id in text
    assert 'id="start-form"' not in text


def test_progress_grid_links_each_page_to_its_editor(app, client, proofreader, book, enqueued):
    """Every cell of the page grid opens that page's editor, and the link works."""
    start_job(book)
    login_proofreader(client)
    text = body(client.get(f"/proofing/{SLUG}/batch-ocr"))
    grid = text.split('id="grid"', 1)[1].split("</ol>", 1)[0]
    links = re.findall(r'href="([^"]+)"', grid)
    with app.test_request_context():
        expected = [url_for("pages.edit", slug=SLUG, number=n) for n in (1, 2)]
    assert links == expected
    assert all(client.get(link).status_code == 200 for link in links)


def test_start_redirects_to_progress_and_a_second_start_lands_on_the_same_job(
    client, editor, book, enqueued
):
    """The start POST answers 303 to the progress page; a second POST starts nothing new."""
    login_editor(client)
    url = f"/proofing/{SLUG}/batch-ocr"
    form = {"engine": "fake", "pages": "all", "language": ""}
    first = post_form(client, url, form, token_from=url)
    assert (first.status_code, first.headers["Location"]) == (303, url)
    [job] = db.session.scalars(select(Job)).all()
    assert (job.engine, job.language, job.total, job.started_by_id) == (
        "fake",
        "eng",
        BOOK_PAGES,
        editor.id,
    )

    second = post_form(client, url, form, token_from=url)
    assert (second.status_code, second.headers["Location"]) == (303, url)
    assert job_count() == 1
    assert [k for name, k in enqueued if name == task_names.DISPATCH_OCR_JOB] == [
        {"job_id": job.id}
    ]
    shown = body(client.get(url))
    assert "already running" in shown
    assert job.id in shown


def test_start_refused_by_the_service_shows_the_reason(client, editor, book, enqueued):
    """A start the service refuses (unknown engine) is a 400 with the reason on the form."""
    login_editor(client)
    url = f"/proofing/{SLUG}/batch-ocr"
    response = post_form(client, url, {"engine": "no-such-engine"}, token_from=url)
    assert response.status_code == 400
    assert "Unknown OCR engine" in body(response)
    assert job_count() == 0
    assert enqueued == []


def test_cancel_ends_the_running_job(client, editor, book, enqueued):
    """An editor's cancel answers 303 to the batch OCR page and records the job cancelled."""
    job_id = start_job(book)
    login_editor(client)
    url = f"/proofing/{SLUG}/batch-ocr"
    response = post_form(client, f"{url}/cancel", token_from=url)
    assert (response.status_code, response.headers["Location"]) == (303, url)
    db.session.expire_all()
    assert db.session.get(Job, job_id).state == JobState.CANCELLED


def test_status_json_without_a_job(client, editor, book):
    """Before any job, the status says so, with no pages."""
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/batch-ocr/status")
    assert response.status_code == 200
    assert response.get_json() == {"state": "none", "total": 0, "pages": []}


def test_status_json_of_a_running_job_has_the_documented_fields(client, editor, book, enqueued):
    """The status of a running job has every field the progress page reads, and is not
    cached."""
    job_id = start_job(book)
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/batch-ocr/status")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    status = response.get_json()
    assert set(status) == STATUS_FIELDS
    assert (status["state"], status["task_id"], status["total"], status["queued"]) == (
        "queued",
        job_id,
        BOOK_PAGES,
        BOOK_PAGES,
    )
    assert (status["engine"], status["language"], status["percent"]) == ("fake", "eng", 0)
    assert status["pages"] == [{"number": n, "state": "queued"} for n in (1, 2)]


def test_status_json_after_the_job_ended_has_the_same_fields(client, editor, book, enqueued):
    """Once a job has ended its status comes from the database, with the same fields."""
    job_id = start_job(book)
    batch_ocr.cancel_batch_ocr(book)
    login_editor(client)
    status = client.get(f"/proofing/{SLUG}/batch-ocr/status").get_json()
    assert set(status) == STATUS_FIELDS
    assert (status["state"], status["task_id"], status["cancelled"]) == (
        "cancelled",
        job_id,
        BOOK_PAGES,
    )


# -- cookies and limits ------------------------------------------------------------------


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
    response = upload(client, "multipage.pdf", (CORPUS / "trivial.pdf").read_bytes() * 4)
    assert response.status_code == 413
    text = body(response)
    assert "The file is too large" in text
    assert "MAX_UPLOAD_MB" in text
    assert_no_traceback(response)
    assert db.session.scalar(select(func.count(Project.id))) == 0
    assert enqueued == []


# -- when Redis is down ------------------------------------------------------------------


@pytest.fixture
def redis_down(app, book, monkeypatch):
    """Redis unreachable: job records on a closed port, and the queue refusing tasks."""
    # Made like create_app's client (from_url): redis.Redis(host=...) would retry ten times
    # with backoff, taking seconds per call to fail.
    closed = redis.Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, socket_timeout=0.2
    )
    app.extensions["redis"] = closed
    app.extensions["ocr_tracker"] = OcrJobTracker(closed, ttl=app.config["OCR_JOB_TTL"])

    def unavailable(*args, **kwargs):
        raise queue.QueueUnavailable()

    monkeypatch.setattr(queue, "enqueue", unavailable)


def assert_queue_unavailable_page(response) -> None:
    assert response.status_code == 503
    assert "The task queue is unavailable" in body(response)
    assert "Nothing was started or changed" in body(response)
    assert_no_traceback(response)


def test_batch_ocr_page_is_503_when_redis_is_down(client, editor, redis_down):
    """The batch OCR page says the queue is unavailable instead of failing with a 500."""
    login_editor(client)
    assert_queue_unavailable_page(client.get(f"/proofing/{SLUG}/batch-ocr"))


def test_start_is_503_when_redis_is_down_and_starts_nothing(client, editor, redis_down):
    """Starting batch OCR while Redis is down answers 503 and records no job."""
    login_editor(client)
    url = f"/proofing/{SLUG}/batch-ocr"
    response = post_form(client, url, {"engine": "fake", "pages": "all"})
    assert_queue_unavailable_page(response)
    assert job_count() == 0


def test_status_json_is_503_json_when_redis_is_down(client, editor, redis_down):
    """The progress poll gets a 503 JSON answer it can retry on, not an HTML error."""
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/batch-ocr/status")
    assert response.status_code == 503
    assert response.get_json()["error"] == "The task queue is unavailable"


def test_create_project_is_503_when_the_queue_is_down_and_creates_nothing(
    app, client, editor, redis_down
):
    """An upload that cannot be queued for splitting is refused whole, with a readable page."""
    login_editor(client)
    response = upload(client, "trivial.pdf", (CORPUS / "trivial.pdf").read_bytes())
    assert_queue_unavailable_page(response)
    assert db.session.scalar(select(Project).filter_by(slug="uploaded")) is None
    assert not (Path(app.config["DATA_DIR"]) / "projects" / "uploaded").exists()


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


# -- health ------------------------------------------------------------------------------


@pytest.fixture
def worker_replies(app, monkeypatch):
    """What `celery control ping` answers; fakeredis is no broker, so the ping is stubbed."""
    replies: list[dict] = []
    monkeypatch.setattr(app.extensions["celery"].control, "ping", lambda timeout: replies)
    return replies


def test_healthz_is_200_when_everything_answers(client, worker_replies):
    """Database, Redis and a worker answering: 200 and status ok (no login needed)."""
    worker_replies.append({"celery@worker-1": {"ok": "pong"}})
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "checks": {
            "database": {"ok": True},
            "redis": {"ok": True},
            "workers": {"ok": True, "count": 1, "names": ["celery@worker-1"]},
        },
    }


def test_healthz_is_503_without_workers(client, worker_replies):
    """No worker answering the ping is degraded: nothing would run the tasks."""
    response = client.get("/healthz")
    assert response.status_code == 503
    payload = response.get_json()
    assert payload["status"] == "degraded"
    assert payload["checks"]["workers"] == {"ok": False, "count": 0, "names": []}


def test_healthz_is_503_when_redis_is_down(client, redis_down, worker_replies):
    """Redis unreachable: 503, naming Redis, and workers reported unreachable through it."""
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == {"ok": True}
    assert checks["redis"]["ok"] is False
    assert checks["workers"] == {"ok": False, "error": "redis unreachable"}


# -- errors ------------------------------------------------------------------------------


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


def test_unknown_project_status_is_404_json(client, editor):
    """The JSON status of an unknown project is a JSON 404."""
    login_editor(client)
    response = client.get("/proofing/nope/batch-ocr/status")
    assert response.status_code == 404
    assert response.get_json()["message"] == "There is no project 'nope'."


def test_unknown_page_is_404(client, editor, book):
    """A page number past the end of the book is a 404 page."""
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/{BOOK_PAGES + 1}/")
    assert response.status_code == 404
    assert f"has no page {BOOK_PAGES + 1}" in body(response)


def test_unexpected_error_is_a_500_page_without_a_traceback(client, editor, book, monkeypatch):
    """A bug in a view shows a plain 500 page; the details go to the log, not the browser."""

    def broken(project):
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(projects_views, "split_state", broken)
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/")
    assert response.status_code == 500
    assert "Something went wrong" in body(response)
    assert "internal detail" not in body(response)
    assert_no_traceback(response)
