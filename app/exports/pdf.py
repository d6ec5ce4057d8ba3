"""Searchable PDF: each page is the stored scan with an invisible text layer over it, as
Tesseract's and OCRmyPDF's PDF renderers make them.

The scan is embedded without touching its pixels (app/rendering.py stores it in its own pixel
format): a JPEG is copied into the PDF byte for byte (DCTDecode); a grey or colour PNG's
compressed data is copied as it is too (FlateDecode with the PNG predictor, as img2pdf does);
a 1-bit PNG is re-coded, losslessly and still 1-bit, as CCITT Group 4, which Tesseract's
renderer also writes and which takes about two thirds of the PNG's bytes (whichever is
smaller is kept). Only an image none of these fit (interlaced or transparent PNG, TIFF...) is
decoded, and then stored losslessly in its own mode: "1" as Group 4, grey as 8-bit grey,
anything else as RGB. So the PDF costs about what the stored scans do, never a re-encoding.

The page is the scan's pixels at its resolution (Page.dpi): width / dpi * 72 points wide.
A page whose resolution is unknown is taken to be 300 DPI, the usual scanning resolution (and
what app/rendering.py assumes of an image that does not say); a page with no scan is a blank
page of its stored size with only the text layer.

The text layer carries the exported text (the page's latest, corrected text), each word at
the box app/exports/placement.py gives it, in text render mode 3 (invisible). The font is
Tesseract's glyphless font (app/exports/data/glyphless.ttf, Apache-2.0): every character code
is a UTF-16 code unit (Identity-H), mapped to the font's one empty glyph 500 units wide, with a
ToUnicode map that gives each code back as itself; each word is stretched (Tz) to its box, and
a space, stretched to the gap, follows every word but a line's last, so `pdftotext` and copy
and paste give the words, spaces and lines in the text's order, Devanagari included.
Limits shared with Tesseract's renderer: a character outside Unicode's basic plane (rare in
books: historic scripts, mathematical letters) takes two codes that the ToUnicode map cannot
join, so it is extracted as two replacement characters; words are laid left to right, so
right-to-left scripts are extracted in visual rather than logical order.

A part is a one-page PDF; assembling appends the parts' pages to one PDF with pikepdf, in
batches of MERGE_BATCH parts (qpdf copies a page's streams only when the result is written,
so the parts must stay open until then), the glyphless font shared by all pages.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC
from pathlib import Path

import pikepdf
from PIL import Image

from app.exports import ExportError, ExportMeta, ExportPage, ExportPart
from app.exports.placement import place_page

#: Resolution of a scan that does not say its own (Page.dpi is None): the usual one.
ASSUMED_DPI = 300.0
POINTS_PER_INCH = 72.0
#: Parts held open at once while assembling: beyond this, batches are merged first.
MERGE_BATCH = 200
#: The least gap between two words' glyphs, as a share of the font size (the line's height):
#: poppler starts a new word at a gap of a tenth of the font size.
MIN_WORD_GAP = 0.25
#: The glyphless font's only glyph is 500 units of 1000 wide.
GLYPH_WIDTH = 0.5
FONT_FILE = Path(__file__).with_name("data") / "glyphless.ttf"
FONT_NAME = pikepdf.Name("/F0")
IMAGE_NAME = pikepdf.Name("/Im0")

_TO_UNICODE = b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
1 beginbfrange
<0000> <FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end
"""


class UnreadableScan(ExportError):
    """The stored page image cannot be read: the page cannot be exported as PDF."""


def _glyphless_font(pdf: pikepdf.Pdf) -> pikepdf.Object:
    """A Type0 font whose every CID is the glyphless font's empty glyph (GID 1)."""
    font_file = pikepdf.Stream(pdf, FONT_FILE.read_bytes())
    font_file.Length1 = len(FONT_FILE.read_bytes())
    descriptor = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.FontDescriptor,
            FontName=pikepdf.Name.GlyphLessFont,
            Flags=5,  # fixed pitch, symbolic
            FontBBox=[0, 0, 500, 1000],
            ItalicAngle=0,
            Ascent=1000,
            Descent=-1,  # the spec wants it negative
            CapHeight=1000,
            StemV=80,
            FontFile2=font_file,
        )
    )
    cid_to_gid = pikepdf.Stream(pdf, zlib.compress(b"\x00\x01" * 65536, 9))
    cid_to_gid.Filter = pikepdf.Name.FlateDecode
    cid_font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.CIDFontType2,
            BaseFont=pikepdf.Name.GlyphLessFont,
            CIDSystemInfo=pikepdf.Dictionary(Registry="Adobe", Ordering="Identity", Supplement=0),
            FontDescriptor=descriptor,
            DW=int(1000 * GLYPH_WIDTH),
            CIDToGIDMap=cid_to_gid,
        )
    )
    to_unicode = pikepdf.Stream(pdf, zlib.compress(_TO_UNICODE, 9))
    to_unicode.Filter = pikepdf.Name.FlateDecode
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type0,
            BaseFont=pikepdf.Name.GlyphLessFont,
            Encoding=pikepdf.Name("/Identity-H"),
            DescendantFonts=[cid_font],
            ToUnicode=to_unicode,
        )
    )


# --- the scan -------------------------------------------------------------------------------


def image_xobject(pdf: pikepdf.Pdf, path: Path) -> pikepdf.Stream:
    """The stored scan as an image XObject, its compressed data copied where it can be."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableScan(f"The page image {path.name} cannot be read ({exc}).") from None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        stream = _png_passthrough(pdf, data)
        if stream is not None and int(stream.BitsPerComponent) == 1 and _is_grey(stream):
            # A bilevel scan: Group 4 holds the same pixels in about two thirds of the PNG's
            # bytes (and is what Tesseract's renderer writes), for ~0.1 s of encoding.
            smaller = _g4_of(pdf, data, path)
            if smaller is not None and len(smaller.read_raw_bytes()) < len(stream.read_raw_bytes()):
                return smaller
        if stream is not None:
            return stream
    elif data.startswith(b"\xff\xd8"):
        stream = _jpeg_passthrough(pdf, data)
        if stream is not None:
            return stream
    return _decoded(pdf, data, path)


def _png_passthrough(pdf: pikepdf.Pdf, data: bytes) -> pikepdf.Stream | None:
    """A PNG's IDAT data as a FlateDecode image with the PNG predictor, or None when the PNG
    has what PDF images cannot say that way (interlacing, transparency, alpha)."""
    pos, idat, palette = 8, [], b""
    header: tuple[int, ...] | None = None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"tRNS":
            return None
        elif kind == b"IEND":
            break
    if header is None or not idat:
        return None
    width, height, depth, colour_type, _, _, interlace = header
    if interlace or colour_type not in (0, 2, 3):
        return None
    if colour_type == 0:
        space: object = pikepdf.Name.DeviceGray
    elif colour_type == 2:
        space = pikepdf.Name.DeviceRGB
    else:
        if not palette:
            return None
        space = [pikepdf.Name.Indexed, pikepdf.Name.DeviceRGB, len(palette) // 3 - 1, palette]
    colours = 3 if colour_type == 2 else 1
    stream = pikepdf.Stream(pdf, b"".join(idat))
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width, stream.Height = width, height
    stream.ColorSpace = space
    stream.BitsPerComponent = depth
    stream.Filter = pikepdf.Name.FlateDecode
    stream.DecodeParms = pikepdf.Dictionary(
        Predictor=15, Colors=colours, BitsPerComponent=depth, Columns=width
    )
    return stream


def _is_grey(stream: pikepdf.Stream) -> bool:
    return stream.ColorSpace == pikepdf.Name.DeviceGray


def _g4_of(pdf: pikepdf.Pdf, data: bytes, path: Path) -> pikepdf.Stream | None:
    """A bilevel image as one CCITT Group 4 strip (lossless), or None if Pillow cannot."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return _g4(pdf, image)
    except Exception:  # noqa: BLE001 -- then the image goes in as its PNG data
        return None


def _g4(pdf: pikepdf.Pdf, image: Image.Image) -> pikepdf.Stream | None:
    """Pillow (libtiff) writes the image as a Group 4 TIFF of one strip; the strip is the
    CCITTFaxDecode data."""
    buffer = io.BytesIO()
    try:
        image.save(buffer, "TIFF", compression="group4", strip_size=1 << 31)
    except (OSError, ValueError):  # a Pillow built without libtiff: the caller uses Flate
        return None
    buffer.seek(0)
    with Image.open(buffer) as tiff:
        offsets, counts = tiff.tag_v2.get(273), tiff.tag_v2.get(279)
        photometric = tiff.tag_v2.get(262, 0)
        fill_order = tiff.tag_v2.get(266, 1)
    if not offsets or len(offsets) != 1 or fill_order != 1:
        return None
    strip = buffer.getvalue()[offsets[0] : offsets[0] + counts[0]]
    stream = pikepdf.Stream(pdf, strip)
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width, stream.Height = image.size
    stream.ColorSpace = pikepdf.Name.DeviceGray
    stream.BitsPerComponent = 1
    stream.Filter = pikepdf.Name.CCITTFaxDecode
    # libtiff codes 0 bits as white runs; with MinIsBlack (1) a 0 bit is a black pixel, and
    # BlackIs1 makes the decoder give white runs back as 0, which DeviceGray shows as black.
    stream.DecodeParms = pikepdf.Dictionary(
        K=-1, Columns=image.width, Rows=image.height, BlackIs1=photometric == 1
    )
    return stream


def _jpeg_passthrough(pdf: pikepdf.Pdf, data: bytes) -> pikepdf.Stream | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            mode, (width, height) = image.mode, image.size
            adobe = "adobe" in image.info
    except Exception:  # noqa: BLE001 -- any unreadable JPEG is decoded, or refused, below
        return None
    spaces = {"L": "/DeviceGray", "RGB": "/DeviceRGB", "CMYK": "/DeviceCMYK"}
    if mode not in spaces:
        return None
    stream = pikepdf.Stream(pdf, data)
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width, stream.Height = width, height
    stream.ColorSpace = pikepdf.Name(spaces[mode])
    stream.BitsPerComponent = 8
    stream.Filter = pikepdf.Name.DCTDecode
    if mode == "CMYK" and adobe:
        stream.Decode = [1, 0] * 4  # Adobe's CMYK JPEGs are stored inverted
    return stream


def _decoded(pdf: pikepdf.Pdf, data: bytes, path: Path) -> pikepdf.Stream:
    """Any other image, decoded and stored losslessly in its own mode (1-bit stays 1-bit)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            frame = _pdf_mode(image)
    except Exception as exc:  # noqa: BLE001 -- Pillow raises many kinds on a damaged file
        raise UnreadableScan(f"The page image {path.name} cannot be read ({exc}).") from None
    if frame.mode == "1" and (g4 := _g4(pdf, frame)) is not None:
        return g4
    depth = 1 if frame.mode == "1" else 8
    space = "/DeviceRGB" if frame.mode == "RGB" else "/DeviceGray"
    # Pillow packs "1" rows to whole bytes with 1 as white, as PDF's 1-bit DeviceGray has it.
    stream = pikepdf.Stream(pdf, zlib.compress(frame.tobytes(), 6))
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width, stream.Height = frame.size
    stream.ColorSpace = pikepdf.Name(space)
    stream.BitsPerComponent = depth
    stream.Filter = pikepdf.Name.FlateDecode
    return stream


def _pdf_mode(image: Image.Image) -> Image.Image:
    if image.mode in ("1", "L", "RGB"):
        return image
    if image.mode.startswith("I;16") or image.mode == "I":
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if "A" in image.mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)  # transparency shows as paper
        return flat.convert("L" if image.mode in ("LA", "La") else "RGB")
    return image.convert("RGB")


# --- the text layer -------------------------------------------------------------------------


def _number(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def text_layer(page: ExportPage, scale: float, page_height: float) -> bytes:
    """The content stream of the page's invisible words; `scale` is points per pixel."""
    out = ["BT\n3 Tr\n"]
    for paragraph in place_page(page.text, page.boxes, page.width, page.height):
        for line in paragraph.lines:
            size = max((line.box[3] - line.box[1]) * scale, 1.0)
            baseline = page_height - line.box[3] * scale
            out.append(f"/F0 {_number(size)} Tf\n")
            for k, word in enumerate(line.words):
                codes = word.text.encode("utf-16-be")
                units = len(codes) // 2
                left = word.box[0] * scale
                width = (word.box[2] - word.box[0]) * scale
                if k + 1 < len(line.words):
                    # Text extractors join words closer than a fraction of the font size,
                    # whatever spaces lie between: OCR boxes that touch are drawn a little
                    # narrower, to leave the gap a reader sees.
                    room = line.words[k + 1].box[0] * scale - left - MIN_WORD_GAP * size
                    width = max(min(width, room), width / 2)
                stretch = 100 * width / (size * GLYPH_WIDTH * units)
                out.append(
                    f"1 0 0 1 {_number(left)} {_number(baseline)} Tm "
                    f"{_number(stretch)} Tz [<{codes.hex()}>] TJ\n"
                )
                if k + 1 < len(line.words):
                    gap = max(line.words[k + 1].box[0] * scale - left - width, 0.01)
                    out.append(f"{_number(100 * gap / (size * GLYPH_WIDTH))} Tz [<0020>] TJ\n")
    out.append("ET\n")
    return "".join(out).encode("ascii")


def page_pdf(page: ExportPage) -> pikepdf.Pdf:
    """A one-page PDF of the scan with the text over it."""
    dpi = float(page.dpi) if page.dpi else ASSUMED_DPI
    scale = POINTS_PER_INCH / dpi
    pdf = pikepdf.Pdf.new()
    resources = pikepdf.Dictionary(Font=pikepdf.Dictionary({"/F0": _glyphless_font(pdf)}))
    content = b""
    width, height = page.width, page.height
    if page.image_path is not None:
        image = image_xobject(pdf, page.image_path)
        # The stored image's own size rules: it is what the boxes were measured on.
        width, height = int(image.Width), int(image.Height)
        resources.XObject = pikepdf.Dictionary({"/Im0": pdf.make_indirect(image)})
    if width <= 0 or height <= 0:
        width, height = round(8.27 * dpi), round(11.69 * dpi)  # no size known: A4
    page_w, page_h = width * scale, height * scale
    if page.image_path is not None:
        content = f"q {_number(page_w)} 0 0 {_number(page_h)} 0 0 cm /Im0 Do Q\n".encode()
    sized = replace(page, width=width, height=height)
    content += text_layer(sized, scale, page_h)
    pdf.pages.append(
        pikepdf.Page(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Page,
                MediaBox=[0, 0, page_w, page_h],
                Resources=resources,
                Contents=pdf.make_stream(
                    zlib.compress(content, 6), Filter=pikepdf.Name.FlateDecode
                ),
            )
        )
    )
    return pdf


def _merge(paths: Sequence[Path], out: Path, meta: ExportMeta | None) -> None:
    """The pages of `paths`, in order, as one PDF sharing one font; `meta` names it."""
    sources: list[pikepdf.Pdf] = []
    with pikepdf.Pdf.new() as dest:
        try:
            font = None
            for path in paths:
                source = pikepdf.open(path)
                sources.append(source)
                for page in source.pages:
                    dest.pages.append(page)
                    copied = dest.pages[-1]
                    fonts = copied.obj.get("/Resources", {}).get("/Font")
                    if fonts is None or FONT_NAME not in fonts:
                        continue
                    if font is None:
                        font = fonts[FONT_NAME]
                    else:
                        fonts[FONT_NAME] = font  # the copy made for this page goes unwritten
            if meta is not None:
                with dest.open_metadata(set_pikepdf_as_editor=False) as xmp:
                    xmp["dc:title"] = meta.title
                dest.docinfo.Title = meta.title
                dest.docinfo.Producer = "ocr-proofing"
                when = meta.exported_at
                if when.tzinfo is not None:
                    when = when.astimezone(UTC)
                dest.docinfo.CreationDate = when.strftime("D:%Y%m%d%H%M%SZ")
            dest.save(out, object_stream_mode=pikepdf.ObjectStreamMode.generate)
        finally:
            for source in sources:
                source.close()


@dataclass(frozen=True)
class SearchablePdf:
    name: str = "pdf"
    label: str = "PDF (scans with searchable text)"
    extension: str = "pdf"
    content_type: str = "application/pdf"

    def render_part(self, page: ExportPage, meta: ExportMeta) -> bytes:
        buffer = io.BytesIO()
        with page_pdf(page) as pdf:
            pdf.save(buffer, object_stream_mode=pikepdf.ObjectStreamMode.generate)
        return buffer.getvalue()

    def assemble(self, parts: Sequence[ExportPart], meta: ExportMeta, out: Path) -> None:
        paths = [part.path for part in parts]
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".pdf-merge-") as tmp:
            while len(paths) > MERGE_BATCH:
                batches = []
                for start in range(0, len(paths), MERGE_BATCH):
                    batch = Path(tmp) / f"batch-{len(paths)}-{start:07d}.pdf"
                    _merge(paths[start : start + MERGE_BATCH], batch, None)
                    batches.append(batch)
                paths = batches
            _merge(paths, out, meta)


FORMATS = (SearchablePdf(),)
