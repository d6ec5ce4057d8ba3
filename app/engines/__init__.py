"""The OCR engines, registered by name in this one place: adding an engine is adding a module
that defines an `Engine` (see base.py) and naming it below."""

from __future__ import annotations

from app.engines import google_vision, tesseract
from app.engines.base import Engine, OcrError, OcrResult, TransientOcrError

ENGINES: dict[str, Engine] = {
    engine.name: engine for engine in (tesseract.ENGINE, google_vision.ENGINE)
}


def get_engine(name: str) -> Engine | None:
    return ENGINES.get(name)


__all__ = ["ENGINES", "Engine", "OcrError", "OcrResult", "TransientOcrError", "get_engine"]
