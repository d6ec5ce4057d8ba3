"""A format added to the registry (as pdf, tei, hocr and alto were) just works: what each
page's part is given, what the assembly is given, and the file's name and type, with nothing
outside app/exports/ knowing the format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import update

from app import cli
from app import exports as formats
from app.extensions import db
from app.models import Page
from app.services import exports
from app.services.exports import files


@dataclass(frozen=True)
class RecordingFormat:
    """A stand-in for a format like hOCR, under a name no real format has: a ZIP-named file
    whose parts say what they got."""

    name: str = "stand-in"
    label: str = "Stand-in format"
    extension: str = "zip"
    content_type: str = "application/zip"

    def render_part(self, page, meta) -> bytes:
        return json.dumps(
            {
                "number": page.number,
                "text": page.text,
                "boxes": page.boxes,
                "status": page.status,
                "image": str(page.image_path) if page.image_path else None,
                "absolute": page.image_path.is_absolute() if page.image_path else None,
                "size": [page.width, page.height],
                "dpi": page.dpi,
                "language": page.language,
                "meta": [meta.title, meta.slug, list(meta.languages), meta.exported_at.isoformat()],
            }
        ).encode()

    def assemble(self, parts, meta, out: Path) -> None:
        numbers = [part.number for part in parts]
        assert numbers == sorted(numbers)
        out.write_text(json.dumps([json.loads(part.path.read_text()) for part in parts]))


@pytest.fixture
def stand_in(monkeypatch):
    fmt = RecordingFormat()
    monkeypatch.setitem(formats.FORMATS, fmt.name, fmt)
    return fmt


def test_a_new_format_gets_each_pages_latest_state_and_one_export_time(
    app, book, run_tasks, stand_in
):
    project = book(
        slug="fmt-book", pages=3, statuses=["needs-work", "proofread-once", "proofread-twice"]
    )
    project.language = "san+eng"
    db.session.execute(
        update(Page)
        .where(Page.project_id == project.id, Page.number == 2)
        .values(ocr_boxes=[["word", 1, 2, 3, 4, 90]], dpi=300.0)
    )
    db.session.commit()
    outcome = exports.start_export(project, format_name="stand-in", min_status=None, user=None)
    run_tasks()
    export = exports.export_of(outcome.job_id)
    path = files.data_dir() / export.path
    assert path.name == "fmt-book-stand-in.zip"
    pages = json.loads(path.read_text())
    assert [p["number"] for p in pages] == [1, 2, 3]
    second = pages[1]
    assert second["text"] == "text of page 2"
    assert second["boxes"] == [["word", 1, 2, 3, 4, 90]]
    assert (second["status"], second["dpi"], second["language"]) == (
        "proofread-once",
        300.0,
        "san+eng",
    )
    assert second["absolute"] is True and Path(second["image"]).is_file()
    assert second["meta"][:3] == [project.title, "fmt-book", ["san", "eng"]]
    assert len({p["meta"][3] for p in pages}) == 1  # one export time for the whole file
    found = exports.download(project, export.id)
    assert (found.name, found.content_type) == ("fmt-book-stand-in.zip", "application/zip")


def test_the_cli_and_the_page_offer_every_registered_format(app, stand_in):
    """`--format` offers the registry as it was when the command was built (at start-up,
    once every format module is registered); the export page offers it as it is."""
    choices = next(p for p in cli.projects_export.params if p.name == "format_name").type.choices
    assert set(choices) == set(formats.FORMATS) - {stand_in.name}  # registered after start-up here
    assert {"name": "stand-in", "label": "Stand-in format"} in exports.format_choices()
