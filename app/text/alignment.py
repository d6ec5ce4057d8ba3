"""Which OCR line each line of a page's text stands for.

OCR gives word boxes, each with the line it was read on (app/engines/base.py). A page's text
starts as that OCR output and is then corrected by people: words change, lines are merged,
split, added and removed. The editor highlights on the scan the line the caret is in, and the
hOCR, ALTO and PDF exports place corrected words on the OCR line they came from; both ask this
module, so both follow the same alignment.

The alignment is monotone (line order is kept, as in reading), and a text line is paired with
an OCR line only when they share enough characters; a line with no counterpart maps to None.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Below this similarity (Dice coefficient of character bigrams, 0-1) two lines are not
#: the same line: a corrected line keeps most of its OCR's bigrams, an unrelated one few.
MIN_SIMILARITY = 0.3


@dataclass(frozen=True)
class WordBox:
    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


@dataclass(frozen=True)
class OcrLine:
    """One line as OCR read it: its words, in order, and the box around them."""

    index: int
    words: tuple[WordBox, ...]

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in the page image's pixels."""
        return (
            min(w.left for w in self.words),
            min(w.top for w in self.words),
            max(w.right for w in self.words),
            max(w.bottom for w in self.words),
        )


def ocr_lines(boxes: Sequence[Sequence[Any]] | None) -> list[OcrLine]:
    """The OCR lines of a page from its stored word boxes, in reading order.

    Boxes carry their line number as a 7th element. Boxes stored before engines recorded it
    have 6; their lines are rebuilt from the geometry: a word starts a new line when it
    begins left of the previous word's start, or lies wholly below it.
    """
    if not boxes:
        return []
    words: list[tuple[int, WordBox]] = []
    line = 0
    previous: WordBox | None = None
    for raw in boxes:
        word = WordBox(
            str(raw[0]), int(raw[1]), int(raw[2]), int(raw[3]), int(raw[4]), float(raw[5])
        )
        if len(raw) > 6:
            line = int(raw[6])
        elif previous is not None and (word.left < previous.left or word.top >= previous.bottom):
            line += 1
        words.append((line, word))
        previous = word
    grouped: dict[int, list[WordBox]] = {}
    for number, word in words:
        grouped.setdefault(number, []).append(word)
    return [OcrLine(i, tuple(grouped[n])) for i, n in enumerate(sorted(grouped))]


def similarity(a: str, b: str) -> float:
    """Dice coefficient of the two strings' character bigrams (whitespace ignored), 0-1.

    Linear in the lengths, so a 60-line page aligns in milliseconds; code points rather than
    grapheme clusters, which is finer for Devanagari and just as telling.
    """
    return _dice(_Grams.of(a), _Grams.of(b))


@dataclass(frozen=True)
class _Grams:
    """A line's bigrams, counted once: align_lines compares every text line with every OCR
    line, and counting them per pair made a 70-line page take over a second."""

    text: str
    counts: Counter

    @classmethod
    def of(cls, line: str) -> _Grams:
        text = "".join(line.split())
        return cls(text, Counter(text[i : i + 2] for i in range(len(text) - 1)))


def _dice(a: _Grams, b: _Grams) -> float:
    if not a.text or not b.text:
        return 0.0
    if len(a.text) == 1 or len(b.text) == 1:
        return 1.0 if a.text == b.text else 0.0
    ca, cb = a.counts, b.counts
    # The keys' intersection is a C-level set operation: most pairs of lines share few bigrams.
    shared = sum(min(ca[gram], cb[gram]) for gram in ca.keys() & cb.keys())
    return 2 * shared / (len(a.text) - 1 + len(b.text) - 1)


def align_lines(text_lines: Sequence[str], lines: Sequence[OcrLine]) -> list[int | None]:
    """For each text line, the index (in `lines`) of the OCR line it stands for, or None.

    A weighted longest common subsequence: the pairing that keeps the order and has the
    largest total similarity, counting only pairs at MIN_SIMILARITY or above. Blank text
    lines map to None.
    """
    n, m = len(text_lines), len(lines)
    mapping: list[int | None] = [None] * n
    if not n or not m:
        return mapping
    ocr_grams = [_Grams.of(line.text) for line in lines]
    sims = []
    for text in text_lines:
        grams = _Grams.of(text)
        sims.append([_dice(grams, ocr) if grams.text else 0.0 for ocr in ocr_grams])
    score = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        row, above, sim_row = score[i], score[i - 1], sims[i - 1]
        for j in range(1, m + 1):
            best = max(above[j], row[j - 1])
            sim = sim_row[j - 1]
            if sim >= MIN_SIMILARITY:
                best = max(best, above[j - 1] + sim)
            row[j] = best
    i, j = n, m
    while i and j:
        sim = sims[i - 1][j - 1]
        if sim >= MIN_SIMILARITY and score[i][j] == score[i - 1][j - 1] + sim:
            mapping[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif score[i][j] == score[i - 1][j]:
            i -= 1
        else:
            j -= 1
    return mapping


def line_map(text: str, boxes: Sequence[Sequence[Any]] | None) -> list[dict[str, Any] | None]:
    """For each line of `text`, the box of its OCR line as a dict, or None: what the editor
    draws over the scan."""
    lines = ocr_lines(boxes)
    mapping = align_lines(text.split("\n"), lines)
    out: list[dict[str, Any] | None] = []
    for index in mapping:
        if index is None:
            out.append(None)
        else:
            left, top, right, bottom = lines[index].box
            out.append({"line": index, "box": [left, top, right - left, bottom - top]})
    return out
