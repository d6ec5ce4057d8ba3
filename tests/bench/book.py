"""The benchmark's book, made of the real scans of the corpus, and the ways to rasterize it."""

from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium

from app.rendering import POINTS_PER_INCH, iter_pages
from tests.support import CORPUS

#: One round of the book: the six pages of multipage.pdf, then four single-page scans.
ROUND = [("multipage.pdf", i) for i in range(6)] + [
    ("c02-22.pdf", 0),
    ("linn.pdf", 0),
    ("skew.pdf", 0),
    ("francais.pdf", 0),
]


@dataclass(frozen=True)
class Book:
    path: Path
    #: (corpus file, page index in it) of each page of the book.
    pages: list[tuple[str, int]]

    def first(self, name: str) -> int:
        """0-based index of the first page taken from corpus file `name`."""
        return next(i for i, (source, _) in enumerate(self.pages) if source == name)


def build_book(page_count: int, out: Path) -> Book:
    """A PDF of `page_count` pages: ROUND repeated, the last round cut short."""
    pages = [ROUND[i % len(ROUND)] for i in range(page_count)]
    book = pdfium.PdfDocument.new()
    sources = {name: pdfium.PdfDocument(str(CORPUS / name)) for name, _ in ROUND}
    try:
        for name, index in pages:
            book.import_pages(sources[name], [index])
        book.save(str(out))
    finally:
        book.close()
        for source in sources.values():
            source.close()
    return Book(out, pages)


# -- the floor's rasterization: the app's own policy, in as many processes as cores --------


def _render_share(args: tuple[str, str, list[int], int, int]) -> list[tuple[int, float]]:
    path, out_dir, indexes, default_dpi, max_pixels = args
    times = []
    started = time.monotonic()
    for index, _page in iter_pages(
        Path(path), Path(out_dir), default_dpi=default_dpi, max_pixels=max_pixels, indexes=indexes
    ):
        now = time.monotonic()
        times.append((index, now - started))
        started = now
    return times


def rasterize_parallel(
    book: Book, out_dir: Path, processes: int, *, default_dpi: int, max_pixels: int
) -> dict[int, float]:
    """Render every page with app.rendering in `processes` processes; seconds per page."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shares = [
        (
            str(book.path),
            str(out_dir),
            list(range(n, len(book.pages), processes)),
            default_dpi,
            max_pixels,
        )
        for n in range(processes)
    ]
    with ProcessPoolExecutor(processes) as pool:
        return {
            index: seconds for share in pool.map(_render_share, shares) for index, seconds in share
        }


# -- the renderer comparison: each way over the whole book, one page after another --------


@dataclass(frozen=True)
class RendererTiming:
    name: str
    command: str
    seconds: float
    megabytes: float
    megapixels: float


def _measure(name: str, command: str, out_dir: Path, run) -> RendererTiming:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    started = time.monotonic()
    run()
    seconds = time.monotonic() - started
    files = [f for f in out_dir.iterdir() if f.is_file()]
    megabytes = sum(f.stat().st_size for f in files) / 1e6
    megapixels = sum(_pixels(f) for f in files) / 1e6
    shutil.rmtree(out_dir)
    return RendererTiming(name, command, seconds, megabytes, megapixels)


def _pixels(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.width * image.height


def _pdfium_fixed_dpi(book: Path, out_dir: Path, dpi: int) -> None:
    pdf = pdfium.PdfDocument(str(book))
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            bitmap = page.render(scale=dpi / POINTS_PER_INCH, grayscale=True)
            image = bitmap.to_pil().convert("L")
            image.save(out_dir / f"{index + 1:05d}.png", format="PNG", compress_level=1)
            image.close()
            bitmap.close()
            page.close()
    finally:
        pdf.close()


def compare_renderers(
    book: Book, work: Path, *, default_dpi: int, max_pixels: int, progress
) -> list[RendererTiming]:
    """Wall time of each way of turning the book into page images, sequentially."""
    path = book.path
    ways = [
        (
            "pdftoppm PNG (RGB), 300 DPI",
            "pdftoppm -png -r 300",
            lambda out: subprocess.run(
                ["pdftoppm", "-png", "-r", "300", str(path), str(out / "p")], check=True
            ),
        ),
        (
            "pdftoppm PGM (gray), 300 DPI",
            "pdftoppm -gray -r 300",
            lambda out: subprocess.run(
                ["pdftoppm", "-gray", "-r", "300", str(path), str(out / "p")], check=True
            ),
        ),
        (
            "pypdfium2 gray PNG, 300 DPI",
            "page.render(scale=300/72, grayscale=True); PNG level 1",
            lambda out: _pdfium_fixed_dpi(path, out, 300),
        ),
        (
            "pypdfium2 gray PNG, the scan's own DPI (app.rendering)",
            f"app.rendering.iter_pages(default_dpi={default_dpi})",
            lambda out: list(iter_pages(path, out, default_dpi=default_dpi, max_pixels=max_pixels)),
        ),
    ]
    timings = []
    for name, command, run in ways:
        out = work / "renderers"
        timing = _measure(name, command, out, lambda run=run, out=out: run(out))
        progress(f"renderer {name}: {timing.seconds:.1f} s")
        timings.append(timing)
    return timings
