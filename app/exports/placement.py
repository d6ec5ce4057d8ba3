"""Where each word of a page's exported text lies on the scan: what hOCR, ALTO and the PDF's
text layer write.

The exported text is the page's latest text, which people may have corrected; the boxes are
those of the page's last OCR. Each text line is paired with the OCR line it stands for by
app/text/alignment.py (the same pairing the editor highlights), and then:

- a text line aligned to an OCR line gets that line's box. Its words take the OCR word boxes
  when there are as many words as OCR read on that line (a corrected spelling keeps its box);
  otherwise (words merged, split, added or removed, or two lines merged into one) the line box
  is divided among the words by their share of the line's characters, a space counting as one.
- a text line with no OCR counterpart (a line a person added, or rewrote beyond recognition)
  is laid out *below the previous placed line*, with that line's left, right and height and
  a quarter of its height as the gap; lines before the first aligned line are stacked above
  it the same way. ALTO allows no line without coordinates, and a PDF text layer needs a
  position for every glyph, so rather than leave the box out in hOCR only, all three formats
  get the same estimate: near where the line would be read, never inside another format's
  gap. Such a line may overlap the next OCR line; it stays on the page (clamped).
- a page with no OCR boxes (never OCR'd, or OCR found no words) has no geometry to go by: the
  whole page is split into equal horizontal strips, one per text line, blank lines included
  so paragraphs keep their gaps. The same holds, within the box around all OCR lines, when
  OCR boxes exist but no text line aligns with any.

Every box is clamped inside the page. A word keeps its OCR confidence when it is the word
OCR read (same text); a word a person typed is given 100, as certain as the page says.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.exports.markup import xml_safe
from app.text.alignment import OcrLine, align_lines, ocr_lines

#: (left, top, right, bottom) in the page image's pixels.
Box = tuple[int, int, int, int]

#: Confidence (0-100) given to a word a person wrote, which OCR never read.
TYPED_CONFIDENCE = 100.0
#: Gap between an estimated line and the line it is laid out below, as a share of its height.
ESTIMATED_LINE_GAP = 0.25

#: How a line's box was found.
FROM_OCR = "ocr"
ESTIMATED = "estimated"
PAGE_STRIP = "strip"


@dataclass(frozen=True)
class PlacedWord:
    text: str
    box: Box
    #: 0-100.
    confidence: float
    #: Whether a person wrote this word (it is not what OCR read here): ALTO's CS.
    typed: bool = False


@dataclass(frozen=True)
class PlacedLine:
    #: Index of the line in the page text (0-based, counting blank lines).
    index: int
    box: Box
    words: tuple[PlacedWord, ...]
    #: FROM_OCR, ESTIMATED or PAGE_STRIP.
    source: str

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)


@dataclass(frozen=True)
class PlacedParagraph:
    """Lines between blank lines of the text."""

    lines: tuple[PlacedLine, ...]

    @property
    def box(self) -> Box:
        return union(line.box for line in self.lines)


def union(boxes: Any) -> Box:
    boxes = list(boxes)
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def text_lines(text: str) -> list[str]:
    """The page text's lines, as the editor numbers them, trailing blank lines dropped; without
    the control characters XML forbids (a stray NUL or form feed is no part of any word)."""
    lines = xml_safe(text.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def place_page(
    text: str, boxes: Sequence[Sequence[Any]] | None, width: int, height: int
) -> list[PlacedParagraph]:
    """The page's text as paragraphs of lines of words, each with its box on the page."""
    lines = text_lines(text)
    page = _Page(max(width, 1), max(height, 1))
    ocr = [line for line in ocr_lines(boxes) if line.words]
    mapping = align_lines(lines, ocr) if ocr else [None] * len(lines)
    placed = _aligned(lines, ocr, mapping, page)
    if not placed:
        area = page.clamp(union(line.box for line in ocr)) if ocr else (0, 0, page.w, page.h)
        placed = _strips(lines, area)
    return _paragraphs(lines, placed)


@dataclass(frozen=True)
class _Page:
    w: int
    h: int

    def clamp(self, box: Box) -> Box:
        left = min(max(box[0], 0), self.w - 1)
        top = min(max(box[1], 0), self.h - 1)
        right = min(max(box[2], left + 1), self.w)
        bottom = min(max(box[3], top + 1), self.h)
        return (left, top, right, bottom)


def _aligned(
    lines: list[str], ocr: list[OcrLine], mapping: list[int | None], page: _Page
) -> dict[int, PlacedLine]:
    """The lines placed by their alignment, by text line index; empty when none aligns."""
    placed: dict[int, PlacedLine] = {}
    for i, (line, index) in enumerate(zip(lines, mapping, strict=True)):
        if index is not None and line.split():
            ocr_line = ocr[index]
            box = page.clamp(ocr_line.box)
            placed[i] = PlacedLine(i, box, _words_on(line, ocr_line, box, page), FROM_OCR)
    if not placed:
        return placed
    first = placed[min(placed)]
    previous: PlacedLine | None = None
    leading: list[int] = []
    for i, line in enumerate(lines):
        if i in placed:
            previous = placed[i]
        elif line.split():
            if previous is None:
                leading.append(i)
            else:
                previous = placed[i] = _below(i, line, previous.box, page)
    # Lines before the first aligned one: stacked above it, the last one nearest.
    above = first.box
    for i in reversed(leading):
        placed[i] = _above(i, lines[i], above, page)
        above = placed[i].box
    return placed


def _below(i: int, line: str, prev: Box, page: _Page) -> PlacedLine:
    height = prev[3] - prev[1]
    top = prev[3] + round(height * ESTIMATED_LINE_GAP)
    top = min(top, page.h - height)
    box = page.clamp((prev[0], top, prev[2], top + height))
    return PlacedLine(i, box, _divided(line.split(), box, page, {}), ESTIMATED)


def _above(i: int, line: str, nxt: Box, page: _Page) -> PlacedLine:
    height = nxt[3] - nxt[1]
    bottom = max(nxt[1] - round(height * ESTIMATED_LINE_GAP), height)
    box = page.clamp((nxt[0], bottom - height, nxt[2], bottom))
    return PlacedLine(i, box, _divided(line.split(), box, page, {}), ESTIMATED)


def _strips(lines: list[str], area: Box) -> dict[int, PlacedLine]:
    placed: dict[int, PlacedLine] = {}
    if not lines:
        return placed
    page = _Page(area[2], area[3])
    step = (area[3] - area[1]) / len(lines)
    for i, line in enumerate(lines):
        if line.split():
            top = area[1] + round(i * step)
            bottom = max(area[1] + round((i + 1) * step), top + 1)
            box = page.clamp((area[0], top, area[2], bottom))
            placed[i] = PlacedLine(i, box, _divided(line.split(), box, page, {}), PAGE_STRIP)
    return placed


def _words_on(line: str, ocr_line: OcrLine, box: Box, page: _Page) -> tuple[PlacedWord, ...]:
    words = line.split()
    ocr_words = ocr_line.words
    if len(words) == len(ocr_words):
        return tuple(
            PlacedWord(
                word,
                page.clamp((o.left, o.top, o.right, o.bottom)),
                _confidence(o.confidence) if word == o.text else TYPED_CONFIDENCE,
                typed=word != o.text,
            )
            for word, o in zip(words, ocr_words, strict=True)
        )
    # Words OCR read unchanged keep their confidence, found by a word diff.
    kept: dict[int, float] = {}
    matcher = difflib.SequenceMatcher(None, words, [o.text for o in ocr_words], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            kept[block.a + k] = _confidence(ocr_words[block.b + k].confidence)
    return _divided(words, box, page, kept)


def _divided(
    words: list[str], box: Box, page: _Page, kept: dict[int, float]
) -> tuple[PlacedWord, ...]:
    """The words laid out across the box by their share of its characters."""
    left, top, right, bottom = box
    total = sum(len(w) for w in words) + len(words) - 1
    scale = (right - left) / max(total, 1)
    out = []
    cursor = 0
    for k, word in enumerate(words):
        start = left + round(cursor * scale)
        cursor += len(word)
        end = max(left + round(cursor * scale), start + 1)
        cursor += 1  # the space after it
        out.append(
            PlacedWord(
                word,
                page.clamp((start, top, end, bottom)),
                kept.get(k, TYPED_CONFIDENCE),
                typed=k not in kept,
            )
        )
    return tuple(out)


def _confidence(value: float) -> float:
    return min(max(float(value), 0.0), 100.0)


def _paragraphs(lines: list[str], placed: dict[int, PlacedLine]) -> list[PlacedParagraph]:
    paragraphs: list[PlacedParagraph] = []
    current: list[PlacedLine] = []
    for i, line in enumerate(lines):
        if not line.split():
            if current:
                paragraphs.append(PlacedParagraph(tuple(current)))
                current = []
        elif i in placed:
            current.append(placed[i])
    if current:
        paragraphs.append(PlacedParagraph(tuple(current)))
    return paragraphs
