"""The bad-input table of docs/reliability.md, made by sending each input through the web app.

    .venv/bin/python -m tests.chaos.bad_input      # prints the Markdown table (`make chaos` too)

Each row is what an editor sees after giving the app that input: the message on the page
(the form's error line, or the error page), the HTTP status, and whether anything was left
behind (a project row, files under DATA_DIR, a job, a task). The tests that hold each of these
to account are in tests/unit/test_hostile_input.py, test_projects.py, test_rendering.py and
tests/unit/views/; this only writes down the words.
"""

from __future__ import annotations

import html
import io
import logging
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
from PIL import Image
from sqlalchemy import func, select

from app import queue
from app.extensions import db
from app.job_tracking import job_key
from app.models import Job, Project
from app.services.accounts import create_user
from tests.bench import books
from tests.support import (
    CORPUS,
    blank_png,
    csrf_token,
    login,
    make_app,
    upload_files,
    upload_form,
    use_fakeredis,
    zip_of,
)

MULTIPAGE = CORPUS / "multipage.pdf"


def _pdf_bytes(build: Callable[[Path], None]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.pdf"
        build(path)
        return path.read_bytes()


def _encrypted(user: str) -> bytes:
    def build(path: Path) -> None:
        with pikepdf.open(CORPUS / "trivial.pdf") as pdf:
            pdf.save(path, encryption=pikepdf.Encryption(user=user, owner="owner"))

    return _pdf_bytes(build)


def _no_pages() -> bytes:
    def build(path: Path) -> None:
        with pikepdf.new() as pdf:
            pdf.save(path)

    return _pdf_bytes(build)


def _huge_page() -> bytes:
    def build(path: Path) -> None:
        pdf = pdfium.PdfDocument.new()
        pdf.new_page(8400, 8400).close()
        pdf.save(str(path))
        pdf.close()

    return _pdf_bytes(build)


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("L", (850, 1100), 255).save(out, format=fmt, dpi=(100, 100))
    return out.getvalue()


def _page(width: int = 850, height: int = 1100) -> bytes:
    return blank_png(width, height, dpi=100)


def _g4_tiff() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return books.write_g4_tiff(Path(tmp), pages=2).read_bytes()


def _damaged_zip() -> bytes:
    whole = zip_of({"p1.png": _page(), "p2.png": _page()})
    return whole[: len(whole) - 30]


#: (what the editor uploads, file name, bytes)
UPLOADS: list[tuple[str, str, Callable[[], bytes]]] = [
    ("a text file named .pdf", "notes.pdf", lambda: b"Chapter 1\nnot a scan\n"),
    ("0 bytes", "empty.pdf", lambda: b""),
    (
        "a truncated PDF (multipage.pdf cut in half)",
        "half.pdf",
        lambda: MULTIPAGE.read_bytes()[: MULTIPAGE.stat().st_size // 2],
    ),
    ("a broken xref (corpus invalid.pdf)", "invalid.pdf", (CORPUS / "invalid.pdf").read_bytes),
    ("an encrypted PDF with a user password", "locked.pdf", lambda: _encrypted("reader")),
    ("an encrypted PDF with only an owner password", "owner.pdf", lambda: _encrypted("")),
    ("a PDF with no pages", "none.pdf", _no_pages),
    ("an 8400 x 8400 pt page (1.2 Gpx at 300 DPI)", "huge.pdf", _huge_page),
    ("a blank page (corpus blank.pdf)", "blank.pdf", (CORPUS / "blank.pdf").read_bytes),
    ("a PNG scan", "page.png", lambda: _image("PNG")),
    ("a JPEG scan", "page.jpg", lambda: _image("JPEG")),
    ("a TIFF scan", "page.tif", lambda: _image("TIFF")),
    ("a JPEG renamed .pdf", "photo.pdf", lambda: _image("JPEG")),
    ("a bilevel Group 4 TIFF of 2 pages", "book.tif", _g4_tiff),
    (
        "a ZIP of 3 page images in a folder",
        "pages.zip",
        lambda: zip_of({f"book/p{n}.png": _page() for n in (1, 2, 10)}),
    ),
    (
        "a ZIP bomb (a 40 MiB member packed 1000:1)",
        "bomb.zip",
        lambda: zip_of({"p1.png": b"\0" * (40 * 1024 * 1024)}),
    ),
    (
        "a ZIP inside the ZIP",
        "nested.zip",
        lambda: zip_of({"p1.png": _page(), "more.zip": zip_of({"p2.png": _page()})}),
    ),
    ("a ZIP member named ../evil.png", "escape.zip", lambda: zip_of({"../evil.png": _page()})),
    (
        "a ZIP member named /etc/evil.png",
        "absolute.zip",
        lambda: zip_of({"/etc/evil.png": _page()}),
    ),
    ("a ZIP without images", "empty.zip", lambda: zip_of({"book/": b""})),
    (
        "a ZIP with a text file among the images",
        "mixed.zip",
        lambda: zip_of({"p1.png": _page(), "notes.txt": b"scanned 2024"}),
    ),
    ("a damaged ZIP (cut short)", "cut.zip", _damaged_zip),
]
#: (what the editor chooses in the form's multiple file input, [(file name, bytes)...])
SEVERAL: list[tuple[str, Callable[[], list[tuple[str, bytes]]]]] = [
    (
        "3 page images of mixed sizes",
        lambda: [
            ("page10.png", _page(400, 500)),
            ("page2.png", _page()),
            ("page1.jpg", _image("JPEG")),
        ],
    ),
    (
        "page images and a text file",
        lambda: [("page1.png", _page()), ("readme.txt", b"scanned 2024")],
    ),
    (
        "page images and a PDF",
        lambda: [("page1.png", _page()), ("book.pdf", (CORPUS / "trivial.pdf").read_bytes())],
    ),
    ("page images and a 2-page TIFF", lambda: [("page1.png", _page()), ("rest.tif", _g4_tiff())]),
]
BAD_SLUGS = ["a/b", "..", "my book", "book*", "grantha-ग्रन्थ", "Book", "-book", "a" * 65]


def message_of(response) -> str:
    """The words the user reads: the form's error line, else the error page's message."""
    text = response.get_data(as_text=True)
    for pattern in (
        r'<p class="flash flash-error"[^>]*>(.*?)</p>',
        r'<section class="card error-card">\s*<h1>(.*?)</h1>\s*<p>(.*?)</p>',
    ):
        match = re.search(pattern, text, re.S)
        if match:
            return ": ".join(html.unescape(part.strip()) for part in match.groups())
    return ""


def upload(client, slug: str, filename: str, data: bytes):
    return upload_form(client, filename, data, slug=slug, title=slug)


def left_behind(app, slug: str) -> str:
    with app.app_context():
        rows = db.session.scalar(select(func.count(Project.id)).filter_by(slug=slug))
    projects = Path(app.config["DATA_DIR"]) / "projects"
    directory = (projects / slug).resolve()
    # `..` and the like name no directory of a project: nothing of theirs can exist.
    files = directory.parent == projects.resolve() and directory.exists()
    staged = list(projects.glob(".incoming-*"))
    if not rows and not files and not staged:
        return "nothing"
    return f"project row: {rows}, files: {'yes' if files else 'no'}, staged: {len(staged)}"


def build_app(root: Path, **overrides):
    app = make_app(root, **overrides)
    use_fakeredis(app)
    with app.app_context():
        create_user("edna", "editor-password", "editor")
    client = app.test_client()
    assert login(client, "edna", "editor-password").status_code == 302
    return app, client


def rows(root: Path) -> list[tuple[str, str, str, str]]:
    table = []
    app, client = build_app(root / "main")
    for n, (what, filename, make) in enumerate(UPLOADS):
        slug = f"input-{n}"
        response = upload(client, slug, filename, make())
        table.append(_outcome(app, slug, what, response))
    for n, (what, make) in enumerate(SEVERAL):
        slug = f"several-{n}"
        response = upload_files(client, make(), slug=slug, title=slug)
        table.append(_outcome(app, slug, f"several files: {what}", response))
    upload(client, "taken", "multipage.pdf", MULTIPAGE.read_bytes())
    response = upload(client, "taken", "trivial.pdf", (CORPUS / "trivial.pdf").read_bytes())
    table.append(
        (
            "a slug already taken",
            str(response.status_code),
            message_of(response),
            "the first project, unchanged",
        )
    )
    for slug in BAD_SLUGS:
        response = upload(client, slug, "trivial.pdf", (CORPUS / "trivial.pdf").read_bytes())
        table.append(
            (
                f"slug `{slug}`",
                str(response.status_code),
                message_of(response),
                left_behind(app, slug),
            )
        )
    table.extend(batch_ocr_rows(app, client))
    small, small_client = build_app(root / "small", MAX_CONTENT_LENGTH=1024 * 1024)
    response = upload(small_client, "too-big", "big.pdf", b"%PDF-1.4\n" + b"0" * 2 * 1024 * 1024)
    table.append(
        (
            "a file over the upload limit (MAX_UPLOAD_MB, here 1 MB)",
            str(response.status_code),
            message_of(response),
            left_behind(small, "too-big"),
        )
    )
    return table


def _outcome(app, slug: str, what: str, response) -> tuple[str, str, str, str]:
    if response.status_code == 302:
        with app.app_context():
            pages = db.session.scalar(select(Project.source_page_count).filter_by(slug=slug))
        outcome = f"accepted: a project of {pages} page{'s' if pages != 1 else ''}"
        return (what, str(response.status_code), outcome, "the project")
    return (what, str(response.status_code), message_of(response), left_behind(app, slug))


def batch_ocr_rows(app, client) -> list[tuple[str, str, str, str]]:
    from app.services.projects import split_source

    with app.app_context():
        project = db.session.scalar(select(Project).filter_by(slug="taken"))
        split_source(project.id)
    table = []
    url = "/proofing/taken/batch-ocr"
    for what, form in (
        ("engine `abbyy` (unknown)", {"engine": "abbyy", "language": "eng"}),
        (
            "language `xyz` (no Tesseract data installed)",
            {"engine": "tesseract", "language": "xyz"},
        ),
        ("language `eng;rm -rf /`", {"engine": "tesseract", "language": "eng;rm -rf /"}),
        ("page selection `everything`", {"engine": "tesseract", "pages": "everything"}),
    ):
        response = client.post(url, data={"csrf_token": csrf_token(client, url), **form})
        with app.app_context():
            jobs = db.session.scalar(select(func.count(Job.id)))
        behind = (
            "nothing"
            if not jobs and not app.extensions["redis"].exists(job_key("taken"))
            else "a job"
        )
        table.append((what, str(response.status_code), message_of(response), behind))
    for what, raw in (
        ("corrupt JSON under `ocr_task:taken`", b"{not json"),
        (
            "a hand-edited record naming no job",
            b'{"task_id": "gone", "engine": "tesseract", '
            b'"started_at": "2026-01-01T00:00:00", "project_slug": "taken", "total": 3}',
        ),
    ):
        app.extensions["redis"].set(job_key("taken"), raw, ex=3600)
        response = client.get(url)
        shown = "the start form" if 'id="start-form"' in response.get_data(as_text=True) else "?"
        key = "key deleted" if not app.extensions["redis"].exists(job_key("taken")) else "key kept"
        table.append((what, str(response.status_code), f"{shown} (logged)", key))
    return table


def markdown(table: list[tuple[str, str, str, str]]) -> str:
    lines = ["| input | HTTP | what the user sees | left behind |", "|---|---|---|---|"]
    for row in table:
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    return "\n".join(lines)


def main() -> int:
    # Only the table on the terminal: the migrations' log (Alembic configures its own
    # handlers) and the app's warnings about the corrupt records it is fed are not news.
    logging.disable(logging.WARNING)
    queue_sent: list = []
    queue.enqueue = lambda name, **kwargs: queue_sent.append(name) or "task-id"
    with tempfile.TemporaryDirectory() as tmp:
        print(markdown(rows(Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
