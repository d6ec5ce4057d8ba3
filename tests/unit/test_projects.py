"""Creating projects and splitting their sources (app/services/projects.py), on the corpus.

The queue is recorded (`enqueued`), so split tasks are run by calling the service directly.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import delete, func, select

from app import queue, task_names
from app.extensions import db
from app.models import Page, Project, ProjectStatus
from app.services import projects, retention
from app.services.projects import ProjectError, create_project, render_pages, split_source
from tests.support import BOTH_DATABASES, CORPUS, scan_pdf, split_project

MULTIPAGE = CORPUS / "multipage.pdf"
MULTIPAGE_PAGES = 6
BOOK_PAGES = 5


@pytest.fixture(autouse=True)
def small_pages(app):
    """Render small page images: these tests are about records and files, not resolution."""
    app.config["RENDER_MAX_PIXELS"] = 1_000_000


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """A small 5-page scan (pages of different sizes): splits in a fraction of multipage.pdf's
    time, whose 9000 px page 2 PDFium must decode whatever size it renders at."""
    path = tmp_path_factory.mktemp("book") / "book.pdf"
    return scan_pdf(path, [(300 + 20 * n, 400 - 10 * n) for n in range(BOOK_PAGES)])


def create(slug: str, source: Path = MULTIPAGE, **kwargs) -> Project:
    options = {"title": f"Title of {slug}", "language": "eng", "created_by": None, **kwargs}
    with source.open("rb") as fh:
        return create_project(slug=slug, source=fh, filename=source.name, **options)


def data_dir(app) -> Path:
    return Path(app.config["DATA_DIR"])


def project_count() -> int:
    return db.session.scalar(select(func.count(Project.id)))


def pages_of(project: Project) -> list[Page]:
    return list(
        db.session.scalars(select(Page).filter_by(project_id=project.id).order_by(Page.number))
    )


def assert_nothing_left(app, enqueued, slug: str) -> None:
    db.session.rollback()
    assert db.session.scalar(select(Project).filter_by(slug=slug)) is None
    projects_dir = data_dir(app) / "projects"
    assert not projects_dir.exists() or list(projects_dir.iterdir()) == []
    assert data_dir(app).is_dir()
    assert enqueued == []


def split_tasks(enqueued) -> list[dict]:
    return [kwargs for name, kwargs in enqueued if name == task_names.SPLIT_SOURCE]


# -- creating ----------------------------------------------------------------------------


@BOTH_DATABASES
def test_create_then_split_gives_pages_with_images(app, enqueued):
    """A project from multipage.pdf stores its source, enqueues one split, and splits in 6 pages."""
    project = create("create-split", title="  A Book  ")
    directory = data_dir(app) / "projects" / "create-split"
    assert (directory / "source.pdf").read_bytes() == MULTIPAGE.read_bytes()
    assert project.source_page_count == MULTIPAGE_PAGES
    assert project.status == ProjectStatus.SPLITTING
    assert (project.title, project.source_filename) == ("A Book", "multipage.pdf")
    assert enqueued == [(task_names.SPLIT_SOURCE, {"project_id": project.id})]

    split_source(project.id)

    db.session.refresh(project)
    assert project.status == ProjectStatus.READY, project.status_message
    pages = pages_of(project)
    assert [page.number for page in pages] == list(range(1, MULTIPAGE_PAGES + 1))
    for page in pages:
        image_path = data_dir(app) / page.image_path
        assert not Path(page.image_path).is_absolute()
        assert image_path.is_relative_to(directory)
        with Image.open(image_path) as image:
            assert image.size == (page.width, page.height)
        assert (page.version, page.text) == (0, "")
    assert len(enqueued) == 1  # six pages fit one chunk: no render_pages task


def test_title_defaults_to_the_slug(app, enqueued):
    """A project created without a title is named by its slug."""
    assert create("untitled", title="   ").title == "untitled"


@pytest.mark.parametrize(
    "slug",
    ["", "A", "a/b", "..", "has space", "star*", "ġita", "a" * 65, "-lead", "trail-"],
    ids=[
        "empty",
        "upper",
        "slash",
        "dotdot",
        "space",
        "star",
        "non-ascii",
        "65-chars",
        "leading-hyphen",
        "trailing-hyphen",
    ],
)
def test_bad_slug_is_refused_and_leaves_nothing(app, enqueued, slug):
    """A slug that is not 1-64 of a-z, 0-9 and inner hyphens is refused before anything is made."""
    with pytest.raises(ProjectError, match="slug"):
        create(slug)
    assert_nothing_left(app, enqueued, slug)


@pytest.mark.parametrize("slug", ["a", "a" * 64, "gita-press-1942", "0-9"])
def test_good_slugs_are_accepted(app, enqueued, slug):
    """The shortest, the longest and hyphenated slugs are valid."""
    assert create(slug, source=CORPUS / "trivial.pdf").slug == slug


def test_duplicate_slug_is_refused_and_keeps_the_first_project(app, enqueued):
    """A second project with a taken slug is refused; the first keeps its row and its source."""
    first = create("twice")
    source = data_dir(app) / "projects" / "twice" / "source.pdf"
    with pytest.raises(ProjectError, match="already exists"):
        create("twice", source=CORPUS / "trivial.pdf")
    assert project_count() == 1
    assert source.read_bytes() == MULTIPAGE.read_bytes()
    assert split_tasks(enqueued) == [{"project_id": first.id}]


def test_upload_losing_a_race_for_its_slug_leaves_the_winners_files(app, enqueued, monkeypatch):
    """Two uploads with one slug pass the "already exists" check together; the one whose
    commit loses is refused as a duplicate and removes only its own upload, never the files of
    the project that won (both are stored apart until their row is committed)."""
    real_document = projects.SourceDocument

    def winner_commits_meanwhile(path):
        monkeypatch.setattr(projects, "SourceDocument", real_document)

        def other_upload():
            with app.app_context():
                create("race")  # multipage.pdf
                db.session.remove()

        thread = threading.Thread(target=other_upload)
        thread.start()
        thread.join(30)
        return real_document(path)

    monkeypatch.setattr(projects, "SourceDocument", winner_commits_meanwhile)
    with pytest.raises(ProjectError, match="already exists"):
        create("race", source=CORPUS / "trivial.pdf")
    assert project_count() == 1
    directory = data_dir(app) / "projects" / "race"
    assert (directory / "source.pdf").read_bytes() == MULTIPAGE.read_bytes()
    assert [p.name for p in (data_dir(app) / "projects").iterdir()] == ["race"]
    assert len(split_tasks(enqueued)) == 1


def test_an_upload_removes_staging_left_by_a_crashed_one_and_keeps_a_running_one(app, enqueued):
    """A staging directory older than a day is a crashed upload's: the next upload removes
    it. A recent one may be an upload still running, and stays."""
    projects_dir = data_dir(app) / "projects"
    stale, recent = projects_dir / ".incoming-stale", projects_dir / ".incoming-recent"
    for directory in (stale, recent):
        directory.mkdir(parents=True)
        (directory / "source.pdf").write_bytes(b"%PDF-1.4 partial")
    day_and_more = time.time() - retention.STALE_STAGING_SECONDS - 60
    os.utime(stale, (day_and_more, day_and_more))

    create("after-crash", source=CORPUS / "trivial.pdf")

    assert not stale.exists()
    assert recent.exists()


@pytest.mark.parametrize(
    "language", ["", "e", "hin+", "../eng", "eng;rm", "a" * 17, "eng+hin+san+tam+mar"]
)
def test_bad_language_is_refused_and_leaves_nothing(app, enqueued, language):
    """The language must look like Tesseract codes joined by +; anything else is refused."""
    with pytest.raises(ProjectError, match="language"):
        create("bad-language", language=language)
    assert_nothing_left(app, enqueued, "bad-language")


def write_truncated(tmp_path: Path) -> Path:
    data = MULTIPAGE.read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: len(data) // 2])
    return path


def write_empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    return path


def write_text(tmp_path: Path) -> Path:
    path = tmp_path / "book.txt"
    path.write_text("not a scan\n")
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp_path: CORPUS / "invalid.pdf", "damaged"),
        (write_truncated, "damaged"),
        (write_empty, "empty"),
        (write_text, "neither a PDF"),
    ],
    ids=["invalid", "truncated", "empty", "text"],
)
def test_unusable_file_is_refused_and_leaves_nothing(app, enqueued, tmp_path, make, words):
    """A file that cannot become pages is refused with the reason; no row, directory or task."""
    with pytest.raises(ProjectError, match=words):
        create("unusable", source=make(tmp_path))
    assert_nothing_left(app, enqueued, "unusable")


def test_queue_down_at_creation_leaves_nothing(app, monkeypatch):
    """If the split cannot be enqueued the project is undone, so no project waits forever."""

    def unavailable(*args, **kwargs):
        raise queue.QueueUnavailable()

    monkeypatch.setattr(queue, "enqueue", unavailable)
    with pytest.raises(queue.QueueUnavailable):
        create("no-queue")
    assert_nothing_left(app, [], "no-queue")


# -- splitting ---------------------------------------------------------------------------


@pytest.fixture
def ready_book(app, enqueued, book) -> Project:
    """`book` split into a ready project; the tasks its creation sent are forgotten."""
    project = split_project("split-me", book)
    enqueued.clear()
    return project


def snapshot(app, project: Project) -> dict[int, tuple[int, int]]:
    """Page number -> (row id, image mtime in ns): what a re-render or re-insert would change."""
    return {
        page.number: (page.id, (data_dir(app) / page.image_path).stat().st_mtime_ns)
        for page in pages_of(project)
    }


def test_split_again_adds_nothing(app, enqueued, ready_book):
    """A redelivered split of a ready project changes nothing and sends nothing."""
    before = snapshot(app, ready_book)
    split_source(ready_book.id)
    assert snapshot(app, ready_book) == before
    assert enqueued == []


def test_split_of_a_fully_recorded_project_renders_nothing_and_marks_it_ready(
    app, enqueued, ready_book
):
    """A split killed after its last page but before marking the project ends it, re-rendering
    nothing."""
    before = snapshot(app, ready_book)
    ready_book.status = ProjectStatus.SPLITTING
    db.session.commit()
    split_source(ready_book.id)
    db.session.refresh(ready_book)
    assert ready_book.status == ProjectStatus.READY
    assert snapshot(app, ready_book) == before
    assert enqueued == []


def test_interrupted_split_resumes_with_the_missing_pages(app, enqueued, ready_book):
    """A split killed after 3 of 5 pages renders only pages 4 and 5 when redelivered."""
    before = snapshot(app, ready_book)
    for page in pages_of(ready_book)[3:]:
        (data_dir(app) / page.image_path).unlink()
    db.session.execute(delete(Page).where(Page.project_id == ready_book.id, Page.number > 3))
    ready_book.status = ProjectStatus.SPLITTING
    db.session.commit()

    split_source(ready_book.id)

    db.session.refresh(ready_book)
    assert ready_book.status == ProjectStatus.READY
    after = snapshot(app, ready_book)
    assert sorted(after) == list(range(1, BOOK_PAGES + 1))
    assert {n: after[n] for n in range(1, 4)} == {n: before[n] for n in range(1, 4)}


def test_long_source_is_split_in_chunks_across_tasks(app, enqueued, monkeypatch, book):
    """Pages beyond the first chunk go to render_pages tasks; the last chunk marks it ready."""
    monkeypatch.setattr(projects, "SPLIT_CHUNK_PAGES", 2)
    project = create("chunked", source=book)
    enqueued.clear()

    split_source(project.id)

    assert [n.number for n in pages_of(project)] == [1, 2]
    chunks = [kwargs for name, kwargs in enqueued if name == task_names.RENDER_PAGES]
    assert chunks == [
        {"project_id": project.id, "start": 2, "stop": 4},
        {"project_id": project.id, "start": 4, "stop": 5},
    ]
    render_pages(**chunks[1])  # chunks may finish in any order
    db.session.refresh(project)
    assert project.status == ProjectStatus.SPLITTING
    render_pages(**chunks[0])
    db.session.refresh(project)
    assert project.status == ProjectStatus.READY
    assert [n.number for n in pages_of(project)] == list(range(1, BOOK_PAGES + 1))


def test_redelivered_chunk_adds_no_duplicate_pages(app, enqueued, ready_book):
    """Rendering a chunk whose pages are already recorded leaves one row per page."""
    ready_book.status = ProjectStatus.SPLITTING
    db.session.commit()
    render_pages(ready_book.id, 0, BOOK_PAGES)
    assert [p.number for p in pages_of(ready_book)] == list(range(1, BOOK_PAGES + 1))


def test_source_that_fails_during_split_marks_the_project_failed(app, enqueued, tmp_path):
    """A source damaged after upload fails the project with a reason the user can read."""
    project = create("damaged-later")
    source = data_dir(app) / "projects" / "damaged-later" / "source.pdf"
    source.write_bytes(write_truncated(tmp_path).read_bytes())

    split_source(project.id)

    db.session.refresh(project)
    assert project.status == ProjectStatus.FAILED
    assert "damaged" in project.status_message
    assert pages_of(project) == []


def test_missing_source_marks_the_project_failed(app, enqueued):
    """A source deleted from DATA_DIR fails the split with that reason instead of crashing."""
    project = create("source-gone")
    (data_dir(app) / "projects" / "source-gone" / "source.pdf").unlink()
    split_source(project.id)
    db.session.refresh(project)
    assert project.status == ProjectStatus.FAILED
    assert "missing" in project.status_message


def test_failed_project_is_not_split_further(app, enqueued, tmp_path):
    """A chunk task arriving after the project failed renders nothing."""
    project = create("failed-first")
    project.status = ProjectStatus.FAILED
    project.status_message = "failed elsewhere"
    db.session.commit()
    render_pages(project.id, 0, MULTIPAGE_PAGES)
    split_source(project.id)
    db.session.refresh(project)
    assert (project.status, project.status_message) == (ProjectStatus.FAILED, "failed elsewhere")
    assert pages_of(project) == []
