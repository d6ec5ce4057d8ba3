"""Hostile input, generated: slugs, page-save forms, uploaded bytes, the `next` of the sign-in,
and whatever is stored under ``ocr_task:<slug>``. None may give a 500; each gets what the
user-facing rule says. Also the batch OCR form's unknown engine and missing language data, and
scanned images as uploads, through HTTP.

Requests are made outside any app context (see test_security.py for why). Examples are kept
few (hypothesis `max_examples` 25-40) so the file runs in seconds.
"""

from __future__ import annotations

import io
import itertools
import json
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import func, select

from app import task_names
from app.extensions import db
from app.job_tracking import job_key
from app.models import Job, Project, Role
from app.services import batch_ocr
from app.services.accounts import create_user
from app.services.projects import ProjectError, create_project
from tests.support import (
    CORPUS,
    add_ready_project,
    csrf_token,
    make_app,
    signed_in,
    upload_form,
    use_fakeredis,
)

SLUG = "hostile-book"
PAGES = 3
TRIVIAL_PDF = (CORPUS / "trivial.pdf").read_bytes()
FEW = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: Form text a browser can send: any character but lone surrogates, which are not UTF-8.
form_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


# Signing in is not what these tests are about: cheap hashes. Jobs start with the tesseract
# engine but run no OCR: a stand-in answers for it, with eng, hin and san installed.
pytestmark = pytest.mark.usefixtures("cheap_password_hashes", "fake_tesseract")


@pytest.fixture
def web(tmp_path, enqueued):
    """An app on fakeredis with a ready 3-page project and an editor; no context held."""
    app = make_app(tmp_path)
    use_fakeredis(app)
    with app.app_context():
        add_ready_project(SLUG, PAGES)
        create_user("edna", "editor-password", Role.EDITOR)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def editor_client(web):
    return signed_in(web, "edna", "editor-password")


def assert_not_a_500(response) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text[:1000]
    assert "Traceback" not in text


# -- slugs -------------------------------------------------------------------------------


def is_valid_slug(slug: str) -> bool:
    """The documented rule (docs/reliability.md), written independently of SLUG_RE."""
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    return 1 <= len(slug) <= 64 and set(slug) <= allowed and slug[0] != "-" and slug[-1] != "-"


slugs = st.one_of(
    st.text(alphabet="abz09-", min_size=1, max_size=66),
    st.text(alphabet="abz09-/. *\\_Aġ\x00\n", max_size=12),
    st.text(max_size=70),
)


@FEW
@given(slug=slugs)
@example(slug="..")
@example(slug="a/b")
@example(slug="a" * 64)
@example(slug="a" * 65)
def test_any_slug_creates_a_project_only_when_valid(app, enqueued, slug):
    """create_project accepts exactly the valid slugs; any other leaves no row, no directory
    and no task behind."""
    projects_dir = Path(app.config["DATA_DIR"]) / "projects"
    if is_valid_slug(slug):
        project = create_project(
            slug=slug,
            title="t",
            language="eng",
            source=io.BytesIO(TRIVIAL_PDF),
            filename="trivial.pdf",
            created_by=None,
        )
        assert project.slug == slug
        assert (projects_dir / slug / "source.pdf").read_bytes() == TRIVIAL_PDF
        assert enqueued == [(task_names.SPLIT_SOURCE, {"project_id": project.id})]
        db.session.delete(project)  # the next example starts from nothing again
        db.session.commit()
        shutil.rmtree(projects_dir / slug)
        enqueued.clear()
    else:
        with pytest.raises(ProjectError, match="slug"):
            create_project(
                slug=slug,
                title="t",
                language="eng",
                source=io.BytesIO(TRIVIAL_PDF),
                filename="trivial.pdf",
                created_by=None,
            )
        db.session.rollback()
        assert db.session.scalar(select(func.count(Project.id))) == 0
        assert not projects_dir.exists() or list(projects_dir.iterdir()) == []
        assert enqueued == []


# -- the page editor's form --------------------------------------------------------------


def parses_as_int(raw: str) -> bool:
    """Whether the editor takes `raw` as a version: a whole number a 64-bit column holds
    (app/views/pages.py refuses others with a 400, as it does text)."""
    try:
        return -(2**63) <= int(raw) < 2**63
    except ValueError:
        return False


versions = st.one_of(
    form_text,
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.sampled_from(["", " 0 ", "0x1", "1e3", "１", "1_0", "-0", "nan", "٣"]),
)


@FEW
@given(version=versions, text=form_text, summary=form_text, go=st.sampled_from(["", "next", "x"]))
def test_any_page_form_is_a_400_or_a_save_or_a_conflict(
    web, editor_client, version, text, summary, go
):
    """A version that is not a whole number is a 400; any other form saves (302) or conflicts
    (409). Never a 500, whatever the text, summary or `go`."""
    url = f"/proofing/{SLUG}/2/"
    response = editor_client.post(
        url,
        data={
            "version": version,
            "text": text,
            "summary": summary,
            "go": go,
            "csrf_token": csrf_token(editor_client, url),
        },
    )
    assert_not_a_500(response)
    if not parses_as_int(version):
        assert response.status_code == 400
        assert "which version of the page" in response.get_data(as_text=True)
    else:
        assert response.status_code in (302, 409)


def test_page_form_with_a_version_over_64_bits_is_not_a_500(web, editor_client):
    """A version too large for the database (SQLite cannot bind it) is refused or conflicts;
    it is not a 500."""
    url = f"/proofing/{SLUG}/2/"
    response = editor_client.post(
        url, data={"version": str(2**64), "text": "x", "csrf_token": csrf_token(editor_client, url)}
    )
    assert_not_a_500(response)


# -- uploads -----------------------------------------------------------------------------


def image_bytes(kind: str, size=(40, 30), frames: int = 1) -> bytes:
    out = io.BytesIO()
    images = [Image.new("L", size, 200 - 40 * i) for i in range(frames)]
    images[0].save(out, format=kind, save_all=frames > 1, append_images=images[1:])
    return out.getvalue()


#: Beginnings of real files, for bytes that get past the first sniff.
PREFIXES = [
    b"%PDF-1.7\n",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"II*\x00",
    b"MM\x00*",
    b"GIF89a",
]
uploads = st.one_of(
    st.binary(max_size=2000),
    st.tuples(st.sampled_from(PREFIXES), st.binary(max_size=2000)).map(b"".join),
    st.builds(
        lambda data, cut: data[:cut],
        st.sampled_from(
            [TRIVIAL_PDF, image_bytes("PNG"), image_bytes("JPEG"), image_bytes("TIFF", frames=2)]
        ),
        st.integers(min_value=0, max_value=2000),
    ),
)
upload_counter = itertools.count()


def post_upload(client, slug: str, filename: str, data: bytes):
    return upload_form(client, filename, data, slug=slug, title="Hostile")


@FEW
@given(data=uploads, filename=st.sampled_from(["scan.pdf", "scan.png", "scan.tif", "x"]))
def test_any_uploaded_bytes_make_a_project_or_a_readable_400(web, editor_client, data, filename):
    """Whatever bytes are uploaded, the answer is a project (302 to its page) or a 400 that
    says why on the form, with nothing left behind; never a 500."""
    slug = f"upload-{next(upload_counter)}"
    response = post_upload(editor_client, slug, filename, data)
    assert_not_a_500(response)
    with web.app_context():
        project = db.session.scalar(select(Project).filter_by(slug=slug))
        if response.status_code == 302:
            assert project is not None and project.source_page_count >= 1
        else:
            assert response.status_code == 400
            text = response.get_data(as_text=True)
            assert 'class="flash flash-error"' in text
            assert "Choose a PDF" not in text  # the file did arrive
            assert project is None
            assert not (Path(web.config["DATA_DIR"]) / "projects" / slug).exists()


def test_damaged_tiff_upload_is_a_readable_400(web, editor_client):
    """A TIFF header with nothing valid after it (the smallest upload hypothesis found giving
    a 500, from Pillow's n_frames) is refused with a message, like a damaged PDF."""
    data = b"II\x00*\x00\x00\x00\x01"
    response = post_upload(editor_client, "damaged-tiff", "scan.tif", data)
    assert_not_a_500(response)
    assert response.status_code == 400
    assert 'class="flash flash-error"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("filename", "data", "pages"),
    [
        ("scan.png", image_bytes("PNG"), 1),
        ("scan.jpg", image_bytes("JPEG"), 1),
        ("book.tiff", image_bytes("TIFF", frames=3), 3),
    ],
    ids=["png", "jpeg", "three-page-tiff"],
)
def test_scanned_image_upload_becomes_a_project(
    web, editor_client, enqueued, filename, data, pages
):
    """A PNG, JPEG or (multi-page) TIFF scan is accepted as a source: one page per frame, and
    its split is queued."""
    response = post_upload(editor_client, "image-book", filename, data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/proofing/image-book/"
    with web.app_context():
        project = db.session.scalar(select(Project).filter_by(slug="image-book"))
        assert project.source_page_count == pages
        assert enqueued == [(task_names.SPLIT_SOURCE, {"project_id": project.id})]


# -- the batch OCR form ------------------------------------------------------------------


def test_unknown_engine_is_a_400_naming_it_and_starts_nothing(web, editor_client, enqueued):
    """An engine name the app does not know (a hand-made form) is refused with its name."""
    url = f"/proofing/{SLUG}/batch-ocr"
    response = editor_client.post(
        url,
        data={"engine": "ocr-9000", "pages": "all", "csrf_token": csrf_token(editor_client, url)},
    )
    assert response.status_code == 400
    assert "Unknown OCR engine &#39;ocr-9000&#39;." in response.get_data(as_text=True)
    with web.app_context():
        assert db.session.scalar(select(func.count(Job.id))) == 0
        assert web.extensions["redis"].get(job_key(SLUG)) is None
    assert enqueued == []


def test_language_without_data_is_a_400_listing_the_installed_ones(
    web, editor_client, enqueued, fake_tesseract
):
    """A well-formed language with no Tesseract data installed is refused, naming it and what
    is installed; nothing starts."""
    installed = fake_tesseract.languages(web.config)
    missing = next(code for code in ("kat", "amh", "zzz") if code not in installed)
    url = f"/proofing/{SLUG}/batch-ocr"
    response = editor_client.post(
        url,
        data={
            "engine": "tesseract",
            "language": f"eng+{missing}",
            "pages": "all",
            "csrf_token": csrf_token(editor_client, url),
        },
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert f"No Tesseract (local) language data is installed for {missing}; installed:" in text
    assert ", ".join(sorted(installed)) in text
    with web.app_context():
        assert db.session.scalar(select(func.count(Job.id))) == 0
    assert enqueued == []


# -- what is stored under ocr_task:<slug> ------------------------------------------------

LIVE = "<the live job's id>"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | form_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(form_text, inner, max_size=4),
    max_leaves=12,
)
records = st.fixed_dictionaries(
    {"task_id": st.sampled_from([LIVE, "", "x"]) | json_values},
    optional={
        "engine": st.sampled_from(["tesseract", "", "nope"]) | json_values,
        "started_at": st.sampled_from(["2026-01-01T00:00:00+00:00", "", "yesterday"]) | json_values,
        "project_slug": st.sampled_from([SLUG, "other", ""]) | json_values,
        "language": st.sampled_from(["eng", ""]) | json_values,
        "total": st.integers(min_value=-5, max_value=5000) | json_values,
    },
)
stored_values = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    records.map(lambda r: json.dumps(r)),
)


@FEW
@given(raw=stored_values)
@example(raw=b"[" * 100_000)
@example(
    raw=json.dumps(
        {
            "task_id": LIVE,
            "engine": "tesseract",
            "started_at": "x",
            "project_slug": SLUG,
            "total": 4999,
        }
    )
)
def test_anything_under_the_job_key_never_gives_a_500(web, editor_client, raw):
    """Garbage, any JSON, or a record with hand-edited fields (naming the live job or not)
    under ``ocr_task:<slug>``: the batch OCR page and its status still answer 200."""
    redis = web.extensions["redis"]
    with web.app_context():
        project = db.session.scalar(select(Project).filter_by(slug=SLUG))
        redis.delete(job_key(SLUG))
        live = batch_ocr.start_batch_ocr(
            project, engine="tesseract", language="eng", selection="all", user=None
        )
    if isinstance(raw, str):
        raw = raw.replace(LIVE, live.job_id)
    redis.set(job_key(SLUG), raw)
    page = editor_client.get(f"/proofing/{SLUG}/batch-ocr")
    status = editor_client.get(f"/proofing/{SLUG}/batch-ocr/status")
    assert_not_a_500(page)
    assert_not_a_500(status)
    assert (page.status_code, status.status_code) == (200, 200)
    assert status.get_json()["state"] in (
        "queued",
        "running",
        "succeeded",
        "failed",
        "partially_failed",
        "cancelled",
        "interrupted",
    )
    with web.app_context():  # end it, so the next example starts its own
        for job in db.session.scalars(select(Job).filter(Job.finished_at.is_(None))):
            batch_ocr.end_job(job.id, state="cancelled")


# -- where the sign-in sends you -----------------------------------------------------------


@FEW
@given(
    target=st.one_of(
        form_text,
        st.tuples(
            st.sampled_from(["/", "//", "/\\", "\\\\", "http://", "https:", "/\t/", "///"]),
            st.sampled_from(["evil.example", "evil.example/proofing/", ""]),
        ).map("".join),
    )
)
def test_sign_in_never_redirects_to_another_site(web, target):
    """Whatever `next` says, the sign-in redirects to a path on this site, never to a URL a
    browser would read as another host."""
    client = web.test_client()
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "edna", "password": "editor-password", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    # Browsers read "\" as "/" and drop tabs and newlines in URLs.
    as_read = location.replace("\\", "/").replace("\t", "").replace("\n", "").replace("\r", "")
    # ("" reloads the sign-in page, which sends a signed-in user to the project list.)
    assert as_read == "" or (as_read.startswith("/") and not as_read.startswith("//")), location
    assert urlsplit(as_read).netloc == "", location


@pytest.mark.parametrize("target", ["/\n", "/proofing/\r\nX-Injected: 1"])
def test_sign_in_with_a_line_break_in_next_lands_on_the_projects(web, target):
    """A `next` with a line break (which Werkzeug refuses in a Location header) is ignored
    like any unsafe one: a 302 to the project list, not a 500."""
    client = web.test_client()
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "edna", "password": "editor-password", "csrf_token": csrf_token(client)},
    )
    assert (response.status_code, response.headers["Location"]) == (302, "/proofing/")


def test_unknown_user_session_id_is_signed_out(web):
    """A session naming a user id that does not exist is treated as signed out."""
    client = web.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(uuid.uuid4().int % 10_000 + 10_000)
    assert client.get("/proofing/").status_code == 302
