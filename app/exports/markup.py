"""Text as XML 1.0 can hold it: the formats write page text people typed, which may hold
control characters XML forbids (a stray form feed, a NUL from a paste)."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

#: What XML 1.0 forbids: C0 controls other than tab, newline and carriage return, lone
#: surrogates, and U+FFFE/U+FFFF.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """`text` without the characters XML 1.0 forbids (not escaped)."""
    return _FORBIDDEN.sub("", text)


def xml_text(text: str) -> str:
    """`text` as element content: forbidden characters dropped, &, < and > escaped."""
    return escape(xml_safe(text))


def xml_attr(text: str) -> str:
    """`text` as a quoted attribute value."""
    return quoteattr(xml_safe(text))
