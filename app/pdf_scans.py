"""A PDF page that is one full-page scan, taken out of the PDF exactly as the scanner made it.

Most scanned books are PDFs whose every page draws one image over the whole page and nothing
else. Rendering such a page resamples the scan and turns 1-bit pixels into 8-bit grey (three
times the bytes, no better OCR: docs/performance.md); extracting it keeps the scanner's pixels,
format and resolution. A DCT (JPEG) scan is copied as it is; a Flate, LZW, CCITT or JBIG2 scan
is decoded to its exact pixels, to be stored losslessly in its own mode ("1", "L" or "RGB").

Only what is exact is extracted. A page with anything more (text, vector art, a second
image, a mask, a clip, annotations, a rotation, a scan turned or not covering the page,
colour spaces other than grey, RGB and their ICC forms) returns None, and is rendered.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pikepdf
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from app.sources import pillow_quietly

#: Operators a page of one scan may hold besides drawing it: state, colour and marked content,
#: none of which paints. Anything else (text, paths, clips, shadings, inline images) paints.
HARMLESS_OPERATORS = {
    "w", "J", "j", "M", "d", "ri", "i", "g", "G", "rg", "RG", "k", "K",
    "cs", "CS", "sc", "scn", "SC", "SCN", "BMC", "BDC", "EMC", "MP", "DP",
}  # fmt: skip
#: Filters whose output pikepdf gives as the image's exact samples.
LOSSLESS_FILTERS = {"/FlateDecode", "/LZWDecode", "/RunLengthDecode", "/CCITTFaxDecode"}
#: How far (in points, or as a share of the page) a scan's edges may be from the page's.
EDGE_TOLERANCE_PT = 1.0
EDGE_TOLERANCE_SHARE = 0.005
#: A scan whose horizontal and vertical resolutions differ more than this is not square-pixelled
#: and is rendered, so that a stored page has one DPI.
DPI_TOLERANCE_SHARE = 0.01
POINTS_PER_INCH = 72


@dataclass(frozen=True)
class ExtractedScan:
    width: int
    height: int
    #: The mode of the stored file: "1", "L" or "RGB".
    mode: str
    dpi: float
    #: A JPEG to store as it is (its JFIF density set to `dpi`), or else...
    jpeg: bytes | None = None
    #: ...the decoded pixels, to store losslessly.
    image: Image.Image | None = None


def extract_single_scan(
    pdf_page: pdfium.PdfPage,
    open_pikepdf,
    index: int,
    *,
    min_dpi: float,
    max_pixels: int,
    max_decoded_bytes: int,
) -> ExtractedScan | None:
    """The page's one full-page scan, exactly, or None when the page must be rendered.

    `open_pikepdf` gives the document opened with pikepdf (only asked for once PDFium has
    found one image on the page, so pages of other kinds never pay for it).
    """
    scan = _the_one_full_page_image(pdf_page)
    if scan is None:
        return None
    obj, dpi = scan
    width, height = obj.get_px_size()
    if dpi < min_dpi or width * height > max_pixels:
        return None
    try:
        return _extract(obj, open_pikepdf().pages[index], width, height, dpi, max_decoded_bytes)
    except pikepdf.PdfError:
        return None  # qpdf reads the file differently from PDFium: PDFium renders the page


def _extract(
    obj: pdfium.PdfImage,
    page: pikepdf.Page,
    width: int,
    height: int,
    dpi: float,
    max_decoded_bytes: int,
) -> ExtractedScan | None:
    stream = _image_xobject_drawn(page)
    if stream is None or not _plain_image(stream, width, height):
        return None
    components = _components(stream.get("/ColorSpace"))
    bpc = int(stream.get("/BitsPerComponent", 0))
    if components is None or bpc not in (1, 8) or (bpc == 1 and components != 1):
        return None
    decode = stream.get("/Decode")
    if decode is not None and [float(v) for v in decode] != [0.0, 1.0] * components:
        return None  # inverted or remapped samples: PDFium renders them as meant
    filters = _filters(stream)
    mode = "1" if bpc == 1 else ("L" if components == 1 else "RGB")
    if filters == ["/DCTDecode"]:
        return _jpeg_scan(stream, width, height, mode, dpi)
    if width * height * components * bpc / 8 > max_decoded_bytes:
        return None  # the caller's decode guard sends it to pdftoppm
    if filters == ["/JBIG2Decode"] and bpc == 1:
        image = _bilevel_from_pdfium(obj)
    elif all(name in LOSSLESS_FILTERS for name in filters) and len(filters) <= 1:
        image = _decoded_by_pikepdf(stream, mode)
    else:
        return None  # JPX, chains of filters: rendered
    if image is None or image.size != (width, height):
        return None
    return ExtractedScan(width, height, mode, dpi, image=image)


def _the_one_full_page_image(page: pdfium.PdfPage) -> tuple[pdfium.PdfImage, float] | None:
    """The page's only object, if it is an image drawn upright over the whole page, with its
    DPI; None otherwise."""
    if page.get_rotation() != 0 or pdfium_c.FPDFPage_GetAnnotCount(page) > 0:
        return None
    objects = list(page.get_objects(max_depth=0))
    if len(objects) != 1 or objects[0].type != pdfium_c.FPDF_PAGEOBJ_IMAGE:
        return None
    image = objects[0]
    a, b, c, d, e, f = image.get_matrix().get()
    if b != 0 or c != 0 or a <= 0 or d <= 0:
        return None  # turned, sheared or mirrored: rendering draws it as the PDF means
    left, bottom, right, top = page.get_cropbox()
    for edge, page_edge, size in (
        (e, left, right - left),
        (e + a, right, right - left),
        (f, bottom, top - bottom),
        (f + d, top, top - bottom),
    ):
        if abs(edge - page_edge) > max(EDGE_TOLERANCE_PT, EDGE_TOLERANCE_SHARE * size):
            return None
    width, height = image.get_px_size()
    x_dpi, y_dpi = width * POINTS_PER_INCH / a, height * POINTS_PER_INCH / d
    if abs(x_dpi - y_dpi) > DPI_TOLERANCE_SHARE * x_dpi:
        return None
    return image, round(x_dpi, 3)


def _image_xobject_drawn(page: pikepdf.Page) -> pikepdf.Stream | None:
    """The image XObject the page's content draws, if it draws one and paints nothing else.

    A clip is allowed if it is a rectangle around the whole page (scanning software often
    clips to the page box, give or take a rounded point), drawn before any `cm`."""
    drawn, pending, transformed, stack = [], [], False, []
    for operands, operator in pikepdf.parse_content_stream(page):
        name = str(operator)
        if pending or name == "re":
            pending.append((name, operands))
            if [op for op, _ in pending] in (["re"], ["re", "W"], ["re", "W*"]):
                continue
            if len(pending) != 3 or name != "n" or transformed:
                return None
            if not _around_the_page(page, [float(v) for v in pending[0][1]]):
                return None
            pending = []
        elif name == "Do":
            drawn.append(operands[0])
        elif name == "q":
            stack.append(transformed)
        elif name == "Q":
            transformed = stack.pop() if stack else False
        elif name == "cm":
            transformed = True
        elif name not in HARMLESS_OPERATORS:
            return None
    if len(drawn) != 1 or pending:
        return None
    xobjects = page.resources.get("/XObject")
    stream = xobjects.get(drawn[0]) if xobjects is not None else None
    if not isinstance(stream, pikepdf.Stream) or stream.get("/Subtype") != pikepdf.Name.Image:
        return None
    return stream


def _around_the_page(page: pikepdf.Page, rect: list[float]) -> bool:
    x, y, width, height = rect
    left, bottom, right, top = (float(v) for v in page.cropbox)
    x0, x1 = sorted((x, x + width))
    y0, y1 = sorted((y, y + height))
    slack = max(EDGE_TOLERANCE_PT, EDGE_TOLERANCE_SHARE * max(right - left, top - bottom))
    return x0 <= left + slack and y0 <= bottom + slack and x1 >= right - slack and y1 >= top - slack


def _plain_image(stream: pikepdf.Stream, width: int, height: int) -> bool:
    """No mask, no soft mask, no optional content, no alternate decode: pixels as stored."""
    if any(key in stream for key in ("/SMask", "/Mask", "/OC")):
        return False
    if bool(stream.get("/ImageMask", False)) or int(stream.get("/SMaskInData", 0)):
        return False
    return (int(stream.get("/Width", 0)), int(stream.get("/Height", 0))) == (width, height)


def _components(colorspace: object) -> int | None:
    """1 or 3 for grey or RGB (device or ICC), None for any other colour space."""
    if colorspace == pikepdf.Name.DeviceGray:
        return 1
    if colorspace == pikepdf.Name.DeviceRGB:
        return 3
    if (
        isinstance(colorspace, pikepdf.Array)
        and len(colorspace) == 2
        and colorspace[0] == pikepdf.Name.ICCBased
        and isinstance(colorspace[1], pikepdf.Stream)
    ):
        n = int(colorspace[1].get("/N", 0))
        return n if n in (1, 3) else None
    return None


def _filters(stream: pikepdf.Stream) -> list[str]:
    value = stream.get("/Filter")
    if value is None:
        return []
    if isinstance(value, pikepdf.Array):
        return [str(name) for name in value]
    return [str(value)]


def _jpeg_scan(
    stream: pikepdf.Stream, width: int, height: int, mode: str, dpi: float
) -> ExtractedScan | None:
    data = stream.read_raw_bytes()
    try:
        with pillow_quietly(), Image.open(io.BytesIO(data)) as jpeg:
            if jpeg.format != "JPEG" or jpeg.size != (width, height) or jpeg.mode != mode:
                return None  # CMYK, or a header that disagrees with the PDF: rendered
            if jpeg.getexif().get(0x0112, 1) != 1:
                return None  # browsers would turn it by its EXIF tag; the PDF does not
    except Exception:  # noqa: BLE001 -- a stream Pillow cannot parse is rendered by PDFium
        return None
    stored = jpeg_with_density(data, dpi)
    if stored is None:
        return None
    return ExtractedScan(width, height, mode, dpi, jpeg=stored)


def _bilevel_from_pdfium(obj: pdfium.PdfImage) -> Image.Image | None:
    """A JBIG2 scan as PDFium decodes it (pikepdf needs the jbig2dec program): 8-bit 0/255,
    which is exactly the 1-bit image."""
    grey = obj.get_bitmap(render=False).to_pil()
    if grey.mode != "L":
        grey = grey.convert("L")
    levels = {level for _, level in grey.getcolors(256) or []}
    if not levels <= {0, 255}:
        return None
    return grey.convert("1", dither=Image.Dither.NONE)


def _decoded_by_pikepdf(stream: pikepdf.Stream, mode: str) -> Image.Image | None:
    try:
        image = pikepdf.PdfImage(stream).as_pil_image()
    except Exception:  # noqa: BLE001 -- pikepdf refuses image kinds it cannot decode exactly
        return None
    if image.mode != mode:
        image.close()
        return None
    return image


def jpeg_with_density(data: bytes, dpi: float | tuple[float, float]) -> bytes | None:
    """The JPEG with its JFIF density saying `dpi`, its compressed data untouched.

    Returns `data` itself when the density is right already. A JPEG without a JFIF segment
    gets one, unless it is an RGB JPEG whose Adobe segment says it is not YCbCr (a JFIF
    segment would make decoders read it as YCbCr): then None, and the caller stores the
    decoded pixels instead.
    """
    x_dpi, y_dpi = dpi if isinstance(dpi, tuple) else (dpi, dpi)
    x, y = round(x_dpi), round(y_dpi)
    if data[:2] != b"\xff\xd8" or not (1 <= x <= 65535 and 1 <= y <= 65535):
        return None
    jfif_at, adobe_transform, components = None, None, None
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan, end of image: headers are over
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos + 4 : pos + 2 + length]
        if marker == 0xE0 and segment.startswith(b"JFIF\0") and len(segment) >= 12:
            jfif_at = pos if jfif_at is None else jfif_at
        elif marker == 0xEE and segment.startswith(b"Adobe") and len(segment) >= 12:
            adobe_transform = segment[11]
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and len(segment) >= 6:
            components = segment[5]
        pos += 2 + length
    density = bytes([1]) + x.to_bytes(2, "big") + y.to_bytes(2, "big")
    if jfif_at is not None:
        fields = jfif_at + 4 + 7  # after "JFIF\0" and the version: units, X and Y density
        if data[fields : fields + 5] == density:
            return data
        return data[:fields] + density + data[fields + 5 :]
    if adobe_transform == 0 and components != 1:
        return None
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x02" + density + b"\x00\x00"
    return data[:2] + app0 + data[2:]
