"""The word-level diff of two texts, as the history, the edit conflict and re-OCR show it.

The texts are cut into words and the whitespace between them, and the diff is taken over those
tokens (difflib's longest matching blocks), so a change never splits a word. A word holds
whole grapheme clusters whatever the script: a Devanagari conjunct or a vowel sign is never
cut from its consonant, because only whitespace separates tokens and no cluster contains
whitespace. Replaced words are shown deleted, then inserted, as `<del>` and `<ins>`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from markupsafe import Markup, escape

_TOKENS = re.compile(r"\s+|\S+")


@dataclass(frozen=True)
class DiffPart:
    #: "equal", "insert" or "delete".
    op: str
    text: str


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text.replace("\r\n", "\n"))


def diff_parts(before: str, after: str) -> list[DiffPart]:
    """What changed from `before` to `after`, in order; runs of one kind are merged."""
    old, new = tokens(before), tokens(after)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    parts: list[DiffPart] = []

    def add(op: str, words: list[str]) -> None:
        text = "".join(words)
        if not text:
            return
        if parts and parts[-1].op == op:
            parts[-1] = DiffPart(op, parts[-1].text + text)
        else:
            parts.append(DiffPart(op, text))

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", old[i1:i2])
        else:
            add("delete", old[i1:i2])
            add("insert", new[j1:j2])
    return parts


def diff_html(before: str, after: str) -> Markup:
    """The diff as HTML: unchanged text escaped, deletions in <del>, insertions in <ins>."""
    out = []
    for part in diff_parts(before, after):
        text = escape(part.text)
        if part.op == "insert":
            out.append(Markup("<ins>{}</ins>").format(text))
        elif part.op == "delete":
            out.append(Markup("<del>{}</del>").format(text))
        else:
            out.append(text)
    return Markup("").join(out)


def changed_words(before: str, after: str) -> tuple[int, int]:
    """(words deleted, words inserted): the size of a change, for summaries."""
    deleted = inserted = 0
    for part in diff_parts(before, after):
        count = len(part.text.split())
        if part.op == "delete":
            deleted += count
        elif part.op == "insert":
            inserted += count
    return deleted, inserted
