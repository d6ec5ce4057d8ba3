"""Rendering uploads into page images (app/rendering.py), on the real corpus and hostile files.

tests/fixtures/corpus/README.md describes the corpus. Hostile inputs (encrypted, truncated,
empty, renamed, huge) are made here, from the corpus or with pikepdf, pypdfium2 and Pillow.
"""

from __future__ import annotations

from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image

from app import rendering
from app.config import load_config
from app.rendering import (
    MIN_DPI,
    POINTS_PER_INCH,
    RenderedPage,
    SourceDocument,
    UnusableSource,
    iter_pages,
)
from tests.support import CORPUS

#: The documented defaults (docs/configuration.md); SECRET_KEY given so nothing is written.
DEFAULTS = load_config({"DATA_DIR": str(CORPUS), "SECRET_KEY": "unused"})
RENDER_DPI = DEFAULTS["RENDER_DPI"]
MAX_PIXELS = DEFAULTS["RENDER_MAX_PIXELS"]
#: Resolution of the scan embedded in each page of multipage.pdf (read with pdfimages -list).
MULTIPAGE_SCAN_DPI = {1: 150, 2: 300, 3: 96, 4: 96, 5: 72, 6: 147.4}


def render_all(path: Path, out_dir: Path, **kwargs) -> list[RenderedPage]:
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"default_dpi": RENDER_DPI, "max_pixels": MAX_PIXELS, **kwargs}
    return [page for _, page in iter_pages(path, out_dir, **options)]


def page_sizes_pt(path: Path) -> list[tuple[float, float]]:
    pdf = pdfium.PdfDocument(str(path))
    try:
        return [pdf[i].get_size() for i in range(len(pdf))]
    finally:
        pdf.close()


def assert_grayscale_png(page: RenderedPage) -> None:
    with Image.open(page.path) as image:
        assert image.format == "PNG"
        assert image.mode == "L"
        assert image.size == (page.width, page.height)


def expected_pixels(size_pt: float, dpi: float) -> int:
    return round(size_pt * dpi / POINTS_PER_INCH)


@pytest.fixture(scope="module")
def multipage(tmp_path_factory) -> list[RenderedPage]:
    """multipage.pdf rendered once with the default settings, shared by the tests below."""
    return render_all(CORPUS / "multipage.pdf", tmp_path_factory.mktemp("multipage"))


# -- the real corpus ---------------------------------------------------------------------


#: How each page of multipage.pdf is stored: page 1 is one full-page colour JPEG at 150 DPI,
#: copied; the others are rendered (a scan below MIN_DPI, a soft mask, a scan over the
#: PDFium limit), in colour where their scan is in colour.
MULTIPAGE_STORED = [
    ("00001.jpg", "RGB"),
    ("00002.png", "RGB"),
    ("00003.png", "RGB"),
    ("00004.png", "RGB"),
    ("00005.png", "L"),
    ("00006.png", "RGB"),
]


def assert_stored_as(page: RenderedPage, mode: str) -> None:
    """The file holds the page in `mode`, at the page's size, with its DPI written in it."""
    with Image.open(page.path) as image:
        assert image.format == ("JPEG" if page.path.suffix == ".jpg" else "PNG")
        assert (image.mode, page.mode) == (mode, mode)
        assert image.size == (page.width, page.height)
        # pHYs counts pixels per metre, a whole number: 150 DPI reads back as 150.012.
        assert image.info["dpi"][0] == pytest.approx(page.dpi, abs=0.05)


def test_multipage_gives_six_page_images_in_their_scans_modes(multipage):
    """The six pages of multipage.pdf become six files, in order, grey or colour as their
    scans are, each with its resolution in the file."""
    assert [page.path.name for page in multipage] == [name for name, _ in MULTIPAGE_STORED]
    for page, (_, mode) in zip(multipage, MULTIPAGE_STORED, strict=True):
        assert_stored_as(page, mode)


@pytest.mark.parametrize("number", [1, 3, 4, 5, 6])
def test_page_renders_at_its_scans_resolution_within_bounds(multipage, number):
    """A page is rendered at its scan's DPI, raised to MIN_DPI and capped at RENDER_DPI."""
    page = multipage[number - 1]
    expected = min(RENDER_DPI, max(MIN_DPI, MULTIPAGE_SCAN_DPI[number]))
    assert page.dpi == pytest.approx(expected)
    width_pt, height_pt = page_sizes_pt(CORPUS / "multipage.pdf")[number - 1]
    assert abs(page.width - expected_pixels(width_pt, expected)) <= 1
    assert abs(page.height - expected_pixels(height_pt, expected)) <= 1


def test_a_150_dpi_scan_keeps_its_own_pixels(multipage):
    """Page 1 (an 800 x 981 px scan at 150 DPI) is neither blown up nor shrunk."""
    assert (multipage[0].width, multipage[0].height) == pytest.approx((800, 981), abs=1)


def test_large_page_is_capped_by_max_pixels(multipage):
    """Page 2 (2160 pt square, 9000 px scan at 300 DPI) is rendered lower, to about max_pixels."""
    page = multipage[1]
    width_pt, height_pt = page_sizes_pt(CORPUS / "multipage.pdf")[1]
    assert (width_pt, height_pt) == (2160, 2160)
    assert MIN_DPI <= page.dpi < MULTIPAGE_SCAN_DPI[2]
    # The cap decides the resolution: at it, the page has max_pixels (to rounding of a row).
    assert page.width * page.height == pytest.approx(MAX_PIXELS, rel=1e-3)
    assert abs(page.width - expected_pixels(width_pt, page.dpi)) <= 1


@pytest.mark.parametrize(
    ("scan_dpi", "default_dpi", "expected"),
    [
        (200, 300, 200),  # the scan's own resolution
        (200, 150, 200),  # a full-page scan is taken as it is, even above RENDER_DPI
        (100, 300, MIN_DPI),  # never below MIN_DPI: rendered up
    ],
)
def test_dpi_follows_the_embedded_scan(tmp_path, scan_dpi, default_dpi, expected):
    """A PDF made from a scan at `scan_dpi` keeps that DPI, or is rendered up to MIN_DPI."""
    source = tmp_path / "scan.pdf"
    Image.new("L", (400, 200), 200).save(source, resolution=scan_dpi)
    [page] = render_all(source, tmp_path / "out", default_dpi=default_dpi)
    assert page.dpi == pytest.approx(expected)
    assert (page.width, page.height) == pytest.approx(
        (400 * expected / scan_dpi, 200 * expected / scan_dpi), abs=1
    )


@pytest.mark.parametrize("name", ["blank.pdf", "trivial.pdf"])
def test_page_without_a_scan_renders_at_render_dpi(tmp_path, name):
    """blank.pdf and trivial.pdf (no embedded image) give one page at RENDER_DPI."""
    with SourceDocument(CORPUS / name) as source:
        assert source.page_count == 1
    [page] = render_all(CORPUS / name, tmp_path)
    assert page.dpi == RENDER_DPI
    [(width_pt, height_pt)] = page_sizes_pt(CORPUS / name)
    # PDFium rounds a side up, so a side may be one pixel longer than points x DPI / 72.
    assert abs(page.width - expected_pixels(width_pt, RENDER_DPI)) <= 1
    assert abs(page.height - expected_pixels(height_pt, RENDER_DPI)) <= 1
    assert_grayscale_png(page)


def test_render_writes_no_partial_file(tmp_path):
    """Only the finished page is left in the output directory, never a `.partial` file."""
    render_all(CORPUS / "trivial.pdf", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["00001.png"]


def test_iter_pages_renders_only_the_asked_indexes(tmp_path):
    """`indexes` renders just those pages (how a resumed split skips recorded ones)."""
    rendered = list(
        iter_pages(
            CORPUS / "multipage.pdf",
            tmp_path,
            default_dpi=RENDER_DPI,
            max_pixels=1_000_000,
            indexes=[4, 5],
        )
    )
    assert [index for index, _ in rendered] == [4, 5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00005.png", "00006.png"]


# -- refused sources ---------------------------------------------------------------------


def make_invalid(tmp_path: Path) -> Path:
    return CORPUS / "invalid.pdf"


def make_empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    return path


def make_truncated(tmp_path: Path) -> Path:
    data = (CORPUS / "multipage.pdf").read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: len(data) // 2])
    return path


def make_text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.pdf"
    path.write_text("Chapter 1\nThis is a text file, not a scan.\n")
    return path


def make_user_password(tmp_path: Path) -> Path:
    path = tmp_path / "locked.pdf"
    with pikepdf.open(CORPUS / "trivial.pdf") as pdf:
        pdf.save(path, encryption=pikepdf.Encryption(user="reader", owner="owner"))
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (make_invalid, ["PDF", "damaged"]),
        (make_empty, ["empty", "0 bytes"]),
        (make_truncated, ["PDF", "damaged"]),
        (make_text, ["neither a PDF", "PNG, JPEG or TIFF"]),
        (make_user_password, ["encrypted", "password", "unlocked copy"]),
    ],
    ids=["invalid", "empty", "truncated", "text", "user-password"],
)
def test_unusable_source_is_refused_with_a_readable_reason(tmp_path, make, words):
    """Files that cannot become pages raise UnusableSource saying why, in plain words."""
    path = make(tmp_path)
    with pytest.raises(UnusableSource) as caught:
        SourceDocument(path)
    message = str(caught.value)
    for word in words:
        assert word in message
    assert str(tmp_path) not in message
    assert "Traceback" not in message and "Error(" not in message


def test_pdf_with_only_an_owner_password_opens_and_renders(tmp_path):
    """An owner password (empty user password) restricts editing only: the PDF is usable."""
    path = tmp_path / "owner.pdf"
    with pikepdf.open(CORPUS / "trivial.pdf") as pdf:
        pdf.save(path, encryption=pikepdf.Encryption(user="", owner="owner"))
    with pikepdf.open(path) as check:
        assert check.is_encrypted
    [page] = render_all(path, tmp_path / "out")
    assert_grayscale_png(page)


def make_zero_page_pdf(path: Path) -> Path:
    pikepdf.new().save(path)
    with pikepdf.open(path) as check:
        assert len(check.pages) == 0
    return path


def test_pdf_with_zero_pages_is_refused(tmp_path):
    """A PDF without a single page cannot become a project."""
    with pytest.raises(UnusableSource):
        SourceDocument(make_zero_page_pdf(tmp_path / "zero.pdf"))


def test_zero_page_message_says_no_pages_even_after_an_encrypted_upload(tmp_path):
    """A zero-page PDF is refused as having no pages, whatever was refused before it."""
    with pytest.raises(UnusableSource, match="password"):
        SourceDocument(make_user_password(tmp_path))
    with pytest.raises(UnusableSource) as caught:
        SourceDocument(make_zero_page_pdf(tmp_path / "zero.pdf"))
    assert "no pages" in str(caught.value)
    assert "password" not in str(caught.value)


def test_jpeg_renamed_pdf_is_judged_by_content(tmp_path):
    """A JPEG named .pdf is opened as the image it is (content, not name, decides the kind)."""
    path = tmp_path / "scan.pdf"
    Image.new("RGB", (120, 90), (200, 180, 160)).save(path, format="JPEG")
    with SourceDocument(path) as source:
        assert (source.kind, source.page_count) == ("image", 1)
    [page] = render_all(path, tmp_path / "out")
    assert (page.width, page.height) == (120, 90)


# -- scanned images ----------------------------------------------------------------------


def test_png_is_one_colour_page_at_its_own_size(tmp_path):
    """A colour PNG scan is one page, kept in colour, with its DPI kept."""
    path = tmp_path / "scan.png"
    Image.new("RGB", (300, 200), (10, 120, 250)).save(path, dpi=(200, 200))
    with SourceDocument(path) as source:
        assert (source.kind, source.page_count) == ("image", 1)
    [page] = render_all(path, tmp_path / "out")
    assert (page.width, page.height) == (300, 200)
    assert page.dpi == pytest.approx(200, abs=0.01)
    assert_stored_as(page, "RGB")


def test_jpeg_is_one_page(tmp_path):
    """A JPEG scan is one page, at its own size, without a DPI taken to be 300."""
    path = tmp_path / "scan.jpg"
    Image.new("RGB", (160, 100), (90, 90, 90)).save(path, format="JPEG")
    with SourceDocument(path) as source:
        assert (source.kind, source.page_count) == ("image", 1)
    [page] = render_all(path, tmp_path / "out")
    assert (page.width, page.height) == (160, 100)
    assert page.dpi == rendering.ASSUMED_IMAGE_DPI
    assert_stored_as(page, "RGB")


def test_two_frame_tiff_is_two_pages(tmp_path):
    """Each frame of a multi-page TIFF is a page, in order, with that frame's own size and
    mode."""
    path = tmp_path / "book.tiff"
    first = Image.new("L", (100, 50), 255)
    second = Image.new("RGB", (60, 80), (0, 0, 0))
    first.save(path, save_all=True, append_images=[second])
    with SourceDocument(path) as source:
        assert (source.kind, source.page_count) == ("image", 2)
    pages = render_all(path, tmp_path / "out")
    assert [(p.width, p.height) for p in pages] == [(100, 50), (60, 80)]
    assert_stored_as(pages[0], "L")
    assert_stored_as(pages[1], "RGB")


def test_image_over_max_pixels_is_scaled_down(tmp_path):
    """An image larger than max_pixels is shrunk to fit, and its DPI lowered to match."""
    path = tmp_path / "big.png"
    Image.new("L", (400, 300), 128).save(path, dpi=(300, 300))
    [page] = render_all(path, tmp_path / "out", max_pixels=30_000)
    assert page.width * page.height <= 30_000
    assert page.width / page.height == pytest.approx(400 / 300, rel=0.02)
    assert page.dpi == pytest.approx(300 * page.width / 400, rel=0.01)


# -- huge pages --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def huge_page_pdf(tmp_path_factory) -> Path:
    """A blank 8400 x 8400 pt page: 35000 x 35000 px (1.2 Gpx) at 300 DPI."""
    path = tmp_path_factory.mktemp("huge") / "huge.pdf"
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(8400, 8400).close()
    pdf.save(str(path))
    pdf.close()
    return path


def test_huge_page_renders_at_a_resolution_that_fits_max_pixels(tmp_path, huge_page_pdf):
    """An 8400 pt page is rendered at the DPI giving about RENDER_MAX_PIXELS, not 1.2 Gpx."""
    [page] = render_all(huge_page_pdf, tmp_path)
    assert page.dpi < RENDER_DPI
    assert page.width * page.height == pytest.approx(MAX_PIXELS, rel=1e-3)
    assert abs(page.width - expected_pixels(8400, page.dpi)) <= 1
    assert_grayscale_png(page)


def test_rendered_pixels_never_exceed_max_pixels(tmp_path, multipage, huge_page_pdf):
    """RENDER_MAX_PIXELS is an upper bound: no rendered page has more pixels."""
    [huge] = render_all(huge_page_pdf, tmp_path)
    for page in [*multipage, huge]:
        assert page.width * page.height <= MAX_PIXELS


# -- huge scans go to pdftoppm --------------------------------------------------------------


def test_the_9000_pixel_scan_of_multipage_is_over_the_pdfium_limit():
    """multipage.pdf page 2 embeds a 9000 x 9000 RGB scan (243 MB decoded): it is the page
    that goes to pdftoppm; the other pages of the book stay on PDFium."""
    pdf = pdfium.PdfDocument(str(CORPUS / "multipage.pdf"))
    try:
        sizes = [rendering.decoded_scan_bytes(pdf[i]) for i in range(len(pdf))]
    finally:
        pdf.close()
    assert sizes[1] == 9000 * 9000 * 3
    over = [n + 1 for n, size in enumerate(sizes) if size > rendering.PDFIUM_MAX_SCAN_BYTES]
    assert over == [2]


def test_without_pdftoppm_a_huge_scan_still_renders_with_pdfium(tmp_path, monkeypatch, caplog):
    """pdftoppm missing from PATH is a deployment gap, not the user's fault: PDFium renders."""
    monkeypatch.setattr(rendering, "PDFIUM_MAX_SCAN_BYTES", 0)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    [page] = render_all(CORPUS / "linn.pdf", tmp_path / "out")
    assert page.path.is_file()
    assert "pdftoppm is not installed" in caplog.text


def test_pdftoppm_failing_on_a_page_is_a_readable_refusal(tmp_path, monkeypatch):
    monkeypatch.setattr(rendering, "PDFIUM_MAX_SCAN_BYTES", 0)
    fake = tmp_path / "bin" / "pdftoppm"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Syntax Error: Bad image stream' >&2\nexit 99\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    with pytest.raises(UnusableSource, match=r"Page 1 cannot be rendered \(.*Bad image stream"):
        render_all(CORPUS / "linn.pdf", tmp_path / "out")


# -- PNG page files kept as they are -------------------------------------------------------


def test_a_png_page_with_its_resolution_is_stored_byte_for_byte(tmp_path):
    """A folder of PNG pages (the form's page images, a ZIP's members): a page that already
    is what the split writes is copied, not decoded and encoded again; one without a
    resolution, or in a mode the split converts, is written anew."""
    folder = tmp_path / "source"
    folder.mkdir()
    grey = Image.effect_noise((600, 800), 40).convert("L")
    grey.save(folder / "0001.png", dpi=(300, 300))
    grey.save(folder / "0002.png")  # no pHYs: stored with the assumed resolution
    grey.convert("1").save(folder / "0003.png", dpi=(400, 400))
    grey.convert("RGBA").save(folder / "0004.png", dpi=(300, 300))  # alpha: converted
    pages = render_all(folder, tmp_path / "out")
    stored = [page.path.read_bytes() for page in pages]
    assert stored[0] == (folder / "0001.png").read_bytes()
    assert stored[2] == (folder / "0003.png").read_bytes()
    assert stored[1] != (folder / "0002.png").read_bytes()
    assert stored[3] != (folder / "0004.png").read_bytes()
    assert [(p.mode, p.dpi) for p in pages] == [
        ("L", 300.0),
        ("L", float(rendering.ASSUMED_IMAGE_DPI)),
        ("1", 400.0),
        ("RGB", 300.0),
    ]
    with Image.open(pages[1].path) as written:
        assert round(written.info["dpi"][0]) == rendering.ASSUMED_IMAGE_DPI
