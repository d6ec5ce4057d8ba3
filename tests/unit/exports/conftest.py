"""Pages of real scans with real Tesseract output, as the export formats get them.

The scans are stored the way a project stores them (app/rendering.py, from the corpus PDFs):
a 1-bit PNG (linn.pdf, cropped to its first paragraphs to keep Tesseract quick), a grey JPEG
copied out of francais.pdf, a colour JPEG (c02-22.pdf), a grey and a colour PNG rendered from
multipage.pdf, and a Devanagari page drawn with Pillow and Noto Sans Devanagari (no Sanskrit
scan is in the corpus; its README suggests this). Tesseract reads three of them once per
session (about 3 s in all); the others stand for pages never OCR'd.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from app.engines.tesseract import ENGINE, installed_languages
from app.exports import FORMATS, ExportMeta, ExportPage, ExportPart
from app.rendering import PNG_COMPRESS_LEVEL, iter_pages
from tests.support import corpus

DEVANAGARI_FONT = Path("/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf")
#: Bhagavad Gita 1.1-1.2 (public domain).
SANSKRIT = [
    "धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः ।",
    "मामकाः पाण्डवाश्चैव किमकुर्वत सञ्जय ॥",
    "सञ्जय उवाच ।",
    "दृष्ट्वा तु पाण्डवानीकं व्यूढं दुर्योधनस्तदा ।",
]


def _stored(source: str, index: int, out: Path) -> tuple[Path, float]:
    out.mkdir(parents=True, exist_ok=True)
    [(_, page)] = iter_pages(
        corpus(source), out, default_dpi=300, max_pixels=40_000_000, indexes=[index]
    )
    return page.path, page.dpi


@pytest.fixture(scope="session")
def scans(tmp_path_factory) -> dict[str, tuple[Path, float]]:
    """Stored page images by kind: (path, dpi)."""
    root = tmp_path_factory.mktemp("scans")
    linn, dpi = _stored("linn.pdf", 0, root / "linn")
    with Image.open(linn) as page:
        assert page.mode == "1"
        bilevel = root / "bilevel.png"
        page.crop((0, 360, 2550, 760)).save(
            bilevel, dpi=(dpi, dpi), compress_level=PNG_COMPRESS_LEVEL["1"]
        )
    if not DEVANAGARI_FONT.exists():
        pytest.skip("the Devanagari page needs fonts-noto-core (Noto Sans Devanagari)")
    font = ImageFont.truetype(str(DEVANAGARI_FONT), 44)
    devanagari = root / "devanagari.png"
    image = Image.new("L", (1300, 420), 255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(SANSKRIT):
        draw.text((60, 50 + number * 85), line, font=font, fill=0)
    image.save(devanagari, dpi=(300, 300), compress_level=PNG_COMPRESS_LEVEL["L"])
    return {
        "bilevel": (bilevel, dpi),
        "grey_jpeg": _stored("francais.pdf", 0, root / "francais"),
        "colour_jpeg": _stored("c02-22.pdf", 0, root / "c02"),
        "colour_png": _stored("multipage.pdf", 2, root / "multi"),
        "grey_png": _stored("multipage.pdf", 4, root / "multi"),
        "devanagari": (devanagari, 300.0),
    }


@functools.cache
def _recognized(path: Path, language: str):
    return ENGINE.recognize(path, language, {"TESSERACT_CMD": "tesseract"}, 120)


def export_page(
    scans: dict, kind: str, language: str = "eng", *, ocr: bool = True, number: int = 1
) -> ExportPage:
    """The page of that kind as an export gets it: Tesseract's text and word boxes (the
    engine's stored format), or, with ocr=False, a page never OCR'd with some typed text."""
    path, dpi = scans[kind]
    with Image.open(path) as image:
        width, height = image.size
    if ocr:
        result = _recognized(path, language)
        text, boxes = result.text, result.boxes
    else:
        text, boxes = f"A page typed in by hand\nits kind is {kind}\n\nand page {number}", None
    return ExportPage(number, text, boxes, "needs-work", path, width, height, dpi, language)


@pytest.fixture(scope="session")
def ocr_pages(scans) -> dict[str, ExportPage]:
    """Three pages as Tesseract read them, one thread each as the workers run it."""
    missing = {"eng", "san"} - installed_languages("tesseract")
    if missing:
        pytest.skip(f"needs Tesseract with {', '.join(sorted(missing))} traineddata")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_THREAD_LIMIT", "1")
        return {
            "bilevel": export_page(scans, "bilevel"),
            "grey_jpeg": export_page(scans, "grey_jpeg"),
            "devanagari": export_page(scans, "devanagari", "san"),
        }


def _meta(languages: tuple[str, ...] = ("eng",)) -> ExportMeta:
    return ExportMeta(
        title="The <Linn> & Co. book",
        slug="linn-book",
        source_filename="linn & co.pdf",
        languages=languages,
        exported_at=datetime(2026, 12, 2, 17, 30, tzinfo=UTC),
    )


@pytest.fixture
def meta():
    """The project's metadata (title and file name with characters XML must escape)."""
    return _meta


def _export(name: str, pages: list[ExportPage], out_dir: Path, info: ExportMeta | None = None):
    fmt = FORMATS[name]
    info = info or _meta()
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for page in pages:
        path = out_dir / f"part-{page.number:05d}"
        path.write_bytes(fmt.render_part(page, info))
        parts.append(ExportPart(page.number, path))
    out = out_dir / f"export.{fmt.extension}"
    fmt.assemble(parts, info, out)
    return out


@pytest.fixture
def run_export():
    """Runs a format as the export job does: a part file per page, then assemble; returns the
    file."""
    return _export


@pytest.fixture
def typed_page(scans):
    """A page of a kind never OCR'd, with a few typed lines: typed_page(kind, number=1)."""
    return functools.partial(export_page, scans, ocr=False)


@pytest.fixture(scope="session")
def corrected_page(ocr_pages) -> tuple[ExportPage, dict]:
    """The bilevel page as a proofreader leaves it: a word changed on the first line, the
    second and third lines merged into one, a line added after them. Returns the page and
    what was done where (text line indexes)."""
    page = ocr_pages["bilevel"]
    lines = page.text.split("\n")
    first = next(i for i, line in enumerate(lines) if line.strip())
    words = lines[first].split()
    words[1] = "Linn-Sequencer"
    lines[first] = " ".join(words)
    second = next(i for i in range(first + 1, len(lines)) if lines[i].strip())
    third = next(i for i in range(second + 1, len(lines)) if lines[i].strip())
    merged = lines[second] + " " + lines[third]
    added = "A line the proofreader added, read nowhere on the scan"
    lines = [*lines[:second], merged, added, *lines[third + 1 :]]
    return replace(page, text="\n".join(lines), status="proofread-once"), {
        "changed": first,
        "merged": second,
        "added": second + 1,
        "changed_word": "Linn-Sequencer",
        "added_text": added,
    }
