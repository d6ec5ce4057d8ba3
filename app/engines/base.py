"""What every OCR engine is: a name, an availability check, and one call per page image."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class OcrResult:
    text: str
    #: Word boxes: [text, left, top, width, height, confidence 0-100, line], where line
    #: numbers the page's text lines from 0 in reading order (app/text/alignment.py).
    boxes: list[list[Any]] = field(default_factory=list)


class OcrError(Exception):
    """A page cannot be recognised, and trying again will not help (an unreadable image)."""


class TransientOcrError(OcrError):
    """The engine failed for a reason that may pass (rate limit, 5xx, connection reset)."""


class Engine(Protocol):
    #: The name used in forms, the CLI and the job record.
    name: str
    #: What the form shows.
    label: str

    def unavailable_reason(self, config: dict[str, Any]) -> str | None:
        """None when the engine can run with this config, else why not, for the user."""

    def languages(self, config: dict[str, Any]) -> set[str] | None:
        """Language codes this engine can read, or None when it takes any."""

    def recognize(
        self, image_path: Path, language: str, config: dict[str, Any], timeout: float
    ) -> OcrResult:
        """Recognise one page image. Raises OcrError or TransientOcrError."""
