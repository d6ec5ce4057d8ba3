"""Projects from every kind of upload (app/services/projects.py with app/sources.py): what is
stored, what the split records on each page (its DPI, its turn), and that bad input leaves
nothing behind. The queue is recorded (`enqueued`); split tasks are run by direct calls."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.models import Page, Project, ProjectStatus
from app.services import projects
from app.services.projects import ProjectError, create_project, render_pages, split_source
from app.sources import Upload
from tests.bench import books


def png(width: int, height: int, mode: str = "L", dpi: int = 300) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), 255).save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


def create(slug: str, uploads: list[Upload], **options) -> Project:
    return create_project(
        slug=slug, title=slug, language="eng", uploads=uploads, created_by=None, **options
    )


def pages_of(project: Project) -> list[Page]:
    return list(
        db.session.scalars(select(Page).filter_by(project_id=project.id).order_by(Page.number))
    )


def project_dir(app, slug: str) -> Path:
    return Path(app.config["DATA_DIR"]) / "projects" / slug


def assert_nothing_left(app, enqueued, slug: str) -> None:
    db.session.rollback()
    assert db.session.scalar(select(func.count(Project.id)).filter_by(slug=slug)) == 0
    projects_dir = Path(app.config["DATA_DIR"]) / "projects"
    assert not projects_dir.exists() or list(projects_dir.iterdir()) == []
    assert enqueued == []


def test_several_images_become_pages_in_natural_order_with_their_dpi(app, enqueued):
    """page2 before page10, each page its own size (a mix is fine) and its own DPI."""
    chosen = [
        Upload("page10.png", io.BytesIO(png(30, 40, dpi=200))),
        Upload("page2.png", io.BytesIO(png(50, 60, "1", dpi=400))),
        Upload("page1.png", io.BytesIO(png(70, 80, "RGB"))),
    ]
    project = create("several", chosen)
    assert project.source_page_count == 3
    assert project.source_filename == "3 page images (page1.png … page10.png)"
    stored = project_dir(app, "several") / "source"
    assert sorted(p.name for p in stored.iterdir()) == ["0001.png", "0002.png", "0003.png"]

    split_source(project.id)

    db.session.refresh(project)
    assert project.status == ProjectStatus.READY, project.status_message
    assert [(p.width, p.height, p.dpi, p.rotation) for p in pages_of(project)] == [
        (70, 80, 300, 0),
        (50, 60, 400, 0),
        (30, 40, 200, 0),
    ]
    with Image.open(project_dir(app, "several") / "pages" / "00002.png") as image:
        assert image.mode == "1"


def test_a_zip_of_page_images_is_split_like_a_folder(app, enqueued):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for n in (3, 1, 2):
            zf.writestr(f"scans/p{n}.png", png(10 * n, 10))
    archive.seek(0)
    project = create_project(
        slug="zipped", title="", language="eng", source=archive, filename="scans.zip",
        created_by=None,
    )  # fmt: skip
    assert (project.source_filename, project.source_page_count) == ("scans.zip", 3)
    assert not list(project_dir(app, "zipped").glob("*.zip")), "the ZIP is not kept twice"
    split_source(project.id)
    assert [p.width for p in pages_of(project)] == [10, 20, 30]


def test_a_bilevel_tiff_is_split_into_1_bit_pages_at_300_dpi(app, enqueued, tmp_path):
    tiff = books.write_g4_tiff(tmp_path, pages=2)
    with tiff.open("rb") as fh:
        project = create_project(
            slug="g4", title="", language="eng", source=fh, filename="book.tif", created_by=None
        )
    split_source(project.id)
    pages = pages_of(project)
    assert [p.dpi for p in pages] == [300, 300]
    for page in pages:
        with Image.open(Path(app.config["DATA_DIR"]) / page.image_path) as image:
            assert (image.mode, image.size) == ("1", (page.width, page.height))


def test_a_redelivered_split_finds_the_folder_again(app, enqueued):
    """A chunk whose task ran again (a worker killed mid-split) reads the same stored folder."""
    project = create("again", [Upload(f"p{n}.png", io.BytesIO(png(20, 20))) for n in (1, 2)])
    render_pages(project.id, 0, 1)
    render_pages(project.id, 0, 2)
    db.session.refresh(project)
    assert project.status == ProjectStatus.READY
    assert len(pages_of(project)) == 2


@pytest.mark.parametrize(
    ("uploads", "words"),
    [
        ([("a.png", png(9, 9)), ("notes.txt", b"hello")], ["notes.txt", "not a PNG"]),
        ([("a.png", png(9, 9)), ("b.pdf", b"%PDF-1.4\n")], ["b.pdf", "on its own"]),
        ([], ["Choose"]),
    ],
    ids=["text-among-images", "pdf-among-images", "nothing"],
)
def test_bad_input_leaves_nothing(app, enqueued, uploads, words):
    with pytest.raises(ProjectError) as caught:
        create("bad", [Upload(name, io.BytesIO(data)) for name, data in uploads])
    for word in words:
        assert word in str(caught.value)
    assert_nothing_left(app, enqueued, "bad")


def test_a_zip_bomb_leaves_nothing(app, enqueued):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("p1.png", b"\0" * (40 * 1024 * 1024))
    archive.seek(0)
    with pytest.raises(ProjectError, match="ZIP bomb"):
        create_project(
            slug="bomb", title="", language="eng", source=archive, filename="b.zip",
            created_by=None,
        )  # fmt: skip
    assert_nothing_left(app, enqueued, "bomb")


def test_orientation_is_detected_only_when_the_project_asks(app, enqueued, monkeypatch):
    """With detect_orientation on, every page is shown to the detector before it is stored,
    and the turn it gives is applied and recorded; off, the detector is never run."""
    asked = []

    def detector(path, *, cmd):
        asked.append((path.name, cmd))
        return 90

    monkeypatch.setattr(projects, "detect_rotation", detector)
    plain = create("plain", [Upload("p.png", io.BytesIO(png(40, 20)))])
    split_source(plain.id)
    assert asked == []
    assert [(p.width, p.height, p.rotation) for p in pages_of(plain)] == [(40, 20, 0)]

    turned = create("turned", [Upload("p.png", io.BytesIO(png(40, 20)))], detect_orientation=True)
    assert turned.detect_orientation is True
    split_source(turned.id)
    assert [cmd for _, cmd in asked] == [app.config["TESSERACT_CMD"]]
    assert [(p.width, p.height, p.rotation) for p in pages_of(turned)] == [(20, 40, 90)]


@pytest.mark.parametrize(("slug", "language"), [("book\n", "eng"), ("book", "eng\n")])
def test_a_trailing_newline_is_no_slug_or_language(app, enqueued, slug, language):
    """Found by hypothesis in test_hostile_input.py: `$` matches before a final newline."""
    page = Upload("p.png", io.BytesIO(png(9, 9)))
    with pytest.raises(ProjectError):
        create_project(slug=slug, title="", language=language, uploads=[page], created_by=None)
    assert_nothing_left(app, enqueued, slug)
