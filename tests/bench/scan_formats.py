"""What keeping the scan as it is does to Tesseract: time, text and bytes, before and after.

    .venv/bin/python -m tests.bench.scan_formats [--runs 3] [--pages 5]

For each page of each book (the bilevel CCITT PDF, the Group 4 TIFF and the grey folder of
tests/bench/books.py, and linn.pdf and c02-22.pdf of the corpus), the page is stored twice:
"before", as the split did until pages kept their scan's format (PDF pages rendered to 8-bit
grey by PDFium at the scan's resolution, image frames converted to grey, PNG level 1), and
"after", by app/rendering.py as it is now. Each is read by the `tesseract` command; the CPU
seconds it takes (its user + system time, which other load on the machine disturbs less than
the wall clock) are the median of --runs runs. The character error rate is measured where
there is ground truth (linn.txt for linn.pdf's page; the drawn text for the Devanagari page),
and orientation detection (`--psm 0`) is timed on each stored page too.

    .venv/bin/python -m tests.bench.scan_formats --colour

compares instead a colour page with its grey conversion: the Devanagari page drawn in brown
ink on cream paper (with ground truth), and c02-22.pdf's colour JPEG scan.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
from PIL import Image

from app.engines.tesseract import detect_rotation
from app.rendering import POINTS_PER_INCH, SourceDocument, page_dpi
from tests.bench import books
from tests.bench.measure import character_error_rate
from tests.support import CORPUS

ENV = {**os.environ, "OMP_THREAD_LIMIT": "1"}


@dataclass
class Measured:
    book: str
    page: int
    before_mode: str
    after_mode: str
    before_kib: float
    after_kib: float
    before_cpu: float
    after_cpu: float
    before_cer: float | None
    after_cer: float | None
    osd_seconds: float


def tesseract(path: Path, language: str, runs: int) -> tuple[float, str]:
    """Median CPU seconds of `tesseract PATH - -l LANGUAGE`, and the text it printed."""
    seconds, text = [], ""
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        text = subprocess.run(
            ["tesseract", str(path), "-", "-l", language],
            capture_output=True,
            text=True,
            check=True,
            env=ENV,
        ).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(seconds), text


def before_page(source: Path, index: int, out: Path) -> Path:
    """The page as the split stored it before: 8-bit grey PNG, level 1."""
    if source.suffix == ".pdf":
        pdf = pdfium.PdfDocument(str(source))
        try:
            page = pdf[index]
            dpi = page_dpi(page, 300, 40_000_000)
            image = page.render(scale=dpi / POINTS_PER_INCH, grayscale=True).to_pil().convert("L")
            page.close()
        finally:
            pdf.close()
    else:
        frame_source = sorted(source.iterdir())[index] if source.is_dir() else source
        with Image.open(frame_source) as frames:
            frames.seek(0 if source.is_dir() else index)
            dpi = float((frames.info.get("dpi") or (300, 300))[0])
            image = frames.convert("L")
    path = out / f"before-{index + 1:03d}.png"
    image.save(path, format="PNG", compress_level=1)
    return path


def ground_truth(book: str, index: int) -> tuple[str | None, str]:
    """(reference text or None, Tesseract language) of page `index` of `book`."""
    if book in ("linn.pdf",):
        return (CORPUS / "linn.txt").read_text(), "eng"
    if book == "c02-22.pdf":
        return None, "eng"
    name = books.TEXT_PAGES[index % len(books.TEXT_PAGES)]
    if name == "devanagari":
        return books.devanagari_page()[1], "san"
    return ((CORPUS / "linn.txt").read_text() if name == "linn.pdf" else None), "eng"


def measure_book(book: str, source: Path, work: Path, runs: int) -> list[Measured]:
    rows = []
    out = work / book.replace("/", "-")
    out.mkdir(parents=True)
    with SourceDocument(source) as document:
        for index in range(document.page_count):
            after = document.render(index, out, default_dpi=300, max_pixels=40_000_000)
            before = before_page(source, index, out)
            reference, language = ground_truth(book, index)
            before_cpu, before_text = tesseract(before, language, runs)
            after_cpu, after_text = tesseract(after.path, language, runs)
            started = time.perf_counter()
            detect_rotation(after.path)
            osd = time.perf_counter() - started
            with Image.open(before) as image:
                before_mode = image.mode
            rows.append(
                Measured(
                    book,
                    index + 1,
                    before_mode,
                    f"{after.mode} {after.path.suffix[1:]}",
                    before.stat().st_size / 1024,
                    after.path.stat().st_size / 1024,
                    before_cpu,
                    after_cpu,
                    character_error_rate(before_text, reference) if reference else None,
                    character_error_rate(after_text, reference) if reference else None,
                    osd,
                )
            )
            print(f"  {book} page {index + 1} done", file=sys.stderr)
    return rows


def _cer(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown(rows: list[Measured]) -> str:
    lines = [
        "| book | page | stored before | stored after | KiB before | KiB after "
        "| Tesseract CPU s before | after | CER before | after | OSD s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.book} | {r.page} | {r.before_mode} png | {r.after_mode} "
            f"| {r.before_kib:.0f} | {r.after_kib:.0f} | {r.before_cpu:.2f} | {r.after_cpu:.2f} "
            f"| {_cer(r.before_cer)} | {_cer(r.after_cer)} | {r.osd_seconds:.2f} |"
        )
    total = {
        "KiB before": sum(r.before_kib for r in rows),
        "KiB after": sum(r.after_kib for r in rows),
        "CPU before": sum(r.before_cpu for r in rows),
        "CPU after": sum(r.after_cpu for r in rows),
        "OSD": sum(r.osd_seconds for r in rows),
    }
    lines.append(
        f"| all | {len(rows)} | | | {total['KiB before']:.0f} | {total['KiB after']:.0f} "
        f"| {total['CPU before']:.2f} | {total['CPU after']:.2f} | | | {total['OSD']:.2f} |"
    )
    return "\n".join(lines)


def colour_vs_grey(work: Path, runs: int) -> str:
    """Tesseract on colour pages and on the same pages converted to grey."""
    sanskrit, truth = books.devanagari_page(ink=(90, 40, 20), paper=(240, 225, 190))
    with pikepdf.open(CORPUS / "c02-22.pdf") as pdf:
        [scan] = _images(pdf.pages[0])
        (work / "c02-22.jpg").write_bytes(scan.read_raw_bytes())
    with Image.open(work / "c02-22.jpg") as jpeg:
        jpeg.load()
        huck = jpeg.copy()
    lines = [
        "| page | stored as | KiB | Tesseract CPU s | CER |",
        "|---|---|---|---|---|",
    ]
    for name, image, reference, language, dpi in (
        ("Devanagari, brown on cream", sanskrit, truth, "san", 300),
        ("c02-22.pdf (colour JPEG scan)", huck, None, "eng", 150),
    ):
        for mode in ("RGB", "L"):
            path = work / f"{len(lines)}.png"
            image.convert(mode).save(path, dpi=(dpi, dpi), compress_level=1)
            cpu, text = tesseract(path, language, runs)
            cer = _cer(character_error_rate(text, reference) if reference else None)
            size = path.stat().st_size / 1024
            lines.append(f"| {name} | {mode} png | {size:.0f} | {cpu:.2f} | {cer} |")
    return "\n".join(lines)


def _images(page: pikepdf.Page) -> list[pikepdf.Stream]:
    return [page.Resources.XObject[name] for name in page.Resources.XObject.keys()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Tesseract runs per page (median)")
    parser.add_argument("--pages", type=int, default=len(books.TEXT_PAGES), help="pages a book")
    parser.add_argument("--colour", action="store_true", help="colour against grey instead")
    args = parser.parse_args(argv)
    if args.colour:
        with tempfile.TemporaryDirectory() as tmp:
            print(colour_vs_grey(Path(tmp), args.runs))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sources = {
            "CCITT PDF": books.write_ccitt_pdf(work / "ccitt", args.pages),
            "G4 TIFF": books.write_g4_tiff(work / "tiff", args.pages),
            "grey PNG folder": books.write_grey_folder(work / "grey", args.pages),
            "linn.pdf": CORPUS / "linn.pdf",
            "c02-22.pdf": CORPUS / "c02-22.pdf",
        }
        rows = []
        for book, source in sources.items():
            rows.extend(measure_book(book, source, work / "out", args.runs))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
