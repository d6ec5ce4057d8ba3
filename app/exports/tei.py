"""TEI P5 XML: the book's text with a page break before each page.

The teiHeader names the project (titleStmt), the export date (publicationStmt), the file the
scans came from (sourceDesc) and the languages (profileDesc/langUsage). The body holds, for
each page, `<pb n="…"/>` and then the page's paragraphs: blank lines of the text separate
`<p>`s, line breaks within one become `<lb/>`. A paragraph running on across a page break is
closed at the page's end (the page is the unit people proofread).

Each page's part is a fragment of the body; assembling writes the header, copies the parts
through in order and closes the document, so the book is never held in memory.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.exports import ExportMeta, ExportPage, ExportPart
from app.exports.languages import bcp47
from app.exports.languages import name as language_name
from app.exports.markup import xml_attr, xml_text
from app.exports.placement import text_lines

NAMESPACE = "http://www.tei-c.org/ns/1.0"


def page_fragment(page: ExportPage) -> str:
    facs = f" facs={xml_attr(page.image_path.name)}" if page.image_path else ""
    out = [f'<pb n="{page.number}"{facs}/>\n']
    paragraph: list[str] = []
    for line in [*text_lines(page.text), ""]:
        if line.strip():
            paragraph.append(xml_text(line.strip()))
        elif paragraph:
            out.append("<p>" + "<lb/>\n".join(paragraph) + "</p>\n")
            paragraph = []
    return "".join(out)


def header(meta: ExportMeta) -> str:
    lang = bcp47(meta.languages[0]) if meta.languages else "und"
    when = meta.exported_at.isoformat(timespec="seconds")
    day = meta.exported_at.date().isoformat()
    languages = "".join(
        f'     <language ident="{bcp47(code)}">{xml_text(language_name(code))}</language>\n'
        for code in meta.languages
    )
    profile = (
        f"  <profileDesc>\n   <langUsage>\n{languages}   </langUsage>\n  </profileDesc>\n"
        if languages
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<TEI xmlns="{NAMESPACE}" xml:lang="{lang}">\n'
        " <teiHeader>\n"
        "  <fileDesc>\n"
        "   <titleStmt>\n"
        f"    <title>{xml_text(meta.title)}</title>\n"
        "   </titleStmt>\n"
        "   <publicationStmt>\n"
        f"    <p>Exported from the proofing project {xml_text(meta.slug)} on"
        f' <date when="{when}">{day}</date>.</p>\n'
        "   </publicationStmt>\n"
        "   <sourceDesc>\n"
        f'    <bibl>Transcribed from the scans in <idno type="file">'
        f"{xml_text(meta.source_filename)}</idno>.</bibl>\n"
        "   </sourceDesc>\n"
        "  </fileDesc>\n"
        f"{profile}"
        " </teiHeader>\n"
        " <text>\n"
        "  <body>\n"
    )


FOOTER = "  </body>\n </text>\n</TEI>\n"


@dataclass(frozen=True)
class Tei:
    name: str = "tei"
    label: str = "TEI P5 XML"
    extension: str = "xml"
    content_type: str = "application/tei+xml"

    def render_part(self, page: ExportPage, meta: ExportMeta) -> bytes:
        return page_fragment(page).encode()

    def assemble(self, parts: Sequence[ExportPart], meta: ExportMeta, out: Path) -> None:
        with out.open("wb") as dest:
            dest.write(header(meta).encode())
            for part in parts:
                with part.path.open("rb") as src:
                    shutil.copyfileobj(src, dest)
            if not parts:
                dest.write(b"<p/>\n")  # a TEI body holds at least one paragraph or division
            dest.write(FOOTER.encode())


FORMATS = (Tei(),)
