"""The Tesseract kept loaded: a helper program that reads page after page with one libtesseract.

Run by app/engines/loaded_tesseract.py as `python tesseract_server.py`, one helper for each
worker process that OCRs, never imported by the app (it imports nothing of it, so it starts in
a few tens of milliseconds). It holds one tesserocr API per language, loaded once, instead of
the `tesseract` command's start and model load for every page, and it takes the word boxes
from Tesseract's word iterator, not from its TSV output, whose ResultIterator walk costs
about 8 % of a dense page (docs/performance.md, "Tesseract kept loaded").

The protocol is one JSON object per line. The helper says {"ready": "<tesseract version>"}
when it starts, then answers each request

    {"id": N, "image": PATH, "language": "eng", "timeout_ms": 120000, "max_resident_mb": 256}

with {"id": N, "text": ..., "words": [[text, left, top, width, height, conf, line], ...]} or
{"id": N, "error": "unreadable" | "language" | "timeout" | "failed", "detail": ...}, each with
"ending": true when the helper ends after it (it grew past the request's max_resident_mb, if
any). It also ends when its input closes: its worker process is gone.

The text and the boxes are the `tesseract IMAGE OUT txt tsv` command's, byte for byte, on the
same libtesseract (tests/unit/engines/test_loaded_tesseract.py checks it on real scans).
"""

from __future__ import annotations

import collections
import json
import os
import sys

import tesserocr
from tesserocr import RIL

#: Languages kept loaded at once; the least recently used one is ended beyond this. A Sanskrit
#: model takes about 65 MB, an English one about 20 MB.
MAX_LOADED = 3


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def page_words(api) -> list[list]:
    """Every word with its box, confidence and line (numbered from 0 in reading order): the
    word rows of Tesseract's TSV output, without its cost."""
    iterator = api.GetIterator()
    words: list[list] = []
    if iterator is None:  # nothing found on the page
        return words
    lines: dict[tuple[int, int, int, int], int] = {}
    while True:
        try:
            text = iterator.GetUTF8Text(RIL.WORD)
        except RuntimeError:  # tesserocr: "No text returned", as on a blank page
            text = None
        if text and text.strip():
            left, top, right, bottom = iterator.BoundingBox(RIL.WORD)
            # A new text line has another box: its words' box, as the TSV's line number.
            line = lines.setdefault(iterator.BoundingBox(RIL.TEXTLINE), len(lines))
            confidence = round(iterator.Confidence(RIL.WORD), 1)
            words.append([text, left, top, right - left, bottom - top, confidence, line])
        if not iterator.Next(RIL.WORD):
            return words


class Readers:
    """One loaded API per language, the least recently used ended beyond MAX_LOADED."""

    def __init__(self) -> None:
        self._apis: collections.OrderedDict[str, object] = collections.OrderedDict()

    def get(self, language: str):
        api = self._apis.pop(language, None)
        if api is None:
            # The library's own tessdata (or TESSDATA_PREFIX), as the `tesseract` command.
            api = tesserocr.PyTessBaseAPI(lang=language)
        self._apis[language] = api
        while len(self._apis) > MAX_LOADED:
            _language, oldest = self._apis.popitem(last=False)
            oldest.End()
        return api


def read_page(readers: Readers, request: dict) -> dict:
    answer: dict = {"id": request.get("id")}
    try:
        api = readers.get(request["language"])
    except RuntimeError as exc:  # tesserocr: "Failed to init API, possibly an invalid tessdata"
        return answer | {"error": "language", "detail": str(exc)}
    try:
        try:
            api.SetImageFile(request["image"])
        except Exception as exc:  # noqa: BLE001 -- leptonica, then PIL, could not read it
            return answer | {"error": "unreadable", "detail": f"{type(exc).__name__}: {exc}"}
        if not api.Recognize(timeout=int(request["timeout_ms"])):
            return answer | {"error": "timeout"}
        return answer | {"text": api.GetUTF8Text(), "words": page_words(api)}
    finally:
        api.Clear()


def serve() -> int:
    # The protocol gets stdout to itself: anything Tesseract or leptonica print goes to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    readers = Readers()
    protocol.write(json.dumps({"ready": tesserocr.tesseract_version().split()[1]}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = read_page(readers, request)
        except Exception as exc:  # noqa: BLE001 -- the page fails, the helper serves on
            answer = {"id": request.get("id"), "error": "failed", "detail": repr(exc)[:300]}
        # The request's limit is TESSERACT_HELPER_MAX_MB. Ordinary pages keep the helper at
        # 70-120 MB; one huge page (a 9000 x 9000 scan takes Tesseract about 500 MB) would
        # otherwise keep its memory for the helper's life.
        limit = request.get("max_resident_mb")
        ending = limit is not None and resident_mb() > float(limit)
        protocol.write(json.dumps(answer | {"ending": ending}, ensure_ascii=False))
        protocol.write("\n")
        protocol.flush()
        if ending:
            break
    return 0


if __name__ == "__main__":
    sys.exit(serve())
