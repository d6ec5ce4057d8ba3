"""Turning a stored source (app/sources.py) into page images, one page at a time, keeping the
scan as it is.

A page image keeps the scan's pixel format and resolution: a 1-bit scan is stored as a 1-bit
PNG, grey as grey, colour as colour, and the resolution is written into the file (PNG pHYs,
JPEG density) and returned, so that Tesseract never has to guess it. Measured on the corpus
(docs/performance.md), a 1-bit page costs Tesseract no more time than its grey rendering, with
the same text, in a third of the bytes.

A PDF page that is one full-page scan is taken out of the PDF as it is (app/pdf_scans.py);
any other page is rendered with pypdfium2, which is several times faster than pdftoppm, at
the resolution of the scan embedded in it (never above RENDER_DPI, never below MIN_DPI, and
within RENDER_MAX_PIXELS), in colour only if a scan on it is in colour. An image upload keeps
its own pixels (a JPEG is copied as it is), within RENDER_MAX_PIXELS.

PDFium decodes an embedded scan whole before scaling it, so one huge scan sets the worker's
memory peak; a page whose scans decode to more than PDFIUM_MAX_SCAN_BYTES is rendered by
pdftoppm instead, which scales while it decodes. Pages are rendered one at a time, so memory
stays flat however long the book is.

When asked, each page is turned upright before it is stored (`orient`, e.g. Tesseract's
orientation detection): by whole quarter turns of its pixels, which loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageOps

from app.pdf_scans import ExtractedScan, extract_single_scan, jpeg_with_density
from app.sources import UnusableSource, page_images, pillow_quietly, sniff_kind

__all__ = ["RenderedPage", "SourceDocument", "UnusableSource", "iter_pages", "sniff_kind"]

log = logging.getLogger(__name__)

#: Never render below this: Tesseract reads text of ordinary size badly under ~150 DPI.
MIN_DPI = 150
POINTS_PER_INCH = 72
#: What an image that does not say its resolution is taken to be: the usual scanning one.
ASSUMED_IMAGE_DPI = 300
#: A page whose embedded scans decode to more than this goes to pdftoppm. PDFium needs about
#: twice a scan's decoded size on top of the process (a 9000 x 9000 RGB scan, 243 MB
#: decoded: 560 MB peak, against 127 MB for pdftoppm), but renders twice as fast (0.9 s against
#: 1.7 s for that page). Below this, PDFium keeps a worker under ~350 MB; a letter-size colour
#: scan is 25 MB at 300 DPI and 100 MB at 600 DPI, so books of ordinary scans stay on PDFium.
#: Extracting a scan (app/pdf_scans.py) holds about as much, and obeys the same limit.
PDFIUM_MAX_SCAN_BYTES = 96 * 1024 * 1024
#: A page pdftoppm has not rendered in this long is refused rather than left to block a worker.
PDFTOPPM_TIMEOUT = 300
#: PNG compression level per stored mode. Level 1 takes a third of the time of the default
#: for ~10% more bytes on grey and colour; on a 1-bit letter page at 300 DPI level 6 costs
#: 0.03 s more than level 1 and saves 13% of its bytes (level 9: 0.5 s more, 5% fewer again).
PNG_COMPRESS_LEVEL = {"1": 6, "L": 1, "RGB": 1}
#: Tells, from a page image file, the clockwise quarter turn that makes it upright (0 if none).
Orient = Callable[[Path], int]


@dataclass(frozen=True)
class RenderedPage:
    path: Path
    width: int
    height: int
    dpi: float
    #: The stored file's pixel format: "1" (bilevel), "L" (grey) or "RGB".
    mode: str = "L"
    #: Degrees the page was turned clockwise to stand upright (0 when it was, or not asked).
    rotation: int = 0


@dataclass
class _PageImage:
    """A page ready to store: JPEG or PNG bytes to copy, or pixels to write as PNG."""

    width: int
    height: int
    mode: str
    dpi: float
    jpeg: bytes | None = None
    image: Image.Image | None = None
    #: A PNG page file's own bytes, stored as they are.
    png: bytes | None = None

    def close(self) -> None:
        if self.image is not None:
            self.image.close()


class SourceDocument(contextlib.AbstractContextManager):
    """An opened source (a PDF, an image file, or a folder of page images) whose pages can be
    rendered one by one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pdf: pdfium.PdfDocument | None = None
        self._pikepdf: pikepdf.Pdf | None = None
        self._image: Image.Image | None = None
        self._files: list[Path] = []
        if path.is_dir():
            self.kind = "images"
            self._files = page_images(path)
            self.page_count = len(self._files)
        else:
            self.kind = sniff_kind(path)
            if self.kind == "zip":
                raise UnusableSource("A ZIP is unpacked when uploaded, not rendered.")
            if self.kind == "pdf":
                self._pdf = _open_pdf(path)
                self.page_count = len(self._pdf)
            else:
                try:
                    with pillow_quietly():
                        self._image = Image.open(path)
                        self.page_count = getattr(self._image, "n_frames", 1)
                except Exception as exc:  # noqa: BLE001 -- as in sniff_kind
                    self.close()
                    raise UnusableSource(
                        f"The image is damaged and cannot be read ({exc})."
                    ) from None
        if self.page_count == 0:
            self.close()
            raise UnusableSource("The PDF has no pages." if self.kind == "pdf" else "No pages.")

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None
        if self._pikepdf is not None:
            self._pikepdf.close()
            self._pikepdf = None
        if self._image is not None:
            self._image.close()
            self._image = None

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(
        self,
        index: int,
        out_dir: Path,
        *,
        default_dpi: int,
        max_pixels: int,
        orient: Orient | None = None,
    ) -> RenderedPage:
        """Store page `index` (0-based) in `out_dir` as NNNNN.png or NNNNN.jpg."""
        if self._pdf is not None:
            page = self._pdf_page(index, out_dir, default_dpi, max_pixels)
        elif self._image is not None:
            page = _image_page(self._image, index, max_pixels, self.path)
        else:
            page = self._folder_page(index, max_pixels)
        try:
            return _store(page, out_dir / f"{index + 1:05d}", orient)
        finally:
            page.close()

    def _pdf_page(self, index: int, out_dir: Path, default_dpi: int, max_pixels: int) -> _PageImage:
        assert self._pdf is not None
        page = self._pdf[index]
        try:
            scan = extract_single_scan(
                page,
                self._open_pikepdf,
                index,
                min_dpi=MIN_DPI,
                max_pixels=max_pixels,
                max_decoded_bytes=PDFIUM_MAX_SCAN_BYTES,
            )
            if scan is not None:
                return _from_scan(scan)
            return _render_pdf_page(page, self.path, index, out_dir, default_dpi, max_pixels)
        except pdfium.PdfiumError as exc:
            raise UnusableSource(f"Page {index + 1} cannot be rendered ({exc}).") from None
        finally:
            page.close()

    def _open_pikepdf(self) -> pikepdf.Pdf:
        if self._pikepdf is None:
            self._pikepdf = pikepdf.open(self.path)
        return self._pikepdf

    def _folder_page(self, index: int, max_pixels: int) -> _PageImage:
        path = self._files[index]
        try:
            with pillow_quietly():
                image = Image.open(path)
        except Exception as exc:  # noqa: BLE001 -- as in sniff_kind
            raise UnusableSource(f"Page image {index + 1} cannot be read ({exc}).") from None
        with image:
            return _image_page(image, 0, max_pixels, path)


def _from_scan(scan: ExtractedScan) -> _PageImage:
    return _PageImage(
        scan.width, scan.height, scan.mode, scan.dpi, jpeg=scan.jpeg, image=scan.image
    )


def _store(page: _PageImage, stem: Path, orient: Orient | None) -> RenderedPage:
    """Write the page beside its final name and rename it there, so a reader never sees half a
    file and two tasks storing the same page (a redelivered split) cannot interleave bytes."""
    suffix = ".jpg" if page.jpeg is not None else ".png"
    partial = stem.with_name(f".{stem.name}.{os.getpid()}.partial{suffix}")
    _write(page, partial)
    rotation = 0
    if orient is not None:
        rotation = orient(partial) % 360
        if rotation:
            partial = _turn(partial, page, rotation, stem)
            suffix = ".png"
    out = stem.with_suffix(suffix)
    os.replace(partial, out)
    if rotation in (90, 270):
        page.width, page.height = page.height, page.width
    return RenderedPage(out, page.width, page.height, page.dpi, page.mode, rotation)


def _write(page: _PageImage, path: Path) -> None:
    if page.jpeg is not None or page.png is not None:
        path.write_bytes(page.jpeg if page.jpeg is not None else page.png)
        return
    assert page.image is not None
    page.image.save(
        path, format="PNG", compress_level=PNG_COMPRESS_LEVEL[page.mode], dpi=(page.dpi,) * 2
    )


#: Pillow's transposition that turns an image clockwise by the key's degrees.
_CLOCKWISE = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


def _turn(partial: Path, page: _PageImage, degrees: int, stem: Path) -> Path:
    """The stored page turned clockwise by `degrees`, as a PNG: a JPEG cannot be turned
    without re-encoding (or losing edge blocks), so its decoded pixels are kept instead."""
    if degrees not in _CLOCKWISE:
        raise ValueError(f"a page turns by quarter turns, not {degrees} degrees")
    with pillow_quietly(), Image.open(partial) as image:
        turned = image.transpose(_CLOCKWISE[degrees])
    try:
        page.jpeg, page.png, page.image = None, None, turned
        out = stem.with_name(f".{stem.name}.{os.getpid()}.turned.png")
        _write(page, out)
    finally:
        turned.close()
        page.image = None
    partial.unlink()
    return out


def _open_pdf(path: Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError:
        raise UnusableSource(_why_pdf_fails(path)) from None


def _why_pdf_fails(path: Path) -> str:
    """Why PDFium refused a file, asked of qpdf: PDFium's own error code can be stale (it is
    not set when it refuses a PDF without pages)."""
    try:
        with pikepdf.open(path) as pdf:
            if len(pdf.pages) == 0:
                return "The PDF has no pages."
    except pikepdf.PasswordError:
        return "The PDF is encrypted with a password; upload an unlocked copy."
    except pikepdf.PdfError as exc:
        return f"The PDF is damaged and cannot be opened ({_first_line(str(exc))})."
    return "The PDF is damaged and cannot be opened."


def _first_line(message: str) -> str:
    # qpdf prefixes its messages with the file's path, which is ours, not the user's.
    line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return line.split(": ", 1)[-1][:200]


def page_dpi(page: pdfium.PdfPage, default_dpi: int, max_pixels: int) -> float:
    """The resolution to render a page at: its scan's own, within [MIN_DPI, default_dpi]."""
    dpi = float(default_dpi)
    image_dpis = [max(meta.horizontal_dpi, meta.vertical_dpi) for meta in _scans(page)]
    if image_dpis:
        dpi = min(float(default_dpi), max(MIN_DPI, max(image_dpis)))
    width_pt, height_pt = page.get_size()
    if _pixels(width_pt, height_pt, dpi) > max_pixels:
        dpi *= (max_pixels / _pixels(width_pt, height_pt, dpi)) ** 0.5
        # PDFium rounds each side up: step down until the rounded size fits too.
        while dpi > 1 and _pixels(width_pt, height_pt, dpi) > max_pixels:
            dpi *= 0.9999
    return dpi


def _scans(page: pdfium.PdfPage) -> list[pdfium_c.FPDF_IMAGEOBJ_METADATA]:
    """What the page's embedded images say of themselves (size, bits per pixel, DPI)."""
    scans = []
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        with contextlib.suppress(pdfium.PdfiumError):
            scans.append(obj.get_metadata())
    return scans


#: PDFium's colour spaces of images that are in colour.
_COLOUR_SPACES = {
    pdfium_c.FPDF_COLORSPACE_DEVICERGB,
    pdfium_c.FPDF_COLORSPACE_DEVICECMYK,
    pdfium_c.FPDF_COLORSPACE_CALRGB,
    pdfium_c.FPDF_COLORSPACE_LAB,
    pdfium_c.FPDF_COLORSPACE_INDEXED,
}


def _has_colour_scan(page: pdfium.PdfPage) -> bool:
    """Whether a scan on the page is in colour: then the page is rendered in colour."""
    return any(
        meta.colorspace in _COLOUR_SPACES or meta.bits_per_pixel >= 24 for meta in _scans(page)
    )


def decoded_scan_bytes(page: pdfium.PdfPage) -> int:
    """Bytes the page's embedded scans take once decoded: what PDFium holds to render it."""
    return sum(m.width * m.height * max(m.bits_per_pixel, 1) // 8 for m in _scans(page))


def _pixels(width_pt: float, height_pt: float, dpi: float) -> int:
    scale = dpi / POINTS_PER_INCH
    return math.ceil(width_pt * scale) * math.ceil(height_pt * scale)


def _render_pdf_page(
    page: pdfium.PdfPage,
    path: Path,
    index: int,
    out_dir: Path,
    default_dpi: int,
    max_pixels: int,
) -> _PageImage:
    dpi = page_dpi(page, default_dpi, max_pixels)
    mode = "RGB" if _has_colour_scan(page) else "L"
    image = None
    if decoded_scan_bytes(page) > PDFIUM_MAX_SCAN_BYTES:
        image = _render_with_pdftoppm(path, index, out_dir, dpi, mode)
    if image is None:
        bitmap = page.render(scale=dpi / POINTS_PER_INCH, grayscale=mode == "L")
        try:
            image = bitmap.to_pil().convert(mode)
        finally:
            bitmap.close()
    return _PageImage(image.width, image.height, mode, dpi, image=image)


def _render_with_pdftoppm(
    path: Path, index: int, out_dir: Path, dpi: float, mode: str
) -> Image.Image | None:
    """Page `index` rendered by pdftoppm in `mode` (L or RGB); None if pdftoppm is missing."""
    number = str(index + 1)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".pdftoppm-") as tmp:
        root = Path(tmp) / "page"
        command = ["pdftoppm", *(["-gray"] if mode == "L" else []), "-r", f"{dpi:.4f}"]
        try:
            subprocess.run(
                [*command, "-f", number, "-l", number, "-singlefile", str(path), str(root)],
                check=True,
                capture_output=True,
                timeout=PDFTOPPM_TIMEOUT,
            )
        except FileNotFoundError:
            log.warning("pdftoppm is not installed: page %s of %s goes to PDFium", number, path)
            return None
        except subprocess.TimeoutExpired:
            raise UnusableSource(
                f"Page {number} took over {PDFTOPPM_TIMEOUT} s to render."
            ) from None
        except subprocess.CalledProcessError as exc:
            why = _first_line(exc.stderr.decode("utf-8", "replace")) if exc.stderr else "failed"
            raise UnusableSource(f"Page {number} cannot be rendered ({why}).") from None
        written = root.with_suffix(".pgm" if mode == "L" else ".ppm")
        # Loaded, then returned as it is: a copy would hold the page twice (a 40-megapixel
        # RGB page is 120 MB decoded). Once loaded, the image no longer needs its file.
        with pillow_quietly():
            image = Image.open(written)
            image.load()
        if image.mode == mode:
            return image
        with image:
            return image.convert(mode)


def _image_page(image: Image.Image, index: int, max_pixels: int, file: Path | None) -> _PageImage:
    """Frame `index` of an uploaded image, in its own mode where a browser and Tesseract read
    that mode ("1", "L", "RGB"), else the nearest of them; a JPEG file is copied as it is."""
    try:
        with pillow_quietly():
            image.seek(index)
            dpi = _image_dpi(image)
            if file is not None and (
                copied := _copied_jpeg(image, file, dpi, max_pixels)
                or _copied_png(image, file, max_pixels)
            ):
                return copied
            frame = _standard_mode(ImageOps.exif_transpose(image))
    except UnusableSource:
        raise
    except Exception as exc:  # noqa: BLE001 -- as in sniff_kind
        raise UnusableSource(f"Image frame {index + 1} cannot be read ({exc}).") from None
    if frame.width * frame.height > max_pixels:
        scale = (max_pixels / (frame.width * frame.height)) ** 0.5
        if frame.mode == "1":
            frame = frame.convert("L")  # shrinking a bilevel scan needs grey to stay legible
        frame = frame.resize((int(frame.width * scale), int(frame.height * scale)))
        dpi *= scale
    return _PageImage(frame.width, frame.height, frame.mode, dpi, image=frame)


def _image_dpi(image: Image.Image) -> float:
    x_dpi = float((image.info.get("dpi") or (0, 0))[0] or 0)
    if x_dpi < 1:
        return float(ASSUMED_IMAGE_DPI)
    # PNG counts pixels per metre, so 300 DPI reads back as 299.9994: the scanner meant 300.
    return float(round(x_dpi)) if abs(x_dpi - round(x_dpi)) < 0.05 else round(x_dpi, 2)


def _copied_jpeg(image: Image.Image, file: Path, dpi: float, max_pixels: int) -> _PageImage | None:
    """A JPEG page file copied as it is (its density set), when nothing about it needs its
    pixels changed: not CMYK, not turned by an EXIF tag, within max_pixels."""
    if image.format != "JPEG" or image.mode not in ("L", "RGB"):
        return None
    if image.width * image.height > max_pixels or image.getexif().get(0x0112, 1) != 1:
        return None
    data = jpeg_with_density(file.read_bytes(), dpi)
    if data is None:
        return None
    return _PageImage(image.width, image.height, image.mode, dpi, jpeg=data)


def _copied_png(image: Image.Image, file: Path, max_pixels: int) -> _PageImage | None:
    """A PNG page file copied as it is, when it already is what the split would write: one
    frame in a mode a browser and Tesseract read ("1", "L", "RGB"), with its resolution,
    within max_pixels, and not turned by an EXIF tag. Writing it again would only cost time
    (a grey A4 page at 300 DPI takes most of a second to encode)."""
    if image.format != "PNG" or image.mode not in ("1", "L", "RGB"):
        return None
    if getattr(image, "n_frames", 1) != 1 or not image.info.get("dpi"):
        return None
    if image.width * image.height > max_pixels or image.getexif().get(0x0112, 1) != 1:
        return None
    return _PageImage(
        image.width, image.height, image.mode, _image_dpi(image), png=file.read_bytes()
    )


def _standard_mode(frame: Image.Image) -> Image.Image:
    """The frame in "1", "L" or "RGB", whichever holds its pixels without loss where one can."""
    mode = frame.mode
    if mode in ("1", "L", "RGB"):
        return frame
    if mode == "P":
        return _from_palette(frame)
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grey: the top 8 bits, which is what a browser shows of it.
        return frame.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if mode in ("LA", "La", "RGBA", "RGBa", "PA"):
        rgba = frame.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)  # transparency shows as paper
        grey = mode in ("LA", "La")
        return flat.convert("L" if grey else "RGB")
    return frame.convert("RGB")  # CMYK, YCbCr, LAB, F


def _from_palette(frame: Image.Image) -> Image.Image:
    """A palette image as "1" or "L" when its colours in use are black/white or greys."""
    if "transparency" in frame.info:
        return _standard_mode(frame.convert("RGBA"))
    palette = frame.getpalette() or []
    used = {index for _, index in frame.getcolors(256) or []}
    colours = {tuple(palette[3 * i : 3 * i + 3]) for i in used}
    if all(len(set(c)) == 1 for c in colours):
        grey = frame.convert("L")
        if {c[0] for c in colours} <= {0, 255}:
            return grey.convert("1", dither=Image.Dither.NONE)
        return grey
    return frame.convert("RGB")


def iter_pages(
    path: Path,
    out_dir: Path,
    *,
    default_dpi: int,
    max_pixels: int,
    indexes: Iterable[int] | None = None,
    orient: Orient | None = None,
) -> Iterator[tuple[int, RenderedPage]]:
    """Store the pages at `indexes` (default: all), one at a time, as (index, page)."""
    with SourceDocument(path) as source:
        for index in range(source.page_count) if indexes is None else indexes:
            yield (
                index,
                source.render(
                    index, out_dir, default_dpi=default_dpi, max_pixels=max_pixels, orient=orient
                ),
            )
