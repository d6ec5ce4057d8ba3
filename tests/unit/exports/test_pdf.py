"""Searchable PDF: the stored scan, its pixels kept, under an invisible layer of the exported
text that pdftotext reads back in order, Devanagari included."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageChops

from app.exports import FORMATS, ExportError, pdf

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdfimages") is None,
    reason="needs poppler-utils (pdftotext, pdfimages)",
)
pytestmark = needs_poppler


def pdftotext(path: Path, page: int) -> str:
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-f", str(page), "-l", str(page), str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def normalised(text: str) -> str:
    return " ".join(text.split())


def image_list(path: Path) -> list[dict[str, str]]:
    """`pdfimages -list`, one dict per image."""
    lines = subprocess.run(
        ["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    names = lines[0].split()
    return [dict(zip(names, line.split(), strict=False)) for line in lines[2:]]


def check_with_qpdf(path: Path) -> None:
    with pikepdf.open(path) as document:
        assert document.check_pdf_syntax() == []
    if shutil.which("qpdf") is None:
        return  # pikepdf's check is qpdf's library; the command adds the xref/linearization pass
    done = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_vendored_font_is_tesseracts_glyphless_font():
    digest = hashlib.sha256(pdf.FONT_FILE.read_bytes()).hexdigest()
    assert digest == "c7845420925a23d88ed830a63957b8af85a66a8daf8d9fc90e843673b2ef1a59"
    assert (pdf.FONT_FILE.parent / "LICENSE-glyphless.txt").exists()


@pytest.mark.parametrize("kind", ["bilevel", "grey_jpeg", "devanagari"])
def test_pdftotext_gives_back_the_ocr_text(kind, ocr_pages, run_export, tmp_path):
    page = ocr_pages[kind]
    out = run_export("pdf", [page], tmp_path)
    assert normalised(pdftotext(out, 1)) == normalised(page.text)


def test_pdftotext_gives_back_the_corrected_text(corrected_page, run_export, tmp_path):
    page, edit = corrected_page
    out = run_export("pdf", [page], tmp_path)
    text = pdftotext(out, 1)
    assert normalised(text) == normalised(page.text)
    assert edit["changed_word"] in text and edit["added_text"] in text


def test_a_devanagari_correction_is_what_the_pdf_says(ocr_pages, run_export, tmp_path):
    page = ocr_pages["devanagari"]
    lines = page.text.split("\n")
    lines[0] = "धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः ।"  # what the page says, not what OCR read
    page = replace(page, text="\n".join(lines))
    assert normalised(pdftotext(run_export("pdf", [page], tmp_path), 1)) == normalised(page.text)


@pytest.mark.parametrize(
    ("kind", "colour", "bits", "encoding"),
    [
        ("bilevel", "gray", "1", "ccitt"),
        ("grey_png", "gray", "8", "image"),
        ("colour_png", "rgb", "8", "image"),
        ("grey_jpeg", "gray", "8", "jpeg"),
        ("colour_jpeg", "rgb", "8", "jpeg"),
    ],
)
def test_each_kind_of_stored_scan_keeps_its_pixels_and_size(
    kind, colour, bits, encoding, scans, ocr_pages, typed_page, run_export, tmp_path
):
    page = ocr_pages.get(kind) or typed_page(kind)
    stored, dpi = scans[kind]
    out = run_export("pdf", [page], tmp_path)
    check_with_qpdf(out)
    [image] = image_list(out)
    assert (image["color"], image["bpc"], image["enc"]) == (colour, bits, encoding)
    assert (int(image["width"]), int(image["height"])) == (page.width, page.height)
    assert out.stat().st_size <= 1.1 * stored.stat().st_size
    with pikepdf.open(out) as document:
        [pdf_page] = document.pages
        box = [float(v) for v in pdf_page.mediabox]
    assert box[2] == pytest.approx(page.width / dpi * 72, abs=0.01)
    assert box[3] == pytest.approx(page.height / dpi * 72, abs=0.01)
    # The pixels, as poppler decodes them from the PDF, are the stored ones.
    # (As PBM, PGM or PPM: uncompressed, which poppler writes ten times faster than PNG.)
    subprocess.run(["pdfimages", str(out), str(tmp_path / "img")], check=True)
    [extracted] = tmp_path.glob("img-000.p?m")
    with Image.open(stored) as original, Image.open(extracted) as embedded:
        assert (
            ImageChops.difference(original.convert("RGB"), embedded.convert("RGB")).getbbox()
            is None
        )
    assert normalised(pdftotext(out, 1)) == normalised(page.text)


def test_a_page_of_unknown_resolution_is_taken_as_300_dpi(ocr_pages, run_export, tmp_path):
    page = replace(ocr_pages["grey_jpeg"], dpi=None)
    out = run_export("pdf", [page], tmp_path)
    with pikepdf.open(out) as document:
        assert float(document.pages[0].mediabox[2]) == pytest.approx(page.width / 300 * 72)
    assert normalised(pdftotext(out, 1)) == normalised(page.text)


def test_a_page_without_a_scan_is_its_text_alone(ocr_pages, run_export, tmp_path):
    page = replace(ocr_pages["bilevel"], image_path=None)
    out = run_export("pdf", [page], tmp_path)
    check_with_qpdf(out)
    assert image_list(out) == []
    assert normalised(pdftotext(out, 1)) == normalised(page.text)


def test_a_damaged_or_missing_scan_is_refused_with_a_message(ocr_pages, tmp_path, meta):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    page = replace(ocr_pages["bilevel"], image_path=broken)
    with pytest.raises(ExportError, match="broken.png cannot be read"):
        FORMATS["pdf"].render_part(page, meta())
    page = replace(page, image_path=tmp_path / "gone.png")
    with pytest.raises(ExportError, match="gone.png cannot be read"):
        FORMATS["pdf"].render_part(page, meta())


def test_the_book_is_its_pages_in_order_sharing_one_font(
    ocr_pages, corrected_page, typed_page, run_export, tmp_path, monkeypatch, meta
):
    # Batches of two: five parts are merged in three batches, then the batches together.
    monkeypatch.setattr(pdf, "MERGE_BATCH", 2)
    pages = [
        ocr_pages["bilevel"],
        replace(ocr_pages["devanagari"], number=2),
        replace(corrected_page[0], number=3),
        typed_page("colour_jpeg", number=4),
        replace(ocr_pages["grey_jpeg"], number=5),
    ]
    out = run_export("pdf", pages, tmp_path, meta(("eng", "san")))
    check_with_qpdf(out)
    for number, page in enumerate(pages, 1):
        assert normalised(pdftotext(out, number)) == normalised(page.text)
    assert [i["bpc"] for i in image_list(out)] == ["1", "8", "1", "8", "8"]
    with pikepdf.open(out) as document:
        assert len(document.pages) == 5
        assert str(document.docinfo.Title) == "The <Linn> & Co. book"
        assert str(document.docinfo.CreationDate) == "D:20261202173000Z"
        fonts = {p.Resources.Font.F0.objgen for p in document.pages}
        assert len(fonts) == 1
        font_files = [
            o for o in document.objects if isinstance(o, pikepdf.Dictionary) and "/FontFile2" in o
        ]
        assert len(font_files) == 1
    parts = sum((tmp_path / f"part-{n:05d}").stat().st_size for n in range(1, 6))
    assert out.stat().st_size <= parts
    assert not list(tmp_path.glob(".pdf-merge-*"))


@pytest.mark.parametrize(
    ("save", "colour", "bits", "encoding"),
    [
        ({"format": "TIFF", "compression": "group4"}, "gray", "1", "ccitt"),
        ({"format": "TIFF", "compression": "tiff_lzw"}, "gray", "1", "ccitt"),
        ({"format": "PNG", "interlace": 1}, "gray", "1", "ccitt"),
        ({"format": "PNG", "mode": "L", "transparency": 255}, "gray", "8", "image"),
        ({"format": "PNG", "mode": "P"}, "index", "8", "image"),
    ],
    ids=["g4-tiff", "lzw-tiff", "interlaced-png", "transparent-grey-png", "palette-png"],
)
def test_other_image_files_keep_their_pixels_and_depth(
    save, colour, bits, encoding, scans, ocr_pages, run_export, tmp_path
):
    """Images app/rendering.py does not store today (it writes PNG and JPEG), from the 1-bit
    scan: each is embedded in its own depth, its pixels unchanged."""
    save = dict(save)
    source, dpi = scans["bilevel"]
    with Image.open(source) as bilevel:
        image = bilevel.convert(save.pop("mode", "1"))
    path = tmp_path / f"scan.{save['format'].lower()}"
    image.save(path, dpi=(dpi, dpi), **save)
    page = replace(ocr_pages["bilevel"], image_path=path)
    out = run_export("pdf", [page], tmp_path)
    check_with_qpdf(out)
    [info] = image_list(out)
    assert (info["color"], info["bpc"], info["enc"]) == (colour, bits, encoding)
    subprocess.run(["pdfimages", str(out), str(tmp_path / "img")], check=True)
    [extracted] = tmp_path.glob("img-000.p?m")
    with Image.open(extracted) as embedded:
        assert (
            ImageChops.difference(image.convert("RGB"), embedded.convert("RGB")).getbbox() is None
        )
    assert normalised(pdftotext(out, 1)) == normalised(page.text)


def test_words_whose_ocr_boxes_touch_stay_apart(ocr_pages, run_export, tmp_path):
    """Tesseract's boxes of "you’" and "ll", or of two words set tight, can touch or
    overlap; text extractors would join their glyphs into one word."""
    boxes = [
        ["you’", 100, 100, 80, 40, 90.0, 0],
        ["ll", 180, 100, 30, 40, 90.0, 0],
        ["the", 212, 100, 60, 40, 90.0, 0],
        ["first", 268, 100, 90, 40, 90.0, 0],
    ]
    page = replace(ocr_pages["bilevel"], text="you’ ll the first", boxes=boxes, image_path=None)
    out = run_export("pdf", [page], tmp_path)
    assert normalised(pdftotext(out, 1)) == "you’ ll the first"
