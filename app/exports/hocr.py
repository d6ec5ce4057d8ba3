"""hOCR 1.2: a ZIP of one XHTML file per page, with a box for every word of the exported text.

Pages hold ocr_carea > ocr_par > ocr_line > ocrx_word, as Tesseract writes them: one area and
paragraph per paragraph of the text (lines between blank lines), each line and word with its
bbox, and each word with x_wconf. The boxes are those of app/exports/placement.py: corrected
words sit on the OCR line they align with, added lines below the line before them, and a page
never OCR'd is split into strips, one per line (its boxes are estimates, not measurements).
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

_CAPABILITIES = "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf"


def _bbox(box: Box) -> str:
    return f"bbox {box[0]} {box[1]} {box[2]} {box[3]}"


def page_hocr(page: ExportPage, meta: ExportMeta) -> str:
    codes = split_codes(page.language) or list(meta.languages)
    lang = bcp47(codes[0]) if codes else "und"
    n = page.number
    image = f'image "{page.image_path.name}"; ' if page.image_path else ""
    dpi = round(page.dpi) if page.dpi else None
    page_title = f"{image}bbox 0 0 {page.width} {page.height}; ppageno {n - 1}"
    if dpi:
        page_title += f"; scan_res {dpi} {dpi}"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
        '    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="{lang}" lang="{lang}">\n'
        " <head>\n"
        f"  <title>{xml_text(f'{meta.title}, page {n}')}</title>\n"
        '  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>\n'
        '  <meta name="ocr-system" content="ocr-proofing"/>\n'
        f'  <meta name="ocr-capabilities" content="{_CAPABILITIES}"/>\n'
        " </head>\n"
        " <body>\n"
        f'  <div class="ocr_page" id="page_{n}" title={xml_attr(page_title)}>\n'
    ]
    line_no = word_no = 0
    for p, paragraph in enumerate(place_page(page.text, page.boxes, page.width, page.height), 1):
        box = _bbox(paragraph.box)
        out.append(f'   <div class="ocr_carea" id="block_{n}_{p}" title="{box}">\n')
        out.append(f'    <p class="ocr_par" id="par_{n}_{p}" lang="{lang}" title="{box}">\n')
        for line in paragraph.lines:
            line_no += 1
            height = line.box[3] - line.box[1]
            out.append(
                f'     <span class="ocr_line" id="line_{n}_{line_no}"'
                f' title="{_bbox(line.box)}; x_size {height}">'
            )
            spans = []
            for word in line.words:
                word_no += 1
                spans.append(
                    f'<span class="ocrx_word" id="word_{n}_{word_no}"'
                    f' title="{_bbox(word.box)}; x_wconf {round(word.confidence)}">'
                    f"{xml_text(word.text)}</span>"
                )
            out.append(" ".join(spans) + "</span>\n")
        out.append("    </p>\n   </div>\n")
    out.append("  </div>\n </body>\n</html>\n")
    return "".join(out)


@dataclass(frozen=True)
class Hocr:
    name: str = "hocr"
    label: str = "hOCR (ZIP, a file per page, with word boxes)"
    extension: str = "zip"
    content_type: str = "application/zip"

    def render_part(self, page: ExportPage, meta: ExportMeta) -> bytes:
        return page_hocr(page, meta).encode()

    def assemble(self, parts: Sequence[ExportPart], meta: ExportMeta, out: Path) -> None:
        write_zip(parts, meta, out, "hocr")


FORMATS = (Hocr(),)
