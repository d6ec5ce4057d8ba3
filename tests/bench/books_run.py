"""The four books of `make bench`: OCR from the upload against a floor on the source's pixels.

    .venv/bin/python -m tests.bench.books_run [--bilevel-pages N] [--skip-peer] [--rounds N]

Each book is in a form real scans come in (tests/bench/books.py): the 60-page mixed PDF of the
main benchmark, a bilevel Group 4 TIFF, a bilevel CCITT PDF and a folder of greyscale PNG
pages. For each, in one run:

1. Floor: the source's own pixels taken out as they are, with no rendering of ours (a TIFF's
   frames, each PDF page's one embedded image with pikepdf, the folder's files; a PDF page
   that is not one image is rasterized by poppler's `pdftoppm` at RENDER_DPI), then the
   `tesseract` command on every page at the page's own resolution, as many at once as there
   are cores (OMP_THREAD_LIMIT=1). Its time is the extraction's plus the OCR's.
2. Ours: the new-project form posted with "Run OCR on every page as soon as it is ready", to
   gunicorn, `celery -A worker worker` and redis-server, the status JSON polled as the
   progress page polls it. Timed from sending the upload to the job's end (Job.finished_at),
   with the moment the upload was accepted (the form's answer) and the moment the first
   page's text exists (its JobPage row is finished, in the transaction that saves the text).
3. Peer, for the PDFs: `ocrmypdf --jobs <cores>` (tests/bench/run.py run_ocrmypdf).

Then whether every page's text is the same as the `tesseract` command's on the same pixels (the
floor's, where our stored page holds the source's own pixels; else the command run on our
stored page), and the character error rate of linn.pdf's pages against linn.txt.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
from PIL import Image
from sqlalchemy import func, select

from app.config import load_config
from app.extensions import db
from app.models import Job, JobPage, Page, Project
from tests.bench import books
from tests.bench.book import Book, build_book
from tests.bench.measure import CpuMeter, character_error_rate, cores, normalize
from tests.bench.system import USER, BenchStack, Browser
from tests.support import CORPUS

#: Seconds between two polls of the status JSON: the progress page's own rate
#: (app/static/js/live-status.js FIRST_DELAY).
POLL = 1.0
TERMINAL = {"succeeded", "failed", "partially_failed", "cancelled", "interrupted"}
LANGUAGE = "eng"
#: The targets of the issue "Every kind of scan, fast", on every book.
FLOOR_TARGET, PEER_TARGET, FIRST_TEXT_TARGET_S = 1.05, 0.8, 2.0


@dataclass
class SourceBook:
    name: str
    #: "pdf", "tiff" or "folder".
    kind: str
    #: What the form uploads: one file, or the folder's page images.
    files: list[Path]
    pages: int
    #: 1-based numbers of the pages that are linn.pdf's scan (ground truth: linn.txt).
    linn_pages: list[int] = field(default_factory=list)

    @property
    def is_pdf(self) -> bool:
        return self.kind == "pdf"


def make_books(work: Path, mixed: Book, bilevel_pages: int) -> list[SourceBook]:
    linn_every = [n + 1 for n in range(bilevel_pages) if books.TEXT_PAGES[n % 5] == "linn.pdf"]
    folder = books.write_grey_folder(work / "grey", bilevel_pages)
    return [
        SourceBook(
            f"mixed PDF, {len(mixed.pages)} pages",
            "pdf",
            [mixed.path],
            len(mixed.pages),
            [i + 1 for i, (source, _) in enumerate(mixed.pages) if source == "linn.pdf"],
        ),
        SourceBook(
            "bilevel Group 4 TIFF",
            "tiff",
            [books.write_g4_tiff(work / "tiff", bilevel_pages)],
            bilevel_pages,
            linn_every,
        ),
        SourceBook(
            "bilevel CCITT PDF",
            "pdf",
            [books.write_ccitt_pdf(work / "ccitt", bilevel_pages)],
            bilevel_pages,
            linn_every,
        ),
        SourceBook(
            "greyscale PNG folder",
            "folder",
            sorted(folder.iterdir(), key=lambda p: int(p.stem.removeprefix("page"))),
            bilevel_pages,
            linn_every,
        ),
    ]


# -- 1. the floor --------------------------------------------------------------------------


#: A page as the floor reads it: its image file, its resolution, and whether the file holds
#: the source's own pixels (False: a PDF page with no single image, rasterized).
FloorPage = tuple[Path, float, bool]


def extract_pages(book: SourceBook, out: Path, render_dpi: float) -> list[FloorPage]:
    """Each page's own pixels as a file, with its resolution; no code of ours."""
    out.mkdir(parents=True)
    if book.kind == "folder":
        pages = []
        for path in book.files:
            with Image.open(path) as image:
                pages.append((path, float(image.info.get("dpi", (300, 300))[0]), True))
        return pages
    if book.kind == "tiff":
        pages = []
        with Image.open(book.files[0]) as tiff:
            for n in range(book.pages):
                tiff.seek(n)
                dpi = float(tiff.info.get("dpi", (300, 300))[0])
                path = out / f"{n + 1:05d}.tif"
                # The frame's 1-bit pixels, in their own compression: nothing is converted.
                tiff.save(path, compression="group4", dpi=(dpi, dpi))
                pages.append((path, dpi, True))
        return pages
    pages = []
    with pikepdf.open(book.files[0]) as pdf:
        for n, page in enumerate(pdf.pages):
            images = list(page.get_images().values())
            width_pt = float(page.mediabox[2]) - float(page.mediabox[0])
            stem = out / f"{n + 1:05d}"
            page_range = ["-f", str(n + 1), "-l", str(n + 1)]
            if len(images) == 1:
                # poppler's pdfimages writes the image's own pixels: a JPEG as it is, any
                # other (CCITT, JBIG2, Flate) as a lossless PNG at its own bit depth.
                subprocess.run(
                    ["pdfimages", "-j", "-png", *page_range, str(book.files[0]), str(stem)],
                    check=True,
                )
                # The image first, then its soft mask if it has one.
                path = sorted(out.glob(f"{stem.name}-*"))[0]
                image = pikepdf.PdfImage(images[0])
                pages.append((path, image.width / (width_pt / 72), True))
            else:
                subprocess.run(
                    ["pdftoppm", "-png", "-singlefile", "-r", str(round(render_dpi))]
                    + [*page_range, str(book.files[0]), str(stem)],
                    check=True,
                )
                pages.append((stem.with_suffix(".png"), render_dpi, False))
    return pages


def tesseract_pages(
    pages: list[FloorPage], out: Path, parallel: int, started: float
) -> tuple[list[str], float]:
    """The `tesseract` text of every page, and the seconds from `started` (monotonic) to the
    first page's text."""
    out.mkdir(parents=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    finished: list[float] = []

    def one(item: tuple[int, FloorPage]) -> str:
        number, (image, dpi, _own) = item
        base = out / f"{number:05d}"
        subprocess.run(
            ["tesseract", str(image), str(base), "-l", LANGUAGE, "--dpi", str(round(dpi))],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        finished.append(time.monotonic() - started)
        return base.with_suffix(".txt").read_text()

    with ThreadPoolExecutor(parallel) as pool:
        texts = list(pool.map(one, enumerate(pages, start=1)))
    return texts, min(finished)


def floor(book: SourceBook, work: Path, render_dpi: float, parallel: int) -> dict:
    started = time.monotonic()
    with CpuMeter() as extract:
        pages = extract_pages(book, work / "pages", render_dpi)
    with CpuMeter() as ocr:
        texts, first_text = tesseract_pages(pages, work / "txt", parallel, started)
    return {
        "first_text_s": first_text,
        "own_pixels": [own for _path, _dpi, own in pages],
        "pages": pages,
        "extract_s": extract.wall,
        "ocr_s": ocr.wall,
        "total_s": extract.wall + ocr.wall,
        "cpu_s": extract.own_cpu + ocr.own_cpu,
        "texts": texts,
    }


# -- 2. ours -------------------------------------------------------------------------------


def ours(stack: BenchStack, browser: Browser, book: SourceBook, slug: str) -> dict:
    """Upload with OCR on, and follow the job to its end as the progress page does.

    The status JSON is polled at the progress page's own rate (POLL), not faster: a tighter
    loop would spend the cores the pages need. The moments themselves come from the job's
    records: the first page's text exists when its JobPage row is finished (it is committed
    with the text), and the job ends at Job.finished_at.
    """
    mime = {"pdf": "application/pdf", "tiff": "image/tiff", "folder": "image/png"}[book.kind]
    with contextlib.ExitStack() as files:
        parts = [("source", (p.name, files.enter_context(p.open("rb")), mime)) for p in book.files]
        sent_at, sent = datetime.now(UTC).replace(tzinfo=None), time.monotonic()
        answer = browser.post(
            "/proofing/create-project",
            {"title": book.name, "slug": slug, "language": LANGUAGE, "ocr": "on"}
            | {"engine": "tesseract"},
            files=parts,
        )
    accepted = time.monotonic() - sent
    if answer.status_code != 302:
        raise RuntimeError(f"upload of {book.name} failed: HTTP {answer.status_code}")
    while True:
        status = browser.get(f"/proofing/{slug}/batch-ocr/status").json()
        if status["state"] in TERMINAL:
            break
        if time.monotonic() - sent > 1800:
            raise RuntimeError(f"the job of {book.name} did not end: {status}")
        time.sleep(POLL)
    if (status["state"], status["done"]) != ("succeeded", book.pages):
        raise RuntimeError(f"the job of {book.name} did not succeed on every page: {status}")
    with stack.app.app_context():
        project = db.session.execute(select(Project).filter_by(slug=slug)).scalar_one()
        job = db.session.execute(select(Job).filter_by(project_id=project.id)).scalar_one()
        first_done = db.session.execute(
            select(func.min(JobPage.finished_at)).filter(JobPage.job_id == job.id)
        ).scalar_one()
        rows = db.session.execute(
            select(Page.text, Page.image_path, Page.dpi)
            .filter(Page.project_id == project.id)
            .order_by(Page.number)
        ).all()
        ended = job.finished_at
    first_text = (first_done - sent_at).total_seconds()
    stored = [stack.data_dir / path for _text, path, _dpi in rows]
    return {
        "image_kib": sum(path.stat().st_size for path in stored) / len(stored) / 1024,
        "total_s": (ended - sent_at).total_seconds(),
        "accepted_s": accepted,
        "first_text_s": first_text,
        "first_text_after_accept_s": first_text - accepted,
        "texts": [text for text, _path, _dpi in rows],
        "images": [(path, dpi) for path, (_text, _path, dpi) in zip(stored, rows, strict=True)],
    }


def same_pixels(a: Path, b: Path) -> bool:
    """Whether two image files decode to the same pixels (mode, size and every value)."""
    with Image.open(a) as one, Image.open(b) as other:
        return (one.mode, one.size) == (other.mode, other.size) and one.tobytes() == (
            other.tobytes()
        )


def same_text_as_tesseract(mine: dict, base: dict, work: Path, parallel: int) -> list[dict]:
    """For each page, whether our text is the `tesseract` command's on the pixels we read.

    Where our stored page holds the very pixels the floor read (its own pixels, taken out
    as they are), the floor's text is that command's. Where it does not (a PDF page that is
    not one plain full-page image is rendered, by us and by the floor's pdftoppm alike, but
    not identically), the command is run here on our stored page, at its resolution."""
    pages = [
        {"own_pixels": own and same_pixels(path, floor_path), "image": (path, dpi)}
        for (path, dpi), (floor_path, _dpi, own) in zip(mine["images"], base["pages"], strict=True)
    ]
    rerun = [(n, page["image"]) for n, page in enumerate(pages) if not page["own_pixels"]]
    reference = list(base["texts"])
    if rerun:
        texts, _first = tesseract_pages(
            [(path, dpi or 300, False) for _n, (path, dpi) in rerun], work, parallel, 0.0
        )
        for (n, _image), text in zip(rerun, texts, strict=True):
            reference[n] = text
    for page, ours_text, text in zip(pages, mine["texts"], reference, strict=True):
        page["same_text"] = normalize(ours_text) == normalize(text)
    return pages


# -- the run -------------------------------------------------------------------------------


def run_books(
    stack: BenchStack,
    browser: Browser,
    source_books: list[SourceBook],
    work: Path,
    *,
    render_dpi: float,
    skip_peer: bool,
    rounds: int = 1,
    progress=print,
) -> list[dict]:
    """Each book `rounds` times (floor, ours and OCRmyPDF one after the other in each round),
    keeping each contender's fastest round: this machine is shared, and a slow round says
    more about its neighbours than about the contender."""
    from tests.bench.run import run_ocrmypdf  # the main benchmark's peer, run the same way

    n = cores()
    linn = (CORPUS / "linn.txt").read_text()
    results = []
    for index, book in enumerate(source_books):
        floors, mine_rounds, peers = [], [], []
        for number in range(1, rounds + 1):
            tag = f"book {book.name}" + (f", round {number}" if rounds > 1 else "")
            progress(f"{tag}: floor on the source's pixels, {n} pages at a time")
            base = floor(book, work / f"floor-{index}-{number}", render_dpi, n)
            progress(f"{tag}: floor {base['total_s']:.1f} s; ours, OCR from the upload")
            mine = ours(stack, browser, book, f"bench-source-{index}-{number}")
            progress(
                f"{tag}: ours {mine['total_s']:.1f} s, first text "
                f"{mine['first_text_s']:.1f} s after sending the upload"
            )
            if book.is_pdf and not skip_peer:
                with CpuMeter() as meter:
                    run_ocrmypdf(book.files[0], work / f"peer-{index}-{number}", n)
                peers.append({"total_s": meter.wall, "cpu_s": meter.own_cpu})
                progress(f"{tag}: ocrmypdf {meter.wall:.1f} s")
            # Every round's text is checked; the fastest round's figures are kept.
            compared = same_text_as_tesseract(mine, base, work / f"same-{index}-{number}", n)
            mine["same_text"] = sum(page["same_text"] for page in compared)
            mine["own_pixels"] = sum(page["own_pixels"] for page in compared)
            floors.append(base)
            mine_rounds.append(mine)
        base = min(floors, key=lambda r: r["total_s"])
        mine = min(mine_rounds, key=lambda r: r["total_s"])
        peer = min(peers, key=lambda r: r["total_s"]) if peers else None
        results.append(
            {
                "book": book.name,
                "pages": book.pages,
                "rounds": rounds,
                "floor": {k: v for k, v in base.items() if k not in ("texts", "pages")}
                | {"first_text_s": min(r["first_text_s"] for r in floors)},
                "ours": {k: v for k, v in mine.items() if k not in ("texts", "images")}
                | {
                    "first_text_after_accept_s": min(
                        r["first_text_after_accept_s"] for r in mine_rounds
                    )
                },
                "peer": peer,
                "same_text_pages": min(r["same_text"] for r in mine_rounds),
                "compared_pages": book.pages,
                "own_pixel_pages": min(r["own_pixels"] for r in mine_rounds),
                "cer_ours": _mean_cer(mine["texts"], book.linn_pages, linn),
                "cer_floor": _mean_cer(base["texts"], book.linn_pages, linn),
            }
        )
    return results


def _mean_cer(texts: list[str], numbers: list[int], reference: str) -> float | None:
    rates = [character_error_rate(texts[n - 1], reference) for n in numbers]
    return sum(rates) / len(rates) if rates else None


def markdown(rows: list[dict], separate_run: str | None = None) -> list[str]:
    """The report's section on the four books, with the targets' verdicts; `separate_run`
    says when they were measured apart from the rest of the report."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    def ratio(a: float, b: float | None) -> str:
        return f"{a / b:.2f}" if b else "—"

    lines = [
        "## Four books: OCR from the upload against the source's own pixels\n",
        "Each book uploaded through the new-project form with *Run OCR on every page as soon "
        "as it is ready*, so the split and OCR overlap (`python -m tests.bench.books_run`; "
        "method in its docstring). The floor takes each page's own pixels out as they are "
        "(TIFF frames, each PDF page's embedded image, the folder's files) and runs the "
        "`tesseract` command on them at their own resolution, one page per core at a time. "
        "*First text* counts from the moment the upload was accepted (the form's answer); "
        "the floor's first text, from its start, is the time of taking the pages out and "
        "reading one: no pipeline can show text sooner than one page's OCR. *Same text* "
        "compares each page's text with the `tesseract` command's on the same pixels: the "
        "floor's where our stored page holds the very pixels the floor read, else the command "
        "run on our stored page (a PDF page that is not one plain full-page image is rendered, "
        "by us and by the floor's pdftoppm, not identically). *Own pixels* counts the pages "
        "stored with the source's own pixels.\n",
        *(
            [
                f"These four books were measured in a run of their own ({separate_run}); within "
                "each row, floor, ours and OCRmyPDF ran one after the other.\n"
            ]
            if separate_run
            else []
        ),
        *(
            [
                f"Each book ran {rows[0]['rounds']} rounds (floor, ours, OCRmyPDF in each); each "
                "contender's fastest round is kept, and the same text is checked on every "
                "round (the lowest count is shown).\n"
            ]
            if rows and rows[0].get("rounds", 1) > 1
            else []
        ),
        "| book | pages | floor | ours | ours / floor | OCRmyPDF | ours / OCRmyPDF "
        "| upload accepted | first text after it | floor's first text | same text as `tesseract` "
        "| own pixels | CER linn.pdf (ours / floor) | stored page, mean |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    checks = []
    for row in rows:
        floor_s, ours_s = row["floor"]["total_s"], row["ours"]["total_s"]
        peer_s = row["peer"]["total_s"] if row["peer"] else None
        first = row["ours"]["first_text_after_accept_s"]
        cer = (
            f"{row['cer_ours']:.2%} / {row['cer_floor']:.2%}"
            if row["cer_ours"] is not None
            else "—"
        )
        lines.append(
            f"| {row['book']} | {row['pages']} | {floor_s:.1f} s | {ours_s:.1f} s "
            f"| {ratio(ours_s, floor_s)} | {f'{peer_s:.1f} s' if peer_s else '—'} "
            f"| {ratio(ours_s, peer_s)} | {row['ours']['accepted_s']:.2f} s "
            f"| {first:.2f} s | {row['floor']['first_text_s']:.2f} s "
            f"| {row['same_text_pages']} of {row['compared_pages']} "
            f"| {row.get('own_pixel_pages', '—')} of {row['pages']} | {cer} "
            f"| {row['ours']['image_kib']:.0f} KiB |"
        )
        checks.append(
            (
                f"{row['book']}: ours ≤ {FLOOR_TARGET} × floor",
                ratio(ours_s, floor_s),
                ours_s <= FLOOR_TARGET * floor_s,
            )
        )
        if peer_s:
            checks.append(
                (
                    f"{row['book']}: ours ≤ {PEER_TARGET} × OCRmyPDF",
                    ratio(ours_s, peer_s),
                    ours_s <= PEER_TARGET * peer_s,
                )
            )
        checks.append(
            (
                f"{row['book']}: first text ≤ {FIRST_TEXT_TARGET_S:.0f} s after the upload",
                f"{first:.2f} s",
                first <= FIRST_TEXT_TARGET_S,
            )
        )
        checks.append(
            (
                f"{row['book']}: the same text as `tesseract` on the same pixels",
                f"{row['same_text_pages']} of {row['compared_pages']} pages",
                row["same_text_pages"] == row["compared_pages"],
            )
        )
    lines += ["", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {name} | {measured} | {verdict(ok)} |" for name, measured, ok in checks]
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.books_run", description=__doc__)
    parser.add_argument("--mixed-pages", type=int, default=60)
    parser.add_argument("--bilevel-pages", type=int, default=20)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="run each book this many times, keeping each contender's fastest (default 2)",
    )
    parser.add_argument(
        "--into",
        type=Path,
        metavar="RESULTS_JSON",
        help="also put the figures into a saved `make bench` results file, replacing its "
        "books (then `python -m tests.bench.run --render RESULTS_JSON` rewrites the report)",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ocr-books-"))
    stack = BenchStack(work / "stack", cores())
    try:
        config = load_config({**os.environ, "SECRET_KEY": "unused", "DATA_DIR": str(work)})
        mixed = build_book(args.mixed_pages, work / "mixed.pdf")
        source_books = make_books(work, mixed, args.bilevel_pages)
        stack.start()
        browser = Browser(stack.base_url)
        browser.login(*USER)
        rows = run_books(
            stack,
            browser,
            source_books,
            work,
            render_dpi=config["RENDER_DPI"],
            skip_peer=args.skip_peer,
            rounds=args.rounds,
        )
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(markdown(rows)))
    if args.into:
        results = json.loads(args.into.read_text())
        results["books"] = rows
        results.setdefault("meta", {})["books_run"] = (
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, python -m tests.bench.books_run"
        )
        args.into.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
