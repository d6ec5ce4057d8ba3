"""Tesseract through pytesseract: one process per page yields both the text and word boxes.

It also tells which way up a page is (orientation and script detection, `--psm 0`), which
the split uses to turn sideways and upside-down scans upright (`detect_rotation`).

Workers set OMP_THREAD_LIMIT=1 (worker/celery.py): parallelism comes from one page per
process, and Tesseract's own threads only make parallel pages slower.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytesseract

from app.engines.base import OcrError, OcrResult

log = logging.getLogger(__name__)

#: Below this, Tesseract's orientation guess is noise; OCRmyPDF's default threshold. Measured
#: on the corpus (docs/performance.md): a page of Latin text turned by a quarter turn or a
#: half scores 31 to 35, an upright page of Sanskrit 12 (and it is left as it is).
OSD_MIN_CONFIDENCE = 14.0
#: Orientation detection of one page, which takes about a second on a full page of text.
OSD_TIMEOUT = 60
_ROTATE_RE = re.compile(r"^Rotate:\s*(\d+)\s*$", re.MULTILINE)
_CONFIDENCE_RE = re.compile(r"^Orientation confidence:\s*([\d.]+)\s*$", re.MULTILINE)


class TesseractEngine:
    name = "tesseract"
    label = "Tesseract (local)"

    def unavailable_reason(self, config: dict[str, Any]) -> str | None:
        if shutil.which(config["TESSERACT_CMD"]) is None:
            return f"the {config['TESSERACT_CMD']!r} program is not installed"
        return None

    def languages(self, config: dict[str, Any]) -> set[str] | None:
        return installed_languages(config["TESSERACT_CMD"])

    def recognize(
        self, image_path: Path, language: str, config: dict[str, Any], timeout: float
    ) -> OcrResult:
        pytesseract.pytesseract.tesseract_cmd = config["TESSERACT_CMD"]
        try:
            # The image path goes to tesseract as is: no re-encoding through a temp file.
            text, tsv = pytesseract.run_and_get_multiple_output(
                str(image_path), extensions=["txt", "tsv"], lang=language, timeout=timeout
            )
        except pytesseract.TesseractError as exc:
            raise OcrError(
                f"Tesseract could not read the page image: {_first_line(exc.message)}"
            ) from exc
        except RuntimeError as exc:  # pytesseract's timeout: it has already killed the process
            raise OcrError(f"Tesseract took longer than {timeout:.0f} s on this page") from exc
        except UnicodeDecodeError as exc:
            # Given a file that is no image, Tesseract reads it as a list of file names and
            # echoes undecodable bytes, which pytesseract then fails to decode.
            raise OcrError("Tesseract could not read the page image: it is not an image") from exc
        return OcrResult(text=text, boxes=parse_tsv_words(tsv))


def detect_rotation(
    image_path: Path, *, cmd: str = "tesseract", timeout: float = OSD_TIMEOUT
) -> int:
    """Degrees (0, 90, 180 or 270) to turn the page image clockwise to stand it upright.

    0 when Tesseract cannot tell: a blank page, too little text, a guess below
    OSD_MIN_CONFIDENCE, or no osd.traineddata. Such a page is left as it is, never refused.
    """
    try:
        done = subprocess.run(
            [cmd, str(image_path), "-", "--psm", "0"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("orientation detection of %s failed: %s", image_path.name, exc)
        return 0
    rotate, confidence = _ROTATE_RE.search(done.stdout), _CONFIDENCE_RE.search(done.stdout)
    if done.returncode != 0 or rotate is None or confidence is None:
        # "Too few characters. Skipping this page": blank, or too little text to tell.
        return 0
    degrees = int(rotate.group(1)) % 360
    if degrees not in (90, 180, 270) or float(confidence.group(1)) < OSD_MIN_CONFIDENCE:
        return 0
    return degrees


def parse_tsv_words(tsv: str) -> list[list[Any]]:
    """Word rows (level 5) of Tesseract's TSV output as
    [text, left, top, width, height, conf, line], line counting the page's lines from 0."""
    words = []
    lines: dict[tuple[str, str, str], int] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5" or not (row.get("text") or "").strip():
            continue
        line = lines.setdefault((row["block_num"], row["par_num"], row["line_num"]), len(lines))
        words.append(
            [
                row["text"],
                int(row["left"]),
                int(row["top"]),
                int(row["width"]),
                int(row["height"]),
                round(float(row["conf"]), 1),
                line,
            ]
        )
    return words


@functools.cache
def installed_languages(cmd: str) -> set[str]:
    try:
        out = subprocess.run(
            [cmd, "--list-langs"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.strip() for line in out.splitlines()[1:] if line.strip()}


def _first_line(message: str | bytes) -> str:
    """The part of Tesseract's stderr a user can act on.

    pytesseract joins stderr into one line; image-library noise (libpng, leptonica's
    pixRead...) means the image file itself is damaged, which is what the user needs to know.
    """
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    message = " ".join(message.split())
    if any(noise in message for noise in ("libpng", "pixRead", "Image file", "image file")):
        return "the image file is damaged or unreadable"
    sentences = re.split(r"(?=Error )", message)
    return (sentences[-1] if sentences else message).strip()[:300] or "unknown error"


ENGINE = TesseractEngine()
