"""ALTO v4: a ZIP of one XML file per page, with a String for every word of the exported text.

Each page is Layout > Page (the image's size in pixels) > PrintSpace (the whole image) >
TextBlock (a paragraph of the text) > TextLine > String, with SP between the Strings of a
line; MeasurementUnit is pixel. The boxes are those of app/exports/placement.py: corrected
words sit on the OCR line they align with, added lines below the line before them. ALTO
allows no TextLine without coordinates, so a page never OCR'd is split into strips, one per
line of its text: its coordinates are estimates, not measurements. A word a person wrote
(not what OCR read there) is marked CS="true", ALTO's correction status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.exports import ExportMeta, ExportPage, ExportPart
from app.exports.archive import write_zip
from app.exports.languages import bcp47, split_codes
from app.exports.markup import xml_attr, xml_text
from app.exports.placement import Box, place_page

NAMESPACE = "http://www.loc.gov/standards/alto/ns-v4#"
SCHEMA = "http://www.loc.gov/standards/alto/v4/alto-4-2.xsd"
#: ALTO's correction status, on a String a person wrote.
CORRECTED = ' CS="true"'


def _position(box: Box) -> str:
    return f'HPOS="{box[0]}" VPOS="{box[1]}" WIDTH="{box[2] - box[0]}" HEIGHT="{box[3] - box[1]}"'


def page_alto(page: ExportPage, meta: ExportMeta) -> str:
    codes = split_codes(page.language) or list(meta.languages)
    lang = bcp47(codes[0]) if codes else "und"
    n = page.number
    image = xml_text(page.image_path.name) if page.image_path else ""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<alto xmlns="{NAMESPACE}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"\n'
        f'      xsi:schemaLocation="{NAMESPACE} {SCHEMA}">\n'
        " <Description>\n"
        "  <MeasurementUnit>pixel</MeasurementUnit>\n"
        "  <sourceImageInformation>\n"
        f"   <fileName>{image}</fileName>\n"
        "  </sourceImageInformation>\n"
        " </Description>\n"
        " <Layout>\n"
        f'  <Page ID="page_{n}" PHYSICAL_IMG_NR="{n}" WIDTH="{page.width}"'
        f' HEIGHT="{page.height}">\n'
        f"   <PrintSpace {_position((0, 0, page.width, page.height))}>\n"
    ]
    line_no = word_no = 0
    for p, paragraph in enumerate(place_page(page.text, page.boxes, page.width, page.height), 1):
        out.append(f'    <TextBlock ID="block_{n}_{p}" {_position(paragraph.box)} LANG="{lang}">\n')
        for line in paragraph.lines:
            line_no += 1
            out.append(f'     <TextLine ID="line_{n}_{line_no}" {_position(line.box)}>\n')
            for k, word in enumerate(line.words):
                word_no += 1
                if k:
                    gap = max(word.box[0] - line.words[k - 1].box[2], 0)
                    out.append(
                        f'      <SP WIDTH="{gap}" HPOS="{line.words[k - 1].box[2]}"'
                        f' VPOS="{line.box[1]}"/>\n'
                    )
                out.append(
                    f'      <String ID="word_{n}_{word_no}" {_position(word.box)}'
                    f' CONTENT={xml_attr(word.text)} WC="{word.confidence / 100:.2f}"'
                    f"{CORRECTED if word.typed else ''}/>\n"
                )
            out.append("     </TextLine>\n")
        out.append("    </TextBlock>\n")
    out.append("   </PrintSpace>\n  </Page>\n </Layout>\n</alto>\n")
    return "".join(out)


@dataclass(frozen=True)
class Alto:
    name: str = "alto"
    label: str = "ALTO XML (ZIP, a file per page, with word boxes)"
    extension: str = "zip"
    content_type: str = "application/zip"

    def render_part(self, page: ExportPage, meta: ExportMeta) -> bytes:
        return page_alto(page, meta).encode()

    def assemble(self, parts: Sequence[ExportPart], meta: ExportMeta, out: Path) -> None:
        write_zip(parts, meta, out, "xml")


FORMATS = (Alto(),)
