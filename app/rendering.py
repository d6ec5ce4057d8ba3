"""Turning an uploaded source (a PDF, or a scanned image) into page images, one page at a time.

pypdfium2 renders a PDF page several times faster than pdftoppm (docs/performance.md), and
rendering one page at a time keeps memory flat however long the book is. Each page is
rendered at the resolution of the scan embedded in it (never above RENDER_DPI, and within
RENDER_MAX_PIXELS), so a 150 DPI scan is not blown up to 300 DPI only to be read back.

PDFium decodes an embedded scan whole before scaling it, so one huge scan sets the worker's
memory peak; a page whose scans decode to more than PDFIUM_MAX_SCAN_BYTES is rendered by
pdftoppm instead, which scales while it decodes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

#: Never render below this: Tesseract reads text of ordinary size badly under ~150 DPI.
MIN_DPI = 150
POINTS_PER_INCH = 72
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
#: A page whose embedded scans decode to more than this goes to pdftoppm. PDFium needs about
#: twice a scan's decoded size on top of the process (a 9000 x 9000 RGB scan, 243 MB
#: decoded: 560 MB peak, against 127 MB for pdftoppm), but renders twice as fast (0.9 s against
#: 1.7 s for that page). Below this, PDFium keeps a worker under ~350 MB; a letter-size colour
#: scan is 25 MB at 300 DPI and 100 MB at 600 DPI, so books of ordinary scans stay on PDFium.
PDFIUM_MAX_SCAN_BYTES = 96 * 1024 * 1024
#: A page pdftoppm has not rendered in this long is refused rather than left to block a worker.
PDFTOPPM_TIMEOUT = 300
# Pillow refuses images whose header claims more pixels than this (decompression bombs).
Image.MAX_IMAGE_PIXELS = 200_000_000


class UnusableSource(ValueError):
    """The uploaded file cannot be turned into pages; the message is for the user."""


@dataclass(frozen=True)
class RenderedPage:
    path: Path
    width: int
    height: int
    dpi: float


def sniff_kind(path: Path) -> str:
    """Whether the file is a "pdf" or an "image", judged by content rather than by name."""
    with path.open("rb") as fh:
        head = fh.read(1024)
    if not head:
        raise UnusableSource("The file is empty (0 bytes).")
    if b"%PDF-" in head:
        return "pdf"
    try:
        with _pillow_quietly(), Image.open(path) as image:
            image.verify()
    except UnidentifiedImageError:
        raise UnusableSource("The file is neither a PDF nor a PNG, JPEG or TIFF image.") from None
    except Exception as exc:  # noqa: BLE001 -- Pillow's parsers raise many types on hostile data
        raise UnusableSource(f"The image is damaged and cannot be read ({exc}).") from None
    return "image"


@contextlib.contextmanager
def _pillow_quietly() -> Iterator[None]:
    """Pillow warns about damaged metadata it works around; for an upload what counts is the
    outcome (an image that opens, or UnusableSource), while a decompression bomb is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


class SourceDocument(contextlib.AbstractContextManager):
    """An opened source whose pages can be rendered one by one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = sniff_kind(path)
        self._pdf: pdfium.PdfDocument | None = None
        self._image: Image.Image | None = None
        if self.kind == "pdf":
            self._pdf = _open_pdf(path)
            self.page_count = len(self._pdf)
        else:
            try:
                with _pillow_quietly():
                    self._image = Image.open(path)
                    self.page_count = getattr(self._image, "n_frames", 1)
            except Exception as exc:  # noqa: BLE001 -- as in sniff_kind
                self.close()
                raise UnusableSource(f"The image is damaged and cannot be read ({exc}).") from None
        if self.page_count == 0:
            self.close()
            raise UnusableSource("The PDF has no pages.")

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None
        if self._image is not None:
            self._image.close()
            self._image = None

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(
        self, index: int, out_dir: Path, *, default_dpi: int, max_pixels: int
    ) -> RenderedPage:
        """Render page `index` (0-based) to a grayscale PNG in `out_dir`."""
        out = out_dir / f"{index + 1:05d}.png"
        if self._pdf is not None:
            image, dpi = _render_pdf_page(
                self._pdf, self.path, index, out_dir, default_dpi, max_pixels
            )
        else:
            assert self._image is not None
            image, dpi = _image_frame(self._image, index, max_pixels)
        try:
            # Compression level 1: a third of the time of the default for ~10% more bytes;
            # a page is written once and read by Tesseract and browsers many times.
            # Written aside and renamed, so a reader never sees half a file, and two tasks
            # rendering the same page (a redelivered split) cannot interleave their bytes.
            partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
            image.save(partial, format="PNG", compress_level=1)
            os.replace(partial, out)
            return RenderedPage(path=out, width=image.width, height=image.height, dpi=dpi)
        finally:
            image.close()


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


def decoded_scan_bytes(page: pdfium.PdfPage) -> int:
    """Bytes the page's embedded scans take once decoded: what PDFium holds to render it."""
    return sum(m.width * m.height * max(m.bits_per_pixel, 1) // 8 for m in _scans(page))


def _pixels(width_pt: float, height_pt: float, dpi: float) -> int:
    scale = dpi / POINTS_PER_INCH
    return math.ceil(width_pt * scale) * math.ceil(height_pt * scale)


def _render_pdf_page(
    pdf: pdfium.PdfDocument,
    path: Path,
    index: int,
    out_dir: Path,
    default_dpi: int,
    max_pixels: int,
) -> tuple[Image.Image, float]:
    page = pdf[index]
    try:
        dpi = page_dpi(page, default_dpi, max_pixels)
        if decoded_scan_bytes(page) > PDFIUM_MAX_SCAN_BYTES:
            image = _render_with_pdftoppm(path, index, out_dir, dpi)
            if image is not None:
                return image, dpi
        bitmap = page.render(scale=dpi / POINTS_PER_INCH, grayscale=True)
        try:
            return bitmap.to_pil().convert("L"), dpi
        finally:
            bitmap.close()
    except pdfium.PdfiumError as exc:
        raise UnusableSource(f"Page {index + 1} cannot be rendered ({exc}).") from None
    finally:
        page.close()


def _render_with_pdftoppm(path: Path, index: int, out_dir: Path, dpi: float) -> Image.Image | None:
    """Page `index` rendered by pdftoppm to 8-bit gray; None if pdftoppm is not installed."""
    number = str(index + 1)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".pdftoppm-") as tmp:
        root = Path(tmp) / "page"
        command = ["pdftoppm", "-gray", "-r", f"{dpi:.4f}", "-f", number, "-l", number]
        try:
            subprocess.run(
                [*command, "-singlefile", str(path), str(root)],
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
        with _pillow_quietly(), Image.open(root.with_suffix(".pgm")) as image:
            image.load()
            return image.convert("L") if image.mode != "L" else image.copy()


def _image_frame(image: Image.Image, index: int, max_pixels: int) -> tuple[Image.Image, float]:
    try:
        with _pillow_quietly():
            image.seek(index)
            frame = image.convert("L")
    except Exception as exc:  # noqa: BLE001 -- as in sniff_kind
        raise UnusableSource(f"Image frame {index + 1} cannot be read ({exc}).") from None
    dpi = float((image.info.get("dpi") or (300, 300))[0] or 300)
    if frame.width * frame.height > max_pixels:
        scale = (max_pixels / (frame.width * frame.height)) ** 0.5
        frame = frame.resize((int(frame.width * scale), int(frame.height * scale)))
        dpi *= scale
    return frame, dpi


def iter_pages(
    path: Path,
    out_dir: Path,
    *,
    default_dpi: int,
    max_pixels: int,
    indexes: Iterable[int] | None = None,
) -> Iterator[tuple[int, RenderedPage]]:
    """Render the pages at `indexes` (default: all), one at a time, as (index, page)."""
    with SourceDocument(path) as source:
        for index in range(source.page_count) if indexes is None else indexes:
            yield (
                index,
                source.render(index, out_dir, default_dpi=default_dpi, max_pixels=max_pixels),
            )
