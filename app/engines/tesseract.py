"""Tesseract: pages are read by a Tesseract kept loaded in a helper process of each worker
process (app/engines/loaded_tesseract.py), which yields the text and the word boxes of the
`tesseract IMAGE OUT txt tsv` command, byte for byte, without its start and model load on
every page and without the cost of its TSV output.

The `tesseract` command (TESSERACT_CMD) still tells which languages are installed and which
way up a page is (orientation and script detection, `--psm 0`), which the split uses to turn
sideways and upside-down scans upright (`detect_rotation`).

Tesseract runs with OMP_THREAD_LIMIT=1 (worker/celery.py, and its helper): parallelism comes
from one page per process, and Tesseract's own threads only make parallel pages slower.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from app.engines.base import OcrError, OcrResult
from app.engines.loaded_tesseract import EngineFailure, helper

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
        if importlib.util.find_spec("tesserocr") is None:
            return "the tesserocr module is not installed (make venv builds it)"
        return None

    def languages(self, config: dict[str, Any]) -> set[str] | None:
        return installed_languages(config["TESSERACT_CMD"])

    def recognize(
        self, image_path: Path, language: str, config: dict[str, Any], timeout: float
    ) -> OcrResult:
        try:
            reading = helper().read(
                image_path, language, timeout, config.get("TESSERACT_HELPER_MAX_MB")
            )
        except EngineFailure as exc:
            raise OcrError(_reason(exc, language, timeout)) from exc
        return OcrResult(text=reading.text, boxes=reading.words)


def _reason(failure: EngineFailure, language: str, timeout: float) -> str:
    """What the user reads on a page Tesseract could not read."""
    if failure.kind == "timeout":
        return f"Tesseract took longer than {timeout:.0f} s on this page"
    if failure.kind == "unreadable":
        return "Tesseract could not read the page image: the image file is damaged or unreadable"
    if failure.kind == "language":
        return f"Tesseract has no model for the language {language!r}"
    if failure.kind == "failed":
        return f"Tesseract could not read this page: {failure.detail}"
    if failure.kind == "crashed":
        return f"Tesseract stopped on this page ({failure.detail})"
    return f"Tesseract could not start: {failure.detail}"


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


@functools.cache
def installed_languages(cmd: str) -> set[str]:
    try:
        out = subprocess.run(
            [cmd, "--list-langs"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.strip() for line in out.splitlines()[1:] if line.strip()}


ENGINE = TesseractEngine()
