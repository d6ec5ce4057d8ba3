"""Uploaded page images kept as they are (app/rendering.py): 1-bit stays 1-bit, grey grey,
colour colour, a JPEG is copied, the resolution is written into the stored file; and pages
turned upright losslessly when an `orient` function says so."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from app import rendering
from app.rendering import RenderedPage, iter_pages
from tests.bench import books

MAX_PIXELS = 40_000_000


def store_all(path: Path, out: Path, **options) -> list[RenderedPage]:
    out.mkdir(parents=True, exist_ok=True)
    settings = {"default_dpi": 300, "max_pixels": MAX_PIXELS, **options}
    return [page for _, page in iter_pages(path, out, **settings)]


def opened(page: RenderedPage) -> Image.Image:
    with Image.open(page.path) as image:
        image.load()
        return image


def marked(mode: str, size=(120, 90)) -> Image.Image:
    """An image whose quarter turns all differ: a black block in its top-left corner."""
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).rectangle((0, 0, size[0] // 3, size[1] // 4), fill=0)
    return image.convert(mode)


def test_bilevel_g4_tiff_pages_stay_1_bit_at_300_dpi(tmp_path):
    """Each frame of a Group 4 TIFF is stored as a 1-bit PNG with its pixels and 300 DPI."""
    tiff = books.write_g4_tiff(tmp_path, pages=2)
    pages = store_all(tiff, tmp_path / "out")
    with Image.open(tiff) as source:
        for index, page in enumerate(pages):
            source.seek(index)
            image = opened(page)
            assert (page.mode, image.mode, page.dpi) == ("1", "1", 300)
            assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
            assert image.tobytes() == source.tobytes()


def test_a_grey_png_stays_grey_with_its_dpi(tmp_path):
    path = tmp_path / "page.png"
    marked("L").save(path, dpi=(400, 400))
    [page] = store_all(path, tmp_path / "out")
    image = opened(page)
    assert (page.mode, image.mode, page.dpi) == ("L", "L", pytest.approx(400, abs=0.01))
    assert image.tobytes() == marked("L").tobytes()


def test_an_image_without_a_dpi_is_given_the_assumed_one_in_the_file(tmp_path):
    path = tmp_path / "page.png"
    marked("1").save(path)
    [page] = store_all(path, tmp_path / "out")
    assert page.dpi == rendering.ASSUMED_IMAGE_DPI
    assert opened(page).info["dpi"][0] == pytest.approx(rendering.ASSUMED_IMAGE_DPI, abs=0.05)


def test_a_jpeg_upload_is_copied_byte_for_byte(tmp_path):
    path = tmp_path / "page.jpg"
    marked("RGB").save(path, format="JPEG", dpi=(300, 300))
    [page] = store_all(path, tmp_path / "out")
    assert (page.path.name, page.mode) == ("00001.jpg", "RGB")
    assert page.path.read_bytes() == path.read_bytes()


def test_a_jpeg_turned_by_its_exif_tag_is_stored_as_it_is_shown(tmp_path):
    """Browsers turn a JPEG by its EXIF orientation and Tesseract does not: the stored page is
    turned once, for both (a PNG of the decoded pixels)."""
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    marked("RGB", (120, 90)).save(path, format="JPEG", exif=exif, dpi=(300, 300))
    [page] = store_all(path, tmp_path / "out")
    assert page.path.suffix == ".png"
    assert (page.width, page.height) == (90, 120)


@pytest.mark.parametrize(
    ("make", "expected_mode"),
    [
        (lambda: marked("L").convert("P"), "1"),  # a black-and-white palette
        (lambda: marked("L").point(lambda v: 10 if v < 128 else 245).convert("P"), "L"),
        (lambda: marked("RGB").convert("RGBA"), "RGB"),
        (lambda: marked("L").convert("LA"), "L"),
        (lambda: marked("L").convert("I").point(lambda v: v * 256).convert("I;16"), "L"),
        (lambda: marked("RGB").convert("CMYK"), "RGB"),
    ],
    ids=["bilevel-palette", "grey-palette", "rgba", "grey-alpha", "16-bit-grey", "cmyk"],
)
def test_other_modes_become_the_nearest_a_browser_and_tesseract_read(tmp_path, make, expected_mode):
    path = tmp_path / "page.tif"
    make().save(path, format="TIFF", dpi=(300, 300))
    [page] = store_all(path, tmp_path / "out")
    image = opened(page)
    assert (page.mode, image.mode) == (expected_mode, expected_mode)
    # The black corner is still black, the paper still white.
    assert image.convert("L").getpixel((1, 1)) < 20
    assert image.convert("L").getpixel((110, 80)) > 235


def test_a_folder_of_page_images_is_one_page_per_file_in_order(tmp_path):
    folder = books.write_grey_folder(tmp_path, pages=2)
    stored = tmp_path / "source"
    stored.mkdir()
    for n, name in enumerate(["page1.png", "page2.png"], start=1):
        (stored / f"{n:04d}.png").write_bytes((folder / name).read_bytes())
    pages = store_all(stored, tmp_path / "out")
    assert [(p.path.name, p.mode, p.dpi) for p in pages] == [
        ("00001.png", "L", pytest.approx(300, abs=0.01)),
        ("00002.png", "L", pytest.approx(300, abs=0.01)),
    ]


# -- turning pages upright -------------------------------------------------------------


@pytest.mark.parametrize(("mode", "fmt"), [("1", "PNG"), ("L", "PNG"), ("RGB", "JPEG")])
@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_page_is_turned_upright_losslessly_as_orient_says(tmp_path, mode, fmt, degrees):
    """A page scanned turned is stored upright: the upright page's very pixels (a JPEG's
    decoded ones, as a PNG), its mode and DPI kept, the turn recorded."""
    upright = marked(mode)
    # Scanned turned: turning it clockwise by `degrees` stands it upright.
    scanned = upright.rotate(degrees, expand=True)
    path = tmp_path / f"scan.{fmt.lower()}"
    scanned.save(path, format=fmt, dpi=(300, 300), **({"quality": 95} if fmt == "JPEG" else {}))
    asked = []
    [page] = store_all(path, tmp_path / "out", orient=lambda p: asked.append(p.name) or degrees)
    assert asked and asked[0].startswith(".00001.")
    assert (page.rotation, page.path.name, page.mode, page.dpi) == (degrees, "00001.png", mode, 300)
    image = opened(page)
    assert (page.width, page.height) == image.size == upright.size
    if fmt == "JPEG":
        with Image.open(path) as jpeg:
            decoded_upright = jpeg.rotate(-degrees, expand=True)
        assert image.tobytes() == decoded_upright.tobytes()
    else:
        assert image.tobytes() == upright.tobytes()
    assert image.info["dpi"][0] == pytest.approx(300, abs=0.05)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00001.png"]


def test_a_page_orient_leaves_is_stored_as_it_came(tmp_path):
    path = tmp_path / "scan.jpg"
    marked("RGB").save(path, format="JPEG", dpi=(300, 300))
    [page] = store_all(path, tmp_path / "out", orient=lambda p: 0)
    assert (page.rotation, page.path.name) == (0, "00001.jpg")
    assert page.path.read_bytes() == path.read_bytes()


def test_jpeg_density_is_set_in_a_copied_upload(tmp_path):
    """An uploaded JPEG without a DPI is copied with the assumed DPI written in its header."""
    data = io.BytesIO()
    marked("L").save(data, format="JPEG")
    path = tmp_path / "scan.jpg"
    path.write_bytes(data.getvalue())
    [page] = store_all(path, tmp_path / "out")
    assert page.path.suffix == ".jpg"
    assert opened(page).info["dpi"] == (rendering.ASSUMED_IMAGE_DPI,) * 2
