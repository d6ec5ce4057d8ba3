"""The benchmark's book, made of the real scans of the corpus, and the ways to rasterize it."""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from app.rendering import POINTS_PER_INCH, SourceDocument, iter_pages, page_dpi
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


def pages_over_pdfium_limit(book: Book) -> int:
    """Pages of the book whose scans app/rendering.py gives to pdftoppm rather than PDFium."""
    from app import rendering

    pdf = pdfium.PdfDocument(str(book.path))
    try:
        return sum(
            rendering.decoded_scan_bytes(pdf[i]) > rendering.PDFIUM_MAX_SCAN_BYTES
            for i in range(len(pdf))
        )
    finally:
        pdf.close()


# -- memory in the page count: one process rendering a long book, as a split task does -----


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _render_long_book(args: tuple[str, str, list[int], int, int]) -> dict:
    """In a fresh process: render `indexes` one after another; RSS and peak after each page."""
    path, out_dir, indexes, dpi, max_pixels = args
    rss, peak = [], []
    baseline = _status_kib("VmRSS")
    with SourceDocument(Path(path)) as source:
        for index in indexes:
            rendered = source.render(index, Path(out_dir), default_dpi=dpi, max_pixels=max_pixels)
            rendered.path.unlink()
            rss.append(_status_kib("VmRSS"))
            peak.append(_status_kib("VmHWM"))
    return {"baseline_kib": baseline, "rss_kib": rss, "peak_kib": peak}


def _pdfium_page_peak_kib(args: tuple[str, str, int, int, int]) -> int:
    """In a fresh process: peak RSS of PDFium alone rendering one page, however big its scan."""
    path, out_dir, index, dpi, max_pixels = args
    from app import rendering

    rendering.PDFIUM_MAX_SCAN_BYTES = float("inf")
    with SourceDocument(Path(path)) as source:
        source.render(index, Path(out_dir), default_dpi=dpi, max_pixels=max_pixels).path.unlink()
    return _status_kib("VmHWM")


def _pdftoppm_peak_kib(path: Path, page_number: int, dpi: float, out: Path) -> int:
    """Peak RSS of `pdftoppm -gray` rendering one page: what the page costs another renderer.

    Read from /proc while it runs: the child's own ru_maxrss would include the benchmark's
    memory at the moment it forked (Linux counts the forked image's high-water mark).
    VmHWM only grows, so its last reading is the peak, short of the last few milliseconds."""
    process = subprocess.Popen(
        ["pdftoppm", "-gray", "-r", f"{dpi:.4f}", "-f", str(page_number), "-l", str(page_number)]
        + ["-singlefile", str(path), str(out / "p")]
    )
    peak = 0
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        time.sleep(0.005)
    if process.returncode != 0:
        raise RuntimeError(f"pdftoppm failed on page {page_number}: exit {process.returncode}")
    return peak


def memory_in_page_count(
    book: Book, work: Path, *, pages: int, default_dpi: int, max_pixels: int
) -> dict:
    """Render `pages` pages (the book's pages over and over) in one fresh process, as one
    split task renders its pages, and record its resident memory after every page; then the
    page that set the peak, rendered alone by pdftoppm, for comparison."""
    out = work / "memory"
    out.mkdir(exist_ok=True)
    indexes = [i % len(book.pages) for i in range(pages)]

    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
        figures = pool.submit(
            _render_long_book, (str(book.path), str(out), indexes, default_dpi, max_pixels)
        ).result()
    # The page whose rendering raised the peak the most.
    steps = [figures["peak_kib"][0] - figures["baseline_kib"]] + [
        b - a for a, b in zip(figures["peak_kib"], figures["peak_kib"][1:], strict=False)
    ]
    heaviest = indexes[max(range(len(steps)), key=steps.__getitem__)]
    pdf = pdfium.PdfDocument(str(book.path))
    try:
        page = pdf[heaviest]
        dpi = page_dpi(page, default_dpi, max_pixels)
        width_pt, height_pt = page.get_size()
        scans = [
            obj.get_metadata()
            for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2)
        ]
        page.close()
    finally:
        pdf.close()
    name, source_index = book.pages[heaviest]
    figures.update(
        pages=pages,
        heaviest_page=heaviest + 1,
        heaviest_source=f"{name} page {source_index + 1}",
        heaviest_size_in=(width_pt / POINTS_PER_INCH, height_pt / POINTS_PER_INCH),
        heaviest_dpi=dpi,
        heaviest_scans=[(m.width, m.height, m.bits_per_pixel) for m in scans],
        pdftoppm_peak_kib=_pdftoppm_peak_kib(book.path, heaviest + 1, dpi, out),
    )
    with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
        figures["pdfium_peak_kib"] = pool.submit(
            _pdfium_page_peak_kib, (str(book.path), str(out), heaviest, default_dpi, max_pixels)
        ).result()
    shutil.rmtree(out, ignore_errors=True)
    return figures
