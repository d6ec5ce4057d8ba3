"""The new-project form (app/views/projects.py `create`): several page images in its
`multiple` file input, a ZIP, the orientation checkbox, and bad input answered with a
message on the form (400) that leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.models import Job, JobKind, Project
from tests.support import CORPUS, blank_png, login, upload_files, upload_form, zip_of


@pytest.fixture
def signed_in(client, editor):
    assert login(client, "edna", "editor-password").status_code == 302
    return client


def project(app, slug: str) -> Project | None:
    with app.app_context():
        return db.session.scalar(select(Project).filter_by(slug=slug))


def nothing_left(app, enqueued, slug: str) -> bool:
    with app.app_context():
        rows = db.session.scalar(select(func.count(Project.id)).filter_by(slug=slug))
    projects_dir = Path(app.config["DATA_DIR"]) / "projects"
    files = list(projects_dir.iterdir()) if projects_dir.exists() else []
    return rows == 0 and files == [] and enqueued == []


def test_the_form_takes_several_files_and_offers_orientation_detection(signed_in):
    html = signed_in.get("/proofing/create-project").get_data(as_text=True)
    assert 'type="file" name="source" multiple' in html
    assert ".zip" in html
    assert 'name="detect_orientation"' in html


def test_several_page_images_make_one_project(app, signed_in, enqueued):
    response = upload_files(
        signed_in,
        [("page10.png", blank_png(10)), ("page9.png", blank_png(9)), ("page1.png", blank_png(1))],
        slug="pictures",
    )
    assert response.status_code == 302
    created = project(app, "pictures")
    assert created.source_page_count == 3
    stored = Path(app.config["DATA_DIR"]) / "projects" / "pictures" / "source"
    widths = []
    for path in sorted(stored.iterdir()):
        with Image.open(path) as image:
            widths.append(image.width)
    assert widths == [1, 9, 10]


def test_a_zip_makes_one_project(app, signed_in, enqueued):
    response = upload_form(
        signed_in, "book.zip", zip_of({"a/p1.png": blank_png(), "a/p2.png": blank_png()})
    )
    assert response.status_code == 302
    assert project(app, "uploaded").source_page_count == 2


def test_the_orientation_checkbox_is_kept_on_the_project(app, signed_in, enqueued):
    upload_form(signed_in, "p.png", blank_png(), slug="turn-me", detect_orientation="on")
    upload_form(signed_in, "p.png", blank_png(), slug="leave-me")
    assert project(app, "turn-me").detect_orientation is True
    assert project(app, "leave-me").detect_orientation is False


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ([("book.zip", zip_of({"../../etc/p.png": blank_png()}))], ["leaves its folder"]),
        ([("book.zip", zip_of({"p1.png": blank_png(), "in.zip": zip_of({"p.png": blank_png()})}))],
         ["another archive", "in.zip"]),
        ([("book.zip", zip_of({"readme.txt": b"x"}))], ["readme.txt", "not a PNG"]),
        ([("book.zip", zip_of({}))], ["no page images"]),
        ([("book.zip", zip_of({"p.png": b"\0" * (40 * 1024 * 1024)}))], ["ZIP bomb"]),
        ([("a.png", blank_png()), ("b.docx", b"PK\x03\x04 word")], ["b.docx", "archive"]),
        ([("a.png", blank_png()), ("book.pdf", (CORPUS / "trivial.pdf").read_bytes())],
         ["book.pdf", "on its own"]),
    ],
    ids=["escaping-path", "nested-zip", "text-member", "empty-zip", "bomb", "docx", "pdf-among"],
)  # fmt: skip
def test_bad_uploads_are_refused_on_the_form_and_leave_nothing(
    app, signed_in, enqueued, files, words
):
    response = upload_files(signed_in, files, slug="refused")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    for word in words:
        assert word in page.replace("&#39;", "'"), page
    assert nothing_left(app, enqueued, "refused")


def test_no_file_chosen_is_refused(app, signed_in, enqueued):
    response = upload_files(signed_in, [], slug="empty-handed")
    assert response.status_code == 400
    assert "Choose a PDF, a ZIP, or one or more page images" in response.get_data(as_text=True)


def test_ocr_from_the_upload_is_offered_and_on_by_default(signed_in):
    html = signed_in.get("/proofing/create-project").get_data(as_text=True)
    assert 'name="ocr" id="ocr" checked' in html
    assert 'name="engine" value="tesseract" checked' in html


def test_an_upload_with_ocr_starts_a_job_waiting_for_its_pages(app, signed_in, enqueued):
    """One form: the project, and an OCR job whose pages wait for the split; the user is
    taken to the job's progress page."""
    response = upload_files(
        signed_in,
        [("p1.png", blank_png()), ("p2.png", blank_png())],
        slug="with-ocr",
        ocr="on",
        engine="tesseract",
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/proofing/with-ocr/batch-ocr")
    with app.app_context():
        [job] = db.session.scalars(select(Job).filter_by(kind=JobKind.OCR)).all()
        assert (job.selection, job.total, job.engine) == ("upload", 2, "tesseract")
        assert [p.state for p in job.pages] == ["preparing", "preparing"]
    assert [name for name, _ in enqueued] == ["worker.tasks.split_source"]
    progress = signed_in.get("/proofing/with-ocr/batch-ocr").get_data(as_text=True)
    assert "preparing" in progress.lower()


def test_an_unknown_engine_leaves_nothing_behind(app, signed_in, enqueued):
    response = upload_files(
        signed_in, [("p1.png", blank_png())], slug="bad-engine", ocr="on", engine="nonesuch"
    )
    assert response.status_code == 400
    assert "Unknown OCR engine &#39;nonesuch&#39;." in response.get_data(as_text=True)
    assert nothing_left(app, enqueued, "bad-engine")


def test_without_ocr_the_upload_only_prepares_pages(app, signed_in, enqueued):
    response = upload_files(signed_in, [("p1.png", blank_png())], slug="no-ocr", engine="tesseract")
    assert response.status_code == 302 and response.headers["Location"].endswith("/no-ocr/")
    with app.app_context():
        assert db.session.scalar(select(func.count(Job.id))) == 0
