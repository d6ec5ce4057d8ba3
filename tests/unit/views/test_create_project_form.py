"""The new-project form (app/views/projects.py `create`): several page images in its
`multiple` file input, a ZIP, the orientation checkbox, and bad input answered with a
message on the form (400) that leaves nothing behind."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.models import Project
from tests.support import CORPUS, login, upload_files, upload_form


def png(width: int = 30, height: int = 40) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, format="PNG", dpi=(300, 300))
    return out.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


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
        [("page10.png", png(10)), ("page9.png", png(9)), ("page1.png", png(1))],
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
    response = upload_form(signed_in, "book.zip", zip_of({"a/p1.png": png(), "a/p2.png": png()}))
    assert response.status_code == 302
    assert project(app, "uploaded").source_page_count == 2


def test_the_orientation_checkbox_is_kept_on_the_project(app, signed_in, enqueued):
    upload_form(signed_in, "p.png", png(), slug="turn-me", detect_orientation="on")
    upload_form(signed_in, "p.png", png(), slug="leave-me")
    assert project(app, "turn-me").detect_orientation is True
    assert project(app, "leave-me").detect_orientation is False


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ([("book.zip", zip_of({"../../etc/p.png": png()}))], ["leaves its folder"]),
        ([("book.zip", zip_of({"p1.png": png(), "in.zip": zip_of({"p.png": png()})}))],
         ["another archive", "in.zip"]),
        ([("book.zip", zip_of({"readme.txt": b"x"}))], ["readme.txt", "not a PNG"]),
        ([("book.zip", zip_of({}))], ["no page images"]),
        ([("book.zip", zip_of({"p.png": b"\0" * (40 * 1024 * 1024)}))], ["ZIP bomb"]),
        ([("a.png", png()), ("b.docx", b"PK\x03\x04 word")], ["b.docx", "archive"]),
        ([("a.png", png()), ("book.pdf", (CORPUS / "trivial.pdf").read_bytes())],
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
