"""Full-page PDF scans taken out exactly (app/pdf_scans.py through app/rendering.py): each kind
of scan keeps its pixels, mode and resolution, and every other kind of page is rendered.

The PDFs are made with img2pdf, which embeds a JPEG, a PNG's Flate data and a Group 4 TIFF's
CCITT data without re-encoding them, so the original file is the reference for the pixels.
"""

from __future__ import annotations

import io
from pathlib import Path

import img2pdf
import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw

from app import rendering
from app.pdf_scans import jpeg_with_density
from app.rendering import RenderedPage, iter_pages
from tests.bench import books
from tests.support import CORPUS, multipage_pdf

MAX_PIXELS = 40_000_000


def render_all(path: Path, out: Path, **options) -> list[RenderedPage]:
    out.mkdir(parents=True, exist_ok=True)
    settings = {"default_dpi": 300, "max_pixels": MAX_PIXELS, **options}
    return [page for _, page in iter_pages(path, out, **settings)]


def page_text_like(mode: str, size=(1275, 1650)) -> Image.Image:
    """A page with some black marks on white, in `mode`."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for row in range(size[1] // 10, size[1] * 9 // 10, 60):
        draw.rectangle((size[0] // 10, row, size[0] // 2 + row % (size[0] // 3), row + 20), fill=0)
    if mode == "RGB":
        return Image.merge("RGB", (image, image.point(lambda v: v * 0.8), image))
    return image.convert(mode) if mode != "L" else image


def pdf_of_image(tmp_path: Path, data: bytes, dpi: float = 300, name="scan.pdf", layout=None):
    """A one-page PDF of the image `data` at `dpi`, or placed by img2pdf `layout` function."""
    path = tmp_path / name
    layout_fun = layout or img2pdf.get_fixed_dpi_layout_fun((dpi, dpi))
    path.write_bytes(img2pdf.convert(data, layout_fun=layout_fun))
    return path


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes()


def stored(page: RenderedPage) -> Image.Image:
    with Image.open(page.path) as image:
        image.load()
        return image


# -- extracted exactly -------------------------------------------------------------------


def test_jbig2_scan_of_linn_stays_1_bit_at_300_dpi(tmp_path):
    """linn.pdf's JBIG2 scan is stored as a 1-bit PNG of its 2550 x 3300 pixels at 300 DPI,
    the very pixels PDFium decodes from it."""
    [page] = render_all(CORPUS / "linn.pdf", tmp_path)
    assert (page.path.name, page.mode, page.width, page.height) == ("00001.png", "1", 2550, 3300)
    assert page.dpi == 300
    image = stored(page)
    assert image.mode == "1"
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    pdf = pdfium.PdfDocument(str(CORPUS / "linn.pdf"))
    [scan] = pdf[0].get_objects()
    decoded = scan.get_bitmap(render=False).to_pil().convert("L")
    pdf.close()
    assert same_pixels(image.convert("L"), decoded)


def test_ccitt_g4_pages_stay_1_bit_with_the_tiffs_own_pixels(tmp_path):
    """Each page of the bilevel CCITT book is stored as 1-bit PNG, pixel for pixel the Group 4
    TIFF frame it was made from, at 300 DPI."""
    pdf = books.write_ccitt_pdf(tmp_path / "book", pages=3)
    pages = render_all(pdf, tmp_path / "out")
    with Image.open(tmp_path / "book" / "g4" / "book.tif") as tiff:
        for index, page in enumerate(pages):
            tiff.seek(index)
            assert (page.mode, page.dpi) == ("1", 300)
            assert same_pixels(stored(page), tiff.convert("1")), f"page {index + 1}"


@pytest.mark.parametrize("mode", ["1", "L", "RGB"])
def test_flate_scan_keeps_its_mode_and_exact_pixels(tmp_path, mode):
    """A PNG scan embedded as Flate data comes back as a PNG in its own mode, identical."""
    original = page_text_like(mode)
    pdf = pdf_of_image(tmp_path, encoded(original, "PNG"), dpi=150)
    [page] = render_all(pdf, tmp_path / "out")
    assert (page.path.suffix, page.mode, page.dpi) == (".png", mode, 150)
    image = stored(page)
    assert same_pixels(image, original)
    assert image.info["dpi"][0] == pytest.approx(150, abs=0.05)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg_scan_is_copied_byte_for_byte(tmp_path, mode):
    """A DCT scan whose JFIF density is already its DPI is stored as the very same bytes."""
    original = encoded(page_text_like(mode), "JPEG", quality=80, dpi=(200, 200))
    pdf = pdf_of_image(tmp_path, original, dpi=200)
    [page] = render_all(pdf, tmp_path / "out")
    assert (page.path.name, page.mode, page.dpi) == ("00001.jpg", mode, 200)
    assert page.path.read_bytes() == original


def test_jpeg_scan_of_a_pdf_with_an_owner_password_is_copied_decrypted(tmp_path):
    original = encoded(page_text_like("L"), "JPEG", quality=80, dpi=(300, 300))
    pdf = pdf_of_image(tmp_path, original, dpi=300)
    with pikepdf.open(pdf, allow_overwriting_input=True) as doc:
        doc.save(pdf, encryption=pikepdf.Encryption(user="", owner="owner"))
    assert original not in pdf.read_bytes()  # the stream is stored encrypted
    [page] = render_all(pdf, tmp_path / "out")
    assert page.path.read_bytes() == original


def test_jpeg_scan_without_density_gets_it_and_keeps_its_compressed_data(tmp_path):
    """A DCT scan that does not say its DPI gets the page's DPI in its JFIF header; the
    compressed image data after the header is copied untouched."""
    original = encoded(page_text_like("L"), "JPEG", quality=80)  # JFIF units 0: no DPI
    pdf = pdf_of_image(tmp_path, original, dpi=240)
    [page] = render_all(pdf, tmp_path / "out")
    data = page.path.read_bytes()
    assert len(data) == len(original) and data != original
    # Only the 5 bytes of units and density differ, at the JFIF header's fixed place.
    assert data[:13] == original[:13] and data[18:] == original[18:]
    with Image.open(page.path) as image:
        assert image.info["dpi"] == (240, 240)


# -- rendered, because extraction would not be exact ---------------------------------------


def test_page_with_text_over_the_scan_is_rendered(tmp_path):
    """A scan with a text layer (e.g. OCRmyPDF output) is rendered, in grey."""
    pdf = pdf_of_image(tmp_path, encoded(page_text_like("1"), "PNG"), dpi=300)
    with pikepdf.open(pdf, allow_overwriting_input=True) as doc:
        page = doc.pages[0]
        page.Resources.Font = pikepdf.Dictionary(
            F1=pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                  BaseFont=pikepdf.Name.Helvetica)
        )  # fmt: skip
        page.contents_add(doc.make_stream(b"BT /F1 24 Tf 72 72 Td (Printed text) Tj ET"))
        doc.save(pdf)
    [page] = render_all(pdf, tmp_path / "out")
    assert (page.path.suffix, page.mode) == (".png", "L")
    assert page.dpi == 300
    assert (page.width, page.height) == pytest.approx((1275, 1650), abs=1)


def test_page_with_two_images_is_rendered(tmp_path):
    first = pdf_of_image(tmp_path, encoded(page_text_like("L"), "PNG"), dpi=300, name="a.pdf")
    with pikepdf.open(first, allow_overwriting_input=True) as doc:
        page = doc.pages[0]
        [name] = list(page.Resources.XObject.keys())
        page.contents_add(doc.make_stream(f"q 100 0 0 100 10 10 cm {name} Do Q".encode()))
        doc.save(first)
    [page] = render_all(first, tmp_path / "out")
    assert page.mode == "L" and page.path.suffix == ".png"
    assert stored(page).size == pytest.approx((1275, 1650), abs=1)


def test_scan_that_does_not_cover_the_page_is_rendered(tmp_path):
    """A scan placed with a margin on a letter page: the page is what the book shows."""
    data = encoded(page_text_like("1", size=(600, 800)), "PNG", dpi=(300, 300))

    def letter_page_with_margins(width_px, height_px, ndpi):
        return 612, 792, width_px * 72 / 300, height_px * 72 / 300  # centred by img2pdf

    pdf = pdf_of_image(tmp_path, data, layout=letter_page_with_margins)
    [page] = render_all(pdf, tmp_path / "out")
    assert page.mode == "L"
    assert (page.width, page.height) == pytest.approx((2550, 3300), abs=1)


def test_rotated_page_is_rendered(tmp_path):
    pdf = pdf_of_image(tmp_path, encoded(page_text_like("1"), "PNG"), dpi=300)
    with pikepdf.open(pdf, allow_overwriting_input=True) as doc:
        doc.pages[0].Rotate = 90
        doc.save(pdf)
    [page] = render_all(pdf, tmp_path / "out")
    assert page.mode == "L"
    assert (page.width, page.height) == pytest.approx((1650, 1275), abs=1)


def test_inverted_decode_array_is_rendered(tmp_path):
    pdf = pdf_of_image(tmp_path, encoded(page_text_like("L"), "PNG"), dpi=300)
    with pikepdf.open(pdf, allow_overwriting_input=True) as doc:
        [image] = doc.pages[0].Resources.XObject.values()
        image.Decode = pikepdf.Array([1, 0])
        doc.save(pdf)
    [page] = render_all(pdf, tmp_path / "out")
    original = page_text_like("L")
    assert page.mode == "L"
    # Rendered as the PDF means it: white where the scan is black.
    assert stored(page).getpixel((5, 5)) == 0 and original.getpixel((5, 5)) == 255


def test_scan_with_a_soft_mask_is_rendered(tmp_path):
    """multipage.pdf page 6 draws a colour scan through a soft mask: rendered, in colour."""
    [page] = render_all(multipage_pdf(tmp_path / "p6.pdf", [5]), tmp_path / "out")
    assert (page.path.suffix, page.mode) == (".png", "RGB")


def test_scan_below_min_dpi_is_rendered_up(tmp_path):
    pdf = pdf_of_image(tmp_path, encoded(page_text_like("1", (300, 400)), "PNG"), dpi=100)
    [page] = render_all(pdf, tmp_path / "out")
    assert page.dpi == rendering.MIN_DPI
    assert (page.width, page.height) == pytest.approx((450, 600), abs=1)


def test_scan_over_max_pixels_is_rendered_down(tmp_path):
    pdf = pdf_of_image(tmp_path, encoded(page_text_like("1"), "PNG"), dpi=300)
    [page] = render_all(pdf, tmp_path / "out", max_pixels=1_000_000)
    assert page.mode == "L"
    assert page.width * page.height <= 1_000_000 and page.dpi < 300


def test_scan_over_the_decode_guard_goes_to_pdftoppm(tmp_path, monkeypatch):
    """The 96 MiB guard holds for extraction too: a scan that would decode to more is not
    decoded in the worker but rendered by pdftoppm."""
    monkeypatch.setattr(rendering, "PDFIUM_MAX_SCAN_BYTES", 1000)
    calls = []
    real_run = rendering.subprocess.run
    monkeypatch.setattr(
        rendering.subprocess, "run", lambda cmd, **kw: calls.append(cmd[0]) or real_run(cmd, **kw)
    )
    pdf = pdf_of_image(tmp_path, encoded(page_text_like("L"), "PNG"), dpi=300)
    [page] = render_all(pdf, tmp_path / "out")
    assert calls == ["pdftoppm"]
    assert page.mode == "L"


# -- JPEG density --------------------------------------------------------------------------


def test_density_is_inserted_when_a_jpeg_has_no_jfif_segment():
    """A JPEG straight from a scanner may have no JFIF segment: one is added after SOI."""
    with_jfif = encoded(Image.new("L", (16, 16), 90), "JPEG")
    app0_length = int.from_bytes(with_jfif[4:6], "big")
    bare = with_jfif[:2] + with_jfif[4 + app0_length :]
    assert b"JFIF" not in bare[:20]
    fixed = jpeg_with_density(bare, 300)
    assert fixed.endswith(bare[2:])
    with Image.open(io.BytesIO(fixed)) as image:
        assert image.info["dpi"] == (300, 300)
        assert image.tobytes() == Image.open(io.BytesIO(bare)).tobytes()


def test_an_adobe_rgb_jpeg_is_not_given_a_jfif_segment():
    """An Adobe segment saying RGB (transform 0) would be overridden by a JFIF one: the caller
    stores decoded pixels instead."""
    data = encoded(Image.new("RGB", (16, 16), (10, 200, 30)), "JPEG")
    app0_length = int.from_bytes(data[4:6], "big")
    adobe = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"
    assert jpeg_with_density(data[:2] + adobe + data[4 + app0_length :], 300) is None


def test_a_jpeg_with_the_right_density_is_returned_as_it_is():
    data = encoded(Image.new("L", (16, 16)), "JPEG", dpi=(300, 300))
    assert jpeg_with_density(data, 300) is data
    assert jpeg_with_density(b"not a jpeg", 300) is None
