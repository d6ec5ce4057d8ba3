"""Plain text: one file with a marker before each page, or a ZIP of a file per page."""

from __future__ import annotations

import zipfile
from dataclasses import replace

from app.exports import FORMATS
from app.exports.text import page_marker


def test_every_format_is_registered_under_its_name():
    assert set(FORMATS) == {"txt", "txt-zip", "tei", "hocr", "alto", "pdf"}
    for name, fmt in FORMATS.items():
        assert fmt.name == name and fmt.extension and fmt.content_type and fmt.label


def test_one_file_holds_the_pages_in_order_each_after_its_marker(ocr_pages, run_export, tmp_path):
    pages = [ocr_pages["bilevel"], replace(ocr_pages["devanagari"], number=2)]
    text = run_export("txt", pages, tmp_path).read_text(encoding="utf-8")
    first, second = text.split(page_marker(2))
    assert first.startswith(page_marker(1) + "\n")
    assert first[len(page_marker(1)) :].strip() == pages[0].text.strip()
    assert second.strip() == pages[1].text.strip()


def test_windows_line_ends_become_newlines(ocr_pages, run_export, tmp_path):
    page = replace(ocr_pages["bilevel"], text="one\r\ntwo\r\n\r\n")
    text = run_export("txt", [page], tmp_path).read_bytes()
    assert text == f"{page_marker(1)}\none\ntwo\n\n".encode()


def test_the_zip_has_a_file_per_page_named_to_sort_in_page_order(ocr_pages, run_export, tmp_path):
    pages = [replace(ocr_pages["bilevel"], number=9), replace(ocr_pages["devanagari"], number=10)]
    with zipfile.ZipFile(run_export("txt-zip", pages, tmp_path)) as archive:
        names = archive.namelist()
        assert names == ["linn-book/linn-book-0009.txt", "linn-book/linn-book-0010.txt"]
        assert archive.read(names[1]).decode() == pages[1].text.rstrip("\n") + "\n"


def test_an_empty_page_is_an_empty_file(ocr_pages, run_export, tmp_path):
    page = replace(ocr_pages["bilevel"], text="\n\n")
    with zipfile.ZipFile(run_export("txt-zip", [page], tmp_path)) as archive:
        assert archive.read("linn-book/linn-book-0001.txt") == b""
