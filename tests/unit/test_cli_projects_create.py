"""`flask projects create SLUG SOURCES...` (app/cli.py) with several page images, a folder,
and --detect-orientation, through Flask's CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.models import Project
from app.sources import page_images


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def write_png(path: Path, width: int) -> Path:
    Image.new("L", (width, 20), 255).save(path, dpi=(300, 300))
    return path


def project(slug: str) -> Project:
    return db.session.scalar(select(Project).filter_by(slug=slug))


def stored_widths(app, slug: str) -> list[int]:
    folder = Path(app.config["DATA_DIR"]) / "projects" / slug / "source"
    widths = []
    for path in page_images(folder):
        with Image.open(path) as image:
            widths.append(image.width)
    return widths


def test_several_files_in_natural_order(app, runner, enqueued, tmp_path):
    files = [str(write_png(tmp_path / f"scan{n}.png", n)) for n in (10, 2, 1)]
    result = runner.invoke(args=["projects", "create", "files", *files])
    assert result.exit_code == 0, result.output
    assert "3 pages" in result.output
    assert stored_widths(app, "files") == [1, 2, 10]


def test_a_folder_of_page_images(app, runner, enqueued, tmp_path):
    folder = tmp_path / "book"
    folder.mkdir()
    for n in (12, 3, 1):
        write_png(folder / f"p{n}.png", n)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    result = runner.invoke(
        args=["projects", "create", "folder", str(folder), "--detect-orientation"]
    )
    assert result.exit_code == 0, result.output
    assert stored_widths(app, "folder") == [1, 3, 12]
    assert project("folder").detect_orientation is True


def test_two_folders_keep_their_pages_apart(app, runner, enqueued, tmp_path):
    for volume, widths in (("vol1", (1, 2)), ("vol2", (3, 4))):
        (tmp_path / volume).mkdir()
        for n, width in enumerate(widths, start=1):
            write_png(tmp_path / volume / f"p{n}.png", width)
    result = runner.invoke(
        args=["projects", "create", "volumes", str(tmp_path / "vol2"), str(tmp_path / "vol1")]
    )
    assert result.exit_code == 0, result.output
    assert stored_widths(app, "volumes") == [1, 2, 3, 4]


def test_a_folder_with_a_file_that_is_no_image_is_refused_by_name(app, runner, enqueued, tmp_path):
    folder = tmp_path / "book"
    folder.mkdir()
    write_png(folder / "p1.png", 5)
    (folder / "notes.txt").write_text("scanned in 2024")
    result = runner.invoke(args=["projects", "create", "mixed", str(folder)])
    assert result.exit_code == 1
    assert result.output.startswith("error: notes.txt is not a PNG, JPEG or TIFF image")
    assert project("mixed") is None
    assert not (Path(app.config["DATA_DIR"]) / "projects" / "mixed").exists()
    assert enqueued == []


def test_an_empty_folder_is_refused(app, runner, enqueued, tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(args=["projects", "create", "none", str(tmp_path / "empty")])
    assert result.exit_code == 1
    assert "holds no files" in result.output
